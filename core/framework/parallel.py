"""Chunks of array work on every core, in threads (numpy, scipy's FFT and numpy's RNG release the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor


def map_on_cores(fn, *iterables) -> list:
    """`list(map(fn, *iterables))`, one thread per core; in the caller's thread when there is one item."""
    items = list(zip(*iterables, strict=True))
    if len(items) <= 1:
        return [fn(*args) for args in items]
    with ThreadPoolExecutor(min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda args: fn(*args), items))
