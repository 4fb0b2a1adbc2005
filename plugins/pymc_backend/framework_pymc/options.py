"""The PyMC backend's options (`backend.options` in the spec): check them, fill in defaults.

- sampler: pymc, nutpie, numpyro or blackjax. Default nutpie when installed (Rust
  NUTS on a Numba-compiled log density, the fastest here for both methods once
  compiled), otherwise pymc.
- progressbar: true or false (default false: the framework prints its own coarse
  progress lines; the samplers' bars are opt-in).
- cores: how many chains may run at once (default: the number of CPUs; never more
  than the number of chains).
"""

from __future__ import annotations

import difflib
import os
from importlib.util import find_spec
from typing import Any

from framework import OptionsError, unknown_options

SAMPLERS = ("pymc", "nutpie", "numpyro", "blackjax")
# What each sampler needs besides PyMC, and how to get it.
REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "pymc": ((), ""),
    "nutpie": (("nutpie", "numba"), "pip install nutpie"),
    "numpyro": (("numpyro", "jax"), "pip install numpyro jax"),
    "blackjax": (("blackjax", "jax"), "pip install blackjax"),
}
KNOWN = ("sampler", "progressbar", "cores")


def sampler_status(sampler: str) -> tuple[bool, str]:
    """Whether `sampler` can run here and, if not, what to install (without importing it)."""
    modules, install = REQUIREMENTS[sampler]
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        return False, f"{', '.join(missing)} not installed; run '{install}'"
    return True, ""


def default_sampler() -> str:
    return "nutpie" if sampler_status("nutpie")[0] else "pymc"


def defaults() -> dict[str, Any]:
    return {"sampler": default_sampler(), "progressbar": False, "cores": os.cpu_count() or 1}


def validate_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The options with defaults filled in; OptionsError listing every problem otherwise."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise OptionsError(
            "backend.options: expected a mapping such as {sampler: nutpie}, "
            f"got {type(options).__name__}; write the options as key: value lines"
        )
    problems = unknown_options("pymc", options, KNOWN)
    merged = {**defaults(), **{k: v for k, v in options.items() if k in KNOWN}}
    problems += _sampler(merged["sampler"])
    if not isinstance(merged["progressbar"], bool):
        problems.append(
            f"backend.options.progressbar: expected true or false, got {merged['progressbar']!r}; "
            "write progressbar: true to show the sampler's progress bars"
        )
    cores = merged["cores"]
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        problems.append(
            f"backend.options.cores: expected a whole number >= 1, got {cores!r}; "
            "give how many chains may run at once, e.g. cores: 2"
        )
    if problems:
        raise OptionsError(problems)
    return merged


def _sampler(value) -> list[str]:
    if not isinstance(value, str) or value not in SAMPLERS:
        close = difflib.get_close_matches(str(value), SAMPLERS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return [
            f"backend.options.sampler: expected one of {', '.join(SAMPLERS)}, got {value!r}{hint}"
        ]
    ok, reason = sampler_status(value)
    if not ok:
        return [
            f"backend.options.sampler: '{value}' cannot run here: {reason}, "
            f"or choose another sampler ({', '.join(s for s in SAMPLERS if sampler_status(s)[0])})"
        ]
    return []
