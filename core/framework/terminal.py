"""What the terminal shows: progress lines on stderr, short tables on stdout."""

from __future__ import annotations

import sys
import time

import pandas as pd


class Progress:
    """A callable that prints timestamped progress lines to stderr (silent when quiet)."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(
                f"[{time.perf_counter() - self.start:6.1f}s] {message}",
                file=self.stream,
                flush=True,
            )


def table(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    """A plain-text table (no extra dependency), numbers right-aligned."""
    cells = [[str(c) for c in frame.columns]]
    for row in frame.itertuples(index=False):
        cells.append([floatfmt.format(v) if isinstance(v, float) else str(v) for v in row])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = []
    for k, row in enumerate(cells):
        # First column (names) left-aligned, numbers right-aligned.
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(result) -> str:
    """The end-of-run report: hyperparameters, recovery, forecasts, diagnostics verdict."""
    d = result.diagnostics
    parts = [
        f"{result.spec.name}: {d['data']['rows']} rows, {d['data']['groups']} groups; backend {d['backend']} "
        f"({d['engine']}, {d['method']}{', ' + d['parameterisation'] if d['method'] == 'full' else ''}), "
        f"{d['chains']} chains x {d['draws']} draws, seed {d['seed']}",
        "",
        "Hyperparameters",
        table(
            result.hyperparameters[["parameter", "mean", "sd", "q5", "q95", "r_hat", "ess_bulk"]]
        ),
    ]
    if result.recovery is not None:
        rec = result.recovery.copy()
        rec["covered"] = rec["covered"].map({True: "yes", False: "NO"})
        parts += ["", "Recovery of the simulation's truth (90% intervals)", table(rec)]
    if len(result.forecasts):
        parts += ["", "Forecasts (posterior predictive)", table(result.forecasts)]
    verdict = "passed" if d["passed"] else "WARNING: " + "; ".join(d["problems"])
    parts += ["", f"Diagnostics: {verdict}"]
    if result.output_dir is not None:
        parts.append(f"Outputs: {result.output_dir}")
    return "\n".join(parts)
