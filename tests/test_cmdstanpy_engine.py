"""The cmdstanpy engine against a real CmdStan: finding it, caching, quiet, interrupts, equality.

Most tests drive the engine layer (framework_stan.engine_cmdstanpy) with one tiny Stan program, so
they prove the engine itself whatever the generated programs look like; the end-to-end runs
through `framework.run` are at the bottom. Without CmdStan (CMDSTAN unset, no ~/.cmdstan) the
tests that need one skip with the reason; `.ci/run` assembles CmdStan 2.35.0 and sets CMDSTAN.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

framework_stan = pytest.importorskip("framework_stan", reason="the Stan backend is not installed")

from framework import Availability, BackendError, OptionsError  # noqa: E402
from framework_stan import engines  # noqa: E402
from framework_stan.options import validate_options  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
cmdstan_ok, cmdstan_reason = engines.cmdstan_status()
pystan_ok, pystan_reason = engines.pystan_status()
needs_cmdstan = pytest.mark.skipif(
    not cmdstan_ok, reason=f"CmdStan not installed: {cmdstan_reason}"
)
needs_both = pytest.mark.skipif(
    not (cmdstan_ok and pystan_ok),
    reason=f"needs CmdStan and pystan: {cmdstan_reason or pystan_reason}",
)

# The one program of the engine-layer tests, so each engine compiles one program for them: a
# normal model, and with `warn` set (and no data) a term that gives normal_lpdf a scale of 0
# whenever a proposal has s < 1: Stan rejects those with an "Informational Message"
# (non-fatal), as a full centred fit does early in warmup.
NORMAL = """
data { int<lower=0> N; vector[N] y; int<lower=0, upper=1> warn; }
parameters { real mu; real<lower=0> sigma; real<lower=0> s; }
model {
  mu ~ normal(0, 10); sigma ~ normal(0, 5); y ~ normal(mu, sigma); s ~ normal(0, 3);
  if (warn) target += normal_lpdf(1 | 0, fmax(s - 1, 0));
}
"""


def normal_data(n: int = 50, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"N": n, "y": rng.normal(3.0, 2.0, n).tolist(), "warn": 0}


def warns_data() -> dict:
    """NORMAL's data for a run that Stan's non-fatal warnings interrupt."""
    return {"N": 0, "y": [], "warn": 1}


def settings(chains=2, warmup=300, draws=300, seed=1234):
    return SimpleNamespace(
        chains=chains, warmup=warmup, draws=draws, seed=seed, target_accept=0.8, max_treedepth=10
    )


OPTIONS = {"engine": "cmdstanpy", "show_progress": False, "cmdstan_path": None}


# --- finding CmdStan: messages name the variable or option and its value ------------------


@pytest.fixture
def no_cmdstan(monkeypatch, tmp_path):
    """No CMDSTAN and an empty home: what a new user without CmdStan has."""
    monkeypatch.delenv("CMDSTAN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_missing_cmdstan_folder_names_the_variable_and_its_value(monkeypatch, tmp_path):
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "gone"))
    found = engines.locate_cmdstan()
    assert not found and found.source == "CMDSTAN"
    assert f"the CMDSTAN environment variable is '{tmp_path / 'gone'}'" in found.reason
    assert "is not a folder" in found.reason
    # install_cmdstan would not help while CMDSTAN wins: the advice is to fix or unset it.
    assert "install_cmdstan" not in found.reason and "unset it" in found.reason


def test_unbuilt_cmdstan_folder_is_named_with_what_is_missing(monkeypatch, tmp_path):
    (tmp_path / "makefile").write_text("CMDSTAN_VERSION := 2.35.0\n")
    monkeypatch.setenv("CMDSTAN", str(tmp_path))
    found = engines.locate_cmdstan()
    assert found.version == "2.35.0" and "has no bin/stanc" in found.reason
    (tmp_path / "makefile").write_text("all:\n")
    assert "names no CMDSTAN_VERSION" in engines.locate_cmdstan().reason


def test_no_cmdstan_anywhere_advises_installing_one(no_cmdstan):
    found = engines.locate_cmdstan()
    assert not found and found.path is None
    assert "CmdStan not found" in found.reason and "install_cmdstan" in found.reason


def test_cmdstan_path_option_is_named(tmp_path):
    found = engines.locate_cmdstan(str(tmp_path))
    assert found.source == "backend.options.cmdstan_path"
    assert f"backend.options.cmdstan_path is '{tmp_path}'" in found.reason


@pytest.mark.skipif(not pystan_ok, reason=f"pystan cannot run: {pystan_reason}")
def test_auto_falls_back_to_pystan_and_says_why_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "gone"))
    engine, note = engines.choose({"engine": "auto", "cmdstan_path": None})
    assert engine == "pystan" and "\n" not in note
    assert note.startswith("engine auto: using pystan") and "CMDSTAN" in note
    assert engines.resolve_engine({"engine": "auto", "cmdstan_path": None}) == "pystan"


def test_cmdstanpy_without_cmdstan_is_an_options_error(monkeypatch, tmp_path):
    # validate_options is what `framework validate` and `run` call before loading any data.
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "gone"))
    with pytest.raises(OptionsError) as info:
        validate_options({"engine": "cmdstanpy"})
    (problem,) = info.value.problems
    assert problem.startswith("backend.options.engine: cmdstanpy cannot run here")
    assert f"'{tmp_path / 'gone'}'" in problem and "engine: pystan" in problem
    with pytest.raises(BackendError, match="CMDSTAN"):
        engines.resolve_engine({"engine": "cmdstanpy", "cmdstan_path": None})


def test_validate_command_exits_2_naming_cmdstan(tmp_path):
    env = {**os.environ, "CMDSTAN": str(tmp_path / "gone"), "FRAMEWORK_LOAD_PLUGINS": "stan"}
    spec = ROOT / "specs" / "rainfall.yaml"
    args = ["validate", str(spec), "--set", "backend.options.engine=cmdstanpy"]
    proc = subprocess.run(
        [sys.executable, "-m", "framework.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "backend.options.engine" in proc.stderr and "CMDSTAN" in proc.stderr, proc.stderr


def test_availability_lists_each_engine_and_what_auto_picks(monkeypatch, tmp_path):
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "gone"))
    status = engines.availability()
    pystan_line, cmdstan_line, auto_line = status.details
    assert pystan_line.startswith("pystan: found" if pystan_ok else "pystan: not usable")
    assert cmdstan_line.startswith("cmdstanpy: not usable: the CMDSTAN environment variable")
    assert (
        auto_line
        == f"engine auto picks: {'pystan' if pystan_ok else 'none (neither engine can run)'}"
    )


@needs_cmdstan
def test_availability_with_cmdstan_says_where_and_which_version():
    found = engines.locate_cmdstan()
    _, cmdstan_line, auto_line = engines.availability().details
    assert cmdstan_line.startswith(f"cmdstanpy: found, CmdStan {found.version} at {found.path}")
    assert auto_line == "engine auto picks: cmdstanpy"


def test_backends_command_prints_the_details(capsys):
    import framework
    from fake_backend import FakeBackend, FakePlugin
    from framework.cli.main import main

    class Detailed(FakeBackend):
        name = "detailed"

        def available(self):
            return Availability(True, details=("engine one: found at /x", "engine auto picks: one"))

    framework.register_plugin(FakePlugin(Detailed()), name="fake-detailed")
    try:
        assert main(["backends"]) == 0
    finally:
        framework.unregister_plugin("fake-detailed")
    out = capsys.readouterr().out
    assert "engine one: found at /x" in out and "engine auto picks: one" in out


# --- the compile cache is keyed by the installation ---------------------------------------


def test_cache_key_changes_with_the_installation_and_stanc_options(tmp_path):
    from framework_stan.engine_cmdstanpy import model_key

    def install(folder: Path, version="2.35.0") -> engines.CmdStan:
        (folder / "bin").mkdir(parents=True, exist_ok=True)
        (folder / "bin" / "stanc").write_text("")
        return engines.CmdStan(str(folder), "CMDSTAN", version)

    a = install(tmp_path / "a")
    key = model_key(NORMAL, a)
    assert model_key(NORMAL, a) == key
    assert model_key(NORMAL, install(tmp_path / "b")) != key  # moved: TBB's absolute path changes
    assert model_key(NORMAL, install(tmp_path / "a", "2.36.0")) != key
    os.utime(tmp_path / "a" / "bin" / "stanc", ns=(1, 1))  # rebuilt in place
    assert model_key(NORMAL, a) != key
    assert model_key("// stanc: --O1\n" + NORMAL, a) != model_key(NORMAL, a)


# --- the engine layer against a real CmdStan -------------------------------------------------


class Problem(SimpleNamespace):
    """What the engine uses of framework.Problem: `progress` (None when -q) and `report`."""

    def __init__(self, quiet: bool = False):
        lines: list[str] = []
        super().__init__(progress=None if quiet else lines.append, lines=lines)

    def report(self, message: str) -> None:
        if self.progress:
            self.progress(message)


@pytest.fixture
def engine(monkeypatch):
    """engine_cmdstanpy with its converter replaced: run() returns (fit, attrs)."""
    from framework_stan import engine_cmdstanpy

    def convert(fit, problem, settings, attrs):
        fit.draws()  # read now: the CSV files go with run()'s temporary folder
        return fit, attrs

    monkeypatch.setattr(engine_cmdstanpy.io_cmdstanpy, "to_posterior", convert)
    return engine_cmdstanpy


@needs_cmdstan
def test_run_samples_reports_and_records_stan_warnings(engine):
    problem = Problem()
    fit, attrs = engine.run(
        problem, settings(), OPTIONS, NORMAL, warns_data(), {"engine": "cmdstanpy"}
    )
    assert attrs["sampler_warnings"] > 0, problem.lines
    assert "Scale parameter is 0" in attrs["sampler_warning_first"]
    summaries = [line for line in problem.lines if "non-fatal warning" in line]
    assert (
        len(summaries) == 1
        and attrs["library_versions"]["cmdstan"] == engines.locate_cmdstan().version
    )
    fit, attrs = engine.run(problem, settings(), OPTIONS, NORMAL, normal_data(), {})
    assert attrs["sampler_warnings"] == 0 and attrs["sampler_warning_first"] == ""
    assert fit.stan_variable("mu").shape == (600,)
    again = Problem()  # a second run of the same program compiles nothing
    engine.run(again, settings(), OPTIONS, NORMAL, normal_data(), {})
    assert "Stan program found in the compiled-model cache" in again.lines


QUIET_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from types import SimpleNamespace
    sys.path.insert(0, {tests!r})
    from test_cmdstanpy_engine import NORMAL, OPTIONS, Problem, normal_data, settings, warns_data
    import cmdstanpy
    if {user_logging}:
        logging.basicConfig(level=logging.DEBUG)  # a user's root handler must stay quiet too
    from framework_stan import engine_cmdstanpy as e
    e.io_cmdstanpy.to_posterior = lambda fit, p, s, attrs: attrs
    quiet = {quiet}
    for program, data in [(NORMAL, warns_data()), (NORMAL, normal_data()), (NORMAL, warns_data())]:
        p = Problem(quiet=quiet)
        if not quiet:
            p.progress = lambda line: print("progress:", line, file=sys.stderr)
        attrs = e.run(p, settings(), OPTIONS, program, data, {{}})
        print("warnings", attrs["sampler_warnings"])
    cmdstanpy.utils.get_logger().info("after the runs, cmdstanpy logs as before")
    """
)


