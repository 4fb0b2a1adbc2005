"""What the terminal shows: progress lines on stderr, short tables on stdout."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .safe_text import safe_text

if TYPE_CHECKING:  # the tables are made by the results stage, which imports pandas
    import pandas as pd


class Progress:
    """A callable that prints timestamped progress lines to stderr (silent when quiet)."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._bars = None  # the SamplingProgress currently showing, if any

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        line = f"[{time.perf_counter() - self.start:6.1f}s] {message}"
        if self._bars is not None and self._bars.is_live:
            self._bars.print(line)  # above the bars rather than through them
        else:
            print(line, file=self.stream, flush=True)

    def sampling(self):
        """The live per-chain display a backend reports to (`Problem.sampling_progress`)."""
        from rich.console import Console

        from ..progress import SamplingProgress

        if self.quiet:
            return SamplingProgress(enabled=False)
        self._bars = SamplingProgress(Console(file=self.stream))
        return self._bars


FIRST_GROUPS = 5  # groups whose coefficients the summary shows (estimates.csv has them all)
MANY_GROUPS = 20  # beyond this many groups the summary shows the most extreme ones, not the first
FORMATS = {"r_hat": "{:.3f}", "ess_bulk": "{:.0f}", "ess_tail": "{:.0f}"}


def table(frame: pd.DataFrame, floatfmt: str = "{:.3f}", formats: dict | None = None) -> str:
    """A plain-text table (no extra dependency), numbers right-aligned; `formats` per column."""
    formats = {**FORMATS, **(formats or {})}
    fmts = [formats.get(str(c), floatfmt) for c in frame.columns]
    cells = [[safe_text(c) for c in frame.columns]]
    for row in frame.itertuples(index=False):
        cells.append([_cell(f, v) for f, v in zip(fmts, row, strict=True)])
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


def _cell(fmt: str, value) -> str:
    # Labels come from the user's data: control characters are shown escaped, never obeyed.
    if not isinstance(value, float) or not np.isfinite(value):
        return safe_text(value)
    text = fmt.format(value)
    if value and text.lstrip("-").strip("0.") == "":  # 3e-06 is not 0.000: data on a tiny scale
        return f"{value:.3g}"
    return f"{value:.6g}" if len(text) > 15 and abs(value) >= 1e9 else text  # not 300 digits


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
        chosen, title = shown_groups(est, d["data"]["groups"])
        rows = est[est["group"].isin(chosen)]
        order = {g: i for i, g in enumerate(chosen)}
        rows = rows.iloc[np.argsort(rows["group"].map(order).to_numpy(), kind="stable")]
        parts += ["", title, table(rows)]
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
        # The run marker (.framework-run) is bookkeeping, not an output to open.
        folder = Path(result.output_dir)
        files = sorted(f.name for f in folder.iterdir() if f.is_file() and f.name[0] != ".")
        parts.append(f"Outputs: {result.output_dir}: {', '.join(files)}")
    return "\n".join(parts)


def shown_groups(est: pd.DataFrame, n_groups: int) -> tuple[list, str]:
    """The groups the summary shows and its title: the first few, or the most extreme of many.

    A group's extremeness is its largest |mean - median of the groups' means| over
    its terms, in robust sds (1.4826 x the median absolute deviation), so that one
    outlier does not inflate the spread it is measured against.
    """
    labels = list(dict.fromkeys(est["group"]))
    if n_groups <= MANY_GROUPS:
        chosen = labels[:FIRST_GROUPS]
        more = n_groups - len(chosen)
        return chosen, (
            f"Group coefficients (first {len(chosen)} groups"
            f"{f'; {more:,} more' if more > 0 else ''} in estimates.csv)"
        )
    means = est.set_index(["group", "term"])["mean"].unstack("term")  # (group, term)
    centre = means.median()
    spread = (1.4826 * (means - centre).abs().median()).replace(0.0, 1.0)
    score = ((means - centre) / spread).abs().max(axis=1)
    chosen = list(score.sort_values(ascending=False, kind="stable").index[:FIRST_GROUPS])
    return chosen, (
        f"Group coefficients (the {len(chosen)} most extreme of {n_groups:,} groups: farthest "
        "from the groups' median, in robust sds; all in estimates.csv)"
    )
