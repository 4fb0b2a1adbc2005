"""Roughly where each hyperparameter's posterior lies, on Stan's unconstrained scale.

The marginal program samples each hyperparameter's unconstrained value u as
u = centre + scale * z (Stan's offset and multiplier), with centre and scale
estimated here from the group statistics. Chains then start near the posterior
and the sampler's initial unit metric fits it, however narrow many rows make
it (W3: 10 million rows, posterior sds from 2e-4 to 5e-2 apart). Only the
sampler's coordinates change, never the posterior, so rough estimates are fine.
"""

from __future__ import annotations

import math

import numpy as np

from framework import FAMILIES, HYPERPARAMETERS

# The widest log-scale sd assumed for a scale hyperparameter (a barely identified sigma).
MAX_LOG_SD = 2.0


def centre_and_scale(stats, priors: dict) -> tuple[list[float], list[float]]:
    """Per hyperparameter (in HYPERPARAMETERS order): centre and scale of its unconstrained value."""
    estimate, sd = _moments(stats)
    centres, scales = [], []
    for name in HYPERPARAMETERS:
        centre, scale = _unconstrained(priors[name], estimate[name], sd[name])
        # A scale below the centre's rounding step would leave the sampler unable to move.
        scale = max(scale, 1e-12 * abs(centre))
        if not (math.isfinite(centre) and math.isfinite(scale) and scale > 0):
            centre, scale = 0.0, 1.0  # Stan's own starting region
        centres.append(float(centre))
        scales.append(float(scale))
    return centres, scales


def _moments(stats) -> tuple[dict, dict]:
    """Estimates and approximate posterior sds on the natural scale, from per-group OLS fits."""
    n, xbar, ybar = stats.n, stats.xbar, stats.ybar
    with np.errstate(all="ignore"):
        ok = (n >= 3) & (stats.sxx > 1e-12 * np.maximum(n * xbar**2, 1.0))
    if ok.sum() < 2:
        return _rough(stats)
    n, xbar, ybar = n[ok], xbar[ok], ybar[ok]
    sxx, sxy, syy = stats.sxx[ok], stats.sxy[ok], stats.syy[ok]
    k, dof = int(ok.sum()), float(np.sum(n - 2))
    slope = sxy / sxx
    intercept = ybar - slope * xbar
    s2 = max(float(np.sum(syy - sxy * slope)) / dof, 1e-300)
    # Each group's OLS estimates scatter by the group effects plus their own sampling noise.
    noise = {
        "intercept": float(np.mean(s2 * (1 / n + xbar**2 / sxx))),
        "slope": float(np.mean(s2 / sxx)),
    }
    estimate, sd = {"error_sigma": math.sqrt(s2)}, {"error_sigma": math.sqrt(s2 / (2 * dof))}
    for part, values in (("intercept", intercept), ("slope", slope)):
        spread = float(np.var(values))
        # Method of moments, floored at what k groups could just detect.
        tau2 = max(spread - noise[part], noise[part] * math.sqrt(2 / k), 1e-300)
        estimate[f"{part}_mu"] = float(np.mean(values))
        sd[f"{part}_mu"] = math.sqrt((tau2 + noise[part]) / k)
        tau = math.sqrt(tau2)
        log_sd = min((tau2 + noise[part]) / (tau2 * math.sqrt(2 * k)), MAX_LOG_SD)
        estimate[f"{part}_sigma"], sd[f"{part}_sigma"] = tau, tau * log_sd
    return estimate, sd


def _rough(stats) -> tuple[dict, dict]:
    """Too few groups with a slope of their own: means and spreads only, wide sds."""
    ybar = stats.ybar
    spread = float(np.std(ybar)) if len(ybar) > 1 else 0.0
    within = float(np.sum(stats.syy) / max(np.sum(stats.n - 1), 1))
    sigma = math.sqrt(within) if within > 0 else (spread or 1.0)
    tau = spread or sigma
    estimate = {
        "intercept_mu": float(np.mean(ybar)),
        "intercept_sigma": tau,
        "slope_mu": 0.0,
        "slope_sigma": tau,
        "error_sigma": sigma,
    }
    sd = {"intercept_mu": tau, "slope_mu": tau, "intercept_sigma": tau, "slope_sigma": tau}
    sd["error_sigma"] = sigma
    return estimate, sd


def _unconstrained(prior, estimate: float, sd: float) -> tuple[float, float]:
    """Centre and scale after Stan's transform for the prior's support (identity, log, logit)."""
    support = FAMILIES[prior.family].support
    if support == "real":
        return estimate, sd
    if support == "positive":
        x = max(estimate, 1e-300)
        return math.log(x), min(sd / x, MAX_LOG_SD)
    lower, upper = prior.bounds
    width = upper - lower
    # Near a bound the logit behaves like a log: the same cap on its sd as for a log.
    x = min(max(estimate, lower + 1e-9 * width), upper - 1e-9 * width)
    scale = sd * width / ((x - lower) * (upper - x))
    return math.log((x - lower) / (upper - x)), min(scale, MAX_LOG_SD)
