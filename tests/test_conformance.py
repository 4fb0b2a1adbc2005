"""The conformance suite on every installed backend, and proof that it catches broken ones."""

from __future__ import annotations

import copy
import secrets
from dataclasses import replace

import numpy as np
import pytest

import framework
from framework.testing import checks
from framework.testing.conformance import (
    OTHER_SEED,
    SUITE_SETTINGS,
    BackendConformance,
    Variant,
    fit_backend,
    suite_dataset,
)

pytest_plugins = ["pytester"]  # to run the suite's class on a broken backend

# Order matters: Stan's pystan engine forks worker processes, and forking after
# JAX has started its threads can deadlock, so the JAX backend (numpyro) runs last.


class TestStanConformance(BackendConformance):
    """The built-in Stan backend; both methods and both parameterisations are cheap here."""

    backend_name = "stan"
    skip_if_missing = True


class TestPymcConformance(BackendConformance):
    """The built-in PyMC backend, both methods and both parameterisations (Bambi writes
    centred and non-centred as different models)."""

    backend_name = "pymc"
    skip_if_missing = True


# Deliberately broken backends: each wraps a real one and breaks one promise.


class Wrapped:
    """A real backend behind a new name, with one thing broken."""

    def __init__(self, base, name, mutate=None, seed=None, **overrides):
        self.base, self.name, self.mutate, self.seed = base, name, mutate, seed
        self.description = f"{base.name}, deliberately broken ({name})"
        self.methods = overrides.pop("methods", base.methods)
        self.overrides = overrides

    def available(self):
        if "available" in self.overrides:
            return self.overrides["available"]
        return self.base.available()

    def validate_options(self, options):
        if "accept_any_option" in self.overrides:
            return {**self.base.validate_options({}), **options}
        return self.base.validate_options(options)

    def fit(self, problem, settings, options):
        if self.seed is not None:
            settings = replace(settings, seed=self.seed())
        variant = Variant(problem.method, problem.parameterisation)
        tag = f"seed={settings.seed}" if self.seed is not None else ""
        idata = copy.deepcopy(
            fit_backend(self.base, problem.dataset, variant, settings, options, tag)
        )
        if self.mutate is not None:
            idata = self.mutate(idata) or idata
        idata.posterior.attrs["backend"] = self.name
        return idata


@pytest.fixture(scope="module")
def base():
    """The real backend the broken ones wrap: the built-in Stan one if present."""
    registry = framework.get_registry()
    for name in ("stan", "pymc", "numpyro"):
        if name in registry and registry.get(name).available():
            return registry.get(name)
    pytest.skip(f"no real backend to wrap (installed: {', '.join(registry.names()) or 'none'})")


@pytest.fixture(scope="module")
def dataset():
    return suite_dataset()


def _fit(backend, dataset, seed=None):
    settings = SUITE_SETTINGS if seed is None else replace(SUITE_SETTINGS, seed=seed)
    return backend.fit(
        framework.Problem(dataset, dict(framework.DEFAULT_PRIORS)),
        settings,
        backend.validate_options({}),
    )


def _transpose_group(idata):
    idata.posterior["intercept"] = idata.posterior["intercept"].transpose("chain", "group", "draw")


def _rename_group_dim(idata):
    idata.posterior = idata.posterior.rename({"group": "state"})


def _reverse_groups(idata):
    for name in ("intercept", "slope"):
        idata.posterior[name].values = idata.posterior[name].values[..., ::-1].copy()


def _sort_labels(idata):
    # A backend that sorted the labels (values follow them): the order is the dataset's no more.
    idata.posterior = idata.posterior.sortby("group")


def _nan_draw(idata):
    idata.posterior["error_sigma"].values[0, 5] = np.nan


def _drop_diverging(idata):
    idata.sample_stats = idata.sample_stats.drop_vars("diverging")


def _standardised_effects(idata):
    # A non-centred backend that forgot to transform back: z = (effect - mu) / sigma.
    post = idata.posterior
    post["intercept"] = (post["intercept"] - post["intercept_mu"]) / post["intercept_sigma"]
    post["slope"] = (post["slope"] - post["slope_mu"]) / post["slope_sigma"]


def _log_sigma(idata):
    idata.posterior["error_sigma"] = np.log(idata.posterior["error_sigma"])


def _with_warmup(idata):
    idata.posterior = idata.posterior.isel(draw=np.r_[0:50, 0 : SUITE_SETTINGS.draws])
    idata.posterior = idata.posterior.assign_coords(draw=np.arange(idata.posterior.sizes["draw"]))


def _shift_intercept_mu(idata):
    post = idata.posterior
    post["intercept_mu"] = post["intercept_mu"] + post["intercept_mu"].std()


BROKEN_POSTERIORS = [
    # (name, mutation, whether framework.check_posterior itself refuses it, the check that must fail)
    ("transposed-dims", _transpose_group, True, "contract"),
    ("renamed-group-dim", _rename_group_dim, True, "contract"),
    ("sorted-labels", _sort_labels, True, "group_order"),
    ("shuffled-groups", _reverse_groups, False, "group_order"),
    ("shuffled-groups", _reverse_groups, False, "recovery"),
    ("shuffled-groups", _reverse_groups, False, "agreement"),
    ("non-finite-draw", _nan_draw, True, "contract"),
    ("missing-diverging", _drop_diverging, True, "contract"),
    ("not-back-transformed", _standardised_effects, False, "group_order"),
    ("not-back-transformed", _standardised_effects, False, "recovery"),
    ("wrong-scale-sigma", _log_sigma, False, "recovery"),
    ("warmup-returned", _with_warmup, False, "contract"),
    ("biased-intercept-mu", _shift_intercept_mu, False, "agreement"),
]


