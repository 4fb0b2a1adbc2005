"""The Stan program and its data, generated from the validated problem only.

The program text is a pure function of (method, parameterisation, the five
prior families): every number (data, prior arguments, uniform bounds) reaches
Stan as data, so changing them never recompiles. Each family maps to a fixed
statement template; nothing a user wrote is pasted into the program. The
marginal program also takes the centre and scale of its sampling coordinates
as data (scaling.py) and names the stanc options it needs in its header.
"""

from __future__ import annotations

import hashlib

import numpy as np

from framework import FAMILIES, HYPERPARAMETERS, BackendError, design_stats

from .scaling import centre_and_scale

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
  int<lower=1> K;
  vector<lower=1>[K] groups;
  vector<lower=0>[K] n;
  vector[K] xbar;
  vector<lower=0>[K] sxx;
  vector[K] ybar;
  vector[K] sxy;
  vector<lower=0>[K] ybar_ss;
  vector<lower=0>[K] sxy_ss;
  vector<lower=0>[K] f_ss;
  real<lower=0> syy_total;"""

FULL_DATA = """\
  int<lower=1> N;
  vector[N] y;
  vector[N] x;
  array[N] int<lower=1, upper=J> g;"""

# framework.group_effects.marginal_loglik, rearranged so that each design (groups sharing n,
# xbar and sxx: framework.design_stats) costs a few vector operations (u, v, w: the precisions
# 1/intercept_sigma^2, 1/slope_sigma^2, 1/error_sigma^2). Per group j:
#   det A_j = uv + w (u sx2_j + v n_j) + w^2 n_j sxx_j           (sx2 = sxx + n xbar^2)
#   b'A^-1 b det A_j = w^2 (v n^2 m^2 + u f^2 + w (n^2 sxx m^2 + n e^2))_j
# with m = ybar - intercept_mu - slope_mu xbar, e = sxy - slope_mu sxx, f = e + n xbar m. Within
# a design only m, e and f vary, and their sums of squares over its groups are the centred sums
# of the data plus groups x (the design mean's value)^2 (mm, ee, ff): sums of non-negative terms,
# so no cancellation; r'r enters only through its total.
MARGINAL_TRANSFORMED_DATA = """\
transformed data {
  real n_total = dot_product(groups, n);
  real sxy_total = dot_product(groups, sxy);
  real sxx_total = dot_product(groups, sxx);
  vector[K] nxbar = n .* xbar;
  vector[K] sx2 = sxx + nxbar .* xbar;
  vector[K] nsxx = n .* sxx;
  vector[K] n2 = square(n);
  vector[K] n2sxx = n2 .* sxx;
}
"""

# rep_vector(...) makes each local a single autodiff node holding K values under stanc's
# --O1 (struct of arrays) rather than K nodes: ~5x faster gradients at K = 10,000.
MARGINAL_LIKELIHOOD = """\
  {
    real w = inv_square(error_sigma);
    real u = inv_square(intercept_sigma);
    real v = inv_square(slope_sigma);
    vector[K] m = ybar - rep_vector(intercept_mu, K) - slope_mu * xbar;
    vector[K] e = sxy - rep_vector(slope_mu, K) .* sxx;
    vector[K] f = e + nxbar .* m;
    vector[K] mm = ybar_ss + groups .* (m .* m);
    vector[K] ee = sxy_ss + groups .* (e .* e);
    vector[K] ff = f_ss + groups .* (f .* f);
    vector[K] det = rep_vector(u * v, K) + (u * w) * sx2 + (v * w) * n + square(w) * nsxx;
    vector[K] q = (v * n2 + w * n2sxx) .* mm + u * ff + w * (n .* ee);
    target += -0.5 * (n_total * (log(2 * pi()) - log(w)) - J * log(u * v)
                      + dot_product(groups, log(det))
                      + w * (syy_total - slope_mu * (2 * sxy_total - slope_mu * sxx_total)
                             + dot_product(n, mm))
                      - square(w) * sum(q ./ det));
  }"""

# The marginal program samples u = centre + scale * z for each hyperparameter's unconstrained
# value u (centre and scale are data from scaling.py), then applies Stan's own constraining
# transform and its log Jacobian: same posterior, coordinates the sampler finds at once.
TRANSFORMS = {
    "positive": ("exp({u})", "{u}"),
    "interval": (
        "{p}[1] + ({p}[2] - {p}[1]) * inv_logit({u})",
        "log({p}[2] - {p}[1]) + log_inv_logit({u}) + log1m_inv_logit({u})",
    ),
}
SCALING_DATA = """\
  vector[5] u_centre;
  vector<lower=0>[5] u_scale;"""

# Options for stanc, named in the program's second line (so the compiled-model caches, keyed
# by the text, never mix optimisation levels); engines read them back with `stanc_options`.
STANC_OPTIONS = {"marginal": ("--O1",), "full": ()}
STANC_LINE = "// stanc options:"
KNOWN_STANC_OPTIONS = ("--O1",)

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
    header = (
        "// Generated by framework_stan from the method, parameterisation and prior families.\n"
    )
    if STANC_OPTIONS[method]:
        header += f"{STANC_LINE} {' '.join(STANC_OPTIONS[method])}\n"
    if method == "marginal":
        return header + _marginal(families)
    data_lines, param_lines, prior_lines = [], [], []
    for name in HYPERPARAMETERS:
        bounds, statement, n_args = prior_template(families[name])
        p = prior_data_name(name)
        data_lines.append(f"  array[{n_args}] real {p};")
        param_lines.append(f"  real{bounds.format(p=p)} {name};")
        prior_lines.append("  " + statement.format(v=name, p=p))
    centred = parameterisation == "centred"
    group_params = CENTRED_PARAMETERS if centred else NON_CENTRED_PARAMETERS
    parts = [
        header,
        "data {\n  int<lower=1> J;\n" + FULL_DATA + "\n" + "\n".join(data_lines) + "\n}\n",
    ]
    parts.append("parameters {\n" + "\n".join(param_lines) + "\n" + group_params + "\n}\n")
    if not centred:
        parts.append(NON_CENTRED_TRANSFORMED)
    group_model = CENTRED_MODEL if centred else NON_CENTRED_MODEL
    parts.append(
        "model {\n" + "\n".join(prior_lines) + "\n" + group_model + "\n" + ROWS_LIKELIHOOD + "\n}\n"
    )
    return "".join(parts)


def _marginal(families: dict[str, str]) -> str:
    data, params, transformed, jacobians, priors = [], [], [], [], []
    for k, name in enumerate(HYPERPARAMETERS, start=1):
        family = families[name]
        _, statement, n_args = prior_template(family)
        p = prior_data_name(name)
        data.append(f"  array[{n_args}] real {p};")
        scaled = f"real<offset=u_centre[{k}], multiplier=u_scale[{k}]>"
        support = FAMILIES[family].support
        if support == "real":
            params.append(f"  {scaled} {name};")
        else:
            u = f"{name}_unc"
            value, jacobian = TRANSFORMS[support]
            params.append(f"  {scaled} {u};")
            transformed.append(f"  real {name} = {value.format(u=u, p=p)};")
            jacobians.append(f"  target += {jacobian.format(u=u, p=p)};")
        priors.append("  " + statement.format(v=name, p=p))
    block = "\n".join
    return (
        "data {\n  int<lower=1> J;\n"
        + MARGINAL_DATA
        + "\n"
        + block(data)
        + "\n"
        + SCALING_DATA
        + "\n}\n"
        + MARGINAL_TRANSFORMED_DATA
        + "parameters {\n"
        + block(params)
        + "\n}\n"
        + ("transformed parameters {\n" + block(transformed) + "\n}\n" if transformed else "")
        + "model {\n"
        + block(jacobians + priors)
        + "\n"
        + MARGINAL_LIKELIHOOD
        + "\n}\n"
    )


def stanc_options(code: str) -> tuple[str, ...]:
    """The stanc options a generated program names in its header (only known ones)."""
    for line in code.splitlines()[:3]:
        if line.startswith(STANC_LINE):
            return tuple(o for o in line[len(STANC_LINE) :].split() if o in KNOWN_STANC_OPTIONS)
    return ()


def program_for(problem) -> str:
    """The Stan program of a `framework.Problem`."""
    families = {name: problem.priors[name].family for name in HYPERPARAMETERS}
    return generate(problem.method, problem.parameterisation, families)


def data_for(problem) -> dict:
    """The data block's values for a problem: statistics or rows, and the prior arguments."""
    ds = problem.dataset
    data: dict = {"J": int(ds.n_groups)}
    if problem.method == "marginal":
        designs = design_stats(ds.stats)
        data["K"] = designs.n_designs
        for key, values in designs.as_dict().items():
            data[key] = values if key == "syy_total" else np.asarray(values, dtype=float)
        data["u_centre"], data["u_scale"] = centre_and_scale(ds.stats, problem.priors)
    else:
        data.update(N=int(ds.n_rows), y=ds.y, x=ds.x, g=np.asarray(ds.codes, dtype=np.int64) + 1)
    for name in HYPERPARAMETERS:
        data[prior_data_name(name)] = [float(a) for a in problem.priors[name].args]
    return data


def digest(program: str) -> str:
    """The sha256 of a program's text, naming its compiled artefacts."""
    return hashlib.sha256(program.encode()).hexdigest()
