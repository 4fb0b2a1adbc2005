"""Calling into plugins: the one place where whatever a plugin raises becomes a BackendError naming it.

A plugin is someone else's code: it may raise anything, call `sys.exit`, or return
the wrong thing. Every call the core makes into one (importing its entry point, its
register hook, a backend's `available`, `validate_options` and `fit`) goes through
`plugin_call`, so a fault ends as one line naming the backend, the plugin's
distribution and version, and the call, with exit status 2. A `FrameworkError` a
plugin raises on purpose (OptionsError, SamplingError, ...) and Ctrl-C pass through.
"""

from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError, FrameworkError

REPORT = (
    "this is a bug in the plugin: report it to its authors (rerun with --debug for the "
    "traceback) or use another backend"
)


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from: its entry-point (or registration) name and its distribution."""

    name: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.distribution is None:
            return f"plugin '{self.name}' (registered in this process)"
        return f"plugin {self.distribution} {self.version} (entry point '{self.name}')"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version}


UNKNOWN = PluginInfo("?")


def fault(exc: BaseException) -> str:
    """What went wrong, in a few words: 'called sys.exit(0)' or 'raised KeyError: x (at f.py:3)'."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = str(exc).strip().splitlines()
    message = f": {text[0][:300]}" if text else ""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"raised {type(exc).__name__}{message}{where}"


@contextlib.contextmanager
def plugin_call(plugin: PluginInfo, call: str, backend: str | None = None):
    """Run a call into `plugin`; anything it raises but Ctrl-C and our own errors is a BackendError."""
    try:
        yield
    except (KeyboardInterrupt, FrameworkError):
        raise
    except BaseException as exc:  # SystemExit and friends too: a plugin must not end the run
        who = f"backend '{backend}'" if backend else str(plugin)
        via = f" ({plugin})" if backend else ""
        raise BackendError(f"{who} crashed in {call}: it {fault(exc)}{via}; {REPORT}") from exc


class PluginBackend:
    """A registered backend seen through its plugin: every call guarded and its result checked.

    Other attributes are the plugin's own, so engine-specific ones stay reachable.
    """

    def __init__(self, backend, plugin: PluginInfo, name: str, description: str, methods):
        self.backend = backend
        self.plugin = plugin
        self.name = name
        self.description = description
        self.methods = tuple(methods)

    def __getattr__(self, attr):
        if attr == "backend":  # not set yet (copy, pickle): no endless recursion
            raise AttributeError(attr)
        return getattr(self.backend, attr)

    def __repr__(self) -> str:
        return f"<backend '{self.name}' from {self.plugin}>"

    def available(self):
        from .registry import Availability

        with plugin_call(self.plugin, "available()", self.name):
            status = self.backend.available()
        if not isinstance(status, Availability):
            raise self._lied("available()", f"{type(status).__name__}, not framework.Availability")
        return status

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        with plugin_call(self.plugin, "validate_options()", self.name):
            checked = self.backend.validate_options(options)
        if not isinstance(checked, dict):
            raise self._lied("validate_options()", f"{type(checked).__name__}, not a dict")
        return checked

    def fit(self, problem, settings, options):
        with plugin_call(self.plugin, "fit()", self.name):
            return self.backend.fit(problem, settings, options)

    def _lied(self, call: str, returned: str) -> BackendError:
        return BackendError(
            f"backend '{self.name}' broke the plugin contract in {call}: it returned {returned} "
            f"({self.plugin}); "
            f"{REPORT}"
        )
