"""The plugin layer, tested with mock plugins (as simonw/llm does): registry, hooks, entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import framework
from framework.backends.plugin_calls import PluginInfo
from framework.testing import checks, simulated_problem
from framework.testing.conformance import find_backend


class FakeBackend:
    """A backend that does not sample: enough to test the registry and the core contract."""

    methods = ("marginal",)

    def __init__(self, name="fake"):
        self.name = name
        self.description = "fake backend for tests"

    def available(self):
        return framework.Availability(True)

    def validate_options(self, options):
        unknown = [k for k in options if k != "speed"]
        if unknown:
            raise framework.OptionsError(
                [f"backend.options.{k}: unknown option; did you mean 'speed'?" for k in unknown]
            )
        return {"speed": 1, **options}

    def fit(self, problem, settings, options):
        rng = np.random.default_rng(settings.seed)
        shape = (settings.chains, settings.draws)
        model, truth = problem.model, problem.dataset.truth

        def near(values):
            return np.asarray(values) * np.exp(0.01 * rng.standard_normal(shape + np.shape(values)))

        draws = {
            "beta": near([truth["beta"][t] for t in model.term_names]),
            "group_sd": near([truth["group_sd"][t] for t in model.group_term_names]),
        }
        draws.update({p: near(truth[p]) for p in model.family_parameters})
        attrs = {"backend": self.name, "engine": "none", "library_versions": {"numpy": np.__version__},
                 "sampling_seconds": 0.0, **problem.fit_attrs(settings)}  # fmt: skip
        diverging = {"diverging": np.zeros(shape, dtype=bool)}
        return framework.complete_posterior(problem, settings, draws, diverging, attrs)


def _plugin(module_name, *backends, error=None):
    """A plugin module whose hook registers `backends` (or raises `error`)."""
    module = types.ModuleType(module_name)

    @framework.hookimpl
    def framework_register_backends(register):
        if error is not None:
            raise error
        for backend in backends:
            register.add_backend(backend)

    module.framework_register_backends = framework_register_backends
    return module


@pytest.fixture
def plugins():
    """Register mock plugins by name for one test; unregister them afterwards, even on failure."""
    names = []

    def register(name, *backends, error=None):
        framework.register_plugin(_plugin(f"mock_{name}", *backends, error=error), name=name)
        names.append(name)
        return framework.get_registry()

    yield register
    for name in reversed(names):
        framework.unregister_plugin(name)


def test_a_registered_plugin_shows_up_and_goes_away():
    before = framework.get_registry().names()
    framework.register_plugin(_plugin("mock_fake", FakeBackend()), name="mock-fake")
    try:
        registry = framework.get_registry()
        assert "fake" in registry.names()
        assert registry.origin("fake") == "mock-fake"
        assert set(before) <= set(registry.names())  # the real plugins are still there
    finally:
        framework.unregister_plugin("mock-fake")
    assert framework.get_registry().names() == before


def test_unknown_backend_lists_installed_ones_with_did_you_mean(plugins):
    registry = plugins("mock-fake", FakeBackend("fakebackend"))
    with pytest.raises(framework.BackendError) as exc:
        registry.get("fakebakend")
    message = str(exc.value)
    assert "unknown backend 'fakebakend'" in message
    assert "Did you mean 'fakebackend'?" in message
    for name in registry.names():
        assert name in message


def test_a_raising_hook_is_recorded_and_does_not_break_the_others(plugins):
    plugins("mock-fake", FakeBackend())
    registry = plugins("mock-raises", error=RuntimeError("libfoo is missing: pip install foo"))
    assert "fake" in registry.names()
    [broken] = [b for b in registry.broken if b.name == "mock-raises"]
    assert "RuntimeError: libfoo is missing: pip install foo" in broken.reason
    with pytest.raises(framework.BackendError, match="plugin 'mock-raises' failed to load"):
        registry.get("nothing-like-this")


def test_a_name_two_plugins_claim_is_refused_naming_both(plugins):
    plugins("mock-first", FakeBackend())
    registry = plugins("mock-second", FakeBackend())
    assert "fake" not in registry.names()  # neither wins silently
    assert registry.conflicts() == {"fake": [PluginInfo("mock-first"), PluginInfo("mock-second")]}
    with pytest.raises(framework.BackendError) as exc:
        registry.get("fake")
    assert "'fake' is registered by more than one plugin" in str(exc.value)
    assert "'mock-first'" in str(exc.value) and "'mock-second'" in str(exc.value)
    direct = framework.BackendRegistry()
    direct.add_backend(FakeBackend())
    with pytest.raises(ValueError, match="already registered"):
        direct.add_backend(FakeBackend())


def test_an_object_that_is_not_a_backend_is_refused(plugins):
    registry = plugins("mock-junk", object())
    [broken] = [b for b in registry.broken if b.name == "mock-junk"]
    assert "is not a backend" in broken.reason


def test_the_fake_backend_meets_the_core_contract(plugins):
    registry = plugins("mock-fake", FakeBackend())
    backend = registry.require_available("fake")
    model, dataset = simulated_problem(n_groups=6, rows_per_group=5, seed=1)
    settings = framework.SamplerSettings(chains=2, draws=20, seed=3)
    idata = backend.fit(framework.Problem(model, dataset), settings, {})
    checks.check_contract(idata, model, dataset, "fake", settings)
    checks.check_options(backend, {"speed": 2})
    checks.check_availability(backend)
    checks.check_unavailable_refused(backend)
    checks.check_methods(backend, ("marginal",))


def test_the_suite_names_a_missing_backend(plugins):
    plugins("mock-raises", error=ImportError("no libfoo"))
    with pytest.raises(pytest.fail.Exception, match="backend 'nope' is not installed.*mock-raises"):
        find_backend("nope")
    with pytest.raises(pytest.skip.Exception, match="backend 'nope' is not installed"):
        find_backend("nope", skip_if_missing=True)


# Entry points: a throwaway distribution on sys.path, read by a fresh interpreter.

_FAKE_OK = """
import framework

