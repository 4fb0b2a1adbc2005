"""The marginal program: group effects integrated out, the likelihood from pooled designs.

framework.model.gaussian_marginal.designs_loglik written in Stan. Groups that
share a design (n, xbar, Szx) are pooled, so each of the K designs costs one
q x q Cholesky factorisation of A = Sigma^-1 + Z'Z / sigma^2, written out
element by element (as model/small_linalg.py does in NumPy) over vector[K]
locals: under stanc --O1 each step is one vectorised autodiff node holding K
values. The residual terms use the centred statistics (Z'r = Szy - Szx beta +
n zbar m), so a large offset in y cancels exactly as in the NumPy reference.
"""

from __future__ import annotations

import numpy as np

from framework.model.gaussian_marginal import LOG_2PI, designs

DATA = """\
  int<lower=1> K;  // designs
  vector<lower=1>[K] groups;  // groups per design
  vector<lower=0>[K] n;
  matrix[K, P] xbar;
  vector[K] ybar;  // mean over the design's groups
  real<lower=0> n_ybar_ss;  // sum over groups of n (ybar - design ybar)^2
  array[{q}] vector[K] nzbar;  // n zbar per group term
  array[{q}] vector[K] szy;  // centred Z'y, mean over the design's groups
  array[{q}] matrix[K, P] szx;  // centred Z'X
  array[{q}, {q}] vector[K] ztz;  // Z'Z
  int<lower=0> C;  // scatter columns: {q} when some design pools groups, else 0
  array[C, {q}] vector[K] scatter;
  real<lower=0> syy;  // totals of the within-group centred sums
  vector[P] sxy;
  matrix[P, P] sxx;"""

TRANSFORMED_DATA = """\
transformed data {
  real n_total = dot_product(groups, n);
  real n_groups = sum(groups);
  vector[K] gn = groups .* n;
}
"""


def _a(i: int, j: int, correlated: bool) -> str:
    """Element (i, j) of A = Sigma^-1 + w Z'Z (1-based, j <= i)."""
    # rep_vector: a real plus a vector would make the local an array of K nodes under --O1;
    # Sigma^-1 = diag(1/sd) Omega^-1 diag(1/sd) element by element, as matrix functions of
    # group_sd would make it (and through it beta and m) arrays of nodes too.
    if correlated:
        s_inv = f"omega_inv[{i}, {j}] / (group_sd[{i}] * group_sd[{j}])"
        return f"rep_vector({s_inv}, K) + w * ztz[{i}, {j}]"
    return f"rep_vector(s_inv[{i}], K) + w * ztz[{i}, {j}]" if i == j else f"w * ztz[{i}, {j}]"


def _cholesky(q: int, correlated: bool) -> list[str]:
    """L (lower, L_i_j) with L L' = A, one vector[K] per element."""
    lines = []
    for i in range(1, q + 1):
        for j in range(1, i + 1):
            s = _a(i, j, correlated)
            for k in range(1, j):
                s += f" - L_{i}_{k} .* L_{j}_{k}"
            value = f"sqrt({s})" if i == j else f"({s}) ./ L_{j}_{j}"
            lines.append(f"    vector[K] L_{i}_{j} = {value};")
    return lines


def _forward(q: int, rhs: str, out: str, indent: str) -> list[str]:
    """out_i with L out = rhs (rhs formatted with the 1-based index i)."""
    lines = []
    for i in range(1, q + 1):
        s = rhs.format(i=i) + "".join(f" - L_{i}_{k} .* {out}_{k}" for k in range(1, i))
        lines.append(f"{indent}vector[K] {out}_{i} = ({s}) ./ L_{i}_{i};")
    return lines


