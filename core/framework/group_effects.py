"""The exact fast path: the Gaussian model with its group effects integrated out.

For group j with design X_j = [1, x], beta_j = (intercept_j, slope_j) ~ N(mu, D),
D = diag(intercept_sigma^2, slope_sigma^2) and residual sd s:

    y_j ~ N(X_j mu, s^2 I + X_j D X_j')

With A = D^-1 + X'X / s^2 (2 x 2) and r = y - X mu (Woodbury and the matrix
determinant lemma):

    log p(y_j) = -n/2 log(2 pi) - n log s - 1/2 log|D| - 1/2 log|A|
                 - 1/2 (r'r / s^2 - b' A^-1 b),   b = X'r / s^2

and beta_j | y, hyperparameters ~ N(mu + A^-1 b, A^-1). Everything needs only
the six statistics of `framework.stats.GroupStats`. Backends sample the five
hyperparameters from this marginal likelihood and call `draw_group_effects` so
that every backend returns the same full posterior.

Each backend writes the log density in its own language (Stan, PyTensor, JAX);
`marginal_loglik` is the NumPy reference they are tested against.
"""

from __future__ import annotations

import numpy as np

from .parallel import map_on_cores
from .stats import GroupStats

LOG_2PI = float(np.log(2 * np.pi))
CHUNK_VALUES = 500_000  # per temporary array in draw_group_effects (4 MB)


def _terms(stats: GroupStats, intercept_mu, intercept_sigma, slope_mu, slope_sigma, error_sigma):
    """A (as a11, a12, a22), b and r'r per group, broadcast over leading draw axes."""
    mu0 = np.asarray(intercept_mu)[..., None]
    mu1 = np.asarray(slope_mu)[..., None]
    s2 = np.asarray(error_sigma)[..., None] ** 2
    n, xbar, ybar = stats.n, stats.xbar, stats.ybar
    # Residual of the group means under mu, then centred parts (no cancellation).
    m = ybar - mu0 - mu1 * xbar
    sxy_r = stats.sxy - mu1 * stats.sxx  # sum (x - xbar) r
    rr = stats.syy - 2 * mu1 * stats.sxy + mu1**2 * stats.sxx + n * m**2
    xr0 = n * m
    xr1 = sxy_r + xbar * n * m
    a11 = 1 / np.asarray(intercept_sigma)[..., None] ** 2 + n / s2
    a12 = n * xbar / s2
    a22 = 1 / np.asarray(slope_sigma)[..., None] ** 2 + (stats.sxx + n * xbar**2) / s2
    return a11, a12, a22, xr0 / s2, xr1 / s2, rr, s2


def marginal_loglik(
    stats: GroupStats, *, intercept_mu, intercept_sigma, slope_mu, slope_sigma, error_sigma
):
    """Log p(y | hyperparameters) summed over groups; broadcasts over draw axes.

    Hyperparameters are keyword-only so that their order can never be mixed up.
    """
    a11, a12, a22, b0, b1, rr, s2 = _terms(
        stats, intercept_mu, intercept_sigma, slope_mu, slope_sigma, error_sigma
    )
    det_a = a11 * a22 - a12**2
    quad = rr / s2 - (a22 * b0**2 - 2 * a12 * b0 * b1 + a11 * b1**2) / det_a
    log_det_d = (
        2 * np.log(np.asarray(intercept_sigma))[..., None]
        + 2 * np.log(np.asarray(slope_sigma))[..., None]
    )
    n = stats.n
    per_group = -0.5 * (n * LOG_2PI + n * np.log(s2) + log_det_d + np.log(det_a) + quad)
    return per_group.sum(axis=-1)


def draw_group_effects(
    stats: GroupStats,
    *,
    intercept_mu,
    intercept_sigma,
    slope_mu,
    slope_sigma,
    error_sigma,
    seed: int | np.random.Generator | None = None,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (intercept, slope) per group from their exact Gaussian conditional.

    Hyperparameters are keyword-only (e.g. `**posterior_dict`), arrays sharing a
    shape such as (chain, draw); the results have that shape plus a trailing
    group axis. Work is done `chunk` draws at a time (by default about
    CHUNK_VALUES values per temporary array), each chunk with its own random
    stream spawned from `seed`, so chunks run on all cores and the draws do not
    depend on how many there are.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    hyper = [
        np.asarray(h, dtype=np.float64)
        for h in (intercept_mu, intercept_sigma, slope_mu, slope_sigma, error_sigma)
    ]
    shape = np.broadcast_shapes(*(h.shape for h in hyper))
    flat = [np.broadcast_to(h, shape).reshape(-1, 1) for h in hyper]
    total = flat[0].shape[0]
    out_a = np.empty((total, stats.n_groups))
    out_b = np.empty((total, stats.n_groups))
    chunk = chunk or max(1, CHUNK_VALUES // max(stats.n_groups, 1))
    starts = range(0, total, chunk)
    streams = rng.spawn(len(starts))
    n, xbar = stats.n, stats.xbar
    nxbar, sx2 = n * xbar, stats.sxx + n * xbar**2

    def draw(start: int, stream: np.random.Generator) -> None:
        sl = slice(start, start + chunk)
        mu0, sa, mu1, sb, se = (h[sl] for h in flat)
        w = 1 / se**2
        m = stats.ybar - mu0 - mu1 * xbar  # mean residual of each group under mu
        wn = w * n
        # A = D^-1 + X'X / s^2 and b = X'r / s^2 (see the module docstring), per draw and group.
        a11, a12, a22 = 1 / sa**2 + wn, w * nxbar, 1 / sb**2 + w * sx2
        b0, b1 = wn * m, a12 * m + w * (stats.sxy - mu1 * stats.sxx)
        inv_det = 1 / (a11 * a22 - a12 * a12)
        # Mean mu + A^-1 b; Cholesky factor of A^-1 by hand (l22^2 = det(A^-1) / c11 = 1 / a22).
        l11 = np.sqrt(a22 * inv_det)
        z0 = stream.standard_normal(m.shape)
        out_a[sl] = mu0 + (a22 * b0 - a12 * b1) * inv_det + l11 * z0
        out_b[sl] = (
            mu1
            + (a11 * b1 - a12 * b0) * inv_det
            - (a12 * l11 / a22) * z0
            + stream.standard_normal(m.shape) / np.sqrt(a22)
        )

    map_on_cores(draw, starts, streams)
    return out_a.reshape(shape + (stats.n_groups,)), out_b.reshape(shape + (stats.n_groups,))
