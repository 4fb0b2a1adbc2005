"""Issue 2: the framework's overhead over the plain engine, and the compile cache.

Runs the blog's plain pystan program and `framework run` (Stan backend, pystan
engine) on the same simulated W1 data and settings (4 chains x 1000 warmup +
1000 draws), and prints sampling seconds, min bulk ESS per second over all
parameters, and their ratios. `full/centred` is the same algorithm as the blog
(the overhead question); `marginal` is the default fast path. The framework runs
twice: the second run must compile nothing.

    .venv/bin/python benchmarks/overhead.py
"""

from harness import measure, print_table

ROWS = [
    {"label": "blog pystan", "kind": "blog", "workload": "W1"},
    {
        "label": "framework stan full/centred",
        "kind": "framework",
        "workload": "W1",
        "backend": "stan",
        "method": "full",
        "options": {"engine": "pystan"},
        "repeat": True,
    },
    {
        "label": "framework stan marginal",
        "kind": "framework",
        "workload": "W1",
        "backend": "stan",
        "method": "marginal",
        "options": {"engine": "pystan"},
        "repeat": True,
    },
]

if __name__ == "__main__":
    rows = [measure(c) for c in ROWS]
    print_table(rows, {"blog": "blog pystan"})
    print()
    for r in rows:
        if "second_compile_s" in r:
            print(
                f"{r['label']}: second run compile {r['second_compile_s']:.2f} s, "
                f"end to end {r['second_end_to_end_s']:.1f} s (first {r['end_to_end_s']:.1f} s)"
            )
    base = rows[0]
    for r in rows[1:]:
        if "error" not in r and "error" not in base:
            print(
                f"{r['label']}: sampling seconds / blog = {r['sampling_s'] / base['sampling_s']:.3f}"
            )
