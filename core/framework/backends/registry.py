"""Backends: the interface a backend implements, and the registry keyed by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import BackendError
from .plugin_calls import UNKNOWN, PluginBackend, PluginInfo


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here and, if not, what to do about it."""

    ok: bool
    reason: str = ""
    # Optional lines for `framework backends`, e.g. one per engine: found or not, where, version.
    details: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok


@runtime_checkable
class Backend(Protocol):
    """What a backend plugin registers.

    `methods` lists "marginal" and/or "full" (see `framework.Problem`).
    `validate_options` returns the options with defaults filled in, or raises
    `framework.OptionsError` listing every problem. `fit` returns the common
    posterior (`framework.build_posterior` builds it) on the natural scale.
    """

    name: str
    description: str
    methods: tuple[str, ...]

    def available(self) -> Availability: ...

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]: ...

    def fit(self, problem, settings, options: dict[str, Any]): ...


def unknown_options(backend: str, options, known) -> list[str]:
    """One problem line per key of `options` not in `known`, with a did-you-mean, for OptionsError."""
    known = list(known)
    problems = []
    for key in options:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        problems.append(
            f"backend.options.{key}: unknown option for backend '{backend}'; {hint}known options: {', '.join(known)}"
        )
    return problems


def require_method(backend, method: str) -> None:
    """BackendError unless `method` is one of the backend's `methods` (for fits called directly)."""
    if method not in backend.methods:
        raise BackendError(
            f"backend '{backend.name}' has no method '{method}'; "
            f"use one of {', '.join(backend.methods)}"
        )


@dataclass
class BrokenPlugin:
    """A plugin that could not be loaded or registered, and why."""

    name: str
    reason: str


class BackendRegistry:
    """Backends by name, each behind its plugin's guard; refuses objects that are not backends.

    Two plugins claiming one name is a conflict: the name is refused when asked for,
    listing both distributions, so no plugin silently replaces another (e.g. `stan`).
    """

    def __init__(self):
        self._claims: dict[str, list[PluginBackend]] = {}
        self.broken: list[BrokenPlugin] = []
        self.current_plugin: PluginInfo | str = UNKNOWN

    def add_backend(self, backend: Backend) -> None:
        missing = [
            a
            for a in ("name", "description", "methods", "available", "validate_options", "fit")
            if not hasattr(backend, a)
        ]
        if missing:
            raise TypeError(f"{backend!r} is not a backend: it lacks {', '.join(missing)}")
        name = backend.name
        if not isinstance(name, str) or not name:
            raise TypeError("a backend's name must be a non-empty string")
        methods = backend.methods
        if isinstance(methods, str) or not set(methods) or not set(methods) <= {"marginal", "full"}:
            raise TypeError(
                f"backend '{name}': methods must be a tuple drawn from ('marginal', 'full'), got {methods!r}"
            )
        plugin = self.current_plugin
        if isinstance(plugin, str):
            plugin = PluginInfo(plugin)
        claims = self._claims.setdefault(name, [])
        if any(c.plugin == plugin for c in claims):
            raise ValueError(f"backend name '{name}' is already registered by {plugin}")
        claims.append(PluginBackend(backend, plugin, name, str(backend.description), methods))

    def drop_plugin(self, plugin: PluginInfo) -> None:
        """Forget every backend `plugin` registered (its register hook failed half way)."""
        for name in list(self._claims):
            self._claims[name] = [c for c in self._claims[name] if c.plugin != plugin]
            if not self._claims[name]:
                del self._claims[name]

    def names(self) -> list[str]:
        """Every usable backend name (not those two plugins claim)."""
        return sorted(n for n, c in self._claims.items() if len(c) == 1)

    def conflicts(self) -> dict[str, list[PluginInfo]]:
        """Each backend name more than one plugin registers, with those plugins."""
        return {n: [c.plugin for c in cs] for n, cs in sorted(self._claims.items()) if len(cs) > 1}

    def origin(self, name: str) -> str:
        return self.get(name).plugin.name

    def __contains__(self, name: str) -> bool:
        return name in self._claims

    def get(self, name: str) -> PluginBackend:
        """The backend called `name`; BackendError listing the known ones otherwise."""
        claims = self._claims.get(name, [])
        if len(claims) == 1:
            return claims[0]
        if claims:
            plugins = " and ".join(str(c.plugin) for c in claims)
            raise BackendError(
                f"backend.name: backend '{name}' is registered by more than one plugin ({plugins}) "
                "and framework will not pick one silently; uninstall the one you do not want "
                "(pip uninstall DISTRIBUTION) or leave its entry point out of "
                "FRAMEWORK_LOAD_PLUGINS"
            )
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = ", ".join(self.names()) or "none"
        broken = "".join(f"\n  plugin '{b.name}' failed to load: {b.reason}" for b in self.broken)
        raise BackendError(
            f"backend.name: unknown backend '{name}'.{hint} Installed backends: {known}. "
            f"Run 'framework backends' to see them, or pip install the plugin that provides it.{broken}"
        )

    def require_available(self, name: str) -> PluginBackend:
        backend = self.get(name)
        status = backend.available()
        if not status:
            raise BackendError(f"backend '{name}' is not available here: {status.reason}")
        return backend
