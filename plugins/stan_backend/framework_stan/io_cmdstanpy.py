"""cmdstanpy fit (CmdStanMCMC) -> arrays shaped (chain, draw, ...) -> the common posterior."""

from __future__ import annotations

import numpy as np

from .io_pystan import SAMPLER_STATS, stan_variables


def variable(fit, name: str) -> np.ndarray:
    """One Stan variable as (chain, draw, *dims); scalars as (chain, draw)."""
    # stan_variable flattens chains in chain order: chain 1's draws first.
    values = np.asarray(fit.stan_variable(name))
    return values.reshape(fit.chains, -1, *values.shape[1:])


def method_variable(values, chains: int) -> np.ndarray:
    """A sampler column from method_variables() (draws x chains) as (chain, draw)."""
    values = np.asarray(values)
    return values.reshape(values.shape[0], chains).T


def to_posterior(fit, problem, settings, attrs: dict):
    """The common posterior from a cmdstanpy fit of one of our programs."""
    from framework import complete_posterior

    draws = {name: variable(fit, name).astype(float) for name in stan_variables(problem)}
    columns = fit.method_variables()
    stats = {}
    for column, (name, dtype) in SAMPLER_STATS.items():
        if column in columns:
            stats[name] = method_variable(columns[column], fit.chains).astype(dtype)
    return complete_posterior(problem, settings, draws, stats, attrs)
