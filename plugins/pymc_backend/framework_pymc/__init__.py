"""The PyMC backend plugin: registers `pymc` with the framework through the entry-point group.

PyMC and the samplers are imported only when a model is fitted, so
listing backends stays fast.
"""

from framework import hookimpl

from .backend import PyMCBackend

__all__ = ["PyMCBackend", "framework_register_backends"]


@hookimpl
def framework_register_backends(register):
    """Register the PyMC backend."""
    register.add_backend(PyMCBackend())
