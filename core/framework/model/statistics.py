"""Per-group sufficient statistics of the Gaussian model, for any number of design columns.

For the columns W = [X, y] (the design's p columns, then the response) each
group keeps n, the column means and the centred cross-products
C = sum (w - wbar)(w - wbar)'. Centred moments keep full precision when a
column carries a large offset.

The reduction is mergeable (Chan, Golub and LeVeque's pairwise update): each
chunk of rows is reduced on its own and `merge` combines partial results, so
a distributed engine replaces the loop in `reduce_chunks` by a map over
partitions and a tree of merges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# The largest magnitude a data value or forecast input may have: its square (1e200), summed over
# billions of rows, still fits in a double (max 1.8e308). No measurement in any unit is this
# large, so a value beyond it is a mistake (data.value_checks, forecasts refuse it).
LARGEST_VALUE = 1e100


@dataclass(frozen=True)
class GroupStats:
    """n (groups,), mean (groups, k) and cross (groups, k, k) over k = p + 1 columns, y last."""

    n: np.ndarray
    mean: np.ndarray
    cross: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.n)

    @property
    def n_columns(self) -> int:
        return self.mean.shape[1]

    @classmethod
    def empty(cls, n_groups: int, n_columns: int) -> GroupStats:
        return cls(
            np.zeros(n_groups),
            np.zeros((n_groups, n_columns)),
            np.zeros((n_groups, n_columns, n_columns)),
        )

    @classmethod
    def from_rows(cls, codes: np.ndarray, columns: np.ndarray, n_groups: int) -> GroupStats:
        """Reduce one chunk: `columns` is (rows, k), the design then y; two passes over the chunk."""
        codes = np.asarray(codes, dtype=np.int64)
        w = np.asarray(columns, dtype=np.float64)
        k = w.shape[1]
        n = np.bincount(codes, minlength=n_groups).astype(np.float64)
        safe = np.where(n > 0, n, 1.0)
        mean = np.stack([np.bincount(codes, w[:, a], minlength=n_groups) for a in range(k)], 1)
        mean /= safe[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            dev = w - mean[codes]
        cross = np.empty((n_groups, k, k))
        for a in range(k):
            for b in range(a, k):
                if np.all(dev[:, a] == 0) or np.all(dev[:, b] == 0):  # the intercept, dummies
                    s = np.zeros(n_groups)
                else:  # a value too large to square gives inf: data.value_checks names it
                    with np.errstate(over="ignore", invalid="ignore"):
                        s = np.bincount(codes, dev[:, a] * dev[:, b], minlength=n_groups)
                cross[:, a, b] = cross[:, b, a] = s
        return cls(n, mean, cross)

    def grow(self, n_groups: int) -> GroupStats:
        """The same statistics over `n_groups` groups, the new ones empty (groups found later)."""
        extra = n_groups - self.n_groups
        if extra == 0:
            return self
        more = GroupStats.empty(extra, self.n_columns)
        return GroupStats(
            np.concatenate([self.n, more.n]),
            np.concatenate([self.mean, more.mean]),
            np.concatenate([self.cross, more.cross]),
        )

    def merge(self, other: GroupStats) -> GroupStats:
        """Combine the statistics of two disjoint sets of rows."""
        n = self.n + other.n
        safe = np.where(n > 0, n, 1.0)
        wa, wb = (self.n / safe)[:, None], (other.n / safe)[:, None]
        # Where either side is empty the cross term is 0; skip it rather than risk inf * 0.
        both = ((self.n > 0) & (other.n > 0))[:, None]
        d = np.where(both, other.mean - self.mean, 0.0)
        cross = (self.n * other.n / safe)[:, None, None]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: see from_rows
            return GroupStats(
                n,
                self.mean * wa + other.mean * wb,
                self.cross + other.cross + cross * d[:, :, None] * d[:, None, :],
            )

    def take(self, index) -> GroupStats:
        """The statistics of some groups (an index array or slice)."""
        return GroupStats(self.n[index], self.mean[index], self.cross[index])

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"n": self.n, "mean": self.mean, "cross": self.cross}


def reduce_chunks(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]], n_groups: int | None = None
) -> GroupStats:
    """The replaceable reduction step: fold (codes, columns) chunks into GroupStats.

    With `n_groups` None the group count grows with the largest code seen, so
    chunks can come straight from a file read in one pass.
    """
    total = None
    for codes, columns in chunks:
        k = n_groups if n_groups is not None else int(np.max(codes, initial=-1)) + 1
        if total is not None:
            k = max(k, total.n_groups)
        part = GroupStats.from_rows(codes, columns, k)
        total = part if total is None else total.grow(k).merge(part)
    if total is None:
        raise ValueError("no rows to reduce")
    return total
