"""framework: Bayesian hierarchical (mixed) regression from one YAML spec, on any backend.

The public API is listed in `_EXPORTS` and imported on first use (PEP 562), so
the command line starts in a fraction of a second instead of importing arviz,
scipy and pandas before it has read its arguments.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "cache": ["cache_dir"],
    "comparison": ["compare"],
    "data": ["Dataset", "load_dataset"],
    "diagnostics": ["diagnose"],
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
    "forecasts": ["forecast_table"],
    "group_effects": ["draw_group_effects", "marginal_loglik"],
    "hookspecs": ["hookimpl"],
    "outputs": ["load_posterior"],
    "plugins": ["get_registry", "register_plugin", "unregister_plugin"],
    "posterior": ["GROUP_PARAMETERS", "build_posterior", "check_posterior"],
    "priors": ["DEFAULT_PRIORS", "FAMILIES", "HYPERPARAMETERS", "Prior", "parse_prior"],
    "problem": ["Problem", "SamplerSettings"],
    "reading": ["read_table"],
    "registry": ["Availability", "Backend", "BackendRegistry", "require_method", "unknown_options"],
    "runner": ["RunResult", "run"],
    "spec": ["Spec", "load_spec"],
    "stats": ["DesignStats", "GroupStats", "design_stats", "reduce_chunks"],
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
