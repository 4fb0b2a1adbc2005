"""The hooks a framework plugin can implement."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("framework")
hookimpl = pluggy.HookimplMarker("framework")


@hookspec
def framework_register_backends(register):
    """Register backends by calling `register.add_backend(backend)` once per backend."""
