"""Per-group summaries computed exactly from the hyperparameter draws, without drawing any group.

Given draw d of the hyperparameters, a Gaussian model's group coefficients
are exactly N(m_dg, V_dg) (`conditional_moments`), so their posterior is the
equal-weight mixture over draws: mean = average of m, variance = average of
V plus the variance of m across draws, quantiles where the mixture's CDF
F(x) = mean_d Phi((x - m_d) / s_d) equals p.

Quantiles to within QUANTILE_TOL mixture sds, two ways: a third-order series
(`mixture_series`) where its remainder bound proves it, which is nearly every
group when the hyperparameters are well determined (many groups); Newton on
the exact CDF, safeguarded by bisection, for every other group.

Groups that share a design (a balanced panel is one design) share V_d, and
their means are affine in Z'y: m_dg = u_d + M_d Z'y_g, one matrix product.
Work runs a chunk of groups at a time, so memory stays at a chunk of draws x
groups however many groups there are; no random numbers are used.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from ..model.gaussian_marginal import conditional_moments, designs
from ..model.model import COEF
from ..model.statistics import GroupStats
from ..parallel import map_on_cores
from .mixture_series import QUANTILE_TOL, SQRT_2PI, pooled_series_quantiles, series_quantiles

# Draws x groups per chunk: the temporaries stay in tens of MB.
CHUNK_VALUES = 1_000_000
# Newton stops when its step is below STEP_TOL sds: its error after that step is about
# the step squared (quadratic convergence), well inside QUANTILE_TOL.
STEP_TOL = 1e-5
MAX_ITER = 100
POOLED_CHUNK = 50_000  # groups per task when pooled: no draws x groups array, less overhead
POOL_MIN_GROUPS = 16  # pool by design only when designs hold this many groups on average


def hyperparameter_draws(idata, model) -> dict[str, np.ndarray]:
    """The posterior's variables other than `coef`, chain and draw flattened: (S, ...)."""
    out = {}
    for name in model.variables():
        if name != COEF:
            values = np.asarray(idata.posterior[name].values, dtype=np.float64)
            out[name] = values.reshape((-1, *values.shape[2:]))
    return out


