"""The Stan backend's options (`backend.options` in the spec): check them, fill in defaults."""

from __future__ import annotations

import difflib
import os
from typing import Any

from framework import OptionsError

from .engines import option_problems

ENGINES = ("auto", "cmdstanpy", "pystan")
DEFAULTS: dict[str, Any] = {
    # auto: cmdstanpy where a CmdStan installation exists, pystan otherwise.
    "engine": "auto",
    # The framework prints its own progress lines; the engines' progress bars are opt-in.
    "show_progress": False,
    "cmdstan_path": None,
}


def validate_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The options with defaults filled in; OptionsError listing every problem otherwise."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise OptionsError(
            f"backend.options: expected a mapping such as {{engine: pystan}}, got {type(options).__name__}"
        )
    problems = [_unknown(key) for key in options if key not in DEFAULTS]
    merged = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
    problems += _engine(merged["engine"])
    if not isinstance(merged["show_progress"], bool):
        problems.append(
            f"backend.options.show_progress: expected true or false, got {merged['show_progress']!r}"
        )
    problems += _cmdstan_path(merged["cmdstan_path"])
    if problems:
        raise OptionsError(problems)
    if merged["cmdstan_path"] is not None:
        merged["cmdstan_path"] = os.path.abspath(os.path.expanduser(merged["cmdstan_path"]))
    # An engine named explicitly must run here, so `framework validate` catches it before a run.
    problems = option_problems(merged)
    if problems:
        raise OptionsError(problems)
    return merged


def _unknown(key) -> str:
    close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (
        f"backend.options.{key}: unknown option for backend 'stan'; {hint}"
        f"known options: {', '.join(DEFAULTS)}"
    )


def _engine(value) -> list[str]:
    if isinstance(value, str) and value in ENGINES:
        return []
    close = difflib.get_close_matches(str(value), ENGINES, n=1) if isinstance(value, str) else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return [f"backend.options.engine: expected one of {', '.join(ENGINES)}, got {value!r}{hint}"]


def _cmdstan_path(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str) or not value.strip():
        return [
            "backend.options.cmdstan_path: expected the folder of a CmdStan installation as text, "
            f"got {value!r}"
        ]
    if not os.path.isdir(os.path.expanduser(value)):
        return [
            f"backend.options.cmdstan_path: '{value}' is not a folder; give the folder of a CmdStan "
            "installation (e.g. ~/.cmdstan/cmdstan-2.36.0) or remove the option"
        ]
    return []
