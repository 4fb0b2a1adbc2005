"""Which Stan engine can run here: pystan (offline, compiles through httpstan) or cmdstanpy.

Listing backends and `framework validate` ask whether an engine is installed
(find_spec, package metadata: milliseconds); a run imports the engine it picks,
so one whose installation is broken is reported then, with the import's error.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec

from framework import Availability, BackendError

INSTALL_PYSTAN = "pip install pystan"
INSTALL_CMDSTAN = "`python -m cmdstanpy.install_cmdstan`"
OPTION = "backend.options.cmdstan_path"


def import_pystan():
    """The `stan` module (pystan 3), importing it quietly."""
    with warnings.catch_warnings():
        # pystan 3.10 imports pkg_resources, which warns about its own deprecation.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import stan
    return stan


def pystan_status(imports: bool = True) -> tuple[bool, str]:
    """(usable, reason) for pystan; imports=False only asks whether it is installed."""
    missing = [m for m in ("stan", "httpstan") if find_spec(m) is None]
    if missing:
        return False, f"pystan not installed (no module {missing[0]!r}): {INSTALL_PYSTAN}"
    if not imports:
        return True, ""
    try:
        import_pystan()
    except Exception as exc:  # any import failure means the engine cannot run
        return False, f"pystan not importable ({type(exc).__name__}: {exc}): {INSTALL_PYSTAN}"
    return True, ""


@dataclass(frozen=True)
class CmdStan:
    """The CmdStan installation cmdstanpy would use: where it was looked for, what was found."""

    path: str | None  # the folder; None when nothing names one
    source: str  # OPTION, "CMDSTAN" (the environment variable) or "~/.cmdstan"
    version: str = ""
    problem: str = ""  # why it cannot be used, naming the variable or option and its value
    advice: str = ""  # what to do about it

    def __bool__(self) -> bool:
        return not self.problem

    @property
    def reason(self) -> str:
        return f"{self.problem}; {self.advice}" if self.problem else ""

    def identity(self) -> dict[str, str]:
        """What a compiled model depends on: version, real path, and when its stanc was built."""
        # Executables link this CmdStan's TBB by absolute path, so a moved, replaced or rebuilt
        # installation (new bin/stanc) must not reuse them.
        stanc = os.path.join(self.path, "bin", "stanc")
        return {
            "cmdstan_version": self.version,
            "cmdstan_path": os.path.realpath(self.path),
            "stanc_mtime_ns": str(os.stat(stanc).st_mtime_ns),
        }


def locate_cmdstan(path: str | None = None) -> CmdStan:
    """The installation at `path`, else at $CMDSTAN, else the newest in ~/.cmdstan (cmdstanpy's order)."""
    if path:
        source, folder = OPTION, path
    elif os.environ.get("CMDSTAN"):
        source, folder = "CMDSTAN", os.environ["CMDSTAN"]
    else:
        home = os.path.expanduser(os.path.join("~", ".cmdstan"))
        names = sorted(n for n in _listdir(home) if n.startswith("cmdstan-"))
        if not names:
            return CmdStan(
                None,
                "~/.cmdstan",
                problem="CmdStan not found: the CMDSTAN environment variable is not set and "
                "~/.cmdstan holds no installation",
                advice=f"install one with {INSTALL_CMDSTAN}, or set CMDSTAN to its folder",
            )
        latest = names[0]
        if len(names) > 1:  # cmdstanpy's pick among several (importing it takes a second)
            from cmdstanpy.utils import get_latest_cmdstan

            latest = get_latest_cmdstan(home) or names[-1]
        source, folder = "~/.cmdstan", os.path.join(home, latest)
    version, problem = _inspect(folder)
    if not problem:
        return CmdStan(folder, source, version)
    if source == "CMDSTAN":
        problem = f"the CMDSTAN environment variable is '{folder}', which {problem}"
        # install_cmdstan would not help: CMDSTAN wins over ~/.cmdstan
        advice = (
            "point CMDSTAN at a built CmdStan folder (e.g. ~/.cmdstan/cmdstan-2.35.0) or unset it"
        )
    elif source == OPTION:
        problem = f"{OPTION} is '{folder}', which {problem}"
        advice = f"give the folder of a built CmdStan, or install one with {INSTALL_CMDSTAN}"
    else:
        problem = f"CmdStan in '{folder}' {problem}"
        advice = f"reinstall it with {INSTALL_CMDSTAN} --overwrite"
    return CmdStan(folder, source, version, problem, advice)


def _listdir(folder: str) -> list[str]:
    try:
        return [n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n))]
    except OSError:
        return []


