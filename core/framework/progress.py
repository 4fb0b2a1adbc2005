"""Live sampling progress per chain, for any backend: bars on a terminal, one line per stage elsewhere.

A backend gets a `SamplingProgress` from `problem.sampling_progress()` and reports to it:

    bars = problem.sampling_progress()
    bars.start(chains=4, warmup=1000, draws=1000)
    bars.update(chain=0, iteration=250, warmup=True, divergences=0)  # from any thread
    bars.done()

Built on rich rather than tqdm: PyMC already depends on it, one `Live` display
holds a bar per chain with custom columns (phase, divergences), and its
Console tells terminals from pipes and Jupyter apart. On a terminal each chain
has a bar; anywhere else (CI logs, pipes, Jupyter without ipywidgets) it
prints one line per stage: 25%, 50%, 75% and done. A disabled instance (`-q`,
or no terminal front end at all) ignores every call, so backends never check.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec

MILESTONES = (25, 50, 75)  # percent of all chains' iterations at which line mode prints


@dataclass
class ChainState:
    """What one chain has done: iterations so far (warmup included), its phase, divergences."""

    iteration: int = 0
    warmup: bool = True
    divergences: int | None = None  # None: the sampler does not report them while it runs


class SamplingProgress:
    """Per-chain progress of one sampling run; thread-safe, silent when not `enabled`."""

    def __init__(
        self,
        console=None,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
        auto_refresh: bool = True,
    ):
        self.enabled = enabled
        self._console = console
        self._clock = clock
        self._live_wanted = live  # None: decide from the console
        self._auto_refresh = auto_refresh
        self._lock = threading.Lock()
        self._bars = None  # rich.progress.Progress while live
        self._tasks: list = []
        self.chains: list[ChainState] = []
        self.total = 0
        self.warmup = 0
        self._started_at = 0.0
        self._next_milestone = 0
        self._finished = False

    @property
    def console(self):
        """The rich Console it writes to (stderr unless given), created on first use."""
        if self._console is None:
            from rich.console import Console

            # The stream now, not sys.stderr at each write: engines redirect sys.stderr to
            # capture their libraries' chatter while this display keeps the real one.
            self._console = Console(file=sys.stderr)
        return self._console

    @property
    def is_live(self) -> bool:
        """Whether bars are showing (a terminal, or Jupyter with ipywidgets)."""
        return self._bars is not None

    def start(self, chains: int, warmup: int, draws: int) -> None:
        """Begin: `chains` chains of `warmup` + `draws` iterations each."""
        if not self.enabled:
            return
        with self._lock:
            self.chains = [ChainState() for _ in range(chains)]
            self.warmup, self.total = warmup, warmup + draws
            self._started_at = self._clock()
            self._next_milestone = 0
            self._finished = False
            if self._use_live():
                self._start_bars(chains)

    def update(
        self,
        chain: int,
        iteration: int,
        warmup: bool | None = None,
        divergences: int | None = None,
    ) -> None:
        """Chain `chain` (0-based) has done `iteration` iterations, warmup counted first.

        `warmup` defaults to iteration < the warmup length; `divergences` (so
        far, after warmup) is left as it was when not given.
        """
        if not self.enabled or not 0 <= chain < len(self.chains):
            return
        with self._lock:
            state = self.chains[chain]
            state.iteration = max(0, min(int(iteration), self.total))
            state.warmup = bool(warmup) if warmup is not None else state.iteration < self.warmup
            if divergences is not None:
                state.divergences = int(divergences)
            if self._bars is not None:
                self._bars.update(self._tasks[chain], completed=state.iteration, **_fields(state))
            else:
                self._maybe_line()

    def done(self, finished: bool = True) -> None:
        """Sampling ended: every chain complete if `finished`, else stopped where it was."""
        if not self.enabled or self._finished or not self.chains:
            return
        with self._lock:
            self._finished = True
            # e.g. draws read from a cache, or the chains ended between two progress lines
            for k, state in enumerate(self.chains if finished else []):
                state.iteration, state.warmup = self.total, False
                if self._bars is not None:
                    self._bars.update(self._tasks[k], completed=self.total, **_fields(state))
            if self._bars is not None:
                self._bars.stop()
                self._bars = None
            else:
                self._line("sampling done" if finished else "sampling stopped")

    def print(self, message: str) -> None:
        """A line of text above the bars, or a plain line on the console's stream."""
        if self._bars is not None:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)
            return
        # Plain text, not rich's rendering: in Jupyter that would need IPython's display.
        stream = self.console.file
        stream.write(message + "\n")
        stream.flush()

    def fraction(self) -> float:
        """Share of all chains' iterations done, 0 to 1."""
        if not self.chains or not self.total:
            return 0.0
        return sum(c.iteration for c in self.chains) / (self.total * len(self.chains))

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.done(finished=kind is None)

    def _use_live(self) -> bool:
        if self._live_wanted is not None:
            return self._live_wanted
        console = self.console
        if console.is_jupyter:  # rich's Jupyter display needs ipywidgets; lines otherwise
            return find_spec("ipywidgets") is not None
        return console.is_terminal and not console.is_dumb_terminal

    def _start_bars(self, chains: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bars = Progress(
            TextColumn("chain {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[phase]:<8}"),
            TextColumn("{task.fields[divergences]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            get_time=self._clock,
            auto_refresh=self._auto_refresh,
        )
        self._tasks = [
            self._bars.add_task(str(k + 1), total=self.total, **_fields(ChainState()))
            for k in range(chains)
        ]
        self._bars.start()

    def _maybe_line(self) -> None:
        percent = 100 * self.fraction()
        passed = [m for m in MILESTONES if m <= percent]
        if len(passed) > self._next_milestone:
            self._next_milestone = len(passed)
            self._line(f"sampling {passed[-1]}%")

    def _line(self, stage: str) -> None:
        elapsed = self._clock() - self._started_at
        share = self.fraction()
        chains = ", ".join(f"{c.iteration}/{self.total}" for c in self.chains)
        phase = "warmup" if any(c.warmup for c in self.chains) else "sampling"
        known = [c.divergences for c in self.chains if c.divergences is not None]
        parts = [f"{stage}: chains at {chains} ({phase})"]
        if known:
            parts.append(f"{sum(known)} divergences")
        parts.append(f"{elapsed:.0f} s elapsed")
        if 0 < share < 1:
            parts.append(f"~{elapsed * (1 - share) / share:.0f} s left")
        self.print("; ".join(parts))


def _fields(state: ChainState) -> dict[str, str]:
    divergences = "" if state.divergences is None else f"{state.divergences} divergent"
    return {"phase": "warmup" if state.warmup else "sampling", "divergences": divergences}


def silent() -> SamplingProgress:
    """A SamplingProgress that ignores every call (quiet runs, library use without a front end)."""
    return SamplingProgress(enabled=False)
