"""A generated Stan program's log density at given parameter values, through the cheaper engine.

The exactness tests check a program's text, not an engine, so they use whichever compiles it
faster: cmdstanpy where a CmdStan is found (CI assembles one; ~15-45 s a program) and pystan
otherwise (~50-125 s). Either engine compiles into the project's cache under the key its fits
use, so a program a fit compiles is never compiled again here, nor the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

from framework_stan import engines

LogDensity = Callable[[dict], float]


def engine() -> str | None:
    """The engine the exactness tests use here: "cmdstanpy", "pystan", or None (neither runs)."""
    return engines.choose({"engine": "auto"})[0]  # auto prefers cmdstanpy, as a fit's does


def log_density(code: str, data: dict) -> LogDensity:
    """Compile `code` (once per cache) with `data`; values (natural scale) -> log density.

    The density leaves out the log Jacobian of the parameters' transforms (as `~` leaves out
    constants, only differences between points are meaningful).
    """
    build = _cmdstanpy if engine() == "cmdstanpy" else _pystan
    return build(code, data)


def _plain(values: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in values.items()}


def _pystan(code: str, data: dict) -> LogDensity:
    from framework_stan import engine_pystan, stanc

    stan = engines.import_pystan()
    with engine_pystan.httpstan_cache(), stanc.with_program_options():
        model = stan.build(code, data=data)

    def log_prob(values: dict) -> float:
        with engine_pystan.httpstan_cache():
            unconstrained = model.unconstrain_pars(_plain(values))
            return model.log_prob(unconstrained, adjust_transform=False)

    return log_prob


def cmdstanpy_model(code: str):
    """(CmdStanModel, the CmdStan install) for `code`, compiled into the cache as a fit would."""
    from framework_stan import engine_cmdstanpy
    from framework_stan.interrupt import ProcessStop

    install = engines.locate_cmdstan()
    quiet = SimpleNamespace(report=lambda message: None)
    with engines.cmdstan_at(install.path):
        model, _ = engine_cmdstanpy.compile_model(quiet, install, code, ProcessStop())
    return model, install


def _cmdstanpy(code: str, data: dict) -> LogDensity:
    model, install = cmdstanpy_model(code)

    def log_prob(values: dict) -> float:
        # CmdStan's log_prob method takes constrained values; 18 significant digits: the
        # comparison is to ~1e-8 of sums of ~1e3 terms, beyond CSV's default 6 digits.
        with engines.cmdstan_at(install.path):
            out = model.log_prob(_plain(values), data=data, jacobian=False, sig_figs=18)
        return float(out["lp__"].iloc[0])

    return log_prob
