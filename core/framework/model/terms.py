"""Terms: the columns of the design matrix, named as users of lme4 and brms read them.

A term is a product of factors; a factor is a numeric column (its value) or
one level of a categorical column (1 where the row has that level, else 0).
Categorical columns are treatment-coded: a term drops the reference level of
a categorical factor when the same term without that factor is in the model
(the intercept, for a main effect), and keeps every level otherwise, as R's
model.matrix does.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

INTERCEPT = "Intercept"


@dataclass(frozen=True)
class Column:
    """What the model needs to know about a data column: numeric, or categorical with its levels."""

    name: str
    kind: str  # "numeric" or "categorical"
    levels: tuple[str, ...] = ()  # categorical: reference level first, then the rest sorted

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"


@dataclass(frozen=True)
class Term:
    """One design column: `factors` pairs each column name with a level (categorical) or None."""

    factors: tuple[tuple[str, str | None], ...]

    @property
    def name(self) -> str:
        if not self.factors:
            return INTERCEPT
        return ":".join(c if level is None else f"{c}[{level}]" for c, level in self.factors)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.factors)


INTERCEPT_TERM = Term(())


def expand(
    chains: tuple[tuple[str, ...], ...], intercept: bool, columns: dict[str, Column]
) -> list[Term]:
    """Design terms of a formula part: the intercept, then each chain's columns and levels."""
    terms = [INTERCEPT_TERM] if intercept else []
    present = [frozenset(c) for c in chains] + ([frozenset()] if intercept else [])
    full_coded: set[str] = set()  # without an intercept, the first categorical keeps every level
    for chain in chains:
        options = []
        for name in chain:
            col = columns[name]
            if not col.categorical:
                options.append([(name, None)])
                continue
            rest = frozenset(chain) - {name}
            contrast = rest in present
            if not rest and not intercept:  # the first takes the intercept's place
                contrast = bool(full_coded)
                full_coded.add(name)
            levels = col.levels[1:] if contrast else col.levels
            options.append([(name, level) for level in levels])
        terms.extend(Term(tuple(f)) for f in product(*options))
    return terms
