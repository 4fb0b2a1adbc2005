"""pystan 3 fit -> arrays shaped (chain, draw, ...) -> the common posterior."""

from __future__ import annotations

import numpy as np

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
# Program variable -> posterior variable (the programs use the posterior's names).
BETA, GROUP_SD, GROUP_CORR, COEF = "beta", "group_sd", "group_corr", "coef"


def stan_variables(problem) -> list[str]:
    """The program variables a fit of `problem` returns, in the posterior's names."""
    model = problem.model
    names = [BETA, GROUP_SD, *([GROUP_CORR] if model.correlated else []), *model.family_parameters]
    return names + ([COEF] if problem.method == "full" else [])


def chain_draw(fit, name: str, scalar: bool) -> np.ndarray:
    """One variable as (chain, draw, *dims); scalars as (chain, draw)."""
    # fit[name] is (*dims, draws * chains) with the chain index varying fastest.
    values = np.asarray(fit[name])
    dims = values.shape[:-1]
    values = values.reshape(*dims, -1, fit.num_chains)
    values = np.moveaxis(values, (-1, -2), (0, 1))
    if scalar:  # scalars come as dims (1,)
        values = values.reshape(values.shape[:2])
    return values


def to_posterior(fit, problem, settings, attrs: dict):
    """The common posterior from a pystan fit of one of our programs."""
    from framework import complete_posterior

    scalars = set(problem.model.family_parameters)
    draws = {
        name: chain_draw(fit, name, name in scalars).astype(float)
        for name in stan_variables(problem)
    }
    stats = {}
    for column, (name, dtype) in SAMPLER_STATS.items():
        if column in fit.sample_and_sampler_param_names:
            stats[name] = chain_draw(fit, column, True).astype(dtype)
    return complete_posterior(problem, settings, draws, stats, attrs)
