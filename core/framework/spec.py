"""Loading a spec: safe YAML, overrides, validation into `spec_schema`, every problem reported at once."""

from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from .errors import SpecError
from .spec_schema import (  # noqa: F401  (re-exported: the schema is part of this module's API)
    NAME_PATTERN,
    BackendSpec,
    DataSpec,
    Forecast,
    ModelSpec,
    OutputSpec,
    Priors,
    SamplerSpec,
    Simulate,
    Spec,
    Truth,
    XRange,
)
from .yaml_source import LineMap, load_yaml
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
            f"not {_kind(raw)}; start the file with 'name: ...'"
        )
    raw = apply_overrides(copy.deepcopy(raw), overrides, str(path), lines)
    return validate_spec(raw, path, lines)


def validate_spec(raw: dict, path: Path | None = None, lines: LineMap | None = None) -> Spec:
    """Validate plain data into a Spec; also checks the data file and output folder."""
    lines = lines if lines is not None else LineMap()
    filename = str(path) if path else "<spec>"
    if not isinstance(raw, dict):
        raise SpecError(
            f"{filename}: the spec must be a mapping of keys (name, data, model, ...), not {_kind(raw)}"
        )
    # The internal fields are not keys a user may write: report them like any unknown key.
    internal = [k for k in _INTERNAL if k in raw]
    problems = [
        f"{_where(filename, lines, (k,))}: {k}: {_unknown_key_text(k, _fields_at(()))}"
        for k in internal
    ]
    given = {k: v for k, v in raw.items() if k not in _INTERNAL}
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
        raise SpecError(problems + _format_errors(exc, filename, lines)) from None
    except RecursionError:
        raise SpecError(f"{filename}: the spec is nested too deeply") from None
    if problems:
        raise SpecError(problems)
    problems = _check_paths(spec, filename, lines)
    if problems:
        raise SpecError(problems)
    return spec


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
            )
    except (OSError, ValueError) as exc:  # e.g. a NUL byte or a name longer than the system allows
        problems.append(
            f"{filename}: a path in the spec cannot be used ({exc}); write a plain file path"
        )
    return problems


DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".txt", ".tsv")


def _check_data_path(data_path: Path, where: str) -> list[str]:
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
        return [
            f"{where}: {data_path.name} is neither .csv nor .parquet; export it as CSV or Parquet"
        ]
    if not os.access(data_path, os.R_OK):
        return [f"{where}: {data_path} cannot be read (permission denied); check its permissions"]
    return []


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


