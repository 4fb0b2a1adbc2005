"""What reading some rows leaves: per-group statistics, labels, counts of bad values; mergeable.

Each partition (a file, or row groups of one) is read into a `Reduced` on
its own, with group codes in its own order of first appearance; `merge`
combines an earlier partition's result with a later one's, so the local
reader folds them in order and Dask merges them pairwise in a tree, with the
same result: labels in order of first appearance across the ordered
partitions. `finish` turns the whole into a Dataset, or the DataError naming
the bad values by file and row.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..model.statistics import GroupStats
from .columns import Wanted
from .dataset import Dataset
from .table_files import RowNames

SHOWN_ROWS = 5  # rows named in a message; the rest are counted


@dataclass
class Found:
    """Rows with one kind of problem: how many, the first few as (file, 0-based row), examples."""

    count: int = 0
    rows: list[tuple[str, int]] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def add(self, path: Path, local: np.ndarray, offset: int, examples=()) -> None:
        self.count += len(local)
        room = SHOWN_ROWS - len(self.rows)
        self.rows += [(str(path), offset + int(i)) for i in local[:room]]
        self.examples += list(examples)[: 3 - len(self.examples)]

    def merged(self, later: Found) -> Found:
        return Found(
            self.count + later.count,
            (self.rows + later.rows)[:SHOWN_ROWS],
            (self.examples + later.examples)[:3],
        )


@dataclass
class Reduced:
    """The statistics and checks of some rows; `labels[c]` is the group of code c."""

    labels: list[str]
    stats: GroupStats | None
    rows_read: int
    rows_used: int
    not_numeric: dict[str, Found]
    absent: dict[str, int]  # per column: rows missing a value
    bad: Found  # rows missing any value
    ranges: dict[str, tuple[float, float]]  # numeric predictors: (min, max) over used rows
    digests: list[tuple[bytes, bytes]]  # per partition: its column hashes, its labels' hash
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None  # (y, X, codes) while kept
    limit: float  # rows kept at most
    where: dict[str, RowNames]  # each file read, in order: how to name its rows

    def merge(self, later: Reduced) -> Reduced:
        """These rows followed by `later`'s: its new groups numbered after ours."""
        import pandas as pd  # here only: `framework validate` need not import pandas

        index = pd.Index(self.labels, dtype=object).get_indexer(
            pd.Index(later.labels, dtype=object)
        )
        new = np.flatnonzero(index < 0)
        index[new] = len(self.labels) + np.arange(len(new))
        labels = self.labels + [later.labels[i] for i in new]
        rows_used = self.rows_used + later.rows_used
        kept = None
        if self.kept is not None and later.kept is not None and rows_used <= self.limit:
            kept = self.kept + [(y, x, index[codes]) for y, x, codes in later.kept]
        return Reduced(
            labels,
            _merge_stats(self.stats, later.stats, index, len(labels)),
            self.rows_read + later.rows_read,
            rows_used,
            {c: f.merged(later.not_numeric[c]) for c, f in self.not_numeric.items()},
            {c: n + later.absent[c] for c, n in self.absent.items()},
            self.bad.merged(later.bad),
            {
                c: (min(lo, later.ranges[c][0]), max(hi, later.ranges[c][1]))
                for c, (lo, hi) in self.ranges.items()
            },  # fmt: skip
            self.digests + later.digests,
            kept,
            self.limit,
            {**self.where, **later.where},
        )

    def hexdigest(self) -> str:
        """SHA-256 of the rows and labels: one partition's as `Dataset.digest`, else of the parts."""
        joined = "\x00".join(self.labels).encode()
        if len(self.digests) == 1:
            h = hashlib.sha256(self.digests[0][0])
        else:  # each part's rows with its own group codes, and its labels
            h = hashlib.sha256()
            for columns, labels in self.digests:
                h.update(hashlib.sha256(columns).digest() + labels)
        h.update(joined)
        return h.hexdigest()


# '2,5' or '-1234,75': a number with a decimal comma, as spreadsheets in many locales export it
# ('1,000' may be a thousands separator: three digits after the comma are left alone).
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,(?:\d{1,2}|\d{4,})$")


