"""How the core resolves `auto`: the method by backend, the parameterisation by the data."""

from __future__ import annotations

import numpy as np
import pytest

from framework import BackendError, GroupStats
from framework.parameterisation import resolve_method, resolve_parameterisation


def _stats(groups, rows, intercept_sigma, slope_sigma, error_sigma, seed=0):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(groups), rows)
    x = np.tile(np.linspace(0, 10, rows), groups)
    a = rng.normal(20, intercept_sigma, groups)
    b = rng.normal(1, slope_sigma, groups)
    y = a[codes] + b[codes] * x + rng.normal(0, error_sigma, len(x))
    return GroupStats.from_rows(codes, x, y, groups)


def test_informative_groups_get_the_centred_form():
    # W2-like: 100 rows per group pin each group's line down far better than the population spread.
    assert resolve_parameterisation("auto", _stats(200, 100, 5, 0.5, 5)) == "centred"


def test_weak_groups_get_the_non_centred_form():
    # 4 noisy rows per group against a tight population: the funnel case.
    assert resolve_parameterisation("auto", _stats(200, 4, 0.5, 0.05, 5)) == "non_centred"


def test_degenerate_data_falls_back_to_non_centred_and_explicit_choices_win():
    single_rows = GroupStats.from_rows(np.arange(5), np.arange(5.0), np.arange(5.0), 5)
    assert resolve_parameterisation("auto", single_rows) == "non_centred"
    assert resolve_parameterisation("centred", single_rows) == "centred"


class _Backend:
    name = "b"

    def __init__(self, methods):
        self.methods = methods


def test_method_auto_prefers_the_exact_marginal_and_refuses_the_unsupported():
    assert resolve_method("auto", _Backend(("full", "marginal"))) == "marginal"
    assert resolve_method("auto", _Backend(("full",))) == "full"
    with pytest.raises(BackendError, match="does not support method 'marginal'"):
        resolve_method("marginal", _Backend(("full",)))
