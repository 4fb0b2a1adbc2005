"""The spec's `model` section: a formula (or the v1 form), family, categorical columns, priors.

The section is checked as far as it can be without the data: the formula's
grammar, the family, the priors' text and, by building the Model over
stand-in columns (numeric unless declared categorical), every formula
problem that does not depend on a column's kind.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..model.families import BUILTIN_FAMILIES, GAUSSIAN
from ..model.formula import Formula, FormulaError, parse_formula, v1_formula
from ..model.model import ModelError
from ..model.model import build_model as _build_model
from ..model.prior_classes import (
    BETA,
    DEFAULT_BETA,
    DEFAULT_GROUP_SD,
    DEFAULT_KEY,
    GROUP_CORR,
    GROUP_SD,
    V1_ALIASES,
    parse_priors,
)
from ..model.priors import PriorError
from ..model.terms import Column
from .fields import Strict, at_path

# Families DESIGN.md names for later versions: refused as "not yet", not as unknown.
LATER_FAMILIES = ("student_t", "bernoulli", "binomial", "poisson", "negative_binomial")
V1_KEYS = ("response", "predictor", "group")
_REQUIRED = object()  # a v1 key left out: reported as "is required" at its own path
ColumnName = Annotated[str, Field(min_length=1)]


class ModelSpec(Strict):
    """`model:`: `formula` (lme4 syntax) or `response`/`predictor`/`group` (the v1 form).

    After validation `response` and `group` hold the formula's columns in either
    form; `predictor` is set in the v1 form only.
    """

    response: ColumnName | None = None
    predictor: ColumnName | None = None
    group: ColumnName | None = None
    formula: str | None = None
    family: str = "gaussian"
    trials: str | None = None
    categorical: dict[str, str | None] = Field(default_factory=dict)
    priors: dict[str, Any] = Field(default_factory=dict)
    parameterisation: Literal["auto", "centred", "non_centred"] = "auto"
    _formula: Formula = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data):
        if not isinstance(data, dict) or data.get("formula") is not None:
            return data
        if all(data.get(k) is None for k in V1_KEYS):
            raise ValueError(
                "needs a formula, e.g. formula: y ~ x + (x | g), or the v1 form: "
                "response, predictor and group"
            )
        return {**data, **{k: _REQUIRED for k in V1_KEYS if data.get(k) is None}}

    @field_validator(*V1_KEYS, mode="before")
    @classmethod
    def _required(cls, v):
        if v is _REQUIRED:
            raise PydanticCustomError("missing", "Field required")
        return v

    @field_validator("formula")
    @classmethod
    def _parse(cls, v, info):
        if v is None:
            return v
        given = [k for k in V1_KEYS if info.data.get(k) is not None]
        if given:
            raise ValueError(
                f"is written together with {', '.join(given)} (the v1 form); keep one: "
                "the formula alone, or response, predictor and group without it"
            )
        try:
            parse_formula(v)
        except FormulaError as exc:
            raise ValueError(str(exc)) from None
        return v.strip()

    @field_validator("family", mode="before")
    @classmethod
    def _family(cls, v):
        if not isinstance(v, str) or v in BUILTIN_FAMILIES:
            return v
        if v in LATER_FAMILIES:
            raise ValueError(
                f"not yet: this version fits gaussian ({v} comes later); write family: gaussian "
                "or leave family out"
            )
        known = [*BUILTIN_FAMILIES]
        close = difflib.get_close_matches(v, [*known, *LATER_FAMILIES], n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(f"unknown family {v[:40]!r}; {hint}this version fits: {', '.join(known)}")

    @field_validator("trials")
    @classmethod
    def _trials(cls, v):
        if v is not None:
            raise ValueError(
                "is for family binomial only, which this version does not fit; remove it"
            )
        return v

    @field_validator("categorical", mode="before")
    @classmethod
    def _categorical(cls, v):
        if v is None:
            return {}
        if isinstance(v, list):
            for i, item in enumerate(v):
                if not isinstance(item, str) or not item:
                    raise at_path((i,), "must be a column name, e.g. categorical: [clinic]")
            return dict.fromkeys(v)
        if not isinstance(v, dict):
            raise ValueError(
                "must be a list of column names, e.g. categorical: [clinic], or a mapping "
                "column: {reference: LEVEL}"
            )
        out = {}
        for col, entry in v.items():
            if isinstance(entry, dict) and set(entry) <= {"reference"}:
                ref = entry.get("reference")
                if ref is not None and (isinstance(ref, bool) or not isinstance(ref, str | int)):
                    raise at_path((col, "reference"), "must be one level of the column, as text")
                out[col] = None if ref is None else str(ref)
            elif entry is None:
                out[col] = None
            else:
                raise at_path((col,), "must be {reference: LEVEL} (the reference level), or empty")
        return out

    @field_validator("priors", mode="before")
    @classmethod
    def _priors(cls, v, info):
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError(
                "must be a mapping of prior classes, e.g. priors: {beta: normal(0, 10), "
                "sigma: half_normal(5)}"
            )
        v = _rejoin(v)
        v = {k: _rejoin(x) if isinstance(x, dict) else x for k, x in v.items()}
        family = BUILTIN_FAMILIES.get(info.data.get("family"), GAUSSIAN)
        known = [BETA, GROUP_SD, GROUP_CORR, *family.parameters, *V1_ALIASES]
        for key in v:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.7)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise at_path(
                    (key,),
                    f"unknown key {str(key)[:40]!r}; {hint}the known keys are: {', '.join(known)}",
                )
        try:
            return parse_priors(v, family.parameters)
        except PriorError as exc:
            raise _prior_error(v, str(exc)) from None

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

    @model_validator(mode="after")
    def _check(self):
        if self.formula is None and len({self.response, self.predictor, self.group}) != 3:
            raise ValueError("response, predictor and group must be three different columns")
        try:
            parsed = parse_formula(self.formula_text())
        except FormulaError as exc:  # a v1 column name the grammar cannot quote
            raise ValueError(f"the columns cannot be written as a formula: {exc}") from None
        self._formula = parsed
        object.__setattr__(self, "response", parsed.response)
        object.__setattr__(self, "group", parsed.blocks[0].group if parsed.blocks else None)
        for col, _ in self.categorical.items():
            if col == self.group:  # its values are labels whatever they look like
                raise at_path(
                    ("categorical", col),
                    f"'{col}' is the grouping column, whose values are always read as labels; "
                    "remove it",
                )
            if col not in parsed.columns() or col == parsed.response:
                raise at_path(
                    ("categorical", col),
                    f"'{col}' is not a predictor of the model; its predictors are: "
                    f"{', '.join(self.predictor_columns()) or '(none)'}; remove it",
                )
        _dry_build(self, parsed)
        return self

    def formula_text(self) -> str:
        """The formula as written, or the v1 form's (`response ~ predictor + (predictor || group)`)."""
        if self.formula is not None:
            return self.formula
        return v1_formula(self.response, self.predictor, self.group)

    def parsed_formula(self) -> Formula:
        return self._formula

    def column_names(self) -> list[str]:
        """Every column the model needs: response first, predictors, grouping column last."""
        return self._formula.columns()

    def predictor_columns(self) -> list[str]:
        groups = {b.group for b in self._formula.blocks}
        return [c for c in self.column_names() if c != self.response and c not in groups]

    def resolved(self) -> dict:
        """The section as the user's form gives it, defaults filled in, priors as text by class."""
        out: dict[str, Any] = (
            {"formula": self.formula}
            if self.formula is not None
            else {k: getattr(self, k) for k in V1_KEYS}
        )
        out["family"] = self.family
        if self.categorical:
            out["categorical"] = {
                c: (None if ref is None else {"reference": ref})
                for c, ref in self.categorical.items()
            }
        out["priors"] = self.priors_text()
        out["parameterisation"] = self.parameterisation
        return out

    def priors_text(self) -> dict[str, Any]:
        """The priors as text, by class; a class left out gets its default written."""
        text = {
            k: ({t: str(p) for t, p in v.items()} if isinstance(v, dict) else str(v))
            for k, v in self.priors.items()
        }
        family = BUILTIN_FAMILIES[self.family]
        covered = {
            V1_ALIASES[k][0] for k in self.priors if k in V1_ALIASES and V1_ALIASES[k][1] is None
        }
        defaults = {BETA: DEFAULT_BETA, GROUP_SD: DEFAULT_GROUP_SD, **family.default_priors}
        for cls, prior in defaults.items():
            if cls in covered:
                continue
            if cls not in text:
                text[cls] = str(prior)
            elif isinstance(text[cls], dict) and DEFAULT_KEY not in text[cls]:
                text[cls] = {**text[cls], DEFAULT_KEY: str(prior)}
        return text


