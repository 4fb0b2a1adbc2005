"""Scale: 10^7 and 10^8 rows through the local Arrow reader and a 2-worker Dask cluster.

    nice .venv/bin/python benchmarks/scale.py [W3 W4 W4s] [--engines arrow,dask] [--no-duckdb]

W3 = 10^4 groups x 1,000 rows (10^7), W4 = 10^6 groups x 100 rows (10^8), both
panels (every group observed at the same x, so all groups share one design);
W4s draws x per row (every group its own design: a gradient of the marginal
likelihood then costs 10^6 group terms). Each is written once as a partitioned
Parquet dataset under .cache/bench/NAME/ (reused when present). Each (workload,
engine) runs in its own process: read-and-reduce, sampling and whole-run
seconds, and the client's peak memory (ru_maxrss of that process; Dask workers
and the CmdStan sampler are other processes, reported apart). DuckDB's GROUP BY
of the same sums (count, sum y, sum x, sum xx, sum xy, sum yy) over the same
files is the physical anchor for the read. Ratios are against the arrow engine
measured in the same invocation. Prints one JSON line per configuration, then a
table, with the load average (the machine is shared).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".cache" / "bench"
os.environ.setdefault("FRAMEWORK_CACHE_DIR", str(ROOT / ".cache"))
# The sampler: CmdStan's marginal program (compiled once into the cache).
os.environ.setdefault("CMDSTAN", "/root/.cache/framework-cmdstan/cmdstan-2.35.0")

# name: (groups, rows per group, panel, groups per Parquet file, seed)
WORKLOADS = {
    "W3": (10_000, 1000, True, 1000, 3),
    "W4": (1_000_000, 100, True, 20_000, 4),
    "W4s": (1_000_000, 100, False, 20_000, 5),
}
TRUTH = {"beta": (20.0, 1.0), "group_sd": (5.0, 0.5), "sigma": 5.0}
FORMULA = "y ~ x + (x || group)"
# 2 chains x 250 draws after 250 warmup: a marginal fit's ESS per draw is near 1, and
# the hyperparameters of 10^8 rows are pinned down; what is measured is the plumbing.
SAMPLER = {"chains": 2, "warmup": 250, "draws": 250, "seed": 1, "method": "marginal"}
TIMEOUT = 1800


def dataset_dir(name: str) -> Path:
    """Write the workload once as Parquet files of whole groups; return the folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    groups, rows, panel, per_file, seed = WORKLOADS[name]
    folder = BENCH / name
    done = folder / "_COMPLETE"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (a_mean, b_mean), (a_sd, b_sd) = TRUTH["beta"], TRUTH["group_sd"]
    t0 = time.perf_counter()
    for part, start in enumerate(range(0, groups, per_file)):
        rng = np.random.default_rng([seed, part])
        n = min(per_file, groups - start)
        a, b = rng.normal(a_mean, a_sd, n), rng.normal(b_mean, b_sd, n)
        codes = np.repeat(np.arange(n, dtype=np.int32), rows)
        if panel:  # the same 0..10 grid in every group, as W1-W3
            x = np.tile(np.arange(rows, dtype=float) / max(rows / 11, 1), n)
        else:
            x = rng.uniform(0.0, 10.0, len(codes))
        y = a[codes] + b[codes] * x + rng.normal(0.0, TRUTH["sigma"], len(codes))
        labels = pa.array([f"g{start + j:07d}" for j in range(n)])
        table = pa.table(
            {"group": pa.DictionaryArray.from_arrays(pa.array(codes), labels), "x": x, "y": y}
        )
        pq.write_table(table, folder / f"part-{part:04d}.parquet")
    done.write_text(f"{time.perf_counter() - t0:.1f} s to write\n")
    return folder


