"""Stop sampling promptly on Ctrl-C or SIGTERM: end httpstan's workers or the CmdStan processes."""

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


class _Tracked:
    """Stands in for the `subprocess` module inside cmdstanpy: remembers the processes it starts."""

    def __init__(self, module, own_group: bool):
        self._module = module
        self._own_group = own_group  # make's compiler children die with it only as a group

    def __getattr__(self, name):
        return getattr(self._module, name)

    def Popen(self, *args, **kwargs):  # noqa: N802 (the name cmdstanpy calls)
        if self._own_group:
            kwargs.setdefault("process_group", 0)
        with _LOCK:
            if _STOPPING:  # a chain queued behind the killed ones must not start
                raise OSError("sampling interrupted")
            proc = self._module.Popen(*args, **kwargs)
            _LIVE.append((proc, self._own_group))
            if _STOPPING:  # the signal came (in this thread) while the process was starting
                _kill(proc, self._own_group)
        return proc


# Re-entrant: the signal handler runs in the main thread, which may hold it (starting make).
_LOCK = threading.RLock()
_LIVE: list = []  # (Popen, own process group) started by cmdstanpy and not yet seen ended
_STOPPING = False


def _kill(proc, group: bool) -> None:
    with suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)


def track_cmdstanpy() -> None:
    """Route cmdstanpy's process starts (chains, and make when compiling) through `_Tracked`."""
    import subprocess

    import cmdstanpy.model
    import cmdstanpy.utils.command

    # cmdstanpy 1.3 starts each CmdStan chain with model.subprocess.Popen and make with
    # utils.command.subprocess.Popen; it has no hook of its own for ending them.
    if not isinstance(cmdstanpy.model.subprocess, _Tracked):
        cmdstanpy.model.subprocess = _Tracked(subprocess, own_group=False)
    if not isinstance(cmdstanpy.utils.command.subprocess, _Tracked):
        cmdstanpy.utils.command.subprocess = _Tracked(subprocess, own_group=True)


class ProcessStop:
    """Whether the user interrupted cmdstanpy; `request` kills the CmdStan processes it started."""

    def __init__(self):
        self.requested = False

    def request(self) -> None:
        """SIGKILL every live CmdStan (or make) process; cmdstanpy's threads then reap them."""
        global _STOPPING
        self.requested = True
        with _LOCK:
            _STOPPING = True
            live = [(p, group) for p, group in _LIVE if p.returncode is None]
            _LIVE[:] = live
        # SIGKILL: a chain holds nothing worth saving, and make's compilers must not finish
        # writing an executable the cache would later trust.
        for proc, group in live:
            _kill(proc, group)

    def renew(self) -> None:
        """Let later runs in this process start processes again; forget the ended ones."""
        global _STOPPING
        with _LOCK:
            _STOPPING = False
            _LIVE[:] = [(p, group) for p, group in _LIVE if p.returncode is None]
