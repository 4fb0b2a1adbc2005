"""Loading plugins: built-ins and third-party ones alike come from the `framework` entry points.

A plugin that fails to import or to register is recorded with its reason and
never breaks the CLI. `FRAMEWORK_LOAD_PLUGINS` (comma-separated entry-point
names) restricts which plugins load; set it empty to load none.
"""

from __future__ import annotations

import os
import traceback
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .registry import BackendRegistry, BrokenPlugin

ENTRY_POINT_GROUP = "framework"

pm = pluggy.PluginManager("framework")
pm.add_hookspecs(hookspecs)

_loaded = False
_registry: BackendRegistry | None = None
_load_failures: list[BrokenPlugin] = []


def load_plugins() -> None:
    """Import every entry point of the group once, recording failures."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    allowed = os.environ.get("FRAMEWORK_LOAD_PLUGINS")
    allow = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allow is not None and ep.name not in allow:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not break the CLI
            _load_failures.append(BrokenPlugin(ep.name, _describe(exc)))


def get_registry(refresh: bool = False) -> BackendRegistry:
    """The registry of every backend the loaded plugins register."""
    global _registry
    if _registry is not None and not refresh:
        return _registry
    load_plugins()
    registry = BackendRegistry()
    registry.broken.extend(_load_failures)
    for impl in pm.hook.framework_register_backends.get_hookimpls():
        registry.current_plugin = impl.plugin_name
        try:
            impl.function(register=registry)
        except Exception as exc:
            registry.broken.append(BrokenPlugin(impl.plugin_name, _describe(exc)))
    registry.current_plugin = "?"
    _registry = registry
    return registry


def register_plugin(module, name: str | None = None) -> None:
    """Register a plugin object directly (tests, notebooks); the registry is rebuilt."""
    pm.register(module, name=name)
    get_registry(refresh=True)


def unregister_plugin(name: str) -> None:
    pm.unregister(name=name)
    get_registry(refresh=True)


def get_plugins() -> list[dict]:
    """Each loaded plugin with the hooks it implements (like datasette's get_plugins)."""
    load_plugins()
    out = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = [h.name for h in pm.get_hookcallers(plugin) or []]
        out.append({"name": name, "hooks": sorted(hooks)})
    return sorted(out, key=lambda p: p["name"])


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"
