"""Forecasts: the posterior predictive of y at given predictor values for a group, in the core.

The design row x comes from the Model (`model.design`), so numeric,
categorical and interaction terms are coded exactly as in the fit; z = x at
the group terms. For a group in the data, draw d gives the family's
predictive at x_rest beta_rest + z coef_g (coef holds each group's natural-
scale coefficients, so the group terms' betas are already inside). For a group
not in the data, its coefficients are drawn from the population: the linear
predictor is x beta with variance z' Sigma z, Sigma = diag(group_sd) Omega
diag(group_sd), the full covariance when the effects are correlated. Either
way the predictive is an equal-weight mixture of normals over draws; its
mean, sd and quantiles are computed exactly (no extra random numbers), so the
same posterior always gives the same forecast.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..data.columns import as_number_text
from ..errors import UserError
from ..model.statistics import LARGEST_VALUE
from .estimates import flat_draws

PROBS = (0.05, 0.5, 0.95)
X_ALIAS = "x"  # `{group: CA, x: 16}`: the one numeric predictor of a one-predictor model
STATS = ["source", "mean", "sd", "q5", "q50", "q95", "note"]
NEAR_SEARCH_MAX = 50_000  # labels beyond which only case and spaces are ignored (difflib is slow)


def predictors(model) -> list[str]:
    """The data columns the population terms use, in the order the terms first use them."""
    seen: dict[str, None] = {}
    for term in model.terms:
        seen.update(dict.fromkeys(term.columns))
    return list(seen)


def resolve_values(model, values: dict, group: str = "") -> dict:
    """{column: value} for the design, from what a user wrote (`x` alias, categorical levels)."""
    return {column: value for _, column, value in _resolve(model, values, group)}


def _resolve(model, values: dict, group: str) -> list[tuple[str, str, object]]:
    """(key as written, column, checked value) per value given; every predictor needs one."""
    where = f"forecast for group '{group}'"
    names = predictors(model)
    out = []
    for key, value in values.items():
        column = key
        if key not in names and key == X_ALIAS:
            numeric = [c for c in names if not model.columns[c].categorical]
            if not names:
                raise UserError(
                    f"{where}: the model has no predictors, so 'x' has no column; leave x out"
                )
            if len(names) != 1 or len(numeric) != 1:
                raise UserError(
                    f"{where}: 'x' stands for the predictor of a one-predictor model; this "
                    f"model's predictors are {', '.join(names) or '(none)'}: give each with "
                    "at: {column: value, ...} (CLI: --at column=value)"
                )
            column = numeric[0]
        elif key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(
                f"{where}: '{key}' is not a predictor of the model; {hint}"
                f"its predictors are: {', '.join(names) or '(none)'}"
            )
        if column in {c for _, c, _ in out}:
            raise UserError(
                f"{where}: '{column}' is given twice (as 'x' and by name); give it once"
            )
        out.append((str(key), column, _value(model.columns[column], value, where)))
    missing = [c for c in names if c not in {column for _, column, _ in out}]
    if missing:
        raise UserError(
            f"{where}: no value for the predictor(s) {', '.join(missing)}; give every predictor, "
            f"e.g. at: {{{', '.join(f'{c}: ...' for c in names)}}} (CLI: --at column=value)"
        )
    return out


def _value(column, value, where: str):
    """A numeric value as float; a categorical one as one of the column's levels (text)."""
    if column.categorical:
        text = str(value)
        if isinstance(value, float) and value.is_integer() and text not in column.levels:
            text = str(int(value))  # YAML's 2.0 for a level written 2
        if text not in column.levels:
            raise UserError(
                f"{where}: '{value}' is not a level of the categorical column '{column.name}'; "
                f"its levels are: {', '.join(column.levels[:20])}"
                f"{' ...' if len(column.levels) > 20 else ''}"
            )
        return text
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(
            f"{where}: {column.name} = '{value}' is not a number; the column is numeric"
        ) from None
    if not np.isfinite(number):
        raise UserError(f"{where}: {column.name} = {value} must be a finite number")
    if abs(number) > LARGEST_VALUE:  # its square would overflow in the forecast's variance
        raise UserError(
            f"{where}: {column.name} = {value} is too large; give a value of at most "
            f"{LARGEST_VALUE:g} in size"
        )
    return number


