"""Testing helpers for backend authors: synthetic data with known truth and the conformance suite.

`framework.testing.conformance` (the `BackendConformance` base class) needs
pytest; it is imported on first use so that the synthetic data work without it.
"""

from .synthetic import DEFAULT_TRUTH, simulated_dataset

_CONFORMANCE = ("BackendConformance", "SUITE_SETTINGS", "fit_backend", "suite_dataset")


def __getattr__(name):
    if name in _CONFORMANCE:
        from . import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'framework.testing' has no attribute {name!r}")


__all__ = ["DEFAULT_TRUTH", "simulated_dataset", *_CONFORMANCE]
