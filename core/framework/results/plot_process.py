"""A plot worker: a second process draws a run's PNGs while the main process writes the rest.

Why: on W1 (specs/rainfall.yaml, benchmarks/latency.py) the plots cost 1.1 s of a 5.3 s
run, 0.6 s importing matplotlib and 0.5 s drawing, on one core while the other idled.
The worker starts with the run and imports matplotlib while the main process reads the
data and samples; it draws hyperparameters.png while the run is summarised and
group_effects.png while the main process writes posterior.nc and the CSVs, from plain
data (figure_data), and is waited for before the run directory is committed.

Protocol, one run per worker: the main process writes pickles to the worker's stdin,
optionally ("early", hyperparameter panels) after sampling, then ("draw", Figures,
folder), and closes it; the worker answers with one pickle on its stdout, ("ok",
warnings) or ("error", traceback). All are our own data between our own processes.
If the worker cannot start, dies or reports an error, the main process draws
inline, so a genuine drawing error fails the run as before. The worker exits by itself
when its stdin ends without a job or its parent goes: no run leaves it behind.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import warnings

# -P: the worker's current folder (the user's) is not searched for modules. A framework
# found only through the main process's own sys.path edits fails to import there, and
# the plots are drawn inline.
COMMAND = ("-P", "-m", "framework.results.plot_process")
# How long the main process waits for the figures once the rest of the run is written (the
# worker has drawn since the run sampled). Its first import of matplotlib on a fresh machine
# builds the font cache (seconds to tens of seconds) and a large run's figures take seconds;
# a worker that has not answered by then is taken as hung, ended, and the plots are drawn
# inline.
WAIT_SECONDS = 120.0


class PlotWorker:
    """The main process's handle on one worker."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    @classmethod
    def start(cls) -> PlotWorker | None:
        """A worker importing matplotlib from now on; None if none can start (draw inline)."""
        if not sys.executable:  # an embedded interpreter may not know its own program
            return None
        try:
            proc = subprocess.Popen(
                [sys.executable, *COMMAND, str(os.getpid())],  # the parent it follows
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # Its warnings are sent back and issued here; a Ctrl-C that ends it (it is in
                # the run's process group) prints no traceback.
                stderr=subprocess.DEVNULL,
            )
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
        return cls(proc)

    def draw_early(self, idata, model, truth: dict | None) -> None:
        """Let it draw hyperparameters.png (in memory) while the run is summarised."""
        from .figure_data import hyperparameter_panels

        # summarise leaves these draws as they are: send() gathers the same panels again.
        self._write(("early", hyperparameter_panels(idata, model, truth)))

    def send(self, figures, folder) -> bool:
        """Hand the worker its job; False if it is gone already."""
        return self._write(("draw", figures, os.path.abspath(folder)), last=True)

    def _write(self, message, last: bool = False) -> bool:
        try:
            self.proc.stdin.write(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
            self.proc.stdin.flush()
            if last:
                self.proc.stdin.close()
        except (OSError, ValueError):  # it is gone: wait() says so
            return False
        return True

    def wait(self) -> bool:
        """Whether the worker drew every figure; its warnings are issued here, as inline."""
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()  # (already closed by send, unless that failed)
        self.proc.stdin = None  # so communicate() leaves it alone
        try:
            answer, _ = self.proc.communicate(timeout=WAIT_SECONDS)
            status, detail = pickle.loads(answer)
        except Exception:  # it died before answering in full, or hangs
            status, detail = "died", None
        self.close()
        if status != "ok":
            return False
        for category, message, filename, lineno in detail:
            warnings.warn_explicit(message, _warning_class(category), filename, lineno)
        return True

    def close(self) -> None:
        """End the worker now unless it has ended (a failed run, or done); idempotent."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError, AttributeError):  # None after wait
                stream.close()


def _builtin_category(category: type[Warning]) -> str:
    # matplotlib's own classes are not loaded in the main process: its nearest builtin base
    # (MatplotlibDeprecationWarning -> DeprecationWarning) is filtered as that class would be.
    return next(c.__name__ for c in category.__mro__ if c.__module__ == "builtins")


def _warning_class(name: str) -> type[Warning]:
    import builtins

    found = getattr(builtins, name, None)
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


def serve() -> None:
    """The worker: import matplotlib at once, then draw what comes on stdin and answer."""
    import queue
    import threading
    import traceback
    from pathlib import Path

    reply = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the answer
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_read_job, args=(jobs,), daemon=True).start()
    if os.name == "posix":  # Windows closes our pipes with the parent, and never re-parents
        parent = int(sys.argv[1])  # not getppid(): the main process may be gone already
        threading.Thread(target=_follow_parent, args=(parent,), daemon=True).start()
    from framework.results.plots import draw_hyperparameters, draw_plots, png  # matplotlib

    job, early = jobs.get(), None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the main process's filters decide
            if job[0] == "early":
                early, job = png(draw_hyperparameters(job[1])), jobs.get()
            _, figures, folder = job
            draw_plots(figures, Path(folder), early)
        seen = [
            (_builtin_category(w.category), str(w.message), w.filename, w.lineno) for w in caught
        ]
        answer = ("ok", seen)
    except Exception:
        answer = ("error", traceback.format_exc())
    with contextlib.suppress(OSError):  # a main process gone needs no answer
        reply.write(pickle.dumps(answer))
        reply.flush()
    os._exit(0)


def _read_job(jobs) -> None:
    # Read at once, while matplotlib imports: the main process never blocks on a full pipe.
    try:
        message = ("",)
        while message[0] != "draw":
            message = pickle.load(sys.stdin.buffer)
            jobs.put(message)
    except BaseException:  # stdin ended before the job: the run failed, ended or needs none
        os._exit(0)


def _follow_parent(parent: int) -> None:
    # A sampler the main process forked may hold our stdin open after the main process died.
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    serve()
