"""A fake backend for testing the core contract and the registry only (never for statistics).

It "samples" the hyperparameters as independent normals around the simulation's
truth and draws the group effects with the shared exact module, so the core's
estimates, forecasts, outputs and CLI can be tested without a real sampler.
"""

from __future__ import annotations

import time

import numpy as np

import framework
from framework import Availability, OptionsError, hookimpl

SPREAD = {
    "intercept_mu": 0.5,
    "intercept_sigma": 0.3,
    "slope_mu": 0.1,
    "slope_sigma": 0.05,
    "error_sigma": 0.2,
}


class FakeBackend:
    name = "fake"
    description = "test double: draws around the known truth"
    methods = ("marginal", "full")

    def __init__(
        self,
        sleep: float = 0.0,
        breaks: str | None = None,
        bias: float = 0.0,
        name: str | None = None,
    ):
        self.sleep = sleep
        self.breaks = breaks
        self.bias = bias  # shifts intercept_mu: a backend that is wrong
        if name:
            self.name = name

    def available(self):
        return Availability(True)

    def validate_options(self, options):
        unknown = sorted(set(options) - {"sleep"})
        if unknown:
            raise OptionsError(
                [f"backend.options.{k}: unknown option for backend 'fake'" for k in unknown]
            )
        return {"sleep": float(options.get("sleep", self.sleep))}

    def fit(self, problem, settings, options):
        rng = np.random.default_rng(settings.seed)
        ds = problem.dataset
        truth = ds.truth or {
            "intercept_mu": 0,
            "intercept_sigma": 1,
            "slope_mu": 0,
            "slope_sigma": 1,
            "error_sigma": 1,
        }
        shape = (settings.chains, settings.draws)
        hyper = {
            k: truth[k] + SPREAD[k] * rng.standard_normal(shape) for k in framework.HYPERPARAMETERS
        }
        for k in ("intercept_sigma", "slope_sigma", "error_sigma"):
            hyper[k] = np.abs(hyper[k])
        hyper["intercept_mu"] += self.bias
        deadline = time.monotonic() + options["sleep"]
        while time.monotonic() < deadline:  # stands in for a long sampling run
            time.sleep(0.05)
        a, b = framework.draw_group_effects(ds.stats, **hyper, seed=rng)
        if self.breaks == "shuffled":
            a, b = a[..., ::-1], b[..., ::-1]
        return framework.build_posterior(
            hyper,
            {"intercept": a, "slope": b},
            ds,
            np.zeros(shape, bool),
            attrs={
                "backend": self.name,
                "engine": "numpy",
                "library_versions": {"numpy": np.__version__},
                "sampling_seconds": 0.01,
                "seed": settings.seed,
            },
        )


class FakePlugin:
    def __init__(self, backend=None):
        self.backend = backend or FakeBackend()

    @hookimpl
    def framework_register_backends(self, register):
        register.add_backend(self.backend)