@needs_cmdstan
@pytest.mark.parametrize(
    ("quiet", "user_logging"),
    [(True, False), (False, False), (True, True)],
    ids=["-q", "verbose", "-q+user-logging"],
)
def test_console_follows_verbosity_in_every_call_order(quiet, user_logging):
    # A fresh interpreter: cmdstanpy's logger is created on first use, which is what broke -q.
    script = QUIET_SCRIPT.format(tests=str(ROOT / "tests"), quiet=quiet, user_logging=user_logging)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    counts = [int(line.split()[1]) for line in proc.stdout.splitlines()]
    assert len(counts) == 3 and counts[0] > 0 and counts[1] == 0 and counts[2] > 0
    err = proc.stderr.splitlines()
    after = [i for i, line in enumerate(err) if "after the runs, cmdstanpy logs as before" in line]
    # the cmdstanpy logger is its usual self again once the framework's calls are over
    assert after, proc.stderr
    during = err[: after[0]]
    if quiet:
        assert during == [], proc.stderr
    else:
        assert all(line.startswith("progress: ") for line in during), proc.stderr
        assert sum("non-fatal warning" in line for line in during) == 2  # once per warns run
    assert not any(
        "Scale parameter is 0, but must be positive!" in line
        for line in during
        if "non-fatal" not in line
    )


INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {tests!r})
    from test_cmdstanpy_engine import NORMAL, OPTIONS, Problem, normal_data, settings
    from framework import Interrupted
    from framework_stan import engine_cmdstanpy as e
    e.io_cmdstanpy.to_posterior = lambda fit, p, s, attrs: attrs
    # As the CLI does: SIGTERM takes Ctrl-C's path.
    signal.signal(signal.SIGTERM, lambda *a: signal.raise_signal(signal.SIGINT))
    p = Problem()
    p.progress = lambda line: print(line, file=sys.stderr, flush=True)
    try:
        e.run(p, settings({chains}, {warmup}, 100, {seed}), OPTIONS, {program}, {data}, {{}})
    except Interrupted as exc:
        print("interrupted:", exc, file=sys.stderr, flush=True)
        # the killed chains must be reaped already: no live or defunct child remains
        kids = []
        for pid in os.listdir("/proc"):
            try:
                stat = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == os.getpid():
                kids.append((pid, stat[0]))
        print("children", kids, file=sys.stderr, flush=True)
        sys.exit(130 if not kids else 1)
    sys.exit(0)
    """
)


def _matching(needle: str) -> list[str]:
    """Command lines of live processes that contain `needle`."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline and str(os.getpid()) != pid:
            found.append(cmdline)
    return found


