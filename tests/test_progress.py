"""Live sampling progress: the display (fake clock, captured console), real samplers feeding it,
the CLI's line-per-stage output and `-q`, and the PyMC backend's compile cache across processes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from importlib.util import find_spec
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from framework import SamplingProgress
from framework.backends.problem import Problem
from framework.cli.terminal import Progress

ROOT = Path(__file__).resolve().parents[1]
RAINFALL = ROOT / "specs" / "rainfall.yaml"
SHORT = ["sampler.chains=2", "sampler.warmup=150", "sampler.draws=150"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def display(terminal: bool, clock=None) -> tuple[SamplingProgress, StringIO]:
    out = StringIO()
    console = Console(
        file=out, force_terminal=terminal, force_jupyter=False, width=150, color_system=None
    )
    return SamplingProgress(console, clock=clock or Clock(), auto_refresh=False), out


def run_chains(bars: SamplingProgress, clock: Clock, chains=2, warmup=100, draws=100, step=10):
    bars.start(chains, warmup, draws)
    for iteration in range(step, warmup + draws + 1, step):
        clock.now += 1
        for chain in range(chains):
            bars.update(chain, iteration, divergences=iteration // 150)
    bars.done()


# --- the display ------------------------------------------------------------------------------


def test_terminal_shows_a_bar_per_chain_with_phase_and_divergences():
    clock = Clock()
    bars, out = display(terminal=True, clock=clock)
    bars.start(2, 100, 100)
    assert bars.is_live
    clock.now += 30
    bars.update(0, 50)  # phase from the iteration: still warming up
    bars.update(1, 150, warmup=False, divergences=3)
    bars._bars.refresh()
    text = out.getvalue()
    assert "chain 1" in text and "chain 2" in text
    assert " 50/200 warmup" in text and "150/200 sampling 3 divergent" in text
    assert "0:00:30" in text  # elapsed on the test's clock
    bars.done()
    assert not bars.is_live
    assert "200/200" in out.getvalue()  # finished: every chain shown complete


def test_non_terminal_prints_one_line_per_stage():
    clock = Clock()
    bars, out = display(terminal=False, clock=clock)
    run_chains(bars, clock)
    lines = out.getvalue().splitlines()
    stages = [line.split(":")[0] for line in lines]
    assert stages == ["sampling 25%", "sampling 50%", "sampling 75%", "sampling done"], lines
    # 25% of 2 x 200 iterations after 5 ticks of one second: 15 s of 20 remain at that pace
    assert "chains at 50/200, 50/200 (warmup)" in lines[0] and "~15 s left" in lines[0]
    assert "2 divergences" in lines[-1] and "20 s elapsed" in lines[-1]
    assert "\x1b" not in out.getvalue()  # no terminal control codes in logs


def test_stopped_sampling_is_reported_as_stopped():
    clock = Clock()
    bars, out = display(terminal=False, clock=clock)
    bars.start(2, 100, 100)
    bars.update(0, 30)
    bars.done(finished=False)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("sampling stopped: chains at 30/200, 0/200 (warmup)"), line
    assert bars.chains[1].iteration == 0  # not marked complete


def test_disabled_display_ignores_every_call():
    bars = SamplingProgress(enabled=False)
    bars.start(4, 10, 10)
    bars.update(0, 5)
    bars.done()
    assert bars.chains == [] and bars._console is None


@pytest.mark.skipif(find_spec("ipywidgets") is not None, reason="needs Jupyter without ipywidgets")
def test_jupyter_without_ipywidgets_falls_back_to_lines():
    out = StringIO()
    bars = SamplingProgress(Console(file=out, force_jupyter=True), clock=Clock())
    bars.start(1, 10, 10)
    assert not bars.is_live
    bars.update(0, 20)
    bars.done()
    assert "sampling done" in out.getvalue()


def test_problem_hands_backends_the_front_ends_display():
    model_less = Problem.__new__(Problem)  # only `progress` matters here
    object.__setattr__(model_less, "progress", [].append)
    assert not model_less.sampling_progress().enabled  # a bare callable has no bars
    object.__setattr__(model_less, "progress", Progress(quiet=True, stream=StringIO()))
    assert not model_less.sampling_progress().enabled  # -q
    stream = StringIO()
    object.__setattr__(model_less, "progress", Progress(stream=stream))
    bars = model_less.sampling_progress()
    assert bars.enabled and bars.console.file is stream


def test_progress_lines_go_above_live_bars():
    stream = StringIO()
    front = Progress(stream=stream)
    bars = front.sampling()
    bars._console = Console(file=stream, force_terminal=True, width=120)
    bars._auto_refresh = False
    bars.start(1, 5, 5)
    front("a line while sampling")
    bars.done()
    assert "a line while sampling" in stream.getvalue()


def test_stan_and_nutpie_progress_texts_are_parsed():
    from framework_pymc.chain_progress import parse as parse_nutpie
    from framework_stan.chain_progress import parse as parse_stan

    assert parse_stan("Iteration:  100 / 2000 [  5%]  (Warmup)") == (None, 100, True)
    assert parse_stan("Chain [2] Iteration: 1500 / 2000 [ 75%]  (Sampling)") == (2, 1500, False)
    assert parse_stan("Gradient evaluation took 1e-05 seconds") is None
    assert parse_nutpie("600 0 false;12 1 true;") == [(600, 0, False), (12, 1, True)]


# --- real samplers feeding the display ---------------------------------------------------------


class Recorder(SamplingProgress):
    """A silent display that keeps every update the sampler sent."""

    def __init__(self):
        super().__init__(Console(file=StringIO()), live=False)
        self.events: list[tuple[int, int, bool]] = []

    def update(self, chain, iteration, warmup=None, divergences=None):
        self.events.append((chain, iteration, warmup))
        super().update(chain, iteration, warmup, divergences)


class FrontEnd:
    """Stands for the CLI's Progress: lines kept, one Recorder per sampling run."""

    def __init__(self):
        self.lines, self.bars = [], []

    def __call__(self, message):
        self.lines.append(message)

    def sampling(self):
        self.bars.append(Recorder())
        return self.bars[-1]


