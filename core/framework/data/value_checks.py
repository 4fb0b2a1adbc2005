"""Checks on the values a data set holds, from its per-group statistics: too large, or no variation.

Reading already refuses text, NaN and infinities row by row. Two faults show
only in the sums: a finite value so large that its square overflows (one y of
1e300 turns the centred cross-products into inf, and the sampler into a page of
warnings), and a response with no variation at all (the likelihood has no
scale: R-hat 1e16). Both are found from the statistics alone; only on that error
path are the files read again, to name the column and the first rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..model.model import Model
from ..model.statistics import LARGEST_VALUE as LARGEST
from .dataset import Dataset

SHOWN_ROWS = 5


def check_values(
    dataset: Dataset, model: Model, path: Path | None = None, fields: dict[str, str] | None = None
) -> None:
    """DataError if some value is too large to compute with, or the response never varies."""
    stats = dataset.stats
    if stats is None:
        return
    fields = fields or {}
    n = stats.n[:, None]
    with np.errstate(all="ignore"):
        # Sum of squares per group and column (design columns, then y): >= the largest square.
        squares = np.diagonal(stats.cross, axis1=1, axis2=2) + n * stats.mean**2
    too_large = ~np.isfinite(squares) | (squares > LARGEST**2)
    if too_large.any():
        raise DataError(_too_large(model, too_large.any(axis=0), path, fields))
    used = stats.n > 0
    y_mean, y_cross = stats.mean[used, -1], stats.cross[used, -1, -1]
    if np.all(y_cross == 0) and np.all(y_mean == y_mean[0]):
        field = fields.get(model.response, "model.response")
        where = path if path is not None else dataset.source
        raise DataError(
            f"{where}: column {model.response!r} ({field}) has the same value ({y_mean[0]:g}) in "
            "every row: a response without variation leaves nothing to fit; check that "
            f"{field} names the column you mean to model"
        )


def _too_large(model: Model, columns: np.ndarray, path: Path | None, fields) -> str:
    """The message: the data columns (and first rows) holding values beyond LARGEST."""
    numeric = [model.response] + [
        c for c in model.columns if c not in (model.response, model.group)
        and not model.columns[c].categorical
    ]  # fmt: skip
    found = _rows_beyond(path, numeric, fields) if path is not None else {}
    fix = f"values beyond ±{LARGEST:g} overflow when squared; rescale the column or fix those rows"
    if found:
        column, (where, count, example, lines) = next(iter(found.items()))
        return (
            f"{where}: column {column!r} ({fields.get(column, 'model.formula')}) holds {count} "
            f"value(s) too large to compute with (e.g. {example:g}; {lines}); {fix}"
        )
    names = [*model.term_names, model.response]
    shown = ", ".join(repr(names[i]) for i in np.flatnonzero(columns))
    return (
        f"{path if path is not None else 'the data'}: the design column(s) {shown} reach values "
        f"too large to compute with (their squares overflow); {fix}"
    )


def _rows_beyond(path: Path, columns: list[str], fields) -> dict:
    """Per column: where (FILE:LINE), how many, an example and the first lines beyond LARGEST."""
    from .sources import data_files
    from .table_files import record_batches

    for file in data_files(Path(path)):
        wanted = {c: fields.get(c, "model.formula") for c in columns}
        batches, names = record_batches(file, wanted, numeric=columns)
        counts: dict[str, int] = {}
        rows: dict[str, list[int]] = {}
        examples: dict[str, float] = {}
        offset = 0
        for batch in batches:
            for column in columns:
                values = batch.column(column).to_numpy(zero_copy_only=False).astype(float)
                with np.errstate(invalid="ignore"):
                    beyond = np.flatnonzero(np.abs(values) > LARGEST)
                if len(beyond):
                    counts[column] = counts.get(column, 0) + len(beyond)
                    rows.setdefault(column, []).extend((offset + beyond[:SHOWN_ROWS]).tolist())
                    examples.setdefault(column, float(values[beyond[0]]))
            offset += batch.num_rows
        if counts:
            return {
                c: (names.first(rows[c]), counts[c], examples[c], names.lines(rows[c], counts[c]))
                for c in columns
                if c in counts
            }
    return {}