class Backend:
    name, description, methods = "fake-ok", "entry-point test backend", ("marginal",)
    def available(self):
        return framework.Availability(True)
    def validate_options(self, options):
        return dict(options)
    def fit(self, problem, settings, options):
        raise NotImplementedError

@framework.hookimpl
def framework_register_backends(register):
    register.add_backend(Backend())
"""

_REPORT = (
    "import json, framework; r = framework.get_registry(); "
    "print(json.dumps({'names': r.names(), 'broken': [[b.name, b.reason] for b in r.broken]}))"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder holding a fake distribution with two entry points: one good, one that raises."""
    root = tmp_path_factory.mktemp("site")
    dist = root / "fake_framework_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-framework-plugins\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[framework]\nfake_ok = fake_ok_plugin\nfake_broken = fake_broken_plugin\n"
    )
    (root / "fake_ok_plugin.py").write_text(textwrap.dedent(_FAKE_OK))
    (root / "fake_broken_plugin.py").write_text(
        'raise ImportError("fake_broken needs libfoo: pip install libfoo")\n'
    )
    return root


# Each interpreter takes seconds to import framework, so all of them start at once.
_RESTRICTIONS = {"both": "fake_ok,fake_broken", "ok": "fake_ok", "none": "", "unset": None}


@pytest.fixture(scope="module")
def reports(site):
    """What get_registry() reports in a fresh interpreter, per FRAMEWORK_LOAD_PLUGINS value."""
    running = {}
    for key, allowed in _RESTRICTIONS.items():
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        }
        env.pop("FRAMEWORK_LOAD_PLUGINS", None)
        if allowed is not None:
            env["FRAMEWORK_LOAD_PLUGINS"] = allowed
        running[key] = subprocess.Popen([sys.executable, "-c", _REPORT], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out = {}
    for key, proc in running.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        out[key] = json.loads(stdout.strip().splitlines()[-1])
    return out


def test_an_entry_point_that_fails_to_import_is_recorded_as_broken(reports):
    # Built-in plugins are left out here to keep it small; they load the same way (below).
    report = reports["both"]
    assert report["names"] == ["fake-ok"]
    [[name, reason]] = report["broken"]
    assert name == "fake_broken"
    assert "ImportError: fake_broken needs libfoo: pip install libfoo" in reason


def test_framework_load_plugins_restricts_loading(reports):
    assert reports["ok"] == {"names": ["fake-ok"], "broken": []}
    assert reports["none"] == {"names": [], "broken": []}


def test_without_restriction_every_entry_point_loads(reports):
    report = reports["unset"]
    assert {"fake-ok", "stan", "pymc"} <= set(report["names"])
    assert [b[0] for b in report["broken"]] == ["fake_broken"]


def test_require_method_names_the_backend_and_its_methods():
    backend = FakeBackend("only-full")
    backend.methods = ("full",)
    framework.require_method(backend, "full")
    with pytest.raises(
        framework.BackendError, match=r"'only-full' has no method 'marginal'; use one of full"
    ):
        framework.require_method(backend, "marginal")
