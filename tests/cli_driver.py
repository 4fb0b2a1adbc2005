"""The real CLI in a subprocess, with the fake backend and optional pauses, for the output-safety tests.

`FRAMEWORK_TEST_PAUSE=STAGE` makes the run touch `FRAMEWORK_TEST_FLAG` and pause at
STAGE, so a test can send a signal, or kill the process, at a known moment:
prepare, fit, child (fit with a sampler-like child process alive), writing (all
files written, before the marker and the swap), swallowed (as writing, but the
KeyboardInterrupt is swallowed, as a weakref callback does), swap (inside the two
renames; signals are deferred there, so it pauses 2 s without being interrupted).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA_SPEC = TESTS / "bad_inputs" / "data_spec.yaml"
SIM_SPEC = TESTS / "bad_inputs" / "valid.yaml"

DRIVER = """
import os, sys, time
sys.path.insert(0, {tests!r})
import framework
from fake_backend import FakePlugin
framework.register_plugin(FakePlugin(), name='fake')
stage = os.environ.get('FRAMEWORK_TEST_PAUSE')
if stage:
    import framework.runner as runner
    from framework.results import run_directory
    flag = os.environ['FRAMEWORK_TEST_FLAG']
    seconds = float(os.environ.get('FRAMEWORK_TEST_SECONDS', '60'))
    def pause():
        open(flag, 'w').close()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                time.sleep(0.02)
        except KeyboardInterrupt:
            if stage != 'swallowed':
                raise
    def wrap(module, name, when):
        original = getattr(module, name)
        def wrapped(*args, **kwargs):
            if when == 'before':
                pause()
            if when == 'swap':
                open(flag, 'w').close()
                time.sleep(2)
            out = original(*args, **kwargs)
            if when == 'after':
                pause()
            return out
        setattr(module, name, wrapped)
    if stage == 'child':
        import multiprocessing
        original_fit = runner.fit
        def fit(prepared):
            multiprocessing.Process(target=time.sleep, args=(120,), daemon=False).start()
            return original_fit(prepared)
        runner.fit = fit
    elif stage in ('prepare', 'fit'):
        wrap(runner, stage, 'before')
    elif stage in ('writing', 'swallowed'):
        wrap(run_directory, 'write_run', 'after')  # the runner imports it when writing
    elif stage == 'swap':
        wrap(run_directory, '_swap_into_place', 'swap')
from framework.cli import main
sys.exit(main(sys.argv[1:]))
"""


def argv(*args: str) -> list[str]:
    return [sys.executable, "-c", DRIVER.format(tests=str(TESTS)), *map(str, args)]


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "MPLBACKEND": "Agg"}
    env.update({"FRAMEWORK_LOAD_PLUGINS": "", **extra})  # no plugins unless a test names them
    env.pop("PYTHONWARNINGS", None)
    return env


def cli(*args, cwd: Path, umask: int | None = None, timeout: float = 120, **env):
    """Run `framework ARGS` to the end; the CompletedProcess."""
    return subprocess.run(
        argv(*args),
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def start(*args, cwd: Path, **env) -> subprocess.Popen:
    """Start `framework ARGS` in a session of its own (a signal to its group reaches only it)."""
    return subprocess.Popen(
        argv(*args),
        cwd=cwd,
        env=environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until `path` exists; fails if the run ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (exit {proc.returncode}) first:\n{err}\n{out}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` with the SHA-256 of its bytes."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return out


def leftovers(target: Path) -> list[str]:
    """What a run left beside its target, other than its lock file (kept by design)."""
    return sorted(
        p.name
        for p in target.parent.iterdir()
        if p.name.startswith(f".{target.name}.") and p.name != f".{target.name}.lock"
    )


def one_line(result) -> str:
    """stderr of a refused command, checked to be one line with no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr}\n{result.stdout}"
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
