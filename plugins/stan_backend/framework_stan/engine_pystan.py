"""Compile and sample with pystan 3 (httpstan), offline; models cached in the framework's cache."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from importlib.machinery import EXTENSION_SUFFIXES

from framework import CompileError, Interrupted, SamplingError, cache_dir

from . import io_pystan
from .chain_progress import bars_for, pystan_progress, refresh
from .engines import choose, import_pystan, stan_messages, warnings_summary
from .httpstan_reader import concurrent_reader
from .interrupt import Stop, start_workers, stoppable
from .stanc import compile_program, with_program_options

# The root that httpstan's forked sampling processes were started under (they keep their environment).
_workers_root: str | None = None


def run(problem, settings, options: dict, program: str, data: dict, attrs: dict):
    """Build and sample in this thread; Ctrl-C (or the CLI's SIGTERM) ends the chains at once."""
    with _outside_running_loop():
        return _run(problem, settings, options, program, data, attrs, Stop())


@contextmanager
def _outside_running_loop():
    """Let pystan's asyncio.run start from code that a running loop called (Jupyter)."""
    # Not a helper thread: httpstan forks its workers from the thread running pystan, and a
    # fork runs Stan only for models that thread loaded (Stan's autodiff stack is thread-local),
    # so pystan stays in one thread. The outer loop is blocked by this call anyway.
    loop = asyncio._get_running_loop()
    if loop is None:
        yield
        return
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)
        asyncio.set_event_loop(loop)  # asyncio.run cleared the thread's current loop


def library_versions() -> dict[str, str]:
    import httpstan

    return {"pystan": import_pystan().__version__, "httpstan": httpstan.__version__}


def _run(problem, settings, options, program, data, attrs, stop: Stop):
    stan = import_pystan()
    note = choose(options)[1] if options["engine"] == "auto" else ""
    if note:  # say why auto did not pick cmdstanpy, in one line
        problem.report(note)
    # pystan's own output (progress, Stan's messages) only when asked for and not quiet (-q)
    quiet = not (options["show_progress"] and callable(problem.progress))
    with httpstan_cache() as root:
        _discard_interrupted_build(program)
        if is_compiled(program):
            problem.report("Stan program found in the compiled-model cache")
        else:
            problem.report("compiling Stan program (first time only, ~1 min)...")
        start = time.perf_counter()
        with _console(quiet) as console, with_program_options():
            try:
                model = stan.build(program, data=data, random_seed=settings.seed)
            except (ValueError, RuntimeError) as exc:
                raise _build_error(exc, program, console.getvalue()) from exc
        if model is None:  # pystan swallows KeyboardInterrupt and returns None
            raise Interrupted("interrupted while compiling the Stan program")
        compile_seconds = time.perf_counter() - start
        problem.report(f"Stan program ready in {compile_seconds:.1f} s")
        workers_for(root, settings.chains)
        problem.report(
            f"sampling {settings.chains} chains ({settings.warmup} warmup + {settings.draws} draws each)..."
        )
        stored = _stored_fits(program)
        start, fit = time.perf_counter(), None
        bars = bars_for(problem)
        bars.start(settings.chains, settings.warmup, settings.draws)
        with (
            _console(quiet) as console,
            stoppable(stop),
            pystan_progress(bars),
            concurrent_reader(),
        ):
            try:
                fit = _sample(model, settings)
            except (ValueError, RuntimeError) as exc:
                if not stop.requested:  # else the chains failed because `stop` ended them
                    raise _sampling_error(exc, console.getvalue()) from exc
            except AssertionError as exc:  # pystan cannot parse draws holding inf or nan
                if stop.requested:
                    raise Interrupted("interrupted while sampling") from None
                raise SamplingError(
                    "backend 'stan' (pystan): the sampler returned non-finite values that pystan "
                    "cannot read; check the data for extreme values or use tighter priors."
                ) from exc
            finally:
                stop.renew()
                bars.done(finished=fit is not None and not stop.requested)
        if fit is None or stop.requested:  # pystan returns None on a KeyboardInterrupt
            raise Interrupted("interrupted while sampling")
        count, first = stan_messages(console.getvalue())
        sampling_seconds = time.perf_counter() - start
        # httpstan stores seeded fits; an identical request is answered from that store.
        from_cache = not (_stored_fits(program) - stored)
    if from_cache:
        problem.report(
            "draws read from httpstan's fit cache (same program, data, settings and seed)"
        )
    else:
        problem.report(f"sampled in {sampling_seconds:.1f} s")
    if count:
        problem.report(warnings_summary(count, first))
    attrs = {
        **attrs,
        "fit_from_cache": from_cache,
        "library_versions": library_versions(),
        "compile_seconds": compile_seconds,
        "sampling_seconds": sampling_seconds,
        # counted from pystan's captured console; 0 when show_progress printed it instead
        "sampler_warnings": count,
        "sampler_warning_first": first,
    }
    return io_pystan.to_posterior(fit, problem, settings, attrs)


def _sample(model, settings):
    return model.sample(
        num_chains=settings.chains,
        num_warmup=settings.warmup,
        num_samples=settings.draws,
        delta=settings.target_accept,
        max_depth=settings.max_treedepth,
        refresh=refresh(settings),
    )


@contextmanager
def httpstan_cache():
    """Point httpstan's model and fit cache at cache_dir("httpstan") for the duration."""
    # httpstan keeps models in appdirs.user_cache_dir("httpstan"), i.e. $XDG_CACHE_HOME/httpstan.
    root = str(cache_dir("httpstan").parent)
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = root
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = before


