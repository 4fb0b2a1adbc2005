"""Reading data files in one streaming pass: checks, group codes, statistics, and the rows if wanted.

Each record batch is checked (numbers, missing values, labels), given group
codes in order of first appearance, turned into the model's design columns
W = [X, y] by `Model.design`, handed to `reduce_chunks` (the replaceable
reduction step) and let go: unless the rows are kept, memory grows with the
number of groups, not rows. `read_partition` does this for one partition (a
file, or row groups of one) into a mergeable `Reduced`; the local reader here
folds the partitions in order, `framework.data.dask_reduce` merges them on Dask.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from ..model.model import Model
from ..model.statistics import reduce_chunks
from .columns import Wanted, as_number_text, null_texts, value_texts
from .dataset import Dataset, RowDigest
from .reduced import Found, Reduced, finish, row_limit
from .sources import Partition, data_files
from .table_files import NotNumeric, record_batches


def read_table(
    path: Path,
    model: Model,
    missing: str = "refuse",
    keep_rows: bool | int = True,
    fields: dict[str, str] | None = None,
) -> Dataset:
    """Read the model's columns of a CSV or Parquet file (or folder, or glob); DataError names the fix.

    `keep_rows`: True keeps every row in the Dataset, False none (only the
    per-group statistics), an integer keeps them when there are at most that
    many. `fields` maps columns to the spec field naming them, for messages.
    """
    parts = [Partition(f) for f in data_files(Path(path))]
    return read_partitions(parts, model, missing, keep_rows, fields, source=str(path))


def read_partitions(
    parts: list[Partition],
    model: Model,
    missing: str = "refuse",
    keep_rows: bool | int = True,
    fields: dict[str, str] | None = None,
    source: str | None = None,
) -> Dataset:
    """Read partitions one after the other, in this process, into one Dataset."""
    wanted = wanted_of(model, fields)
    total = None
    for part in parts:
        done = read_partition(part, model, wanted, missing, row_limit(keep_rows))
        total = done if total is None else total.merge(done)
    return finish(total, wanted, missing, source or str(parts[0].path))


def wanted_of(model: Model, fields: dict[str, str] | None = None) -> Wanted:
    """The columns `model` reads; `fields` maps them to the spec fields naming them."""
    predictors = tuple(c for c in model.columns if c not in (model.response, model.group))
    return Wanted(model.response, model.group, predictors, fields=fields or {})


def read_partition(
    part: Partition, model: Model, wanted: Wanted, missing: str, limit: float
) -> Reduced:
    """Check and reduce one partition: the one code path both engines run."""
    try:
        return _Pass(model, wanted, missing, limit, part).read(False)
    except NotNumeric:
        # Some value is not a number: read again as text so every bad value can be named.
        return _Pass(model, wanted, missing, limit, part).read(True)
    finally:
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise


class _Pass:
    """One pass over the batches of a partition."""

    def __init__(self, model: Model, wanted: Wanted, missing: str, limit: float, part: Partition):
        self.model, self.wanted, self.missing, self.part = model, wanted, missing, part
        self.path, self.limit = Path(part.path), limit
        cols = model.columns
        self.numeric = [wanted.response] + [c for c in wanted.predictors if not cols[c].categorical]
        self.categorical = [c for c in wanted.predictors if cols[c].categorical]
        self.levels = {c: {v: i for i, v in enumerate(cols[c].levels)} for c in self.categorical}
        self.not_numeric = {c: Found() for c in self.numeric}
        self.absent = dict.fromkeys(wanted.all_fields(), 0)  # per column: rows missing a value
        self.bad = Found()  # rows with any of those
        self.labels = _Labels()
        self.digest = RowDigest()
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = []
        self.rows_read = self.rows_used = 0
        self.ranges = {c: (np.inf, -np.inf) for c in self.numeric[1:]}

    def read(self, numeric_as_text: bool) -> Reduced:
        batches, where = record_batches(
            self.path,
            self.wanted.all_fields(),
            text=[*self.categorical, self.wanted.group],
            numeric=self.numeric,
            numeric_as_text=numeric_as_text,
            row_groups=self.part.row_groups,
        )
        try:
            stats = reduce_chunks(chunk for batch in batches if (chunk := self._checked(batch)))
        except ValueError:
            if self.rows_used:
                raise
            stats = None  # nothing usable: `finish` says why, if no other partition has rows
        labels = self.labels.labels
        columns = self.digest.columns_digest()
        return Reduced(
            labels, stats, self.rows_read, self.rows_used, self.not_numeric, self.absent,
            self.bad, self.ranges, [(columns, _labels_hash(labels))], self.kept, self.limit,
            {str(self.path): where},
        )  # fmt: skip

    def _checked(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray] | None:
        """The batch's usable rows as (codes, W = [X, y]), after counting what is wrong in it."""
        offset, n = self.part.first_row + self.rows_read, batch.num_rows
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
            self.bad.add(self.path, np.flatnonzero(bad), offset)
            keep = ~bad
            values = {name: v[keep] for name, v in values.items()}
            local = local[keep]
        if self._refusing():
            return None  # the data will be refused: only count what is wrong from here on
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
            self.not_numeric[name].add(self.path, bad, offset, examples)
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


def _labels_hash(labels: list[str]) -> bytes:
    """SHA-256 of a partition's own labels (its part of a many-partition digest)."""
    return hashlib.sha256("\x00".join(labels).encode()).digest()


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
    import pandas as pd  # here only: `framework validate` need not import pandas

    values = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    text = values.astype(str).str.strip()
    missing = values.isna() | text.isin(null_texts())
    as_num = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = np.flatnonzero((as_num.isna() & ~missing).to_numpy())
    return as_num.to_numpy(np.float64), bad, [_shown(values.iloc[i]) for i in bad[:3]]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
