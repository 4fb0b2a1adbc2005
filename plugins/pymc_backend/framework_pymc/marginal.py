"""Method "marginal": beta, group_sd, the correlation and sigma under prior x marginal likelihood.

Bambi cannot express a likelihood with the group effects integrated out, so the
model is written directly: the Model's parameters (`parameters.declare`) and a
`pm.Potential` holding `framework.model.gaussian_marginal.designs_loglik`'s
formula in PyTensor over the groups pooled by design (a balanced panel is one
design). The q x q algebra is `framework.model.small_linalg`'s, elementwise
over designs, shared with the NumPy reference. `complete_posterior` then draws
every group's coefficients exactly.
"""

from __future__ import annotations

from framework.model import small_linalg as la
from framework.model.gaussian_marginal import LOG_2PI, Designs, designs

from . import compile_cache, engine
from .parameters import declare, natural


def sigma_inverse(group_sd, chol, q: int):
    """(Sigma^-1 as rows of scalars, log|Sigma|) from sds (q,) and the correlation's L or None."""
    import pytensor.tensor as pt

    inv = [1 / group_sd[i] for i in range(q)]
    log_det = 2 * pt.log(group_sd).sum()
    if chol is None:
        return [[inv[i] * inv[i] if i == j else 0.0 for j in range(q)] for i in range(q)], log_det
    # Omega^-1 = L^-T L^-1; the columns of L^-1 solve L x = e_j.
    columns = [la.forward(chol, [1.0 if i == j else 0.0 for i in range(q)]) for j in range(q)]
    sinv = [[0.0] * q for _ in range(q)]
    for i in range(q):
        for j in range(i + 1):
            # (L^-1)[k][i] is zero for k < i: the sum starts at the later of the two columns.
            dot = sum(columns[i][k] * columns[j][k] for k in range(i, q))
            sinv[i][j] = sinv[j][i] = inv[i] * inv[j] * dot
    log_det = log_det + 2 * sum(pt.log(chol[i][i]) for i in range(1, q))
    return sinv, log_det


def designs_loglik(d: Designs, beta, group_sd, sigma, chol=None):
    """PyTensor twin of `gaussian_marginal.designs_loglik` for one parameter point."""
    import pytensor.tensor as pt

    q = d.ztz.shape[1]
    sinv, log_det_sigma = sigma_inverse(group_sd, chol, q)
    w = 1 / sigma**2
    m = d.ybar - pt.dot(d.xbar, beta)  # (K,)
    rr = (
        d.syy
        - 2 * pt.dot(beta, d.sxy)
        + pt.dot(beta, pt.dot(d.sxx, beta))
        + (d.n * (d.ybar_ss + d.groups * m**2)).sum()
    )
    a = [[sinv[i][j] + w * d.ztz[:, i, j] for j in range(i + 1)] for i in range(q)]
    low = la.cholesky(a, pt.sqrt)
    e = [d.a[:, i] - pt.dot(d.ztx[:, i, :], beta) for i in range(q)]
    quad = (d.groups * la.sum_squares(la.forward(low, e))).sum()
    if d.pooled:  # the spread of Z'y among a design's groups (zero when each design is one group)
        for k in range(q):
            quad = (
                quad + la.sum_squares(la.forward(low, [d.scatter[:, i, k] for i in range(q)])).sum()
            )
    log_det_a = 2 * sum(pt.log(low[i][i]) for i in range(q))
    n_total, n_groups = float((d.groups * d.n).sum()), float(d.groups.sum())
    return (
        -0.5 * n_total * (LOG_2PI + pt.log(sigma**2))
        - 0.5 * n_groups * log_det_sigma
        - 0.5 * (d.groups * log_det_a).sum()
        - 0.5 * w * rr
        + 0.5 * w**2 * quad
    )


def build_model(problem):
    """The PyMC model and its parameters: the Model's priors and the marginal likelihood."""
    compile_cache.use_framework_cache()  # before PyTensor's first import
    import pymc as pm

    model = problem.model
    pooled = designs(model, problem.dataset.stats)
    with pm.Model() as pm_model:
        params = declare(model)
        (sigma,) = params.family.values()  # Gaussian: the one family parameter is the residual sd
        loglik = designs_loglik(pooled, params.beta, params.group_sd, sigma, params.chol)
        pm.Potential("marginal_loglik", loglik)
    return pm_model, params


def fit(problem, settings, options) -> tuple[dict, engine.Draws]:
    """Sample the parameters; natural-scale draws shaped (chain, draw, ...), without coef."""
    sampler = options["sampler"]
    pm_model, params = build_model(problem)
    problem.report(
        f"pymc: compiling and sampling the marginal model with {sampler} "
        f"({settings.chains} chains x {settings.warmup} warmup + {settings.draws} draws)"
    )
    draws = engine.sample(
        pm_model, params.var_names, sampler, settings, options, problem.sampling_progress()
    )
    problem.report(f"pymc: sampled in {draws.sampling_seconds:.1f} s")
    return natural(params, draws.posterior), draws
