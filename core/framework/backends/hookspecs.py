"""The hooks a framework plugin can implement."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("framework")
hookimpl = pluggy.HookimplMarker("framework")


@hookspec
def framework_register_backends(register):
    """Register backends by calling `register.add_backend(backend)` once per backend.

    The hook runs again whenever the registry is rebuilt (e.g. a plugin is
    registered at run time), so keep caches at module level, not on the backend.
    If it raises anything (SystemExit too), the plugin is listed as broken and
    none of its backends are registered (plugin_calls maps the fault).
    """