def _rejoin(mapping: dict) -> dict:
    """Undo YAML's split of `{beta: normal(0, 10)}` into `beta: 'normal(0'` and a key `10)`.

    In a {flow mapping} a comma ends a plain value; a value with an open parenthesis
    followed by keys without values is that one prior cut at its commas.
    """
    out: dict = {}
    items = list(mapping.items())
    i = 0
    while i < len(items):
        key, value = items[i]
        i += 1
        while (
            isinstance(value, str)
            and value.count("(") > value.count(")")
            and i < len(items)
            and isinstance(items[i][0], str)
            and items[i][1] is None
        ):
            value, i = f"{value}, {items[i][0]}", i + 1
        out[key] = value
    return out


def _prior_error(raw: dict, message: str) -> PydanticCustomError:
    # parse_priors names the place first: `beta: ...` or `beta.x:trt[b]: ...`.
    for key, value in raw.items():
        for term in value if isinstance(value, dict) and "dist" not in value else ():
            head = f"{key}.{term}: "
            if message.startswith(head):
                return at_path((key, term), message[len(head) :])
        if message.startswith(f"{key}: "):
            return at_path((key,), message[len(f"{key}: ") :])
    return PydanticCustomError("value_error", "{message}", {"message": message})


def _dry_build(spec: ModelSpec, parsed: Formula) -> None:
    """Formula problems that hold whatever the columns' kinds: found before the data are read."""
    columns = {
        c: Column(c, "categorical", ("a", "b")) if c in spec.categorical else Column(c, "numeric")
        for c in parsed.columns()
    }
    try:
        _build_model(parsed, columns, spec.family)
    except ModelError as exc:
        if exc.path[:2] == ("model", "formula") and spec.formula is not None:
            raise at_path(("formula",), str(exc)) from None
        if exc.path[:2] == ("model", "formula"):
            raise ValueError(str(exc)) from None
