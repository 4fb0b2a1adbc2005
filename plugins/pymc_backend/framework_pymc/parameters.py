"""The parameters every PyMC program of a Model shares: beta, group_sd, the correlation, sigma.

Each scalar parameter keeps its own prior from `model.priors`; parameters of
one class whose priors share a family become one PyMC vector variable (one
node per family, not per term). The correlation matrix of correlated group
effects is Stan's: unconstrained canonical partial correlations, mapped by
tanh and the onion construction to the Cholesky factor L of a correlation
matrix, with the LKJ density of L plus the map's log-Jacobian as a potential.
`pm.LKJCorr` was not used: its transform bounds each correlation to (-1, 1)
separately, which leaves non-positive-definite matrices (log density -inf)
inside the sampler's space once q >= 3; and `pm.LKJCholeskyCov` takes one
`sd_dist` for all sds, where each group_sd here may have its own family.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from framework.model.prior_classes import BETA, GROUP_CORR, GROUP_SD

from .priors import pymc_vector

# Names of the sampler's own variables (never the posterior's names: those are built afterwards).
FREE_CORR = "group_corr__cpc"


@dataclass
class Parameters:
    """Symbolic parameters (beta (p,), group_sd (q,), chol: L as rows of scalars or None, family)."""

    beta: object
    group_sd: object
    chol: list | None
    family: dict[str, object]
    # posterior name -> [(sampler variable, positions in the posterior's vector or None)]
    parts: dict[str, list[tuple[str, np.ndarray | None]]] = field(default_factory=dict)
    q: int = 1

    @property
    def var_names(self) -> list[str]:
        names = [v for parts in self.parts.values() for v, _ in parts]
        return [*names, FREE_CORR] if self.chol is not None else names


def declare(model) -> Parameters:
    """Declare the model's parameters in the current `pm.Model` context."""
    import pymc as pm
    import pytensor.tensor as pt

    by_class: dict[str, list] = {}
    for variable, selection in model.hyperparameters():
        if variable != GROUP_CORR:
            by_class.setdefault(variable, []).append(model.priors[model.label(variable, selection)])
    parts: dict[str, list] = {}
    vectors = {}
    for name in (BETA, GROUP_SD):
        vectors[name], parts[name] = _vector(name, by_class[name])
    family = {}
    for name in model.family_parameters:
        (prior,) = by_class[name]
        family[name] = pymc_vector(name, [prior])[0]
        parts[name] = [(name, None)]
    q = model.n_group_terms
    chol = None
    if model.correlated:
        free = pm.Flat(FREE_CORR, shape=q * (q - 1) // 2)
        chol, log_density = lkj_cholesky(
            [free[k] for k in range(q * (q - 1) // 2)], q, model.corr_prior.eta, pt
        )
        pm.Potential("group_corr__lkj", log_density)
    return Parameters(vectors[BETA], vectors[GROUP_SD], chol, family, parts, q)


def _vector(name: str, priors: list):
    """A (k,) tensor with each element under its own prior; one PyMC variable per prior family."""
    import pytensor.tensor as pt

    families: dict[str, list[int]] = {}
    for i, prior in enumerate(priors):
        families.setdefault(prior.family, []).append(i)
    if len(families) == 1:
        return pymc_vector(name, priors), [(name, np.arange(len(priors)))]
    elements = [None] * len(priors)
    parts = []
    for family, index in families.items():
        var = pymc_vector(f"{name}__{family}", [priors[i] for i in index])
        parts.append((f"{name}__{family}", np.asarray(index)))
        for k, i in enumerate(index):
            elements[i] = var[k]
    return pt.stack(elements), parts


def lkj_cholesky(free: list, q: int, eta: float, xp):
    """(L, log density of the free values) with L ~ LKJ(eta): Stan's cholesky_corr transform.

    Row i of L holds z_i0, z_i1 sqrt(1 - L_i0^2), ... with z = tanh(free), and
    L_ii = sqrt(1 - sum_k<i L_ik^2). The density of the free values is the LKJ
    density of L, prod_i L_ii^(q - i - 1 + 2 eta - 2), times the Jacobian:
    1 - z^2 per tanh and sqrt(1 - sum_k<j L_ik^2) per later element of a row.
    `xp` is numpy or pytensor.tensor (the same code draws L from numpy draws).
    """
    low = [[0.0] * q for _ in range(q)]
    low[0][0] = 1.0
    log_density = 0.0
    k = 0
    for i in range(1, q):
        remaining = 1.0  # 1 - sum of squares of the row so far
        for j in range(i):
            y = free[k]
            k += 1
            z = xp.tanh(y)
            # log(1 - tanh(y)^2) = 2 log 2 - 2 |y| - 2 log1p(exp(-2 |y|)), stable for large |y|.
            a = xp.abs(y)
            log_density = log_density + 2 * (np.log(2.0) - a - xp.log1p(xp.exp(-2 * a)))
            if j > 0:
                log_density = log_density + 0.5 * xp.log(remaining)
            low[i][j] = z * xp.sqrt(remaining)
            remaining = remaining - low[i][j] ** 2
        low[i][i] = xp.sqrt(remaining)
        log_density = log_density + (q - i - 1 + 2 * eta - 2) * 0.5 * xp.log(remaining)
    return low, log_density


def corr_from_free(free: np.ndarray, q: int) -> np.ndarray:
    """Correlation matrices (..., q, q) from draws of the free values (..., q(q-1)/2)."""
    low, _ = lkj_cholesky([free[..., k] for k in range(free.shape[-1])], q, 1.0, np)
    low = [[np.broadcast_to(v, free.shape[:-1]) for v in row] for row in low]
    return np.einsum("ik...,jk...->...ij", np.asarray(low), np.asarray(low))


def natural(params: Parameters, posterior) -> dict[str, np.ndarray]:
    """The posterior's beta, group_sd, group_corr and family parameters from the sampler's draws."""
    out = {}
    for name, parts in params.parts.items():
        first = np.asarray(posterior[parts[0][0]].values, dtype=np.float64)
        if parts[0][1] is None:  # a scalar family parameter
            out[name] = first.reshape(first.shape[:2])
            continue
        size = sum(len(index) for _, index in parts)
        values = np.empty((*first.shape[:2], size))
        for var, index in parts:
            values[..., index] = np.asarray(posterior[var].values, dtype=np.float64)
        out[name] = values
    if params.chol is not None:
        free = np.asarray(posterior[FREE_CORR].values, dtype=np.float64)
        out[GROUP_CORR] = corr_from_free(free, params.q)
    return out
