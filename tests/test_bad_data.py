"""Bad data files get one clear message from the real CLI; odd but valid data is kept exactly."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from bad_inputs.corpus import (
    FAKE_MAIN,
    HERE,
    TESTS,
    check_accepted,
    check_refused,
    load_cases,
    run_all,
)

import framework
from fake_backend import FakePlugin
from framework.data.load import read_file
from framework.results.csv_cells import restore_cell
from framework.runner import run


def read_v1(path, **kw):
    """The Dataset of `y ~ x + (x || g)` (data_spec.yaml's model) read from `path`."""
    return read_file(path, "y ~ x + (x || g)", **kw)[1]


REFUSED = load_cases("data")
ACCEPTED = load_cases("accepted")
ODD_LABELS = [
    "Smith, J.",
    'say "hi"',
    "two\nlines",
    "Zürich ☔",
    "../../x",
    "=cmd()",
    " 01",
    "1",
    "$\\undefined$",
]


@pytest.fixture(scope="module")
def results():
    return run_all(REFUSED + ACCEPTED)


@pytest.fixture
def fake():
    framework.register_plugin(FakePlugin(), name="fake-bad-data")
    yield
    framework.unregister_plugin("fake-bad-data")


def test_corpus_is_large_enough():
    assert len(REFUSED) >= 15
    files = {p.name for p in (HERE / "data").iterdir()}
    named = {c.name for c in REFUSED + ACCEPTED}
    assert files <= named, f"data files without an expected message in cases.yaml: {files - named}"


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_bad_data_gets_one_clear_message(case, results):
    check_refused(case, results[case.id])


@pytest.mark.parametrize(
    "case",
    ACCEPTED,
    ids=[c.name + ("+drop" if c.args[-1].endswith("drop") else "") for c in ACCEPTED],
)
def test_odd_but_valid_data_is_accepted(case, results):
    check_accepted(case, results[case.id])


def test_drop_removes_exactly_the_bad_rows():
    ds = read_v1(HERE / "data" / "nan_values.csv", missing="drop")
    assert ds.n_rows == 9 and ds.labels == ["a", "b", "c"]
    assert "dropped 3 row(s)" in ds.warnings[0]


def test_single_row_groups_are_kept():
    ds = read_v1(HERE / "data" / "singleton_groups.csv")
    assert ds.labels == ["a", "b", "c", "solo", "other"]
    assert list(ds.stats.n) == [3, 3, 3, 1, 1]


def test_odd_group_labels_are_read_exactly():
    ds = read_v1(HERE / "data" / "odd_labels.csv")
    assert ds.labels == ODD_LABELS
    assert np.array_equal(ds.y, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 3, 2, 4, 3, 5, 4, 6])


def _written_labels(path):
    # Read back with the csv module (the standard's quoting rules), not with pandas' guesses,
    # undoing the documented quote before cells a spreadsheet would run ('=cmd()').
    # estimates.csv has a row per group and group term: each label once, in order.
    with path.open(newline="", encoding="utf-8") as f:
        return list(dict.fromkeys(restore_cell(row["group"]) for row in csv.DictReader(f)))


def test_odd_group_labels_are_written_exactly(tmp_path, fake):
    out = tmp_path / "runs" / "odd"
    overrides = [
        f"data.path={HERE / 'data' / 'odd_labels.csv'}",
        "backend.name=fake",
        "output.plots=true",
        "forecasts=[{group: 'Smith, J.', x: 2}, {group: 'Zürich ☔', x: 3}]",
    ]
    result = run(HERE / "data_spec.yaml", overrides, output_dir=out)
    assert _written_labels(out / "estimates.csv") == ODD_LABELS
    assert _written_labels(out / "forecasts.csv") == ["Smith, J.", "Zürich ☔"]
    est = pd.read_csv(out / "estimates.csv", dtype={"group": str}, keep_default_na=False)
    assert list(dict.fromkeys(est["group"].map(restore_cell))) == ODD_LABELS
    assert "'=cmd()" in set(est["group"])  # as a spreadsheet must see it: text, not a formula
    saved = framework.load_posterior(out)
    assert [str(g) for g in saved.posterior.coords["group"].values] == ODD_LABELS
    # '../../x' is a label, never a path: nothing is written beside or above the run folder
    # but the folder's lock file (.NAME.lock, see output_folder), which filelock keeps.
    assert sorted(p.name for p in tmp_path.rglob("*") if p.parent != out) == [
        ".odd.lock",
        "odd",
        "runs",
    ]
    assert result.output_dir == out


def test_odd_labels_through_the_cli(tmp_path):
    out = tmp_path / "odd"
    argv = ["run", "data_spec.yaml", "-q", "-o", str(out), "--set", "data.path=data/odd_labels.csv"]
    env = {
        "FRAMEWORK_LOAD_PLUGINS": "",
        "PATH": "/usr/bin:/bin",
        "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg",
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-c", FAKE_MAIN.format(tests=str(TESTS)), *argv],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert _written_labels(out / "estimates.csv") == ODD_LABELS


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads any file, so permissions cannot make it unreadable"
)
def test_unreadable_data_file(tmp_path):
    data = tmp_path / "rain.csv"
    data.write_text("g,x,y\na,1,2\nb,1,3\n")
    data.chmod(0)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        (HERE / "data_spec.yaml").read_text().replace("data/constant_predictor.csv", "rain.csv")
    )
    with pytest.raises(
        framework.SpecError, match=r"spec.yaml:4: data.path: .*cannot be read \(permission denied\)"
    ):
        framework.load_spec(spec)
