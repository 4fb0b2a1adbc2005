"""The YAML spec: loaded safely, validated into typed objects, every problem reported at once."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import SpecError
from .priors import DEFAULT_PRIORS, HYPERPARAMETERS, Prior, PriorError, parse_prior
from .yaml_source import LineMap, load_yaml


def _number(v):
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"must be a number, got {v!r}"[:80])
    return float(v)


Number = Annotated[float, BeforeValidator(_number)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XRange(_Strict):
    """Evenly spaced x values: start, start + step, ... up to and including stop."""

    start: Number
    stop: Number
    step: Number = 1

    @model_validator(mode="after")
    def _check(self):
        if not (self.step > 0 and self.stop >= self.start):
            raise ValueError("needs step > 0 and stop >= start")
        if (self.stop - self.start) / self.step > 1_000_000:
            raise ValueError("more than a million x values per group; use a data file")
        return self

    def values(self) -> list[float]:
        n = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [self.start + i * self.step for i in range(n)]


class Truth(_Strict):
    """The true hyperparameters the simulation draws from."""

    intercept_mu: Number
    intercept_sigma: Annotated[Number, Field(ge=0)]
    slope_mu: Number
    slope_sigma: Annotated[Number, Field(ge=0)]
    error_sigma: Annotated[Number, Field(gt=0)]


class Simulate(_Strict):
    """Simulate data from the model with known truth (the blog's part 1)."""

    groups: (
        Annotated[StrictInt, Field(ge=2, le=1_000_000)]
        | Annotated[list[str | int | float], Field(min_length=2)]
    )
    x: list[Number] | XRange
    truth: Truth
    seed: Annotated[StrictInt, Field(ge=0, lt=2**32)] = 0

    @field_validator("groups")
    @classmethod
    def _labels(cls, v):
        if isinstance(v, list):
            labels = [str(g) for g in v]
            dupes = sorted({g for g in labels if labels.count(g) > 1})
            if dupes:
                raise ValueError(f"group labels repeat: {', '.join(map(repr, dupes[:5]))}")
            return labels
        return v

    @field_validator("x")
    @classmethod
    def _x(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("needs at least one x value")
        return v

    def labels(self) -> list[str]:
        if isinstance(self.groups, int):
            width = len(str(self.groups))
            return [f"g{i:0{width}d}" for i in range(1, self.groups + 1)]
        return list(self.groups)

    def x_values(self) -> list[float]:
        return [float(v) for v in (self.x.values() if isinstance(self.x, XRange) else self.x)]


class DataSpec(_Strict):
    path: str | None = None
    simulate: Simulate | None = None
    missing: Literal["refuse", "drop"] = "refuse"

    @model_validator(mode="after")
    def _one_source(self):
        if self.path is not None and self.simulate is not None:
            raise ValueError(
                "has both 'path' and 'simulate'; keep one: a data file or a simulation"
            )
        if self.path is None and self.simulate is None:
            raise ValueError(
                "has neither 'path' nor 'simulate'; add path: FILE.csv (a CSV or Parquet file) "
                "or a simulate block"
            )
        return self


class Priors(_Strict):
    """Priors of the five hyperparameters; an omitted one takes the blog's default."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    intercept_mu: Prior | None = None
    intercept_sigma: Prior | None = None
    slope_mu: Prior | None = None
    slope_sigma: Prior | None = None
    error_sigma: Prior | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _parse(cls, v, info):
        if v is None or isinstance(v, Prior):
            return v
        try:
            return parse_prior(v, info.field_name)
        except PriorError as exc:
            raise ValueError(str(exc)) from None


class ModelSpec(_Strict):
    response: Annotated[str, Field(min_length=1)]
    predictor: Annotated[str, Field(min_length=1)]
    group: Annotated[str, Field(min_length=1)]
    priors: Priors = Field(default_factory=lambda: Priors())
    parameterisation: Literal["auto", "centred", "non_centred"] = "auto"

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("parameterisation", mode="before")
    @classmethod
    def _spelling(cls, v):
        aliases = {
            "centered": "centred",
            "non_centered": "non_centred",
            "noncentred": "non_centred",
            "noncentered": "non_centred",
            "non-centred": "non_centred",
            "non-centered": "non_centred",
        }
        return aliases.get(v, v) if isinstance(v, str) else v

    def prior(self, name: str) -> Prior:
        return getattr(self.priors, name) or DEFAULT_PRIORS[name]

    @model_validator(mode="after")
    def _distinct(self):
        cols = [self.response, self.predictor, self.group]
        if len(set(cols)) != 3:
            raise ValueError("response, predictor and group must be three different columns")
        return self


class BackendSpec(_Strict):
    name: Annotated[str, Field(min_length=1)] = "stan"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, v):
        return {} if v is None else v


class SamplerSpec(_Strict):
    method: Literal["auto", "full", "marginal"] = "auto"
    chains: Annotated[StrictInt, Field(ge=1, le=64)] = 4
    warmup: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 1000
    draws: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 1000
    seed: Annotated[StrictInt, Field(ge=0, lt=2**32)] | None = None
    target_accept: Annotated[Number, Field(gt=0, lt=1)] = 0.8
    max_treedepth: Annotated[StrictInt, Field(ge=1, le=30)] = 10


class Forecast(_Strict):
    group: str
    x: Number

    @field_validator("group", mode="before")
    @classmethod
    def _label(cls, v):
        # YAML reads `group: 1` as an int; labels are compared as text.
        if isinstance(v, bool):
            raise ValueError("must be a group label, not true/false")
        return str(v) if isinstance(v, int | float) else v

    @field_validator("x")
    @classmethod
    def _finite(cls, v):
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class OutputSpec(_Strict):
    dir: Annotated[str, Field(min_length=1)] | None = None
    plots: StrictBool = True


class Spec(_Strict):
    """A validated spec. `source` is the spec file; relative paths resolve against its folder."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    data: DataSpec
    model: ModelSpec
    backend: BackendSpec = Field(default_factory=BackendSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    forecasts: list[Forecast] = Field(default_factory=list)
    output: OutputSpec = Field(default_factory=OutputSpec)
    description: str | None = None

    source: Path | None = Field(default=None, exclude=True)
    raw: dict = Field(default_factory=dict, exclude=True)
    lines: dict = Field(default_factory=dict, exclude=True, repr=False)
    filename: str | None = Field(default=None, exclude=True, repr=False)

    @field_validator("forecasts", mode="before")
    @classmethod
    def _expand(cls, v):
        # `{group: CA, x: [16, 17]}` is shorthand for one forecast per x.
        if not isinstance(v, list):
            return v
        out = []
        for item in v:
            if isinstance(item, dict) and isinstance(item.get("x"), list):
                out.extend({**item, "x": x} for x in item["x"])
            else:
                out.append(item)
        return out

    def where(self, *path) -> str:
        """`FILE:LINE` of a YAML path (as far as it is written in the file), for messages."""
        return _where(self.filename or "<spec>", LineMap(self.lines), path)

    def locate(self, message: str) -> str:
        """Prefix a message that starts with a YAML path (`backend.options.x: ...`) with FILE:LINE."""
        head, sep, _ = message.partition(":")
        if not sep or not _DOTTED.match(head):
            return message
        path = tuple(int(p) if p.isdigit() else p for p in head.split("."))
        return f"{self.where(*path)}: {message}"

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def data_path(self) -> Path | None:
        return None if self.data.path is None else (self.base_dir / self.data.path)

    def output_dir(self) -> Path:
        return Path(self.output.dir) if self.output.dir else Path("runs") / self.name

    def resolved(self) -> dict:
        """The spec as plain data with every default filled in (written as resolved_spec.yaml)."""
        out = self.model_dump(mode="json")
        out["model"]["priors"] = {p: str(self.model.prior(p)) for p in HYPERPARAMETERS}
        return out

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()


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


def _where(filename: str, lines: LineMap, loc) -> str:
    line = lines.line(loc)
    if isinstance(line, str):  # the value came from --set
        return f"{filename} ({line})"
    return f"{filename}:{line}" if line else filename


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
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*$")


def _fields_at(loc) -> list[str]:
    key = ".".join(str(p) for p in loc if not isinstance(p, int))
    model = _SECTION_MODELS.get(key)
    if model is None:
        return []
    return [n for n, f in model.model_fields.items() if not f.exclude]
