"""SIGINT and SIGTERM while outputs are written: recorded, and raised only where it is safe."""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupts:
    """SIGINT/SIGTERM while outputs are written: recorded, and raised only where it is safe.

    While writing, a signal raises KeyboardInterrupt at once and is also recorded, since
    one raised inside a finaliser (a weakref callback) is printed and swallowed; the
    writer calls `raise_if_received` before the swap. During the swap (`defer`), the
    signal is only recorded.
    """

    def __init__(self):
        self.received: int | None = None
        self.defer = False

    def _handle(self, signum, frame):
        self.received = signum
        if not self.defer:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def watching(self):
        """Handle SIGINT and SIGTERM here (main thread only) until the block ends."""
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach the main thread only
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def raise_if_received(self) -> None:
        """KeyboardInterrupt if a signal came, even one a finaliser swallowed."""
        if self.received is not None:
            raise KeyboardInterrupt
