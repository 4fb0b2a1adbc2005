"""framework: Bayesian hierarchical (mixed) regression from one YAML spec, on any backend.

The public API is listed in `_EXPORTS` and imported on first use (PEP 562), so
the command line starts in a fraction of a second instead of importing scipy
and pandas before it has read its arguments.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports are the public API, listed in __all__)

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, imported eagerly, so type checkers see the public API
    from .backends.hookspecs import hookimpl
    from .backends.plugins import get_registry, register_plugin, unregister_plugin
    from .backends.posterior import build_posterior, check_posterior, complete_posterior
    from .backends.posterior_groups import Posterior
    from .backends.problem import Problem, SamplerSettings
    from .backends.registry import (
        Availability,
        Backend,
        BackendRegistry,
        require_method,
        unknown_options,
    )
    from .cache import cache_dir
    from .data.dataset import Dataset
    from .data.reading import read_table
    from .errors import (
        BackendError,
        CompileError,
        DataError,
        DiagnosticsFailed,
        FrameworkError,
        Interrupted,
        OptionsError,
        PosteriorContractError,
        RunDirectoryError,
        SamplingError,
        SpecError,
        UserError,
    )
    from .model.families import BUILTIN_FAMILIES, Family
    from .model.formula import Formula, FormulaError, parse_formula
    from .model.gaussian_marginal import (
        Designs,
        designs,
        designs_loglik,
        draw_coefficients,
        marginal_loglik,
    )
    from .model.model import GroupFactor, Model, ModelError, build_model
    from .model.prior_classes import LKJ
    from .model.priors import FAMILIES, Prior, parse_prior
    from .model.statistics import GroupStats, reduce_chunks
    from .model.terms import Column, Term
    from .progress import SamplingProgress
    from .results.comparison import compare
    from .results.diagnostics import diagnose
    from .results.forecasts import forecast_table
    from .results.run_reader import load_posterior
    from .runner import RunResult, run
    from .spec.load import Spec, load_spec

_EXPORTS = {
    "backends.hookspecs": ["hookimpl"],
    "backends.plugins": ["get_registry", "register_plugin", "unregister_plugin"],
    "backends.posterior": ["build_posterior", "check_posterior", "complete_posterior"],
    "backends.posterior_groups": ["Posterior"],
    "backends.problem": ["Problem", "SamplerSettings"],
    "backends.registry": [
        "Availability",
        "Backend",
        "BackendRegistry",
        "require_method",
        "unknown_options",
    ],
    "cache": ["cache_dir"],
    "data.dataset": ["Dataset"],
    "data.reading": ["read_table"],
    "errors": [
        "BackendError",
        "CompileError",
        "DataError",
        "DiagnosticsFailed",
        "FrameworkError",
        "Interrupted",
        "OptionsError",
        "PosteriorContractError",
        "RunDirectoryError",
        "SamplingError",
        "SpecError",
        "UserError",
    ],
    "model.families": ["BUILTIN_FAMILIES", "Family"],
    "model.formula": ["Formula", "FormulaError", "parse_formula"],
    "model.gaussian_marginal": [
        "Designs",
        "designs",
        "designs_loglik",
        "draw_coefficients",
        "marginal_loglik",
    ],
    "model.model": ["GroupFactor", "Model", "ModelError", "build_model"],
    "model.prior_classes": ["LKJ"],
    "model.priors": ["FAMILIES", "Prior", "parse_prior"],
    "model.statistics": ["GroupStats", "reduce_chunks"],
    "model.terms": ["Column", "Term"],
    "progress": ["SamplingProgress"],
    "results.comparison": ["compare"],
    "results.diagnostics": ["diagnose"],
    "results.forecasts": ["forecast_table"],
    "results.run_reader": ["load_posterior"],
    "runner": ["RunResult", "run"],
    "spec.load": ["Spec", "load_spec"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'framework' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
