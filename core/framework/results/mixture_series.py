"""The series for a normal mixture's CDF, and the bound that says when it is exact enough.

F(x) = mean_d Phi((x - m_d) / s_d) is expanded about the normal with the
mixture's mean and the mean component variance tau^2, in the offsets
a_d = m_d - mean m and b_d = s_d^2 - tau^2: as a function of a component's
mean m and variance v, Phi((x - m) / sqrt v) obeys the heat equation
d/dv = 1/2 d^2/dm^2, so the Taylor term in a^i b^l is a derivative of order
j = i + 2l in m, -He_(j-1)(w) phi(w) / tau^j with w = (x - mean m) / tau.
Third order needs a few moments of (a, b) per group; the fourth-order
Lagrange remainder is bounded from moments of |a|, |b|, max|He_n phi| and
the smallest variance on the way, which proves (or not) each quantile to
QUANTILE_TOL mixture sds. For groups sharing a design the moments are
polynomials in Z'y whose coefficients are averages over draws.
"""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
from scipy.special import ndtr, ndtri

SERIES_ORDER = 3
# A quantile is good to this many mixture sds (the series' proven bound, or Newton's step).
QUANTILE_TOL = 1e-9
SQRT_2PI = float(np.sqrt(2 * np.pi))


def _hermite_bounds(top: int) -> np.ndarray:
    """max_z |He_n(z) phi(z)| for n = 0..top (a fine grid; the maxima sit within |z| < 5)."""
    z = np.linspace(-12, 12, 240_001)
    phi = np.exp(-0.5 * z * z) / SQRT_2PI
    out = []
    for n in range(top + 1):
        he = np.polynomial.hermite_e.hermeval(z, [0] * n + [1])
        out.append(np.abs(he * phi).max() * 1.001)  # grid spacing 1e-4: a 0.1% margin
    return np.asarray(out)


HERMITE_MAX = _hermite_bounds(2 * (SERIES_ORDER + 1))


def series_quantiles(a, sds, centre, var_s, spread, probs):
    """Quantiles from the series, and which of them its remainder bound proves (S x N arrays)."""
    n = a.shape[1]
    s2 = sds * sds
    b = s2 - var_s  # (S, N), or (S, 1) when every group's components share their sds
    a_pow = {1: a, 2: a * a}
    a_pow[3] = a_pow[2] * a
    abs_a, abs_b = np.abs(a), np.abs(b)
    abs_pow = {1: abs_a, 2: a_pow[2], 3: abs_a * a_pow[2], 4: a_pow[2] * a_pow[2]}

    def mean_of(x, y=None) -> np.ndarray:
        if y is None:
            return x.mean(0)
        if y.shape[1] == 1:  # shared sds: a product over draws, i.e. a matrix product
            return y[:, 0] @ x / len(x)
        return np.mean(x * y, 0)

    series = {}
    for i in range(SERIES_ORDER + 1):
        for ell in range(SERIES_ORDER + 1 - i):
            if i + ell >= 2:  # mean a = mean b = 0 by construction
                series[i, ell] = np.broadcast_to(
                    mean_of(a_pow[i], b**ell) if i and ell else mean_of(a_pow[i] if i else b**ell),
                    (n,),
                )
    order = SERIES_ORDER + 1
    remainder = {
        (i, order - i): np.broadcast_to(
            mean_of(abs_pow[i], abs_b ** (order - i))
            if 0 < i < order
            else mean_of(abs_pow[i] if i else abs_b**order),
            (n,),
        )
        for i in range(order + 1)
    }
    v_low = np.minimum(var_s, s2.min(0))
    return solve_series(series, remainder, centre, var_s, v_low, spread, probs)


