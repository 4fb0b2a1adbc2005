"""Where the data are: `data.path` as an ordered list of files, and those files as partitions.

`data.path` may name one file, a folder of data files, or a glob
(`events/*.parquet`). The files are taken in order of their names, so group
order (first appearance across the files, in that order) does not depend on
the file system. A partition is a file, or a range of row groups of a large
Parquet file: the unit one reading task reduces.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
WILDCARDS = frozenset("*?[")
# Rows per partition of a large Parquet file (whole row groups): enough to amortise a task,
# few enough that a worker's batch buffers stay small and two workers share the work.
PARTITION_ROWS = 4_000_000


@dataclass(frozen=True)
class Partition:
    """Rows a task reads: a whole file, or some of a Parquet file's row groups."""

    path: Path
    row_groups: tuple[int, ...] | None = None  # None: the whole file
    first_row: int = 0  # the file's 0-based data row this partition starts at (for messages)


def is_pattern(path: Path | str) -> bool:
    """Whether a path is a glob (has *, ? or [ in it)."""
    return any(ch in WILDCARDS for ch in str(path))


def data_files(path: Path) -> list[Path]:
    """The data files `path` stands for, sorted by name; DataError says why there are none."""
    path = Path(path)
    if is_pattern(path):
        found = [Path(p) for p in glob.glob(str(path)) if Path(p).is_file()]
        if not found:
            raise DataError(
                f"{path}: the pattern matches no file; check the folder and the pattern "
                "(relative to the spec's folder)"
            )
        return _one_format(sorted(found), path)
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES]
        found = [p for p in found if not p.name.startswith((".", "_"))]  # _SUCCESS, .crc files
        if not found:
            raise DataError(
                f"{path}: the folder holds no .csv or .parquet file; point data.path at the data"
            )
        return _one_format(sorted(found), path)
    return [path]


def _one_format(files: list[Path], path: Path) -> list[Path]:
    kinds = {_format(p) for p in files}
    if None in kinds:
        odd = next(p for p in files if _format(p) is None)
        raise DataError(
            f"{path}: {odd.name} is neither .csv nor .parquet; narrow the pattern to the data files"
        )
    if len(kinds) > 1:
        raise DataError(
            f"{path}: mixes CSV and Parquet files ({files[0].name}, "
            f"{next(p.name for p in files if _format(p) != _format(files[0]))}); "
            "keep one format, or narrow the pattern (e.g. *.parquet)"
        )
    return files


def _format(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    return "text" if suffix in DATA_SUFFIXES else None


def partitions(files: list[Path], rows: int | None = None) -> list[Partition]:
    """The files as partitions in order: a large Parquet file split at row-group boundaries."""
    rows = rows or PARTITION_ROWS
    import pyarrow as pa  # here, not at import: a spec check needs no Arrow
    import pyarrow.parquet as pq

    out = []
    for path in files:
        if path.suffix.lower() not in PARQUET_SUFFIXES:
            out.append(Partition(path))
            continue
        try:
            meta = pq.ParquetFile(path).metadata
        except (pa.ArrowInvalid, OSError):
            out.append(Partition(path))  # the reading task names the problem
            continue
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        if sum(sizes) <= rows or len(sizes) < 2:
            out.append(Partition(path))
            continue
        start, first, count = 0, 0, 0
        for i, size in enumerate(sizes):
            count += size
            if count >= rows or i == len(sizes) - 1:
                out.append(Partition(path, tuple(range(start, i + 1)), first))
                start, first, count = i + 1, first + count, 0
    return out
