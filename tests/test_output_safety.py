"""Outputs never replace what is not theirs: refused folders and files, markers, reruns, umask.

Every case runs the real CLI in a subprocess (tests/cli_driver.py, fake backend) inside
a scratch copy of a spec and its data, so a broken guard could only ever delete scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from cli_driver import DATA_SPEC, SIM_SPEC, cli, leftovers, one_line, snapshot


def make_project(folder: Path) -> Path:
    """spec.yaml reading data/d.csv (seed null), sim.yaml simulating, and a folder of user files."""
    (folder / "data").mkdir()
    shutil.copy(DATA_SPEC.parent / "data" / "constant_predictor.csv", folder / "data" / "d.csv")
    spec = yaml.safe_load(DATA_SPEC.read_text())
    spec["data"]["path"] = "data/d.csv"
    spec["sampler"]["seed"] = None  # a seed drawn by the run, to be saved as drawn
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(SIM_SPEC, folder / "sim.yaml")
    (folder / "mine").mkdir()
    (folder / "mine" / "thesis.tex").write_text("years of work")
    return folder


@pytest.fixture
def work(tmp_path):
    return make_project(tmp_path)


# Refused commands: id -> (arguments, extra environment, start of the message, phrases).
# {w} is the project folder, {h} the home folder (elsewhere).
REFUSED = {
    "run-user-folder": (["run", "spec.yaml", "-q", "-o", "mine"], {}, "-o: {w}/mine is not empty and is not a run directory", ["choose another folder with -o"]),
    "run-spec-folder": (["run", "spec.yaml", "-q", "-o", "."], {}, "-o: {w} holds the spec {w}/spec.yaml", []),
    "run-data-folder": (["run", "spec.yaml", "-q", "-o", "data"], {}, "-o: {w}/data holds the data {w}/data/d.csv", []),
    "run-root": (["run", "spec.yaml", "-q", "-o", "/"], {}, "-o: / is the root folder", []),
    "run-home": (["run", "spec.yaml", "-q", "-o", "{h}"], {}, "-o: {h} is the home folder", []),
    "run-parent-of-home": (["run", "sim.yaml", "-q", "-o", "{h}/.."], {}, "-o: {h.parent} holds the home folder {h}", []),
    "run-with-extra-file": (["run", "spec.yaml", "-q", "-o", "extra"], {}, "-o: {w}/extra is a run directory but also holds my-notes.txt", ["move them out"]),
    "validate-spec-folder": (["validate", "spec.yaml", "--set", "output.dir=."], {}, "spec.yaml (--set output.dir=.): output.dir: {w} holds the spec", []),
    "validate-data-folder": (["validate", "spec.yaml", "--set", "output.dir=data"], {}, "spec.yaml (--set output.dir=data): output.dir: {w}/data holds the data", []),
    "validate-home": (["validate", "spec.yaml", "--set", "output.dir={h}"], {}, "spec.yaml (--set output.dir={h}): output.dir: {h} is the home folder", []),
    "validate-default-folder": (["validate", "sim.yaml"], {}, "output folder runs/valid: {w}/runs/valid is not empty and is not a run directory", []),
    "simulate-over-spec": (["simulate", "sim.yaml", "-o", "sim.yaml"], {}, "-o: {w}/sim.yaml is a file this spec reads", []),
    "simulate-over-folder": (["simulate", "sim.yaml", "-o", "mine"], {}, "-o: {w}/mine is a folder", []),
    "simulate-root": (["simulate", "sim.yaml", "-o", "/"], {}, "-o: / is a folder", []),
    "simulate-fifo": (["simulate", "sim.yaml", "-o", "pipe"], {}, "-o: {w}/pipe is not a regular file", []),
    "simulate-device": (["simulate", "sim.yaml", "-o", "/dev/null"], {}, "-o: /dev/null is not a regular file", []),
}  # fmt: skip


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """Each REFUSED command's result, run in parallel, and the project's snapshot before and after."""
    w = make_project(tmp_path_factory.mktemp("project"))
    home = tmp_path_factory.mktemp("homes") / "me"
    (home / "notes").mkdir(parents=True)
    (w / "runs" / "valid").mkdir(parents=True)
    (w / "runs" / "valid" / "keep.txt").write_text("mine")
    (w / "extra").mkdir()  # a run directory (its marker) holding a file the run did not write
    (w / "extra" / ".framework-run").write_text(json.dumps({"format": 1, "files": ["a.csv"]}))
    (w / "extra" / "a.csv").write_text("x\n1\n")
    (w / "extra" / "my-notes.txt").write_text("added by hand")
    os.mkfifo(w / "pipe")
    before = snapshot(w)

    def one(case):
        args, env, _, _ = case
        args = [a.format(w=w, h=home) for a in args]
        return cli(*args, cwd=w, HOME=str(home), **env)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(REFUSED, pool.map(one, REFUSED.values()), strict=True))
    return w, home, results, before, snapshot(w)


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_one_line_naming_the_folder(refused, case):
    w, home, results, _, _ = refused
    _, _, start, says = REFUSED[case]
    line = one_line(results[case])
    assert line.startswith(start.format(w=w, h=home)), line
    assert results[case].stdout == ""
    for phrase in says:
        assert phrase in line, line


def test_refusals_change_nothing(refused):
    _, _, _, before, after = refused
    assert after == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_previous_run_is_replaced_and_an_empty_folder_accepted(work):
    (work / "out").mkdir()  # empty: accepted
    first = cli("run", "spec.yaml", "-q", "-o", "out", cwd=work)
    assert first.returncode == 0, first.stderr
    marker = json.loads((work / "out" / ".framework-run").read_text())
    assert set(marker["files"]) == {p.name for p in (work / "out").iterdir()} - {".framework-run"}
    seed = json.loads((work / "out" / "diagnostics.json").read_text())["seed"]
    second = cli("run", "spec.yaml", "-q", "-o", "out", "--set", "sampler.seed=99", cwd=work)
    assert second.returncode == 0, second.stderr
    assert json.loads((work / "out" / "diagnostics.json").read_text())["seed"] == 99 != seed
    assert leftovers(work / "out") == []


def test_saved_spec_runs_again_as_is(work, tmp_path_factory):
    assert cli("run", "spec.yaml", "-q", "-o", "out", cwd=work).returncode == 0
    saved = yaml.safe_load((work / "out" / "spec.yaml").read_text())
    used = json.loads((work / "out" / "diagnostics.json").read_text())["seed"]
    assert saved["sampler"]["seed"] == used  # the seed drawn, not null
    assert Path(saved["data"]["path"]).is_absolute()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    again = cli("run", work / "out" / "spec.yaml", "-q", "-o", "again", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    for name in ("estimates.csv", "hyperparameters.csv"):
        assert (elsewhere / "again" / name).read_bytes() == (work / "out" / name).read_bytes()
    # Into its own folder too: that spec.yaml is the run's copy, not the user's.
    in_place = cli("run", "out/spec.yaml", "-q", "-o", "out", cwd=work)
    assert in_place.returncode == 0, in_place.stderr


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_follow_the_umask(work, umask):
    assert cli("run", "spec.yaml", "-q", "-o", "out", cwd=work, umask=umask).returncode == 0
    assert cli("simulate", "sim.yaml", "-o", "sim.csv", cwd=work, umask=umask).returncode == 0
    assert stat.S_IMODE((work / "out").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((work / "out" / "estimates.csv").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((work / "sim.csv").stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in work.iterdir() if p.name.startswith(".sim.csv")] == []