def _inspect(folder: str) -> tuple[str, str]:
    """(version, problem) of a would-be CmdStan folder; problem is empty when it is usable."""
    if not os.path.isdir(folder):
        return "", "is not a folder"
    makefile = os.path.join(folder, "makefile")
    try:
        with open(makefile, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return "", "has no makefile (not a CmdStan folder)"
    match = re.search(r"^CMDSTAN_VERSION := (\S+)", text, re.M)
    if not match:
        return "", "has a makefile that names no CMDSTAN_VERSION (not a CmdStan folder)"
    if not os.access(os.path.join(folder, "bin", "stanc"), os.X_OK):
        return match.group(1), "has no bin/stanc (CmdStan is not built: run `make build` in it)"
    return match.group(1), ""


def cmdstan_status(path: str | None = None, imports: bool = True) -> tuple[bool, str]:
    """(usable, reason) for cmdstanpy with a CmdStan (at `path` if given); imports=False: installed."""
    # cmdstanpy takes a while to import: only when a CmdStan is there for it to use.
    if find_spec("cmdstanpy") is None:
        return False, "cmdstanpy not installed: pip install cmdstanpy"
    found = locate_cmdstan(path)
    if not found:
        return False, found.reason
    if not imports:
        return True, ""
    try:
        import cmdstanpy  # noqa: F401
    except Exception as exc:
        return (
            False,
            f"cmdstanpy not importable ({type(exc).__name__}: {exc}): pip install cmdstanpy",
        )
    return True, ""


def choose(options: dict, imports: bool = True) -> tuple[str | None, str]:
    """(engine, note) for validated options: engine None when it cannot run, note says why.

    imports=False asks only whether the engines are installed (nothing is imported).
    """
    engine, path = options["engine"], options.get("cmdstan_path")
    cmdstan_ok, cmdstan_reason = (
        cmdstan_status(path, imports) if engine != "pystan" else (False, "")
    )
    if engine == "cmdstanpy" or (engine == "auto" and cmdstan_ok):
        return ("cmdstanpy", "") if cmdstan_ok else (None, cmdstan_reason)
    pystan_ok, pystan_reason = pystan_status(imports)
    if engine == "pystan":
        return ("pystan", "") if pystan_ok else (None, pystan_reason)
    if pystan_ok:
        return "pystan", f"engine auto: using pystan, since cmdstanpy cannot run: {cmdstan_reason}"
    return None, f"{pystan_reason}; or for cmdstanpy: {cmdstan_reason}"


def resolve_engine(options: dict) -> str:
    """The engine to use for validated options; BackendError with the next step if it cannot run."""
    engine, note = choose(options)
    if engine is None:
        which = "" if options["engine"] == "auto" else f" (engine: {options['engine']})"
        raise BackendError(f"backend 'stan'{which} cannot run: {note}")
    return engine


def option_problems(options: dict) -> list[str]:
    """The `backend.options.engine` problem when the engine the options name is not installed."""
    if options["engine"] == "auto":
        return []  # the backend's availability covers "neither engine"
    engine, note = choose(options, imports=False)  # the run imports it, and says if that fails
    if engine is not None:
        return []
    other = "pystan" if options["engine"] == "cmdstanpy" else "cmdstanpy (with CmdStan)"
    return [
        f"backend.options.engine: {options['engine']} cannot run here: {note}; "
        f"or use engine: {other} or auto"
    ]


def availability() -> Availability:
    """Whether either engine is installed, with one line per engine and the one `auto` picks."""
    pystan_ok, pystan_reason = pystan_status(imports=False)
    cmdstan = locate_cmdstan()
    cmdstan_ok, cmdstan_reason = cmdstan_status(imports=False)
    lines = [
        _pystan_line(pystan_ok, pystan_reason),
        _cmdstan_line(cmdstan, cmdstan_ok, cmdstan_reason),
    ]
    auto = "cmdstanpy" if cmdstan_ok else "pystan" if pystan_ok else None
    lines.append(f"engine auto picks: {auto or 'none (neither engine can run)'}")
    if auto:
        return Availability(True, "", details=tuple(lines))
    return Availability(False, f"{pystan_reason}; or {cmdstan_reason}", details=tuple(lines))


def _pystan_line(ok: bool, reason: str) -> str:
    if not ok:
        return f"pystan: not usable: {reason}"
    where = os.path.dirname(os.path.dirname(find_spec("stan").origin))
    return (
        f"pystan: found, pystan {_version('pystan')} / httpstan {_version('httpstan')} in {where}"
    )


def _cmdstan_line(cmdstan: CmdStan, ok: bool, reason: str) -> str:
    if not ok:
        return f"cmdstanpy: not usable: {reason}"
    return (
        f"cmdstanpy: found, CmdStan {cmdstan.version} at {cmdstan.path} (from {cmdstan.source}), "
        f"cmdstanpy {_version('cmdstanpy')}"
    )


def _version(distribution: str) -> str:
    """An installed distribution's version, read from its metadata (not by importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:  # importable but not installed as a distribution
        return "(version unknown)"


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


# Stan's non-fatal messages: a rejected proposal during (mostly early) warmup, e.g. a scale of 0.
_INFORMATIONAL = "Informational Message:"
_EXCEPTION = re.compile(r"Exception:\s*(.*?)(?:\s*\(in '[^']*'.*\))?\s*$")


def stan_messages(text: str) -> tuple[int, str]:
    """(count, first message) of Stan's "Informational Message" warnings in console text."""
    count, first = 0, ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _INFORMATIONAL not in line:
            continue
        count += 1
        if not first:
            for following in lines[i + 1 : i + 4]:
                match = _EXCEPTION.search(following)
                if match:
                    first = match.group(1)
                    break
    return count, first


def warnings_summary(count: int, first: str) -> str:
    """The one progress line for Stan's non-fatal warnings."""
    example = f" (first: {first})" if first else ""
    return (
        f"Stan rejected {count} proposal(s) with a non-fatal warning{example}; usual early in "
        "warmup, a concern only if divergences or R-hat also flag the fit"
    )
