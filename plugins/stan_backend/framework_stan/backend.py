"""The Stan backend: Stan programs generated from templates, run by pystan or cmdstanpy."""

from __future__ import annotations

from framework import Availability, require_method

from . import engines, program
from .options import validate_options as _validate_options


class StanBackend:
    """Hierarchical regression in Stan; the marginal method samples only the hyperparameters."""

    name = "stan"
    description = "Stan (pystan 3 offline, or cmdstanpy when CmdStan is installed)"
    methods = ("marginal", "full")

    def available(self) -> Availability:
        """Whether pystan or cmdstanpy can run, with one line per engine and auto's pick."""
        return engines.availability()

    def validate_options(self, options):
        return _validate_options(options)

    def fit(self, problem, settings, options):
        """Sample the problem and return the common posterior (natural scale)."""
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
