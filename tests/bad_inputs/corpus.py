"""The bad-input corpus (cases.yaml) and a runner that sends each case through the real CLI.

Every case runs in its own process. Cases marked `fresh` (and every case when
FRAMEWORK_CORPUS_FRESH=1) start a new interpreter: `python -m framework.cli ...`
(or `python -c` registering the fake backend, then calling `framework.cli.main`).
The others are forked from one warm interpreter (fork_server.py) that calls the
same `framework.cli.main(argv)`: the same code, exit status and stderr, without
paying the import time once per case.
"""

from __future__ import annotations

import json
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
    fresh: bool = False
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
            args = ["validate", "data_spec.yaml", "--set", f"data.path=data/{name}", *entry.pop("args", [])]
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
    proc = subprocess.run(argv, cwd=HERE, env=env, capture_output=True, text=True, encoding="utf-8",
                          errors="replace", timeout=TIMEOUT)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_all(cases: list[Case]) -> dict[str, Result]:
    """Every case's result: fresh interpreters in parallel, the rest forked from a warm one."""
    every_fresh = os.environ.get("FRAMEWORK_CORPUS_FRESH") == "1"
    fresh = [c for c in cases if every_fresh or c.fresh or c.needs]
    forked = [c for c in cases if c not in fresh]
    workers = max(2, min(8, (os.cpu_count() or 2)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        started = pool.map(run_case, fresh)
        results = run_forked(forked) if forked else {}
        results.update(zip([c.id for c in fresh], started, strict=True))
    return results


def run_forked(cases: list[Case]) -> dict[str, Result]:
    """Results of cases run by fork_server.py, one forked child per case."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    requests = "".join(
        json.dumps({"id": c.id, "argv": c.args, "cwd": str(HERE), "fake": c.fake}) + "\n" for c in cases
    )
    proc = subprocess.run([sys.executable, str(HERE / "fork_server.py")], input=requests, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT + 5 * len(cases))
    replies = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(replies) != len(cases):
        raise RuntimeError(f"fork server failed (exit {proc.returncode}):\n{proc.stderr}")
    return {r["id"]: Result(r["returncode"], r["stdout"], r["stderr"]) for r in replies}


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
