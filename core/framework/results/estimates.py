"""Per-group estimates, hyperparameter summaries and recovery of a simulation's truth.

Every table is derived from the Model (its hyperparameters and group terms)
and the common posterior; no parameter of a particular model is named here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COEF, GROUP, GROUP_TERM = "coef", "group", "group_term"
QUANTILES = (0.05, 0.95)
HYPER_QUANTILES = (0.05, 0.5, 0.95)
# Groups at a time: a block of 256 groups x q terms x 4,000 draws is ~16 MB per term,
# while the whole of `coef` (10,000 groups) may be gigabytes and is never copied.
GROUP_BLOCK = 256


def flat_draws(idata, variable: str, selection: dict | None = None) -> np.ndarray:
    """Draws of one variable (optionally one element of it), chain and draw flattened first."""
    values = idata.posterior[variable]
    if selection:
        values = values.sel(selection)
    values = np.asarray(values.values, dtype=float)
    return values.reshape((-1,) + values.shape[2:])


def group_estimates(idata, model, stats=None) -> pd.DataFrame:
    """Long table, one row per group and group term: group, term, mean, sd, q5, q95.

    With `stats` (a Gaussian fit's per-group statistics), or when the posterior
    carries no `coef` draws, the summaries are the exact mixtures over the
    hyperparameter draws (`group_mixture`); otherwise they summarise the draws.
    """
    post = idata.posterior
    labels = np.asarray([str(g) for g in post.coords[GROUP].values], dtype=object)
    terms = [str(t) for t in post.coords[GROUP_TERM].values]
    if terms != list(model.group_term_names):  # the posterior was checked against the Model
        raise ValueError(f"posterior group terms {terms} != model's {model.group_term_names}")
    if stats is not None or COEF not in post:
        from .group_mixture import hyperparameter_draws, mixture_summaries, saved_stats

        stats = stats if stats is not None else saved_stats(idata, model)
        summary = mixture_summaries(model, stats, hyperparameter_draws(idata, model), QUANTILES)
    else:
        summary = _draw_summaries(post)
    n_groups, q = summary.shape[1:]
    return pd.DataFrame(
        {
            "group": np.repeat(labels, q),
            "term": np.tile(np.asarray(terms, dtype=object), n_groups),
            "mean": summary[0].ravel(),
            "sd": summary[1].ravel(),
            "q5": summary[2].ravel(),
            "q95": summary[3].ravel(),
        }
    )


def _draw_summaries(post) -> np.ndarray:
    """(4, J, q): mean, sd, q5 and q95 of the `coef` draws, a block of groups at a time."""
    coef = post[COEF].transpose("chain", "draw", GROUP, GROUP_TERM).values
    draws = coef.reshape(-1, *coef.shape[2:])  # a view when the draws are contiguous
    n_groups, q = draws.shape[1:]
    stats = np.empty((4, n_groups, q))
    for start in range(0, n_groups, GROUP_BLOCK):
        stop = min(start + GROUP_BLOCK, n_groups)
        # (block, q, draws) contiguous: reductions run along memory.
        block = np.ascontiguousarray(np.moveaxis(draws[:, start:stop], 0, -1), dtype=float)
        stats[0, start:stop] = block.mean(axis=-1)
        stats[1, start:stop] = block.std(axis=-1, ddof=1)
        stats[2:, start:stop] = np.quantile(block, QUANTILES, axis=-1)
    return stats


def hyperparameter_table(idata, model, diagnostics: dict | None = None) -> pd.DataFrame:
    """One row per scalar parameter: mean, sd, 5/50/95% quantiles, and R-hat and ESS when given."""
    rows = []
    for variable, selection in model.hyperparameters():
        d = flat_draws(idata, variable, selection)
        label = model.label(variable, selection)
        q5, q50, q95 = np.quantile(d, HYPER_QUANTILES)
        row = {
            "parameter": label,
            "mean": d.mean(),
            "sd": d.std(ddof=1),
            "q5": q5,
            "q50": q50,
            "q95": q95,
        }
        if diagnostics:
            per = diagnostics["parameters"][label]
            row.update(r_hat=per["r_hat"], ess_bulk=per["ess_bulk"], ess_tail=per["ess_tail"])
        rows.append(row)
    return pd.DataFrame(rows)


def true_value(truth: dict, variable: str, selection: dict):
    """The simulation's value of one scalar parameter (v2 truth layout), or None if not given."""
    value = truth.get(variable)
    if value is None or not selection:
        return value
    keys = list(selection.values())
    if len(keys) == 1:
        return value.get(keys[0])
    # group_corr is symmetric: {(a, b): r} may name the pair either way round.
    pair = tuple(keys)
    return value.get(pair, value.get(pair[::-1]))


def recovery_table(
    idata, model, truth: dict, estimates: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per scalar parameter with a known truth: truth, mean, 90% interval, covered; coef coverage in attrs."""
    rows = []
    for variable, selection in model.hyperparameters():
        t = true_value(truth, variable, selection)
        if t is None:
            continue
        d = flat_draws(idata, variable, selection)
        lo, hi = np.quantile(d, QUANTILES)
        rows.append(
            {
                "parameter": model.label(variable, selection),
                "truth": float(t),
                "mean": d.mean(),
                "q5": lo,
                "q95": hi,
                "covered": bool(lo <= float(t) <= hi),
            }
        )
    table = pd.DataFrame(rows, columns=["parameter", "truth", "mean", "q5", "q95", "covered"])
    if truth.get(COEF) is not None:
        true_coef = np.asarray(truth[COEF], dtype=float)
        table.attrs.update(coef_coverage(idata, model, true_coef, estimates))
    return table


def coef_coverage(idata, model, true_coef: np.ndarray, estimates=None) -> dict:
    """Share of groups whose true coefficients lie in their 90% interval: overall and per term."""
    est = group_estimates(idata, model) if estimates is None else estimates
    t = true_coef.ravel()  # (J, q) row-major: the long table's order
    inside = (est["q5"].to_numpy() <= t) & (t <= est["q95"].to_numpy())
    by_term = pd.Series(inside).groupby(est["term"].to_numpy(), sort=False).mean()
    return {
        "coef_coverage": float(inside.mean()),
        "coef_coverage_by_term": {str(k): float(v) for k, v in by_term.items()},
    }
