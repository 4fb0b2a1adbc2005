"""What `framework --help` and `framework validate` import: only what each command uses.

Speed is measured by benchmarks/latency.py; these tests pin what it rests on, so an import
that creeps onto these paths fails here. Each command runs in a new interpreter, the way
the `framework` command does, and reports which of the heavy modules it left imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
# Libraries neither command needs: tables, arrays on disk, plots, samplers, clusters.
HEAVY = (
    "pandas",
    "pyarrow",
    "xarray",
    "h5netcdf",
    "matplotlib",
    "scipy",
    "arviz",
    "stan",
    "httpstan",
    "cmdstanpy",
    "pymc",
    "pytensor",
    "dask",
    "distributed",
    "numba",
)

DRIVER = """
import json, sys
from framework.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:  # --help ends through argparse
    code = exc.code
print(json.dumps({"code": code, "imported": [m for m in json.loads(sys.argv[1]) if m in sys.modules]}))
"""


def imported(*args: str, watch: tuple[str, ...] = HEAVY) -> tuple[dict, str]:
    """Run `framework ARGS` in a new interpreter: its exit code and which of `watch` it imported."""
    # The built-in backends only: an installed example plugin may import what it likes.
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "FRAMEWORK_LOAD_PLUGINS": "stan,pymc"}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(watch), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stdout


def test_help_imports_only_the_argument_parser():
    # No spec is read: not even numpy, pydantic, YAML or the spec's schema.
    watch = (*HEAVY, "numpy", "pydantic", "yaml", "framework.spec.schema", "framework.runner")
    result, stdout = imported("--help", watch=watch)
    assert result == {"code": 0, "imported": []}
    assert "validate" in stdout and "run" in stdout


def test_validating_a_simulated_spec_reads_no_file_so_imports_no_arrow_or_pandas():
    result, stdout = imported("validate", str(SPECS / "rainfall.yaml"))
    assert result == {"code": 0, "imported": []}
    assert "rainfall.yaml: valid. 561 rows, 51 groups" in stdout


def test_validating_a_csv_spec_imports_the_csv_reader_and_not_parquet():
    # pyarrow's CSV reader reads the rows; Parquet, plots, samplers and clusters stay out.
    # (pandas does come in: pyarrow imports it when it first turns Arrow values into NumPy.)
    watch = (*HEAVY, "pyarrow.csv", "pyarrow.parquet")
    result, stdout = imported("validate", str(SPECS / "sleepstudy.yaml"), watch=watch)
    assert result["code"] == 0
    assert "pyarrow.csv" in result["imported"]
    assert set(result["imported"]) <= {"pyarrow", "pyarrow.csv", "pandas"}
    assert "sleepstudy.yaml: valid. 180 rows, 18 groups" in stdout
