"""From the spec to the Model: `build_model` over the data's columns, errors at the spec's lines."""

from __future__ import annotations

import difflib

from ..errors import SpecError
from ..model.model import Model, ModelError
from ..model.model import build_model as _build_model
from ..model.terms import Column
from .model_schema import V1_KEYS, ModelSpec

__all__ = ["ModelSpec", "build_model", "categorical_columns"]


def categorical_columns(spec) -> dict[str, str | None]:
    """Columns the spec declares categorical, with the reference level it names (or None)."""
    return dict(spec.model.categorical)


def build_model(spec, columns: dict[str, Column]) -> Model:
    """The spec's Model over the data's columns; SpecError (FILE:LINE: path: ...) if it cannot be built.

    A declared reference level is moved first among the column's levels (the
    others keep the order the data stage gave them).
    """
    m = spec.model
    for name in m.column_names():
        if name not in columns:
            field = ("model", "formula") if m.formula is not None else _v1_field(m, name)
            close = difflib.get_close_matches(name, list(columns), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            shown = ", ".join(f"'{c}'" for c in list(columns)[:20])
            raise _located(
                spec, field, f"column '{name}' is not in the data; {hint}its columns are: {shown}"
            )
    columns = dict(columns)
    for name, ref in m.categorical.items():
        col = columns[name]
        where = ("model", "categorical", name)
        if not col.categorical:  # the data stage reads a declared column's values as levels
            raise ValueError(
                f"{name!r} is declared categorical but came as numbers; a data-stage bug"
            )
        if ref is not None:
            if ref not in col.levels:
                shown = ", ".join(f"'{v}'" for v in col.levels[:20])
                raise _located(
                    spec,
                    (*where, "reference"),
                    f"'{ref}' is not a level of column '{name}'; its levels are: {shown}",
                )
            columns[name] = Column(name, col.kind, (ref, *(v for v in col.levels if v != ref)))
    try:
        return _build_model(m.parsed_formula(), columns, m.family, m.priors)
    except ModelError as exc:
        path = exc.path if m.formula is not None or exc.path != ("model", "formula") else ("model",)
        raise _located(spec, path, str(exc)) from None


def _v1_field(m: ModelSpec, name: str) -> tuple:
    key = next(k for k in V1_KEYS if getattr(m, k) == name)
    return ("model", key)


def _located(spec, path: tuple, message: str) -> SpecError:
    return SpecError(f"{spec.where(*path)}: {'.'.join(map(str, path))}: {message}")
