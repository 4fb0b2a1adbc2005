"""The backend conformance suite: ONE base class that every backend's tests subclass.

    from framework.testing.conformance import BackendConformance

    class TestMyBackend(BackendConformance):
        backend_name = "mybackend"
        options = {"some_option": 1}      # optional

Every check is a test method of the class, so a backend inherits new checks
when the suite grows and cannot silently miss one (pandas#54420). Fits are
expensive, so each (backend, method, parameterisation, seed) is fitted once
per session and shared between the checks; the cache is keyed by the
backend's name, so give a wrapped backend its own name.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, replace

import pytest

from ..backends.plugins import get_registry
from ..backends.problem import Problem, SamplerSettings
from . import checks
from .checks import (
    check_agreement,
    check_availability,
    check_contract,
    check_group_order,
    check_methods,
    check_options,
    check_recovery,
    check_seed,
    check_unavailable_refused,
)
from .synthetic import simulated_problem

# Small enough to fit in seconds, large enough for MCSEs and R-hat to mean something.
SUITE_SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300, seed=20240611)
OTHER_SEED = 777
SUITE_DATA = {"n_groups": 20, "rows_per_group": 15, "seed": 0}
# The models every backend is tried on (framework.testing.synthetic.CASES): the v1 model with
# every method and parameterisation, and a correlated model with two numeric predictors and a
# categorical one with the marginal method and the first parameterisation of "full".
SUITE_CASES = ("independent", "correlated")

_FITS: dict = {}


@dataclass(frozen=True)
class Variant:
    """What one fit asks for: the model case, the method and, for "full", the parameterisation."""

    method: str
    parameterisation: str = "centred"
    case: str = "independent"

    def __str__(self) -> str:
        method = (
            self.method if self.method == "marginal" else f"{self.method}-{self.parameterisation}"
        )
        return f"{self.case}-{method}"


@functools.cache
def suite_problem(case: str = "independent"):
    """The suite's (Model, Dataset) for a case: 20 groups x ~15 rows, unsorted labels, shuffled rows."""
    return simulated_problem(case, **SUITE_DATA)


def fit_backend(backend, variant=Variant("marginal"), settings=SUITE_SETTINGS,
                options=None, tag: str = ""):  # fmt: skip
    """Validate options and fit once per session; `tag` forces a separate fit (seed checks)."""
    options = backend.validate_options(dict(options or {}))
    model, dataset = suite_problem(variant.case)
    key = (backend.name, str(variant), settings, repr(sorted(options.items())), tag)
    if key not in _FITS:
        problem = Problem(model, dataset, variant.method, variant.parameterisation)
        try:
            _FITS[key] = backend.fit(problem, settings, options)
        except Exception as exc:
            _FITS[key] = exc  # a failed fit fails every check that needs it, without refitting
    if isinstance(_FITS[key], Exception):
        raise _FITS[key]
    return _FITS[key]


def clear_fits() -> None:
    """Forget every cached fit."""
    _FITS.clear()


def find_backend(name: str, skip_if_missing: bool = False):
    """The registered backend `name`, or skip/fail saying what is installed and what broke."""
    registry = get_registry()
    if name in registry:
        return registry.get(name)
    broken = "; ".join(f"{b.name}: {b.reason}" for b in registry.broken)
    reason = (
        f"backend '{name}' is not installed (installed: {', '.join(registry.names()) or 'none'}"
        + (f"; failed to load: {broken}" if broken else "")
        + ")"
    )
    if skip_if_missing:
        pytest.skip(reason)
    pytest.fail(reason)


