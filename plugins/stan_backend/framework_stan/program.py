"""The Stan program and its data, generated from the validated problem only.

The program text is a pure function of (method, parameterisation, the five
prior families): every number (data, prior arguments, uniform bounds) reaches
Stan as data, so changing them never recompiles. Each family maps to a fixed
statement template; nothing a user wrote is pasted into the program.
"""

from __future__ import annotations

import hashlib

import numpy as np

from framework import FAMILIES, HYPERPARAMETERS, BackendError

METHODS = ("marginal", "full")
PARAMETERISATIONS = ("centred", "non_centred")

# Family -> sampling statement; {v} is the parameter, {p} its data array of prior arguments.
STATEMENTS: dict[str, str] = {
    "normal": "{v} ~ normal({p}[1], {p}[2]);",
    "student_t": "{v} ~ student_t({p}[1], {p}[2], {p}[3]);",
    "cauchy": "{v} ~ cauchy({p}[1], {p}[2]);",
    "uniform": "{v} ~ uniform({p}[1], {p}[2]);",
    "half_normal": "{v} ~ normal(0, {p}[1]);",
    "half_cauchy": "{v} ~ cauchy(0, {p}[1]);",
    "half_student_t": "{v} ~ student_t({p}[1], 0, {p}[2]);",
    "exponential": "{v} ~ exponential({p}[1]);",
    "gamma": "{v} ~ gamma({p}[1], {p}[2]);",
    "inv_gamma": "{v} ~ inv_gamma({p}[1], {p}[2]);",
    "lognormal": "{v} ~ lognormal({p}[1], {p}[2]);",
}

# Support -> constraint on the parameter; interval bounds come from the prior's data.
BOUNDS = {"real": "", "positive": "<lower=0>", "interval": "<lower={p}[1], upper={p}[2]>"}

MARGINAL_DATA = """\
  vector<lower=0>[J] n;
  vector[J] xbar;
  vector[J] ybar;
  vector[J] sxx;
  vector[J] sxy;
  vector[J] syy;"""

FULL_DATA = """\
  int<lower=1> N;
  vector[N] y;
  vector[N] x;
  array[N] int<lower=1, upper=J> g;"""

# Mirrors framework.group_effects.marginal_loglik term by term, vectorised over groups.
MARGINAL_TRANSFORMED_DATA = """\
transformed data {
  real n_total = sum(n);
  vector[J] sx2 = sxx + n .* square(xbar);
}
"""

MARGINAL_LIKELIHOOD = """\
  {
    real s2 = square(error_sigma);
    vector[J] mean_resid = ybar - intercept_mu - slope_mu * xbar;
    vector[J] rr = syy - 2 * slope_mu * sxy + square(slope_mu) * sxx + n .* square(mean_resid);
    vector[J] b0 = n .* mean_resid / s2;
    vector[J] b1 = (sxy - slope_mu * sxx + xbar .* n .* mean_resid) / s2;
    vector[J] a11 = inv_square(intercept_sigma) + n / s2;
    vector[J] a12 = n .* xbar / s2;
    vector[J] a22 = inv_square(slope_sigma) + sx2 / s2;
    vector[J] det_a = a11 .* a22 - square(a12);
    vector[J] quad = rr / s2
                     - (a22 .* square(b0) - 2 * a12 .* b0 .* b1 + a11 .* square(b1)) ./ det_a;
    target += -0.5 * (n_total * log(2 * pi()) + n_total * log(s2)
                      + 2 * J * (log(intercept_sigma) + log(slope_sigma))
                      + sum(log(det_a)) + sum(quad));
  }"""

CENTRED_PARAMETERS = """\
  vector[J] intercept;
  vector[J] slope;"""

CENTRED_MODEL = """\
  intercept ~ normal(intercept_mu, intercept_sigma);
  slope ~ normal(slope_mu, slope_sigma);"""

NON_CENTRED_PARAMETERS = """\
  vector[J] intercept_z;
  vector[J] slope_z;"""

NON_CENTRED_TRANSFORMED = """\
transformed parameters {
  vector[J] intercept = intercept_mu + intercept_sigma * intercept_z;
  vector[J] slope = slope_mu + slope_sigma * slope_z;
}
"""

