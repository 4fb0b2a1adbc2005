"""From natural-scale draws shaped (chain, draw[, group]) to the common posterior."""

from __future__ import annotations

import numpy as np

from framework import SamplingError, build_posterior, draw_group_effects

# The group effects of "marginal" get their own random stream, derived from the sampler seed.
GROUP_EFFECTS_STREAM = 1


def group_effects_rng(seed: int) -> np.random.Generator:
    """The generator that draws the group effects of a marginal fit, derived from `seed`."""
    return np.random.default_rng([int(seed), GROUP_EFFECTS_STREAM])


def assemble(problem, settings, hyper: dict, groups: dict | None, sample_stats: dict, attrs: dict):
    """The common InferenceData; for "marginal" (`groups` None) the group effects are drawn exactly."""
    engine = attrs.get("engine", "?")
    _check_finite(hyper, engine)
    if groups is None:
        intercept, slope = draw_group_effects(
            problem.dataset.stats, **hyper, seed=group_effects_rng(settings.seed)
        )
        groups = {"intercept": intercept, "slope": slope}
    _check_finite(groups, engine)
    stats = dict(sample_stats)
    diverging = np.asarray(stats.pop("diverging")).astype(bool)
    return build_posterior(hyper, groups, problem.dataset, diverging, stats, attrs)


def _check_finite(arrays: dict, engine: str) -> None:
    bad = [name for name, values in arrays.items() if not np.all(np.isfinite(values))]
    if bad:
        raise SamplingError(
            f"backend 'stan' ({engine}) returned non-finite draws for {', '.join(bad)}: the sampler "
            "diverged or the data are badly scaled; check the data for extreme values, use tighter "
            "priors, or raise sampler.target_accept"
        )
