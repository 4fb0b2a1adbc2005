"""The Stan backend: Stan programs generated from templates, run by pystan or cmdstanpy."""

from __future__ import annotations

from importlib.util import find_spec

from framework import Availability, require_method

from . import engines
from .options import validate_options as _validate_options

# The libraries `pip install 'framework[stan]'` brings; pystan needs httpstan to run.
INSTALL_EXTRA = "pip install 'framework[stan]'"
ENGINE_LIBRARIES = {"pystan": ("stan", "httpstan"), "cmdstanpy": ("cmdstanpy",)}


def missing_extra() -> str:
    """Why no Stan engine's libraries are installed, with the pip command; '' if one is."""
    missing = {
        engine: [m for m in modules if find_spec(m) is None]
        for engine, modules in ENGINE_LIBRARIES.items()
    }
    if all(missing.values()):
        return (
            "its libraries are not installed (pystan and cmdstanpy both missing): "
            f"run {INSTALL_EXTRA}"
        )
    return ""


class StanBackend:
    """Hierarchical regression in Stan; the marginal method samples only the hyperparameters."""

    name = "stan"
    description = "Stan (pystan 3 offline, or cmdstanpy when CmdStan is installed)"
    methods = ("marginal", "full")

    def available(self) -> Availability:
        """Whether pystan or cmdstanpy can run, with one line per engine and auto's pick."""
        reason = missing_extra()  # checked without importing anything: listing stays fast
        if reason:
            return Availability(False, reason)
        return engines.availability()

    def validate_options(self, options):
        return _validate_options(options)

    def fit(self, problem, settings, options):
        """Sample the problem and return the common posterior (natural scale)."""
        from . import program  # here: listing and validating need no Stan program

        options = _validate_options(options)
        require_method(self, problem.method)
        engine = engines.resolve_engine(options)
        code = program.program_for(problem)
        data = program.data_for(problem)
        attrs = {
            "backend": self.name,
            "engine": engine,
            **problem.fit_attrs(settings),
            "program_sha256": program.digest(code),
        }
        if engine == "pystan":
            from . import engine_pystan as runner
        else:
            from . import engine_cmdstanpy as runner
        return runner.run(problem, settings, options, code, data, attrs)
