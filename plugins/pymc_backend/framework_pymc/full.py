"""Method "full": every group's coefficients sampled with the parameters, as a direct PyMC model.

    eta_i = X_i beta + Z_i b_g[i],  b_g ~ N(0, diag(sd) Omega diag(sd)),  y_i ~ N(eta_i, sigma)

One PyMC program for independent and correlated effects alike, rather than
Bambi for the first and PyMC for the second: Bambi 0.17 has no correlated
group effects, and for independent ones it would only re-encode the Model's
design matrix (its own categorical coding, level order and names would have
to be bypassed and mapped back), while the program below is the same graph
Bambi builds (a dot product and an indexed row sum). Centred: each group's
coefficients coef_g ~ N(beta_z, Sigma) are the sampler's variables.
Non-centred: coef_g = beta_z + diag(sd) L u_g with u_g ~ N(0, I).
"""

from __future__ import annotations

import numpy as np

from framework.model.model import COEF
from framework.model.prior_classes import BETA, GROUP_CORR, GROUP_SD

from . import compile_cache, engine
from .parameters import declare, natural

COEF_FREE = {"centred": "coef__centred", "non_centred": "coef__unit"}


def _scaled(params, u, q: int):
    """Rows of u (J, q) times (diag(sd) L)': the group deviations."""
    import pytensor.tensor as pt

    cols = []
    for i in range(q):
        if params.chol is None:
            cols.append(u[:, i] * params.group_sd[i])
        else:
            row = sum(params.chol[i][k] * u[:, k] for k in range(i + 1))
            cols.append(row * params.group_sd[i])
    return pt.stack(cols, axis=1)


def _mvnormal(params, deviation, q: int):
    """Log density (up to a constant) of rows (J, q) under N(0, diag(sd) L L' diag(sd)).

    Written out with `small_linalg` (a few vector operations for small q)
    rather than `pm.MvNormal`'s general solve: on 30 groups x 12 rows nutpie
    sampled 2 x 600 iterations in 2.5 s this way and 142 s with MvNormal.
    """
    import pytensor.tensor as pt

    from framework.model import small_linalg as la

    scale = [[params.group_sd[i] * params.chol[i][j] for j in range(i + 1)] for i in range(q)]
    v = la.forward(scale, [deviation[:, i] for i in range(q)])
    log_det = pt.log(params.group_sd).sum() + sum(pt.log(params.chol[i][i]) for i in range(1, q))
    return -0.5 * la.sum_squares(v).sum() - deviation.shape[0] * log_det


def build_model(problem):
    """The PyMC model of the full likelihood, and its parameters."""
    compile_cache.use_framework_cache()  # before PyTensor's first import
    import pymc as pm
    import pytensor.tensor as pt

    model, data = problem.model, problem.dataset
    z, q, J = model.group_term_index, model.n_group_terms, data.n_groups
    fixed = [k for k in range(model.n_terms) if k not in z]
    X = np.asarray(data.X, dtype=np.float64)
    codes = np.asarray(data.codes, dtype=np.int64)
    with pm.Model() as pm_model:
        params = declare(model)
        (sigma,) = params.family.values()
        beta_z = params.beta[z]
        if problem.parameterisation == "non_centred":
            u = pm.Normal(COEF_FREE["non_centred"], 0.0, 1.0, shape=(J, q))
            deviation = _scaled(params, u, q)
            eta = pt.dot(X, params.beta) + (X[:, z] * deviation[codes]).sum(1)
        else:
            if params.chol is None:
                coef = pm.Normal(COEF_FREE["centred"], beta_z, params.group_sd, shape=(J, q))
            else:
                coef = pm.Flat(COEF_FREE["centred"], shape=(J, q))
                pm.Potential("coef__mvnormal", _mvnormal(params, coef - beta_z, q))
            eta = (X[:, z] * coef[codes]).sum(1)
            if fixed:
                eta = eta + pt.dot(X[:, fixed], params.beta[fixed])
        pm.Normal("y", mu=eta, sigma=sigma, observed=np.asarray(data.y, dtype=np.float64))
    return pm_model, params


def fit(problem, settings, options) -> tuple[dict, engine.Draws]:
    """Sample the full model; natural-scale draws shaped (chain, draw, ...) with coef (c, d, J, q)."""
    sampler = options["sampler"]
    model = problem.model
    corr = "correlated" if model.correlated else "independent"
    problem.report(
        f"pymc: building the full model ({problem.dataset.n_groups} groups, {corr} "
        f"{problem.parameterisation} group effects)"
    )
    pm_model, params = build_model(problem)
    problem.report(
        f"pymc: compiling and sampling with {sampler} "
        f"({settings.chains} chains x {settings.warmup} warmup + {settings.draws} draws)"
    )
    free = COEF_FREE[problem.parameterisation]
    draws = engine.sample(
        pm_model, [*params.var_names, free], sampler, settings, options, problem.sampling_progress()
    )
    out = natural(params, draws.posterior)
    values = np.asarray(draws.posterior[free].values, dtype=np.float64)
    if problem.parameterisation == "non_centred":
        out[COEF] = coefficients(out, values, model.group_term_index)
    else:
        out[COEF] = values
    problem.report(f"pymc: sampled in {draws.sampling_seconds:.1f} s")
    return out, draws


def coefficients(out: dict, unit: np.ndarray, z: list[int]) -> np.ndarray:
    """beta_z + diag(sd) L u per group, from draws (c, d, ...) of the non-centred model."""
    sd = out[GROUP_SD]
    q = sd.shape[-1]
    corr = out.get(GROUP_CORR)
    low = (
        np.linalg.cholesky(corr)
        if corr is not None
        else np.broadcast_to(np.eye(q), (*sd.shape[:2], q, q))
    )
    deviation = np.einsum("cdik,cdjk->cdji", sd[..., :, None] * low, unit)
    return out[BETA][..., None, z] + deviation
