"""Loading plugins: built-ins and third-party ones alike come from the `framework` entry points.

A plugin that fails to import or to register is recorded with its reason and
never breaks the CLI. `FRAMEWORK_LOAD_PLUGINS` (comma-separated entry-point
names, or DISTRIBUTION:NAME when two distributions use one name) restricts
which plugins load; set it empty to load none.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import pluggy

from ..errors import BackendError
from . import hookspecs
from .plugin_calls import REPORT, UNKNOWN, PluginInfo, plugin_call
from .registry import BackendRegistry, BrokenPlugin

ENTRY_POINT_GROUP = "framework"

pm = pluggy.PluginManager("framework")
pm.add_hookspecs(hookspecs)

_loaded = False
_registry: BackendRegistry | None = None
_load_failures: list[BrokenPlugin] = []
_plugins: dict[str, PluginInfo] = {}  # pluggy name -> where the entry point came from


def load_plugins() -> None:
    """Import every entry point of the group once, recording failures."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    allowed = os.environ.get("FRAMEWORK_LOAD_PLUGINS")
    allow = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        info = _info(ep)
        if allow is not None and not {ep.name, f"{info.distribution}:{ep.name}"} & allow:
            continue
        if info in _plugins.values():  # the same distribution seen twice on sys.path
            continue
        # Two distributions may use one entry-point name: both load (and any backend
        # name both claim is then refused), rather than whichever comes first on sys.path.
        name = ep.name if pm.get_plugin(ep.name) is None else f"{info.distribution}:{ep.name}"
        try:
            with plugin_call(info, f"import of {ep.value}"):
                module = ep.load()
            with plugin_call(info, "registration with pluggy"):
                pm.register(module, name=name)
            _plugins[name] = info
        except BackendError as exc:  # a broken plugin must not break the CLI
            _load_failures.append(BrokenPlugin(ep.name, _reason(exc)))


def get_registry(refresh: bool = False) -> BackendRegistry:
    """The registry of every backend the loaded plugins register."""
    global _registry
    if _registry is not None and not refresh:
        return _registry
    load_plugins()
    registry = BackendRegistry()
    registry.broken.extend(_load_failures)
    for impl in pm.hook.framework_register_backends.get_hookimpls():
        info = _plugins.get(impl.plugin_name) or PluginInfo(impl.plugin_name)
        registry.current_plugin = info
        try:
            with plugin_call(info, "framework_register_backends()"):
                impl.function(register=registry)
        except BackendError as exc:
            registry.drop_plugin(info)  # what it registered before failing goes too
            registry.broken.append(BrokenPlugin(impl.plugin_name, _reason(exc)))
    registry.current_plugin = UNKNOWN
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


def _info(ep) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return PluginInfo(ep.name)
    return PluginInfo(ep.name, dist.metadata["Name"] or dist.name, dist.version)


def _reason(exc: BackendError) -> str:
    # plugin_call's message minus its advice: `framework backends` adds its own.
    return str(exc).split("; " + REPORT)[0]
