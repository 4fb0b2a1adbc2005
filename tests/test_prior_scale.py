"""The data stage's warnings about priors and terms, on columns of very different scales."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.data.load import read_file
from framework.model.prior_scale import prior_scale_warnings


def _warnings(tmp_path, columns: dict, formula: str) -> list[str]:
    path = tmp_path / "data.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    model, dataset = read_file(path, formula, keep_rows=False)
    return prior_scale_warnings(model, dataset.stats)


def test_a_tiny_column_with_a_large_coefficient_is_judged_on_its_own_scale(tmp_path):
    # x in micro-units (sd 1e-5) beside z in thousands (sd 1e4): unscaled least squares cut x
    # off and put its coefficient near 0, inside normal(0, 100); the data put it near 1e5.
    rng = np.random.default_rng(0)
    n, groups = 600, 20
    x, z = rng.normal(0, 1e-5, n), rng.normal(0, 1e4, n)
    g = np.repeat([f"g{i}" for i in range(groups)], n // groups)
    y = 1.0 + 9.5e4 * x + 2e-3 * z + rng.normal(0, 0.1, n)
    found = _warnings(tmp_path, {"y": y, "x": x, "z": z, "g": g}, "y ~ x + z + (1 | g)")
    assert len(found) == 1, found
    assert "model.priors.beta: the data put beta[x] near 9.4" in found[0], found  # 9.45e4 ± 400


def test_a_group_term_varying_on_a_small_scale_is_not_called_constant(tmp_path):
    # w varies within every group, on a scale of 1e-8 next to x's 1e4: still a slope.
    rng = np.random.default_rng(1)
    n, groups = 400, 20
    g = np.repeat([f"g{i}" for i in range(groups)], n // groups)
    x, w = rng.normal(0, 1e4, n), rng.normal(0, 1e-8, n)
    y = 1e-4 * x + 1e6 * w + rng.normal(0, 1.0, n)
    columns = {"y": y, "x": x, "w": w, "g": g}
    found = _warnings(tmp_path, columns, "y ~ x + w + (1 + w + x || g)")
    assert not any("never varies" in line for line in found), found
    # A column that is constant within each group is still named.
    columns["c"] = np.repeat(rng.normal(0, 1e-8, groups), n // groups)
    found = _warnings(tmp_path, columns, "y ~ x + c + (1 + c || g)")
    assert found and "c never varies within a group of g" in found[0], found
