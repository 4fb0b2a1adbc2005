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
    SUITE_CASES,
    SUITE_SETTINGS,
    BackendConformance,
    Variant,
    fit_backend,
    suite_problem,
)

pytest_plugins = ["pytester"]  # to run the suite's class on a broken backend


def _cmdstan_status() -> tuple[bool, str]:
    try:
        from framework_stan import engines
    except ImportError as exc:
        return False, f"the Stan plugin does not import: {exc}"
    return engines.cmdstan_status()


def _cmdstan_found() -> bool:
    return _cmdstan_status()[0]


_CMDSTAN_WHY = _cmdstan_status()[1]

# Order matters: Stan's pystan engine forks worker processes, and forking after
# JAX has started its threads can deadlock, so the JAX backend (numpyro) runs last.


class TestStanConformance(BackendConformance):
    """The built-in Stan backend through pystan; both methods and parameterisations."""

    backend_name = "stan"
    options = {"engine": "pystan"}
    skip_if_missing = True

    def variants(self) -> list[Variant]:
        every = super().variants()
        if not _cmdstan_found():
            return every  # pystan is the only engine here: every program through it
        # With CmdStan the class below runs every variant. pystan (~1.5 min a compile on CI)
        # runs the programs other pystan tests compile anyway: the marginal ones (the README's
        # rainfall run, test_stan_backend), full centred (test_progress) and the correlated full
        # ones (test_stan_backend's fits), so the independent non-centred one is left to CmdStan.
        independent_nc = Variant("full", "non_centred", SUITE_CASES[0])
        correlated_nc = Variant("full", "non_centred", SUITE_CASES[1])
        return [v for v in every if v != independent_nc] + [correlated_nc]


@pytest.mark.skipif(
    not _cmdstan_found(), reason="no CmdStan here (set CMDSTAN; CI assembles one): " + _CMDSTAN_WHY
)
class TestStanCmdstanpyConformance(TestStanConformance):
    """The same suite through cmdstanpy and a real CmdStan: every variant."""

    options = {"engine": "cmdstanpy"}

    def variants(self) -> list[Variant]:
        return BackendConformance.variants(self)


class TestPymcConformance(BackendConformance):
    """The built-in PyMC backend, both methods and both parameterisations."""

    backend_name = "pymc"
    skip_if_missing = True


# Deliberately broken backends: each wraps a real one and breaks one promise.


def _case(problem) -> str:
    """Which of the suite's cases a problem is (the wrapped fits are the suite's cached ones)."""
    for case in SUITE_CASES:
        if suite_problem(case)[0].formula == problem.model.formula:
            return case
    raise ValueError(f"not a suite problem: {problem.model.formula}")


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
        variant = Variant(problem.method, problem.parameterisation, _case(problem))
        tag = f"seed={settings.seed}" if self.seed is not None else ""
        idata = copy.deepcopy(fit_backend(self.base, variant, settings, options, tag))
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


def _fit(backend, case="independent", seed=None):
    settings = SUITE_SETTINGS if seed is None else replace(SUITE_SETTINGS, seed=seed)
    model, dataset = suite_problem(case)
    return backend.fit(framework.Problem(model, dataset), settings, backend.validate_options({}))


def _reference(base, case):
    """The base backend's own fit under another seed: what an honest backend agrees with."""
    settings = replace(SUITE_SETTINGS, seed=OTHER_SEED)
    return fit_backend(base, Variant("marginal", case=case), settings)


def _group_terms_of_beta(post):
    """beta at the group terms, on the group_term dim (to line up with coef)."""
    terms = list(post.coords["group_term"].values)
    return post["beta"].sel(term=terms).rename(term="group_term")


def _transpose_group(idata):
    idata.posterior["coef"] = idata.posterior["coef"].transpose(
        "chain", "group", "draw", "group_term"
    )


def _rename_group_dim(idata):
    idata.posterior = idata.posterior.rename({"group": "state"})


def _reverse_groups(idata):
    idata.posterior["coef"].values = idata.posterior["coef"].values[:, :, ::-1].copy()


def _swap_group_terms(idata):
    # Each group's intercept and slope swapped (a backend that mixed up its column order).
    idata.posterior["coef"].values = idata.posterior["coef"].values[..., ::-1].copy()


def _sort_labels(idata):
    # A backend that sorted the labels (values follow them): the order is the dataset's no more.
    idata.posterior = idata.posterior.sortby("group")


def _nan_draw(idata):
    idata.posterior["sigma"].values[0, 5] = np.nan


def _drop_diverging(idata):
    idata.sample_stats = idata.sample_stats.drop_vars("diverging")


def _standardised_effects(idata):
    # A non-centred backend that forgot to transform back: z = (coef - beta) / group_sd.
    post = idata.posterior
    post["coef"] = (post["coef"] - _group_terms_of_beta(post)) / post["group_sd"]


def _deviations(idata):
    # coef returned as each group's deviation b, not its coefficients beta + b.
    post = idata.posterior
    post["coef"] = post["coef"] - _group_terms_of_beta(post)


def _log_sigma(idata):
    idata.posterior["sigma"] = np.log(idata.posterior["sigma"])


def _with_warmup(idata):
    idata.posterior = idata.posterior.isel(draw=np.r_[0:50, 0 : SUITE_SETTINGS.draws])
    idata.posterior = idata.posterior.assign_coords(draw=np.arange(idata.posterior.sizes["draw"]))


