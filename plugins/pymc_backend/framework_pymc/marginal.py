"""Method "marginal": the five hyperparameters under prior x marginal likelihood, in PyMC.

Bambi cannot express a likelihood with the group effects integrated out, so the
model is written directly: five PyMC priors and a `pm.Potential` holding the
marginal log-likelihood in PyTensor (term for term the formula of
`framework.group_effects`, with the statistics of each distinct design as constants).
The group effects are then drawn exactly with `framework.draw_group_effects`.
"""

from __future__ import annotations

import numpy as np

from framework import HYPERPARAMETERS, design_stats, draw_group_effects
from framework.group_effects import LOG_2PI

from . import engine
from .priors import pymc_variable

# Seeds the group-effect draws, apart from the sampler's own use of settings.seed.
_GROUP_EFFECTS_STREAM = 1


def marginal_loglik(stats, *, intercept_mu, intercept_sigma, slope_mu, slope_sigma, error_sigma):
    """PyTensor twin of `framework.marginal_loglik` for scalar hyperparameters (summed over groups).

    Written per design (`framework.design_stats`: groups sharing n, xbar and sxx), as the
    Stan backend's program is (its comments give the algebra): a balanced panel costs one term.
    """
    import pytensor.tensor as pt

    d = design_stats(stats)
    groups, n, xbar, sxx, ybar, sxy, ybar_ss, sxy_ss, f_ss = (
        pt.constant(np.asarray(getattr(d, k), dtype=np.float64))
        for k in ("groups", "n", "xbar", "sxx", "ybar", "sxy", "ybar_ss", "sxy_ss", "f_ss")
    )
    n_total = float(np.dot(d.groups, d.n))
    sxy_total, sxx_total = float(np.dot(d.groups, d.sxy)), float(np.dot(d.groups, d.sxx))
    u, v, w = 1 / intercept_sigma**2, 1 / slope_sigma**2, 1 / error_sigma**2
    m = ybar - intercept_mu - slope_mu * xbar
    e = sxy - slope_mu * sxx
    f = e + n * xbar * m
    mm, ee, ff = ybar_ss + groups * m**2, sxy_ss + groups * e**2, f_ss + groups * f**2
    det = u * v + u * w * (sxx + n * xbar**2) + v * w * n + w**2 * n * sxx
    q = (v * n**2 + w * n**2 * sxx) * mm + u * ff + w * n * ee
    rr = d.syy_total - slope_mu * (2 * sxy_total - slope_mu * sxx_total) + (n * mm).sum()
    return -0.5 * (
        n_total * (LOG_2PI - pt.log(w))
        - float(d.groups.sum()) * pt.log(u * v)
        + (groups * pt.log(det)).sum()
        + w * rr
        - w**2 * (q / det).sum()
    )


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
