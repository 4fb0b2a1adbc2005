"""The plot worker: same PNGs as drawn inline, inline when it fails, and never left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_driver import SIM_SPEC, leftovers, snapshot, start, wait_for
from matplotlib.image import imread
from test_interrupt import Raising

import framework
from fake_backend import FakePlugin
from framework.results import plot_process, plots

PLOTS = ["backend.name=fake", "output.plots=true"]
WORKER = "framework.results.plot_process"


@pytest.fixture
def fake():
    framework.register_plugin(FakePlugin(), name="fake-plots")
    yield
    framework.unregister_plugin("fake-plots")


@pytest.fixture
def inline_draws(monkeypatch) -> list[Path]:
    """The folders the main process drew plots into itself (not the worker)."""
    drawn: list[Path] = []
    draw = plots.draw_plots

    def spy(figures, folder):
        drawn.append(folder)
        draw(figures, folder)

    monkeypatch.setattr(plots, "draw_plots", spy)
    return drawn


def pixels(folder: Path) -> dict[str, np.ndarray]:
    return {name: imread(folder / name) for name in plots.PNGS}


def test_the_worker_draws_the_same_pngs_as_the_main_process(tmp_path, fake, inline_draws):
    by_worker = framework.run(SIM_SPEC, PLOTS, output_dir=tmp_path / "worker").output_dir
    assert inline_draws == []  # the worker drew them
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "executable", "")  # as an embedded interpreter may have it
        inline = framework.run(SIM_SPEC, PLOTS, output_dir=tmp_path / "inline").output_dir
    assert len(inline_draws) == 1
    worker, main = pixels(by_worker), pixels(inline)
    for name in plots.PNGS:
        assert worker[name].shape == main[name].shape and worker[name].shape[0] > 100
        assert np.array_equal(worker[name], main[name]), name
        assert (by_worker / name).read_bytes() == (inline / name).read_bytes()


FAILING = {
    "not runnable": ("executable", str(Path(sys.executable).parent / "no-such-python")),
    "exits at once": ("command", ("-c", "import sys; sys.stdin.buffer.read(1)")),
    "reports an error": (
        "command",
        (
            "-c",
            "import pickle, sys; sys.stdin.buffer.read(); "
            "sys.stdout.buffer.write(pickle.dumps(('error', 'Traceback: boom')))",
        ),
    ),  # fmt: skip
    # Silent for 30 s, then claims success without drawing: only the wait's limit (2 s below)
    # makes the main process kill it and draw the plots.
    "hangs": (
        "command",
        (
            "-c",
            "import pickle, sys, time; sys.stdin.buffer.read(); time.sleep(30); "
            "sys.stdout.buffer.write(pickle.dumps(('ok', [])))",
        ),
    ),  # fmt: skip
}


@pytest.mark.parametrize("how", FAILING)
def test_a_worker_that_cannot_draw_leaves_the_plots_to_the_main_process(
    tmp_path, fake, inline_draws, monkeypatch, how
):
    kind, value = FAILING[how]
    monkeypatch.setattr(plot_process, "WAIT_SECONDS", 2.0)
    if kind == "executable":
        monkeypatch.setattr(sys, "executable", value)
    else:
        monkeypatch.setattr(plot_process, "COMMAND", value)
    out = framework.run(SIM_SPEC, PLOTS, output_dir=tmp_path / "run").output_dir
    assert len(inline_draws) == 1
    for name in plots.PNGS:
        assert (out / name).stat().st_size > 1_000


def test_a_drawing_error_still_fails_the_run_and_writes_nothing(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(plot_process, "COMMAND", FAILING["reports an error"][1])

    def broken(figures, folder):
        raise ValueError("cannot draw")

    monkeypatch.setattr(plots, "draw_plots", broken)
    target = tmp_path / "run"
    with pytest.raises(ValueError, match="cannot draw"):
        framework.run(SIM_SPEC, PLOTS, output_dir=target)
    assert not target.exists() and leftovers(target) == []


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), framework.SamplingError("chains diverged")], ids=repr
)
def test_a_failed_run_from_python_ends_its_worker(tmp_path, monkeypatch, error):
    started = []
    start_worker = plot_process.PlotWorker.start

    def spy():
        started.append(start_worker())
        return started[-1]

    monkeypatch.setattr(plot_process.PlotWorker, "start", staticmethod(spy))
    framework.register_plugin(FakePlugin(Raising(error)), name="fake-failing")
    try:
        with pytest.raises(type(error)):
            framework.run(SIM_SPEC, PLOTS, output_dir=tmp_path / "run")
    finally:
        framework.unregister_plugin("fake-failing")
    (worker,) = started
    assert worker is not None and worker.proc.returncode is not None  # ended and reaped
    assert workers(os.getpid()) == []


def children(pid: int) -> dict[int, str]:
    """Live child processes of `pid` with their command lines (zombies count as ended)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            out[int(entry.name)] = cmdline
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; whoever adopted it may not reap it at once