def apply_overrides(raw: dict, overrides, filename: str, lines: LineMap | None = None) -> dict:
    """Apply `a.b.c=value` overrides; values are read as YAML scalars (ints, floats, text)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r}: expected key.path=value, e.g. --set sampler.chains=2")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        parts = key.strip().split(".")
        node: Any = raw
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise SpecError(
                        f"--set {item!r}: {'.'.join(parts[: i + 1])} is not an index of the list"
                    )
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise SpecError(f"--set {item!r}: {'.'.join(parts[:i])} is not a mapping")
        if lines is not None:
            # Problems with an overridden value point at the --set, not at the file's line.
            path = tuple(int(p) if p.isdigit() else p for p in parts)
            for k in [k for k in lines if k[: len(path)] == path]:
                del lines[k]
            lines[path] = f"--set {item}"
    return raw


def _format_errors(exc: ValidationError, filename: str, lines: LineMap) -> list[str]:
    errors = _drop_union_noise(exc.errors())
    problems = []
    for err in errors:
        loc = _plain_loc(err["loc"])
        if err["type"] == "extra_forbidden" and loc[-1:] != err["loc"][-1:]:
            loc += err["loc"][
                -1:
            ]  # an unknown key named like a union tag ('float') is still the key
        dotted = dotted_path(loc)
        where = _where(filename, lines, loc)
        problems.append(f"{where}: {dotted}: {_message(err, loc)}")
    # A union reports one error per branch; keep each message once.
    return list(dict.fromkeys(problems))


def dotted_path(loc) -> str:
    """`sampler.chains`; a key that is not a plain name is quoted, so a message stays one line."""
    parts = [str(p) if _PLAIN_KEY.match(str(p)) else _kind(str(p)) for p in loc]
    return ".".join(parts) or "(top level)"


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,60}$")


def _plain_loc(loc) -> tuple:
    return tuple(p for p in loc if not _is_union_tag(p))


_TYPE_ERRORS = {
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "string_type",
    "dict_type",
    "list_type",
    "model_type",
    "model_attributes_type",
    "is_instance_of",
    "none_required",
}


def _drop_union_noise(errors: list[dict]) -> list[dict]:
    # Each branch of a union (e.g. groups: int | list) reports its own error. When the
    # input fits one branch's type, the other branches' "wrong type" errors are noise.
    keyed = [(_plain_loc(e["loc"]), e) for e in errors]
    out = []
    for loc, err in keyed:
        in_union = any(_is_union_tag(p) for p in err["loc"])
        if in_union and err["type"] in _TYPE_ERRORS:
            others = [
                e
                for lo, e in keyed
                if e is not err
                and lo[: len(loc)] == loc
                and not (lo == loc and e["type"] in _TYPE_ERRORS)
            ]
            if others:
                continue
        out.append(err)
    # Several type errors left at one place (no branch fits): say it once.
    seen: set[tuple] = set()
    merged = []
    for err in out:
        loc = _plain_loc(err["loc"])
        if err["type"] in _TYPE_ERRORS and any(_is_union_tag(p) for p in err["loc"]):
            if loc in seen:
                continue
            seen.add(loc)
            err = {**err, "type": "union_type"}
        merged.append(err)
    return merged


def _is_union_tag(part) -> bool:
    return isinstance(part, str) and (
        part.startswith(("constrained-", "list[", "function-", "union[", "dict["))
        or part in ("int", "float", "XRange", "str", "bool", "Prior", "none")
    )


# What to write instead, by YAML path (list indices as *); appended when a message has no advice.
HINTS = {
    "name": "it names the output folder, e.g. name: rainfall",
    "data": "write data: {path: FILE.csv} or data: {simulate: {...}}",
    "data.path": "give the CSV or Parquet file, relative to the spec's folder",
    "data.missing": "use refuse (the default) or drop",
    "data.simulate": "give groups, x and truth (and optionally seed)",
    "data.simulate.groups": "give the number of groups (at least 2) or a list of their labels",
    "data.simulate.groups.*": "write each label as text, e.g. CA",
    "data.simulate.x": "give a list of numbers or {start: 0, stop: 10, step: 1}",
    "data.simulate.x.*": "give a number",
    "data.simulate.seed": "use a whole number from 0 to 4294967295",
    "data.simulate.truth": "give intercept_mu, intercept_sigma, slope_mu, slope_sigma and error_sigma",
    "data.simulate.truth.intercept_sigma": "a standard deviation, e.g. intercept_sigma: 5",
    "data.simulate.truth.slope_sigma": "a standard deviation, e.g. slope_sigma: 0.5",
    "data.simulate.truth.error_sigma": "a standard deviation, e.g. error_sigma: 5",
    "model": "write model: {response: COLUMN, predictor: COLUMN, group: COLUMN}",
    "model.response": "name the column holding the response, e.g. response: rainfall",
    "model.predictor": "name the column holding the predictor, e.g. predictor: year",
    "model.group": "name the column holding the group labels, e.g. group: state",
    "model.priors": "give a prior per hyperparameter, e.g. intercept_mu: normal(0, 100)",
    "model.parameterisation": "use auto (the default), centred or non_centred",
    "backend": "write backend: {name: stan}",
    "backend.name": "e.g. name: stan; `framework backends` lists the installed ones",
    "backend.options": "give a mapping of option names to values, or leave options out",
    "sampler": "write sampler: {chains: 4, draws: 1000}",
    "sampler.method": "use auto (the default), marginal or full",
    "sampler.chains": "e.g. chains: 4",
    "sampler.warmup": "e.g. warmup: 1000",
    "sampler.draws": "e.g. draws: 1000",
    "sampler.seed": "use a whole number from 0 to 4294967295, or leave seed out for a random one",
    "sampler.target_accept": "use a value strictly between 0 and 1, e.g. 0.8 (raise it towards 0.99 after divergences)",
    "sampler.max_treedepth": "e.g. max_treedepth: 10",
    "forecasts": "write a list such as forecasts: [{group: CA, x: 16}]",
    "forecasts.*": "write each forecast as {group: LABEL, x: NUMBER}",
    "forecasts.*.group": "give a group label, e.g. group: CA",
    "forecasts.*.x": "give a number (or a list of numbers), e.g. x: 16",
    "output": "write output: {dir: FOLDER, plots: true}",
    "output.dir": "give a folder path, or leave dir out to use runs/NAME",
    "output.plots": "write plots: true or plots: false",
    "output.observed_data": "auto keeps the rows in posterior.nc up to 1,000,000 rows; true always, false never",
    "description": "write one line of text",
}
_NAME_RULE = "must be a plain name: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 100 characters"


def _message(err: dict, loc: tuple) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    got = _got(err)
    generic = ".".join("*" if isinstance(p, int) else str(p) for p in loc)
    if kind == "extra_forbidden":
        return _unknown_key_text(str(loc[-1]), _fields_at(loc[:-1]))
    if kind == "missing":
        hint = HINTS.get(generic)
        return f"is required; {hint}" if hint else "is required; add it"
    text = {
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be text",
        "dict_type": "must be a mapping (key: value)",
        "model_type": "must be a mapping (key: value)",
        "model_attributes_type": "must be a mapping (key: value)",
        "list_type": "must be a list",
        "string_too_short": "must not be empty",
        "union_type": "has the wrong type",
        "invalid_key": "keys must be text",
        "recursion_loop": "is nested too deeply",
        "greater_than_equal": f"must be >= {ctx.get('ge')}",
        "greater_than": f"must be > {ctx.get('gt')}",
        "less_than": f"must be < {ctx.get('lt')}",
        "less_than_equal": f"must be <= {ctx.get('le')}",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "string_pattern_mismatch": _NAME_RULE
        if generic == "name"
        else "has characters that are not allowed",
    }.get(kind)
    if kind == "too_short":
        text = f"needs at least {ctx.get('min_length')} item(s)"
    elif kind == "too_long":
        text = f"has too many items (at most {ctx.get('max_length')})"
    elif kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        close = difflib.get_close_matches(str(err.get("input")), choices, n=1, cutoff=0.6)
        text = f"must be one of: {', '.join(choices)}"
        got = got + (f"; did you mean '{close[0]}'?" if close else "")
        return f"{text}{got}"
    if text is None:  # a validator's own message, or a pydantic message we have no wording for
        text = err["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    hint = HINTS.get(generic)
    if hint and ";" not in text:
        return f"{text}{got}; {hint}"
    return f"{text}{got}"


def _got(err: dict) -> str:
    if err["type"] in ("missing", "value_error", "extra_forbidden") or "input" not in err:
        return ""
    return f" (got {_kind(err['input'])})"


def _kind(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)[:60]


def _unknown_key_text(key: str, allowed) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    hint = f"did you mean '{close[0]}'? " if close else ""
    known = f"the known keys are: {', '.join(allowed)}" if allowed else "remove it"
    return f"unknown key {_kind(key)}; {hint}{known}"


_SECTION_MODELS = {
    "": Spec,
    "data": DataSpec,
    "data.simulate": Simulate,
    "data.simulate.truth": Truth,
    "data.simulate.x": XRange,
    "model": ModelSpec,
    "backend": BackendSpec,
    "sampler": SamplerSpec,
    "output": OutputSpec,
    "forecasts": Forecast,
    "model.priors": Priors,
}
_INTERNAL = ("source", "raw", "lines", "filename")


def _fields_at(loc) -> list[str]:
    key = ".".join(str(p) for p in loc if not isinstance(p, int))
    model = _SECTION_MODELS.get(key)
    if model is None:
        return []
    return [n for n, f in model.model_fields.items() if not f.exclude]
