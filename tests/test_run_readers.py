"""Readers of a run directory: damaged, truncated, empty or foreign files end in one line naming the file.

One real run (the fake backend, through framework.run) is copied and damaged per
case. Every case goes through the CLI's `forecast` in-process (main(); the same
code path, and cheap); the ones a user meets most go through a real `framework`
subprocess as well, to show the exit status and that no traceback is printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import xarray as xr

import framework
from fake_backend import FakePlugin
from framework.cli import main

SPEC = Path(__file__).resolve().parent / "bad_inputs" / "valid.yaml"  # fake backend, 3 groups
FORECAST = ["--group", "CA", "--x", "3"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A complete run directory and its posterior read into memory."""
    framework.register_plugin(FakePlugin(), name="fake")
    try:
        out = tmp_path_factory.mktemp("template") / "run"
        framework.run(SPEC, output_dir=out)
    finally:
        framework.unregister_plugin("fake")
    idata = az.from_netcdf(str(out / "posterior.nc"), engine="h5netcdf")
    for group in idata.groups():
        idata[group].load()
    return out, idata


def _rewrite(change):
    """A damage that writes the template's posterior again after `change(idata)`."""

    def damage(path: Path, idata) -> None:
        copy = idata.copy()
        change(copy)
        path.unlink()
        copy.to_netcdf(str(path), engine="h5netcdf")

    return damage


def _bytes(make):
    def damage(path: Path, idata) -> None:
        path.write_bytes(make(path.read_bytes()))

    return damage


def _replace(write):
    def damage(path: Path, idata) -> None:
        path.unlink()
        write(path)

    return damage


def _posterior(idata, data):
    idata.posterior = data