def workers(pid: int) -> list[int]:
    return [p for p, cmd in children(pid).items() if WORKER in cmd]


def wait_until(condition, proc, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            end_group(proc)
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def end_group(proc) -> tuple[str, str]:
    """Kill what is left of a run started by cli_driver.start (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate(timeout=30)


def in_fit(proc) -> bool:
    """A sampler-like child (the driver's stage `child`) is alive beside the worker."""
    return len(workers(proc.pid)) == 1 and len(children(proc.pid)) >= 2


def test_a_killed_run_leaves_no_worker_even_while_its_sampler_lives(tmp_path):
    # The driver forks a sampler-like child inside fit: it inherits the worker's stdin, so
    # the worker must notice its parent is gone, not only the end of its stdin.
    target = tmp_path / "run"
    proc = start(
        "run", SIM_SPEC, "-o", target, "--set", "output.plots=true",
        "--set", "backend.options.sleep=60",
        cwd=tmp_path, FRAMEWORK_TEST_PAUSE="child", FRAMEWORK_TEST_FLAG=str(tmp_path / "flag"),
    )  # fmt: skip
    try:
        wait_until(lambda: in_fit(proc), proc, "sampler-like child beside the worker")
        (worker,) = workers(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)  # (its pipes stay open while the sampler-like child lives)
        deadline = time.monotonic() + 10  # it checks on its parent every 0.5 s
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(worker), "the plot worker outlived a killed run"
    finally:
        end_group(proc)  # the sampler-like child


@pytest.mark.parametrize(
    "send",
    [os.killpg, os.kill],  # a terminal signals the process group; Jupyter signals the kernel
    ids=["Ctrl-C in a terminal", "SIGINT to the main process"],
)
def test_ctrl_c_during_sampling_leaves_no_worker_and_the_previous_run(tmp_path, fake, send):
    target = tmp_path / "run"
    framework.run(SIM_SPEC, ["backend.name=fake"], output_dir=target)
    before = snapshot(target)
    proc = start(
        "run", SIM_SPEC, "-o", target, "--set", "output.plots=true",
        "--set", "backend.options.sleep=60",
        cwd=tmp_path, FRAMEWORK_TEST_PAUSE="child", FRAMEWORK_TEST_FLAG=str(tmp_path / "flag"),
    )  # fmt: skip
    wait_until(lambda: in_fit(proc), proc, "sampling")
    (worker,) = workers(proc.pid)
    send(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
        # At once: the run ends it (the sampler-like child still holds the worker's stdin).
        outlived = alive(worker)
    finally:
        _, err = end_group(proc)
    assert proc.returncode == 130 and "framework: interrupted" in err, err
    assert not outlived, "the plot worker outlived an interrupted run"
    assert snapshot(target) == before and leftovers(target) == []


def test_a_run_without_plots_starts_no_worker(tmp_path):
    flag = tmp_path / "paused"
    proc = start(
        "run", SIM_SPEC, "-o", tmp_path / "run", "--set", "output.plots=false",
        cwd=tmp_path, FRAMEWORK_TEST_PAUSE="fit", FRAMEWORK_TEST_FLAG=str(flag),
    )  # fmt: skip
    try:
        wait_for(flag, proc)  # prepared, about to sample: a worker would have started
        assert workers(proc.pid) == []  # found by the same command line as in the tests above
    finally:
        end_group(proc)
