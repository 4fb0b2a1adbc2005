"""framework-numpyro proves itself with framework's own conformance suite."""

from __future__ import annotations

import numpy as np
import pytest

import framework
from framework.testing.conformance import BackendConformance


class TestNumpyroConformance(BackendConformance):
    """Every conformance check, run on this plugin (found through its entry point)."""

    backend_name = "numpyro"


def test_loglik_matches_framework_reference():
    """The JAX marginal likelihood equals framework.marginal_loglik (the NumPy reference)."""
    import jax
    from numpyro.infer.util import log_density

    from framework.testing import simulated_dataset
    from framework_numpyro import _distribution, _model

    jax.config.update("jax_enable_x64", True)
    stats = simulated_dataset(n_groups=5, rows_per_group=6, seed=3).stats
    point = {"intercept_mu": 1.5, "slope_mu": -0.3, "intercept_sigma": 2.0,
             "slope_sigma": 0.7, "error_sigma": 1.1}  # fmt: skip
    flat = {n: framework.Prior("uniform", (-100.0, 100.0)) for n in point}
    priors = {n: _distribution(n, p) for n, p in flat.items()}
    got, _ = log_density(_model, (priors, {k: np.asarray(v) for k, v in stats.as_dict().items()}),
                         {}, point)  # fmt: skip
    prior_part = sum(float(flat[n].logpdf(v)) for n, v in point.items())
    expected = framework.marginal_loglik(stats, **point) + prior_part
    # Same formula in float64 on both sides: agreement to rounding error.
    assert float(got) == pytest.approx(float(expected), rel=1e-10)


@pytest.mark.parametrize("family", sorted(framework.FAMILIES))
def test_every_family_has_a_numpyro_distribution(family):
    from framework_numpyro import _distribution

    args = {"uniform": (0.0, 10.0)}.get(
        family, (3.0, 0.0, 1.0)[: len(framework.FAMILIES[family].params)]
    )
    prior = framework.Prior(
        family, tuple(abs(a) + 1.0 for a in args) if family != "uniform" else args
    )
    value = 1.3
    got = float(_distribution("error_sigma", prior).log_prob(value))
    if family == "half_student_t":
        expected = float(prior.logpdf(value)) + np.log(2.0)  # framework's is up to that constant
    else:
        expected = float(prior.logpdf(value))
    assert got == pytest.approx(expected, rel=1e-6)


def test_unknown_prior_family_is_refused():
    from framework_numpyro import _distribution

    with pytest.raises(framework.BackendError, match="cannot express a von_mises prior"):
        _distribution("intercept_mu", framework.Prior("von_mises", (0.0, 1.0)))
