"""Seeded synthetic data with known truth, for testing backends (like arviz-base's testing).

Each case is a formula and its truth; `simulated_problem` draws rows from the
model and returns the Model and the Dataset (with `dataset.truth` in the
common posterior's names). The group labels' sorted order differs from their
order of first appearance, rows of different groups are interleaved and group
sizes vary, so a backend that sorts labels, assumes contiguous groups or equal
sizes returns visibly wrong coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..model.model import Model, build_model
from ..model.statistics import GroupStats
from ..model.terms import Column


@dataclass(frozen=True)
class Case:
    """A model to simulate from: formula, truth by class, and the predictors' distributions."""

    formula: str
    beta: dict[str, float]
    group_sd: dict[str, float]
    sigma: float
    group_corr: dict[tuple[str, str], float] | None = None


CASES: dict[str, Case] = {
    # The v1 model: one predictor, independent intercept and slope.
    "independent": Case(
        "y ~ x + (x || g)",
        beta={"Intercept": 20.0, "x": -1.5},
        group_sd={"Intercept": 4.0, "x": 0.8},
        sigma=2.0,
    ),
    # Two numeric predictors and a categorical one; intercept and x correlated by group.
    "correlated": Case(
        "y ~ x + x2 + c + (x | g)",
        beta={"Intercept": 20.0, "x": -1.5, "x2": 0.7, "c[b]": 3.0, "c[c]": -2.0},
        group_sd={"Intercept": 4.0, "x": 0.8},
        sigma=2.0,
        group_corr={("Intercept", "x"): 0.5},
    ),
}
LEVELS = ("a", "b", "c")
COLUMNS = {
    "y": Column("y", "numeric"),
    "x": Column("x", "numeric"),
    "x2": Column("x2", "numeric"),
    "c": Column("c", "categorical", LEVELS),
    "g": Column("g", "categorical"),
}

# Two-letter codes as in the rainfall case; first-appearance order is shuffled below.
_STATES = (
    "AL AK AZ AR CA CO CT DC DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
)


def group_labels(n_groups: int, rng: np.random.Generator) -> list[str]:
    """Distinct labels in an order that is neither sorted nor the generation order."""
    # Numbered labels (beyond 51 groups) also sort differently as text ("g10" < "g9").
    states = _STATES.split()
    pool = states if n_groups <= len(states) else [f"g{i}" for i in range(1, n_groups + 1)]
    labels = [pool[i] for i in rng.permutation(len(pool))[:n_groups]]
    if n_groups > 1 and labels == sorted(labels):
        labels[0], labels[1] = labels[1], labels[0]
    return labels


def covariance(model: Model, case: Case) -> np.ndarray:
    """The true covariance of the group effects, in the model's group-term order."""
    names = model.group_term_names
    sd = np.array([case.group_sd[t] for t in names])
    corr = np.eye(len(names))
    for (a, b), r in (case.group_corr or {}).items():
        i, j = names.index(a), names.index(b)
        corr[i, j] = corr[j, i] = r
    return sd[:, None] * corr * sd[None, :]


def simulated_problem(
    case: str | Case = "independent",
    n_groups: int = 20,
    rows_per_group: int = 15,
    seed: int = 0,
    x_range: tuple[float, float] = (0.0, 15.0),
    unbalanced: bool = True,
    shuffle_rows: bool = True,
) -> tuple[Model, Dataset]:
    """(Model, Dataset) drawn from a case's model, with `dataset.truth` set."""
    case = CASES[case] if isinstance(case, str) else case
    if n_groups < 2 or rows_per_group < 2:
        raise ValueError("need at least 2 groups and 2 rows per group")
    model = build_model(case.formula, COLUMNS)
    rng = np.random.default_rng(seed)
    names = group_labels(n_groups, rng)
    cov = covariance(model, case)
    deviations = rng.multivariate_normal(np.zeros(len(cov)), cov, size=n_groups)
    sizes = np.full(n_groups, rows_per_group)
    if unbalanced:
        # Sizes from about half to one and a half times rows_per_group, same total.
        half = rows_per_group // 2
        sizes = sizes + rng.permutation(np.linspace(-half, half, n_groups).round().astype(int))
    gen = np.repeat(np.arange(n_groups), sizes)
    if shuffle_rows:
        gen = rng.permutation(gen)
    rows = len(gen)
    columns = {
        "x": rng.uniform(*x_range, size=rows),
        "x2": rng.normal(size=rows),
        "c": rng.choice(LEVELS, size=rows),
    }
    x = model.design(columns)
    beta = np.array([case.beta[t] for t in model.term_names])
    z = model.group_term_index
    y = x @ beta + np.einsum("nq,nq->n", x[:, z], deviations[gen]) + rng.normal(0, case.sigma, rows)
    # Codes as any loader builds them (order of first appearance); the unsorted names
    # go to the groups in that order, so dataset.labels is never sorted.
    codes, order = pd.factorize(gen, sort=False)
    stats = GroupStats.from_rows(codes, np.column_stack([x, y]), n_groups)
    truth = {
        "beta": dict(case.beta),
        "group_sd": dict(case.group_sd),
        "sigma": case.sigma,
        "coef": beta[z] + deviations[order],
    }
    if model.correlated:
        truth["group_corr"] = dict(case.group_corr or {})
    dataset = Dataset(
        labels=names,
        stats=stats,
        y=y,
        X=x,
        codes=codes,
        response="y",
        group="g",
        source=f"framework.testing.simulated_problem({case.formula!r}, seed={seed})",
        truth=truth,
    )
    return model, dataset
