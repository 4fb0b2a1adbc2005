"""Method "full": the whole hierarchical model built through Bambi and sampled by NUTS.

The data go into a DataFrame with fixed column names (y, x, g) and group
levels named by their code (g0, g1, ...), so nothing the user wrote reaches
the formula parser; the group effects are independent, `(x | g)` in Bambi's
formula language. Bambi's names and its own level order never leave this
module: draws are mapped back by level name to `dataset.labels` order.
"""

from __future__ import annotations

import numpy as np

from framework import SamplingError

from . import engine
from .priors import bambi_prior

FORMULA = "y ~ x + (x | g)"
# Bambi's variable for each framework quantity (before adding common and group parts).
INTERCEPT, SLOPE = "Intercept", "x"
INTERCEPT_GROUP, SLOPE_GROUP = "1|g", "x|g"
HYPER_NAMES = {
    "intercept_mu": "Intercept",
    "slope_mu": "x",
    "intercept_sigma": "1|g_sigma",
    "slope_sigma": "x|g_sigma",
    "error_sigma": "sigma",
}
VAR_NAMES = [INTERCEPT, SLOPE, INTERCEPT_GROUP, SLOPE_GROUP, "1|g_sigma", "x|g_sigma", "sigma"]


def level_names(n_groups: int) -> list[str]:
    return [f"g{i}" for i in range(n_groups)]


def frame(dataset):
    """The data under safe names; group levels are 'g' + code."""
    import pandas as pd

    levels = level_names(dataset.n_groups)
    groups = pd.Categorical.from_codes(dataset.codes, categories=levels)
    return pd.DataFrame({"y": dataset.y, "x": dataset.x, "g": groups})


def bambi_priors(priors) -> dict:
    """The framework's five priors as Bambi term priors (independent group effects)."""
    import bambi as bmb

    return {
        "Intercept": bambi_prior(priors["intercept_mu"]),
        "x": bambi_prior(priors["slope_mu"]),
        "1|g": bmb.Prior("Normal", mu=0.0, sigma=bambi_prior(priors["intercept_sigma"])),
        "x|g": bmb.Prior("Normal", mu=0.0, sigma=bambi_prior(priors["slope_sigma"])),
        "sigma": bambi_prior(priors["error_sigma"]),
    }


def build_model(problem):
    """The Bambi model (built, so `.backend.model` is the PyMC model)."""
    import bambi as bmb

    model = bmb.Model(
        FORMULA,
        frame(problem.dataset),
        priors=bambi_priors(problem.priors),
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
    draws = engine.sample(model.backend.model, VAR_NAMES, sampler, settings, options)
    post = draws.posterior
    hyper = {
        name: np.asarray(post[var].values, dtype=np.float64) for name, var in HYPER_NAMES.items()
    }
    n_groups = problem.dataset.n_groups
    offsets = {
        var: _in_dataset_order(post[var], n_groups) for var in (INTERCEPT_GROUP, SLOPE_GROUP)
    }
    groups = {
        "intercept": hyper["intercept_mu"][..., None] + offsets[INTERCEPT_GROUP],
        "slope": hyper["slope_mu"][..., None] + offsets[SLOPE_GROUP],
    }
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
