"""Property: any group label round-trips unchanged through spec, data, outputs and `forecast`.

A label is written into the data CSV and as a forecast's `group:` in the spec
(plain where YAML allows, else double-quoted), fitted with the fake backend
(tests/fake_backend.py: the core's contract, not statistics) and must come back
exactly as written: in posterior.nc's `group` coordinate, in estimates.csv and
forecasts.csv once the documented quote before spreadsheet formulas is undone
(framework.results.csv_cells), as a fitted (not population) forecast, and from
`framework forecast --group LABEL` on the saved run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_inputs.corpus import FAKE_MAIN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import framework
from fake_backend import FakePlugin
from framework.cli.main import main
from framework.results.csv_cells import restore_cell
from framework.runner import run

TESTS = Path(__file__).resolve().parent
# Labels that YAML 1.1, pandas or a spreadsheet would each read as something else.
TRICKY = ["1e3", "01", "010", "nan", "NaN", "True", "NO", "null", "~", "=A", "+1", "-1", "@x",
          "'=q", " 01", "1_000", "0x1F", "1:30", "-", "é", "Zürich ☔", "a, b", 'say "hi"']  # fmt: skip
# Any printable text with something on it (a blank label is a missing value, refused).
TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=10
).filter(str.strip)
LABEL = st.one_of(st.sampled_from(TRICKY), TEXT)
PLAIN = re.compile(r"[A-Za-z0-9_=+][A-Za-z0-9_.=+-]*")  # written unquoted in the spec

SPEC = """\
name: roundtrip
data: {{path: data.csv}}
model: {{formula: y ~ x + (1 | g)}}
backend: {{name: fake}}
sampler: {{chains: 2, warmup: 10, draws: 20, seed: 1}}
forecasts:
{forecasts}
output: {{plots: false}}
"""


def yaml_scalar(label: str) -> str:
    # Plain where YAML allows it (then the loader must keep `01`, `1e3`, `True` as text);
    # else double-quoted: JSON's string escapes are YAML's too. A plain `null` is YAML's
    # "nothing", as a user writing it means: the label null has to be quoted.
    plain = PLAIN.fullmatch(label) and label.lower() != "null"
    return label if plain else json.dumps(label, ensure_ascii=False)


def write_case(folder: Path, labels: list[str]) -> Path:
    rng = np.random.default_rng(0)
    with (folder / "data.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["g", "x", "y"])
        for label in labels:
            for x in range(3):
                out.writerow([label, x, x + rng.normal()])
    forecasts = "".join(f"  - {{group: {yaml_scalar(g)}, x: 1}}\n" for g in labels)
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(forecasts=forecasts.rstrip("\n")), encoding="utf-8")
    return spec


def csv_groups(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(dict.fromkeys(restore_cell(row["group"]) for row in csv.DictReader(f)))


@pytest.fixture(scope="module")
def fake():
    framework.register_plugin(FakePlugin(), name="fake")
    yield
    framework.unregister_plugin("fake")


@settings(
    max_examples=10,  # each example is a full run (~0.5 s); the tricky list is sampled often
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(labels=st.lists(LABEL, min_size=2, max_size=4, unique_by=str.strip))
def test_labels_round_trip(tmp_path_factory, fake, labels):
    folder = tmp_path_factory.mktemp("case")
    result = run(write_case(folder, labels), output_dir=folder / "run")
    out = result.output_dir
    saved = framework.load_posterior(out)
    assert [str(g) for g in saved.posterior.coords["group"].values] == labels
    assert csv_groups(out / "estimates.csv") == labels
    assert csv_groups(out / "forecasts.csv") == labels
    assert result.forecasts["source"].tolist() == ["fitted"] * len(labels)
    label = labels[-1]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["forecast", str(out), f"--group={label}", "--x", "1", "--new-groups", "error"])
    assert code == 0, stderr.getvalue()  # found as written: a miss would exit 2
    assert " fitted " in stdout.getvalue()


def test_tricky_labels_through_the_cli(tmp_path):
    # The real CLI in a subprocess, with the fake backend registered there.
    labels = ["01", "1", "1e3", "=A", " 01", "True"]
    spec = write_case(tmp_path, labels)
    env_argv = [sys.executable, "-c", FAKE_MAIN.format(tests=str(TESTS))]
    proc = subprocess.run([*env_argv, "run", str(spec), "-q", "-o", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "not in the data" not in proc.stderr  # every spec forecast found its group
    assert csv_groups(tmp_path / "run" / "forecasts.csv") == labels
    # `01` (YAML 1.1 read it as group "1", also in the data) from the saved run; the in-process
    # property test covers the other labels, and a subprocess costs seconds.
    proc = subprocess.run(
        [*env_argv, "forecast", str(tmp_path / "run"), "--group=01", "--x", "2",
         "--new-groups", "error"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2].startswith("01 ") and " fitted " in proc.stdout
