"""The Dataset: per-group statistics and, when kept, the rows (loaded by `framework.data.load`)."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..model.statistics import GroupStats, reduce_chunks

CHUNK_ROWS = 1_000_000


@dataclass
class Dataset:
    """Group labels in order of first appearance, per-group statistics and the rows (y, X, codes).

    `X` is the model's design matrix (rows x terms), `y` the response and
    `codes` each row's group (an index into `labels`). The rows may be left out
    (all three None): a file too large to hold is reduced while it is read, and
    `row_count`, `sha256` and `stats` say what it held. Method "full" needs the
    rows; "marginal" only `stats` (over the columns [X, y]).
    """

    labels: list[str]
    stats: GroupStats | None = None
    y: np.ndarray | None = None
    X: np.ndarray | None = None
    codes: np.ndarray | None = None
    response: str = "y"
    group: str = "group"
    source: str = "<memory>"
    truth: dict | None = None
    warnings: list[str] = field(default_factory=list)
    row_count: int | None = None
    sha256: str | None = None

    def __post_init__(self):
        self.labels = [str(g) for g in self.labels]
        if self.y is None:
            if self.stats is None or self.row_count is None or self.sha256 is None:
                raise ValueError("a Dataset without rows needs stats, row_count and sha256")
            return
        self.y = np.ascontiguousarray(self.y, dtype=np.float64)
        self.X = np.asarray(self.X, dtype=np.float64)
        self.X = self.X[:, None] if self.X.ndim == 1 else self.X
        self.codes = np.ascontiguousarray(self.codes, dtype=np.int64)
        if self.stats is None:
            self.stats = reduce_chunks(self._chunks(), self.n_groups)

    @property
    def has_rows(self) -> bool:
        return self.y is not None

    def without_rows(self) -> Dataset:
        """The same data as statistics only (what a run keeps when the rows are not wanted)."""
        return dataclasses.replace(
            self, y=None, X=None, codes=None, row_count=self.n_rows, sha256=self.digest()
        )

    def _chunks(self):
        for start in range(0, len(self.y), CHUNK_ROWS):
            end = start + CHUNK_ROWS
            w = np.column_stack([self.X[start:end], self.y[start:end]])
            yield self.codes[start:end], w

    @property
    def n_rows(self) -> int:
        return len(self.y) if self.has_rows else self.row_count

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    def digest(self) -> str:
        """SHA-256 of the rows and labels; the same whether computed here or while streaming."""
        if not self.has_rows:
            return self.sha256
        digest = RowDigest()  # computed each time: the arrays may have been changed in place
        for start in range(0, len(self.y), CHUNK_ROWS):
            end = start + CHUNK_ROWS
            digest.update(self.y[start:end], self.X[start:end], self.codes[start:end])
        return digest.hexdigest(self.labels)


class RowDigest:
    """SHA-256 of the rows fed in batches: one hash per column, so batch sizes do not matter.

    The columns are y, each design column of X (what the model fits: the same
    file under another formula gives another digest) and the group codes.
    """

    def __init__(self):
        self._columns: list = []

    def update(self, y: np.ndarray, X: np.ndarray, codes: np.ndarray) -> None:
        X = np.asarray(X, dtype=np.float64)
        X = X[:, None] if X.ndim == 1 else X
        arrays = [np.asarray(y, dtype=np.float64), *X.T, np.asarray(codes, dtype=np.int64)]
        if not self._columns:
            self._columns = [hashlib.sha256() for _ in arrays]
        for h, arr in zip(self._columns, arrays, strict=True):
            h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))  # no copy when contiguous

    def columns_digest(self) -> bytes:
        """The column hashes so far, joined (what `hexdigest` hashes with the labels)."""
        return b"".join(c.digest() for c in self._columns)

    def hexdigest(self, labels: list[str]) -> str:
        h = hashlib.sha256(self.columns_digest())
        h.update("\x00".join(labels).encode())
        return h.hexdigest()
