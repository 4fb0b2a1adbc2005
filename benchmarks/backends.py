"""Issue 3: every backend and sampler on W1 (51 groups x 11 rows) and W2 (1000 x 100).

4 chains x 1000 warmup + 1000 draws, seeded. Per configuration: compile and
sampling seconds, min bulk ESS over all parameters (group effects included),
min ESS per second, max R-hat, divergences, peak memory, and the ratio of min
ESS per second against the plain pystan run of the blog's centred program
measured in the same invocation.

    .venv/bin/python benchmarks/backends.py [W1 W2] [--match "pymc full"]
"""

import sys

from harness import measure, parse_args, print_table


def configs(workload: str) -> list[dict]:
    rows = [{"label": f"{workload} blog pystan", "kind": "blog", "workload": workload}]
    for method in ("marginal", "full"):
        rows.append(
            {
                "label": f"{workload} stan {method}",
                "kind": "framework",
                "workload": workload,
                "backend": "stan",
                "method": method,
                "options": {"engine": "pystan"},
            }
        )
    for sampler in ("nutpie", "pymc", "numpyro"):
        for method in ("marginal", "full"):
            rows.append(
                {
                    "label": f"{workload} pymc {method} {sampler}",
                    "kind": "framework",
                    "workload": workload,
                    "backend": "pymc",
                    "method": method,
                    "options": {"sampler": sampler},
                }
            )
    rows.append(
        {
            "label": f"{workload} numpyro-plugin marginal",
            "kind": "framework",
            "workload": workload,
            "backend": "numpyro",
            "method": "marginal",
            "options": {},
        }
    )
    return rows


if __name__ == "__main__":
    workloads, match = parse_args(sys.argv[1:], ["W1", "W2"])
    for workload in workloads:
        print(f"\n## {workload}\n")
        rows = [measure(c) for c in configs(workload) if match in c["label"]]
        print_table(rows, {"blog": f"{workload} blog pystan"})
