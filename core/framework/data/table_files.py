"""The file formats: CSV and Parquet read in batches, and messages that point into the file.

Only this module knows how the bytes are laid out; `framework.data.reading` and
`framework.data.columns` see record batches of the model's columns, never the whole file.
"""

from __future__ import annotations

import codecs
import csv
import difflib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError

# pyarrow.csv and pyarrow.parquet are imported by the reader of their format: neither is
# needed to check a CSV header, and a simulated spec reads no file at all.
if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 1 << 20  # rows per Parquet batch; memory while reading grows with this
CSV_BLOCK_BYTES = 32 << 20  # bytes per CSV batch (about a million rows of three short columns)


class MissingColumn(DataError):
    """A column the spec names is not in the data file."""

    def __init__(self, message: str, field_path: str):
        super().__init__(message)
        self.field_path = field_path

    def __reduce__(self):  # raised in a Dask worker, it crosses to the client whole
        return (type(self), (str(self), self.field_path))


class RowNames:
    """Turns 0-based data row indices into what the user can find: CSV line numbers, or row numbers."""

    def __init__(self, path: Path, delimiter: str | None = None):
        self.path, self.delimiter = path, delimiter

    def first(self, rows) -> str:
        if self.delimiter is None:
            return str(self.path)
        line = self._lines(rows[:1]).get(int(rows[0]))
        return f"{self.path}:{line}" if line else str(self.path)

    def lines(self, rows, total: int | None = None, most: int = 5) -> str:
        """Name the first `most` of `rows`; `total` counts rows beyond those listed."""
        total = len(rows) if total is None else total
        shown = [int(r) for r in rows[:most]]
        more = f" and {total - len(shown)} more" if total > len(shown) else ""
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


class NotNumeric(Exception):
    """A CSV column meant to be numeric holds text; read it again as text to name the values."""


def record_batches(
    path: Path,
    wanted: dict[str, str],
    text: Iterable[str] = (),
    numeric: Iterable[str] = (),
    numeric_as_text: bool = False,
    row_groups: tuple[int, ...] | None = None,
) -> tuple[Iterator[pa.RecordBatch], RowNames]:
    """Some columns of a CSV or Parquet file, one batch at a time, and how to name its rows.

    `wanted` maps each column to read to the spec field that names it (for
    messages); CSV columns in `text` are read as text, those in `numeric` as
    numbers. A missing column raises `MissingColumn`, an unreadable file
    `DataError`, a CSV number column holding text `NotNumeric` (unless
    `numeric_as_text`, which reads them as text so every bad value can be named).
    `row_groups` reads only those row groups of a Parquet file (a partition).
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return _parquet_batches(path, wanted, set(text), row_groups), RowNames(path)
    import pyarrow as pa

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    types = {c: pa.string() for c in text}
    types.update({c: pa.string() if numeric_as_text else pa.float64() for c in numeric})
    return _csv_batches(path, wanted, delimiter, types, numeric_as_text), RowNames(path, delimiter)


def columns_in(path: Path, wanted: dict[str, str]) -> pa.Schema | None:
    """The Parquet file's schema (None for CSV), after checking the wanted columns are there."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        schema = _parquet_schema(path)
        _check_columns(path, schema.names, wanted)
        return schema
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    _check_columns(path, _csv_header(path, delimiter), wanted, delimiter)
    return None


def _csv_batches(path: Path, wanted: dict[str, str], delimiter: str, types: dict, as_text: bool):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _csv_header(path, delimiter)
    _check_columns(path, header, wanted, delimiter)
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(wanted),
                column_types=types,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        yield from reader
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        if "conversion error" in first and "UTF8" not in first and not as_text:
            raise NotNumeric from None
        raise DataError(_parse_problem(path, delimiter, len(header), first)) from None


def _parquet_schema(path: Path) -> pa.Schema:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{path}: cannot read the Parquet file ({str(exc).splitlines()[0]}); "
            "check it is a Parquet file, or export the data again"
        ) from None


def _parquet_batches(path: Path, wanted: dict[str, str], text: set[str], row_groups=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema(path)
    _check_columns(path, schema.names, wanted)
    # Text columns come as dictionary arrays: a batch's labels are then encoded once, not per row.
    dictionary = [c for c in text if pa.types.is_string(schema.field(c).type)
                  or pa.types.is_large_string(schema.field(c).type)]  # fmt: skip
    try:
        file = pq.ParquetFile(path, read_dictionary=dictionary)
        yield from file.iter_batches(BATCH_ROWS, row_groups=row_groups, columns=list(wanted))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{path}: cannot read the Parquet file ({str(exc).splitlines()[0]}); export the data again"
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


def _check_columns(
    path: Path, columns: list[str], wanted: dict[str, str], delimiter: str | None = None
) -> None:
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    clash = [c for c in dupes if c in wanted]
    where = f"{path}:1" if delimiter else str(path)
    if clash:
        raise DataError(
            f"{where}: column name(s) {', '.join(map(repr, clash))} appear more than once in the header; "
            "rename the duplicates"
        )
    for name, field_path in wanted.items():
        if name not in columns:
            spaced = [c for c in columns if c != name and c.strip() == name.strip()]
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
            close = close or [c for c in columns if c.strip().lower() == name.strip().lower()][:1]
            hint = f"; did you mean '{close[0]}'?" if close else ""
            if spaced:  # spreadsheets keep the spaces typed around a header name
                hint = (
                    f"; the header has {spaced[0]!r}, with spaces around the name: remove them "
                    "from the file's header line"
                )
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
