"""Compile and sample with cmdstanpy; each program compiled once per CmdStan installation."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cmdstanpy
from cmdstanpy.utils import get_logger

from framework import CompileError, Interrupted, SamplingError, cache_dir
from framework.cache import cache_key

from . import io_cmdstanpy
from .chain_progress import bars_for, cmdstanpy_progress, refresh
from .engines import cmdstan_at, locate_cmdstan, stan_messages, warnings_summary
from .interrupt import ProcessStop, stoppable, track_cmdstanpy
from .program import digest, stanc_options

# cmdstanpy creates its logger on first use, at DEBUG with its own console handler; created
# now, that setup cannot undo the handling `_cmdstanpy_log` installs around every call.
get_logger()
track_cmdstanpy()


def run(problem, settings, options: dict, program: str, data: dict, attrs: dict):
    """Compile (once per program and CmdStan) and sample; Ctrl-C or SIGTERM kill the chains."""
    install = locate_cmdstan(options.get("cmdstan_path"))
    verbose = options["show_progress"] and callable(problem.progress)
    stop = ProcessStop()
    with (
        cmdstan_at(install.path),
        _cmdstanpy_log(verbose),
        tempfile.TemporaryDirectory(prefix="framework_cmdstan_") as output_dir,
    ):
        try:
            model, compile_seconds = compile_model(problem, install, program, stop)
            problem.report(
                f"sampling {settings.chains} chains ({settings.warmup} warmup + {settings.draws} "
                "draws each)..."
            )
            start = time.perf_counter()
            fit = sample(model, settings, data, output_dir, verbose, stop, bars_for(problem))
            sampling_seconds = time.perf_counter() - start
        finally:
            stop.renew()
        problem.report(f"sampled in {sampling_seconds:.1f} s")
        count, first = stan_messages(_console_text(fit))
        if count:
            problem.report(warnings_summary(count, first))
        attrs = {
            **attrs,
            "library_versions": library_versions(install),
            "compile_seconds": compile_seconds,
            "sampling_seconds": sampling_seconds,
            "sampler_warnings": count,
            "sampler_warning_first": first,
        }
        # Inside the temporary folder: the converter reads the chains' CSV files.
        return io_cmdstanpy.to_posterior(fit, problem, settings, attrs)


def compile_model(problem, install, program: str, stop: ProcessStop):
    """(CmdStanModel, seconds): built into the cache once; an interrupt kills make and its compilers."""
    stan_file = write_program(program, model_key(program, install))
    with _compile_lock(stan_file.parent):
        if _is_compiled(stan_file):
            problem.report("Stan program found in the compiled-model cache")
        else:
            problem.report("compiling Stan program (first time only, ~20 s)...")
        start = time.perf_counter()
        try:
            with stoppable(stop):
                model = cmdstanpy.CmdStanModel(
                    stan_file=str(stan_file), stanc_options=cmdstan_stanc_options(program)
                )
        except BaseException as exc:
            _discard_build(stan_file)  # a killed make may leave a half-written executable
            if stop.requested or isinstance(exc, KeyboardInterrupt):
                raise Interrupted("interrupted while compiling the Stan program") from None
            if not isinstance(exc, ValueError | RuntimeError):
                raise
            raise CompileError(
                f"backend 'stan' (cmdstanpy): compiling the Stan program failed: {exc}\n"
                f"Check that the CmdStan at {install.path} (from {install.source}) builds its "
                "example (`make examples/bernoulli/bernoulli` in that folder), or use engine: pystan."
            ) from exc
    seconds = time.perf_counter() - start
    problem.report(f"Stan program ready in {seconds:.1f} s")
    return model, seconds


def sample(
    model, settings, data: dict, output_dir: str, verbose: bool, stop: ProcessStop, bars=None
):
    """The CmdStanMCMC fit; Interrupted (chains killed and reaped) if `stop` was requested."""
    bars = bars or bars_for(None)
    bars.start(settings.chains, settings.warmup, settings.draws)
    fit = None
    try:
        with stoppable(stop), cmdstanpy_progress(model, bars):
            fit = model.sample(
                data=data,
                chains=settings.chains,
                # every chain at once: none waits in a queue that an interrupt would have to drain
                parallel_chains=settings.chains,
                iter_warmup=settings.warmup,
                iter_sampling=settings.draws,
                seed=settings.seed,
                adapt_delta=settings.target_accept,
                max_treedepth=settings.max_treedepth,
                output_dir=output_dir,
                show_progress=verbose,
                show_console=False,
                refresh=refresh(settings),
            )
    except (ValueError, RuntimeError) as exc:
        if stop.requested:  # the chains failed because `stop` killed them
            raise Interrupted("interrupted while sampling") from None
        raise SamplingError(
            f"backend 'stan' (cmdstanpy): sampling failed: {exc}\nNext step: check the priors fit "
            "the data's scale and the data have no extreme values; set backend.options."
            "show_progress: true to see CmdStan's messages."
        ) from exc
    except BaseException:  # e.g. a KeyboardInterrupt outside the main thread: end the chains
        stop.request()
        raise
    finally:
        bars.done(finished=fit is not None and not stop.requested)
    if stop.requested:  # the chains ended just as the signal came: the user still asked to stop
        raise Interrupted("interrupted while sampling")
    return fit


def library_versions(install=None) -> dict[str, str]:
    """cmdstanpy's version and the full version of the CmdStan in use (cmdstanpy's lacks the patch)."""
    version = (install or locate_cmdstan()).version
    return {"cmdstanpy": cmdstanpy.__version__, "cmdstan": version or "unknown"}


def cmdstan_stanc_options(program: str) -> dict | None:
    """The program's stanc options as cmdstanpy takes them: {"O1": True} for --O1."""
    return {option.lstrip("-"): True for option in stanc_options(program)} or None


