"""Simulate data from any model with known truth (the blog's part 1, generalised).

The v1 block (`x` and the five v1 truth names) draws exactly the numbers it
drew before: each group term's coefficients with `rng.normal(mean, sd, J)`
in term order, then the noise. The general block draws the columns first (in
the order written), then the group effects (independent: term by term as
above; correlated: from N(0, Sigma) through its Cholesky factor), then the
noise: y = X beta + Z b + N(0, sigma).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import SpecError
from ..model.model import Model
from ..model.prior_classes import v1_terms
from ..model.terms import Column
from ..spec.simulate_schema import Simulate
from .columns import Wanted, known_columns, number_text
from .dataset import Dataset

if TYPE_CHECKING:
    import pandas as pd

TRUTH = ("data", "simulate", "truth")


def simulated_columns(spec, wanted: Wanted) -> dict[str, Column]:
    """The simulated columns' kinds and levels, known from the simulate block itself."""
    sim: Simulate = spec.data.simulate
    if sim.x is not None:
        numeric = [c for c in wanted.predictors if c not in wanted.categorical]
        if len(wanted.predictors) != 1 or len(numeric) != 1:
            raise _error(
                spec, ("data", "simulate", "x"),
                "gives the values of one numeric predictor, but the model's predictors are: "
                f"{', '.join(wanted.predictors) or '(none)'}; give columns: {{NAME: ...}} and "
                "rows_per_group instead",
            )  # fmt: skip
        return known_columns(wanted, {numeric[0]: None})
    given = sim.columns or {}
    missing = [c for c in wanted.predictors if c not in given]
    extra = [c for c in given if c not in wanted.predictors]
    if missing or extra:
        what = f"misses {', '.join(missing)}" if missing else f"has {', '.join(extra)}"
        raise _error(
            spec, ("data", "simulate", "columns"),
            f"{what}; it needs one entry per predictor column of the model: "
            f"{', '.join(wanted.predictors) or '(none)'}",
        )  # fmt: skip
    kinds: dict[str, set[str] | None] = {}
    for name in wanted.predictors:
        draw = given[name]
        if draw.levels is not None:
            kinds[name] = {str(v) for v in draw.levels}
        elif name in wanted.categorical:
            if draw.values is None:
                raise _error(
                    spec, ("data", "simulate", "columns", name),
                    "is declared categorical: give levels: [a, b, ...] or a list of codes",
                )  # fmt: skip
            kinds[name] = {number_text(v) for v in draw.values}
        else:
            kinds[name] = None
    return known_columns(wanted, kinds)


def simulated_rows(spec, model: Model):
    """(raw columns with the response, design X, group codes, labels, truth), drawn with the seed."""
    sim: Simulate = spec.data.simulate
    rng = np.random.default_rng(sim.seed)
    labels = sim.labels()
    j = len(labels)
    predictors = [c for c in model.columns if c not in (model.response, model.group)]
    if sim.x is not None:
        xs = np.asarray(sim.x_values())
        codes = np.repeat(np.arange(j), len(xs))
        data = {predictors[0]: np.tile(xs, j)}
    else:
        per = sim.rows_per_group
        codes = np.repeat(np.arange(j), per)
        data = {name: _draw_column(sim.columns[name], model.columns[name], per, j, rng)
                for name in sim.columns}  # fmt: skip
    beta, sd, corr, sigma = _truth(spec, model)
    x = model.design(data if data else {model.response: np.zeros(len(codes))})
    coef = _group_coefficients(model, beta, sd, corr, j, rng)
    eta = None
    gi = dict(zip(model.group_term_index, range(model.n_group_terms), strict=True))
    for t in range(model.n_terms):
        part = x[:, t] * (coef[codes, gi[t]] if t in gi else beta[t])
        eta = part if eta is None else eta + part
    y = eta + rng.normal(0.0, sigma, size=len(codes))
    data[model.response] = y
    names = model.group_term_names
    truth = {
        "beta": dict(zip(model.term_names, beta.tolist(), strict=True)),
        "group_sd": dict(zip(names, sd.tolist(), strict=True)),
        "sigma": sigma,
        "coef": coef,
    }
    if model.correlated:
        truth["group_corr"] = {
            (a, b): float(corr[i, k])
            for i, a in enumerate(names)
            for k, b in enumerate(names)
            if i < k
        }
    return data, x, codes, labels, truth


def simulate(spec, model: Model) -> Dataset:
    """Draw group effects and responses from the spec's `simulate` block, seeded."""
    data, x, codes, labels, truth = simulated_rows(spec, model)
    return Dataset(
        labels,
        y=data[model.response],
        X=x,
        codes=codes,
        response=model.response,
        group=model.group,
        source=f"simulated (seed {spec.data.simulate.seed})",
        truth=truth,
    )


def simulated_frame(spec, model: Model) -> pd.DataFrame:
    """The simulated rows as a table (group, predictors, response): what `framework simulate` writes."""
    import pandas as pd  # here only: `framework validate` need not import pandas

    data, _, codes, labels, _ = simulated_rows(spec, model)
    frame = {model.group: np.asarray(labels, dtype=object)[codes]}
    frame.update({c: v for c, v in data.items() if c != model.response})
    frame[model.response] = data[model.response]
    return pd.DataFrame(frame)


