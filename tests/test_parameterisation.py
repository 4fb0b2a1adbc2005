"""How the core resolves `auto`: the method by backend, the parameterisation by the data."""

from __future__ import annotations

import numpy as np
import pytest

from framework import BackendError, Column, GroupStats, build_model
from framework.model.parameterisation import resolve_method, resolve_parameterisation

COLUMNS = {
    "y": Column("y", "numeric"),
    "x": Column("x", "numeric"),
    "x2": Column("x2", "numeric"),
    "g": Column("g", "categorical"),
}
INDEPENDENT = build_model("y ~ x + (x || g)", COLUMNS)
# Two group terms with correlated effects, and a fixed predictor that is not a group term.
CORRELATED = build_model("y ~ x + x2 + (x | g)", COLUMNS)


def _stats(model, groups, rows, intercept_sigma, slope_sigma, error_sigma, corr=0.0, seed=0):
    """Per-group statistics of rows drawn from `model` with the given spreads."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(groups), rows)
    x = np.tile(np.linspace(0, 10, rows), groups)
    columns = {"x": x, "x2": rng.normal(size=len(x))}
    design = model.design({k: v for k, v in columns.items() if k in model.columns})
    sd = np.array([intercept_sigma, slope_sigma])
    cov = sd[:, None] * np.array([[1, corr], [corr, 1]]) * sd[None, :]
    effects = rng.multivariate_normal([0, 0], cov, size=groups)
    beta = np.linspace(20, 1, model.n_terms)
    y = design @ beta + effects[codes, 0] + effects[codes, 1] * x
    y = y + rng.normal(0, error_sigma, len(x))
    return GroupStats.from_rows(codes, np.column_stack([design, y]), groups)


@pytest.mark.parametrize("model, corr", [(INDEPENDENT, 0.0), (CORRELATED, 0.6)])
def test_informative_groups_get_the_centred_form(model, corr):
    # W2-like: 100 rows per group pin each group's line down far better than the population spread.
    stats = _stats(model, 200, 100, 5, 0.5, 5, corr)
    assert resolve_parameterisation("auto", model, stats) == "centred"


@pytest.mark.parametrize("model, corr", [(INDEPENDENT, 0.0), (CORRELATED, 0.6)])
def test_weak_groups_get_the_non_centred_form(model, corr):
    # 4 noisy rows per group against a tight population: the funnel case.
    stats = _stats(model, 200, 4, 0.5, 0.05, 5, corr)
    assert resolve_parameterisation("auto", model, stats) == "non_centred"


def test_one_weak_group_term_is_enough_for_the_non_centred_form():
    # Intercepts well identified, slopes barely vary: the slope's funnel decides.
    stats = _stats(CORRELATED, 200, 6, 10, 0.001, 5, 0.3)
    assert resolve_parameterisation("auto", CORRELATED, stats) == "non_centred"


@pytest.mark.parametrize("model", [INDEPENDENT, CORRELATED])
def test_degenerate_data_falls_back_to_non_centred_and_explicit_choices_win(model):
    # One row per group: no group's effects can be estimated on their own.
    rows = np.column_stack([model.design({"x": np.arange(5.0), "x2": np.ones(5)}), np.arange(5.0)])
    single_rows = GroupStats.from_rows(np.arange(5), rows, 5)
    assert resolve_parameterisation("auto", model, single_rows) == "non_centred"
    assert resolve_parameterisation("centred", model, single_rows) == "centred"


class _Backend:
    name = "b"

    def __init__(self, methods):
        self.methods = methods


def test_method_auto_prefers_the_exact_marginal_and_refuses_the_unsupported():
    assert resolve_method("auto", _Backend(("full", "marginal"))) == "marginal"
    assert resolve_method("auto", _Backend(("full",))) == "full"
    with pytest.raises(BackendError, match="does not support method 'marginal'"):
        resolve_method("marginal", _Backend(("full",)))