NON_CENTRED_MODEL = """\
  intercept_z ~ std_normal();
  slope_z ~ std_normal();"""

ROWS_LIKELIHOOD = "  y ~ normal(intercept[g] + slope[g] .* x, error_sigma);"


def prior_data_name(parameter: str) -> str:
    """The data array holding the prior arguments of one hyperparameter."""
    return f"p_{parameter}"


def prior_template(family: str) -> tuple[str, str, int]:
    """(bounds, statement, number of arguments) of a prior family; {p} and {v} to fill in."""
    if family not in STATEMENTS or family not in FAMILIES:
        raise BackendError(
            f"backend 'stan' has no Stan template for the prior family '{family}': "
            "use one of " + ", ".join(sorted(set(STATEMENTS) & set(FAMILIES)))
        )
    fam = FAMILIES[family]
    return BOUNDS[fam.support], STATEMENTS[family], len(fam.params)


def generate(method: str, parameterisation: str, families: dict[str, str]) -> str:
    """The Stan program for a method, a parameterisation and the hyperparameters' prior families."""
    if method not in METHODS:
        raise BackendError(
            f"backend 'stan': unknown method '{method}'; use one of {', '.join(METHODS)}"
        )
    if method == "full" and parameterisation not in PARAMETERISATIONS:
        raise BackendError(
            f"backend 'stan': unknown parameterisation '{parameterisation}'; "
            f"use one of {', '.join(PARAMETERISATIONS)}"
        )
    data_lines, param_lines, prior_lines = [], [], []
    for name in HYPERPARAMETERS:
        bounds, statement, n_args = prior_template(families[name])
        p = prior_data_name(name)
        data_lines.append(f"  array[{n_args}] real {p};")
        param_lines.append(f"  real{bounds.format(p=p)} {name};")
        prior_lines.append("  " + statement.format(v=name, p=p))

    parts = [
        "// Generated by framework_stan from the method, parameterisation and prior families.\n"
    ]
    body = MARGINAL_DATA if method == "marginal" else FULL_DATA
    parts.append("data {\n  int<lower=1> J;\n" + body + "\n" + "\n".join(data_lines) + "\n}\n")
    if method == "marginal":
        parts.append(MARGINAL_TRANSFORMED_DATA)
        parts.append("parameters {\n" + "\n".join(param_lines) + "\n}\n")
        parts.append("model {\n" + "\n".join(prior_lines) + "\n" + MARGINAL_LIKELIHOOD + "\n}\n")
        return "".join(parts)
    centred = parameterisation == "centred"
    group_params = CENTRED_PARAMETERS if centred else NON_CENTRED_PARAMETERS
    parts.append("parameters {\n" + "\n".join(param_lines) + "\n" + group_params + "\n}\n")
    if not centred:
        parts.append(NON_CENTRED_TRANSFORMED)
    group_model = CENTRED_MODEL if centred else NON_CENTRED_MODEL
    parts.append(
        "model {\n" + "\n".join(prior_lines) + "\n" + group_model + "\n" + ROWS_LIKELIHOOD + "\n}\n"
    )
    return "".join(parts)


def program_for(problem) -> str:
    """The Stan program of a `framework.Problem`."""
    families = {name: problem.priors[name].family for name in HYPERPARAMETERS}
    return generate(problem.method, problem.parameterisation, families)


def data_for(problem) -> dict:
    """The data block's values for a problem: statistics or rows, and the prior arguments."""
    ds = problem.dataset
    data: dict = {"J": int(ds.n_groups)}
    if problem.method == "marginal":
        for key, values in ds.stats.as_dict().items():
            data[key] = np.asarray(values, dtype=float)
    else:
        data.update(N=int(ds.n_rows), y=ds.y, x=ds.x, g=np.asarray(ds.codes, dtype=np.int64) + 1)
    for name in HYPERPARAMETERS:
        data[prior_data_name(name)] = [float(a) for a in problem.priors[name].args]
    return data


def digest(program: str) -> str:
    """The sha256 of a program's text, naming its compiled artefacts."""
    return hashlib.sha256(program.encode()).hexdigest()
