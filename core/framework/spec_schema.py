"""The spec's schema: typed, frozen pydantic models that refuse unknown keys."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from .priors import DEFAULT_PRIORS, HYPERPARAMETERS, Prior, PriorError, parse_prior
from .yaml_source import LineMap
from .yaml_source import where as _where

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*$")


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
    # The rows in posterior.nc: auto keeps them up to 1,000,000 rows (runner.ROWS_KEPT_AUTO;
    # always for method full, which samples from them); beyond that the file is streamed
    # and the posterior carries the per-group statistics.
    observed_data: Literal["auto"] | StrictBool = "auto"

    @field_validator("observed_data", mode="before")
    @classmethod
    def _auto_or_bool(cls, v):
        if v == "auto" or isinstance(v, bool):
            return v
        raise ValueError(f"must be auto, true or false (got {v!r})")


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
