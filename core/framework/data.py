"""The Dataset: response, predictor and group codes, loaded from a file or simulated."""

from __future__ import annotations

import codecs
import csv
import difflib
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
    def from_frame(
        cls, frame: pd.DataFrame, response: str, predictor: str, group: str, **kw
    ) -> Dataset:
        codes, labels = pd.factorize(frame[group].astype(str), sort=False)
        return cls(
            frame[response].to_numpy(float),
            frame[predictor].to_numpy(float),
            codes,
            list(labels),
            response,
            predictor,
            group,
            **kw,
        )

    def to_frame(self) -> pd.DataFrame:
        labels = np.asarray(self.labels, dtype=object)
        return pd.DataFrame(
            {self.group: labels[self.codes], self.predictor: self.x, self.response: self.y}
        )

    def digest(self) -> str:
        h = hashlib.sha256()
        for arr in (self.y, self.x, self.codes):
            h.update(memoryview(arr).cast("B"))  # the buffer itself: no copy of 10M rows
        h.update("\x00".join(self.labels).encode())
        return h.hexdigest()


def load_dataset(spec: Spec) -> Dataset:
    """The spec's data: simulated, or read from its CSV/Parquet file and checked."""
    if spec.data.simulate is not None:
        from .simulate import simulate

        return simulate(spec)
    try:
        return read_table(
            spec.data_path(),
            spec.model.response,
            spec.model.predictor,
            spec.model.group,
            missing=spec.data.missing,
        )
    except MissingColumn as exc:
        # The fix is in the spec (or the header): point at the spec's line.
        raise DataError(f"{spec.where(*exc.field_path.split('.'))}: {exc}") from None


class MissingColumn(DataError):
    """A column the spec names is not in the data file."""

    def __init__(self, message: str, field_path: str):
        super().__init__(message)
        self.field_path = field_path


def _group_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 for missing) and the distinct labels as text, without a Python loop over rows."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    column = column.unify_dictionaries() if column.num_chunks > 1 else column
    chunks = column.chunks or [pa.array([], pa.dictionary(pa.int32(), pa.string()))]
    dictionary = chunks[0].dictionary
    if not pa.types.is_string(dictionary.type) and not pa.types.is_large_string(dictionary.type):
        dictionary = pc.cast(dictionary, pa.string())
    indices = pa.chunked_array([c.indices for c in chunks]).fill_null(-1)
    return indices.to_numpy().astype(np.int64), dictionary.to_pylist()