def _fit(backend_overrides):
    from framework import run

    # A fresh seed: pystan answers a repeated seeded request from its fit cache, without progress.
    seed = random.randrange(1, 10**6)
    front = FrontEnd()
    run(RAINFALL, [*SHORT, f"sampler.seed={seed}", *backend_overrides], write=False, progress=front)
    assert len(front.bars) == 1
    return front.bars[0]


def _assert_every_chain_reported(bars: Recorder, total: int = 300, last: bool = True):
    for chain in range(2):
        mine = [(i, w) for c, i, w in bars.events if c == chain]
        assert len(mine) >= 2, bars.events  # more than a final tick
        assert mine[0][1] and all(a[0] <= b[0] for a, b in zip(mine, mine[1:], strict=False))
        if last:  # the sampler's own last report (done() sets the state, not update())
            assert mine[-1] == (total, False), mine
        assert bars.chains[chain].iteration == total and not bars.chains[chain].warmup


def test_pystan_reports_each_chains_iterations():
    # method full: slow enough per iteration that pystan's polls (every 50 ms) see each chain move
    bars = _fit(["backend.options.engine=pystan", "sampler.method=full"])
    _assert_every_chain_reported(bars)


def test_cmdstanpy_reports_each_chains_iterations(monkeypatch):
    from framework_stan import engine_cmdstanpy, engines

    if not engines.locate_cmdstan():
        pytest.skip(f"CmdStan not installed: {engines.locate_cmdstan().reason}")
    from test_cmdstanpy_engine import NORMAL, OPTIONS, normal_data, settings

    monkeypatch.setattr(engine_cmdstanpy.io_cmdstanpy, "to_posterior", lambda *a: None)
    front = FrontEnd()
    problem = type("Problem", (), {"report": front, "sampling_progress": front.sampling})()
    engine_cmdstanpy.run(problem, settings(), OPTIONS, NORMAL, normal_data(), {})
    # cmdstanpy hands over no lines read after a chain's process exits: the last may be missing
    _assert_every_chain_reported(front.bars[0], total=600, last=False)