def _draw_column(draw, column: Column, per: int, groups: int, rng) -> np.ndarray:
    n = per * groups
    if draw.normal is not None:
        return rng.normal(draw.normal[0], draw.normal[1], size=n)
    if draw.uniform is not None:
        return rng.uniform(draw.uniform[0], draw.uniform[1], size=n)
    if draw.levels is not None:
        levels = np.asarray([str(v) for v in draw.levels], dtype=object)
        return levels[rng.integers(0, len(levels), size=n)]
    cycled = np.tile(np.resize(np.asarray(draw.values, dtype=float), per), groups)
    if column.categorical:  # numeric codes declared categorical: levels as text
        return np.asarray([number_text(v) for v in cycled], dtype=object)
    return cycled


def _truth(spec, model: Model):
    """(beta (p,), group_sd (q,), corr (q, q), sigma) from the truth block, every value checked."""
    t = spec.data.simulate.truth
    if t.v1_values:
        terms = v1_terms(model.term_names)
        if terms is None or model.correlated or model.group_term_names != model.term_names:
            raise _error(
                spec, TRUTH,
                "uses the v1 names, which fit y ~ x + (x || g) only; give beta: {TERM: value}, "
                f"group_sd: {{TERM: value}} and sigma for this model's terms: "
                f"{', '.join(model.term_names)}",
            )  # fmt: skip
        by_class: dict = {"beta": {}, "group_sd": {}}
        for name, value in t.v1_values.items():
            cls, term = terms[name]
            if term is None:
                sigma = value
            else:
                by_class[cls][term] = value
        return (np.array([by_class["beta"][n] for n in model.term_names]),
                np.array([by_class["group_sd"][n] for n in model.group_term_names]),
                np.eye(len(model.group_term_names)), sigma)  # fmt: skip
    beta = _every(spec, "beta", t.beta, model.term_names)
    sd = _every(spec, "group_sd", t.group_sd, model.group_term_names)
    return beta, sd, _correlation(spec, model, t.group_corr), t.sigma


def _every(spec, cls: str, given: dict, names: list[str]) -> np.ndarray:
    missing = [n for n in names if n not in given]
    extra = [n for n in given if n not in names]
    if missing or extra:
        what = f"misses {', '.join(missing)}" if missing else f"names {', '.join(extra)}, not"
        raise _error(
            spec, (*TRUTH, cls),
            f"{what} among the model's {cls} terms; give a true value for each of: "
            f"{', '.join(names)}",
        )  # fmt: skip
    return np.array([float(given[n]) for n in names])


def _correlation(spec, model: Model, given) -> np.ndarray:
    names, where = model.group_term_names, (*TRUTH, "group_corr")
    q = len(names)
    if given is None:
        return np.eye(q)  # correlated terms left out: drawn independent
    if not model.correlated:
        raise _error(
            spec, where,
            "is for correlated group effects ( ... | g) with two or more terms; remove it",
        )  # fmt: skip
    if isinstance(given, list):
        corr = np.asarray(given, dtype=float)
        if corr.shape != (q, q) or not np.allclose(corr, corr.T) or \
                not np.allclose(np.diag(corr), 1):  # fmt: skip
            raise _error(
                spec, where,
                f"must be a symmetric {q} x {q} matrix with 1 on the diagonal (terms "
                f"{', '.join(names)}), or a mapping {{'a,b': r}}",
            )  # fmt: skip
    else:
        corr = np.eye(q)
        for key, r in given.items():
            pair = [p.strip() for p in key.split(",")]
            if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(names):
                raise _error(
                    spec, (*where, key),
                    f"must name two different group terms as 'a,b'; the terms are: {', '.join(names)}",
                )  # fmt: skip
            i, k = names.index(pair[0]), names.index(pair[1])
            corr[i, k] = corr[k, i] = r
    if np.any(np.linalg.eigvalsh(corr) <= 1e-10):
        raise _error(spec, where, "is not a valid correlation matrix (not positive definite)")
    return corr


def _group_coefficients(model: Model, beta, sd, corr, groups: int, rng) -> np.ndarray:
    """Each group's coefficients (groups, q): beta of the group terms plus N(0, Sigma) deviations."""
    mean = beta[model.group_term_index]
    if np.allclose(corr, np.eye(len(sd))):
        # Term by term, as v1 drew intercepts then slopes: the v1 block keeps its numbers.
        return np.column_stack(
            [rng.normal(m, s, size=groups) for m, s in zip(mean, sd, strict=True)]
        )
    factor = sd[:, None] * np.linalg.cholesky(corr)  # chol(D C D) = D chol(C), even with an sd of 0
    return mean + rng.standard_normal((groups, len(sd))) @ factor.T


def _error(spec, path: tuple, message: str) -> SpecError:
    return SpecError(f"{spec.where(*path)}: {'.'.join(map(str, path))}: {message}")
