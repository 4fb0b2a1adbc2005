"""pystan 3 fit -> arrays shaped (chain, draw[, group]) -> the common posterior."""

from __future__ import annotations

import numpy as np

from framework import GROUP_PARAMETERS, HYPERPARAMETERS

from .assemble import assemble

# Stan's sampler columns -> ArviZ's sample_stats names and dtypes.
SAMPLER_STATS = {
    "divergent__": ("diverging", bool),
    "treedepth__": ("tree_depth", np.int64),
    "energy__": ("energy", float),
    "stepsize__": ("step_size", float),
    "n_leapfrog__": ("n_steps", np.int64),
    "accept_stat__": ("acceptance_rate", float),
    "lp__": ("lp", float),
}


def chain_draw(fit, name: str) -> np.ndarray:
    """One variable as (chain, draw, *dims); scalars as (chain, draw)."""
    # fit[name] is (*dims, draws * chains) with the chain index varying fastest.
    values = np.asarray(fit[name])
    dims = values.shape[:-1]
    values = values.reshape(*dims, -1, fit.num_chains)
    values = np.moveaxis(values, (-1, -2), (0, 1))
    if name.endswith("__") or name in HYPERPARAMETERS:  # scalars come as dims (1,)
        values = values.reshape(values.shape[:2])
    return values


def to_posterior(fit, problem, settings, attrs: dict):
    """The common InferenceData from a pystan fit of one of our programs."""
    hyper = {name: chain_draw(fit, name).astype(float) for name in HYPERPARAMETERS}
    groups = None
    if problem.method == "full":
        groups = {name: chain_draw(fit, name).astype(float) for name in GROUP_PARAMETERS}
    stats = {}
    for column, (name, dtype) in SAMPLER_STATS.items():
        if column in fit.sample_and_sampler_param_names:
            stats[name] = chain_draw(fit, column).astype(dtype)
    return assemble(problem, settings, hyper, groups, stats, attrs)
