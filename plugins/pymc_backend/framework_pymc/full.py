"""Method "full": the whole hierarchical model built through Bambi and sampled by NUTS.

The data go into a DataFrame with fixed column names (y, x, g) and group
levels named by their code (g0, g1, ...), so nothing the user wrote reaches
the formula parser; the group effects are independent, `(x | g)` in Bambi's
formula language, written per parameterisation (`Form`). Bambi's names and its
own level order never leave this module: draws are mapped back by level name to
`dataset.labels` order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework import SamplingError

from . import engine
from .priors import bambi_prior

# Bambi's names for what both forms share: the standard deviations and the group terms.
SIGMAS = {"intercept_sigma": "1|g_sigma", "slope_sigma": "x|g_sigma", "error_sigma": "sigma"}
GROUPS = {"intercept": "1|g", "slope": "x|g"}


@dataclass(frozen=True)
class Form:
    """How one parameterisation is written in Bambi, and where each framework quantity lands."""

    formula: str
    means: dict[str, str]  # intercept_mu / slope_mu -> Bambi variable
    offsets: bool  # group variables are offsets from the common term (non-centred) or effects

    @property
    def hyper(self) -> dict[str, str]:
        return {**self.means, **SIGMAS}

    @property
    def var_names(self) -> list[str]:
        return [*self.hyper.values(), *GROUPS.values()]


# Centred: intercept_j ~ N(intercept_mu, intercept_sigma) itself, the group terms' means being
# hyperpriors. Bambi's `y ~ x + (x | g)` with centred offsets instead puts a ridge between the
# common Intercept and the offsets: on 1,000 groups x 100 rows, same seed, nutpie reached
# R-hat 1.02 and min ESS 353 in 260 s that way, against R-hat 1.01 and 3,809 in 249 s this way.
CENTRED = Form("y ~ 0 + (x | g)", {"intercept_mu": "1|g_mu", "slope_mu": "x|g_mu"}, offsets=False)
# Non-centred: Bambi's own form, effect_j = common term + sigma * offset_j with offset_j ~ N(0, 1).
NON_CENTRED = Form("y ~ x + (x | g)", {"intercept_mu": "Intercept", "slope_mu": "x"}, offsets=True)


def form(parameterisation: str) -> Form:
    return NON_CENTRED if parameterisation == "non_centred" else CENTRED


def level_names(n_groups: int) -> list[str]:
    return [f"g{i}" for i in range(n_groups)]


def frame(dataset):
    """The data under safe names; group levels are 'g' + code."""
    import pandas as pd

    levels = level_names(dataset.n_groups)
    groups = pd.Categorical.from_codes(dataset.codes, categories=levels)
    return pd.DataFrame({"y": dataset.y, "x": dataset.x, "g": groups})


def bambi_priors(priors, form: Form) -> dict:
    """The framework's five priors as Bambi term priors (independent group effects)."""
    import bambi as bmb

    def group_term(effect: str):
        mu = 0.0 if form.offsets else bambi_prior(priors[f"{effect}_mu"])
        return bmb.Prior("Normal", mu=mu, sigma=bambi_prior(priors[f"{effect}_sigma"]))

    common = {"Intercept": priors["intercept_mu"], "x": priors["slope_mu"]} if form.offsets else {}
    return {
        **{name: bambi_prior(prior) for name, prior in common.items()},
        "1|g": group_term("intercept"),
        "x|g": group_term("slope"),
        "sigma": bambi_prior(priors["error_sigma"]),
    }


def build_model(problem):
    """The Bambi model (built, so `.backend.model` is the PyMC model)."""
    import bambi as bmb

    chosen = form(problem.parameterisation)
    model = bmb.Model(
        chosen.formula,
        frame(problem.dataset),
        priors=bambi_priors(problem.priors, chosen),
        categorical=["g"],
        noncentered=problem.parameterisation == "non_centred",
        # The priors are the user's, on the natural scale: no rescaling, no centring of x.
        auto_scale=False,
        center_predictors=False,
    )
    model.build()
    return model


def fit(problem, settings, options) -> tuple[dict, dict, engine.Draws]:
    """Sample the full model; natural-scale arrays shaped (chain, draw[, group]) in dataset order."""
    sampler = options["sampler"]
    problem.report(
        f"pymc: building the full model with bambi ({problem.dataset.n_groups} groups, "
        f"{problem.parameterisation} group effects)"
    )
    model = build_model(problem)
    problem.report(
        f"pymc: compiling and sampling with {sampler} "
        f"({settings.chains} chains x {settings.warmup} warmup + {settings.draws} draws)"
    )
    chosen = form(problem.parameterisation)
    draws = engine.sample(model.backend.model, chosen.var_names, sampler, settings, options)
    post = draws.posterior
    hyper = {
        name: np.asarray(post[var].values, dtype=np.float64) for name, var in chosen.hyper.items()
    }
    groups = {
        effect: _in_dataset_order(post[var], problem.dataset.n_groups)
        for effect, var in GROUPS.items()
    }
    if chosen.offsets:
        groups = {effect: hyper[f"{effect}_mu"][..., None] + v for effect, v in groups.items()}
    engine.check_finite({**hyper, **groups}, sampler)
    problem.report(f"pymc: sampled in {draws.sampling_seconds:.1f} s")
    return hyper, groups, draws


def _in_dataset_order(variable, n_groups: int) -> np.ndarray:
    """(chain, draw, level) draws reordered so the last axis follows the dataset's codes."""
    (dim,) = [d for d in variable.dims if d not in ("chain", "draw")]
    names = [str(v) for v in variable.coords[dim].values]
    position = {name: k for k, name in enumerate(names)}
    expected = level_names(n_groups)
    if len(names) != n_groups or set(names) != set(expected):
        raise SamplingError(
            f"backend 'pymc': bambi returned {len(names)} group levels for {n_groups} groups; "
            "this is a bug in the plugin: report it, or use sampler.method: marginal"
        )
    values = np.asarray(variable.transpose("chain", "draw", dim).values, dtype=np.float64)
    return values[..., [position[name] for name in expected]]