def _interrupt(script: str, wait_for: str, sig: int) -> tuple[subprocess.CompletedProcess, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if wait_for in line:
            break
    else:
        proc.wait()
        pytest.fail(f"no '{wait_for}' line:\n{''.join(lines)}")
    time.sleep(2.0)
    assert proc.poll() is None, "finished before the signal: make the run longer"
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("no exit within 60 s of the signal")
    delay = time.monotonic() - sent
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(lines) + err), delay


@needs_cmdstan
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_kills_and_reaps_the_chains(engine, sig):
    data = normal_data(n=5000)
    # Compiled first, so the signal lands in sampling; 4 chains on fewer cores, all started.
    engine.run(Problem(quiet=True), settings(draws=10), OPTIONS, NORMAL, data, {})
    seed = secrets.randbelow(2**31)
    script = INTERRUPT_SCRIPT.format(
        tests=str(ROOT / "tests"),
        chains=4,
        warmup=1_000_000,
        seed=seed,
        program="NORMAL",
        data="normal_data(n=5000)",
    )
    done, delay = _interrupt(script, "sampling 4 chains", sig)
    assert done.returncode == 130, done.stderr
    assert "interrupted: interrupted while sampling" in done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
    # ~1,000,000 warmup iterations per chain were left: stopping in seconds means killing.
    assert delay < 5, f"stopped {delay:.1f} s after {sig.name}"
    assert _matching(f"seed={seed}") == [], "CmdStan processes outlived the run"


@needs_cmdstan
@pytest.mark.slow
def test_signal_while_compiling_kills_make_and_leaves_no_half_build(engine):
    from framework.cache import cache_dir

    # A program never compiled before (a unique comment), so make and the compiler are running.
    tag = secrets.token_hex(8)
    program = f"// interrupt test {tag}\n{NORMAL}"
    script = INTERRUPT_SCRIPT.format(
        tests=str(ROOT / "tests"),
        chains=1,
        warmup=10,
        seed=1,
        program=repr(program),
        data="normal_data()",
    )
    done, delay = _interrupt(script, "compiling Stan program", signal.SIGINT)
    assert done.returncode == 130, done.stderr
    assert "interrupted while compiling" in done.stderr and delay < 5, (delay, done.stderr)
    folder = engine.write_program(
        program, engine.model_key(program, engines.locate_cmdstan())
    ).parent
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "model.stan"]
    assert _matching(str(folder)) == [], "make or the compiler outlived the run"
    assert str(cache_dir("cmdstan")) in str(folder)


@pytest.mark.skipif(not pystan_ok, reason=f"pystan cannot run: {pystan_reason}")
def test_pystan_counts_stan_warnings_and_notes_the_auto_fallback(monkeypatch, tmp_path):
    from framework_stan import engine_pystan

    monkeypatch.setattr(engine_pystan.io_pystan, "to_posterior", lambda fit, p, s, attrs: attrs)
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "gone"))
    problem = Problem()
    auto = {**OPTIONS, "engine": "auto"}
    s = settings(seed=secrets.randbelow(2**31))
    attrs = engine_pystan.run(problem, s, auto, NORMAL, warns_data(), {})
    assert (
        attrs["sampler_warnings"] > 0 and "Scale parameter is 0" in attrs["sampler_warning_first"]
    )
    notes = [line for line in problem.lines if line.startswith("engine auto: using pystan")]
    assert len(notes) == 1 and str(tmp_path / "gone") in notes[0], problem.lines


# --- engine against engine: what agreement means ------------------------------------------


def _pystan_draws(program: str, data: dict, s) -> dict[str, np.ndarray]:
    from framework_stan import engine_pystan

    stan = engines.import_pystan()
    with engine_pystan.httpstan_cache(), engine_pystan._console(True):
        fit = stan.build(program, data=data, random_seed=s.seed).sample(
            num_chains=s.chains, num_warmup=s.warmup, num_samples=s.draws
        )
    # fit[name] is (1, draws * chains) with the chain index varying fastest
    return {n: np.asarray(fit[n]).reshape(-1, s.chains).T for n in ("mu", "sigma")}


