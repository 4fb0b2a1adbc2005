"""CSV cells a spreadsheet would run as formulas, neutralised the way OWASP recommends.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula, so a group label
`=HYPERLINK(...)` in the data would run when estimates.csv is opened. Such a
cell is written with a single quote in front (`'=HYPERLINK(...)`), which the
spreadsheets show as text. Numbers are left alone (a column of numbers, or a
text cell that is just a number such as `-5`), and so are cells that already
start with quotes before a plain character. The rule is reversible:
`restore` gives back the text as it was (a label that itself begins with
quotes before a trigger gets one more quote, which `restore` removes).
"""

from __future__ import annotations

import re

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


# A plain decimal number, as a spreadsheet reads one (not Python's `1_0`, `inf` or `nan`).
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def _risky(text: str) -> bool:
    body = text.lstrip("'")
    return body[:1] in TRIGGERS and not _number(body)


def neutralise_cell(value):
    """One cell as it is written: text a spreadsheet would execute gets a leading `'`."""
    if isinstance(value, str) and _risky(value):
        return "'" + value
    return value


def restore_cell(value):
    """The text a neutralised cell was before writing (the inverse of `neutralise_cell`)."""
    if isinstance(value, str) and value.startswith("'") and _risky(value[1:]):
        return value[1:]
    return value


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every risky text cell (and column name) quoted; numeric columns untouched."""
    out = frame.rename(columns=neutralise_cell)  # a new frame: the caller's is not changed
    for i in range(out.shape[1]):
        values = out.iloc[:, i]
        if isinstance(values.dtype, pd.CategoricalDtype):
            categories = [neutralise_cell(c) for c in values.cat.categories]
            out.isetitem(i, values.cat.rename_categories(categories))
        elif not pd.api.types.is_numeric_dtype(values.dtype):
            # Labels repeat (a row per group and term): look at each distinct text once.
            risky = {v: neutralise_cell(v) for v in pd.unique(values.to_numpy()) if _risky_text(v)}
            if risky:
                out.isetitem(i, values.replace(risky))
    return out


def _risky_text(value) -> bool:
    return isinstance(value, str) and _risky(value)


def write_csv(frame: pd.DataFrame, path) -> None:
    """Write `frame` (no index) with risky cells neutralised and every cell readable back.

    Python's csv writer quotes a cell holding a line end of the file's own kind only,
    so a label with a bare carriage return would split its row for readers that take
    CR as a line end; such a file is written with CRLF line ends, which quotes it.
    """
    out = neutralised(frame)
    texts = [out.columns.astype(str)] + [
        out[c].cat.categories if isinstance(out[c].dtype, pd.CategoricalDtype) else out[c].unique()
        for c in out.columns
        if not pd.api.types.is_numeric_dtype(out[c].dtype)
    ]
    has_cr = any(isinstance(v, str) and "\r" in v for values in texts for v in values)
    out.to_csv(path, index=False, lineterminator="\r\n" if has_cr else "\n")