def model_key(program: str, install) -> str:
    """The compiled model's cache key: program, engine, stanc options and the CmdStan it links."""
    return cache_key(
        engine="cmdstanpy",
        program_sha256=digest(program),
        stanc_options=sorted(stanc_options(program)),
        **install.identity(),
    )


def write_program(program: str, key: str) -> Path:
    """cache_dir("cmdstan", key)/model.stan, written once (a rewrite would force a recompile)."""
    stan_file = cache_dir("cmdstan", key) / "model.stan"
    if not stan_file.exists() or stan_file.read_text() != program:
        tmp = stan_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(program)
        tmp.replace(stan_file)
    return stan_file


def _is_compiled(stan_file: Path) -> bool:
    exe = stan_file.with_suffix(".exe" if os.name == "nt" else "")
    return exe.exists() and exe.stat().st_mtime >= stan_file.stat().st_mtime


def _discard_build(stan_file: Path) -> None:
    for path in stan_file.parent.iterdir():
        if path.name not in (stan_file.name, ".lock"):
            path.unlink(missing_ok=True)


@contextmanager
def _compile_lock(folder: Path):
    # Two processes running make in one folder would overwrite each other's objects.
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _console_text(fit) -> str:
    """What the chains printed (CmdStan's console: stdout and stderr), for Stan's warnings."""
    texts = []
    for path in fit.runset.stdout_files:
        try:
            texts.append(Path(path).read_text(errors="replace"))
        except OSError:
            continue
    return "\n".join(texts)


class _Log(logging.Handler):
    """cmdstanpy's log during one call: kept, and passed to its console handlers only if verbose."""

    def __init__(self, console: list[logging.Handler], verbose: bool):
        super().__init__(logging.DEBUG)
        self.console, self.verbose, self.messages = console, verbose, []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        # Stan's non-fatal warnings are counted and summarised in one line instead.
        if self.verbose and record.levelno >= logging.INFO and "Non-fatal" not in message:
            for handler in self.console:
                handler.handle(record)


@contextmanager
def _cmdstanpy_log(verbose: bool):
    """Route cmdstanpy's log through `_Log` for the duration; restore its handlers after."""
    logger = get_logger()
    saved = (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
    handler = _Log(saved[0], verbose)
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate, logger.disabled = False, False
    try:
        yield handler
    finally:
        logger.handlers = saved[0]
        logger.setLevel(saved[1])
        logger.propagate, logger.disabled = saved[2], saved[3]