def design_row(model, columns: dict) -> np.ndarray:
    """The model's design row (p,) at one point, from resolved {column: value}."""
    data = {
        c: np.asarray([v], dtype=object if model.columns[c].categorical else float)
        for c, v in columns.items()
    }
    if not data:  # an intercept-only model: the design needs a length
        return model.design({model.response: np.zeros(1)})[0]
    return model.design(data)[0]


def predictive_components(idata, model, group: str, row: np.ndarray, new_groups="population"):
    """Per-draw means and sds of the predictive mixture at design row `row`, and their source."""
    post = idata.posterior
    labels = [str(g) for g in post.coords["group"].values]
    beta = flat_draws(idata, "beta")  # (S, p) in model.term_names order (checked posterior)
    params = {p: flat_draws(idata, p) for p in model.family_parameters}
    z_index = model.group_term_index
    z = row[z_index]
    if group in labels:
        rest = np.ones(len(row), dtype=bool)
        rest[z_index] = False
        if "coef" not in post:  # output.group_draws: none: the group's exact conditional instead
            means, sds = _conditional_predictive(idata, model, labels.index(group), row)
            return means, sds, "fitted"
        coef = flat_draws(idata, "coef", {"group": group})  # (S, q): one group, not all
        eta = beta[:, rest] @ row[rest] + coef @ z
        means, sds = model.family.predictive(eta, params)
        return np.asarray(means, float), np.asarray(sds, float), "fitted"
    if new_groups == "error":
        hint = f"did you mean '{near}'? " if (near := near_label(group, labels)) else ""
        raise UserError(
            f"group '{group}' is not in the data; {hint}known groups include {', '.join(labels[:10])}"
        )
    scaled = flat_draws(idata, "group_sd") * z  # diag(sd) z per draw, (S, q)
    if model.correlated:
        corr = flat_draws(idata, "group_corr")  # (S, q, q)
        between = np.einsum("si,sij,sj->s", scaled, corr, scaled)
    else:
        between = np.sum(scaled**2, axis=1)
    means, sds = model.family.predictive(beta @ row, params)
    # Gaussian: a new group's coefficients add z' Sigma z to each draw's variance.
    return np.asarray(means, float), np.sqrt(np.asarray(sds, float) ** 2 + between), "population"


def _conditional_predictive(idata, model, index: int, row: np.ndarray):
    """Per-draw predictive normals of a fitted group from its coefficients' exact Gaussian conditional.

    Draw d's coefficients are N(m_d, V_d), so the linear predictor is
    N(x_rest beta_rest + z'm_d, z'V_d z) and y adds the family's variance.
    """
    from ..model.gaussian_marginal import conditional_moments
    from .group_mixture import hyperparameter_draws, saved_stats

    params = hyperparameter_draws(idata, model)
    mean, cov = conditional_moments(model, saved_stats(idata, model, index), **params)
    z_index = model.group_term_index
    rest = np.ones(len(row), dtype=bool)
    rest[z_index] = False
    z = row[z_index]
    eta = params["beta"][:, rest] @ row[rest] + mean[:, 0] @ z
    between = np.einsum("i,sij,j->s", z, cov[:, 0], z)
    means, sds = model.family.predictive(eta, {p: params[p] for p in model.family_parameters})
    return np.asarray(means, float), np.sqrt(np.asarray(sds, float) ** 2 + between)


def mixture_quantiles(
    means: np.ndarray, sds: np.ndarray, probs=PROBS, tol: float = 1e-10
) -> np.ndarray:
    """Quantiles of an equal-weight mixture of normals, by bisection on its CDF."""
    probs = np.asarray(probs, dtype=float)
    lo = np.full(probs.shape, np.min(means - 12 * sds))
    hi = np.full(probs.shape, np.max(means + 12 * sds))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        cdf = ndtr((mid[:, None] - means[None, :]) / sds[None, :]).mean(axis=1)
        below = cdf < probs
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(hi - lo <= tol * (1 + np.abs(mid))):
            break
    return 0.5 * (lo + hi)