# case -> (damage to posterior.nc, what the message says); the message starts with the file.
CASES = {
    "empty": (_bytes(lambda b: b""), "is empty (0 bytes)"),
    "truncated": (_bytes(lambda b: b[: len(b) // 2]), "cannot be read, it is truncated or damaged"),
    "truncated-to-the-signature": (_bytes(lambda b: b[:5]), "is truncated (5 bytes)"),
    "zeroed-block": (
        _bytes(lambda b: b[:20000] + bytes(5000) + b[25000:]),
        "cannot be read, it is truncated or damaged",
    ),
    "text-renamed": (
        _bytes(lambda b: b"group,x\nCA,3\n"),
        "is not a NetCDF-4 file (it holds text)",
    ),
    "netcdf3": (
        _replace(lambda p: xr.Dataset({"a": ("x", np.zeros(3))}).to_netcdf(p, engine="scipy")),
        "is not a NetCDF-4 file (it is a NetCDF-3 file)",
    ),
    "netcdf-without-groups": (
        _replace(lambda p: xr.Dataset({"a": ("x", np.zeros(3))}).to_netcdf(p, engine="h5netcdf")),
        "is a NetCDF file but not a run's posterior (it has no 'posterior' group)",
    ),
    "foreign-inference-data": (
        _replace(
            lambda p: az.from_dict(posterior={"mu": np.zeros((2, 5))}).to_netcdf(
                str(p), engine="h5netcdf"
            )
        ),
        "has no formula/family/model_columns attrs, so `framework run` did not write it",
    ),
    "model-attrs-garbled": (
        _rewrite(lambda i: i.posterior.attrs.update(model_columns="[1, 2]")),
        "cannot rebuild the model from the saved attrs",
    ),
    "variable-missing": (
        _rewrite(lambda i: _posterior(i, i.posterior.drop_vars("beta"))),
        "posterior variable 'beta' is missing",
    ),
    "terms-renamed": (
        _rewrite(lambda i: _posterior(i, i.posterior.assign_coords(term=["a", "b"]))),
        "the 'term' coordinate does not list the model's names",
    ),
    "formula-of-another-model": (
        _rewrite(lambda i: i.posterior.attrs.update(formula="rainfall ~ 1 + (1 | state)")),
        "does not match the model it was saved with (rainfall ~ 1 + (1 | state))",
    ),
    "group-label-twice": (
        _rewrite(lambda i: _posterior(i, i.posterior.assign_coords(group=["CA", "CA", "TX"]))),
        "the 'group' coordinate repeats a label",
    ),
    "negative-sd": (
        _rewrite(lambda i: i.posterior["group_sd"].values.__imul__(-1)),
        "'group_sd' has values <= 0",
    ),
    "rows-cut-short": (
        _rewrite(lambda i: setattr(i, "constant_data", i.constant_data.isel(obs=slice(0, 5)))),
        "observed_data.y does not have 5 rows",
    ),
    "group-codes-out-of-range": (
        _rewrite(lambda i: i.constant_data["group"].values.__setitem__(0, 99)),
        "constant_data.group holds codes that are not groups of the posterior",
    ),
    "posterior-is-a-folder": (_replace(lambda p: p.mkdir()), "is not a regular file"),
    "posterior-missing-from-a-marked-run": (
        lambda p, i: p.unlink(),
        "is missing although .framework-run marks",
    ),
}


def _damaged(template, tmp_path, case: str) -> Path:
    source, idata = template
    run = tmp_path / case
    shutil.copytree(source, run)
    damage, _ = CASES[case]
    damage(run / "posterior.nc", idata)
    return run


def _one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return err.strip()


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_or_foreign_posterior_is_named_with_what_is_wrong(
    case, template, tmp_path, capsys
):
    run = _damaged(template, tmp_path, case)
    assert main(["forecast", str(run), *FORECAST]) == 2
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert captured.out == ""
    assert line.startswith(f"{run / 'posterior.nc'}: "), line
    assert CASES[case][1] in line, line


def test_folders_that_are_not_runs_are_named(template, tmp_path, capsys):
    unmarked_empty = tmp_path / "empty-folder"
    unmarked_empty.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a run\n")
    for folder, says in [
        (tmp_path / "no-such-run", "no such run directory"),
        (unmarked_empty, "is not a run directory (no posterior.nc, no .framework-run marker)"),
        (a_file, "is a file, not a run directory"),
    ]:
        assert main(["forecast", str(folder), *FORECAST]) == 2
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"{folder}: ") and says in line, line


def test_a_run_without_the_marker_is_read_when_its_posterior_is_valid(template, tmp_path, capsys):
    run = tmp_path / "unmarked"
    shutil.copytree(template[0], run)
    (run / ".framework-run").unlink()
    assert main(["forecast", str(run), *FORECAST]) == 0
    assert "CA" in capsys.readouterr().out
    assert framework.load_posterior(run).posterior.sizes["group"] == 3


def test_load_posterior_refuses_a_damaged_file_too(template, tmp_path):
    run = _damaged(template, tmp_path, "variable-missing")
    with pytest.raises(framework.RunDirectoryError, match="posterior variable 'beta' is missing"):
        framework.load_posterior(run)


# Through a real `framework` process: exit status 2, one line, no traceback.
SUBPROCESS_CASES = ["text-renamed", "truncated", "variable-missing"]


def test_the_framework_command_refuses_damaged_runs_with_exit_2(template, tmp_path):
    running = {}
    env = {**os.environ, "FRAMEWORK_LOAD_PLUGINS": ""}  # reading a run needs no plugin
    for case in SUBPROCESS_CASES:
        run = _damaged(template, tmp_path, case)
        argv = [sys.executable, "-m", "framework.cli", "forecast", str(run), *FORECAST]
        running[case] = (
            run,
            subprocess.Popen(
                argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            ),
        )
    for case, (run, proc) in running.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, (case, stdout, stderr)
        assert stdout == ""
        line = _one_line(stderr)
        assert line.startswith(f"{run / 'posterior.nc'}: ") and CASES[case][1] in line, line
