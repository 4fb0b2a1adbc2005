"""map_on_cores: the same results as map, and no pool inside a pool's thread."""

from __future__ import annotations

import threading

from framework.parallel import map_on_cores


def test_a_map_inside_a_maps_thread_stays_in_that_thread():
    def inner(x):
        return x, threading.get_ident()

    def outer(x):
        results = map_on_cores(inner, [x, x + 1, x + 2])
        here = threading.get_ident()
        return [value for value, _ in results], {ident == here for _, ident in results}

    done = map_on_cores(outer, [0, 10])
    assert [values for values, _ in done] == [[0, 1, 2], [10, 11, 12]]
    # Each outer task ran its inner map in its own thread, not in a pool of its own.
    assert [same for _, same in done] == [{True}, {True}]
    # Outside a pool, a map of several items uses the pool (the caller's thread is free).
    top = map_on_cores(inner, [1, 2, 3])
    assert [value for value, _ in top] == [1, 2, 3]
    assert threading.get_ident() not in {ident for _, ident in top}
