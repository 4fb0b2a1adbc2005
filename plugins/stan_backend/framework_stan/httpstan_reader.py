"""httpstan's `services_stub.call`, with a reader that serves every chain's socket at once.

httpstan reads a chain's messages (every draw, as JSON over a Unix socket) in a
loop that polls that chain's sockets with a blocking `select` and yields to the
event loop only once they fall quiet. While one chain streams draws, the loop
never yields, so pystan's other chains are not even submitted: the chains run
one after another (W1: four chains in ~1.2 s where each needs ~0.3 s). `call`
below is the same function (same arguments, same defaults, the same gzip fit in
httpstan's store, the same errors) reading through the event loop instead, so
the chains run side by side.

pystan polls its chains every 50 ms and sleeps once more after seeing the last
one done: 50-100 ms after the chains end (a sixth of a W1 fit). Its sleeps end
early once no chain is running, so it fetches the draws at once.

`concurrent_reader` installs both for one sampling call, each only if the
library still has the part it replaces; else the library's own code runs.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import os
import socket
import tempfile
import zlib
from contextlib import contextmanager

CHUNK = 1 << 18  # bytes per read: a chain writes ~1.3 MB on W1; few reads, few compress calls


@contextmanager
def concurrent_reader():
    """Route httpstan's services calls through `call`, and wake pystan's poll, for the duration."""
    global _flight
    try:
        import httpstan.services.arguments  # noqa: F401 - `call` needs it
        import httpstan.services_stub as stub
        import stan.model
    except ImportError:  # pragma: no cover - pystan is what calls this
        yield
        return
    needed = ("call", "executor", "_make_lazy_function_wrapper")
    if not all(hasattr(stub, name) for name in needed):  # another httpstan: its own reader
        yield
        return
    flight = _flight = _Flight()
    original, stub.call = stub.call, call
    polling = getattr(stan.model, "asyncio", None)
    if polling is asyncio:  # pystan's `await asyncio.sleep(0.05)` between polls
        stan.model.asyncio = _PollingAsyncio(flight)
    try:
        yield
    finally:
        stub.call = original
        if polling is asyncio:
            stan.model.asyncio = asyncio
        _flight = None


class _Flight:
    """The chains running in this process; pystan's sleeps between polls end when none is."""

    def __init__(self):
        self.running = 0
        self.started = False
        self._sleepers: list[asyncio.Future] = []

    def begin(self) -> None:
        self.running += 1
        self.started = True

    def end(self) -> None:
        self.running -= 1
        if not self.running:
            for sleeper in self._sleepers:
                if not sleeper.done():
                    sleeper.set_result(None)

    async def sleep(self, delay, result=None):
        """asyncio.sleep, ended early (or skipped) once every chain begun has ended."""
        if self.started and not self.running:
            return result
        loop = asyncio.get_running_loop()
        sleeper = loop.create_future()
        timer = loop.call_later(delay, lambda: sleeper.done() or sleeper.set_result(None))
        self._sleepers.append(sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.remove(sleeper)
        return result


class _PollingAsyncio:
    """`asyncio` as stan.model sees it while sampling: the same module, with `_Flight.sleep`."""

    def __init__(self, flight: _Flight):
        self.sleep = flight.sleep

    def __getattr__(self, name):
        return getattr(asyncio, name)


_flight: _Flight | None = None  # the sampling call under way in this process, if any


async def call(function_name, model_name, fit_name, logger_callback=None, **kwargs) -> None:
    """Run one chain in httpstan's worker pool; store its messages as httpstan's gzip fit."""
    import httpstan.models
    import httpstan.services.arguments as arguments
    import httpstan.services_stub as stub

    method, basename = function_name.replace("stan::services::", "").split("::", 1)
    module = httpstan.models.import_services_extension_module(model_name)
    for arg in arguments.function_arguments(basename, module):
        if arg not in kwargs:  # as httpstan: the defaults (random_seed among them) filled in
            kwargs[arg] = arguments.lookup_default(arguments.Method[method.upper()], arg)
    flight = _flight or _Flight()
    flight.begin()
    try:
        await _call(stub, basename, model_name, fit_name, logger_callback, kwargs)
    finally:
        flight.end()


async def _call(stub, basename, model_name, fit_name, logger_callback, kwargs) -> None:
    import httpstan.cache

    loop = asyncio.get_running_loop()
    readers: list[asyncio.Task] = []
    with (
        tempfile.TemporaryDirectory(prefix="httpstan_") as folder,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server,
    ):
        path = os.path.join(folder, "chain.sock")
        server.bind(path)
        server.listen(8)
        server.setblocking(False)

        def accept() -> None:
            # each writer and the logger connect once; read each until the worker closes it
            while True:
                try:
                    conn, _ = server.accept()
                except (BlockingIOError, InterruptedError):
                    return
                conn.setblocking(False)
                readers.append(loop.create_task(_read(loop, conn, logger_callback)))

        wrapper = stub._make_lazy_function_wrapper(basename, model_name)
        loop.add_reader(server.fileno(), accept)
        try:
            future = loop.run_in_executor(stub.executor, functools.partial(wrapper, path, **kwargs))
            await asyncio.wait([future])  # its outcome is raised below, once the messages are in
        finally:
            loop.remove_reader(server.fileno())
        accept()  # connections made just before the chain returned
        parts = await asyncio.gather(*readers)
    fit = b"".join(parts)
    httpstan.cache.dump_fit(fit, fit_name)
    error_code = future.result()  # raises the chain's exception, if any
    if error_code != 0:  # 0 is OK
        raise RuntimeError(_error_message(fit))


async def _read(loop, conn: socket.socket, logger_callback) -> bytes:
    """One connection's messages, gzip-compressed as httpstan stores them."""
    compressor = zlib.compressobj(level=zlib.Z_BEST_SPEED, wbits=zlib.MAX_WBITS | 16)
    parts, partial = [], b""
    with conn:
        while message := await loop.sock_recv(conn, CHUNK):
            if logger_callback and (partial or b'"logger"' in message):  # the logger's socket
                # whole lines only: the callback's progress pattern must not see half a line
                head, _, partial = (partial + message).rpartition(b"\n")
                if b'"logger"' in head:
                    logger_callback(head)
            parts.append(compressor.compress(message))
    if not parts:  # as httpstan: a connection that sent nothing adds nothing to the fit
        return b""
    parts.append(compressor.flush())
    return b"".join(parts)


def _error_message(fit: bytes) -> str:
    """httpstan's message for a chain that returned an error code: its error and warn lines."""
    errors, warnings = [], []
    for line in gzip.decompress(fit).decode().split("\n"):
        try:
            text = json.loads(line)["values"].pop()
        except (json.JSONDecodeError, KeyError, IndexError, AttributeError, TypeError):
            continue
        if not isinstance(text, str):
            continue
        if text.startswith("warn:"):
            warnings.append(text.replace("warn:", "").strip())
        elif text.startswith("error:"):
            errors.append(text.replace("error:", "").strip())
    return f"{' '.join(errors)} {' '.join(warnings[:4])}"
