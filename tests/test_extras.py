"""A backend whose extra is not installed: listed as unavailable with the pip command, refused with exit 2.

Real CLI subprocesses; tests/import_blocker/sitecustomize.py makes the extra's
packages unimportable (a meta path finder raising ModuleNotFoundError), which
is what a `pip install framework` without `[stan]` or `[pymc]` looks like to
the plugins. Creating a venv per case would take minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = ROOT / "tests" / "import_blocker"
RAINFALL = ROOT / "specs" / "rainfall.yaml"
EXTRAS = {
    "stan": ("stan,httpstan,cmdstanpy", "pip install 'framework[stan]'"),
    "pymc": ("pymc,pytensor", "pip install 'framework[pymc]'"),
}


def framework_cli(*args: str, blocked: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BLOCKER), os.environ.get("PYTHONPATH")])),
        "FRAMEWORK_BLOCK_IMPORTS": blocked,
        "FRAMEWORK_LOAD_PLUGINS": "stan,pymc",
        "CMDSTAN": "",  # a CmdStan on the machine must not matter: cmdstanpy itself is missing
    }
    return subprocess.run(
        [sys.executable, "-m", "framework.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_blocker_really_blocks(tmp_path):
    """The shim works: without it the check below would pass vacuously."""
    done = subprocess.run(
        [sys.executable, "-c", "import stan"],
        env={**os.environ, "PYTHONPATH": str(BLOCKER), "FRAMEWORK_BLOCK_IMPORTS": "stan"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'stan'" in done.stderr


@pytest.mark.parametrize("backend", sorted(EXTRAS))
def test_backends_lists_missing_extra_with_pip_command(backend, tmp_path):
    blocked, command = EXTRAS[backend]
    done = framework_cli("backends", blocked=blocked, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith(backend))
    assert "NOT available" in line and command in line, done.stdout
    other = next(b for b in EXTRAS if b != backend)  # the other backend is unaffected
    assert next(x for x in done.stdout.splitlines() if x.startswith(other)).split()[1] == (
        "available"
    )
    assert "BROKEN" not in done.stdout  # the plugin still registers without its libraries


@pytest.mark.parametrize("backend", sorted(EXTRAS))
def test_run_naming_missing_backend_exits_2_with_pip_command(backend, tmp_path):
    blocked, command = EXTRAS[backend]
    done = framework_cli(
        "run", str(RAINFALL), "--set", f"backend.name={backend}", "-o", str(tmp_path / "run"), "-q",
        blocked=blocked, tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert command in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "run").exists()
