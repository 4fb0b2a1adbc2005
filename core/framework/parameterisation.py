"""Choosing how the core resolves `auto`: the method and the parameterisation."""

from __future__ import annotations

import numpy as np

from .errors import BackendError
from .stats import GroupStats


def resolve_method(requested: str, backend) -> str:
    """`auto` is the exact marginal method when the backend has it, else the full model."""
    methods = tuple(backend.methods)
    if requested == "auto":
        return "marginal" if "marginal" in methods else "full"
    if requested not in methods:
        raise BackendError(
            f"sampler.method: backend '{backend.name}' does not support method '{requested}'; "
            f"it supports {', '.join(methods)} (or use auto)"
        )
    return requested


def resolve_parameterisation(requested: str, stats: GroupStats) -> str:
    """`auto`: centred when the data pin each group's effects down better than the population does.

    From per-group least squares: the ratio of the between-group variance of the
    estimates to their sampling variance. Above 1 the likelihood dominates each
    group's posterior, and the centred form samples best (Betancourt and
    Girolami, 2015); below it, the non-centred form avoids the funnel.
    """
    if requested != "auto":
        return requested
    ok = (stats.n >= 3) & (stats.sxx > 0)
    if ok.sum() < 2:
        return "non_centred"
    n, xbar, sxx, sxy, syy = (a[ok] for a in (stats.n, stats.xbar, stats.sxx, stats.sxy, stats.syy))
    slope = sxy / sxx
    intercept = stats.ybar[ok] - slope * xbar
    s2 = max(np.sum(syy - sxy * slope) / max(np.sum(n - 2), 1), 1e-300)
    ratios = []
    for estimate, sampling_var in ((intercept, s2 * (1 / n + xbar**2 / sxx)), (slope, s2 / sxx)):
        between = np.var(estimate, ddof=1) - np.mean(sampling_var)
        ratios.append(between / np.mean(sampling_var))
    return "centred" if min(ratios) > 1 else "non_centred"
