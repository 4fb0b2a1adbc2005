"""The YAML spec: loaded safely, validated into typed objects, every problem reported at once."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
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

    groups: Annotated[StrictInt, Field(ge=2, le=1_000_000)] | Annotated[list[str | int | float], Field(min_length=2)]
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
                raise ValueError(f"group labels repeat: {', '.join(dupes[:5])}")
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
        if (self.path is None) == (self.simulate is None):
            raise ValueError(
                "give exactly one of 'path' (a CSV or Parquet file) or 'simulate' (a simulation block)"
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
        aliases = {"centered": "centred", "non_centered": "non_centred", "noncentred": "non_centred",
                   "noncentered": "non_centred", "non-centred": "non_centred", "non-centered": "non_centred"}
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
            f"not a {type(raw).__name__}"
        )
    raw = apply_overrides(copy.deepcopy(raw), overrides, str(path))
    return validate_spec(raw, path, lines)


def validate_spec(raw: dict, path: Path | None = None, lines: LineMap | None = None) -> Spec:
    """Validate plain data into a Spec; also checks that a data file exists."""
    lines = lines or LineMap()
    filename = str(path) if path else "<spec>"
    try:
        spec = Spec.model_validate({**raw, "source": path.resolve() if path else None, "raw": raw})
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, raw, filename, lines)) from None
    data_path = spec.data_path()
    if data_path is not None:
        where = _where(filename, lines, ("data", "path"))
        if not data_path.exists():
            raise SpecError(f"{where}: data.path: file {data_path} does not exist; the path is relative to the spec's folder")
        if not data_path.is_file():
            raise SpecError(f"{where}: data.path: {data_path} is not a file")
        if data_path.suffix.lower() not in (".csv", ".parquet", ".pq", ".txt", ".tsv"):
            raise SpecError(f"{where}: data.path: {data_path.name} is neither .csv nor .parquet; convert it or rename it")
    return spec


def apply_overrides(raw: dict, overrides, filename: str) -> dict:
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
                    raise SpecError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is not an index of the list")
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
    return raw


def _format_errors(exc: ValidationError, raw: dict, filename: str, lines: LineMap) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        where = _where(filename, lines, loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _fields_at(loc[:-1])
            problems.append(f"{where}: {dotted}: {_unknown_key_text(str(loc[-1]), parent)}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "missing":
            msg = "is required; add it"
        problems.append(f"{where}: {dotted}: {msg}{_input_hint(err)}")
    # A union reports one error per branch; keep each message once.
    return list(dict.fromkeys(problems))


def _is_union_tag(part) -> bool:
    return isinstance(part, str) and (
        part.startswith(("constrained-", "list[", "function-")) or part in ("int", "float", "XRange", "str")
    )


def _input_hint(err: dict) -> str:
    if err["type"] in ("missing", "value_error") or "input" not in err:
        return ""
    text = repr(err["input"])
    return f" (got {text[:60]})" if not isinstance(err["input"], dict | list) else ""


def _where(filename: str, lines: LineMap, loc) -> str:
    line = lines.line(loc)
    return f"{filename}:{line}" if line else filename


def _unknown_key_text(key: str, allowed) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    known = f" Known keys: {', '.join(allowed)}." if allowed else ""
    return f"unknown key '{key}'.{hint}{known}"


_SECTION_MODELS = {
    "": Spec, "data": DataSpec, "data.simulate": Simulate, "data.simulate.truth": Truth,
    "data.simulate.x": XRange, "model": ModelSpec, "backend": BackendSpec,
    "sampler": SamplerSpec, "output": OutputSpec, "forecasts": Forecast, "model.priors": Priors,
}


def _fields_at(loc) -> list[str]:
    key = ".".join(str(p) for p in loc if not isinstance(p, int))
    model = _SECTION_MODELS.get(key)
    if model is None:
        return []
    return [n for n, f in model.model_fields.items() if not f.exclude]