class BackendConformance:
    """Subclass and set `backend_name`; override `get_backend` to test an unregistered object.

    Optional: `options` (passed to validate_options and fit), `methods` (default:
    all the backend lists), `parameterisations` (tried for method "full"),
    `reference` / `reference_method` (the fit means are compared with; a backend
    that is its own reference is compared with its fit under another seed),
    `skip_if_missing` (skip rather than fail when the backend is not installed),
    `cases` (the models of framework.testing.synthetic.CASES to fit; all by default).
    """

    backend_name: str = ""
    options: dict = {}
    methods: tuple[str, ...] | None = None
    parameterisations: tuple[str, ...] = ("centred", "non_centred")
    reference: str | None = "stan"
    reference_method: str = "marginal"
    settings: SamplerSettings = SUITE_SETTINGS
    skip_if_missing: bool = False
    cases: tuple[str, ...] = SUITE_CASES

    def get_backend(self):
        return find_backend(self.backend_name, self.skip_if_missing)

    def variants(self) -> list[Variant]:
        """Every (method, parameterisation) the suite fits; read at collection time."""
        methods = self.methods
        if methods is None:
            registry = get_registry()
            known = self.backend_name in registry
            methods = registry.get(self.backend_name).methods if known else ("marginal",)
        out = []
        for case in self.cases:
            for method in methods:
                params = self.parameterisations if method == "full" else ("centred",)
                if case != SUITE_CASES[0]:
                    params = params[:1]
                out.extend(Variant(method, p, case) for p in params)
        return out

    def pytest_generate_tests(self, metafunc):
        if "variant" in metafunc.fixturenames:
            variants = self.variants()
            metafunc.parametrize("variant", variants, ids=[str(v) for v in variants])

    @pytest.fixture
    def registered(self):
        return self.get_backend()

    @pytest.fixture
    def backend(self, registered):
        backend = registered
        status = backend.available()
        if not status:
            pytest.skip(f"backend '{backend.name}' is not available here: {status.reason}")
        return backend

    @pytest.fixture
    def model(self, variant):
        return suite_problem(variant.case)[0]

    @pytest.fixture
    def dataset(self, variant):
        return suite_problem(variant.case)[1]

    @pytest.fixture
    def posterior(self, backend, variant):
        # The reference is fitted first: pystan forks workers, and forking once a JAX
        # backend has started its threads can deadlock. A failure shows in its own test.
        with contextlib.suppress(Exception):
            self.reference_fit(backend, variant)
        return fit_backend(backend, variant, self.settings, self.options)

    def reference_fit(self, backend, variant):
        """The reference backend's fit to compare with; (None, reason) when there is none."""
        if self.reference is None:
            return None, "no reference backend is set for this backend"
        registry = get_registry()
        if self.reference not in registry:
            return None, f"reference backend '{self.reference}' is not installed"
        ref = registry.get(self.reference)
        status = ref.available()
        if not status:
            return None, f"reference backend '{self.reference}' is not available: {status.reason}"
        ref_variant = Variant(self.reference_method, case=variant.case)
        ref_settings = self.settings
        if self.reference == backend.name and variant == ref_variant:
            ref_settings = _with_seed(self.settings, OTHER_SEED)  # itself: under another seed
        return fit_backend(ref, ref_variant, ref_settings), ""

    # (h) methods
    def test_methods(self, registered):
        check_methods(registered, self.methods or ())

    # (a) the common format
    def test_contract(self, backend, model, dataset, posterior):
        check_contract(posterior, model, dataset, backend.name, self.settings)

    # (b) group labels and order
    def test_group_order(self, model, dataset, posterior):
        check_group_order(posterior, model, dataset)

    # (c) seeds
    def test_seed(self, backend, variant, posterior):
        repeat = fit_backend(backend, variant, self.settings, self.options, tag="repeat")
        other_settings = _with_seed(self.settings, OTHER_SEED)
        other = fit_backend(backend, variant, other_settings, self.options)
        check_seed(posterior, repeat, other)

    # (d) recovery of known truth
    def test_recovery(self, model, dataset, posterior):
        check_recovery(posterior, model, dataset.truth)

    # (e) agreement with a reference backend
    def test_agreement_with_reference(self, backend, model, variant, posterior):
        reference, reason = self.reference_fit(backend, variant)
        if reference is None:
            pytest.skip(reason)
        check_agreement(posterior, reference, model)

    # (f) options
    def test_options(self, registered):
        check_options(registered, self.options)

    # (g) availability
    def test_available(self, registered):
        check_availability(registered)

    def test_unavailable_refused_by_core(self, registered):
        check_unavailable_refused(registered)


def _with_seed(settings: SamplerSettings, seed: int) -> SamplerSettings:
    return replace(settings, seed=seed)


__all__ = [
    "SUITE_SETTINGS",
    "BackendConformance",
    "Variant",
    "check_agreement",
    "check_availability",
    "check_contract",
    "check_group_order",
    "check_methods",
    "check_options",
    "check_recovery",
    "check_seed",
    "check_unavailable_refused",
    "checks",
    "clear_fits",
    "find_backend",
    "fit_backend",
    "suite_problem",
]