def is_compiled(program: str) -> bool:
    """Whether httpstan's cache (as currently configured) holds the compiled program."""
    import httpstan.cache
    import httpstan.models

    folder = httpstan.cache.model_directory(httpstan.models.calculate_model_name(program))
    return folder.is_dir() and any(p.suffix in EXTENSION_SUFFIXES for p in folder.iterdir())


def _discard_interrupted_build(program: str) -> None:
    """Remove a cached build that stopped between the module and its log (a timed-out client)."""
    # httpstan writes stderr.log after the extension module and treats a module without it as
    # cached, then fails reading the log on every later build; a fresh compile heals it.
    import shutil

    import httpstan.cache
    import httpstan.models

    folder = httpstan.cache.model_directory(httpstan.models.calculate_model_name(program))
    if is_compiled(program) and not (folder / "stderr.log").exists():
        shutil.rmtree(folder, ignore_errors=True)


def _stored_fits(program: str) -> set[str]:
    import httpstan.cache
    import httpstan.models

    folder = httpstan.cache.model_directory(httpstan.models.calculate_model_name(program)) / "fits"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def workers_for(root: str, chains: int) -> None:
    """httpstan's pool, forked now, under this cache root, with a worker for every chain."""
    # httpstan samples in forked processes that find models through their own environment;
    # processes forked under another cache folder would not find ours, so start fresh ones.
    # A pool whose workers were stopped (the CLI stops every child process when a command
    # fails, and `main` may be called again in the same process) is replaced as well. A worker
    # per chain (httpstan has one per CPU) starts all chains at once, as CmdStan's do.
    global _workers_root
    import httpstan.services_stub as stub

    processes = getattr(stub.executor, "_processes", None) or {}
    broken = (
        getattr(stub.executor, "_broken", False)
        or getattr(stub.executor, "_shutdown_thread", False)
        or any(not p.is_alive() for p in processes.values())
    )
    cpus = os.cpu_count() or 1
    wanted = max(cpus, min(chains, 4 * cpus))  # beyond that, more processes only share cores
    size = getattr(stub.executor, "_max_workers", wanted)
    if _workers_root != root or broken or size < wanted:
        if processes or broken:
            stub.executor.shutdown(wait=False)
        if processes or broken or size < wanted:
            stub.executor = ProcessPoolExecutor(
                max_workers=wanted,
                mp_context=multiprocessing.get_context("fork"),
                initializer=stub.init_worker,
            )
        _workers_root = root
    start_workers()


class _Sink(io.StringIO):
    """Collects pystan's console text but keeps stderr's descriptor for httpstan's compiler capture."""

    def __init__(self, fileno: int | None):
        super().__init__()
        self._fd = fileno

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd


@contextmanager
def _console(quiet: bool):
    """Silence pystan's progress output when quiet; yields the captured text either way."""
    if not quiet:
        yield io.StringIO()
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        fd = None
    sink = _Sink(fd)
    with redirect_stdout(sink), redirect_stderr(sink):
        yield sink


def _tail(text: str, lines: int = 25) -> str:
    progress = ("Sampling:", "Building:")
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith(progress)]
    return ("\n" + "\n".join(kept[-lines:])) if kept else ""


def _inner(text: str) -> str:
    # httpstan wraps the sampler's exception with a traceback; keep the exception's message.
    match = re.search(r"""(?:RuntimeError|ValueError)\((['"])(.*?)\1\)""", text, re.S)
    return match.group(2) if match else text


def _build_error(exc: Exception, program: str, console: str) -> Exception:
    if isinstance(exc, ValueError):  # stanc refused the program (syntax or semantic error)
        return CompileError(
            f"backend 'stan' (pystan): the generated Stan program does not compile: {exc}."
            f"{_stanc_message(program) or _tail(console)}\nThis is a bug in the Stan backend: rerun "
            "with --debug and report it; meanwhile use method: full/marginal or another backend."
        )
    if is_compiled(program):  # compiled, so the data were refused
        return SamplingError(
            f"backend 'stan' (pystan): Stan refused the data: {exc}{_tail(console)}\n"
            "Check the data for missing or non-finite values."
        )
    return CompileError(
        f"backend 'stan' (pystan): compiling the Stan program failed: {exc}{_tail(console)}\n"
        "pystan needs a C++ compiler (g++ >= 9 or clang); install one (e.g. `apt-get install g++`) "
        "or use engine: cmdstanpy with a CmdStan installation."
    )


def _stanc_message(program: str) -> str:
    # pystan prints stanc's diagnostics instead of raising them; rerun stanc (fast) to get them.
    try:
        compile_program(program, "framework_model")
    except ValueError as exc:
        return "\n" + str(exc).strip()
    except Exception:
        return ""
    return ""


def _sampling_error(exc: Exception, console: str) -> SamplingError:
    text = _inner(str(exc))
    if "Initialization" in text:
        step = (
            "no starting point had a finite log density: check the priors fit the data's scale "
            "(e.g. uniform bounds on the sigmas wide enough) and the data have no extreme values"
        )
    else:
        step = "check the sampler settings (target_accept in (0, 1), positive warmup and draws)"
    return SamplingError(
        f"backend 'stan' (pystan): sampling failed: {text}{_tail(console)}\nNext step: {step}."
    )