def forecast(idata, model, group, values: dict, new_groups: str = "population") -> dict:
    """One forecast row: group, the values as given, source, mean, sd, q5, q50, q95."""
    group = str(group)
    resolved = _resolve(model, values, group)
    row = design_row(model, {column: value for _, column, value in resolved})
    with np.errstate(all="ignore"):  # overflow is reported below, in one line
        means, sds, source = predictive_components(idata, model, group, row, new_groups)
        q5, q50, q95 = mixture_quantiles(means, sds)
        # Law of total variance; the form avoids E[y^2] - E[y]^2 cancellation.
        sd = float(np.sqrt(np.mean(sds**2) + means.var()))
        mean = float(means.mean())
    if not np.all(np.isfinite([mean, sd, q5, q50, q95])):
        at = ", ".join(f"{key}={value}" for key, _, value in resolved)
        raise UserError(
            f"forecast for group '{group}' at {at}: the forecast overflows floating point "
            "(its mean or spread is beyond 1.8e308); give predictor values nearer the data's range"
        )
    shown = {key: value for key, _, value in resolved}  # as the user named them (`x` stays x)
    stats = {"mean": mean, "sd": sd, "q5": q5, "q50": q50, "q95": q95}
    labels = idata.posterior.coords["group"].values
    note = "" if source == "fitted" else new_group_note(group, labels)
    return {"group": group, **shown, "source": source, **stats, "note": note}


def near_label(group: str, labels) -> str | None:
    """The data's label closest to `group` ignoring case and spaces (`Ca` -> 'CA'), or None."""
    labels = [str(g) for g in labels]
    folded: dict[str, str] = {}
    for label in labels:
        folded.setdefault(label.strip().casefold(), label)
    key = group.strip().casefold()
    if key in folded:
        return folded[key]
    if len(folded) > NEAR_SEARCH_MAX:
        return None
    number = as_number_text(group)  # the same number written otherwise: 01 or 1.0 for '1'
    if number is not None:
        same = [label for label in labels if as_number_text(label) == number]
        if same:
            return same[0]
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.75)
    return folded[close[0]] if close else None


def new_group_note(group: str, labels) -> str:
    """What forecasts.csv and the terminal say about a group that is not in the data."""
    near = near_label(group, labels)
    return f"not in the data; did you mean '{near}'?" if near else "not in the data"


def notes(table: pd.DataFrame) -> list[str]:
    """One warning line per forecast of a group not in the data (for the terminal)."""
    if "note" not in table:
        return []
    rows = zip(table["group"], table["note"], strict=True)
    return [f"forecast for group '{g}': {n} (forecast from the population, as a new group)"
            for g, n in rows if n]  # fmt: skip


def request(item) -> tuple[str, dict]:
    """(group, {column: value}) from a spec forecast, a dict, or a (group, values | x) pair."""
    if isinstance(item, tuple | list):
        group, values = item
        return str(group), dict(values) if isinstance(values, dict) else {X_ALIAS: values}
    if isinstance(item, dict):
        values = dict(item.get("at") or {})
        if item.get(X_ALIAS) is not None:
            values[X_ALIAS] = item[X_ALIAS]
        return str(item["group"]), values
    values = dict(getattr(item, "at", None) or {})
    if getattr(item, X_ALIAS, None) is not None:
        values[X_ALIAS] = getattr(item, X_ALIAS)
    return str(item.group), values


def forecast_table(idata, model, requests, new_groups: str = "population") -> pd.DataFrame:
    """Forecasts as a table: group, one column per value given, source, mean, sd, q5, q50, q95."""
    rows = [forecast(idata, model, *request(r), new_groups=new_groups) for r in requests]
    given: dict[str, None] = {}
    for r in rows:
        given.update(dict.fromkeys(k for k in r if k not in STATS and k != "group"))
    return pd.DataFrame(rows, columns=["group", *given, *STATS])