def likelihood(q: int, correlated: bool) -> str:
    """The model block's marginal log-likelihood (designs_loglik's algebra)."""
    if correlated:
        sigma_lines = [
            f"    matrix[{q}, {q}] omega_inv = chol2inv(L_Omega);",
            "    real log_det_sigma = 2 * (sum(log(group_sd)) + sum(log(diagonal(L_Omega))));",
        ]
    else:
        sigma_lines = [
            f"    vector[{q}] s_inv = inv_square(group_sd);",
            "    real log_det_sigma = 2 * sum(log(group_sd));",
        ]
    squares = lambda name: " + ".join(f"square({name}_{i})" for i in range(1, q + 1))  # noqa: E731
    log_diag = " + ".join(f"log(L_{i}_{i})" for i in range(1, q + 1))
    lines = [
        "  {",
        "    real w = inv_square(sigma);",
        "    vector[K] m = ybar - xbar * beta;",
        "    real rr = syy - 2 * dot_product(beta, sxy) + quad_form(sxx, beta) + n_ybar_ss",
        "              + dot_product(gn, square(m));",
        *sigma_lines,
        *_cholesky(q, correlated),
        *_forward(q, "szy[{i}] - szx[{i}] * beta + nzbar[{i}] .* m", "v", "    "),
        "    real quad = dot_product(groups, " + squares("v") + ");",
        "    for (c in 1:C) {",
        *_forward(q, "scatter[c, {i}]", "t", "      "),
        "      quad += sum(" + squares("t") + ");",
        "    }",
        f"    target += -0.5 * (n_total * ({LOG_2PI!r} + 2 * log(sigma)) + n_groups * log_det_sigma",
        f"                      + 2 * dot_product(groups, {log_diag}))",
        "              - 0.5 * w * rr + 0.5 * square(w) * quad;",
        "  }",
    ]
    return "\n".join(lines)


def program(shape, hyper_data: str, hyper_parameters: tuple[str, str], hyper_model: str) -> str:
    """The whole marginal program."""
    q = shape.q
    params, transformed = hyper_parameters
    generated = ""
    if shape.correlated:
        generated = (
            "generated quantities {\n"
            f"  matrix[{q}, {q}] group_corr = multiply_lower_tri_self_transpose(L_Omega);\n}}\n"
        )
    return (
        f"data {{\n{hyper_data}\n{DATA.format(q=q)}\n}}\n"
        + TRANSFORMED_DATA
        + f"parameters {{\n{params}\n}}\n"
        + f"transformed parameters {{\n{transformed}\n}}\n"
        + f"model {{\n{hyper_model}\n{likelihood(q, shape.correlated)}\n}}\n"
        + generated
    )


def data(model, dataset) -> dict:
    """The statistics of the pooled designs, in the data block's layout."""
    stats, p, z = dataset.stats, model.n_terms, model.group_term_index
    d = designs(model, stats)
    k = d.n_designs
    lead = np.unique(d.design, return_index=True)[1]  # designs are numbered by first group
    szx = stats.cross[lead][:, z, :p]  # (K, q, p): equal within a design
    szy = np.stack([np.bincount(d.design, stats.cross[:, zi, p], minlength=k) for zi in z], 1)
    szy = szy / d.groups[:, None]
    nzbar = d.n[:, None] * d.xbar[:, z]
    q = len(z)
    return {
        "K": k,
        "groups": d.groups,
        "n": d.n,
        "xbar": d.xbar,
        "ybar": d.ybar,
        "n_ybar_ss": float(np.dot(d.n, d.ybar_ss)),
        "nzbar": nzbar.T,
        "szy": szy.T,
        "szx": np.moveaxis(szx, 1, 0),
        "ztz": np.moveaxis(d.ztz, 0, -1),
        "C": q if d.pooled else 0,
        # scatter[c, i] = column c of the design's scatter factor, entry i.
        "scatter": np.moveaxis(d.scatter, 0, -1).transpose(1, 0, 2)
        if d.pooled
        else np.zeros((0, q, k)),
        "syy": d.syy,
        "sxy": d.sxy,
        "sxx": d.sxx,
    }
