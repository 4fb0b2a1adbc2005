"""Priors far from where the data put a parameter: warned about before sampling.

The defaults (normal(0, 100) for beta, uniform(0, 100) for the sds) suit data of
the rainfall case's scale; on data in the thousands they pull every estimate
(lme4's Dyestuff: the intercept comes out near 1313 where lme4 says 1527.5, its
group sd pinned at the uniform's bound). Least squares on the per-group
statistics locates each beta (ignoring the groups) and sigma (within groups);
a value beyond three prior sds of a normal prior, outside a uniform's bounds or
beyond three scales of a half-normal is one the prior all but rules out, so the
posterior follows the prior there rather than the data.
"""

from __future__ import annotations

import math

import numpy as np

from .collinearity import collinear_terms, constant_within_groups
from .model import TERM_DIM, Model
from .prior_classes import BETA
from .priors import Prior, format_number
from .statistics import GroupStats

REACH = 3.0  # prior sds: a normal prior puts 0.3% of its mass beyond this


def prior_scale_warnings(model: Model, stats: GroupStats) -> list[str]:
    """One line per beta or sigma whose least-squares value its prior all but rules out.

    Collinear terms (whose least-squares values are arbitrary) are named instead of beta's.
    """
    n = stats.n
    total = float(n.sum())
    p = model.n_terms
    if total <= p + stats.n_groups:
        return []
    mean, cross = stats.mean, stats.cross
    # Raw (uncentred) cross-products over every row, [X, y]: the pooled regression.
    gram = cross.sum(axis=0) + np.einsum("g,gi,gj->ij", n, mean, mean)
    within = cross.sum(axis=0)  # centred per group: the regression on group-demeaned columns
    if not (np.all(np.isfinite(gram)) and np.all(np.isfinite(within))):
        return []
    out = []
    collinear = collinear_terms(model, gram[:p, :p], total)
    if collinear:  # least squares is arbitrary along the ridge: no beta to compare with a prior
        out.append(f"model.formula: the terms {', '.join(collinear)} are collinear in the data (a "
                   "combination of their columns is constant), so the data cannot tell their "
                   "coefficients apart and only the prior does; drop one of them, as lme4 would")  # fmt: skip
    constant = constant_within_groups(model, within[:p, :p], gram[:p, :p])
    if constant:
        out.append(f"model.formula: {', '.join(constant)} never varies within a group of "
                   f"{model.group}, so its group effect cannot be told apart from the intercept's; "
                   f"leave it out of the group term")  # fmt: skip
    beta = _least_squares(gram[:p, :p], gram[:p, p])[0]
    for name, value in zip(model.term_names, beta, strict=True):
        if collinear:
            break
        label = model.label(BETA, {TERM_DIM: name})
        why = _ruled_out(model.prior(label), float(value))
        if why:
            out.append(f"model.priors.beta: the data put {label} near {value:.4g} (least squares, "
                       f"ignoring the groups), {why}; the prior will pull it: give beta a prior on "
                       f"the data's scale, e.g. beta: {{{_key(name)}: normal(0, {_wider(value)})}}")  # fmt: skip
    if "sigma" in model.family_parameters:
        b, rank = _least_squares(within[:p, :p], within[:p, p])
        rss = max(float(within[p, p] - b @ within[:p, p]), 0.0)
        sigma = math.sqrt(rss / max(total - stats.n_groups - rank, 1.0))
        why = _ruled_out(model.prior("sigma"), sigma)
        if why:
            out.append(f"model.priors.sigma: the data put sigma near {sigma:.4g} (the residual sd "
                       f"within groups), {why}; the prior will pull it: give sigma a prior on the "
                       f"data's scale, e.g. sigma: half_normal({_wider(sigma)})")  # fmt: skip
    return out


def _least_squares(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """(x, rank) solving the normal equations a x = b, columns scaled to unit size first.

    Unscaled, a column of sd 1e-5 beside one of sd 1e4 falls below lstsq's cutoff and gets
    a coefficient of ~0, however large the data make it.
    """
    d = np.sqrt(np.clip(np.diag(a), 0.0, None))
    s = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
    scaled = a * s[:, None] * s[None, :]
    x, _, rank, _ = np.linalg.lstsq(scaled, b * s, rcond=None)
    return x * s, int(rank)


def _ruled_out(prior: Prior, value: float) -> str | None:
    """Why `prior` all but rules out `value`, or None (heavy-tailed and other families: never)."""
    args = prior.args
    if prior.family == "normal":
        mu, sd = args
        distance = abs(value - mu) / sd
        if distance > REACH:
            return f"{distance:.3g} sds from the mean of its prior {prior}"
    elif prior.family == "uniform":
        lower, upper = args
        if not lower <= value <= upper:
            return f"outside the bounds of its prior {prior}"
    elif prior.family == "half_normal" and value > REACH * args[0]:
        return f"{value / args[0]:.3g} scales out in its prior {prior}"
    return None


def _key(name: str) -> str:
    """A term name as a YAML flow-mapping key: `"sex[male]"` needs its quotes, `Intercept` none."""
    return name if name.isidentifier() else f'"{name}"'


def _wider(value: float) -> str:
    """A round prior scale at least three times |value|: 1527 -> 10000."""
    return format_number(10.0 ** math.ceil(math.log10(max(3 * abs(value), 1e-300))))