def _first_appearance(codes: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Renumber groups in order of first appearance, dropping labels no row uses."""
    first = np.full(len(labels), len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))  # O(rows), no sort of the rows
    used = np.flatnonzero(first < len(codes))
    order = used[np.argsort(first[used])]
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    return remap[codes], [labels[i] for i in order]


def read_table(
    path: Path, response: str, predictor: str, group: str, missing: str = "refuse"
) -> Dataset:
    """Read the three model columns from CSV or Parquet; DataError names the file, line and fix."""
    path = Path(path)
    wanted = {"model.response": response, "model.predictor": predictor, "model.group": group}
    if path.suffix.lower() in (".parquet", ".pq"):
        table, where = _read_parquet(path, wanted), _RowNames(path)
    else:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        table, where = _read_csv(path, wanted, delimiter), _RowNames(path, delimiter)
    if table.num_rows == 0:
        raise DataError(f"{path}: the file has a header but no data rows; add the data")
    y = _numeric(table, response, "model.response", where)
    x = _numeric(table, predictor, "model.predictor", where)
    codes, labels = _group_codes(table.column(group))
    warnings: list[str] = []
    # A missing or blank label is checked on the distinct labels, not on every row.
    blank = np.array([v.strip() == "" for v in labels], dtype=bool)
    no_label = (codes < 0) | (blank[codes] if len(labels) else False)
    bad = ~np.isfinite(y) | ~np.isfinite(x) | no_label
    if bad.any():
        counts = {
            response: int((~np.isfinite(y)).sum()),
            predictor: int((~np.isfinite(x)).sum()),
            group: int(no_label.sum()),
        }
        detail = ", ".join(f"{c}: {k}" for c, k in counts.items() if k)
        rows = np.flatnonzero(bad)
        if missing == "refuse":
            raise DataError(
                f"{where.first(rows)}: {len(rows)} row(s) have a missing, NaN or infinite value or an "
                f"empty group label ({detail}; {where.lines(rows)}); fix the file, or set "
                "data.missing: drop in the spec to drop those rows"
            )
        warnings.append(
            f"dropped {len(rows)} row(s) with missing or non-finite values ({detail}; "
            f"{where.lines(rows)})"
        )
        keep = ~bad
        y, x, codes = y[keep], x[keep], codes[keep]
        if len(y) == 0:
            raise DataError(
                f"{path}: no rows are left after dropping the missing values; fix the file"
            )

    codes, labels = _first_appearance(codes, labels)
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
    if len(labels) < 2:
        raise DataError(
            f"{path}: column {group!r} (model.group) has only one group ({labels[0]!r}); "
            "a hierarchical model needs at least 2 groups: check model.group names the grouping column"
        )
    if np.ptp(x) == 0:
        warnings.append(
            f"the predictor {predictor!r} is constant ({x[0]:g}) in every row: intercepts and "
            "slopes cannot be told apart, so slope estimates only reflect the prior"
        )
    return Dataset(
        y,
        x,
        codes,
        [str(v) for v in labels],
        response,
        predictor,
        group,
        source=str(path),
        warnings=warnings,
    )


class _RowNames:
    """Turns 0-based data row indices into what the user can find: CSV line numbers, or row numbers."""

    def __init__(self, path: Path, delimiter: str | None = None):
        self.path, self.delimiter = path, delimiter

    def first(self, rows) -> str:
        if self.delimiter is None:
            return str(self.path)
        line = self._lines(rows[:1]).get(int(rows[0]))
        return f"{self.path}:{line}" if line else str(self.path)

    def lines(self, rows, most: int = 5) -> str:
        shown = [int(r) for r in rows[:most]]
        more = f" and {len(rows) - most} more" if len(rows) > most else ""
        if self.delimiter is None:
            return f"row(s) {', '.join(str(r + 1) for r in shown)}{more}"
        found = self._lines(shown)
        return f"line(s) {', '.join(str(found.get(r, f'row {r + 1}')) for r in shown)}{more}"

    def _lines(self, rows) -> dict[int, int]:
        # Read again only on the error path: quoted newlines and blank lines (which the
        # CSV reader skips) make line numbers differ from row numbers.
        want, out = {int(r) for r in rows}, {}
        if not want:
            return out
        with self.path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            row, header_seen, start = 0, False, 1
            for record in reader:
                if record:
                    if header_seen:
                        if row in want:
                            out[row] = start
                        row += 1
                        if row > max(want):
                            break
                    header_seen = True
                start = reader.line_num + 1
        return out


def _read_csv(path: Path, wanted: dict[str, str], delimiter: str) -> pa.Table:
    header = _csv_header(path, delimiter)
    _check_columns(path, header, wanted, delimiter)
    group, numeric = wanted["model.group"], [wanted["model.response"], wanted["model.predictor"]]

    def read(numeric_type):
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(dict.fromkeys(wanted.values())),
                column_types={group: pa.string(), **{c: numeric_type for c in numeric}},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    try:
        try:
            return read(pa.float64())
        except pa.ArrowInvalid as exc:
            if "conversion error" not in str(exc) or "UTF8" in str(exc):
                raise
            # Some value is not a number: read as text so every bad value can be named.
            return read(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise DataError(
            _parse_problem(path, delimiter, len(header), str(exc).splitlines()[0])
        ) from None


def _parse_problem(path: Path, delimiter: str, width: int, arrow_message: str) -> str:
    if "UTF8" in arrow_message:
        return _not_utf8(path)
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        start = 1
        try:
            for record in reader:
                if record and len(record) != width:
                    return (
                        f"{path}:{start}: this line has {len(record)} field(s) but the header has "
                        f"{width}; quote values that contain '{delimiter}' or fix the line"
                    )
                start = reader.line_num + 1
        except csv.Error as exc:
            return f"{path}:{start}: cannot parse the CSV ({exc}); check the quotes on this line"
    return f"{path}: cannot parse the CSV ({arrow_message}); check its format"


def _not_utf8(path: Path) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk[: max(exc.start, 0)].count(b"\n")
                return (
                    f"{path}:{line}: the file is not UTF-8 text (byte 0x{chunk[max(exc.start, 0)]:02x}); "
                    "save it as UTF-8 CSV"
                )
            line += chunk.count(b"\n")
            offset += len(chunk)
    return f"{path}: the file is not UTF-8 text; save it as UTF-8 CSV"


def _csv_header(path: Path, delimiter: str) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next((row for row in csv.reader(f, delimiter=delimiter) if row), None)
    except UnicodeDecodeError:
        raise DataError(_not_utf8(path)) from None
    except csv.Error as exc:
        raise DataError(
            f"{path}:1: cannot read the header line ({exc}); check the file is a CSV"
        ) from None
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read the data file ({exc.strerror}); check its permissions"
        ) from None
    if not header:
        raise DataError(f"{path}: the file is empty; it needs a header line and data rows")
    return header


def _read_parquet(path: Path, wanted: dict[str, str]) -> pa.Table:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{path}: cannot read the Parquet file ({str(exc).splitlines()[0]}); "
            "check it is a Parquet file, or export the data again"
        ) from None
    _check_columns(path, schema.names, wanted)
    try:
        return pq.read_table(path, columns=list(dict.fromkeys(wanted.values())))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{path}: cannot read the Parquet file ({str(exc).splitlines()[0]}); export the data again"
        ) from None


def _check_columns(
    path: Path, columns: list[str], wanted: dict[str, str], delimiter: str | None = None
) -> None:
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    clash = [c for c in dupes if c in wanted.values()]
    where = f"{path}:1" if delimiter else str(path)
    if clash:
        raise DataError(
            f"{where}: column name(s) {', '.join(map(repr, clash))} appear more than once in the header; "
            "rename the duplicates"
        )
    for field_path, name in wanted.items():
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
            close = close or [c for c in columns if c.strip().lower() == name.strip().lower()][:1]
            hint = f"; did you mean '{close[0]}'?" if close else ""
            if delimiter and len(columns) == 1:
                other = next(
                    (d for d in (";", "\t", "|") if d in columns[0] and d != delimiter), None
                )
                if other:
                    hint += f"; the file seems to use {other!r} between values: save it with commas"
            shown = ", ".join(repr(c) for c in columns[:30]) + (" ..." if len(columns) > 30 else "")
            raise MissingColumn(
                f"{field_path}: column {name!r} is not in {path}; its columns are: {shown}{hint}",
                field_path,
            )


def _numeric(table: pa.Table, name: str, field_path: str, where: _RowNames) -> np.ndarray:
    col = table.column(name)
    if (
        pa.types.is_integer(col.type)
        or pa.types.is_floating(col.type)
        or pa.types.is_decimal(col.type)
    ):
        return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if pa.types.is_null(col.type):
        return np.full(table.num_rows, np.nan)
    if pa.types.is_boolean(col.type):
        raise DataError(
            f"{where.path}: column {name!r} ({field_path}) holds true/false values, not numbers; "
            f"code them as 0 and 1, or pick another column in {field_path}"
        )
    values = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    text = values.astype(str).str.strip()
    missing = values.isna() | text.isin(NULL_TEXT)
    as_num = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = np.flatnonzero((as_num.isna() & ~missing).to_numpy())
    if len(bad):
        examples = ", ".join(_shown(values.iloc[i]) for i in bad[:3])
        raise DataError(
            f"{where.first(bad)}: column {name!r} ({field_path}) must be numeric, but {len(bad)} value(s) "
            f"are not (e.g. {examples}; {where.lines(bad)}); fix those rows or pick another column "
            f"in {field_path}"
        )
    return as_num.to_numpy(np.float64)


# Text the CSV reader treats as a missing value (pyarrow's defaults).
NULL_TEXT = frozenset(pacsv.ConvertOptions().null_values)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
