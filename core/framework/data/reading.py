"""Reading a data file in one streaming pass: checks, group codes, statistics, and the rows if wanted.

Each record batch is checked (numbers, missing values, labels), given group
codes in order of first appearance, turned into the model's design columns
W = [X, y] by `Model.design`, handed to `reduce_chunks` (the replaceable
reduction step) and let go: unless the rows are kept, memory grows with the
number of groups, not rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from ..model.model import Model
from ..model.statistics import GroupStats, reduce_chunks
from .columns import NULL_TEXT, Wanted, as_number_text, value_texts
from .dataset import Dataset, RowDigest
from .table_files import NotNumeric, record_batches

SHOWN_ROWS = 5  # rows named in a message; the rest are counted


def read_table(
    path: Path,
    model: Model,
    missing: str = "refuse",
    keep_rows: bool | int = True,
    fields: dict[str, str] | None = None,
) -> Dataset:
    """Read the model's columns of a CSV or Parquet file; DataError names the file, line and fix.

    `keep_rows`: True keeps every row in the Dataset, False none (only the
    per-group statistics), an integer keeps them when there are at most that
    many. `fields` maps columns to the spec field naming them, for messages.
    """
    predictors = tuple(c for c in model.columns if c not in (model.response, model.group))
    wanted = Wanted(model.response, model.group, predictors, fields=fields or {})
    try:
        return _Pass(model, wanted, missing, keep_rows, path).read(False)
    except NotNumeric:
        # Some value is not a number: read again as text so every bad value can be named.
        return _Pass(model, wanted, missing, keep_rows, path).read(True)
    finally:
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise


class _Found:
    """Rows with one kind of problem: how many, the first few (0-based data rows), example values."""

    def __init__(self):
        self.count, self.rows, self.examples = 0, [], []

    def add(self, local: np.ndarray, offset: int, examples=()) -> None:
        self.count += len(local)
        room = SHOWN_ROWS - len(self.rows)
        self.rows += [offset + int(i) for i in local[:room]]
        self.examples += list(examples)[: 3 - len(self.examples)]


class _Pass:
    """One pass over the batches of a file."""

    def __init__(self, model: Model, wanted: Wanted, missing: str, keep_rows, path: Path):
        self.model, self.wanted, self.missing, self.path = model, wanted, missing, Path(path)
        self.limit = math.inf if keep_rows is True else (0 if keep_rows is False else keep_rows)
        cols = model.columns
        self.numeric = [wanted.response] + [c for c in wanted.predictors if not cols[c].categorical]
        self.categorical = [c for c in wanted.predictors if cols[c].categorical]
        self.levels = {c: {v: i for i, v in enumerate(cols[c].levels)} for c in self.categorical}
        self.not_numeric = {c: _Found() for c in self.numeric}
        self.absent = dict.fromkeys(wanted.all_fields(), 0)  # per column: rows missing a value
        self.bad = _Found()  # rows with any of those
        self.labels = _Labels()
        self.digest = RowDigest()
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = []
        self.rows_read = self.rows_used = 0
        self.ranges = {c: (math.inf, -math.inf) for c in self.numeric[1:]}

    def read(self, numeric_as_text: bool) -> Dataset:
        batches, self.where = record_batches(
            self.path,
            self.wanted.all_fields(),
            text=[*self.categorical, self.wanted.group],
            numeric=self.numeric,
            numeric_as_text=numeric_as_text,
        )
        try:
            stats = reduce_chunks(chunk for batch in batches if (chunk := self._checked(batch)))
        except ValueError:
            if self.rows_used:
                raise
            stats = None  # nothing usable: _dataset says why
        return self._dataset(stats)

    def _checked(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray] | None:
        """The batch's usable rows as (codes, W = [X, y]), after counting what is wrong in it."""
        offset, n = self.rows_read, batch.num_rows
        self.rows_read += n
        values, bad = {}, np.zeros(n, dtype=bool)
        for name in self.numeric:
            values[name] = self._numbers(batch, name, offset)
            bad |= self._absent(name, ~np.isfinite(values[name]))
        for name in self.categorical:
            values[name] = self._level_codes(batch.column(name), name)
            bad |= self._absent(name, values[name] < 0)
        local, dictionary, blank = _local_codes(batch.column(self.wanted.group))
        bad |= self._absent(
            self.wanted.group, (local < 0) | (blank[local] if len(blank) else False)
        )
        if bad.any():
            self.bad.add(np.flatnonzero(bad), offset)
            keep = ~bad
            values = {name: v[keep] for name, v in values.items()}
            local = local[keep]
        if self._refusing():
            return None  # the file will be refused: only count what is wrong from here on
        codes = self.labels.codes(dictionary, local)
        data = {c: v if c in self.ranges or c == self.wanted.response else
                (v, self.model.columns[c].levels) for c, v in values.items()}  # fmt: skip
        x = self.model.design(data)
        y = values[self.wanted.response]
        self.digest.update(y, x, codes)
        self.rows_used += len(y)
        for name, (lo, hi) in self.ranges.items():
            if len(y):
                self.ranges[name] = (min(lo, values[name].min()), max(hi, values[name].max()))
        if self.kept is not None:
            self.kept.append((y, x, codes))
            if self.rows_used > self.limit:
                self.kept = None
        return (codes, np.column_stack([x, y])) if len(y) else None  # nothing to reduce

    def _absent(self, name: str, missing: np.ndarray) -> np.ndarray:
        self.absent[name] += int(missing.sum())
        return missing

    def _refusing(self) -> bool:
        return any(f.count for f in self.not_numeric.values()) or (
            self.missing == "refuse" and self.bad.count > 0
        )

    def _numbers(self, batch: pa.RecordBatch, name: str, offset: int) -> np.ndarray:
        values, bad, examples = _as_numbers(batch.column(name), name, self.wanted.field(name),
                                            self.path)  # fmt: skip
        if len(bad):
            self.not_numeric[name].add(bad, offset, examples)
        return values

    def _level_codes(self, column: pa.Array, name: str) -> np.ndarray:
        """Each row's level index (reference 0), -1 where the value is missing or blank."""
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        known, out = self.levels[name], []
        for text in value_texts(column.dictionary):
            code = -1 if text is None else known.get(text, known.get(as_number_text(text), -2))
            if code == -2:  # the scan saw every level: the file changed while it was read
                raise DataError(
                    f"{self.path}: column {name!r} holds the value {text!r}, which was not there "
                    "when the file was first scanned; was the file changed while it was read?"
                )
            out.append(code)
        local = column.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.append(np.asarray(out, dtype=np.int64), -1)[local]  # index -1: the missing slot

    def _dataset(self, stats: GroupStats | None) -> Dataset:
        path, where = self.path, self.where
        for name, found in self.not_numeric.items():
            if found.count:
                field = self.wanted.field(name)
                fix = (
                    f"pick another column in {field}"
                    if field != "model.formula" or name == self.wanted.response
                    else f"declare {name!r} categorical in the spec if its values are labels"
                )
                raise DataError(
                    f"{where.first(found.rows)}: column {name!r} ({field}) must be numeric, but "
                    f"{found.count} value(s) are not (e.g. {', '.join(found.examples)}; "
                    f"{where.lines(found.rows, found.count)}); fix those rows or {fix}"
                )
        if self.rows_read == 0:
            raise DataError(f"{path}: the file has a header but no data rows; add the data")
        warnings = self._missing_rows()
        if self.rows_used == 0:
            raise DataError(
                f"{path}: no rows are left after dropping the missing values; fix the file"
            )
        labels, group = self.labels.labels, self.wanted.group
        if len(labels) < 2:
            raise DataError(
                f"{path}: column {group!r} ({self.wanted.field(group)}) has only one group "
                f"({labels[0]!r}); a hierarchical model needs at least 2 groups: check "
                f"{self.wanted.field(group)} names the grouping column"
            )
        for name, (lo, hi) in self.ranges.items():
            if lo == hi:
                warnings.append(
                    f"the predictor {name!r} is constant ({lo:g}) in every row: intercepts and "
                    "slopes cannot be told apart, so its coefficients only reflect the prior"
                )
        common = dict(
            response=self.wanted.response, group=group, source=str(path), warnings=warnings
        )
        if self.kept is None:
            return Dataset(labels, stats, row_count=self.rows_used,
                           sha256=self.digest.hexdigest(labels), **common)  # fmt: skip
        y, x, codes = (np.concatenate(parts) for parts in zip(*self.kept, strict=True))
        return Dataset(labels, stats, y=y, X=x, codes=codes, **common)

    def _missing_rows(self) -> list[str]:
        """Refuse rows with missing values, or name them in a warning when they were dropped."""
        bad, where = self.bad, self.where
        if not bad.count:
            return []
        detail = ", ".join(f"{k}: {n}" for k, n in self.absent.items() if n)
        if self.missing == "refuse":
            raise DataError(
                f"{where.first(bad.rows)}: {bad.count} row(s) have a missing, NaN or infinite value "
                f"or an empty group label or category ({detail}; "
                f"{where.lines(bad.rows, bad.count)}); fix the file, or set data.missing: drop in "
                "the spec to drop those rows"
            )
        return [
            f"dropped {bad.count} row(s) with missing or non-finite values ({detail}; "
            f"{where.lines(bad.rows, bad.count)})"
        ]