def _cmdstan_draws(engine, program: str, data: dict, s) -> dict[str, np.ndarray]:
    fit, _ = engine.run(Problem(quiet=True), s, OPTIONS, program, data, {})
    return {n: fit.stan_variable(n).reshape(s.chains, -1) for n in ("mu", "sigma")}


@needs_both
def test_same_stan_and_seed_give_the_same_chains_in_both_engines(engine):
    # Both engines run Stan 2.35 (httpstan 4.13 and CmdStan 2.35.0) with the same seed and
    # chain ids, so they draw the same random stream: the chains are equal up to CmdStan's CSV
    # output (6 significant digits). Comparing them is a check of the plumbing (data, seeds,
    # chain order), not an independent check of the posterior; see the next test for that.
    s, data = settings(seed=4321), normal_data(seed=1)
    a, b = _pystan_draws(NORMAL, data, s), _cmdstan_draws(engine, NORMAL, data, s)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=5e-6, atol=0, err_msg=name)


@needs_both
def test_different_seeds_agree_within_monte_carlo_error(engine):
    import arviz as az

    data = normal_data(seed=2)
    s_a, s_b = (
        settings(chains=2, warmup=300, draws=500, seed=11),
        settings(chains=2, warmup=300, draws=500, seed=12),
    )
    a, b = _pystan_draws(NORMAL, data, s_a), _cmdstan_draws(engine, NORMAL, data, s_b)
    for name in a:
        da, db = az.convert_to_dataset({name: a[name]}), az.convert_to_dataset({name: b[name]})
        mcse = np.hypot(az.mcse(da)[name].item(), az.mcse(db)[name].item())
        # Independent streams: the difference of the means is ~ N(0, mcse); 4 MCSE bounds a
        # false alarm at ~6e-5 per parameter while a wrong posterior (a bug) shows as > 10 MCSE.
        assert abs(a[name].mean() - b[name].mean()) < 4 * mcse, name


# --- end to end: the rainfall spec through framework.run on both engines -------------------

RAINFALL = ROOT / "specs" / "rainfall.yaml"
SMALL = ["sampler.chains=2", "sampler.warmup=300", "sampler.draws=300", "output.plots=false"]


def _rainfall(engine: str, seed: int):
    import framework

    sets = [*SMALL, f"sampler.seed={seed}", f"backend.options.engine={engine}"]
    return framework.run(RAINFALL, sets, write=False).idata


@needs_both
@pytest.mark.slow
def test_rainfall_same_seed_gives_the_same_posterior_in_both_engines():
    # Same Stan (2.35) and seed: the same chains, so this checks the plumbing around the two
    # engines (data, seed, chain order, conversion), not the posterior.
    a, b = _rainfall("pystan", 2024), _rainfall("cmdstanpy", 2024)
    assert a.posterior.attrs["engine"] == "pystan" and b.posterior.attrs["engine"] == "cmdstanpy"
    for name, values in a.posterior.data_vars.items():
        x, y = values.values, b.posterior[name].values
        if name != "coef":
            # Sampled: CmdStan's CSV keeps 6 significant digits, so |x - y| <= 5e-6 |x| (4.9e-6
            # measured); twice that leaves room for the backend's rescaling of the draws.
            np.testing.assert_allclose(y, x, rtol=1e-5, atol=0, err_msg=name)
        else:
            # Drawn from the hyperparameters (marginal method): their rounding passes through
            # the conditional draw, amplified by its shrinkage factors (~3x measured), so the
            # bound is 1e-4 of each coefficient's posterior sd rather than 5e-6 of its value.
            sd = x.std(axis=(0, 1), keepdims=True)
            assert np.all(np.abs(x - y) <= 1e-4 * sd), name


@needs_both
@pytest.mark.slow
def test_rainfall_different_seeds_agree_within_monte_carlo_error():
    import arviz as az

    a, b = _rainfall("pystan", 101), _rainfall("cmdstanpy", 202)
    for name, values in a.posterior.data_vars.items():
        if name == "coef":
            continue  # 51 x q group coefficients: the hyperparameters are the test here
        diff = np.abs(values.mean(("chain", "draw")) - b.posterior[name].mean(("chain", "draw")))
        mcse = np.hypot(az.mcse(a.posterior[[name]])[name], az.mcse(b.posterior[[name]])[name])
        # Independent streams: each difference ~ N(0, mcse); 4.5 MCSE keeps the family-wise
        # false-alarm rate under ~1e-4 for the handful of hyperparameters, while a real
        # disagreement (a prior or data passed differently) shows as tens of MCSE.
        assert np.all(diff < 4.5 * mcse), (name, diff.values, mcse.values)
