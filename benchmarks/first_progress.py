"""How long a user waits for the first progress line, and for the live bars, of a `framework run`.

    python benchmarks/first_progress.py [W2] [--method full] [--backend stan] [--engine pystan]

Runs the CLI on a pseudo-terminal (as a user's shell would), timestamps every
line it prints, and stops the run once the per-chain bars have appeared (a
W2 `method: full` fit would otherwise sample for minutes). Prints seconds
from process start to: the first line, "sampling N chains", and the first
bar, next to `python -c pass` started the same way (the interpreter's floor).
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import spec_for  # noqa: E402


def watch(argv: list[str], until: bytes, timeout: float = 900) -> dict[str, float]:
    """Seconds from spawning `argv` on a pty to the first output, "sampling ", and `until`."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, its stdout and stderr on the terminal
        os.execvpe(argv[0], argv, os.environ)
    seen: dict[str, float] = {}
    buffer = b""
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            now = time.perf_counter() - start
            buffer += chunk
            seen.setdefault("first output", now)
            if b"sampling " in buffer:
                seen.setdefault("'sampling' line", now)
            if until in buffer:
                seen.setdefault("first bar", now)
                break
    finally:
        try:
            os.kill(pid, signal.SIGINT)  # the framework stops the chains and cleans up
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", default="W2")
    parser.add_argument("--method", default="full")
    parser.add_argument("--backend", default="stan")
    parser.add_argument("--engine", default="pystan")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spec = spec_for(args.workload, Path(folder), method=args.method)
        framework = str(Path(sys.executable).with_name("framework"))
        command = [framework, "run", str(spec), f"--set=backend.name={args.backend}"]
        if args.backend == "stan":
            command.append(f"--set=backend.options.engine={args.engine}")
        floor = watch([sys.executable, "-c", "print('x')"], b"x")["first output"]
        seen = watch(command, b"chain 1")
    print(f"{args.workload} method {args.method}, backend {args.backend}: seconds from start")
    print(f"  python -c print (floor)  {floor:6.2f}")
    for name, seconds in seen.items():
        print(f"  {name:<24} {seconds:6.2f}  ({seconds / floor:.0f}x the floor)")


if __name__ == "__main__":
    main()