def _run_check(check, idata, dataset, backend_name, base_fit):
    if check == "contract":
        checks.check_contract(idata, dataset, backend_name, SUITE_SETTINGS)
    elif check == "group_order":
        checks.check_group_order(idata, dataset)
    elif check == "recovery":
        checks.check_recovery(idata, dataset.truth)
    elif check == "agreement":
        checks.check_agreement(idata, base_fit)


@pytest.mark.parametrize(
    ("name", "mutate", "core_refuses", "check"),
    BROKEN_POSTERIORS,
    ids=[f"{b[0]}-{b[3]}" for b in BROKEN_POSTERIORS],
)
def test_suite_catches_broken_posterior(base, dataset, name, mutate, core_refuses, check):
    broken = Wrapped(base, f"broken-{name}", mutate)
    idata = _fit(broken, dataset)
    reference = fit_backend(base, dataset, settings=replace(SUITE_SETTINGS, seed=OTHER_SEED))
    if core_refuses:
        with pytest.raises(framework.PosteriorContractError, match=f"broken-{name}"):
            framework.check_posterior(idata, dataset, broken.name)
    with pytest.raises(AssertionError):
        _run_check(check, idata, dataset, broken.name, reference)


def test_the_unbroken_wrapper_passes_every_check(base, dataset):
    """The control: the same wrapper with nothing broken passes, so the failures above are real."""
    honest = Wrapped(base, "honest")
    idata = _fit(honest, dataset)
    reference = fit_backend(base, dataset, settings=replace(SUITE_SETTINGS, seed=OTHER_SEED))
    framework.check_posterior(idata, dataset, honest.name)
    for check in ("contract", "group_order", "recovery", "agreement"):
        _run_check(check, idata, dataset, honest.name, reference)
    checks.check_seed(idata, _fit(honest, dataset), _fit(honest, dataset, OTHER_SEED))


def test_seed_ignored_with_a_fixed_seed_is_caught(base, dataset):
    broken = Wrapped(base, "fixed-seed", seed=lambda: 12345)
    first, repeat, other = (_fit(broken, dataset, s) for s in (1, 1, 2))
    with pytest.raises(AssertionError, match="different seed gave identical draws"):
        checks.check_seed(first, repeat, other)


def test_seed_ignored_with_fresh_entropy_is_caught(base, dataset):
    broken = Wrapped(base, "entropy-seed", seed=lambda: secrets.randbelow(2**31))
    first, repeat, other = (_fit(broken, dataset, s) for s in (1, 1, 2))
    with pytest.raises(AssertionError, match="same seed gave different draws"):
        checks.check_seed(first, repeat, other)


def test_options_that_accept_anything_are_caught(base):
    with pytest.raises(AssertionError, match="accepted the unknown option"):
        checks.check_options(Wrapped(base, "lax-options", accept_any_option=True))


@pytest.mark.parametrize("status", [True, framework.Availability(False, "")])
def test_bad_availability_is_caught(base, status):
    with pytest.raises(AssertionError):
        checks.check_availability(Wrapped(base, "bad-available", available=status))


def test_unknown_method_is_caught(base):
    with pytest.raises(AssertionError, match="non-empty tuple"):
        checks.check_methods(Wrapped(base, "bad-methods", methods=("marginal", "fast")))
    with pytest.raises(AssertionError, match="does not list"):
        checks.check_methods(Wrapped(base, "marginal-only", methods=("marginal",)), ("full",))


def test_core_refuses_an_unavailable_backend_by_name(base):
    checks.check_unavailable_refused(base)
    registry = framework.BackendRegistry()
    registry.add_backend(
        Wrapped(base, "gone", available=framework.Availability(False, "no CmdStan"))
    )
    with pytest.raises(
        framework.BackendError, match="backend 'gone' is not available here: no CmdStan"
    ):
        registry.require_available("gone")


_SUBCLASS = """
import framework
from framework.testing.conformance import BackendConformance
from test_conformance import Wrapped, _reverse_groups


class TestShuffled(BackendConformance):
    backend_name = "broken-shuffled-groups"
    methods = ("marginal",)

    def get_backend(self):
        return Wrapped(framework.get_registry().get("{base}"), self.backend_name, _reverse_groups)
"""


def test_the_class_fails_a_broken_backend(base, pytester):
    """A backend author's subclass reports the broken checks as failures (fits are reused)."""
    pytester.makepyfile(test_shuffled=_SUBCLASS.format(base=base.name))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    failed = sorted(r.nodeid.split("::")[-1] for r in result.reprec.getreports("pytest_runtest_logreport")
                    if r.failed)  # fmt: skip
    assert failed == [
        "test_agreement_with_reference[marginal]",
        "test_group_order[marginal]",
        "test_recovery[marginal]",
    ]
    result.assert_outcomes(passed=6, failed=3)


class TestNumpyroConformance(BackendConformance):
    """The example third-party plugin (examples/framework-numpyro), when it is installed."""

    backend_name = "numpyro"
    skip_if_missing = True