class _Labels:
    """Group labels in order of first appearance over the whole file, grown batch by batch."""

    def __init__(self):
        self.labels: list[str] = []
        self._known = pa.array([], pa.string())

    def codes(self, dictionary: pa.Array, local: np.ndarray) -> np.ndarray:
        """Global codes of rows given by `local` indices into this batch's `dictionary`."""
        code = pc.index_in(dictionary, value_set=self._known).fill_null(-1)
        code = code.to_numpy(zero_copy_only=False).astype(np.int64)
        new = np.flatnonzero(code < 0)
        if len(new):
            first = np.full(len(dictionary), len(local), dtype=np.int64)
            np.minimum.at(first, local, np.arange(len(local)))  # O(rows), no sort of the rows
            new = new[first[new] < len(local)]  # labels only dropped rows carry do not appear
            new = new[np.argsort(first[new], kind="stable")]
            code[new] = len(self.labels) + np.arange(len(new))
            added = dictionary.take(pa.array(new))
            self.labels += added.to_pylist()
            self._known = pa.concat_arrays([self._known, added])
        return code[local]


def _local_codes(column: pa.Array) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """This batch's label index per row (-1 where missing), its labels as text, and which are blank."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    dictionary = column.dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = pc.cast(dictionary, pa.string())
    local = column.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    # A label that is only spaces is as good as none; checked on the distinct labels, not every row.
    blank = pc.equal(pc.utf8_trim_whitespace(dictionary), "").fill_null(True)
    return local, dictionary, blank.to_numpy(zero_copy_only=False)


def _as_numbers(column: pa.Array, name: str, field: str, path: Path):
    """The column as float64, with the indices and examples of values that are not numbers."""
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        return values, np.empty(0, np.int64), []
    if pa.types.is_null(t):
        return np.full(len(column), np.nan), np.empty(0, np.int64), []
    if pa.types.is_boolean(t):
        raise DataError(
            f"{path}: column {name!r} ({field}) holds true/false values, not numbers; "
            f"code them as 0 and 1, or pick another column in {field}"
        )
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
    values = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    text = values.astype(str).str.strip()
    missing = values.isna() | text.isin(NULL_TEXT)
    as_num = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = np.flatnonzero((as_num.isna() & ~missing).to_numpy())
    return as_num.to_numpy(np.float64), bad, [_shown(values.iloc[i]) for i in bad[:3]]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
