"""Forecasts: the posterior predictive of y at a given x for a group, computed in the core.

For a group in the data, draw d gives y ~ Normal(intercept_d + slope_d x, error_sigma_d).
For a group not in the data, the group effects are drawn from the population, so
y ~ Normal(intercept_mu_d + slope_mu_d x, sqrt(intercept_sigma_d^2 + slope_sigma_d^2 x^2
+ error_sigma_d^2)). Either way the predictive is an equal-weight mixture of normals
over draws; its mean, sd and quantiles are computed exactly from it (no extra
random numbers), so the same posterior always gives the same forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .errors import UserError

PROBS = (0.05, 0.5, 0.95)


def predictive_components(idata, group: str, x: float, new_groups: str = "population"):
    """Per-draw means and sds of the predictive mixture, and where they came from."""
    post = idata.posterior
    labels = [str(g) for g in post.coords["group"].values]

    def flat(name):
        return np.asarray(post[name].values, dtype=float).reshape(-1, *post[name].shape[2:])

    sigma = flat("error_sigma")
    if group in labels:
        j = labels.index(group)
        means = flat("intercept")[:, j] + flat("slope")[:, j] * x
        return means, sigma, "fitted"
    if new_groups == "error":
        raise UserError(
            f"group '{group}' is not in the data; known groups include {', '.join(labels[:10])}"
        )
    means = flat("intercept_mu") + flat("slope_mu") * x
    sds = np.sqrt(flat("intercept_sigma") ** 2 + (flat("slope_sigma") * x) ** 2 + sigma**2)
    return means, sds, "population"


def mixture_quantiles(
    means: np.ndarray, sds: np.ndarray, probs=PROBS, tol: float = 1e-10
) -> np.ndarray:
    """Quantiles of an equal-weight mixture of normals, by bisection on its CDF."""
    probs = np.asarray(probs, dtype=float)
    lo = np.full(probs.shape, np.min(means - 12 * sds))
    hi = np.full(probs.shape, np.max(means + 12 * sds))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        cdf = ndtr((mid[:, None] - means[None, :]) / sds[None, :]).mean(axis=1)
        below = cdf < probs
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(hi - lo <= tol * (1 + np.abs(mid))):
            break
    return 0.5 * (lo + hi)


def forecast(idata, group: str, x: float, new_groups: str = "population") -> dict:
    """One forecast row: group, x, source, mean, sd, q5, q50, q95."""
    means, sds, source = predictive_components(idata, str(group), float(x), new_groups)
    mean = means.mean()
    sd = np.sqrt(np.mean(sds**2 + means**2) - mean**2)
    q5, q50, q95 = mixture_quantiles(means, sds)
    return {
        "group": str(group),
        "x": float(x),
        "source": source,
        "mean": mean,
        "sd": sd,
        "q5": q5,
        "q50": q50,
        "q95": q95,
    }


def forecast_table(idata, requests, new_groups: str = "population") -> pd.DataFrame:
    """Forecasts for (group, x) pairs as a table (empty, with its columns, for none)."""
    rows = [forecast(idata, g, x, new_groups) for g, x in requests]
    columns = ["group", "x", "source", "mean", "sd", "q5", "q50", "q95"]
    return pd.DataFrame(rows, columns=columns)
