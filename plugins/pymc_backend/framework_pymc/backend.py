"""The PyMC backend: the marginal and the full model written directly in PyMC."""

from __future__ import annotations

from importlib.util import find_spec

from framework.backends.registry import Availability, require_method
from framework.errors import BackendError

from .options import validate_options as _validate_options
from .priors import check_priors

PARAMETERISATIONS = ("centred", "non_centred")
INSTALL_EXTRA = "pip install 'framework[pymc]'"  # pymc and nutpie, the default sampler


class PyMCBackend:
    """Hierarchical regression in PyMC, sampled by nutpie, PyMC's NUTS or numpyro."""

    name = "pymc"
    description = "PyMC (NUTS by nutpie, PyMC or numpyro)"
    methods = ("marginal", "full")

    def available(self) -> Availability:
        """Whether PyMC is installed, checked without importing it (listing stays fast)."""
        missing = [m for m in ("pymc", "pytensor") if find_spec(m) is None]
        if missing:
            return Availability(
                False,
                f"its libraries are not installed ({' and '.join(missing)} missing): "
                f"run {INSTALL_EXTRA}",
            )
        return Availability(True)

    def validate_options(self, options):
        return _validate_options(options)

    def fit(self, problem, settings, options):
        """Sample the problem and return the common posterior (natural scale, dataset order)."""
        from framework.backends.posterior import complete_posterior  # xarray: only when fitting

        from . import engine  # here: listing and validating need none of it

        options = _validate_options(options)
        require_method(self, problem.method)
        if problem.method == "full" and problem.parameterisation not in PARAMETERISATIONS:
            raise BackendError(
                f"backend 'pymc': parameterisation '{problem.parameterisation}' is not one of "
                f"{', '.join(PARAMETERISATIONS)}; set model.parameterisation in the spec"
            )
        # Refused here, before anything is built or compiled.
        check_priors(problem.model.priors)
        if problem.method == "full":
            from . import full as method
        else:
            from . import marginal as method
        with engine.quiet(not options["progressbar"]):
            values, draws = method.fit(problem, settings, options)
        attrs = {
            "backend": self.name,
            "engine": options["sampler"],
            "library_versions": engine.library_versions(options["sampler"]),
            "sampling_seconds": draws.sampling_seconds,
            "compile_seconds": draws.compile_seconds,
            "compile_cached": draws.compile_cached,  # the compiled model came from the disk cache
            **problem.fit_attrs(settings),
        }
        stats = {"diverging": draws.diverging, **draws.sample_stats}
        return complete_posterior(problem, settings, values, stats, attrs)
