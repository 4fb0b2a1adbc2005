"""Which Stan engine can run here: pystan (offline, compiles through httpstan) or cmdstanpy."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

from framework import BackendError

INSTALL_PYSTAN = "pip install pystan"
INSTALL_CMDSTAN = "run `python -m cmdstanpy.install_cmdstan`"


def import_pystan():
    """The `stan` module (pystan 3), importing it quietly."""
    with warnings.catch_warnings():
        # pystan 3.10 imports pkg_resources, which warns about its own deprecation.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import stan
    return stan


def pystan_status() -> tuple[bool, str]:
    """(usable, reason) for pystan."""
    try:
        import_pystan()
    except Exception as exc:  # any import failure means the engine cannot run
        return False, f"pystan not importable ({type(exc).__name__}: {exc}): {INSTALL_PYSTAN}"
    return True, ""


def cmdstan_status(path: str | None = None) -> tuple[bool, str]:
    """(usable, reason) for cmdstanpy with a CmdStan installation (at `path` if given)."""
    try:
        import cmdstanpy
        from cmdstanpy.utils import validate_cmdstan_path
    except Exception as exc:
        return (
            False,
            f"cmdstanpy not importable ({type(exc).__name__}: {exc}): pip install cmdstanpy",
        )
    try:
        if path is None:
            cmdstanpy.cmdstan_path()
        else:
            validate_cmdstan_path(path)
    except ValueError as exc:
        where = f" at '{path}'" if path else ""
        return False, f"CmdStan not found{where} ({exc}): {INSTALL_CMDSTAN}, or use engine: pystan"
    return True, ""


def resolve_engine(options: dict) -> str:
    """The engine to use for validated options; BackendError with the next step if it cannot run."""
    engine, path = options["engine"], options.get("cmdstan_path")
    if engine == "auto":
        if cmdstan_status(path)[0]:
            return "cmdstanpy"
        ok, reason = pystan_status()
        if ok:
            return "pystan"
        raise BackendError(
            f"backend 'stan' cannot run: {reason}; or install CmdStan: {INSTALL_CMDSTAN}"
        )
    status = cmdstan_status(path) if engine == "cmdstanpy" else pystan_status()
    if not status[0]:
        raise BackendError(f"backend 'stan' (engine: {engine}) cannot run: {status[1]}")
    return engine


@contextmanager
def cmdstan_at(path: str | None):
    """Point cmdstanpy at `path` for the duration (it reads the CMDSTAN variable)."""
    if path is None:
        yield
        return
    before = os.environ.get("CMDSTAN")
    os.environ["CMDSTAN"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CMDSTAN", None)
        else:
            os.environ["CMDSTAN"] = before
