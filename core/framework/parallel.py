"""Chunks of array work on every core, in threads (numpy, scipy's FFT and numpy's RNG release the GIL)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_worker = threading.local()  # set in a pool's threads: a map inside one runs in that thread


def map_on_cores(fn, *iterables) -> list:
    """`list(map(fn, *iterables))`, one thread per core; in the caller's thread when there is one item.

    Inside another map's thread it also runs in that thread: nested pools would start
    cores x cores threads, each holding its chunk's buffers.
    """
    items = list(zip(*iterables, strict=True))
    if len(items) <= 1 or getattr(_worker, "busy", False):
        return [fn(*args) for args in items]

    def call(args):
        _worker.busy = True
        try:
            return fn(*args)
        finally:
            _worker.busy = False

    with ThreadPoolExecutor(min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(call, items))
