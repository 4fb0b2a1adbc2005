"""Compile and sample with cmdstanpy; each program compiled once into cache_dir("cmdstan", sha256)."""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

from framework import CompileError, SamplingError, cache_dir

from . import io_cmdstanpy
from .engines import cmdstan_at
from .program import digest, stanc_options


def run(problem, settings, options: dict, program: str, data: dict, attrs: dict):
    """Compile (once per program) and sample with CmdStan."""
    import cmdstanpy

    quiet = not options["show_progress"]
    with cmdstan_at(options.get("cmdstan_path")), _quiet_logger(quiet):
        stan_file = write_program(program)
        if _is_compiled(stan_file):
            problem.report("Stan program found in the compiled-model cache")
        else:
            problem.report("compiling Stan program (first time only, ~1 min)...")
        start = time.perf_counter()
        try:
            model = cmdstanpy.CmdStanModel(
                stan_file=str(stan_file), stanc_options=cmdstan_stanc_options(program)
            )
        except (ValueError, RuntimeError) as exc:
            raise CompileError(
                f"backend 'stan' (cmdstanpy): compiling the Stan program failed: {exc}\n"
                "Check that CmdStan's C++ toolchain works (`python -m cmdstanpy.install_cmdstan "
                "--overwrite` rebuilds it), or use engine: pystan."
            ) from exc
        compile_seconds = time.perf_counter() - start
        problem.report(f"Stan program ready in {compile_seconds:.1f} s")
        problem.report(
            f"sampling {settings.chains} chains ({settings.warmup} warmup + {settings.draws} draws each)..."
        )
        start = time.perf_counter()
        try:
            fit = model.sample(
                data=data,
                chains=settings.chains,
                parallel_chains=max(1, min(settings.chains, os.cpu_count() or 1)),
                iter_warmup=settings.warmup,
                iter_sampling=settings.draws,
                seed=settings.seed,
                adapt_delta=settings.target_accept,
                max_treedepth=settings.max_treedepth,
                show_progress=not quiet,
                show_console=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise SamplingError(
                f"backend 'stan' (cmdstanpy): sampling failed: {exc}\nNext step: check the priors fit "
                "the data's scale and the data have no extreme values; set backend.options."
                "show_progress: true to see CmdStan's messages."
            ) from exc
        sampling_seconds = time.perf_counter() - start
        versions = library_versions()
    problem.report(f"sampled in {sampling_seconds:.1f} s")
    attrs = {
        **attrs,
        "library_versions": versions,
        "compile_seconds": compile_seconds,
        "sampling_seconds": sampling_seconds,
    }
    return io_cmdstanpy.to_posterior(fit, problem, settings, attrs)


def library_versions() -> dict[str, str]:
    import cmdstanpy

    version = cmdstanpy.cmdstan_version()
    return {
        "cmdstanpy": cmdstanpy.__version__,
        "cmdstan": ".".join(str(v) for v in version) if version else "unknown",
    }


def cmdstan_stanc_options(program: str) -> dict | None:
    """The program's stanc options as cmdstanpy takes them: {"O1": True} for --O1."""
    return {option.lstrip("-"): True for option in stanc_options(program)} or None


def write_program(program: str) -> Path:
    """cache_dir("cmdstan", sha256)/model.stan, written once (a rewrite would force a recompile)."""
    stan_file = cache_dir("cmdstan", digest(program)) / "model.stan"
    if not stan_file.exists() or stan_file.read_text() != program:
        tmp = stan_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(program)
        tmp.replace(stan_file)
    return stan_file


def _is_compiled(stan_file: Path) -> bool:
    exe = stan_file.with_suffix(".exe" if os.name == "nt" else "")
    return exe.exists() and exe.stat().st_mtime >= stan_file.stat().st_mtime


@contextmanager
def _quiet_logger(quiet: bool):
    # cmdstanpy logs every compile and chain at INFO on the console.
    logger = logging.getLogger("cmdstanpy")
    before = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)
