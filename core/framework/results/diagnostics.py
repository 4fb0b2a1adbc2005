"""Convergence diagnostics, checkable from code (not only printed)."""

from __future__ import annotations

import numpy as np

from . import convergence

RHAT_MAX = 1.01
ESS_MIN = 400
COEF = "coef"


def diagnose(idata, model, max_treedepth: int | None = None) -> dict:
    """R-hat, bulk and tail ESS per parameter, divergences and tree-depth hits, with verdicts.

    Thresholds follow Vehtari et al. (2021): R-hat <= 1.01 and ESS >= 400 for
    four chains; any divergence is a failure. Every scalar parameter is keyed by
    its label (`beta[x]`, `group_corr[Intercept,x]`, `sigma`); the group
    coefficients by `coef[*,term]`, each reporting its worst group, so the file
    stays small at any number of groups.
    """
    parameters = _hyperparameters(idata, model)
    parameters.update(_group_coefficients(idata, model))
    ss = idata.sample_stats
    divergences = int(np.asarray(ss["diverging"].values).sum())
    treedepth_hits = None
    if max_treedepth is not None and "tree_depth" in ss:
        treedepth_hits = int((np.asarray(ss["tree_depth"].values) >= max_treedepth).sum())
    max_rhat = max(p["r_hat"] for p in parameters.values())
    min_bulk = min(p["ess_bulk"] for p in parameters.values())
    min_tail = min(p["ess_tail"] for p in parameters.values())
    problems = []
    draws = int(idata.posterior.sizes["draw"])
    if draws < convergence.MIN_DRAWS:
        problems.append(
            f"only {draws} draw(s) per chain: R-hat and ESS need at least "
            f"{convergence.MIN_DRAWS} (raise sampler.draws)"
        )
    elif not max_rhat <= RHAT_MAX:
        problems.append(
            f"R-hat {_past(max_rhat, RHAT_MAX)} > {RHAT_MAX} at {_name_of(parameters, 'r_hat', max_rhat)} "
            "(chains disagree: run longer or check the model)"
        )
    if draws >= convergence.MIN_DRAWS and not min(min_bulk, min_tail) >= ESS_MIN:
        problems.append(
            f"min ESS {np.floor(min(min_bulk, min_tail)):.0f} < {ESS_MIN} (too few effective draws: raise sampler.draws)"
        )
    if divergences:
        problems.append(
            f"{divergences} divergent transition(s) (raise sampler.target_accept or change model.parameterisation)"
        )
    if treedepth_hits:
        problems.append(
            f"{treedepth_hits} draw(s) hit max_treedepth {max_treedepth} (raise sampler.max_treedepth)"
        )
    return {
        "parameters": parameters,
        "max_r_hat": max_rhat,
        "min_ess_bulk": min_bulk,
        "min_ess_tail": min_tail,
        "divergences": divergences,
        "treedepth_hits": treedepth_hits,
        "chains": int(idata.posterior.sizes["chain"]),
        "draws": draws,
        "passed": not problems,
        "problems": problems,
    }


def _hyperparameters(idata, model) -> dict:
    """Diagnostics of every scalar parameter, all in one vectorised pass."""
    hyper = model.hyperparameters()
    columns = [np.asarray(idata.posterior[v].sel(s).values, dtype=float) for v, s in hyper]
    rhat, bulk, tail = convergence.diagnostics(np.stack(columns, axis=-1))
    return {
        model.label(v, s): {
            "r_hat": _worst(rhat[k], max),
            "ess_bulk": _worst(bulk[k], min),
            "ess_tail": _worst(tail[k], min),
        }
        for k, (v, s) in enumerate(hyper)
    }


def _group_coefficients(idata, model) -> dict:
    """Per group term, the worst R-hat and ESS over groups, and the group with the worst R-hat."""
    if COEF not in idata.posterior:  # output.group_draws: none (the hyperparameters decide)
        return {}
    coef = idata.posterior[COEF].transpose("chain", "draw", "group", "group_term")
    labels = [str(g) for g in coef.coords["group"].values]
    values = coef.values
    chains, draws, n_groups, q = values.shape
    # (chain, draw, J * q) is a view: convergence copies CHUNK parameters at a time.
    rhat, bulk, tail = convergence.diagnostics(values.reshape(chains, draws, n_groups * q))
    out = {}
    for k, term in enumerate(model.group_term_names):
        r = rhat.reshape(n_groups, q)[:, k]
        worst = int(np.nanargmax(r)) if np.isfinite(r).any() else 0
        out[model.label(COEF, {"group": "*", "group_term": term})] = {
            "r_hat": _worst(r, max),
            "ess_bulk": _worst(bulk.reshape(n_groups, q)[:, k], min),
            "ess_tail": _worst(tail.reshape(n_groups, q)[:, k], min),
            "worst_group": labels[worst],
        }
    return out


def _past(value: float, limit: float) -> str:
    """`value` (> limit) to 3 decimals, or as many more as it takes not to print the limit itself."""
    for digits in range(3, 8):
        if round(value, digits) > limit:
            return f"{value:.{digits}f}"
    return f"{value:.8f}"


def _name_of(parameters: dict, key: str, value: float) -> str:
    """The parameter whose `key` is `value` (for a coefficient, with its worst group)."""
    for name, per in parameters.items():
        if per[key] == value:
            return name.replace("*", per["worst_group"]) if "worst_group" in per else name
    return "?"


def _worst(values, pick) -> float:
    values = np.asarray(values, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    # A NaN R-hat (e.g. a constant chain) is a failure, not a pass.
    if len(finite) < len(values):
        return float("inf") if pick is max else 0.0
    return float(pick(finite))