def _shift_intercept(idata):
    beta = idata.posterior["beta"].values  # the Intercept is the first term
    beta[..., 0] = beta[..., 0] + beta[..., 0].std()


def _cholesky_not_corr(idata):
    # A backend that returned the Cholesky factor of the correlation, not the matrix itself.
    corr = idata.posterior["group_corr"]
    corr.values = np.linalg.cholesky(corr.values).copy()


def _corr_identity(idata):
    # A backend that dropped the correlation (fitted the effects as independent).
    corr = idata.posterior["group_corr"]
    corr.values = np.broadcast_to(np.eye(corr.shape[-1]), corr.shape).copy()


BROKEN_POSTERIORS = [
    # (name, mutation, case, whether framework.check_posterior itself refuses it,
    #  the check that must fail)
    ("transposed-dims", _transpose_group, "independent", True, "contract"),
    ("renamed-group-dim", _rename_group_dim, "independent", True, "contract"),
    ("sorted-labels", _sort_labels, "independent", True, "group_order"),
    ("shuffled-groups", _reverse_groups, "independent", False, "group_order"),
    ("shuffled-groups", _reverse_groups, "independent", False, "recovery"),
    ("shuffled-groups", _reverse_groups, "independent", False, "agreement"),
    ("shuffled-groups", _reverse_groups, "correlated", False, "group_order"),
    ("swapped-group-terms", _swap_group_terms, "correlated", False, "group_order"),
    ("swapped-group-terms", _swap_group_terms, "correlated", False, "recovery"),
    ("non-finite-draw", _nan_draw, "independent", True, "contract"),
    ("missing-diverging", _drop_diverging, "independent", True, "contract"),
    ("not-back-transformed", _standardised_effects, "independent", False, "group_order"),
    ("not-back-transformed", _standardised_effects, "independent", False, "recovery"),
    ("deviations-not-coef", _deviations, "correlated", False, "group_order"),
    ("deviations-not-coef", _deviations, "correlated", False, "recovery"),
    ("wrong-scale-sigma", _log_sigma, "independent", False, "recovery"),
    ("warmup-returned", _with_warmup, "independent", False, "contract"),
    ("biased-intercept", _shift_intercept, "independent", False, "agreement"),
    ("cholesky-not-corr", _cholesky_not_corr, "correlated", False, "contract"),
    ("cholesky-not-corr", _cholesky_not_corr, "correlated", False, "agreement"),
    ("corr-dropped", _corr_identity, "correlated", False, "recovery"),
    ("corr-dropped", _corr_identity, "correlated", False, "agreement"),
]


def _run_check(check, idata, model, dataset, backend_name, base_fit):
    if check == "contract":
        checks.check_contract(idata, model, dataset, backend_name, SUITE_SETTINGS)
    elif check == "group_order":
        checks.check_group_order(idata, model, dataset)
    elif check == "recovery":
        checks.check_recovery(idata, model, dataset.truth)
    elif check == "agreement":
        checks.check_agreement(idata, base_fit, model)


@pytest.mark.parametrize(
    ("name", "mutate", "case", "core_refuses", "check"),
    BROKEN_POSTERIORS,
    ids=[f"{b[0]}-{b[2]}-{b[4]}" for b in BROKEN_POSTERIORS],
)
def test_suite_catches_broken_posterior(base, name, mutate, case, core_refuses, check):
    model, dataset = suite_problem(case)
    broken = Wrapped(base, f"broken-{name}", mutate)
    idata = _fit(broken, case)
    reference = _reference(base, case)
    if core_refuses:
        with pytest.raises(framework.PosteriorContractError, match=f"broken-{name}"):
            framework.check_posterior(idata, model, dataset, broken.name)
    with pytest.raises(AssertionError):
        _run_check(check, idata, model, dataset, broken.name, reference)


@pytest.mark.parametrize("case", SUITE_CASES)
def test_the_unbroken_wrapper_passes_every_check(base, case):
    """The control: the same wrapper with nothing broken passes, so the failures above are real."""
    model, dataset = suite_problem(case)
    honest = Wrapped(base, "honest")
    idata = _fit(honest, case)
    reference = _reference(base, case)
    framework.check_posterior(idata, model, dataset, honest.name)
    for check in ("contract", "group_order", "recovery", "agreement"):
        _run_check(check, idata, model, dataset, honest.name, reference)
    checks.check_seed(idata, _fit(honest, case), _fit(honest, case, OTHER_SEED))


def test_seed_ignored_with_a_fixed_seed_is_caught(base):
    broken = Wrapped(base, "fixed-seed", seed=lambda: 12345)
    first, repeat, other = (_fit(broken, seed=s) for s in (1, 1, 2))
    with pytest.raises(AssertionError, match="different seed gave identical draws"):
        checks.check_seed(first, repeat, other)


def test_seed_ignored_with_fresh_entropy_is_caught(base):
    broken = Wrapped(base, "entropy-seed", seed=lambda: secrets.randbelow(2**31))
    first, repeat, other = (_fit(broken, seed=s) for s in (1, 1, 2))
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
    # Shuffled groups break the same three checks on both of the suite's models.
    assert failed == [
        f"test_{check}[{case}-marginal]"
        for check in ("agreement_with_reference", "group_order", "recovery")
        for case in ("correlated", "independent")
    ]
    result.assert_outcomes(passed=8, failed=6)


class TestNumpyroConformance(BackendConformance):
    """The example third-party plugin (examples/framework-numpyro), when it is installed."""

    backend_name = "numpyro"
    skip_if_missing = True