def mixture_summaries(model, stats: GroupStats, params: dict, probs, chunk: int | None = None):
    """(2 + P, J, q): each group's and term's mixture mean, sd and quantiles at `probs`."""
    n_draws = len(params["beta"])
    n_groups, q = stats.n_groups, model.n_group_terms
    out = np.empty((2 + len(probs), n_groups, q))
    size = chunk or max(1, CHUNK_VALUES // n_draws)
    pooled = _pooled_means(model, stats, params)
    if pooled is None:
        tasks = [np.arange(s, min(s + size, n_groups)) for s in range(0, n_groups, size)]
    else:
        order = np.argsort(pooled[0], kind="stable")
        bounds = np.flatnonzero(np.diff(pooled[0][order])) + 1
        tasks = [
            part[s : s + POOLED_CHUNK]
            for part in np.split(order, bounds)
            for s in range(0, len(part), POOLED_CHUNK)
        ]

    def summarise(index: np.ndarray) -> None:
        if pooled is None:
            means, cov = conditional_moments(model, stats.take(index), **params)
        else:
            design, u, slope, cov_d, zty = pooled
            k = design[index[0]]
            zty_t = np.ascontiguousarray(zty[index].T)
        for t in range(q):
            if pooled is None:
                out[:, index, t] = term_summaries(means[..., t], np.sqrt(cov[..., t, t]), probs)
            else:
                line = (u[k][:, t], slope[k][:, t, :], cov_d[k][:, t, t])
                out[:, index, t] = pooled_term_summaries(*line, zty_t, probs)

    map_on_cores(summarise, tasks)
    return out


def _pooled_means(model, stats: GroupStats, params: dict):
    """Per design: u (S, q), M (S, q, q) and V (S, q, q) with m_g = u + M Z'y_g; None if unpooled."""
    if stats.n_groups < POOL_MIN_GROUPS:
        return None
    d = designs(model, stats)
    if d.n_designs * POOL_MIN_GROUPS > stats.n_groups:
        return None
    p, z = model.n_terms, model.group_term_index
    # Z'y = Szy + n zbar ybar, from the centred statistics.
    zty = stats.cross[:, z, p] + (stats.n * stats.mean[:, p])[:, None] * stats.mean[:, z]
    _, lead = np.unique(d.design, return_index=True)
    s2 = np.asarray(params["sigma"], float).reshape(-1, 1, 1) ** 2
    u, slope, cov = [], [], []
    for g in lead:  # the design's first group stands for all of its groups' A and u
        mean, v = conditional_moments(model, stats.take([g]), **params)
        m = v[:, 0] / s2  # A^-1 / sigma^2
        slope.append(m)
        u.append(mean[:, 0] - m @ zty[g])
        cov.append(v[:, 0])
    return d.design, u, slope, cov, zty


def term_summaries(means: np.ndarray, sds: np.ndarray, probs) -> np.ndarray:
    """(2 + P, N): mean, sd and quantiles of N normal mixtures, components along axis 0.

    `sds` is (S, N) or (S, 1) (one design: every group's components share their sds).
    """
    centre = means.mean(0)
    a = means - centre
    var_s = np.mean(sds * sds, 0)
    spread = np.sqrt(var_s + np.mean(a * a, 0))  # law of total variance, no cancellation
    quantiles, proven = series_quantiles(a, sds, centre, var_s, spread, probs)
    if not proven.all():
        pick = np.flatnonzero(~proven)
        s = sds[:, pick] if sds.shape[1] > 1 else np.broadcast_to(sds, (len(sds), len(pick)))
        quantiles[:, pick] = mixture_quantiles(means[:, pick], s, probs)
    return np.vstack([centre, spread, quantiles])


def pooled_term_summaries(u, slope, var, zty, probs) -> np.ndarray:
    """(2 + P, G) for groups of one design: component means u_d + slope_d . Z'y_g, variances var_d."""
    centre, spread, quantiles, proven = pooled_series_quantiles(u, slope, var, zty, probs)
    unproven = np.flatnonzero(~proven)
    size = max(1, CHUNK_VALUES // len(u))

    def newton(pick: np.ndarray) -> None:  # draws x groups only for these, a chunk at a time
        means = u[:, None] + slope @ zty[:, pick]
        sds = np.broadcast_to(np.sqrt(var)[:, None], means.shape)
        quantiles[:, pick] = mixture_quantiles(means, sds, probs)

    # A group's Newton steps do not depend on its chunk's other groups, so chunks run on all
    # cores (scipy's ndtr holds the GIL; the rest of each step overlaps it).
    map_on_cores(newton, [unproven[s : s + size] for s in range(0, len(unproven), size)])
    return np.vstack([centre, spread, quantiles])


def mixture_quantiles(means: np.ndarray, sds: np.ndarray, probs) -> np.ndarray:
    """Quantiles (P, N) of N equal-weight normal mixtures by Newton on the exact CDF.

    Components along axis 0 (S, N). Safeguarded: a step that leaves the bracket
    [lo, hi] (where the CDF is below / above p) is a bisection instead, so it
    always converges; near-normal mixtures need two or three CDF evaluations.
    """
    means, sds = np.asarray(means, float), np.asarray(sds, float)
    # Sds shared by every group (a broadcast view) stay one column: the same products.
    column = sds[:, :1] if sds.strides[1] == 0 else sds
    centre = means.mean(0)
    a = means - centre  # means.var(0) by numpy's own steps, reusing the mean
    spread_m = np.multiply(a, a, out=a).sum(0) / len(means)
    mean_v = np.add.reduce(np.broadcast_to(column * column, means.shape), axis=0) / len(means)
    spread = np.sqrt(mean_v + spread_m)
    lower = (means - 12 * column).min(0)
    upper = (means + 12 * column).max(0)
    out = np.empty((len(probs), means.shape[1]))
    for k, p in enumerate(probs):
        x = np.clip(centre + ndtri(p) * spread, lower, upper)
        lo, hi = lower.copy(), upper.copy()
        active = np.arange(means.shape[1])
        m, s = means, column
        z, t = np.empty_like(m), np.empty_like(m)
        for _ in range(MAX_ITER):
            # (x - m) / s, Phi(z) and exp(-z^2 / 2) / s in two reused buffers, operation for
            # operation as written out: the same numbers without a temporary per step.
            xa = x[active]
            np.divide(np.subtract(xa, m, out=z), s, out=z)
            cdf = ndtr(z, out=t).mean(0)
            np.multiply(z, -0.5, out=t)
            t *= z
            pdf = np.divide(np.exp(t, out=t), s, out=t).mean(0) / SQRT_2PI
            below = cdf < p
            lo[active] = np.where(below, xa, lo[active])
            hi[active] = np.where(below, hi[active], xa)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = xa - (cdf - p) / pdf
            outside = ~((new > lo[active]) & (new < hi[active]))
            new = np.where(outside, 0.5 * (lo[active] + hi[active]), new)
            tol = STEP_TOL * spread[active]
            done = (~outside & (np.abs(new - xa) <= tol)) | (
                hi[active] - lo[active] <= QUANTILE_TOL * spread[active]
            )
            x[active] = new
            if done.all():
                break
            keep = ~done
            active, m = active[keep], m[:, keep]
            s = s if sds.strides[1] == 0 else s[:, keep]
            z, t = np.empty_like(m), np.empty_like(m)
        out[k] = x
    return out


def saved_stats(idata, model, group: int | None = None) -> GroupStats:
    """The per-group statistics a posterior carries (or its rows reduce to); one group if given."""
    data = idata.constant_data
    if "n" in data:
        pick = slice(None) if group is None else [group]
        return GroupStats(
            np.asarray(data["n"].values[pick], float),
            np.asarray(data["mean"].values[pick], float),
            np.asarray(data["cross"].values[pick], float),
        )
    codes = np.asarray(data["group"].values, dtype=np.int64)
    columns = np.column_stack([data["X"].values, idata.observed_data["y"].values])
    if group is None:
        return GroupStats.from_rows(codes, columns, len(idata.posterior.coords["group"]))
    rows = codes == group
    return GroupStats.from_rows(np.zeros(int(rows.sum()), np.int64), columns[rows], 1)