def duckdb_anchor(folder: Path) -> dict:
    """DuckDB's GROUP BY of the six sums over the same files (2 threads): the read's floor."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    t0 = time.perf_counter()
    n = con.execute(
        'SELECT count(*) FROM (SELECT "group", count(*), sum(y), sum(x), sum(x*x), sum(x*y), '
        f"sum(y*y) FROM read_parquet('{folder}/*.parquet') GROUP BY \"group\")"
    ).fetchone()[0]
    return {"read_reduce_s": time.perf_counter() - t0, "groups": int(n)}


def run_framework(name: str, engine: str) -> dict:
    """One run in this process, timed by stage, with the outputs written as `framework run` does."""
    import yaml

    import framework
    from framework.results.run_directory import atomic_directory, write_run
    from framework.runner import fit, prepare, summarise

    folder = dataset_dir(name)
    with tempfile.TemporaryDirectory(dir=BENCH) as tmp:
        data = {"path": str(folder)}
        if engine == "dask":
            data.update(engine="dask", dask={"n_workers": 2})
        spec_file = Path(tmp) / "spec.yaml"
        spec_file.write_text(
            yaml.safe_dump(
                {
                    "name": f"scale-{name}",
                    "data": data,
                    "model": {"formula": FORMULA},
                    "backend": {"name": "stan", "options": {"engine": "cmdstanpy"}},
                    "sampler": SAMPLER,
                    "output": {"dir": str(Path(tmp) / "run"), "plots": False},
                }
            )
        )
        spec = framework.load_spec(spec_file)
        t0 = time.perf_counter()
        prepared = prepare(spec)
        t1 = time.perf_counter()
        idata = fit(prepared)
        t2 = time.perf_counter()
        result = summarise(prepared, idata)
        t3 = time.perf_counter()
        with atomic_directory(Path(tmp) / "run") as out:
            write_run(out, result)
            size = (out / "posterior.nc").stat().st_size
        t4 = time.perf_counter()
        attrs = idata.posterior.attrs
        return {
            "read_reduce_s": t1 - t0,
            "fit_s": t2 - t1,
            "sampling_s": float(attrs["sampling_seconds"]),
            "summaries_s": t3 - t2,
            "write_s": t4 - t3,
            "whole_run_s": t4 - t0,
            "groups": int(result.estimates["group"].nunique()),
            "coef_in_posterior": "coef" in idata.posterior,
            "posterior_mb": size / 2**20,
            "max_rhat": result.diagnostics["max_r_hat"],
        }


def child(config: dict) -> dict:
    if config["engine"] == "duckdb":
        out = duckdb_anchor(dataset_dir(config["workload"]))
    else:
        out = run_framework(config["workload"], config["engine"])
    out["client_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["children_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def measure(config: dict) -> dict:
    """Run one configuration in a fresh process (a clean peak-memory reading); report failures."""
    label = f"{config['workload']}/{config['engine']}"
    print(f"... {label} (load average {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(config)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return {"label": label, "error": f"timed out after {TIMEOUT} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"label": label, "error": tail[:300]}
    row = {"label": label, **json.loads(lines[-1]), "process_s": time.perf_counter() - t0}
    row["load_avg_1m"] = os.getloadavg()[0]
    return row


def main(argv: list[str]) -> None:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return
    engines = ["arrow", "dask"]
    duck = "--no-duckdb" not in argv
    if "--engines" in argv:
        engines = argv[argv.index("--engines") + 1].split(",")
        unknown = set(engines) - {"arrow", "dask"}
        if unknown:
            sys.exit(f"--engines: unknown {', '.join(sorted(unknown))}; use arrow, dask or both")
    names = [a for a in argv if a in WORKLOADS] or ["W3", "W4"]
    for name in names:  # write the data first, outside any timing
        t0 = time.perf_counter()
        folder = dataset_dir(name)
        print(f"{name}: {folder} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    rows = []
    for name in names:
        configs = (["duckdb"] if duck else []) + engines
        for engine in configs:
            row = measure({"workload": name, "engine": engine})
            print(json.dumps(row), flush=True)
            rows.append(row)
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    cols = [
        "label",
        "read_reduce_s",
        "sampling_s",
        "summaries_s",
        "whole_run_s",
        "client_peak_mb",
        "children_peak_mb",
        "groups",
        "vs_arrow_read",
        "vs_arrow_whole",
        "load_avg_1m",
    ]
    arrow = {r["label"].split("/")[0]: r for r in rows if r["label"].endswith("/arrow")}
    print()
    print(" | ".join(cols))
    for r in rows:
        base = arrow.get(r["label"].split("/")[0], {})
        if "error" not in r and "read_reduce_s" in base:
            r["vs_arrow_read"] = r["read_reduce_s"] / base["read_reduce_s"]
            if "whole_run_s" in r and "whole_run_s" in base:
                r["vs_arrow_whole"] = r["whole_run_s"] / base["whole_run_s"]
        if "error" in r:
            print(f"{r['label']} | ERROR {r['error']}")
            continue
        print(" | ".join(_fmt(r.get(c)) for c in cols))


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
    else:
        main(sys.argv[1:])
