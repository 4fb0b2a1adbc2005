"""A fake backend for testing the core contract and the registry only (never for statistics).

It "samples" beta, the group sds and sigma as independent normals around the
simulation's truth (or around 1 without one) and lets the shared
`framework.complete_posterior` draw the coefficients, so the core's estimates,
forecasts, outputs and CLI can be tested without a real sampler.
"""

from __future__ import annotations

import time

import numpy as np

import framework
from framework import Availability, OptionsError, hookimpl

SPREAD = 0.05  # relative spread of the fake draws around the truth


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
        model, truth = problem.model, problem.dataset.truth or {}
        shape = (settings.chains, settings.draws)

        def around(values):
            values = np.asarray(values, dtype=float)
            return values + SPREAD * np.abs(values) * rng.standard_normal(shape + values.shape)

        beta_truth = truth.get("beta", {})
        draws = {
            "beta": around([beta_truth.get(t, 0.0) for t in model.term_names]),
            "group_sd": np.abs(
                around([truth.get("group_sd", {}).get(t, 1.0) for t in model.group_term_names])
            ),  # fmt: skip
            "sigma": np.abs(around(truth.get("sigma", 1.0))),
        }
        draws["beta"][..., 0] += self.bias
        if model.correlated:
            draws["group_corr"] = np.broadcast_to(np.eye(model.n_group_terms), (*shape,
                                                  model.n_group_terms, model.n_group_terms))  # fmt: skip
        if problem.method == "full":  # a full sampler returns the coefficients itself
            draws["coef"] = framework.draw_coefficients(
                model, problem.dataset.stats, **draws, seed=rng
            )
        deadline = time.monotonic() + options["sleep"]
        while time.monotonic() < deadline:  # stands in for a long sampling run
            time.sleep(0.05)
        attrs = {
            "backend": self.name,
            "engine": "numpy",
            "library_versions": {"numpy": np.__version__},
            "sampling_seconds": 0.01,
            **problem.fit_attrs(settings),
        }
        idata = framework.complete_posterior(
            problem, settings, draws, {"diverging": np.zeros(shape, bool)}, attrs
        )
        if self.breaks == "shuffled":
            idata.posterior["coef"].values[:] = idata.posterior["coef"].values[:, :, ::-1]
        return idata


class FakePlugin:
    def __init__(self, backend=None):
        self.backend = backend or FakeBackend()

    @hookimpl
    def framework_register_backends(self, register):
        register.add_backend(self.backend)
