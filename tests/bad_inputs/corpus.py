"""The bad-input corpus (cases.yaml) and a runner that sends each case through the real CLI.

Each case is one new interpreter: `python -m framework.cli ...`, or for cases that
need the test's fake backend, `python -c` registering it and then calling
`framework.cli.main`. A test module's cases run a few at a time, once, and its
tests read the results.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
TIMEOUT = 180  # seconds per subprocess; a case is only this slow on a badly overloaded machine

# The CLI with tests/fake_backend.py registered (FRAMEWORK_LOAD_PLUGINS keeps other plugins out).
FAKE_MAIN = (
    "import sys; sys.path.insert(0, {tests!r}); import framework; "
    "from fake_backend import FakePlugin; framework.register_plugin(FakePlugin(), name='fake'); "
    "from framework.cli import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Case:
    """One corpus entry: how to run it and what it must print."""

    kind: str  # "specs", "data" or "accepted"
    name: str
    args: list[str]
    where: str = ""
    says: list[str] = field(default_factory=list)
    lines: int | None = 1
    needs: str | None = None
    fake: bool = False
    warns: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def load_cases(kind: str) -> list[Case]:
    """The cases of one section of cases.yaml, with their command lines filled in."""
    table = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))
    cases = []
    for name, entry in table[kind].items():
        entry = dict(entry)
        if kind == "specs":
            args = entry.pop("args", None) or ["validate", f"specs/{name}.yaml"]
        else:
            args = [
                "validate",
                "data_spec.yaml",
                "--set",
                f"data.path=data/{name}",
                *entry.pop("args", []),
            ]
            entry["fake"] = True
        where = entry.pop("where", "").replace("{here}", str(HERE))
        cases.append(Case(kind, name, args, where=where, **entry))
    return cases


def command(case: Case) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the subprocess for a case."""
    env = {**os.environ, "FRAMEWORK_LOAD_PLUGINS": case.needs or "", "PYTHONIOENCODING": "utf-8"}
    env.pop("PYTHONWARNINGS", None)
    if case.fake:
        return [sys.executable, "-c", FAKE_MAIN.format(tests=str(TESTS)), *case.args], env
    return [sys.executable, "-m", "framework.cli", *case.args], env


def run_case(case: Case) -> Result:
    argv, env = command(case)
    proc = subprocess.run(
        argv,
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=TIMEOUT,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_all(cases: list[Case]) -> dict[str, Result]:
    """Every case's result; the subprocesses run in parallel."""
    workers = max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip([c.id for c in cases], pool.map(run_case, cases), strict=True))


def skip_reason(case: Case, result: Result) -> str | None:
    """Why a case cannot be judged here (its backend plugin is not installed), or None."""
    if case.needs and f"unknown backend '{case.needs}'" in result.stderr:
        return f"backend plugin '{case.needs}' is not registered in this environment"
    return None


def check_refused(case: Case, result: Result) -> None:
    """Exit 2, one clear message (no traceback), starting where it should and saying what it should."""
    shown = f"\n--- stderr ---\n{result.stderr}\n--- stdout ---\n{result.stdout}"
    assert result.returncode == 2, f"exit {result.returncode}, expected 2{shown}"
    assert "Traceback" not in result.stderr, shown
    assert result.stdout.strip() == "", f"nothing belongs on stdout for a refused input{shown}"
    assert result.stderr.startswith(case.where), f"message must start with {case.where!r}{shown}"
    for phrase in case.says:
        assert phrase in result.stderr, f"missing {phrase!r}{shown}"
    if case.lines is not None:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == case.lines, f"expected {case.lines} message line(s){shown}"


def check_accepted(case: Case, result: Result) -> None:
    """Exit 0, the spec reported valid, and exactly the expected warnings."""
    shown = f"\n--- stderr ---\n{result.stderr}\n--- stdout ---\n{result.stdout}"
    assert result.returncode == 0, shown
    assert "valid." in result.stdout, shown
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert all(w.startswith("framework: warning: ") for w in warnings), shown
    assert len(warnings) == (1 if case.warns else 0), shown
    for phrase in case.warns:
        assert phrase in result.stderr, f"missing {phrase!r}{shown}"
