"""The v2 workloads: correlated group effects (W2c) and several predictors (W2p, W2ps).

Simulated from known truth in the common posterior's v2 names and written once
as Parquet under benchmarks/data. W2c is W2's panel (every group observed at the
same x) with a correlated intercept and slope. W2p is a panel too: the 100 rows'
(x1, x2, x3) are drawn once and every group is observed at those same values, as
in W1-W3 (balanced designs, repeated measures); W2ps draws (x1, x2, x3) afresh for
every row, so every group has a design of its own: the general case, which the
fast path cannot pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIGMA = 5.0
ONE = {  # W2c: W2's truth, intercept and slope correlated 0.5
    "formula": "y ~ x + (x | group)",
    "beta": {"Intercept": 20.0, "x": 1.0},
    "group_sd": {"Intercept": 5.0, "x": 0.5},
    "corr": [[1.0, 0.5], [0.5, 1.0]],
}
THREE = {  # W2p, W2ps: x3 is population-level only; Intercept, x1, x2 vary, correlated
    "formula": "y ~ x1 + x2 + x3 + (x1 + x2 | group)",
    "beta": {"Intercept": 20.0, "x1": 1.0, "x2": -0.5, "x3": 2.0},
    "group_sd": {"Intercept": 5.0, "x1": 0.5, "x2": 1.0},
    "corr": [[1.0, 0.5, -0.3], [0.5, 1.0, 0.2], [-0.3, 0.2, 1.0]],
}
# name: (groups, rows per group, truth, panel, seed)
V2 = {
    "W2c": (1000, 100, ONE, True, 6),
    "W2p": (1000, 100, THREE, True, 7),
    "W2ps": (1000, 100, THREE, False, 8),
}


def formula(name: str) -> str:
    return V2[name][2]["formula"]


def predictors(truth: dict, rows: int, size: int, rng) -> dict[str, np.ndarray]:
    """Each predictor's values for `size` rows, on scales like W1's x (0..10)."""
    names = [t for t in truth["beta"] if t != "Intercept"]
    if len(names) == 1:  # W2c: W2's x exactly (0..10 in `rows` steps, per group)
        return {names[0]: np.arange(size, dtype=float) % rows / max(rows / 11, 1)}
    return {
        names[0]: rng.uniform(0.0, 10.0, size),
        names[1]: rng.normal(0.0, 2.0, size),
        names[2]: rng.binomial(1, 0.4, size).astype(float),  # e.g. a treatment indicator
    }


def write(name: str, path: Path) -> None:
    """Simulate the workload from its truth and write it to `path` (Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    groups, rows, truth, panel, seed = V2[name]
    rng = np.random.default_rng(seed)
    sd = np.array(list(truth["group_sd"].values()))
    cov = np.array(truth["corr"]) * np.outer(sd, sd)
    deviations = rng.multivariate_normal(np.zeros(len(sd)), cov, groups)  # (J, q)
    codes = np.repeat(np.arange(groups, dtype=np.int32), rows)
    if panel:  # the same `rows` predictor values in every group
        x = {k: np.tile(v, groups) for k, v in predictors(truth, rows, rows, rng).items()}
    else:
        x = predictors(truth, rows, groups * rows, rng)
    design = {"Intercept": np.ones(len(codes)), **x}
    mean = sum(truth["beta"][t] * design[t] for t in truth["beta"])
    for k, term in enumerate(truth["group_sd"]):
        mean = mean + deviations[codes, k] * design[term]
    y = mean + rng.normal(0.0, SIGMA, len(codes))
    labels = pa.array([f"g{j:05d}" for j in range(groups)])
    table = pa.table(
        {"group": pa.DictionaryArray.from_arrays(pa.array(codes), labels), **x, "y": y}
    )
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
