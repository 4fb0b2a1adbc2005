"""Stop pystan's sampling promptly on Ctrl-C or SIGTERM: end httpstan's worker processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress


class _Refusing:
    """Stands in for httpstan's executor once interrupted: chains not yet started never start."""

    def submit(self, *args, **kwargs):
        raise RuntimeError("sampling interrupted")

    def shutdown(self, wait=True, *, cancel_futures=False):
        pass


class Stop:
    """Whether the user interrupted sampling; `request` ends the running chains."""

    def __init__(self):
        self.requested = False
        self._pool = None
        self._log_disabled = False

    def request(self) -> None:
        """End httpstan's sampling processes; pystan then returns at once (with an error)."""
        import httpstan.services_stub as stub

        self.requested = True
        pool, stub.executor = stub.executor, _Refusing()
        if isinstance(pool, _Refusing):
            return
        self._pool = pool
        # Silences httpstan's log record of the broken pool: the interrupt is the message.
        log = logging.getLogger("httpstan")
        self._log_disabled, log.disabled = log.disabled, True
        # SIGKILL: the workers ignore SIGINT, and a Python-level SIGTERM handler inherited from
        # the CLI would only run once the C++ chain returns. They hold nothing worth cleaning up.
        for pid in dict(getattr(pool, "_processes", None) or {}):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def renew(self) -> None:
        """A fresh (lazily forked) worker pool for httpstan, so later runs in this process work."""
        import httpstan.services_stub as stub

        if not isinstance(stub.executor, _Refusing):
            return
        stub.executor = ProcessPoolExecutor(
            mp_context=multiprocessing.get_context("fork"), initializer=stub.init_worker
        )
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # reaps the killed workers
            self._pool = None
        logging.getLogger("httpstan").disabled = self._log_disabled


def start_workers() -> None:
    """Fork httpstan's workers now, so none is forked (and missed by `request`) mid-interrupt."""
    import httpstan.services_stub as stub

    # A fork-context pool forks all its workers at the first submission, then never again.
    if not getattr(stub.executor, "_processes", None):
        stub.executor.submit(int).result()


@contextmanager
def stoppable(stop: Stop):
    """In the main thread, route SIGINT (and the CLI's SIGTERM, re-raised as SIGINT) to `stop`."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers are the main thread's; it calls stop.request() itself
        return

    def on_signal(signum, frame):
        if stop.requested:  # a second Ctrl-C: stop waiting for pystan to return
            raise KeyboardInterrupt
        stop.request()

    previous = signal.signal(signal.SIGINT, on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
