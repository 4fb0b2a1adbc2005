"""Plugins cannot lie: real installed plugins that exit, raise or claim `stan`, through the real CLI.

A throwaway distribution (a dist-info with entry points, on PYTHONPATH) holds one
plugin per fault; each case runs `python -m framework.cli` in a fresh interpreter
with FRAMEWORK_LOAD_PLUGINS picking the plugins it needs. All interpreters start at
once (each takes seconds to import framework) and are read afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import framework

TESTS = Path(__file__).resolve().parent
SPEC = TESTS / "bad_inputs" / "valid.yaml"  # simulated data, backend `fake`, tiny sampler
DIST, VERSION = "faulty-framework-plugins", "0.1"

_PLUGINS = """
import sys

import framework
from fake_backend import FakeBackend


class Exits(FakeBackend):
    name = "exits"

    def fit(self, problem, settings, options):
        sys.exit(0)


class Unavailable(FakeBackend):
    name = "unavailable"

    def available(self):
        raise RuntimeError("probing the GPU failed")


class BadOptions(FakeBackend):
    name = "badopts"

    def validate_options(self, options):
        return options["speed"]  # KeyError: a plugin bug, not an OptionsError


class Odd(BaseException):
    pass


class RaisesBase(FakeBackend):
    name = "raisesbase"

    def fit(self, problem, settings, options):
        raise Odd("not even an Exception")


class Lies(FakeBackend):
    name = "lies"

    def available(self):
        return None


def plugin(backend):
    class Plugin:
        @framework.hookimpl
        def framework_register_backends(self, register):
            register.add_backend(backend)

    return Plugin()


class ExitsOnRegister:
    @framework.hookimpl
    def framework_register_backends(self, register):
        register.add_backend(FakeBackend(name="half-registered"))
        raise SystemExit(1)


exits = plugin(Exits())
unavailable = plugin(Unavailable())
badopts = plugin(BadOptions())
raisesbase = plugin(RaisesBase())
lies = plugin(Lies())
impostor = plugin(FakeBackend(name="stan"))
fine = plugin(FakeBackend())
hookexits = ExitsOnRegister()
"""

_ENTRY_POINTS = {
    name: f"faulty_plugins:{name}"
    for name in ("exits", "unavailable", "badopts", "raisesbase", "lies", "fine")
} | {
    "hookexits": "faulty_plugins:hookexits",
    "importexits": "faulty_import_exits",
    "stan": "faulty_plugins:impostor",  # the built-in's own entry-point name, too
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder holding the faulty distribution: its dist-info and its modules."""
    root = tmp_path_factory.mktemp("site")
    info = root / f"{DIST.replace('-', '_')}-{VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in _ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text(f"[framework]\n{lines}")
    (root / "faulty_plugins.py").write_text(textwrap.dedent(_PLUGINS))
    (root / "faulty_import_exits.py").write_text("import sys\n\nsys.exit(0)\n")
    return root


# case -> (entry points to load, CLI arguments after `framework`)
def _run(backend):
    return ["run", str(SPEC), "-q", "--set", f"backend.name={backend}"]


_CASES = {
    "exits": ("exits", _run("exits")),
    "unavailable": ("unavailable", _run("unavailable")),
    "badopts": ("badopts", _run("badopts")),
    "raisesbase": ("raisesbase", _run("raisesbase")),
    "lies": ("lies", _run("lies")),
    "stan-claimed-twice": ("stan", _run("stan")),
    "backends-listing": ("stan,importexits,hookexits,unavailable", ["backends"]),
    "builtin-stan-picked": ("framework:stan", ["backends"]),
    "fine-beside-broken": ("fine,importexits,hookexits", _run("fake")),
    "broken-named": ("fine,importexits,hookexits", _run("half-registered")),
}


@pytest.fixture(scope="module")
def results(site, tmp_path_factory):
    """Each case's (exit status, stdout, stderr, output folder), all run at once."""
    out = tmp_path_factory.mktemp("runs")
    running = {}
    for case, (load, args) in _CASES.items():
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(site), str(TESTS), os.environ.get("PYTHONPATH", "")]
            ),
            "FRAMEWORK_LOAD_PLUGINS": load,
        }
        folder = out / case
        argv = [*args, "-o", str(folder)] if args[0] == "run" else args
        running[case] = (
            subprocess.Popen(
                [sys.executable, "-m", "framework.cli", *argv],
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),  # fmt: skip
            folder,
        )
    done = {}
    for case, (proc, folder) in running.items():
        stdout, stderr = proc.communicate(timeout=600)
        done[case] = (proc.returncode, stdout, stderr, folder)
    return done


