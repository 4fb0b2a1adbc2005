"""The full programs: every group's coefficients sampled from the rows, centred or non-centred.

coef (J x q) holds each group's coefficients on the natural scale (beta_z
plus its deviation); the linear predictor is X beta over the terms that do
not vary by group plus, per row, its group terms' columns dotted with its
group's coefficients. Correlated effects use a Cholesky-factored LKJ prior:
deviations ~ N(0, L L') with L = diag(group_sd) L_Omega.
"""

from __future__ import annotations

import numpy as np

DATA = """\
  int<lower=1> N;
  int<lower=1> J;
  matrix[N, P] X;
  vector[N] y;
  array[N] int<lower=1, upper=J> g;
  array[{q}] int<lower=1, upper=P> gt;  // the group terms among the terms
  int<lower=0> F;
  array[F] int<lower=1, upper=P> ft;  // the other terms"""

TRANSFORMED_DATA = """\
transformed data {{
  matrix[N, F] XF = X[:, ft];
  matrix[N, {q}] XZ = X[:, gt];
}}
"""

LIKELIHOOD = "  y ~ normal(XF * beta[ft] + rows_dot_product(XZ, coef[g]), sigma);"


def _deviations(correlated: bool) -> str:
    """The deviations (q x J) from standard normal z_dev."""
    if correlated:
        return "diag_pre_multiply(group_sd, L_Omega) * z_dev"
    return "diag_pre_multiply(group_sd, z_dev)"


def program(shape, hyper_data: str, hyper_parameters: tuple[str, str], hyper_model: str) -> str:
    """The whole full program for the Shape's parameterisation."""
    q, correlated = shape.q, shape.correlated
    params, transformed = hyper_parameters
    mean = "rep_matrix(beta[gt]', J)"
    if shape.parameterisation == "centred":
        params += f"\n  matrix[J, {q}] coef;"
        if correlated:
            # multi_normal_cholesky written out over the whole matrix (one triangular solve),
            # so coef stays a matrix that coef[g] can index row-wise.
            group_model = [
                "  {",
                f"    matrix[{q}, {q}] L = diag_pre_multiply(group_sd, L_Omega);",
                f"    target += -0.5 * dot_self(to_vector(mdivide_left_tri_low(L, (coef - {mean})')))",
                "              - J * sum(log(diagonal(L)));",
                "  }",
            ]
        else:
            group_model = [
                f"  to_vector(coef) ~ normal(to_vector({mean}), "
                f"to_vector(rep_matrix(group_sd', J)));"
            ]
    else:
        params += f"\n  matrix[{q}, J] z_dev;"
        transformed += f"\n  matrix[J, {q}] coef = {mean} + ({_deviations(correlated)})';"
        group_model = ["  to_vector(z_dev) ~ std_normal();"]
    generated = ""
    if correlated:
        generated = (
            "generated quantities {\n"
            f"  matrix[{q}, {q}] group_corr = multiply_lower_tri_self_transpose(L_Omega);\n}}\n"
        )
    return (
        f"data {{\n{hyper_data}\n{DATA.format(q=q)}\n}}\n"
        + TRANSFORMED_DATA.format(q=q)
        + f"parameters {{\n{params}\n}}\n"
        + f"transformed parameters {{\n{transformed}\n}}\n"
        + "model {\n"
        + hyper_model
        + "\n"
        + "\n".join(group_model)
        + "\n"
        + LIKELIHOOD
        + "\n}\n"
        + generated
    )


def data(model, dataset) -> dict:
    """The rows: design matrix, response and 1-based group codes."""
    z = model.group_term_index
    others = [j for j in range(model.n_terms) if j not in z]
    return {
        "N": int(dataset.n_rows),
        "J": int(dataset.n_groups),
        "X": np.asarray(dataset.X, dtype=float),
        "y": np.asarray(dataset.y, dtype=float),
        "g": np.asarray(dataset.codes, dtype=np.int64) + 1,
        "gt": np.asarray(z, dtype=np.int64) + 1,
        "F": len(others),
        "ft": np.asarray(others, dtype=np.int64) + 1,
    }
