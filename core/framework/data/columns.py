"""The column scan: each model column's kind and, for categorical ones, its levels.

Before the Model can be built its columns must be known: a text column is
categorical, a numeric one numeric unless the spec declares it categorical
(codes such as clinic 101-140). One cheap pass over just the columns that may
be categorical collects their distinct values; a column that holds any number
and is not declared categorical is numeric (its text values are then reported
by the reading pass as values that are not numbers, with their lines).

Levels are text: numeric codes are written as numbers (integers without ".0").
Order: the reference level first (declared, else the first in sorted order;
numeric order for numeric codes), then the others sorted the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from ..model.terms import Column
from .table_files import columns_in, record_batches

# pyarrow is imported where a file is read: a simulated spec (and its `framework validate`)
# never pays for it.
if TYPE_CHECKING:
    import pyarrow as pa


@functools.cache
def null_texts() -> frozenset[str]:
    """Text the CSV reader treats as a missing number (pyarrow's defaults)."""
    import pyarrow.csv as pacsv

    return frozenset(pacsv.ConvertOptions().null_values)


# More distinct texts than this in one predictor is an identifier, not a factor: each level is a
# design column, and the statistics grow with groups x columns^2.
MAX_LEVELS = 500


@dataclass(frozen=True)
class Wanted:
    """The columns a model reads and what the spec says about them."""

    response: str
    group: str
    predictors: tuple[str, ...]
    categorical: dict[str, str | None] = field(default_factory=dict)  # declared: reference or None
    numeric: frozenset[str] = frozenset()  # declared numeric (the v1 form's predictor)
    fields: dict[str, str] = field(default_factory=dict)  # column -> spec field, for messages
    # "FILE:LINE: path" of a column's categorical declaration, for a reference that does not occur.
    declared_at: Callable[[str], str] = field(default=lambda column: f"categorical.{column}")

    def field(self, column: str) -> str:
        default = {self.response: "model.response", self.group: "model.group"}
        return self.fields.get(column) or default.get(column, "model.formula")

    def all_fields(self) -> dict[str, str]:
        """Every column to read, response first, mapped to its spec field."""
        names = (self.response, *self.predictors, self.group)
        return {c: self.field(c) for c in dict.fromkeys(names)}


def number_text(value: float) -> str:
    """A numeric code as a level: integers without '.0', others as Python writes them."""
    value = float(value)
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def as_number_text(text: str) -> str | None:
    """`' 1.0'` -> `'1'`: the level a numeric code written as text stands for (None if not a number)."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return number_text(value) if np.isfinite(value) else None


def value_texts(values: pa.Array) -> list[str | None]:
    """Distinct values of any Arrow type as level text (None where missing, blank or NA)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = values.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        out = values.cast(pa.float64()).to_pylist()
        return [None if v is None or not np.isfinite(v) else number_text(v) for v in out]
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        values = pc.cast(values, pa.string())  # booleans -> "false"/"true", dates as ISO text
    # As in number columns, "NA", "null", "#N/A" ... mean missing (a grouping column's labels differ:
    # there any text but a blank one is a label).
    missing = null_texts() | {""}
    return [None if v is None or v.strip() in missing else v for v in values.to_pylist()]


def order_levels(found: set[str], reference: str | None, where: str, name: str) -> tuple[str, ...]:
    """Reference first, then the rest sorted (numerically when every level is a number)."""
    numbers = {v: as_number_text(v) for v in found}
    numeric = all(numbers[v] == v for v in found)
    key = (lambda v: float(v)) if numeric else (lambda v: v)
    levels = sorted(found, key=key)
    if reference is not None:
        ref = str(reference)
        if ref not in found and numeric:
            ref = as_number_text(ref) or ref  # `reference: 1.0` names the code 1
        if ref not in found:
            shown = ", ".join(levels[:20]) + (" ..." if len(levels) > 20 else "")
            raise DataError(
                f"{where}: the reference level {reference!r} of column {name!r} does not occur in "
                f"the data; its levels are: {shown}; name one of those"
            )
        levels.remove(ref)
        levels.insert(0, ref)
    return tuple(levels)


def categorical(name: str, found: set[str], wanted: Wanted) -> Column:
    """The categorical Column of `name` from its distinct values."""
    if not found:
        raise DataError(
            f"column {name!r} ({wanted.field(name)}) has no values: every row is blank; "
            "fill it in or remove it from the model"
        )
    reference = wanted.categorical.get(name)
    where = wanted.declared_at(name) if reference is not None else wanted.field(name)
    return Column(name, "categorical", order_levels(found, reference, where, name))


def scan_file(path: Path, wanted: Wanted) -> dict[str, Column]:
    """The model's columns in a CSV or Parquet file: kinds, and levels of the categorical ones."""
    return scan_values(path, wanted).columns()


def scan_files(paths: list[Path], wanted: Wanted, source: Path | str) -> dict[str, Column]:
    """The model's columns over several files (their values merged, see `_Scan.absorb`)."""
    total = scan_values(paths[0], wanted)
    for path in paths[1:]:
        total.absorb(scan_values(path, wanted), source)
    return total.columns()


def scan_values(path: Path, wanted: Wanted) -> _Scan:
    """What one file says of the model's columns: which hold numbers, the others' values."""
    schema = columns_in(path, wanted.all_fields())
    open_ = [c for c in dict.fromkeys(wanted.predictors) if c not in wanted.numeric]
    if schema is not None:  # Parquet: the file's types say which columns are numbers
        import pyarrow as pa

        numeric_type = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal,
                        pa.types.is_null)  # fmt: skip
        open_ = [
            c
            for c in open_
            if c in wanted.categorical or not any(f(schema.field(c).type) for f in numeric_type)
        ]
        for c in open_:  # a date would become one level per day, silently
            if pa.types.is_temporal(schema.field(c).type) and c not in wanted.categorical:
                raise DataError(
                    f"{path}: column {c!r} ({wanted.field(c)}) holds dates or times "
                    f"({schema.field(c).type}); a formula takes numbers or labels: add a numeric "
                    "column (e.g. days since the first date), or declare it in model.categorical "
                    "to make each value a level"
                )
    scan = _Scan(open_, wanted)
    if open_:
        batches, _ = record_batches(path, {c: wanted.field(c) for c in open_}, text=open_)
        for batch in batches:
            try:
                scan.add(batch)
            except DataError as exc:  # a column's contents: the message names the file
                raise DataError(f"{path}: {exc}") from None
            if not scan.open:
                break  # every undeclared column has shown a number: nothing left to learn
    return scan


