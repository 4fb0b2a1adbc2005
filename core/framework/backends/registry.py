"""Backends: the interface a backend implements, and the registry keyed by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import BackendError


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
    """Backends by name; refuses duplicates and objects that are not backends."""

    def __init__(self):
        self._backends: dict[str, Backend] = {}
        self._origin: dict[str, str] = {}
        self.broken: list[BrokenPlugin] = []
        self.current_plugin = "?"

    def add_backend(self, backend: Backend) -> None:
        missing = [
            a
            for a in ("name", "description", "methods", "available", "validate_options", "fit")
            if not hasattr(backend, a)
        ]
        if missing:
            raise TypeError(f"{backend!r} is not a backend: it lacks {', '.join(missing)}")
        if not isinstance(backend.name, str) or not backend.name:
            raise TypeError("a backend's name must be a non-empty string")
        methods = backend.methods
        if isinstance(methods, str) or not set(methods) or not set(methods) <= {"marginal", "full"}:
            raise TypeError(
                f"backend '{backend.name}': methods must be a tuple drawn from ('marginal', 'full'), got {methods!r}"
            )
        if backend.name in self._backends:
            raise ValueError(
                f"backend name '{backend.name}' is already registered by plugin '{self._origin[backend.name]}'"
            )
        self._backends[backend.name] = backend
        self._origin[backend.name] = self.current_plugin

    def names(self) -> list[str]:
        return sorted(self._backends)

    def origin(self, name: str) -> str:
        return self._origin[name]

    def __contains__(self, name: str) -> bool:
        return name in self._backends

    def get(self, name: str) -> Backend:
        """The backend called `name`; BackendError listing the known ones otherwise."""
        if name in self._backends:
            return self._backends[name]
        close = difflib.get_close_matches(name, self._backends, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = ", ".join(self.names()) or "none"
        broken = "".join(f"\n  plugin '{b.name}' failed to load: {b.reason}" for b in self.broken)
        raise BackendError(
            f"backend.name: unknown backend '{name}'.{hint} Installed backends: {known}. "
            f"Run 'framework backends' to see them, or pip install the plugin that provides it.{broken}"
        )

    def require_available(self, name: str) -> Backend:
        backend = self.get(name)
        status = backend.available()
        if not status:
            raise BackendError(f"backend '{name}' is not available here: {status.reason}")
        return backend
