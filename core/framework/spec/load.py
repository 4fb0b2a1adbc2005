"""Loading a spec: safe YAML, overrides, validation into the schema, every problem reported at once."""

from __future__ import annotations

import copy
import difflib
import errno
import os
from pathlib import Path
from typing import Any, get_origin

from pydantic import ValidationError

from ..errors import DataError, SpecError
from .messages import fields_at, format_errors, kind, unknown_key_text
from .schema import Spec
from .yaml_source import LineMap, load_scalar, load_yaml
from .yaml_source import where as _where


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    """Load, override (`key.path=value`) and validate a spec file; SpecError lists every problem."""
    path = Path(path)
    raw, lines = load_yaml(path)
    if raw is None:
        raise SpecError(f"{path}:1: the spec is empty; it needs at least name, data and model")
    if not isinstance(raw, dict):
        raise SpecError(
            f"{path}:1: the spec must be a mapping of keys (name, data, model, ...), "
            f"not {kind(raw)}; start the file with 'name: ...'"
        )
    raw = apply_overrides(copy.deepcopy(raw), overrides, str(path), lines)
    return validate_spec(raw, path, lines)


def validate_spec(raw: dict, path: Path | None = None, lines: LineMap | None = None) -> Spec:
    """Validate plain data into a Spec; also checks the data file and output folder."""
    lines = lines if lines is not None else LineMap()
    filename = str(path) if path else "<spec>"
    if not isinstance(raw, dict):
        raise SpecError(
            f"{filename}: the spec must be a mapping of keys (name, data, model, ...), not {kind(raw)}"
        )
    # The internal fields are not keys a user may write: report them like any unknown key.
    internal = [k for k in _INTERNAL if k in raw]
    problems = [
        f"{_where(filename, lines, (k,))}: {k}: {unknown_key_text(k, fields_at(()))}"
        for k in internal
    ]
    given = {k: v for k, v in keep_text(raw, lines).items() if k not in _INTERNAL}
    try:
        spec = Spec.model_validate(
            {
                **given,
                "source": path.resolve() if path else None,
                "raw": raw,
                "lines": dict(lines),
                "filename": filename,
            }
        )
    except ValidationError as exc:
        raise SpecError(problems + format_errors(exc, filename, lines, raw)) from None
    except RecursionError:
        raise SpecError(f"{filename}: the spec is nested too deeply") from None
    if problems:
        raise SpecError(problems)
    problems = spec.forecast_problems() + _check_paths(spec, filename, lines)
    if problems:
        raise SpecError(problems)
    return spec


# Values that are labels or levels: a number written there keeps its text (`01`, `1.50`, `NO`).
LABEL_PATHS = (
    ("forecasts", "*", "group"),
    ("forecasts", "*", "at", "*"),
    ("model", "categorical", "*"),
    ("model", "categorical", "*", "reference"),
    ("data", "simulate", "groups", "*"),
)


def keep_text(raw: dict, lines: LineMap) -> dict:
    """`raw` with the values at LABEL_PATHS read back as the text written in the file."""
    texts = getattr(lines, "texts", {})
    if not texts:
        return raw
    out = copy.deepcopy(raw)
    for pattern in LABEL_PATHS:
        for path, parent, key in _matches(out, pattern, ()):
            if path in texts and not isinstance(parent[key], str):
                parent[key] = texts[path]
    return out


def _matches(node, pattern: tuple, path: tuple):
    head, rest = pattern[0], pattern[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
    elif isinstance(node, list) and head == "*":
        keys = range(len(node))
    else:
        return
    for key in keys:
        here = (*path, key)
        if rest:
            yield from _matches(node[key], rest, here)
        else:
            yield here, node, key


def _check_paths(spec: Spec, filename: str, lines: LineMap) -> list[str]:
    # The file system is only looked at here, after the spec itself is valid.
    problems = []
    try:
        data_path = spec.data_path()
        if data_path is not None:
            problems += _check_data_path(
                data_path, f"{_where(filename, lines, ('data', 'path'))}: data.path"
            )
        if spec.output.dir is not None:
            problems += _check_output_dir(
                Path(spec.output.dir), f"{_where(filename, lines, ('output', 'dir'))}: output.dir"
            ) or _output_refusal(spec, f"{_where(filename, lines, ('output', 'dir'))}: output.dir")
    except (OSError, ValueError) as exc:  # e.g. a NUL byte or a name longer than the system allows
        problems.append(
            f"{filename}: a path in the spec cannot be used ({exc}); write a plain file path"
        )
    return problems


DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".txt", ".tsv")