def _one_line_error(result) -> str:
    """The single stderr line of a refused run; nothing on stdout, no traceback, no run written."""
    code, stdout, stderr, folder = result
    assert code == 2, (code, stdout, stderr)
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert not folder.exists()
    return stderr


PLUGIN = f"(plugin {DIST} {VERSION} (entry point '{{}}'))"


def test_sys_exit_0_in_fit_is_an_error_naming_the_plugin_not_a_silent_success(results):
    line = _one_line_error(results["exits"])
    assert (
        "backend 'exits' crashed in fit(): it called sys.exit(0) " + PLUGIN.format("exits") in line
    )
    assert "rerun with --debug for the traceback" in line


def test_available_raising_is_an_error_naming_the_plugin(results):
    line = _one_line_error(results["unavailable"])
    assert "backend 'unavailable' crashed in available(): it raised RuntimeError: " in line
    assert "probing the GPU failed" in line and PLUGIN.format("unavailable") in line


def test_validate_options_raising_is_an_error_naming_the_plugin(results):
    line = _one_line_error(results["badopts"])
    assert "backend 'badopts' crashed in validate_options(): it raised KeyError: 'speed'" in line
    assert PLUGIN.format("badopts") in line


def test_a_base_exception_from_fit_is_an_error_naming_the_plugin(results):
    line = _one_line_error(results["raisesbase"])
    assert "backend 'raisesbase' crashed in fit(): it raised Odd: not even an Exception" in line


def test_available_returning_the_wrong_type_is_refused(results):
    line = _one_line_error(results["lies"])
    assert "backend 'lies' broke the plugin contract in available(): it returned NoneType" in line


def test_a_plugin_claiming_stan_does_not_replace_the_builtin(results):
    line = _one_line_error(results["stan-claimed-twice"])
    assert "backend 'stan' is registered by more than one plugin" in line
    assert f"plugin framework {framework.__version__} (entry point 'stan')" in line
    assert PLUGIN.format("stan")[1:-1] in line  # the third-party distribution, by name


def test_framework_backends_lists_conflicts_and_broken_plugins(results):
    code, stdout, stderr, _ = results["backends-listing"]
    assert code == 0, stderr
    lines = stdout.splitlines()
    [conflict] = [s for s in lines if "CONFLICT" in s]
    assert conflict.startswith("stan ") and PLUGIN.format("stan")[1:-1] in conflict
    assert f"framework {framework.__version__}" in conflict
    [on_import] = [s for s in lines if s.startswith("importexits")]
    assert "BROKEN" in on_import and "called sys.exit(0)" in on_import
    [on_register] = [s for s in lines if s.startswith("hookexits")]
    assert "framework_register_backends()" in on_register and "sys.exit(1)" in on_register
    [unavailable] = [s for s in lines if s.startswith("unavailable")]
    assert "NOT available" in unavailable and "probing the GPU failed" in unavailable


def test_broken_plugins_leave_the_others_working_and_the_run_names_its_plugin(results):
    code, stdout, stderr, folder = results["fine-beside-broken"]
    assert code == 0, stderr
    assert "Outputs:" in stdout
    diagnostics = json.loads((folder / "diagnostics.json").read_text())
    assert diagnostics["backend"] == "fake"
    assert diagnostics["plugin"] == {"name": "fine", "distribution": DIST, "version": VERSION}


def test_a_backend_of_a_plugin_that_failed_to_register_is_unknown_and_says_why(results):
    code, stdout, stderr, folder = results["broken-named"]
    assert code == 2 and stdout == "" and "Traceback" not in stderr
    assert not folder.exists()
    # registered before the hook exited: dropped with the rest of that plugin
    assert "unknown backend 'half-registered'" in stderr
    assert "plugin 'hookexits' failed to load" in stderr and "called sys.exit(1)" in stderr


def test_the_builtin_stan_can_be_picked_by_distribution(results):
    code, stdout, stderr, _ = results["builtin-stan-picked"]
    assert code == 0, stderr
    assert "CONFLICT" not in stdout and DIST not in stdout
    assert stdout.startswith("stan ") and "(plugin stan;" in stdout