def _merge_stats(a: GroupStats | None, b: GroupStats | None, index: np.ndarray, n: int):
    if b is None:
        return None if a is None else a.grow(n)
    placed = GroupStats.empty(n, b.n_columns)
    placed.n[index], placed.mean[index], placed.cross[index] = b.n, b.mean, b.cross
    return placed if a is None else a.grow(n).merge(placed)


def finish(r: Reduced, wanted: Wanted, missing: str, source: str) -> Dataset:
    """The Dataset of everything read, or the DataError that names what is wrong and where."""
    for name, found in r.not_numeric.items():
        if found.count:
            field = wanted.field(name)
            fix = (
                f"pick another column in {field}"
                if field != "model.formula" or name == wanted.response
                else f"declare {name!r} categorical in the spec if its values are labels"
            )
            if all(_DECIMAL_COMMA.match(e.strip("'")) for e in found.examples):
                fix = "save the numbers with a decimal point (2.5, not 2,5)"
            raise DataError(
                f"{_first(r, found)}: column {name!r} ({field}) must be numeric, but "
                f"{found.count} value(s) are not (e.g. {', '.join(found.examples)}; "
                f"{_lines(r, found)}); fix those rows or {fix}"
            )
    what = "the file has" if len(r.where) == 1 else "the data files have"
    if r.rows_read == 0:
        raise DataError(f"{source}: {what} a header but no data rows; add the data")
    warnings = _missing_rows(r, missing)
    if r.rows_used == 0:
        fix = "fix the file" if len(r.where) == 1 else "fix the files"
        raise DataError(f"{source}: no rows are left after dropping the missing values; {fix}")
    labels, group = r.labels, wanted.group
    if len(labels) < 2:
        raise DataError(
            f"{source}: column {group!r} ({wanted.field(group)}) has only one group "
            f"({labels[0]!r}); a hierarchical model needs at least 2 groups: check "
            f"{wanted.field(group)} names the grouping column"
        )
    for name, (lo, hi) in r.ranges.items():
        if lo == hi:
            warnings.append(
                f"the predictor {name!r} is constant ({lo:g}) in every row: intercepts and "
                "slopes cannot be told apart, so its coefficients only reflect the prior"
            )
    common = dict(response=wanted.response, group=group, source=source, warnings=warnings)
    if r.kept is None:
        return Dataset(labels, r.stats, row_count=r.rows_used, sha256=r.hexdigest(), **common)
    y, x, codes = (np.concatenate(parts) for parts in zip(*r.kept, strict=True))
    return Dataset(labels, r.stats, y=y, X=x, codes=codes, **common)


def _missing_rows(r: Reduced, missing: str) -> list[str]:
    """Refuse rows with missing values, or name them in a warning when they were dropped."""
    bad = r.bad
    if not bad.count:
        return []
    detail = ", ".join(f"{k}: {n}" for k, n in r.absent.items() if n)
    if missing == "refuse":
        raise DataError(
            f"{_first(r, bad)}: {bad.count} row(s) have a missing, NaN or infinite value "
            f"or an empty group label or category ({detail}; "
            f"{_lines(r, bad)}); fix the file, or set data.missing: drop in "
            "the spec to drop those rows"
        )
    return [
        f"dropped {bad.count} row(s) with missing or non-finite values ({detail}; {_lines(r, bad)})"
    ]


def _first(r: Reduced, found: Found) -> str:
    path, row = found.rows[0]
    return r.where[path].first([row])


def _lines(r: Reduced, found: Found) -> str:
    """The rows named: as before for one file, else file by file."""
    by_file: dict[str, list[int]] = {}
    for path, row in found.rows:
        by_file.setdefault(path, []).append(row)
    if len(by_file) == 1:
        path, rows = next(iter(by_file.items()))
        return r.where[path].lines(rows, found.count)
    shown = "; ".join(
        f"in {Path(path).name}: {r.where[path].lines(rows)}" for path, rows in by_file.items()
    )
    more = found.count - len(found.rows)
    return shown + (f" and {more} more" if more else "")


def row_limit(keep_rows: bool | int) -> float:
    """Rows to keep at most for `keep_rows` (True all, False none, or a count)."""
    return math.inf if keep_rows is True else (0 if keep_rows is False else keep_rows)
