"""framework: Bayesian hierarchical (mixed) regression from one YAML spec, on any backend."""

__version__ = "0.1.0"  # before the imports: runner records it

from .cache import cache_dir
from .compare import compare
from .data import Dataset, load_dataset, read_table
from .diagnostics import diagnose
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
from .forecasts import forecast_table
from .group_effects import draw_group_effects, marginal_loglik
from .hookspecs import hookimpl
from .outputs import load_posterior
from .plugins import get_registry, register_plugin, unregister_plugin
from .posterior import GROUP_PARAMETERS, build_posterior, check_posterior
from .priors import DEFAULT_PRIORS, FAMILIES, HYPERPARAMETERS, Prior, parse_prior
from .problem import Problem, SamplerSettings
from .registry import Availability, Backend, BackendRegistry
from .runner import RunResult, run
from .spec import Spec, load_spec
from .stats import GroupStats, reduce_chunks

__all__ = [
    "DEFAULT_PRIORS",
    "FAMILIES",
    "GROUP_PARAMETERS",
    "HYPERPARAMETERS",
    "Availability",
    "Backend",
    "BackendError",
    "BackendRegistry",
    "CompileError",
    "DataError",
    "Dataset",
    "DiagnosticsFailed",
    "FrameworkError",
    "GroupStats",
    "Interrupted",
    "OptionsError",
    "PosteriorContractError",
    "Prior",
    "Problem",
    "RunDirectoryError",
    "SamplerSettings",
    "SamplingError",
    "Spec",
    "SpecError",
    "RunResult",
    "UserError",
    "build_posterior",
    "cache_dir",
    "check_posterior",
    "compare",
    "diagnose",
    "forecast_table",
    "load_posterior",
    "run",
    "draw_group_effects",
    "get_registry",
    "hookimpl",
    "load_dataset",
    "load_spec",
    "marginal_loglik",
    "parse_prior",
    "read_table",
    "reduce_chunks",
    "register_plugin",
    "unregister_plugin",
]
