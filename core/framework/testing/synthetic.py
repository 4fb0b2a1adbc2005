"""Seeded synthetic datasets with known truth, for testing backends (like arviz-base's testing)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import Dataset
from ..priors import HYPERPARAMETERS

DEFAULT_TRUTH: dict[str, float] = {
    "intercept_mu": 20.0,
    "intercept_sigma": 4.0,
    "slope_mu": -1.5,
    "slope_sigma": 0.8,
    "error_sigma": 2.0,
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


def simulated_dataset(
    n_groups: int = 20,
    rows_per_group: int = 15,
    seed: int = 0,
    truth: dict[str, float] | None = None,
    x_range: tuple[float, float] = (0.0, 15.0),
    unbalanced: bool = True,
    shuffle_rows: bool = True,
    shared_x: bool = False,
) -> Dataset:
    """Data drawn from the model with `dataset.truth` set (hyperparameters, true group effects).

    The group labels' sorted order differs from their order of first appearance,
    rows of different groups are interleaved (`shuffle_rows`) and group sizes vary
    around `rows_per_group` (`unbalanced`), so a backend that sorts labels, assumes
    contiguous groups or equal sizes returns visibly wrong group effects. The true
    `intercept` and `slope` arrays follow `dataset.labels`. With `shared_x`, each
    group's x is an even grid over `x_range` (a panel, as the rainfall case's years),
    so groups of the same size share their design (framework.design_stats).
    """
    if n_groups < 2 or rows_per_group < 2:
        raise ValueError("need at least 2 groups and 2 rows per group")
    t = {**DEFAULT_TRUTH, **(truth or {})}
    unknown = sorted(set(t) - set(HYPERPARAMETERS))
    if unknown:
        raise ValueError(
            f"unknown truth keys: {', '.join(unknown)}; expected {', '.join(HYPERPARAMETERS)}"
        )
    rng = np.random.default_rng(seed)
    names = group_labels(n_groups, rng)
    intercept = rng.normal(t["intercept_mu"], t["intercept_sigma"], size=n_groups)
    slope = rng.normal(t["slope_mu"], t["slope_sigma"], size=n_groups)
    sizes = np.full(n_groups, rows_per_group)
    if unbalanced:
        # Sizes from about half to one and a half times rows_per_group, same total.
        spread = (
            np.linspace(-(rows_per_group // 2), rows_per_group // 2, n_groups).round().astype(int)
        )
        sizes = sizes + rng.permutation(spread)
    gen = np.repeat(np.arange(n_groups), sizes)
    if shuffle_rows:
        gen = rng.permutation(gen)
    if shared_x:
        step = pd.Series(gen).groupby(gen).cumcount().to_numpy() / (sizes[gen] - 1)
        x = x_range[0] + (x_range[1] - x_range[0]) * step
    else:
        x = rng.uniform(*x_range, size=len(gen))
    y = intercept[gen] + slope[gen] * x + rng.normal(0.0, t["error_sigma"], size=len(gen))
    # Codes as any loader builds them (order of first appearance); the unsorted names
    # go to the groups in that order, so dataset.labels is never sorted.
    codes, order = pd.factorize(gen, sort=False)
    full_truth = {
        **{k: float(v) for k, v in t.items()},
        "intercept": intercept[order],
        "slope": slope[order],
    }
    return Dataset(
        y,
        x,
        codes,
        names,
        source=f"framework.testing.simulated_dataset(seed={seed})",
        truth=full_truth,
    )
