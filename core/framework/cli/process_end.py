"""How the `framework` command's process ends: as the interpreter would, minus the teardown."""

from __future__ import annotations

import os
import sys


def end_process(code: int):
    """Exit with `code` as the interpreter would, minus tearing down every module it imported."""
    # Non-daemon threads are joined and atexit handlers run as at any exit (sampler pools shut
    # down, scratch folders removed, logs flushed); what is skipped is the teardown of the
    # ~2,000 modules a run imports and the last garbage collection, which write nothing and
    # took a second after every output was in place.
    import atexit
    import contextlib
    import threading

    join_threads = getattr(threading, "_shutdown", None)
    if join_threads is None:  # a Python without it: the ordinary exit
        sys.exit(code)
    join_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream: nothing more can be said.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
