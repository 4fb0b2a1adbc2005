"""The `data.simulate` section of the spec: groups, x values and the truth to draw from."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import (
    Field,
    StrictInt,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from ..model.prior_classes import V1_ALIASES
from .fields import Number, Strict


class _Strict(Strict):
    """A section whose unset optional keys are left out when written back (resolved spec)."""

    @model_serializer(mode="wrap")
    def _given(self, handler):
        return {k: v for k, v in handler(self).items() if v is not None}


# Simulated rows are held in memory (y, the design and the codes: ~40 bytes a row and more).
MAX_SIMULATED_ROWS = 10_000_000


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


# The v1 names (framework.model.prior_classes.V1_ALIASES), typed by the class each stands for.
_V1_BOUNDS = {"beta": {}, "group_sd": {"ge": 0}, "sigma": {"gt": 0}}
_V1Truth = create_model(
    "_V1Truth",
    __base__=_Strict,
    **{
        name: (Annotated[Number, Field(**_V1_BOUNDS[cls])] | None, None)
        for name, (cls, _) in V1_ALIASES.items()
    },
)


class Truth(_V1Truth):
    """The true parameters to draw from: by class (beta, group_sd, group_corr, sigma) or v1's five names.

    The v1 names stand for beta[Intercept], beta[x], group_sd[Intercept],
    group_sd[x] and sigma of `y ~ x + (x || g)`. Which terms need a value is
    known once the Model is built: `framework.data.simulate` checks that.
    """

    beta: dict[str, Number] | None = None
    group_sd: dict[str, Annotated[Number, Field(ge=0)]] | None = None
    group_corr: dict[str, Annotated[Number, Field(gt=-1, lt=1)]] | list[list[Number]] | None = None
    sigma: Annotated[Number, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_form(self):
        v1 = [n for n in V1_ALIASES if n in self.v1_values]
        v2 = [
            n for n in ("beta", "group_sd", "group_corr", "sigma") if getattr(self, n) is not None
        ]
        if v1 and v2:
            raise ValueError(
                f"mixes the v1 names ({', '.join(v1)}) with classes ({', '.join(v2)}); "
                "use one form: beta, group_sd, group_corr and sigma"
            )
        if v1 and len(v1) < len(V1_ALIASES):
            missing = [n for n in V1_ALIASES if n not in v1]
            raise ValueError(f"misses {', '.join(missing)}; give all five v1 names")
        if not v1:
            missing = [n for n in ("beta", "group_sd", "sigma") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    f"misses {', '.join(missing)}; give beta: {{TERM: value, ...}}, "
                    "group_sd: {TERM: value, ...} and sigma: value"
                )
        return self

    @property
    def v1_values(self) -> dict[str, float]:
        """The v1 names given, with their values."""
        return {n: getattr(self, n) for n in V1_ALIASES if getattr(self, n) is not None}


DRAWS = ("normal", "uniform", "levels", "values")


class ColumnDraw(_Strict):
    """How one simulated column is drawn: normal, uniform, levels, or values cycled in each group.

    A plain list in the spec (`x: [0, 1, 2]`) stands for `values`.
    """

    normal: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None
    uniform: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None
    levels: Annotated[list[str | int | float], Field(min_length=2)] | None = None
    values: Annotated[list[Number], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in DRAWS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "needs exactly one of normal: [mean, sd], uniform: [low, high], "
                "levels: [a, b, ...] or a list of values"
            )
        if self.normal is not None and not self.normal[1] > 0:
            raise ValueError("normal: [mean, sd] needs sd > 0")
        if self.uniform is not None and not self.uniform[0] < self.uniform[1]:
            raise ValueError("uniform: [low, high] needs low < high")
        if self.levels is not None:
            labels = [str(v) for v in self.levels]
            dupes = sorted({v for v in labels if labels.count(v) > 1})
            if dupes:
                raise ValueError(f"levels repeat: {', '.join(map(repr, dupes[:5]))}")
            if any(not v.strip() for v in labels):
                raise ValueError("a level is blank; give each level a name")
        return self


class Simulate(_Strict):
    """Simulate data from the model with known truth (the blog's part 1, or any model).

    The v1 form gives `x`, the values of the one predictor in every group; the
    general form gives `columns` (each numeric column drawn or cycled, each
    categorical one drawn from its levels) and `rows_per_group`.
    """

    groups: (
        Annotated[StrictInt, Field(ge=2, le=1_000_000)]
        | Annotated[list[str | int | float], Field(min_length=2)]
    )
    x: list[Number] | XRange | None = None
    columns: dict[str, ColumnDraw] | None = None
    rows_per_group: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
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

    @field_validator("columns", mode="before")
    @classmethod
    def _lists(cls, v):
        if isinstance(v, dict):
            return {k: {"values": c} if isinstance(c, list) else c for k, c in v.items()}
        return v

    @field_validator("x")
    @classmethod
    def _x(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("needs at least one x value")
        return v

    @model_validator(mode="after")
    def _one_form(self):
        if self.x is not None and (self.columns is not None or self.rows_per_group is not None):
            raise ValueError(
                "has both x and columns/rows_per_group; give x (the one predictor's values per "
                "group) or columns with rows_per_group"
            )
        if self.x is None and self.columns is None and self.rows_per_group is None:
            raise ValueError(
                "needs x (the one predictor's values per group) or columns and rows_per_group"
            )
        if self.x is None and self.rows_per_group is None:
            raise ValueError("needs rows_per_group (rows simulated in each group) with columns")
        groups = self.groups if isinstance(self.groups, int) else len(self.groups)
        per_group = self.rows_per_group or len(self.x_values())
        if groups * per_group > MAX_SIMULATED_ROWS:  # once a MemoryError, exit 1
            raise ValueError(
                f"would simulate {groups * per_group:,} rows ({groups:,} groups x {per_group:,}), "
                f"more than the {MAX_SIMULATED_ROWS:,} held in memory; simulate fewer, or read "
                "the data from files (data.path), which are reduced as they are read"
            )
        return self

    def labels(self) -> list[str]:
        if isinstance(self.groups, int):
            width = len(str(self.groups))
            return [f"g{i:0{width}d}" for i in range(1, self.groups + 1)]
        return list(self.groups)

    def x_values(self) -> list[float]:
        return [float(v) for v in (self.x.values() if isinstance(self.x, XRange) else self.x)]
