"""The Stan backend plugin: registers `stan` with the framework through the entry-point group."""

from framework import hookimpl

from .backend import StanBackend

__all__ = ["StanBackend", "framework_register_backends"]


@hookimpl
def framework_register_backends(register):
    """Register the Stan backend."""
    register.add_backend(StanBackend())
