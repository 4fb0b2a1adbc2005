"""The spec's schema: typed, frozen pydantic models that refuse unknown keys."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from ..model.model import ModelError
from ..model.terms import Column
from .fields import NAME_PATTERN, Number
from .fields import Strict as _Strict
from .forecast_schema import Forecast, forecast_indices, has_x_list
from .model_schema import ModelSpec
from .simulate_schema import Simulate, Truth, XRange
from .yaml_source import LineMap
from .yaml_source import where as _where

__all__ = [
    "NAME_PATTERN",
    "BackendSpec",
    "DaskSpec",
    "DataSpec",
    "Forecast",
    "ModelSpec",
    "OutputSpec",
    "SamplerSpec",
    "Simulate",
    "Spec",
    "Truth",
    "XRange",
    "forecast_indices",
]

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*$")


class DaskSpec(_Strict):
    """Where `data.engine: dask` reduces: a scheduler's address, or a local cluster of N workers."""

    address: str | None = None
    n_workers: Annotated[StrictInt, Field(ge=1, le=1024)] | None = None  # None: one per CPU

    @field_validator("address")
    @classmethod
    def _address(cls, v):
        if v is not None and not re.match(r"^(tcp|tls|ucx|inproc)://\S+$", v):
            raise ValueError(f"must be a scheduler address such as tcp://HOST:8786 (got {v!r})")
        return v

    @model_validator(mode="after")
    def _one_cluster(self):
        if self.address is not None and self.n_workers is not None:
            raise ValueError(
                "has both 'address' and 'n_workers'; n_workers sizes the local cluster started "
                "when there is no address: drop one"
            )
        return self


class DataSpec(_Strict):
    path: str | None = None
    simulate: Simulate | None = None
    missing: Literal["refuse", "drop"] = "refuse"
    # arrow: read and reduce in this process; dask: as Dask tasks (framework[dask] extra).
    engine: Literal["arrow", "dask"] = "arrow"
    dask: DaskSpec | None = None

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
        if self.dask is not None and self.engine != "dask":
            raise ValueError("has a 'dask' block but engine is not dask; add engine: dask")
        if self.engine == "dask" and self.simulate is not None:
            raise ValueError("has engine: dask with 'simulate'; the dask engine reads data files")
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


class OutputSpec(_Strict):
    dir: Annotated[str, Field(min_length=1)] | None = None
    plots: StrictBool = True
    # The rows in posterior.nc: auto keeps them up to 1,000,000 rows (runner.ROWS_KEPT_AUTO;
    # always for method full, which samples from them); beyond that the file is streamed
    # and the posterior carries the per-group statistics.
    observed_data: Literal["auto"] | StrictBool = "auto"
    # Every group's coef draws in posterior.nc: auto keeps them up to 10^7 values (draws x
    # groups x group terms; runner.GROUP_DRAWS_AUTO). estimates.csv is the exact mixture
    # over the hyperparameter draws either way; forecasts without the draws are too.
    group_draws: Literal["auto", "all", "none"] = "auto"

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
        return [
            {**item, "x": x} if has_x_list(item) else item
            for item in v
            for x in (item["x"] if has_x_list(item) else [None])
        ]

    @model_validator(mode="after")
    def _places(self):
        given = self.raw.get("forecasts") if isinstance(self.raw, dict) else None
        index = forecast_indices(given) if isinstance(given, list) else []
        for i, forecast in enumerate(self.forecasts):
            forecast._index = index[i] if len(index) == len(self.forecasts) else i
        return self

    def build_model(self, columns: dict[str, Column]):
        """The Model over the data's columns (see `model_spec.build_model`)."""
        from .model_spec import build_model

        return build_model(self, columns)

    def forecast_problems(self) -> list[str]:
        """Forecasts that do not fit the formula's predictors (their kinds not yet known)."""
        categorical = self.model.categorical
        predictors = {
            c: Column(c, "categorical") if c in categorical else None
            for c in self.model.predictor_columns()
        }
        found = [self.located(e) for f in self.forecasts for e in f.problems(predictors)]
        return list(dict.fromkeys(found))  # an `x: [..]` list expands to several forecasts

    def forecast_requests(self, model) -> list[tuple[str, dict[str, float | str]]]:
        """Each forecast as (group, {predictor: value}) for the Model; SpecError if one does not fit."""
        from ..errors import SpecError

        groups = {f.name for f in model.factors}
        predictors = {
            c: col for c, col in model.columns.items() if c != model.response and c not in groups
        }
        try:
            return [(f.group, f.values(predictors)) for f in self.forecasts]
        except ModelError as exc:
            raise SpecError(self.located(exc)) from None

    def located(self, error: ModelError) -> str:
        """`FILE:LINE: path: message` of an error that names its YAML path."""
        return f"{self.where(*error.path)}: {'.'.join(map(str, error.path))}: {error}"

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
        """The spec as plain data, defaults filled in; it validates again as it is (spec.yaml of a run)."""
        out = self.model_dump(mode="json")
        out["model"] = self.model.resolved()
        out["forecasts"] = [f.resolved() for f in self.forecasts]
        if self.data.path is not None and self.source is not None:
            # The run directory's copy is elsewhere: name the data so that it still finds them.
            out["data"]["path"] = str(self.data_path().resolve())
        return out

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()
