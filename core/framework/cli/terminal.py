"""What the terminal shows: progress lines on stderr, short tables on stdout."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
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


FIRST_GROUPS = 5  # groups whose coefficients the summary shows (estimates.csv has them all)
FORMATS = {"r_hat": "{:.3f}", "ess_bulk": "{:.0f}", "ess_tail": "{:.0f}"}


def table(frame: pd.DataFrame, floatfmt: str = "{:.3f}", formats: dict | None = None) -> str:
    """A plain-text table (no extra dependency), numbers right-aligned; `formats` per column."""
    formats = {**FORMATS, **(formats or {})}
    fmts = [formats.get(str(c), floatfmt) for c in frame.columns]
    cells = [[str(c) for c in frame.columns]]
    for row in frame.itertuples(index=False):
        cells.append(
            [
                f.format(v) if isinstance(v, float) and np.isfinite(v) else str(v)
                for f, v in zip(fmts, row, strict=True)
            ]
        )
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
    """The end-of-run report: hyperparameters, first groups, recovery, forecasts, verdict, outputs."""
    d = result.diagnostics
    model = getattr(result, "model", None)
    parts = [
        f"{result.spec.name}: {d['data']['rows']} rows, {d['data']['groups']} groups; backend {d['backend']} "
        f"({d['engine']}, {d['method']}{', ' + d['parameterisation'] if d['method'] == 'full' else ''}), "
        f"{d['chains']} chains x {d['draws']} draws, seed {d['seed']}",
    ]
    if model is not None:
        parts.append(f"model: {model.describe()}")
    columns = ["parameter", "mean", "sd", "q5", "q95", "r_hat", "ess_bulk", "ess_tail"]
    hyper = result.hyperparameters
    parts += ["", "Hyperparameters", table(hyper[[c for c in columns if c in hyper]])]
    est = result.estimates
    if len(est):
        first = list(dict.fromkeys(est["group"]))[:FIRST_GROUPS]
        shown = est[est["group"].isin(first)]
        more = d["data"]["groups"] - len(first)
        parts += [
            "",
            f"Group coefficients (first {len(first)} groups{f'; {more:,} more' if more > 0 else ''}"
            " in estimates.csv)",
            table(shown),
        ]
    if result.recovery is not None:
        rec = result.recovery.copy()
        rec["covered"] = rec["covered"].map({True: "yes", False: "NO"})
        share = rec.attrs.get("coef_coverage")
        note = f"; group coefficients: {share:.0%} covered" if share is not None else ""
        parts += ["", f"Recovery of the simulation's truth (90% intervals{note})", table(rec)]
    if len(result.forecasts):
        parts += ["", "Forecasts (posterior predictive)", table(result.forecasts)]
    verdict = "passed" if d["passed"] else "WARNING: " + "; ".join(d["problems"])
    parts += ["", f"Diagnostics: {verdict}"]
    if result.output_dir is not None:
        files = sorted(f.name for f in Path(result.output_dir).iterdir() if f.is_file())
        parts.append(f"Outputs: {result.output_dir}: {', '.join(files)}")
    return "\n".join(parts)
