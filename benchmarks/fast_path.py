"""Issue 5: the exact fast path on W1, W2 and W3 (10,000 groups x 1,000 rows = 10 million rows).

Per method and backend: read-and-reduce seconds, compile seconds, sampling
seconds, min bulk ESS over all parameters (group effects included), min ESS per
second, max R-hat, peak memory and end-to-end seconds; ratios of min ESS per
second against the blog's pystan program and against Bambi's default run,
both measured in the same invocation (on W1 and W2 only: on W2 they take an
hour). Each Parquet file is written by the benchmark itself. W1-W3 are panels
(every group observed at the same x, so one shared design); W2s and W3s draw x
for every row (every group its own design): the general case.

    .venv/bin/python benchmarks/fast_path.py [W1 W2 W3 W2s W3s] [--match "stan marginal"]
"""

import sys

from harness import measure, parse_args, print_table

FAST = [("stan", {"engine": "pystan"}), ("pymc", {"sampler": "nutpie"}), ("numpyro", {})]


def configs(workload: str) -> list[dict]:
    rows = []
    if workload in ("W1", "W2"):  # the baselines take an hour on W2 already
        rows.append({"label": f"{workload} blog pystan", "kind": "blog", "workload": workload})
        rows.append({"label": f"{workload} bambi default", "kind": "bambi", "workload": workload})
        rows.append(
            {
                "label": f"{workload} stan full/auto",
                "kind": "framework",
                "workload": workload,
                "backend": "stan",
                "method": "full",
                "options": {"engine": "pystan"},
            }
        )
    for backend, options in FAST:
        rows.append(
            {
                "label": f"{workload} {backend} marginal",
                "kind": "framework",
                "workload": workload,
                "backend": backend,
                "method": "marginal",
                "options": options,
                "repeat": workload.startswith("W3"),
            }
        )
    return rows


if __name__ == "__main__":
    workloads, match = parse_args(sys.argv[1:], ["W1", "W2", "W3", "W2s", "W3s"])
    for workload in workloads:
        print(f"\n## {workload}\n")
        rows = [measure(c) for c in configs(workload) if match in c["label"]]
        print_table(rows, {"blog": f"{workload} blog pystan", "bambi": f"{workload} bambi default"})
        for r in rows:
            if "second_end_to_end_s" in r:
                print(
                    f"{r['label']}: end to end {r['end_to_end_s']:.1f} s first, "
                    f"{r['second_end_to_end_s']:.1f} s with the compile cache warm"
                )