def test_pymc_nutpie_reports_each_chains_iterations():
    pytest.importorskip("nutpie")
    bars = _fit(["backend.name=pymc", "backend.options={sampler: nutpie, cores: 1}"])
    _assert_every_chain_reported(bars)


# --- the command line ---------------------------------------------------------------------------


def _cli(tmp_path, *extra) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "framework.cli",
        "run",
        str(RAINFALL),
        "-o",
        str(tmp_path / "run"),
    ]
    args += [f"--set={s}" for s in SHORT] + list(extra)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_in_a_pipe_prints_one_line_per_stage_and_nothing_with_q(tmp_path):
    seed = f"--set=sampler.seed={random.randrange(1, 10**6)}"  # not from pystan's fit cache
    proc = _cli(tmp_path, "--set=backend.options.engine=pystan", "--set=sampler.method=full", seed)
    stages = [
        line.split(":")[0] for line in proc.stderr.splitlines() if line.startswith("sampling ")
    ]
    # a chain may pass several milestones between two polls: then only the last is printed
    assert stages[-1] == "sampling done" and len(stages) >= 2, proc.stderr
    assert len(set(stages)) == len(stages), proc.stderr  # no stage twice
    assert set(stages[:-1]) <= {"sampling 25%", "sampling 50%", "sampling 75%"}, proc.stderr
    assert "\x1b" not in proc.stderr  # a pipe gets no bars or colours
    quiet = _cli(tmp_path, "--set=backend.options.engine=pystan", seed, "-q")
    # only warnings remain: no timestamped lines, no stage lines, no bars
    assert all(line.startswith("framework: warning") for line in quiet.stderr.splitlines())


# The CLI, counting what is compiled: Numba compilations (cfuncs and jitted functions alike
# go through numba.core.compiler.compile_extra; a disk-cache load does not) and PyTensor
# graph rewrites (every pytensor.function rewrites in FunctionMaker.prepare_fgraph).
COUNTING_CLI = """
import sys
from framework_pymc import compile_cache
compile_cache.use_framework_cache()  # as the backend does, before PyTensor's first import
import arviz  # before counting: its import compiles a ufunc of its own (arviz.stats.ecdf_utils)
import numba.core.compiler as numba_compiler
from pytensor.compile.function.types import FunctionMaker
from framework.cli.main import main
counts = {"numba": 0, "pytensor": 0}
def counting(kind, real):
    def call(*args, **kwargs):
        counts[kind] += 1
        return real(*args, **kwargs)
    return call
numba_compiler.compile_extra = counting("numba", numba_compiler.compile_extra)
FunctionMaker.prepare_fgraph = staticmethod(counting("pytensor", FunctionMaker.prepare_fgraph))
code = main(sys.argv[1:])
print("compiled:", counts["numba"], counts["pytensor"], file=sys.stderr)
sys.exit(code)
"""


def test_pymc_second_process_compiles_nothing(tmp_path):
    pytest.importorskip("nutpie")
    import xarray as xr

    def compile_cached(run: Path) -> int:
        with xr.open_dataset(run / "posterior.nc", group="posterior") as post:
            return int(post.attrs["compile_cached"])

    pymc = ["--set=backend.name=pymc", "--set=backend.options={sampler: nutpie}", "-q"]
    _cli(tmp_path / "first", *pymc)  # compiles, or finds an earlier test's entry
    args = ["run", str(RAINFALL), "-o", str(tmp_path / "second"), *pymc]
    second = subprocess.run(
        [sys.executable, "-c", COUNTING_CLI, *args, *(f"--set={s}" for s in SHORT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert second.returncode == 0, second.stderr
    # nothing compiled: no Numba compilation, no PyTensor rewrite, and the backend says so
    assert "compiled: 0 0" in second.stderr.splitlines(), second.stderr
    assert compile_cached(tmp_path / "second") == 1
