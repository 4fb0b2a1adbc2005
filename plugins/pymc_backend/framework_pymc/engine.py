"""Run NUTS on a PyMC model with the chosen sampler, quietly, with errors in the framework's terms."""

from __future__ import annotations

import logging
import re
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from framework import BackendError, CompileError, FrameworkError, SamplingError, SamplingProgress

from . import compile_cache, model_cache
from .chain_progress import nutpie_progress, pymc_callback

# Library messages that say nothing actionable to a framework user.
_NOISE = (
    r"PyTensor could not link to a BLAS",
    r"There are not enough devices to run parallel chains",
    r"`idata_kwargs` are currently ignored",
    r"np.dot\(\) is faster on contiguous arrays",
)
_LOGGERS = ("pymc", "pytensor", "numba", "jax", "numpyro")
# Sample statistics under ArviZ's names, from whichever name the sampler uses.
_STATS = {
    "tree_depth": ("tree_depth", "depth"),
    "n_steps": ("n_steps",),
    "step_size": ("step_size",),
    "energy": ("energy",),
    "acceptance_rate": ("acceptance_rate", "mean_tree_accept"),
    "reached_max_treedepth": ("reached_max_treedepth", "maxdepth_reached"),
}
_NEXT_STEP = (
    "try a higher sampler.target_accept (e.g. 0.95), priors on the data's scale, another "
    "backend.options.sampler, or with sampler.method: full, model.parameterisation: non_centred"
)


@dataclass
class Draws:
    """What a sampler returned: the posterior (xarray), statistics and timings."""

    posterior: object
    sample_stats: dict[str, np.ndarray]
    diverging: np.ndarray
    compile_seconds: float
    sampling_seconds: float
    compile_cached: bool = False  # nutpie's compiled model from the disk caches: nothing compiled


