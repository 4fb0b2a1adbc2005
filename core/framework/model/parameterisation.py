"""Choosing how the core resolves `auto`: the method and the parameterisation."""

from __future__ import annotations

import numpy as np

from ..errors import BackendError
from .statistics import GroupStats


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


def resolve_parameterisation(requested: str, model, stats: GroupStats) -> str:
    """`auto`: centred when the data pin each group's effects down better than the population does.

    From per-group least squares on the group terms: the ratio of the
    between-group variance of the estimates to their sampling variance. Above
    1 for every group term the likelihood dominates each group's posterior,
    and the centred form samples best (Betancourt and Girolami, 2015); below
    it, the non-centred form avoids the funnel.
    """
    if requested != "auto":
        return requested
    p, z = model.n_terms, model.group_term_index
    n, zbar = stats.n, stats.mean[:, z]
    ztz = stats.cross[:, z][:, :, z] + n[:, None, None] * zbar[:, :, None] * zbar[:, None, :]
    zty = stats.cross[:, z, p] + (n * stats.mean[:, p])[:, None] * zbar
    with np.errstate(all="ignore"):
        det = np.linalg.det(ztz)
        scale = np.prod(np.diagonal(ztz, axis1=1, axis2=2), axis=1)
        ok = (n > len(z) + 1) & (det > 1e-10 * np.maximum(scale, 1e-300))
    if ok.sum() < 2:
        return "non_centred"
    inv = np.linalg.inv(ztz[ok])
    estimate = np.einsum("gab,gb->ga", inv, zty[ok])
    yty = stats.cross[ok, p, p] + n[ok] * stats.mean[ok, p] ** 2
    rss = yty - np.einsum("ga,ga->g", estimate, zty[ok])
    s2 = max(float(np.sum(rss) / max(np.sum(n[ok] - len(z)), 1)), 1e-300)
    sampling_var = s2 * np.diagonal(inv, axis1=1, axis2=2)
    between = np.var(estimate, axis=0, ddof=1) - sampling_var.mean(0)
    return "centred" if np.min(between / sampling_var.mean(0)) > 1 else "non_centred"
