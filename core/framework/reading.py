"""Reading a data file in one streaming pass: checks, group codes, statistics, and the rows if wanted.

Each record batch is checked and given group codes in order of first
appearance, then handed to `framework.reduce_chunks` (the replaceable
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
import pyarrow.csv as pacsv

from .data import Dataset, RowDigest
from .errors import DataError
from .stats import GroupStats, reduce_chunks
from .table_files import NotNumeric, RowNames, record_batches

# Text the CSV reader treats as a missing value (pyarrow's defaults).
NULL_TEXT = frozenset(pacsv.ConvertOptions().null_values)
SHOWN_ROWS = 5  # rows named in a message; the rest are counted


def read_table(
    path: Path,
    response: str,
    predictor: str,
    group: str,
    missing: str = "refuse",
    keep_rows: bool | int = True,
) -> Dataset:
    """Read the three model columns of a CSV or Parquet file; DataError names the file, line and fix.

    `keep_rows`: True keeps every row in the Dataset, False none (only the
    per-group statistics), an integer keeps them when there are at most that many.
    """
    wanted = {"model.response": response, "model.predictor": predictor, "model.group": group}
    try:
        batches, where = record_batches(path, wanted)
        return _Pass(wanted, missing, keep_rows, where).read(batches)
    except NotNumeric:
        # Some value is not a number: read again as text so every bad value can be named.
        batches, where = record_batches(path, wanted, numeric_as_text=True)
        return _Pass(wanted, missing, keep_rows, where).read(batches)
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

    def __init__(
        self, wanted: dict[str, str], missing: str, keep_rows: bool | int, where: RowNames
    ):
        self.wanted, self.missing, self.where = wanted, missing, where
        self.limit = math.inf if keep_rows is True else (0 if keep_rows is False else keep_rows)
        self.not_numeric = {field: _Found() for field in ("model.response", "model.predictor")}
        self.absent = dict.fromkeys(wanted, 0)  # per field: rows missing, non-finite or blank
        self.bad = _Found()  # rows with any of those
        self.labels = _Labels()
        self.digest = RowDigest()
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = []
        self.rows_read = self.rows_used = 0
        self.x_range = (math.inf, -math.inf)

    def read(self, batches) -> Dataset:
        stats = reduce_chunks(chunk for batch in batches if (chunk := self._checked(batch)))
        return self._dataset(stats)

    def _checked(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The batch's usable rows as (codes, x, y), after counting what is wrong in it."""
        offset, w = self.rows_read, self.wanted
        self.rows_read += batch.num_rows
        y = self._numeric(batch, "model.response", offset)
        x = self._numeric(batch, "model.predictor", offset)
        local, dictionary, blank = _local_codes(batch.column(w["model.group"]))
        no_label = (local < 0) | (blank[local] if len(blank) else False)
        bad = ~np.isfinite(y) | ~np.isfinite(x) | no_label
        if bad.any():
            self.absent["model.response"] += int((~np.isfinite(y)).sum())
            self.absent["model.predictor"] += int((~np.isfinite(x)).sum())
            self.absent["model.group"] += int(no_label.sum())
            self.bad.add(np.flatnonzero(bad), offset)
            keep = ~bad
            y, x, local = y[keep], x[keep], local[keep]
        if self._refusing():
            return None  # the file will be refused: only count what is wrong from here on
        codes = self.labels.codes(dictionary, local)
        self.digest.update(y, x, codes)
        self.rows_used += len(y)
        if len(x):
            self.x_range = (min(self.x_range[0], x.min()), max(self.x_range[1], x.max()))
        if self.kept is not None:
            self.kept.append((y, x, codes))
            if self.rows_used > self.limit:
                self.kept = None
        return codes, x, y

    def _refusing(self) -> bool:
        return any(f.count for f in self.not_numeric.values()) or (
            self.missing == "refuse" and self.bad.count > 0
        )

    def _numeric(self, batch: pa.RecordBatch, field: str, offset: int) -> np.ndarray:
        name = self.wanted[field]
        values, bad, examples = _as_numbers(batch.column(name), name, field, self.where.path)
        if len(bad):
            self.not_numeric[field].add(bad, offset, examples)
        return values

    def _dataset(self, stats: GroupStats) -> Dataset:
        path, where, w = self.where.path, self.where, self.wanted
        for field, found in self.not_numeric.items():
            if found.count:
                raise DataError(
                    f"{where.first(found.rows)}: column {w[field]!r} ({field}) must be numeric, but "
                    f"{found.count} value(s) are not (e.g. {', '.join(found.examples)}; "
                    f"{where.lines(found.rows, found.count)}); fix those rows or pick another "
                    f"column in {field}"
                )
        if self.rows_read == 0:
            raise DataError(f"{path}: the file has a header but no data rows; add the data")
        warnings = self._missing_rows()
        if self.rows_used == 0:
            raise DataError(
                f"{path}: no rows are left after dropping the missing values; fix the file"
            )
        labels = self.labels.labels
        if len(labels) < 2:
            raise DataError(
                f"{path}: column {w['model.group']!r} (model.group) has only one group ({labels[0]!r}); "
                "a hierarchical model needs at least 2 groups: check model.group names the grouping column"
            )
        if self.x_range[0] == self.x_range[1]:
            warnings.append(
                f"the predictor {w['model.predictor']!r} is constant ({self.x_range[0]:g}) in every "
                "row: intercepts and slopes cannot be told apart, so slope estimates only reflect the prior"
            )
        names = (w["model.response"], w["model.predictor"], w["model.group"])
        common = dict(source=str(path), warnings=warnings, stats=stats)
        if self.kept is None:
            return Dataset(None, None, None, labels, *names, **common,
                           row_count=self.rows_used, sha256=self.digest.hexdigest(labels))  # fmt: skip
        y, x, codes = (np.concatenate(parts) for parts in zip(*self.kept, strict=True))
        return Dataset(y, x, codes, labels, *names, **common)

    def _missing_rows(self) -> list[str]:
        """Refuse rows with missing values, or name them in a warning when they were dropped."""
        bad, where = self.bad, self.where
        if not bad.count:
            return []
        detail = ", ".join(f"{self.wanted[k]}: {n}" for k, n in self.absent.items() if n)
        if self.missing == "refuse":
            raise DataError(
                f"{where.first(bad.rows)}: {bad.count} row(s) have a missing, NaN or infinite value "
                f"or an empty group label ({detail}; {where.lines(bad.rows, bad.count)}); fix the "
                "file, or set data.missing: drop in the spec to drop those rows"
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
    values = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    text = values.astype(str).str.strip()
    missing = values.isna() | text.isin(NULL_TEXT)
    as_num = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = np.flatnonzero((as_num.isna() & ~missing).to_numpy())
    return as_num.to_numpy(np.float64), bad, [_shown(values.iloc[i]) for i in bad[:3]]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
