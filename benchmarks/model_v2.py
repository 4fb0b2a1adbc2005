"""Issue 10: the general model's defaults against `method: full`, on both backends.

Workloads W1 (51 groups x 11 rows) and W2 (1,000 x 100), `y ~ x + (x || group)`
as before; W2c, W2 with correlated effects `y ~ x + (x | group)`; W2p, 1,000 x 100
with three predictors, two varying by group, correlated,
`y ~ x1 + x2 + x3 + (x1 + x2 | group)` (W2p a panel, W2ps per-row draws: see
workloads.py). Per backend (stan with its default engine, pymc with its default
sampler, nutpie): the defaults (method auto, which resolves to the exact
marginal) and `method: full`, each in a process of its own. Min bulk ESS is over
every parameter: beta, group_sd, group_corr (off-diagonal), sigma and every
group's coef. "x full" is the ratio of ESS/s against the full row of the same
backend and data in this invocation.

The defaults run 4 chains x 1000 warmup + 1000 draws. Full on 100,000 rows takes
many minutes at that length, so beyond W1 it runs --full-draws (default 250)
warmup + draws per chain: ESS per second of sampling is what is compared, and it
stays comparable as long as warmup and draws keep their one-to-one ratio (its
min ESS is then that of a shorter run, not of 1000 draws).

    FRAMEWORK_CACHE_DIR=.cache .venv/bin/python benchmarks/model_v2.py \\
        [W1 W2 W2c W2p W2ps] [--match TEXT] [--draws N] [--full-draws N] [--full-on W1 ...]
"""

from __future__ import annotations

import argparse
import os
import time

from harness import measure, workload_formula

BACKENDS = ("stan", "pymc")  # default engine (pystan), default sampler (nutpie)
COLUMNS = ("compile_s", "sampling_s", "min_ess_bulk", "ess_per_s", "max_rhat", "divergences")
TARGET = {"W1": 5000, "W2": 5000}  # min bulk ESS/s with defaults; 2,000 on the rest


def configs(workload: str, draws: int, full_draws: int, full: bool) -> list[dict]:
    """Defaults and method full for each backend on one workload."""
    rows = []
    for backend in BACKENDS:
        methods = [("auto", draws)] + (
            [("full", draws if workload == "W1" else full_draws)] if full else []
        )
        for method, n in methods:
            rows.append(
                {
                    "label": f"{workload} {backend} {method}",
                    "kind": "framework",
                    "workload": workload,
                    "backend": backend,
                    "method": method,
                    "options": {},
                    "sampler": {"warmup": n, "draws": n},
                    "draws": n,
                }
            )
    return rows


def print_rows(workload: str, rows: list[dict]) -> None:
    """One workload's rows with ESS/s and the ratio against the same backend's full row."""
    print(f"\n## {workload}: {workload_formula(workload)}\n")
    print("| run | method | draws | " + " | ".join(COLUMNS) + " | x full | target |")
    print("|" + " --- |" * (len(COLUMNS) + 5))
    for r in rows:
        if "error" not in r:
            r["ess_per_s"] = (
                r["min_ess_bulk"] / r["sampling_s"] if r["sampling_s"] else float("nan")
            )
    for r in rows:
        if "error" in r:
            print(f"| {r['label']} | FAILED: {r['error']} |")
            continue
        full = next(
            (
                f
                for f in rows
                if f["label"] == r["label"].replace(" auto", " full") and "error" not in f
            ),
            None,
        )
        ratio = r["ess_per_s"] / full["ess_per_s"] if full and r is not full else float("nan")
        target = TARGET.get(workload, 2000) if r["label"].endswith("auto") else None
        verdict = (
            ""
            if target is None
            else f"{target:,} {'met' if r['ess_per_s'] >= target else 'MISSED'}"
        )
        cells = [_fmt(r.get(c)) for c in COLUMNS]
        print(
            f"| {r['label']} | {r['method']} ({r.get('engine')}) | {r['draws']} | "
            + " | ".join(cells)
            + f" | {_fmt(ratio)} | {verdict} |",
            flush=True,
        )


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["W1", "W2", "W2c", "W2p", "W2ps"])
    parser.add_argument("--match", default="", help="only runs whose label contains this")
    parser.add_argument("--draws", type=int, default=1000, help="warmup and draws per chain")
    parser.add_argument("--full-draws", type=int, default=250, help="the same for full beyond W1")
    parser.add_argument(
        "--full-on", nargs="*", default=None, help="workloads that also run method full (all)"
    )
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per run")
    args = parser.parse_args()
    print(f"started {time.strftime('%H:%M:%S')}, load average {load()}")
    for workload in args.workloads:
        chosen = [
            c
            for c in configs(
                workload,
                args.draws,
                args.full_draws,
                args.full_on is None or workload in args.full_on,
            )
            if args.match in c["label"]
        ]
        rows = [{**measure(c, args.timeout), "draws": c["draws"]} for c in chosen]
        print_rows(workload, rows)
        print(f"\n(load average {load()} at {time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
