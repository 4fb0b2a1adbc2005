"""Method "marginal": the five hyperparameters under prior x marginal likelihood, in PyMC.

Bambi cannot express a likelihood with the group effects integrated out, so the
model is written directly: five PyMC priors and a `pm.Potential` holding the
marginal log-likelihood in PyTensor (term for term the formula of
`framework.group_effects`, with the six per-group statistics as constants).
The group effects are then drawn exactly with `framework.draw_group_effects`.
"""

from __future__ import annotations

import numpy as np

from framework import HYPERPARAMETERS, draw_group_effects
from framework.group_effects import LOG_2PI

from . import engine
from .priors import pymc_variable

# Seeds the group-effect draws, apart from the sampler's own use of settings.seed.
_GROUP_EFFECTS_STREAM = 1


def marginal_loglik(stats, *, intercept_mu, intercept_sigma, slope_mu, slope_sigma, error_sigma):
    """PyTensor twin of `framework.marginal_loglik` for scalar hyperparameters (summed over groups)."""
    import pytensor.tensor as pt

    n, xbar, ybar, sxx, sxy, syy = (
        pt.constant(np.asarray(v, dtype=np.float64))
        for v in (stats.n, stats.xbar, stats.ybar, stats.sxx, stats.sxy, stats.syy)
    )
    mu0, mu1 = intercept_mu, slope_mu
    s2 = error_sigma**2
    # As in framework.group_effects._terms: residual of the group means, then centred parts.
    m = ybar - mu0 - mu1 * xbar
    sxy_r = sxy - mu1 * sxx
    rr = syy - 2 * mu1 * sxy + mu1**2 * sxx + n * m**2
    xr0 = n * m
    xr1 = sxy_r + xbar * n * m
    a11 = 1 / intercept_sigma**2 + n / s2
    a12 = n * xbar / s2
    a22 = 1 / slope_sigma**2 + (sxx + n * xbar**2) / s2
    b0, b1 = xr0 / s2, xr1 / s2
    det_a = a11 * a22 - a12**2
    quad = rr / s2 - (a22 * b0**2 - 2 * a12 * b0 * b1 + a11 * b1**2) / det_a
    log_det_d = 2 * pt.log(intercept_sigma) + 2 * pt.log(slope_sigma)
    per_group = -0.5 * (n * LOG_2PI + n * pt.log(s2) + log_det_d + pt.log(det_a) + quad)
    return per_group.sum()


def build_model(problem):
    """The PyMC model: five named hyperparameters and the marginal likelihood as a potential."""
    import pymc as pm

    with pm.Model() as model:
        hyper = {name: pymc_variable(name, problem.priors[name]) for name in HYPERPARAMETERS}
        pm.Potential("marginal_loglik", marginal_loglik(problem.dataset.stats, **hyper))
    return model


def group_effects_seed(seed: int) -> np.random.SeedSequence:
    """The group effects' seed, derived from the run's seed (same seed, same draws)."""
    return np.random.SeedSequence(int(seed), spawn_key=(_GROUP_EFFECTS_STREAM,))


def fit(problem, settings, options) -> tuple[dict, dict, engine.Draws]:
    """Sample the hyperparameters, then draw the group effects; arrays shaped (chain, draw[, group])."""
    sampler = options["sampler"]
    model = build_model(problem)
    problem.report(
        f"pymc: compiling and sampling the marginal model with {sampler} "
        f"({settings.chains} chains x {settings.warmup} warmup + {settings.draws} draws)"
    )
    draws = engine.sample(model, list(HYPERPARAMETERS), sampler, settings, options)
    hyper = {
        name: np.asarray(draws.posterior[name].values, dtype=np.float64) for name in HYPERPARAMETERS
    }
    engine.check_finite(hyper, sampler)
    problem.report(f"pymc: sampled in {draws.sampling_seconds:.1f} s; drawing the group effects")
    rng = np.random.default_rng(group_effects_seed(settings.seed))
    intercept, slope = draw_group_effects(problem.dataset.stats, **hyper, seed=rng)
    groups = {"intercept": intercept, "slope": slope}
    engine.check_finite(groups, sampler)
    return hyper, groups, draws