def known_columns(wanted: Wanted, kinds: dict[str, set[str] | None]) -> dict[str, Column]:
    """Columns whose values are known up front (simulated): None = numeric, else the levels."""
    out = {wanted.response: Column(wanted.response, "numeric")}
    for name, found in kinds.items():
        out[name] = Column(name, "numeric") if found is None else categorical(name, found, wanted)
    out[wanted.group] = Column(wanted.group, "categorical")  # labels live in Dataset.labels
    return out


class _Scan:
    """Distinct values per column, batch by batch; undeclared columns leave once a number shows."""

    def __init__(self, names: list[str], wanted: Wanted):
        self.wanted = wanted
        self.open = [c for c in names if c not in wanted.categorical]  # kind still undecided
        self.found: dict[str, set[str]] = {c: set() for c in names}
        self.numeric = {c for c in wanted.predictors if c not in self.found}

    def add(self, batch: pa.RecordBatch) -> None:
        for name in list(self.found):
            if name in self.numeric:
                continue
            texts = [t for t in value_texts(_distinct(batch.column(name))) if t is not None]
            if name in self.open:
                import pandas as pd  # here only: `framework validate` need not import pandas

                stripped = pd.Series(texts, dtype=object).str.strip()
                if pd.to_numeric(stripped, errors="coerce").notna().any():
                    self.numeric.add(name)
                    self.open.remove(name)
                    self.found[name] = set()
                    continue
            self.found[name].update(texts)
            if len(self.found[name]) > MAX_LEVELS:
                raise DataError(_too_many(name, self.wanted))

    def absorb(self, later: _Scan, source: Path | str) -> None:
        """Add another file's values: a column with a number in any file is numeric."""
        self.numeric |= later.numeric
        for name, found in later.found.items():
            self.found.setdefault(name, set()).update(found)
        for name in list(self.found):
            if name in self.numeric:
                del self.found[name]
            elif len(self.found[name]) > MAX_LEVELS:
                raise DataError(f"{source}: {_too_many(name, self.wanted)}")

    def columns(self) -> dict[str, Column]:
        kinds: dict[str, set[str] | None] = dict.fromkeys(self.numeric)
        for name, found in self.found.items():
            if name in self.numeric:
                continue
            if name in self.wanted.categorical and found and all(as_number_text(v) for v in found):
                found = {as_number_text(v) for v in found}  # codes read as text: ' 1.0' is 1
            kinds[name] = found if found or name in self.wanted.categorical else None
        ordered = {c: kinds[c] for c in self.wanted.predictors if c in kinds}
        return known_columns(self.wanted, ordered)


def _too_many(name: str, wanted: Wanted) -> str:
    return (
        f"column {name!r} ({wanted.field(name)}) holds more than {MAX_LEVELS} "
        "distinct texts: as a categorical predictor each would be a coefficient; "
        "if it identifies groups, make it the grouping column instead"
    )


def _distinct(column: pa.Array) -> pa.Array:
    """The distinct values a batch's rows use (a dictionary's unused entries left out)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        used = pc.unique(column.indices).drop_null()
        return column.dictionary.take(used)
    return pc.unique(column)
