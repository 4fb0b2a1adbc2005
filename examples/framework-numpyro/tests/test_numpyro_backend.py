"""framework-numpyro proves itself with framework's own conformance suite."""

from __future__ import annotations

import numpy as np
import pytest

import framework
from framework.testing import CASES, simulated_problem
from framework.testing.conformance import BackendConformance


class TestNumpyroConformance(BackendConformance):
    """Every conformance check, run on this plugin (found through its entry point)."""

    backend_name = "numpyro"


@pytest.mark.parametrize("case", sorted(CASES))
def test_loglik_matches_framework_reference(case):
    """The JAX marginal likelihood equals framework.marginal_loglik (the NumPy reference)."""
    import jax
    from numpyro.infer.util import log_density

    from framework_numpyro import _distribution, _model

    jax.config.update("jax_enable_x64", True)
    model, dataset = simulated_problem(case, n_groups=5, rows_per_group=6, seed=3)
    rng = np.random.default_rng(0)
    beta = rng.normal(size=model.n_terms)
    sd = rng.uniform(0.5, 2.0, model.n_group_terms)
    point = {f"beta[{t}]": b for t, b in zip(model.term_names, beta, strict=True)}
    point |= {f"group_sd[{t}]": v for t, v in zip(model.group_term_names, sd, strict=True)}
    point["sigma"] = 1.1
    flat = {n: framework.Prior("uniform", (-100.0, 100.0)) for n in point}
    priors = {n: _distribution(n, p) for n, p in flat.items()}
    pooled = {k: np.asarray(v) for k, v in vars(framework.designs(model, dataset.stats)).items()}
    corr = None
    if model.correlated:
        # LKJ(1) on 2 x 2 is uniform on the correlation: its log density is a constant.
        chol = np.array([[1.0, 0.0], [0.3, np.sqrt(1 - 0.09)]])
        point["corr_cholesky"] = chol
        corr = chol @ chol.T
    got, _ = log_density(_model, (model, priors, pooled), {}, point)
    prior_part = sum(float(flat[n].logpdf(v)) for n, v in point.items() if n in flat)
    expected = framework.marginal_loglik(
        model, dataset.stats, beta=beta, group_sd=sd, sigma=1.1, group_corr=corr
    )
    if model.correlated:
        from numpyro.distributions import LKJCholesky

        prior_part += float(LKJCholesky(2, model.corr_prior.eta).log_prob(point["corr_cholesky"]))
    # Same formula in float64 on both sides: agreement to rounding error.
    assert float(got) == pytest.approx(float(expected) + prior_part, rel=1e-10)


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
    got = float(_distribution("sigma", prior).log_prob(value))
    if family == "half_student_t":
        expected = float(prior.logpdf(value)) + np.log(2.0)  # framework's is up to that constant
    else:
        expected = float(prior.logpdf(value))
    assert got == pytest.approx(expected, rel=1e-6)


def test_unknown_prior_family_is_refused():
    from framework_numpyro import _distribution

    with pytest.raises(framework.BackendError, match="cannot express a von_mises prior"):
        _distribution("beta[x]", framework.Prior("von_mises", (0.0, 1.0)))