def library_versions(sampler: str) -> dict[str, str]:
    names = ["pymc", "pytensor", "arviz", "numpy"]
    names += {
        "nutpie": ["nutpie", "numba"],
        "numpyro": ["numpyro", "jax"],
        "blackjax": ["blackjax", "jax"],
    }.get(sampler, [])
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@contextmanager
def quiet(enabled: bool = True):
    """Silence PyMC INFO logging and known-noise warnings; restore them afterwards."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in _NOISE:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def sample(model, var_names: list[str], sampler: str, settings, options: dict, bars=None) -> Draws:
    """Compile and sample `model`, keeping `var_names`; CompileError / SamplingError on failure.

    `bars` (a framework.SamplingProgress) gets each chain's iterations while it samples.
    """
    cores = max(1, min(settings.chains, options["cores"]))
    bars = bars if bars is not None else SamplingProgress(enabled=False)
    with quiet(not options["progressbar"]):
        if sampler == "nutpie":
            return _nutpie(model, var_names, settings, options, cores, bars)
        return _pm_sample(model, var_names, sampler, settings, options, cores, bars)


def _nutpie(model, var_names, settings, options, cores, bars) -> Draws:
    try:
        import nutpie
    except ImportError as exc:
        raise BackendError(
            f"backend 'pymc': nutpie cannot be imported ({_first_line(exc)}); reinstall it with "
            "'pip install nutpie', or set backend.options.sampler: pymc"
        ) from exc

    start = time.perf_counter()
    # Later processes reuse the rewritten functions (model_cache) and the callbacks (compile_cache)
    cache = compile_cache.install()
    try:
        compiled, stored = model_cache.compile_model(model, var_names, cache)
    except (KeyboardInterrupt, FrameworkError):
        raise
    except Exception as exc:
        raise CompileError(
            f"backend 'pymc': nutpie could not compile the model ({_first_line(exc)}); "
            "use backend.options.sampler: pymc, or rerun with --debug and report the error"
        ) from exc
    compiled_at = time.perf_counter()
    idata = None
    # nutpie's own bars when asked for; else ours, fed by nutpie's progress callback
    watch = bars.enabled and not options["progressbar"]
    if watch:
        bars.start(settings.chains, settings.warmup, settings.draws)
    try:
        with nutpie_progress(bars, cores) if watch else nullcontext():
            background = nutpie.sample(
                compiled,
                draws=settings.draws,
                tune=settings.warmup,
                chains=settings.chains,
                cores=cores,
                seed=int(settings.seed),
                target_accept=settings.target_accept,
                maxdepth=settings.max_treedepth,
                save_warmup=False,
                progress_bar=options["progressbar"],
                blocking=False,
            )
        try:
            idata = background.wait()
        except KeyboardInterrupt:
            # nutpie would return the partial trace; a stopped run must stop.
            background.cancel()
            raise
    except (KeyboardInterrupt, FrameworkError):
        raise
    except Exception as exc:
        raise _sampling_error("nutpie", exc) from exc
    finally:
        bars.done(finished=idata is not None)
    done = time.perf_counter()
    draws = _draws(idata, "nutpie", compiled_at - start, done - compiled_at, settings)
    draws.compile_cached = stored and compile_cache.was_hit(compiled)
    return draws


def _pm_sample(model, var_names, sampler, settings, options, cores, bars) -> Draws:
    import pymc as pm
    from pytensor.link.c.exceptions import CompileError as CCompileError

    extra: dict = {}
    if sampler == "pymc":
        extra["max_treedepth"] = settings.max_treedepth
    elif sampler == "numpyro":
        # One CPU device: chains run vectorised rather than asking for parallel devices.
        extra["nuts_sampler_kwargs"] = {
            "chain_method": "vectorized",
            "nuts_kwargs": {"max_tree_depth": settings.max_treedepth},
        }
    elif sampler == "blackjax":
        extra["nuts_sampler_kwargs"] = {
            "chain_method": "vectorized",
            "nuts_kwargs": {"max_num_doublings": settings.max_treedepth},
        }
    if sampler == "pymc" and bars.enabled and not options["progressbar"]:
        # PyMC calls back after every draw of every chain (numpyro and blackjax do not)
        extra["callback"] = pymc_callback(bars)
        bars.start(settings.chains, settings.warmup, settings.draws)
    start, idata = time.perf_counter(), None
    try:
        with model:
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.warmup,
                chains=settings.chains,
                cores=cores,
                random_seed=int(settings.seed),
                target_accept=settings.target_accept,
                var_names=var_names,
                nuts_sampler=sampler,
                progressbar=options["progressbar"],
                compute_convergence_checks=False,
                **extra,
            )
    except (KeyboardInterrupt, FrameworkError):
        raise
    except ImportError as exc:
        raise BackendError(
            f"backend 'pymc': sampler {sampler} cannot be imported ({_first_line(exc)}); "
            "reinstall it, or set backend.options.sampler: pymc"
        ) from exc
    except Exception as exc:
        if isinstance(exc, CCompileError) or "compilation failed" in str(exc).lower():
            raise CompileError(
                f"backend 'pymc': PyTensor could not compile the model with the C compiler "
                f"({_first_line(exc)}); check that g++ works, clear the cache with "
                "'pytensor-cache clear', or use backend.options.sampler: nutpie"
            ) from exc
        raise _sampling_error(sampler, exc) from exc
    finally:
        # PyMC returns a short trace when interrupted: complete only with every draw
        bars.done(
            finished=idata is not None and idata.posterior.sizes.get("draw") == settings.draws
        )
    wall = time.perf_counter() - start
    # PyMC times the sampling loop itself; the rest (compile, initialisation) is overhead.
    sampling = float(idata.posterior.attrs.get("sampling_time", wall))
    return _draws(idata, sampler, max(wall - sampling, 0.0), sampling, settings)


def _draws(idata, sampler, compile_seconds, sampling_seconds, settings) -> Draws:
    post = idata.posterior
    shape = (post.sizes.get("chain"), post.sizes.get("draw"))
    if shape != (settings.chains, settings.draws):
        # PyMC catches Ctrl-C (and the CLI's SIGTERM) and returns what it has; a run
        # that was stopped must stop, not be summarised from a partial trace.
        raise KeyboardInterrupt(
            f"{sampler} returned {shape[0]} chain(s) x {shape[1]} draw(s) of "
            f"{settings.chains} x {settings.draws}: sampling was interrupted"
        )
    ss = idata.sample_stats
    stats = {}
    for name, candidates in _STATS.items():
        for candidate in candidates:
            if candidate in ss and ss[candidate].dims == ("chain", "draw"):
                stats[name] = np.asarray(ss[candidate].values)
                break
    if sampler in ("pymc", "nutpie"):
        # numpyro's "lp" is a potential energy of another sign convention; left out.
        lp = "lp" if "lp" in ss else "logp"
        if lp in ss:
            stats["lp"] = np.asarray(ss[lp].values)
    diverging = np.asarray(ss["diverging"].values).astype(bool)
    return Draws(post, stats, diverging, float(compile_seconds), float(sampling_seconds))


def _sampling_error(sampler: str, exc: BaseException) -> SamplingError:
    return SamplingError(
        f"backend 'pymc': {sampler} failed while sampling ({_first_line(exc)}); {_NEXT_STEP}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return re.sub(r"\s+", " ", first)[:300]
