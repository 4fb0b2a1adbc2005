"""Outputs are atomic: a failed or interrupted run leaves the previous results byte-for-byte as they were."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bad_inputs.corpus import FAKE_MAIN, HERE, TESTS
from cli_driver import leftovers, snapshot

import framework
from fake_backend import FakeBackend, FakePlugin
from framework.runner import run

SPEC = HERE / "valid.yaml"
FAST = ["backend.name=fake", "output.plots=false"]


def locked(target: Path) -> bool:
    """Whether a process holds the run's lock (it does from before reading the data to the end)."""
    lock = target.parent / f".{target.name}.lock"
    if not lock.exists():
        return False
    inode = f":{lock.stat().st_ino}"
    with open("/proc/locks") as locks:  # read, not probed: a probe could take the lock itself
        return any(line.split()[5].endswith(inode) for line in locks if len(line.split()) > 5)


@pytest.fixture
def previous(tmp_path):
    """A finished run directory, made with the fake backend, and its snapshot."""
    framework.register_plugin(FakePlugin(), name="fake-interrupt")
    target = tmp_path / "runs" / "valid"
    try:
        run(SPEC, FAST, output_dir=target)
    finally:
        framework.unregister_plugin("fake-interrupt")
    before = snapshot(target)
    assert "posterior.nc" in before and "estimates.csv" in before
    return target, before


class Raising(FakeBackend):
    def __init__(self, error: BaseException):
        super().__init__()
        self.error = error

    def fit(self, problem, settings, options):
        raise self.error


class Relabelled(FakeBackend):
    def fit(self, problem, settings, options):
        idata = super().fit(problem, settings, options)
        labels = idata.posterior.coords["group"].values[::-1]
        return idata.to_arviz().assign_coords(group=labels, groups="posterior")  # as arviz gives it


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        (Raising(RuntimeError("engine exploded")), framework.FrameworkError),
        (Raising(framework.SamplingError("chains diverged")), framework.SamplingError),
        (Raising(KeyboardInterrupt()), KeyboardInterrupt),
        (Relabelled(), framework.PosteriorContractError),
    ],
    ids=["crash", "sampling-error", "interrupt", "contract"],
)
def test_failed_run_leaves_previous_results_untouched(previous, backend, expected):
    target, before = previous
    framework.register_plugin(FakePlugin(backend), name="fake-failing")
    try:
        with pytest.raises(expected):
            run(SPEC, FAST, output_dir=target)
    finally:
        framework.unregister_plugin("fake-failing")
    assert snapshot(target) == before
    assert leftovers(target) == []


def _start(
    argv: list[str], env_extra: dict[str, str] | None = None, fake: bool = True
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "MPLBACKEND": "Agg", **(env_extra or {})}
    cmd = (
        [sys.executable, "-c", FAKE_MAIN.format(tests=str(TESTS)), *argv]
        if fake
        else [sys.executable, "-m", "framework.cli", *argv]
    )
    # A session of its own, so a signal to its process group reaches only this run.
    return subprocess.Popen(
        cmd,
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )


def _wait_for(condition, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{err}\n{out}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_sampling_exits_130_and_keeps_previous_results(previous, sig):
    target, before = previous
    proc = _start(
        ["run", str(SPEC), "-o", str(target), "--set", "backend.options.sleep=30"],
        {"FRAMEWORK_LOAD_PLUGINS": ""},
    )
    # The lock is held from just before the data are read until the end; sampling sleeps 30 s.
    _wait_for(lambda: locked(target), proc, 120, "the run's lock")
    time.sleep(1.0)
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert snapshot(target) == before
    assert leftovers(target) == []


def _engines() -> list:
    """pystan, and cmdstanpy where a CmdStan installation is found (else skipped, saying why)."""
    try:
        from framework_stan import engines
    except ImportError:
        return ["pystan", "cmdstanpy"]  # stan_ready skips both: the plugin is not installed
    ok, reason = engines.cmdstan_status()
    skip = pytest.mark.skipif(not ok, reason=f"CmdStan not installed: {reason}")
    return ["pystan", pytest.param("cmdstanpy", marks=skip)]


@pytest.fixture(scope="module", params=_engines())
def stan_ready(request, tmp_path_factory):
    """The Stan engine to test, once it is known to run here and its program is compiled."""
    engine = request.param
    plugin = pytest.importorskip(
        "framework_stan", reason="the Stan backend plugin is not installed"
    )
    status = plugin.StanBackend().available()
    if not status:
        pytest.skip(f"the Stan backend cannot run here: {status.reason}")
    # Warm-up: compiles the program once (cached in FRAMEWORK_CACHE_DIR), then samples a little.
    out = tmp_path_factory.mktemp("warmup") / "run"
    proc = _start(
        ["run", str(SPEC), "-q", "-o", str(out), *_stan_settings(engine, draws=20, seed=1)],
        {"FRAMEWORK_LOAD_PLUGINS": "stan"},
        fake=False,
    )
    _, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"the Stan warm-up run ({engine}) failed:\n{err}")
    return engine


def _stan_settings(engine: str, draws: int, seed: int) -> list[str]:
    return [
        "--set",
        "backend.name=stan",
        "--set",
        f"backend.options.engine={engine}",
        "--set",
        "sampler.method=full",
        "--set",
        "sampler.chains=2",
        "--set",
        "sampler.warmup=1000",
        "--set",
        f"sampler.draws={draws}",
        "--set",
        f"sampler.seed={seed}",
        "--set",
        "data.simulate.groups=40",
        "--set",
        "output.plots=false",
    ]


class Lines:
    """Collects a pipe's lines in a thread, so waiting for one never blocks past a deadline."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    def text(self) -> str:
        self.thread.join(timeout=30)
        return "".join(self.lines)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "to_group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c-to-process-group", "sigterm-to-main-process"],
)
def test_signal_during_real_stan_sampling(previous, stan_ready, sig, to_group):
    target, before = previous
    # A fresh seed: httpstan answers a repeated (program, data, seed) request from its fit store.
    # The engine is `stan_ready`'s: pystan, and cmdstanpy where CmdStan is installed.
    seed = secrets.randbelow(2**31)
    proc = _start(
        ["run", str(SPEC), "-o", str(target), *_stan_settings(stan_ready, draws=30_000, seed=seed)],
        {"FRAMEWORK_LOAD_PLUGINS": "stan"},
        fake=False,
    )
    stderr = Lines(proc.stderr)
    _wait_for(
        lambda: any("sampling" in line for line in stderr.lines),
        proc,
        300,
        "'sampling' progress line",
    )
    time.sleep(1.0)
    assert proc.poll() is None, "sampling finished before the signal: raise the draws"
    sent = time.monotonic()
    (os.killpg if to_group else os.kill)(proc.pid, sig)
    try:
        proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the run did not stop within 180 s of {sig.name}:\n{stderr.text()}")
    delay = time.monotonic() - sent
    err = stderr.text()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert snapshot(target) == before
    assert leftovers(target) == []
    time.sleep(0.5)
    assert not _group_alive(proc.pid), "sampler processes outlived the run"
    # The backend kills httpstan's workers, or the CmdStan chain processes, at once: ~0.5 s
    # here, most of it the interpreter's exit. The chains had ~30 s of their 31,000 iterations
    # left, so waiting for them fails.
    assert delay < 5, f"the run stopped {delay:.1f} s after {sig.name}: Stan finished its chains"
