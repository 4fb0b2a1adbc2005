"""Simulate data from the model with known truth (the blog's part 1)."""

from __future__ import annotations

import numpy as np

from .data import Dataset
from .spec import Spec


def simulate(spec: Spec) -> Dataset:
    """Draw group effects and responses from the spec's `simulate` block, seeded."""
    sim = spec.data.simulate
    t = sim.truth
    rng = np.random.default_rng(sim.seed)
    labels = sim.labels()
    xs = np.asarray(sim.x_values())
    j = len(labels)
    intercept = rng.normal(t.intercept_mu, t.intercept_sigma, size=j)
    slope = rng.normal(t.slope_mu, t.slope_sigma, size=j)
    codes = np.repeat(np.arange(j), len(xs))
    x = np.tile(xs, j)
    y = intercept[codes] + slope[codes] * x + rng.normal(0.0, t.error_sigma, size=len(x))
    truth = {**t.model_dump(), "intercept": intercept, "slope": slope}
    m = spec.model
    return Dataset(
        y,
        x,
        codes,
        labels,
        m.response,
        m.predictor,
        m.group,
        source=f"simulated (seed {sim.seed})",
        truth=truth,
    )