def _check_data_path(data_path: Path, where: str) -> list[str]:
    from ..data.sources import data_files, is_pattern

    if is_pattern(data_path) or data_path.is_dir():  # a folder or glob of data files
        try:
            data_files(data_path)
        except DataError as exc:
            return [f"{where}: {exc}"]
        return []
    if data_path.is_symlink() and not data_path.exists():
        return [f"{where}: {_broken_link(data_path)}; point data.path at the data file itself"]
    if not data_path.exists():
        hint = ""
        if data_path.parent.is_dir():
            near = [p.name for p in data_path.parent.iterdir() if p.suffix.lower() in DATA_SUFFIXES]
            close = difflib.get_close_matches(data_path.name, near, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
        return [
            f"{where}: file {data_path} does not exist; the path is relative to the spec's folder{hint}"
        ]
    if not data_path.is_file():
        return [
            f"{where}: {data_path} is {'a folder' if data_path.is_dir() else 'not a regular file'}; give a CSV or Parquet file"
        ]
    if data_path.suffix.lower() not in DATA_SUFFIXES:
        packed = data_path.suffix.lower() in (".gz", ".bz2", ".xz", ".zst", ".zip")
        fix = "decompress it first" if packed else "export it as CSV or Parquet"
        return [f"{where}: {data_path.name} is neither .csv nor .parquet; {fix}"]
    if not os.access(data_path, os.R_OK):
        return [f"{where}: {data_path} cannot be read (permission denied); check its permissions"]
    return []


def _broken_link(path: Path) -> str:
    """Why a symbolic link leads nowhere: a loop (it leads back to itself), or a missing target."""
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError) as exc:  # Python 3.11 says RuntimeError, later ELOOP
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            return f"{path} is a symbolic link loop (following it leads back to itself)"
    return f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"


def _check_output_dir(target: Path, where: str) -> list[str]:
    # Relative output folders are relative to the working directory, like runs/NAME.
    if target.exists():
        if not target.is_dir():
            return [f"{where}: {target} exists and is not a folder; choose another path"]
        probe = target.absolute().parent
    else:
        probe = next(p for p in target.absolute().parents if p.exists())
    if not probe.is_dir():
        return [
            f"{where}: cannot create {target}: {probe} is a file, not a folder; choose another path"
        ]
    if not os.access(probe, os.W_OK | os.X_OK):
        return [f"{where}: cannot write {target}: {probe} is not writable; choose another folder"]
    return []


def _output_refusal(spec: Spec, where: str) -> list[str]:
    # The folders a run never replaces (the spec's, the data's, /, home, user files).
    from ..results.output_folder import absolute, refusal

    reason = refusal(absolute(Path(spec.output.dir)), spec)
    return [f"{where}: {reason}"] if reason else []


# The spec's top-level fields that hold lists (forecasts).
_LIST_FIELDS = frozenset(
    name for name, info in Spec.model_fields.items() if get_origin(info.annotation) is list
)


def _index_hint(count: int) -> str:
    """What a --set may index in a list of `count` items."""
    change = f"0 to {count - 1} changes an item, " if count else ""
    return f"{change}{count} adds one"


def apply_overrides(raw: dict, overrides, filename: str, lines: LineMap | None = None) -> dict:
    """Apply `a.b.c=value` overrides; values are read as YAML scalars (ints, floats, text)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r}: expected key.path=value, e.g. --set sampler.chains=2")
        try:
            value = load_scalar(text) if text.strip() else ""
        except Exception:  # any YAML problem: the value is the text itself
            value = text
        parts = key.strip().split(".")
        node: Any = raw
        created = len(parts)  # index of the first key the override adds to the spec
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                # The index just past the end adds an item: `--set forecasts.0.x=16` on a spec
                # without forecasts starts the list.
                if not part.isdigit() or int(part) > len(node):
                    raise SpecError(
                        f"--set {item!r}: {'.'.join(parts[: i + 1])} is not an index of the list, "
                        f"which has {len(node)} item(s); {_index_hint(len(node))}"
                    )
                if int(part) == len(node):
                    created = min(created, i)
                    node.append({})
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if part not in node:
                    created = min(created, i)
                if last:
                    node[part] = value
                else:
                    # A missing list field of the spec starts as a list (forecasts.0.group);
                    # anything else as a mapping, whose keys may be digits (a column 2020).
                    starts_list = i == 0 and part in _LIST_FIELDS and parts[1].isdigit()
                    node = node.setdefault(part, [] if starts_list else {})
            else:
                above = ".".join(parts[:i])
                raise SpecError(
                    f"--set {item!r}: {above} is not a mapping (it is {kind(node)}), so it has "
                    f"no key '{part}'; set {above}=VALUE itself"
                )
        if lines is not None:
            # Problems with an overridden value point at the --set, not at the file's line.
            path = tuple(int(p) if p.isdigit() else p for p in parts)
            for k in [k for k in lines if k[: len(path)] == path]:
                del lines[k]
            lines[path] = f"--set {item}"
            for j in range(created + 1, len(path)):  # keys the file never had: an unknown one
                lines[path[:j]] = f"--set {item}"  # is reported at the --set, not at line 1
            texts = getattr(lines, "texts", {})
            for k in [k for k in texts if k[: len(path)] == path]:
                del texts[k]
            if isinstance(value, int | float):
                texts[path] = text.strip()
    return raw


_INTERNAL = ("source", "raw", "lines", "filename")
