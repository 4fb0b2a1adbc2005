"""The Stan programs the test modules compile, built in the background two at a time.

A compile takes 0.5-2.5 minutes on one core and the suite's Python mostly runs on one, so
tests/conftest.py starts `python precompile.py MARKERS KEY...` once collection has named the
modules, and the compiles overlap the tests that need none. Racing is harmless: cmdstanpy's
engine locks a program's cache folder while it builds, and the test modules that build a pystan
program listed here wait for its job (conftest's barrier) first. The README's rainfall program
through pystan is not listed: many modules use it unannounced, and the README's run caches it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = ("normal", "uniform")  # the default priors' families

# key: (method, parameterisation, q, correlated[, prior families]) of a generated program, or
# None for test_cmdstanpy_engine's NORMAL.
PROGRAMS = {
    "normal": None,
    "marginal-independent": ("marginal", "centred", 2, False),
    "marginal-correlated": ("marginal", "centred", 2, True),
    "full-centred-independent": ("full", "centred", 2, False),
    "full-non_centred-independent": ("full", "non_centred", 2, False),
    "full-centred-correlated": ("full", "centred", 2, True),
    "full-non_centred-correlated": ("full", "non_centred", 2, True),
    "marginal-q1": ("marginal", "centred", 1, False),
    "marginal-q3": ("marginal", "centred", 3, True),
    "marginal-correlated-half_normal": ("marginal", "centred", 2, True, ("half_normal", "normal")),
}
FULL = [k for k in PROGRAMS if k.startswith("full")]
RAINFALL = ["cmdstanpy:marginal-independent"]  # auto's engine, when it is cmdstanpy

# Test module -> the "engine:program" jobs it compiles ("auto": cmdstanpy if CmdStan is here,
# else pystan; "density": stan_log_density's engine), in the order the session needs them.
USERS = {
    "test_cmdstanpy_engine": ["cmdstanpy:normal", "pystan:normal", *RAINFALL],
    "test_compare": ["auto:marginal-correlated"],
    "test_conformance": [  # pystan's class runs first, variant by variant
        "pystan:full-centred-independent",
        "pystan:marginal-correlated",
        *(f"pystan:{k}" for k in FULL[1:]),  # independent non-centred only without CmdStan
        "auto:marginal-independent",
        "auto:marginal-correlated",
        *(f"cmdstanpy:{k}" for k in FULL if k != "full-non_centred-correlated"),
    ],
    "test_end_to_end": RAINFALL,
    "test_group_draws": RAINFALL,
    "test_interrupt": RAINFALL,
    "test_light_paths": RAINFALL,
    "test_lme4_agreement": ["auto:marginal-correlated-half_normal"],
    "test_progress": ["cmdstanpy:normal", "pystan:full-centred-independent"],
    "test_real_datasets": ["auto:marginal-correlated-half_normal"],
    "test_pystan_cache": ["pystan:marginal-correlated"],
    "test_stan_backend": [
        "pystan:marginal-correlated",
        "pystan:full-centred-correlated",
        "pystan:full-non_centred-correlated",
        "density:marginal-q1",
        "density:marginal-q3",
        "density:marginal-correlated",  # (its independent one is the rainfall program)
    ],
}


def variant_key(variant) -> str:
    """The program key of a conformance Variant (on the suite's default priors)."""
    if variant.method == "marginal":
        return f"marginal-{variant.case}"
    return f"full-{variant.parameterisation}-{variant.case}"


def resolve(job: str) -> tuple[str, str] | None:
    """(engine, program key) of a job here, or None when its engine cannot run here."""
    from stan_log_density import engine as density_engine

    from framework_stan import engines

    engine, key = job.split(":")
    cmdstan, pystan = engines.cmdstan_status()[0], engines.pystan_status()[0]
    if engine in ("auto", "density"):  # the exactness checks take auto's engine too
        engine = density_engine()
    if engine == "pystan" and key == "full-non_centred-independent" and cmdstan:
        return None  # test_conformance leaves it to CmdStan when there is one
    if engine == "pystan" and key == "marginal-independent":
        return None  # the README's rainfall program: modules that wait for no job use it
    ok = {"cmdstanpy": cmdstan, "pystan": pystan}.get(engine)
    return (engine, key) if ok else None


def jobs_for(modules: list[str]) -> list[tuple[str, str]]:
    """The distinct (engine, program) jobs of these test modules, in their order."""
    out: list[tuple[str, str]] = []
    for module in modules:
        for job in USERS.get(module, []):
            resolved = resolve(job)
            if resolved and resolved not in out:
                out.append(resolved)
    return out


def code(key: str) -> str:
    """The Stan program of a key."""
    if PROGRAMS[key] is None:
        from test_cmdstanpy_engine import NORMAL

        return NORMAL
    from framework_stan import program

    method, parameterisation, q, correlated, *families = PROGRAMS[key]
    shape = program.Shape(method, parameterisation, q, correlated, (families or [DEFAULT])[0])
    return program.generate(shape)


def compile_one(engine: str, key: str) -> None:
    """Build one program into the project's cache as the engine's runs would."""
    text = code(key)
    if engine == "cmdstanpy":
        from stan_log_density import cmdstanpy_model

        cmdstanpy_model(text)
        return
    from framework_stan import engine_pystan, engines, stanc

    stan = engines.import_pystan()
    with engine_pystan.httpstan_cache(), engine_pystan._console(True), stanc.with_program_options():
        # No data: pystan compiles (and caches) the program, then refuses the data.
        with contextlib.suppress(ValueError, RuntimeError):
            stan.build(text, data={})
        if not engine_pystan.is_compiled(text):
            raise SystemExit(f"pystan did not compile {key}")


def main(markers: Path, jobs: list[str], workers: int = 2) -> None:
    """Run `engine:key` jobs, `workers` at a time in order; touch markers/<job>.done after each."""
    pending, running = list(jobs), {}
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop(0)
            args = [sys.executable, str(Path(__file__)), "--one", job]
            with open(markers / f"{job}.log", "w") as log:  # the tests' output stays theirs
                running[job] = subprocess.Popen(args, cwd=HERE, stdout=log, stderr=log)
        for job, proc in list(running.items()):
            if proc.poll() is not None:
                (markers / f"{job}.done").write_text(str(proc.returncode))
                del running[job]
        time.sleep(0.2)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    try:
        if sys.argv[1] == "--one":
            compile_one(*sys.argv[2].split(":"))
        else:
            main(Path(sys.argv[1]), sys.argv[2:])
    except KeyboardInterrupt:  # the session ended first; the jobs got the signal as well
        sys.exit(130)