def pooled_series_quantiles(u, slope, var, zty, probs):
    """Centre, sd, series quantiles and which are proven, for groups of one design (no S x G arrays).

    Component means are u_d + slope_d . Z'y_g and variances var_d. The offsets a_dg = alpha_d + beta_d . Z'y_g are affine in Z'y_g, so every
    moment mean_d a^i b^ell is a polynomial in Z'y_g whose coefficients are
    averages over draws: no draws x groups array unless a group needs Newton.
    """
    n = zty.shape[1]
    t = np.vstack([np.ones(n), zty])  # (1 + q, G)
    slope_mean = slope.mean(0)
    centre = u.mean() + slope_mean @ zty
    v = np.column_stack([u - u.mean(), slope - slope_mean])  # (S, 1 + q)
    var_s = var.mean()
    b = var - var_s

    def moment(i: int, weight=None) -> np.ndarray:
        """mean_d (v_d . t_g)^i weight_d, expanded as a polynomial (multinomial theorem)."""
        total = np.zeros(n)
        for e in itertools.product(range(i + 1), repeat=v.shape[1]):
            if sum(e) != i:
                continue
            per_draw = np.prod(v**e, axis=1) * (1.0 if weight is None else weight)
            c = factorial(i) / np.prod([factorial(k) for k in e]) * per_draw.mean()
            total += c * np.prod(t ** np.asarray(e)[:, None], axis=0)
        return total

    m2 = np.maximum(moment(2), 0.0)
    spread = np.sqrt(var_s + m2)
    series = {}
    for i in range(SERIES_ORDER + 1):
        for ell in range(SERIES_ORDER + 1 - i):
            if i + ell >= 2:
                series[i, ell] = moment(i, b**ell) if i else np.full(n, np.mean(b**ell))
    remainder = {  # order 4; odd powers of |a| bounded through Cauchy-Schwarz
        (4, 0): np.maximum(moment(4), 0.0),
        (3, 1): np.sqrt(np.maximum(moment(6), 0.0) * np.mean(b**2)),
        (2, 2): np.maximum(moment(2, b**2), 0.0),
        (1, 3): np.sqrt(m2 * np.mean(b**6)),
        (0, 4): np.full(n, np.mean(b**4)),
    }
    v_low = min(var_s, var.min())
    quantiles, proven = solve_series(series, remainder, centre, var_s, v_low, spread, probs)
    return centre, spread, quantiles, proven


# Newton on a series far outside its range can run off to huge w (He_6(w) overflows): those
# groups are left unproven and solved exactly, so numpy's overflow warnings are noise there.
@np.errstate(over="ignore", invalid="ignore")
def solve_series(series, remainder, centre, var_s, v_low, spread, probs):
    """Solve the series CDF = p per group; proven where the remainder bound keeps it in tolerance.

    `series[i, ell]` and `remainder[i, ell]` are per-group means of a^i b^ell (|a|^i |b|^ell
    for the remainder); the term (i, ell) multiplies d^(i + 2l)/dm^(i + 2l) of the
    normal CDF, i.e. -He_(j-1)(w) phi(w) / tau^j with j = i + 2l.
    """
    n = len(centre)
    tau = np.sqrt(var_s)
    coef = np.zeros((2 * SERIES_ORDER + 1, n))
    for (i, ell), moment in series.items():
        j = i + 2 * ell
        coef[j] += moment / (factorial(i) * factorial(ell) * 2**ell * tau**j)
    bound = np.zeros(n)
    for (i, ell), moment in remainder.items():
        j = i + 2 * ell
        scale = factorial(i) * factorial(ell) * 2**ell
        bound = bound + moment / scale * HERMITE_MAX[j - 1] / v_low ** (j / 2)
    out = np.empty((len(probs), n))
    proven = np.ones(n, dtype=bool)
    for k, p in enumerate(probs):
        w = np.full(n, ndtri(p))
        for _ in range(20):  # Newton on the series CDF, elementwise and cheap
            phi = np.exp(-0.5 * w * w) / SQRT_2PI
            he = np.polynomial.hermite_e.hermevander(w, 2 * SERIES_ORDER)  # (n, 7): He_0..He_6
            cdf = ndtr(w) - phi * np.einsum("jn,nj->n", coef[1:], he[:, :-1])
            pdf = phi * (1 + np.einsum("jn,nj->n", coef[1:], he[:, 1:]))
            with np.errstate(divide="ignore", invalid="ignore"):
                step = (cdf - p) / np.where(pdf > 0, pdf, np.nan)
            w = w - step
            if np.all(np.abs(step) <= 1e-13):
                break
        # |x - x*| <= bound / f near x; f is taken as half the series density, a margin
        # (where the CDF's remainder is this small, the density's is smaller still).
        good = np.isfinite(w) & (pdf > 0) & (2 * bound * tau <= QUANTILE_TOL * spread * pdf)
        out[k] = centre + tau * np.where(np.isfinite(w), w, 0.0)
        proven &= good
    return out, proven
