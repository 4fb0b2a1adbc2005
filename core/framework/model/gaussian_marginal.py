"""The exact fast path: the Gaussian mixed model with its group effects integrated out.

For group g with design X (n x p), group columns Z = X[:, z] (n x q), effects
b ~ N(0, Sigma) and residual sd s, y ~ N(X beta, s^2 I + Z Sigma Z'). With
r = y - X beta, A = Sigma^-1 + Z'Z / s^2 (q x q) and c = Z'r / s^2 (Woodbury
and the matrix determinant lemma):

    log p(y_g) = -n/2 log(2 pi) - n log s - 1/2 log|Sigma| - 1/2 log|A|
                 - 1/2 (r'r / s^2 - c' A^-1 c)

and b | y, parameters ~ N(A^-1 c, A^-1). r'r, Z'r and Z'Z follow from the
centred statistics of `GroupStats` without cancellation:
r'r = Syy - 2 beta'Sxy + beta'Sxx beta + n rbar^2 with rbar = ybar - xbar'beta,
Z'r = Szy - Szx beta + n zbar rbar, Z'Z = Szz + n zbar zbar'.

`Designs` pools groups that share a design (n, xbar, Szx: a balanced panel
is one design), so a backend's likelihood costs one q x q factorisation per
distinct design; `designs_loglik` is the pooled formula every backend writes
in its own language, `marginal_loglik` the per-group reference both are
tested against, and `draw_coefficients` the exact conditional draws every
backend's marginal method ends with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..parallel import map_on_cores
from . import small_linalg as la
from .statistics import GroupStats

LOG_2PI = float(np.log(2 * np.pi))
CHUNK_VALUES = 1_000_000  # draws x groups per block in draw_coefficients


def _parts(model, stats: GroupStats):
    p, z = model.n_terms, model.group_term_index
    return p, z, stats.mean[:, :p], stats.mean[:, p]


def sigma_inverse(group_sd, group_corr=None):
    """(Sigma^-1, log|Sigma|) for sds (..., q) and correlations (..., q, q) or independent."""
    sd = np.asarray(group_sd, dtype=np.float64)
    inv_sd = 1 / sd
    log_det = 2 * np.log(sd).sum(-1)
    if group_corr is None:
        q = sd.shape[-1]
        return inv_sd[..., :, None] * np.eye(q) * inv_sd[..., None, :], log_det
    corr = np.asarray(group_corr, dtype=np.float64)
    return (
        inv_sd[..., :, None] * np.linalg.inv(corr) * inv_sd[..., None, :],
        log_det + np.linalg.slogdet(corr)[1],
    )


def _factor(model, stats, beta, sinv, s2, residuals: bool = True):
    """Per draw and group: L (chol of A), v = L^-1 c, r'r, all broadcast as (draws, groups).

    Without `residuals`, r'r is None: drawing coefficients needs no likelihood, and
    r'r is over a third of the work.
    """
    p, z, xbar, ybar = _parts(model, stats)
    n, cross = stats.n, stats.cross
    rbar = ybar - beta @ xbar.T
    rr = None
    if residuals:
        sxy, sxx = cross[:, :p, p], cross[:, :p, :p]
        rr = (
            cross[:, p, p]
            - 2 * beta @ sxy.T
            + np.einsum("da,jab,db->dj", beta, sxx, beta, optimize=True)
            + n * rbar**2
        )
    q = len(z)
    w = 1 / s2[:, None]
    a = [[None] * q for _ in range(q)]
    c = []
    for i, zi in enumerate(z):
        zbar_i = xbar[:, zi]
        c.append(w * (cross[:, zi, p] - beta @ cross[:, zi, :p].T + n * zbar_i * rbar))
        for j in range(i + 1):
            ztz = cross[:, zi, z[j]] + n * zbar_i * xbar[:, z[j]]
            a[i][j] = sinv[:, i, j][:, None] + w * ztz
    low = la.cholesky(a, np.sqrt)
    return low, la.forward(low, c), rr


def _flat(value, shape_tail=()):
    arr = np.asarray(value, dtype=np.float64)
    lead = arr.shape[: arr.ndim - len(shape_tail)]
    return arr.reshape((-1, *shape_tail)), lead


def marginal_loglik(model, stats: GroupStats, *, beta, group_sd, sigma, group_corr=None):
    """Log p(y | beta, Sigma, sigma) summed over groups; broadcasts over leading draw axes."""
    beta, lead = _flat(beta, (model.n_terms,))
    sd, _ = _flat(group_sd, (model.n_group_terms,))
    corr = None if group_corr is None else _flat(group_corr, (model.n_group_terms,) * 2)[0]
    s = _flat(sigma)[0]
    sinv, log_det_sigma = sigma_inverse(sd, corr)
    low, v, rr = _factor(model, stats, beta, sinv, s**2)
    log_det_a = 2 * sum(np.log(low[i][i]) for i in range(len(low)))
    n = stats.n
    per_group = -0.5 * (
        n * LOG_2PI
        + n * np.log(s**2)[:, None]
        + log_det_sigma[:, None]
        + log_det_a
        + rr / s[:, None] ** 2
        - la.sum_squares(v)
    )
    return per_group.sum(-1).reshape(lead)


def draw_coefficients(
    model,
    stats: GroupStats,
    *,
    beta,
    group_sd,
    sigma,
    group_corr=None,
    seed: int | np.random.Generator | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """Each group's coefficients (beta_z + b) drawn from their exact Gaussian conditional.

    Parameters are arrays with leading draw axes such as (chain, draw); the
    result has those axes plus (group, group term). Work runs `chunk` draws at
    a time, each chunk with its own random stream spawned from `seed`, on all
    cores; the draws do not depend on how many cores there are.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    beta, lead = _flat(beta, (model.n_terms,))
    q, z = model.n_group_terms, model.group_term_index
    sd = _flat(group_sd, (q,))[0]
    corr = None if group_corr is None else _flat(group_corr, (q, q))[0]
    s = _flat(sigma)[0]
    total, groups = beta.shape[0], stats.n_groups
    out = np.empty((total, groups, q))
    chunk = chunk or max(1, CHUNK_VALUES // max(groups, 1))
    starts = range(0, total, chunk)
    streams = rng.spawn(len(starts))
    sinv, _ = sigma_inverse(sd, corr)

    def draw(start: int, stream: np.random.Generator) -> None:
        sl = slice(start, start + chunk)
        low, v, _ = _factor(model, stats, beta[sl], sinv[sl], s[sl] ** 2, residuals=False)
        noise = [stream.standard_normal(v[0].shape) for _ in range(q)]
        b = la.backward(low, [vi + e for vi, e in zip(v, noise, strict=True)])
        for i in range(q):
            out[sl, :, i] = beta[sl, z[i], None] + b[i]

    map_on_cores(draw, starts, streams)
    return out.reshape((*lead, groups, q))


def conditional_means(model, stats: GroupStats, *, beta, group_sd, sigma, group_corr=None):
    """E[coefficients | y, parameters] per group (the BLUPs at those parameters): (..., J, q)."""
    args = dict(beta=beta, group_sd=group_sd, sigma=sigma, group_corr=group_corr)
    mean, _, lead = _conditional(model, stats, **args)
    return mean.reshape((*lead, stats.n_groups, model.n_group_terms))


def _conditional(model, stats: GroupStats, *, beta, group_sd, sigma, group_corr):
    """The conditional means (draws, J, q), the Cholesky factor of A and the draws' lead shape."""
    beta, lead = _flat(beta, (model.n_terms,))
    q, z = model.n_group_terms, model.group_term_index
    corr = None if group_corr is None else _flat(group_corr, (q, q))[0]
    sinv, _ = sigma_inverse(_flat(group_sd, (q,))[0], corr)
    low, v, _ = _factor(model, stats, beta, sinv, _flat(sigma)[0] ** 2, residuals=False)
    b = la.backward(low, v)
    return np.stack([beta[:, z[i], None] + b[i] for i in range(q)], axis=-1), low, lead


def conditional_moments(model, stats: GroupStats, *, beta, group_sd, sigma, group_corr=None):
    """Mean (..., J, q) and covariance (..., J, q, q) of each group's coefficients given the parameters.

    The exact Gaussian that `draw_coefficients` draws from: N(beta_z + A^-1 c, A^-1).
    """
    args = dict(beta=beta, group_sd=group_sd, sigma=sigma, group_corr=group_corr)
    mean, low, lead = _conditional(model, stats, **args)
    q = model.n_group_terms
    # A^-1 = W'W with W = L^-1, whose column j solves L w = e_j.
    w = [la.forward(low, [float(i == j) for i in range(q)]) for j in range(q)]
    cov = np.empty((*mean.shape, q))
    for i in range(q):
        for j in range(i + 1):
            cov[..., i, j] = cov[..., j, i] = sum(w[i][k] * w[j][k] for k in range(q))
    return mean.reshape((*lead, stats.n_groups, q)), cov.reshape((*lead, stats.n_groups, q, q))


@dataclass(frozen=True)
class Designs:
    """Groups pooled by design: what a backend's marginal likelihood needs, as plain arrays.

    Per design (K of them): `groups` (how many), `n`, `xbar` (K, p), `ybar`
    (mean over its groups), `ybar_ss` (sum of squared deviations of the groups'
    ybar from it), `ztz` (K, q, q), `ztx` (K, q, p), `a` (K, q: the mean over
    its groups of Z'y) and `scatter` (K, q, q: columns s_k with
    sum_k s_k s_k' = sum over its groups of (Z'y - a)(Z'y - a)'). Totals over
    all groups of the within-group centred sums: `syy` (scalar), `sxy` (p),
    `sxx` (p, p). `design` maps each group to its design.
    """

    groups: np.ndarray
    n: np.ndarray
    xbar: np.ndarray
    ybar: np.ndarray
    ybar_ss: np.ndarray
    ztz: np.ndarray
    ztx: np.ndarray
    a: np.ndarray
    scatter: np.ndarray
    syy: float
    sxy: np.ndarray
    sxx: np.ndarray
    design: np.ndarray

    @property
    def n_designs(self) -> int:
        return len(self.n)

    @property
    def pooled(self) -> bool:
        """Whether any design holds more than one group (else `ybar_ss` and `scatter` are 0)."""
        return bool(np.any(self.groups > 1))


def designs(model, stats: GroupStats) -> Designs:
    """Pool the groups of `stats` by exact design (n, xbar, Szx), in order of first appearance."""
    p, z, xbar, ybar = _parts(model, stats)
    n, cross = stats.n, stats.cross
    szx = cross[:, z, :p]
    keys = np.concatenate([n[:, None], xbar, szx.reshape(len(n), -1)], axis=1)
    # Hash-based grouping numbers the designs in order of first appearance in O(groups):
    # np.unique(axis=0) sorts rows and takes ~10x longer at a million groups.
    import pandas as pd

    by = pd.DataFrame(keys).groupby(list(range(keys.shape[1])), sort=False, dropna=False)
    design = by.ngroup().to_numpy(dtype=np.int64)
    lead = np.unique(design, return_index=True)[1]
    count = np.bincount(design).astype(np.float64)
    zbar = xbar[:, z]
    szy = cross[:, z, p]
    ybar_d = np.bincount(design, ybar) / count
    szy_d = np.stack([np.bincount(design, szy[:, i]) for i in range(len(z))], 1) / count[:, None]
    dy = ybar - ybar_d[design]
    # Z'y = Szy + n zbar ybar; its deviation from the design's mean, without cancellation.
    da = (szy - szy_d[design]) + (n * dy)[:, None] * zbar
    scatter_sum = np.zeros((len(count), len(z), len(z)))
    np.add.at(scatter_sum, design, da[:, :, None] * da[:, None, :])
    vals, vecs = np.linalg.eigh(scatter_sum)
    scatter = vecs * np.sqrt(np.clip(vals, 0, None))[:, None, :]
    nl, zl, xl = n[lead], zbar[lead], xbar[lead]
    ztx = szx[lead] + nl[:, None, None] * zl[:, :, None] * xl[:, None, :]
    return Designs(
        groups=count,
        n=nl,
        xbar=xl,
        ybar=ybar_d,
        ybar_ss=np.bincount(design, dy * dy),
        ztz=ztx[:, :, z],
        ztx=ztx,
        a=szy_d + (nl * ybar_d)[:, None] * zl,
        scatter=scatter,
        syy=float(cross[:, p, p].sum()),
        sxy=cross[:, :p, p].sum(0),
        sxx=cross[:, :p, :p].sum(0),
        design=design,
    )


def designs_loglik(d: Designs, *, beta, group_sd, sigma, group_corr=None):
    """The marginal log-likelihood from pooled designs: the formula the backends write."""
    beta, lead = _flat(beta, (d.xbar.shape[1],))
    q = d.ztz.shape[1]
    sd = _flat(group_sd, (q,))[0]
    corr = None if group_corr is None else _flat(group_corr, (q, q))[0]
    s = _flat(sigma)[0]
    sinv, log_det_sigma = sigma_inverse(sd, corr)
    w = (1 / s**2)[:, None]
    m = d.ybar - beta @ d.xbar.T  # (draws, K)
    rr = (
        d.syy
        - 2 * beta @ d.sxy
        + np.einsum("da,ab,db->d", beta, d.sxx, beta)
        + (d.n * (d.ybar_ss + d.groups * m**2)).sum(-1)
    )
    a = [[sinv[:, i, j][:, None] + w * d.ztz[:, i, j] for j in range(i + 1)] for i in range(q)]
    low = la.cholesky(a, np.sqrt)
    e = [d.a[:, i] - beta @ d.ztx[:, i, :].T for i in range(q)]
    quad = d.groups * la.sum_squares(la.forward(low, e))
    for k in range(q):
        quad = quad + la.sum_squares(la.forward(low, [d.scatter[:, i, k] for i in range(q)]))
    log_det_a = 2 * sum(np.log(low[i][i]) for i in range(q))
    total = (
        d.groups
        * (-0.5)
        * (d.n * (LOG_2PI + np.log(s**2)[:, None]) + log_det_sigma[:, None] + log_det_a)
    ).sum(-1)
    total = total - 0.5 * w[:, 0] * rr + 0.5 * (w**2 * quad).sum(-1)
    return total.reshape(lead)
