"""Testing helpers for backend authors: synthetic data with known truth and the conformance suite.

`framework.testing.conformance` (the `BackendConformance` base class) needs
pytest; it is imported on first use so that the synthetic data work without it.
"""

from .synthetic import CASES, simulated_problem

_CONFORMANCE = ("BackendConformance", "SUITE_SETTINGS", "fit_backend", "suite_problem")


def __getattr__(name):
    if name in _CONFORMANCE:
        from . import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'framework.testing' has no attribute {name!r}")


__all__ = ["CASES", "simulated_problem", *_CONFORMANCE]
