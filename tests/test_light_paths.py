"""What `framework validate` and `backends` leave unimported, and how the `framework` command ends.

Speed itself is measured by benchmarks/latency.py; these tests pin the behaviour the
speed rests on: no heavy library on the light paths, and an exit that skips only the
interpreter's module teardown (atexit handlers, non-daemon threads and sampler pools
still finish, and no process outlives the command).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cli_driver
import numpy as np
import pandas as pd
import pytest
from cli_driver import group_alive

from framework.model.model import build_model
from framework.model.terms import Column
from framework.results.plots import group_figure

ROOT = Path(__file__).resolve().parents[1]
RAINFALL = ROOT / "specs" / "rainfall.yaml"
HEAVY = (
    "stan",
    "httpstan",
    "cmdstanpy",
    "pymc",
    "pandas",
    "scipy",
    "xarray",
    "matplotlib",
    "arviz",
)


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    # The built-in backends only: an installed example plugin may import what it likes.
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "FRAMEWORK_LOAD_PLUGINS": "stan,pymc"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
        **kwargs,
    )


IMPORTED = """
import json, sys
from framework.cli.main import main
code = main(sys.argv[1:])
heavy = {heavy!r}
print(json.dumps({{"code": code, "imported": [m for m in heavy if m in sys.modules]}}))
"""


@pytest.mark.parametrize(
    "args",
    [["validate", str(RAINFALL)], ["backends"]],
    ids=["validate", "backends"],
)
def test_light_commands_import_no_sampler_table_or_plot_library(args):
    done = _python(IMPORTED.format(heavy=HEAVY), *args)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"code": 0, "imported": []}, done.stdout
    if args[0] == "validate":
        assert "rainfall.yaml: valid. 561 rows, 51 groups" in done.stdout
        assert "cannot run here" not in done.stderr  # availability was still checked


def test_a_run_and_a_forecast_from_it_import_no_arviz(tmp_path):
    # The common posterior is a framework.Posterior: arviz (~3.5 s to import) is for users who
    # ask for it (Posterior.to_arviz), never on the path of run or of forecast from a run.
    out = tmp_path / "run"
    commands = [
        ["run", str(RAINFALL), "-o", str(out), "-q", "--set", "output.plots=false"],
        ["forecast", str(out), "--group", "CA", "--at", "year_numeric=16"],
    ]
    for args in commands:
        done = _python(IMPORTED.format(heavy=("arviz",)), *args)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["imported"] == [], args
    assert (out / "posterior.nc").is_file()


ENDS = """
import atexit, sys, threading, time
from pathlib import Path
flag = Path(sys.argv[1])
atexit.register(lambda: (flag / "atexit").write_text("ran"))
def late():
    time.sleep(0.5)
    (flag / "thread").write_text("ran")
threading.Thread(target=late).start()  # not a daemon: the exit waits for it
sys.argv[1:] = ["backends"]
from framework.cli.main import main
main()
print("not reached: main() as the command ends the process")
"""


def test_the_command_runs_atexit_handlers_and_joins_threads_before_it_ends(tmp_path):
    done = _python(ENDS, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "stan " in done.stdout and "not reached" not in done.stdout
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "ran"


EXIT_CODE = """
import sys
sys.argv[1:] = ["validate", "no_such_spec.yaml"]
from framework.cli.main import main
main()
"""


def test_the_command_ends_with_the_handler_exit_code():
    done = _python(EXIT_CODE)
    assert done.returncode == 2 and "no_such_spec.yaml" in done.stderr, done.stderr


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("stan") is None, reason="pystan is not installed"
)
def test_a_pystan_run_leaves_no_process_behind(tmp_path):
    # httpstan's pool forks workers; the fast exit must still end every one of them.
    out = tmp_path / "run"
    args = ["run", str(RAINFALL), "-o", str(out), "-q", "--set", "output.plots=false"]
    args += ["--set", "sampler.draws=100", "--set", "sampler.warmup=100"]
    args += ["--set", "backend.options.engine=pystan"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: every child it starts is in it
    )
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert (out / "posterior.nc").stat().st_size > 0 and "Outputs:" in stdout
    assert not group_alive(proc.pid), "a process of the run outlived it"


def test_group_plot_names_every_group_beside_its_interval_and_fits_the_widest_name():
    columns = {n: Column(n, "numeric") for n in ("rain", "year")}
    columns["state"] = Column("state", "categorical", ())
    model = build_model("rain ~ year + (year || state)", columns)
    groups = ["a", "a very long group name indeed", "c$x$", "d"]
    mean = np.array([1.0, -2.0, 0.5, 3.0])
    estimates = pd.DataFrame(
        {
            "group": np.repeat(groups, 2),
            "term": ["Intercept", "year"] * 4,
            "mean": np.repeat(mean, 2),
            "q5": np.repeat(mean - 1, 2),
            "q95": np.repeat(mean + 1, 2),
        }
    )
    fig = group_figure(estimates, model, {"Intercept": 0.0, "year": 0.0})
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        # Ranked by mean, bottom to top; "$" stays literal text, not mathtext.
        names = [t for t in [*ax.texts, *ax.get_yticklabels()] if t.get_text()]
        texts = sorted(names, key=lambda t: t.get_position()[1])
        assert [t.get_text() for t in texts] == ["a very long group name indeed", "c$x$", "a", "d"]
        assert [t.get_position()[1] for t in texts] == [0, 1, 2, 3]
        # Every name lies inside the figure, left of its panel: none is cut off.
        panel = ax.get_window_extent(renderer)
        for t in texts:
            box = t.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= panel.x0, t.get_text()


def test_a_broken_pystan_install_is_listed_as_found_and_refused_by_run_in_one_line(tmp_path):
    # Listing only asks whether pystan is installed; the run imports it and says what failed.
    shadow = tmp_path / "shadow" / "stan"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('a broken install')\n")
    env = {
        "FRAMEWORK_LOAD_PLUGINS": "stan",
        "PYTHONPATH": str(tmp_path / "shadow"),
        "CMDSTAN": str(tmp_path / "no_cmdstan"),  # auto cannot fall back to cmdstanpy
    }

    def cli(*args):
        return cli_driver.cli(*args, cwd=ROOT, timeout=300, **env)

    listed = cli("backends")
    assert "pystan: found" in listed.stdout, listed.stdout
    done = cli("run", str(RAINFALL), "-o", str(tmp_path / "run"), "-q")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "pystan not importable (ImportError: a broken install): pip install pystan" in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_reader_that_stops_early_is_no_failure():
    # `framework backends | head -c1`: the reader is gone before the command prints.
    env = {**os.environ, "FRAMEWORK_LOAD_PLUGINS": "stan,pymc"}
    child = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "backends"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    child.stdout.close()  # before the interpreter has even imported the CLI
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, err
    assert err == ""
