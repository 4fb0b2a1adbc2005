"""Forecasts in the spec: `{group: G, x: 16}` for a one-predictor model, `{group: G, at: {...}}` in general."""

from __future__ import annotations

import difflib
import math
import re

from pydantic import PrivateAttr, field_validator, model_validator

from ..model.model import ModelError
from ..model.priors import format_number
from ..model.statistics import LARGEST_VALUE
from ..model.terms import Column
from .fields import Number, at_path
from .fields import Strict as _Strict

_YAML_NUMBER = re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$")


class Forecast(_Strict):
    """A forecast: a group (or a new one) at the model's one predictor `x`, or `at` given values."""

    group: str
    x: Number | None = None
    at: dict[str, str] | None = None
    _index: int = PrivateAttr(default=0)  # its place in the spec's list, for messages

    @field_validator("group", mode="before")
    @classmethod
    def _label(cls, v):
        # Labels are compared as text; the loader keeps a number's text as written (`01`).
        if isinstance(v, bool):
            raise ValueError("must be a group label, not true/false")
        return _text(v) if isinstance(v, int | float) else v

    @field_validator("x", mode="before")
    @classmethod
    def _not_values(cls, v):
        if isinstance(v, dict):  # x: {age: 30}, meant as `at`
            given = ", ".join(
                f"{k}: {_text(w) if isinstance(w, int | float) else w}" for k, w in v.items()
            )
            raise ValueError(
                f"takes one number (the model's one numeric predictor); for values by column "
                f"write at: {{{given}}} instead of x"
            )
        return v

    @field_validator("x")
    @classmethod
    def _finite(cls, v):
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        if v is not None and abs(v) > LARGEST_VALUE:
            raise ValueError(f"must be at most {LARGEST_VALUE:g} in size (got {v:g})")
        return v

    @field_validator("at", mode="before")
    @classmethod
    def _values(cls, v):
        if not isinstance(v, dict):
            return v
        out = {}
        for col, value in v.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise at_path((col,), "must be a number (numeric column) or a level (categorical)")
            out[col] = value if isinstance(value, str) else _text(value)
        return out

    @model_validator(mode="after")
    def _one_form(self):
        if self.x is not None and self.at is not None:
            raise ValueError(
                "has both x and at; keep one: x for a model with one predictor, "
                "at: {column: value, ...} in general"
            )
        if self.x is None and self.at is None:
            raise ValueError("needs x (e.g. x: 16) or at (e.g. at: {x1: 16, trt: b})")
        return self

    def path(self, *sub) -> tuple:
        return ("forecasts", self._index, *sub)

    def problems(self, predictors: dict[str, Column | None]) -> list[ModelError]:
        """What is wrong with this forecast for these predictors (None: kind not yet known)."""
        names = list(predictors)
        if self.x is not None:
            only = predictors[names[0]] if len(names) == 1 else None
            if not names:
                text = "has no column to set: the model has no predictors; write at: {} instead"
                return [ModelError(self.path("x"), text)]
            if len(names) != 1 or (only is not None and only.categorical):
                return [
                    ModelError(
                        self.path("x"),
                        "is for a model with exactly one predictor, a numeric one; this model's "
                        f"predictors are {', '.join(names) or '(none)'}: write at: "
                        "{column: value, ...} instead",
                    )
                ]
            return []
        out = []
        for col, text in self.at.items():
            if col not in predictors:
                close = difflib.get_close_matches(col, names, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                out.append(
                    ModelError(
                        self.path("at", col),
                        f"the model has no predictor '{col}'; {hint}its predictors are: "
                        f"{', '.join(names) or '(none)'}",
                    )
                )
            elif (kind := predictors[col]) is not None:
                if not kind.categorical and _float(text) is None:
                    out.append(
                        ModelError(
                            self.path("at", col),
                            f"'{col}' is numeric: give a finite number of at most "
                            f"{LARGEST_VALUE:g} in size (got {text!r})",
                        )
                    )
                elif kind.categorical and kind.levels and text not in kind.levels:
                    levels = ", ".join(f"'{v}'" for v in kind.levels[:20])
                    out.append(
                        ModelError(
                            self.path("at", col),
                            f"'{text}' is not a level of '{col}'; its levels are: {levels}",
                        )
                    )
        missing = [c for c in names if c not in self.at]
        if missing:
            out.append(
                ModelError(
                    self.path("at"),
                    f"gives no value for {', '.join(missing)}; give every predictor: "
                    f"{', '.join(names)}",
                )
            )
        return out

    def values(self, predictors: dict[str, Column]) -> dict[str, float | str]:
        """{column: number or level} for the model's predictors; ModelError if they do not fit."""
        problems = self.problems(predictors)
        if problems:
            raise problems[0]
        if self.x is not None:
            return {next(iter(predictors)): self.x}
        return {
            c: self.at[c] if col.categorical else _float(self.at[c])
            for c, col in predictors.items()
        }

    def resolved(self) -> dict:
        if self.x is not None:
            return {"group": self.group, "x": self.x}
        return {"group": self.group, "at": {c: _yaml_value(v) for c, v in self.at.items()}}


def _text(value: int | float) -> str:
    return str(value) if isinstance(value, int) else format_number(value)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and abs(value) <= LARGEST_VALUE else None


def _yaml_value(text: str) -> str | int | float:
    # A value written as a number goes back as that number; text such as '01' stays text.
    if _YAML_NUMBER.match(text):
        value = float(text)
        if text == str(int(value)) or text == format_number(value):
            return int(text) if text == str(int(value)) else value
    return text


def has_x_list(item) -> bool:
    return isinstance(item, dict) and isinstance(item.get("x"), list)


def forecast_indices(given: list) -> list[int]:
    """For each forecast after `x: [..]` lists are expanded, its index in the spec's list."""
    return [i for i, item in enumerate(given) for _ in (item["x"] if has_x_list(item) else [None])]
