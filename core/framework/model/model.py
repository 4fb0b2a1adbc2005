"""The Model: the one place that knows a model's terms, names, family and covariance structure.

    eta_i = X_i beta + Z_i b_g[i]        (Z's columns are a subset of X's)
    y_i   ~ Family(eta_i, family parameters)
    b_g   ~ Normal(0, Sigma),  Sigma = diag(group_sd) Omega diag(group_sd)

Built from plain values (a formula, the data's column kinds and levels, a
family name, parsed priors), never from a Spec or a Dataset. Everything
else (spec checks, backends' programs, the posterior's variables and
coordinates, estimates, forecasts, plots) asks the Model.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .families import BUILTIN_FAMILIES, Family
from .formula import Formula, parse_formula
from .prior_classes import (
    BETA,
    DEFAULT_BETA,
    DEFAULT_CORR,
    DEFAULT_GROUP_SD,
    DEFAULT_KEY,
    GROUP_CORR,
    GROUP_SD,
    LKJ,
    V1_ALIASES,
)
from .priors import Prior
from .terms import INTERCEPT, Column, Term, expand

# Names of the common posterior's variables and dims (DESIGN.md, "The common posterior").
COEF = "coef"
TERM_DIM, GROUP_TERM_DIM, GROUP_TERM2_DIM, GROUP_DIM = "term", "group_term", "group_term2", "group"


class ModelError(ValueError):
    """The model cannot be built as written; `path` is the spec's YAML path to point at."""

    def __init__(self, path: tuple, message: str):
        self.path = tuple(path)
        super().__init__(message)


@dataclass(frozen=True)
class GroupFactor:
    """A grouping column and the terms that vary by it (a subset of the model's terms)."""

    name: str
    terms: tuple[Term, ...]
    correlated: bool


@dataclass(frozen=True)
class Model:
    """A mixed model: response, population terms, group factors, family, priors."""

    response: str
    terms: tuple[Term, ...]
    factors: tuple[GroupFactor, ...]
    family: Family
    columns: dict[str, Column]
    priors: dict[str, Prior] = field(repr=False)
    corr_prior: LKJ | None = None
    formula: str = ""

    # -- names ---------------------------------------------------------------------------
    @property
    def factor(self) -> GroupFactor:
        """The grouping factor (version 2 fits one; code that loops over `factors` needs no change)."""
        return self.factors[0]

    @property
    def group(self) -> str:
        return self.factor.name

    @property
    def correlated(self) -> bool:
        return self.factor.correlated and len(self.factor.terms) > 1

    @property
    def term_names(self) -> list[str]:
        return [t.name for t in self.terms]

    @property
    def group_term_names(self) -> list[str]:
        return [t.name for t in self.factor.terms]

    @property
    def group_term_index(self) -> list[int]:
        """Positions of the group terms among the population terms (Z = X[:, index])."""
        return [self.terms.index(t) for t in self.factor.terms]

    @property
    def n_terms(self) -> int:
        return len(self.terms)

    @property
    def n_group_terms(self) -> int:
        return len(self.factor.terms)

    @property
    def family_parameters(self) -> tuple[str, ...]:
        return self.family.parameters

    def variables(self) -> dict[str, tuple[str, ...]]:
        """Posterior variables and their extra dims (after chain, draw)."""
        out = {BETA: (TERM_DIM,), GROUP_SD: (GROUP_TERM_DIM,)}
        if self.correlated:
            out[GROUP_CORR] = (GROUP_TERM_DIM, GROUP_TERM2_DIM)
        out[COEF] = (GROUP_DIM, GROUP_TERM_DIM)
        out.update({p: () for p in self.family_parameters})
        return out

    def hyperparameters(self) -> list[tuple[str, dict[str, str]]]:
        """Every scalar parameter above the groups, as (variable, selection) in a fixed order."""
        out = [(BETA, {TERM_DIM: t}) for t in self.term_names]
        out += [(GROUP_SD, {GROUP_TERM_DIM: t}) for t in self.group_term_names]
        if self.correlated:
            names = self.group_term_names
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    out.append((GROUP_CORR, {GROUP_TERM_DIM: a, GROUP_TERM2_DIM: b}))
        out += [(p, {}) for p in self.family_parameters]
        return out

    @staticmethod
    def label(variable: str, selection: dict[str, str]) -> str:
        """`beta[Intercept]`, `group_corr[Intercept,x]`, `sigma`: one name per scalar parameter."""
        return f"{variable}[{','.join(selection.values())}]" if selection else variable

    def parameter_names(self) -> list[str]:
        return [self.label(v, s) for v, s in self.hyperparameters()]

    def prior(self, name: str) -> Prior:
        """The prior of a scalar parameter named as `parameter_names` names it."""
        return self.priors[name]

    # -- data ----------------------------------------------------------------------------
    def design(self, data: dict[str, Any]) -> np.ndarray:
        """The design matrix X (rows x terms) from the formula's columns.

        Numeric columns are arrays; categorical ones arrays of labels (text), or
        (codes, labels) pairs as Arrow's dictionary arrays give them.
        """
        n = len(_values(next(iter(data.values()))))
        out = np.empty((n, self.n_terms))
        cache: dict[tuple[str, str | None], np.ndarray] = {}
        for j, term in enumerate(self.terms):
            col = np.ones(n)
            for factor in term.factors:
                if factor not in cache:
                    cache[factor] = _factor_values(data[factor[0]], factor[1])
                col = col * cache[factor]
            out[:, j] = col
        return out

    def describe(self) -> str:
        corr = "correlated" if self.correlated else "independent"
        return f"{self.formula} ({self.family.name}; {corr} group effects by {self.group})"


