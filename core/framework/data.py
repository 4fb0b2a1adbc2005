"""The Dataset: per-group statistics and, when kept, the rows; loaded from a file or simulated."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataError
from .spec import Spec
from .stats import GroupStats, reduce_chunks

CHUNK_ROWS = 1_000_000


@dataclass
class Dataset:
    """Group labels in order of first appearance, per-group statistics and the rows (y, x, code).

    The rows may be left out (`y`, `x`, `codes` None): a file too large to
    hold is reduced while it is read, and `row_count`, `sha256` and `stats`
    say what it held. Method "full" needs the rows; "marginal" only `stats`.
    """

    y: np.ndarray | None
    x: np.ndarray | None
    codes: np.ndarray | None
    labels: list[str]
    response: str = "y"
    predictor: str = "x"
    group: str = "group"
    source: str = "<memory>"
    truth: dict | None = None
    warnings: list[str] = field(default_factory=list)
    stats: GroupStats | None = None
    row_count: int | None = None
    sha256: str | None = None

    def __post_init__(self):
        self.labels = [str(g) for g in self.labels]
        if self.y is None:
            if self.stats is None or self.row_count is None or self.sha256 is None:
                raise ValueError("a Dataset without rows needs stats, row_count and sha256")
            return
        self.y = np.ascontiguousarray(self.y, dtype=np.float64)
        self.x = np.ascontiguousarray(self.x, dtype=np.float64)
        self.codes = np.ascontiguousarray(self.codes, dtype=np.int64)
        if self.stats is None:
            self.stats = reduce_chunks(self._chunks(), self.n_groups)

    @property
    def has_rows(self) -> bool:
        return self.y is not None

    def without_rows(self) -> Dataset:
        """The same data as statistics only (what a run keeps when the rows are not wanted)."""
        return dataclasses.replace(
            self, y=None, x=None, codes=None, row_count=self.n_rows, sha256=self.digest()
        )

    def _chunks(self):
        for start in range(0, len(self.y), CHUNK_ROWS):
            end = start + CHUNK_ROWS
            yield self.codes[start:end], self.x[start:end], self.y[start:end]

    @property
    def n_rows(self) -> int:
        return len(self.y) if self.has_rows else self.row_count

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
        if not self.has_rows:
            raise ValueError("this Dataset holds per-group statistics only, not rows")
        labels = np.asarray(self.labels, dtype=object)
        return pd.DataFrame(
            {self.group: labels[self.codes], self.predictor: self.x, self.response: self.y}
        )

    def digest(self) -> str:
        """SHA-256 of the rows and labels; the same whether computed here or while streaming."""
        if not self.has_rows:
            return self.sha256
        digest = RowDigest()  # computed each time: the arrays may have been changed in place
        for codes, x, y in self._chunks():
            digest.update(y, x, codes)
        return digest.hexdigest(self.labels)


class RowDigest:
    """SHA-256 of (y, x, codes) fed in batches: one hash per column, so batch sizes do not matter."""

    def __init__(self):
        self._columns = [hashlib.sha256() for _ in range(3)]

    def update(self, y: np.ndarray, x: np.ndarray, codes: np.ndarray) -> None:
        arrays = (y.astype(np.float64, copy=False), x.astype(np.float64, copy=False),
                  codes.astype(np.int64, copy=False))  # fmt: skip
        for h, arr in zip(self._columns, arrays, strict=True):
            h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))  # no copy when contiguous

    def hexdigest(self, labels: list[str]) -> str:
        h = hashlib.sha256(b"".join(c.digest() for c in self._columns))
        h.update("\x00".join(labels).encode())
        return h.hexdigest()


def load_dataset(spec: Spec, keep_rows: bool | int = True) -> Dataset:
    """The spec's data: simulated, or read from its CSV/Parquet file and checked.

    `keep_rows` as in `framework.read_table`: True, False, or keep at most that many rows.
    """
    from .reading import read_table
    from .table_files import MissingColumn

    if spec.data.simulate is not None:
        from .simulate import simulate

        dataset = simulate(spec)
        if keep_rows is True or (keep_rows is not False and dataset.n_rows <= keep_rows):
            return dataset
        return dataset.without_rows()
    try:
        return read_table(
            spec.data_path(),
            spec.model.response,
            spec.model.predictor,
            spec.model.group,
            missing=spec.data.missing,
            keep_rows=keep_rows,
        )
    except MissingColumn as exc:
        # The fix is in the spec (or the header): point at the spec's line.
        raise DataError(f"{spec.where(*exc.field_path.split('.'))}: {exc}") from None
