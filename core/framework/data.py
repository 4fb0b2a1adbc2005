"""The Dataset: response, predictor and group codes, loaded from a file or simulated."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import DataError
from .spec import Spec
from .stats import GroupStats, reduce_chunks

CHUNK_ROWS = 1_000_000


@dataclass
class Dataset:
    """Rows of (y, x, group code) plus group labels in order of first appearance."""

    y: np.ndarray
    x: np.ndarray
    codes: np.ndarray
    labels: list[str]
    response: str = "y"
    predictor: str = "x"
    group: str = "group"
    source: str = "<memory>"
    truth: dict | None = None
    warnings: list[str] = field(default_factory=list)
    stats: GroupStats | None = None

    def __post_init__(self):
        self.y = np.ascontiguousarray(self.y, dtype=np.float64)
        self.x = np.ascontiguousarray(self.x, dtype=np.float64)
        self.codes = np.ascontiguousarray(self.codes, dtype=np.int64)
        self.labels = [str(g) for g in self.labels]
        if self.stats is None:
            self.stats = reduce_chunks(self._chunks(), self.n_groups)

    def _chunks(self):
        for start in range(0, len(self.y), CHUNK_ROWS):
            end = start + CHUNK_ROWS
            yield self.codes[start:end], self.x[start:end], self.y[start:end]

    @property
    def n_rows(self) -> int:
        return len(self.y)

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, response: str, predictor: str, group: str, **kw) -> Dataset:
        codes, labels = pd.factorize(frame[group].astype(str), sort=False)
        return cls(frame[response].to_numpy(float), frame[predictor].to_numpy(float), codes,
                   list(labels), response, predictor, group, **kw)

    def to_frame(self) -> pd.DataFrame:
        labels = np.asarray(self.labels, dtype=object)
        return pd.DataFrame({self.group: labels[self.codes], self.predictor: self.x, self.response: self.y})

    def digest(self) -> str:
        h = hashlib.sha256()
        for arr in (self.y, self.x, self.codes):
            h.update(arr.tobytes())
        h.update("\x00".join(self.labels).encode())
        return h.hexdigest()


def load_dataset(spec: Spec) -> Dataset:
    """The spec's data: simulated, or read from its CSV/Parquet file and checked."""
    if spec.data.simulate is not None:
        from .simulate import simulate

        return simulate(spec)
    return read_table(spec.data_path(), spec.model.response, spec.model.predictor,
                      spec.model.group, missing=spec.data.missing)


def read_table(path: Path, response: str, predictor: str, group: str, missing: str = "refuse") -> Dataset:
    """Read the three model columns from CSV or Parquet; DataError names the file and fix."""
    path = Path(path)
    wanted = {"model.response": response, "model.predictor": predictor, "model.group": group}
    table = _read_parquet(path, wanted) if path.suffix.lower() in (".parquet", ".pq") else _read_csv(path, wanted)
    if table.num_rows == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    y = _numeric(table, response, path, "model.response")
    x = _numeric(table, predictor, path, "model.predictor")
    g = table.column(group)
    if not pa.types.is_string(g.type) and not pa.types.is_large_string(g.type):
        g = pc.cast(g, pa.string())
    labels_col = g.to_numpy(zero_copy_only=False)
    warnings: list[str] = []

    bad = ~np.isfinite(y) | ~np.isfinite(x) | pd.isna(labels_col)
    if bad.any():
        counts = {
            response: int((~np.isfinite(y)).sum()),
            predictor: int((~np.isfinite(x)).sum()),
            group: int(pd.isna(labels_col).sum()),
        }
        detail = ", ".join(f"{c}: {k}" for c, k in counts.items() if k)
        lines = _line_numbers(np.flatnonzero(bad))
        if missing == "refuse":
            raise DataError(
                f"{path}: {int(bad.sum())} row(s) have missing, NaN or infinite values ({detail}; "
                f"first at {lines}); fix the file or set data.missing: drop in the spec to drop them"
            )
        warnings.append(f"dropped {int(bad.sum())} row(s) with missing or non-finite values ({detail})")
        keep = ~bad
        y, x, labels_col = y[keep], x[keep], labels_col[keep]
        if len(y) == 0:
            raise DataError(f"{path}: no rows are left after dropping the missing values")

    codes, labels = pd.factorize(labels_col, sort=False)
    if len(labels) < 2:
        raise DataError(
            f"{path}: column '{group}' (model.group) has only one group ({labels[0]!r}); "
            "a hierarchical model needs at least 2 groups"
        )
    if np.ptp(x) == 0:
        warnings.append(
            f"the predictor '{predictor}' is constant ({x[0]:g}) in every row: intercepts and "
            "slopes cannot be told apart, so slope estimates only reflect the prior"
        )
    return Dataset(y, x, codes, [str(v) for v in labels], response, predictor, group,
                   source=str(path), warnings=warnings)


def _read_csv(path: Path, wanted: dict[str, str]) -> pa.Table:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header = _csv_header(path, delimiter)
    _check_columns(path, header, wanted)
    group = wanted["model.group"]
    try:
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(dict.fromkeys(wanted.values())),
                column_types={group: pa.string()},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse the CSV ({str(exc).splitlines()[0]}); check its format") from None


def _csv_header(path: Path, delimiter: str) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f, delimiter=delimiter), None)
    except UnicodeDecodeError:
        raise DataError(f"{path}: the file is not UTF-8 text; save it as UTF-8 CSV") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the data file ({exc.strerror}); check its permissions") from None
    if not header:
        raise DataError(f"{path}: the file is empty; it needs a header line and data rows")
    return header


def _read_parquet(path: Path, wanted: dict[str, str]) -> pa.Table:
    try:
        schema = pq.read_schema(path)
        _check_columns(path, schema.names, wanted)
        return pq.read_table(path, columns=list(dict.fromkeys(wanted.values())))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read the Parquet file ({str(exc).splitlines()[0]})") from None


def _check_columns(path: Path, columns: list[str], wanted: dict[str, str]) -> None:
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    clash = [c for c in dupes if c in wanted.values()]
    if clash:
        raise DataError(f"{path}: column name(s) {', '.join(map(repr, clash))} appear more than once; rename the duplicates")
    for field_path, name in wanted.items():
        if name not in columns:
            raise DataError(
                f"{path}: {field_path} names column '{name}', which is not in the data; "
                f"the columns are: {', '.join(columns)}"
            )


def _numeric(table: pa.Table, name: str, path: Path, field_path: str) -> np.ndarray:
    col = table.column(name)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, np.nan)
    values = pd.Series(col.to_numpy(zero_copy_only=False))
    as_num = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(as_num.isna() & values.notna() & (values.astype(str).str.strip() != ""))
    if len(bad):
        examples = ", ".join(repr(values.iloc[i]) for i in bad[:3])
        raise DataError(
            f"{path}: column '{name}' ({field_path}) must be numeric, but {len(bad)} value(s) are not "
            f"(e.g. {examples}, at {_line_numbers(bad)}); fix those rows or pick another column"
        )
    return as_num.to_numpy(np.float64)


def _line_numbers(rows: np.ndarray, most: int = 5) -> str:
    # Line 1 is the header, so data row i (0-based) is on line i + 2.
    shown = ", ".join(str(int(r) + 2) for r in rows[:most])
    more = f" and {len(rows) - most} more" if len(rows) > most else ""
    return f"line(s) {shown}{more}"