def _values(column):
    return column[0] if isinstance(column, tuple) else column


def _factor_values(column, level: str | None) -> np.ndarray:
    if level is None:
        return np.asarray(column, dtype=np.float64)
    if isinstance(column, tuple):
        codes, labels = column
        hits = [i for i, label in enumerate(labels) if str(label) == level]
        return np.isin(np.asarray(codes), hits).astype(np.float64)
    return (np.asarray(column).astype(str) == level).astype(np.float64)


def build_model(
    formula: str | Formula,
    columns: dict[str, Column],
    family: str = "gaussian",
    priors: dict | None = None,
) -> Model:
    """The Model of a formula over columns of known kinds; ModelError points at the spec."""
    parsed = parse_formula(formula) if isinstance(formula, str) else formula
    where = ("model", "formula")
    for name in parsed.columns():
        if name not in columns:
            close = difflib.get_close_matches(name, list(columns), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ModelError(
                where,
                f"names the column '{name}', which is not in the data; {hint}"
                f"the columns are: {', '.join(list(columns)[:20])}",
            )
    if columns[parsed.response].categorical:
        raise ModelError(where, f"the response '{parsed.response}' must be numeric")
    if not parsed.blocks:
        raise ModelError(
            where,
            "has no group term; a hierarchical model needs one, e.g. y ~ x + (x | g) "
            "(random intercept and slope) or y ~ x + (1 | g)",
        )
    if len(parsed.blocks) > 1:
        raise ModelError(
            where,
            "has more than one group term; this version fits one grouping factor with one "
            "block: write (1 + x | g) for correlated or (1 + x || g) for independent effects",
        )
    block = parsed.blocks[0]
    if parsed.response == block.group:
        raise ModelError(
            where, f"groups by its response '{parsed.response}'; group by another column"
        )
    if parsed.response in (c for t in parsed.terms for c in t):
        raise ModelError(where, f"uses the response '{parsed.response}' as a predictor too")
    if block.group in {c for t in parsed.terms for c in t}:
        raise ModelError(where, f"uses the grouping column '{block.group}' as a predictor too")
    predictors = {
        c: columns[c] for c in parsed.columns() if c not in (parsed.response, block.group)
    }
    terms = expand(parsed.terms, parsed.intercept, predictors)
    if not terms:
        raise ModelError(where, "has no population-level term; write e.g. y ~ 1 + (1 | g)")
    group_terms = expand(block.terms, block.intercept, predictors)
    for t in group_terms:
        if t not in terms:
            raise ModelError(
                where,
                f"lets '{t.name}' vary by {block.group} but has no population-level term "
                f"'{t.name}'; add it before the group term (each group's coefficient is the "
                "population value plus its own deviation)",
            )
    if not group_terms:
        raise ModelError(where, f"the group term ( ... | {block.group}) has no terms")
    if family not in BUILTIN_FAMILIES:
        raise ModelError(
            ("model", "family"),
            f"unknown family '{family}'; this version fits: {', '.join(BUILTIN_FAMILIES)}",
        )
    fam = BUILTIN_FAMILIES[family]
    factor = GroupFactor(block.group, tuple(group_terms), block.correlated)
    kept = {c: columns[c] for c in parsed.columns()}
    model = Model(parsed.response, tuple(terms), (factor,), fam, kept, {}, None, str(parsed))
    resolved, corr = _resolve_priors(model, priors or {})
    return Model(parsed.response, tuple(terms), (factor,), fam, kept, resolved, corr, str(parsed))


def _resolve_priors(model: Model, parsed: dict) -> tuple[dict[str, Prior], LKJ | None]:
    """Every scalar parameter's prior from the parsed class priors, defaults and v1 aliases."""
    where = ("model", "priors")
    classes = {
        BETA: (model.term_names, DEFAULT_BETA),
        GROUP_SD: (model.group_term_names, DEFAULT_GROUP_SD),
    }
    for p in model.family_parameters:
        classes[p] = ([], model.family.default_priors[p])
    chosen: dict[str, dict[str, Prior]] = {c: {} for c in classes}
    default: dict[str, Prior] = {c: d for c, (_, d) in classes.items()}
    for key, value in parsed.items():
        if key == GROUP_CORR:
            continue
        if key in V1_ALIASES:
            cls, which = V1_ALIASES[key]
            others = [t for t in model.term_names if t != INTERCEPT]
            if which is not None and (len(others) != 1 or INTERCEPT not in model.term_names):
                raise ModelError(
                    (*where, key),
                    f"is a v1 prior name, for a model with an intercept and one predictor; "
                    f"name the class and term instead, e.g. {cls}: {{{others[0] if others else INTERCEPT}: ...}}",
                )
            term = None if which is None else (INTERCEPT if which == "intercept" else others[0])
            names = classes[cls][0]
            if term is not None and term not in names:
                raise ModelError(
                    (*where, key),
                    f"sets the prior of {cls}[{term}], but '{term}' does not vary by group",
                )
            if term is None:
                default[cls] = value
            else:
                chosen[cls][term] = value
            continue
        names = classes[key][0]
        if isinstance(value, dict):
            for term, prior in value.items():
                if term == DEFAULT_KEY:
                    default[key] = prior
                elif names and term in names:
                    chosen[key][term] = prior
                else:
                    close = difflib.get_close_matches(term, names, n=1)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    raise ModelError(
                        (*where, key, term),
                        f"the model has no {key} term '{term}'; {hint}its {key} terms are: "
                        f"{', '.join(names) or '(none)'}, or use 'default'",
                    )
        else:
            default[key] = value
    out: dict[str, Prior] = {}
    for variable, selection in model.hyperparameters():
        if variable == GROUP_CORR:
            continue
        term = next(iter(selection.values()), None)
        out[Model.label(variable, selection)] = chosen[variable].get(term, default[variable])
    corr = parsed.get(GROUP_CORR)
    if corr is not None and not model.correlated:
        raise ModelError(
            (*where, GROUP_CORR),
            "sets an LKJ prior, but the group effects are independent (|| or one term); "
            "write ( ... | g) for correlated effects, or remove group_corr",
        )
    return out, (corr or DEFAULT_CORR) if model.correlated else None
