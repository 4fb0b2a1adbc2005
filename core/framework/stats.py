"""Per-group sufficient statistics of the Gaussian model, reduced in one pass.

Six numbers per group: n, the means of x and y, and the centred sums
Sxx = sum (x - xbar)^2, Sxy = sum (x - xbar)(y - ybar), Syy = sum (y - ybar)^2.
Centred moments keep full precision when x or y carry a large offset.

The reduction is mergeable (Chan, Golub and LeVeque's pairwise update): each
chunk of rows is reduced on its own and `merge` combines partial results, so a
distributed engine can replace `reduce_chunks` by a map over partitions and a
tree of merges.

`design_stats` pools groups that share a design (n, xbar, Sxx): the marginal
likelihood then costs one term per distinct design, so a balanced panel (every
group observed at the same x) costs as much as a single group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupStats:
    """Sufficient statistics per group, arrays of length n_groups."""

    n: np.ndarray
    xbar: np.ndarray
    ybar: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray
    syy: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.n)

    @classmethod
    def empty(cls, n_groups: int) -> GroupStats:
        z = np.zeros(n_groups)
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy())

    @classmethod
    def from_rows(
        cls, codes: np.ndarray, x: np.ndarray, y: np.ndarray, n_groups: int
    ) -> GroupStats:
        """Reduce one chunk of rows (two passes over the chunk: means, then centred sums)."""
        codes = np.asarray(codes, dtype=np.int64)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n = np.bincount(codes, minlength=n_groups).astype(np.float64)
        safe = np.where(n > 0, n, 1.0)
        xbar = np.bincount(codes, x, minlength=n_groups) / safe
        ybar = np.bincount(codes, y, minlength=n_groups) / safe
        dx = x - xbar[codes]
        dy = y - ybar[codes]
        return cls(
            n,
            xbar,
            ybar,
            np.bincount(codes, dx * dx, minlength=n_groups),
            np.bincount(codes, dx * dy, minlength=n_groups),
            np.bincount(codes, dy * dy, minlength=n_groups),
        )

    def grow(self, n_groups: int) -> GroupStats:
        """The same statistics over `n_groups` groups, the new ones empty (groups found later)."""
        extra = n_groups - self.n_groups
        if extra == 0:
            return self
        return GroupStats(*(np.concatenate([v, np.zeros(extra)]) for v in self.as_dict().values()))

    def merge(self, other: GroupStats) -> GroupStats:
        """Combine the statistics of two disjoint sets of rows."""
        n = self.n + other.n
        safe = np.where(n > 0, n, 1.0)
        wa, wb = self.n / safe, other.n / safe
        # Where either side is empty the cross term is 0; skip it rather than risk inf * 0.
        both = (self.n > 0) & (other.n > 0)
        dx = np.where(both, other.xbar - self.xbar, 0.0)
        dy = np.where(both, other.ybar - self.ybar, 0.0)
        cross = self.n * other.n / safe
        return GroupStats(
            n,
            self.xbar * wa + other.xbar * wb,
            self.ybar * wa + other.ybar * wb,
            self.sxx + other.sxx + dx * dx * cross,
            self.sxy + other.sxy + dx * dy * cross,
            self.syy + other.syy + dy * dy * cross,
        )

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("n", "xbar", "ybar", "sxx", "sxy", "syy")}


def reduce_chunks(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], n_groups: int | None = None
) -> GroupStats:
    """The replaceable reduction step: fold (codes, x, y) chunks into GroupStats.

    With `n_groups` None the group count grows with the largest code seen, so
    chunks can come straight from a file read in one pass.
    """
    total = GroupStats.empty(n_groups or 0)
    for codes, x, y in chunks:
        k = (
            n_groups
            if n_groups is not None
            else max(total.n_groups, int(np.max(codes, initial=-1)) + 1)
        )
        total = total.grow(k).merge(GroupStats.from_rows(codes, x, y, k))
    return total


@dataclass(frozen=True)
class DesignStats:
    """GroupStats pooled over groups sharing (n, xbar, sxx), arrays of length n_designs.

    Per design: `groups` (how many), the shared n, xbar, sxx; the mean over its
    groups of ybar and sxy; and centred sums over its groups, with
    dy = ybar - mean ybar, ds = sxy - mean sxy: `ybar_ss` = sum dy^2,
    `sxy_ss` = sum ds^2, `f_ss` = sum (ds + n xbar dy)^2. With the design mean
    residuals m = ybar - intercept_mu - slope_mu xbar and e = sxy - slope_mu sxx,
    the per-group sums the likelihood needs are exact and free of cancellation:
    sum m_j^2 = ybar_ss + groups m^2, sum e_j^2 = sxy_ss + groups e^2,
    sum (e_j + n xbar m_j)^2 = f_ss + groups (e + n xbar m)^2. `syy_total` is
    the sum of Syy over all groups.
    """

    groups: np.ndarray
    n: np.ndarray
    xbar: np.ndarray
    sxx: np.ndarray
    ybar: np.ndarray
    sxy: np.ndarray
    ybar_ss: np.ndarray
    sxy_ss: np.ndarray
    f_ss: np.ndarray
    syy_total: float

    @property
    def n_designs(self) -> int:
        return len(self.n)

    def as_dict(self) -> dict[str, np.ndarray | float]:
        names = ("groups", "n", "xbar", "sxx", "ybar", "sxy", "ybar_ss", "sxy_ss", "f_ss")
        return {**{k: getattr(self, k) for k in names}, "syy_total": self.syy_total}


def design_stats(stats: GroupStats) -> DesignStats:
    """Pool the groups of `stats` by exact design (n, xbar, sxx), in order of first appearance."""
    keys = np.stack([stats.n, stats.xbar, stats.sxx], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    design, lead = rank[inverse.ravel()], np.sort(first)
    count = np.bincount(design).astype(np.float64)
    ybar = np.bincount(design, stats.ybar) / count
    sxy = np.bincount(design, stats.sxy) / count
    dy, ds = stats.ybar - ybar[design], stats.sxy - sxy[design]
    nxbar = stats.n * stats.xbar
    return DesignStats(
        groups=count,
        n=stats.n[lead],
        xbar=stats.xbar[lead],
        sxx=stats.sxx[lead],
        ybar=ybar,
        sxy=sxy,
        ybar_ss=np.bincount(design, dy * dy),
        sxy_ss=np.bincount(design, ds * ds),
        f_ss=np.bincount(design, (ds + nxbar * dy) ** 2),
        syy_total=float(np.sum(stats.syy)),
    )
