"""Benchmark harness: each configuration runs in its own process and reports one JSON line.

Separate processes give each configuration a clean peak-memory reading
(ru_maxrss of the process and of the sampler processes it started) and keep
one configuration's caches from warming another's. Ratios are always against
baselines measured in the same invocation, never against stored numbers.
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
from workloads import V2, formula, write

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
os.environ.setdefault("FRAMEWORK_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("PYTENSOR_FLAGS", f"compiledir={ROOT / '.cache' / 'pytensor'}")

# W1-W3's truth in the v2 names: `y ~ x + (x || group)`, the v1 model.
TRUTH = {"beta": (20.0, 1.0), "group_sd": (5.0, 0.5), "sigma": 5.0}
V1_FORMULA = "y ~ x + (x || group)"
WORKLOADS = {
    # name: (groups, rows per group). W1-W3 are panels like the blog's (every group observed
    # at the same x), so all groups share one design (framework.designs); the "s" variants
    # draw x afresh for every row, so every group is its own design: the general case.
    "W1": (51, 11),
    "W2": (1000, 100),
    "W3": (10_000, 1000),
    "W2s": (1000, 100),
    "W3s": (10_000, 1000),
    **{name: spec[:2] for name, spec in V2.items()},  # W2c, W2p, W2ps: see workloads.py
}

# The blog's program, in today's Stan syntax (`<-` and `int county[N]` are gone), with
# the blog's declarations kept: only lower=0 on the sigmas, priors as written.
BLOG_PROGRAM = """
data {
  int<lower=0> N;
  int<lower=0> J;
  vector[N] y;
  vector[N] x;
  array[N] int county;
}
parameters {
  real intercept_mu;
  real<lower=0> intercept_sigma;
  real slope_mu;
  real<lower=0> slope_sigma;
  real<lower=0> error_sigma;
  vector[J] intercept;
  vector[J] slope;
}
model {
  intercept_mu ~ normal(0, 100);
  intercept_sigma ~ uniform(0, 100);
  slope_mu ~ normal(0, 100);
  slope_sigma ~ uniform(0, 100);
  error_sigma ~ uniform(0, 100);
  intercept ~ normal(intercept_mu, intercept_sigma);
  slope ~ normal(slope_mu, slope_sigma);
  y ~ normal(intercept[county] + slope[county] .* x, error_sigma);
}
"""


def parse_args(argv: list[str], default: list[str]) -> tuple[list[str], str]:
    """Workloads named on the command line, and `--match TEXT` (only rows whose label has it)."""
    match = ""
    if "--match" in argv:  # e.g. --match "pymc full": only those rows (and no baseline)
        at = argv.index("--match")
        match, argv = argv[at + 1], argv[:at] + argv[at + 2 :]
    return argv or default, match


def workload_file(name: str) -> Path:
    """Write the workload's seeded simulated data once (Parquet) and return its path."""
    groups, rows = WORKLOADS[name]
    path = DATA / f"{name}.parquet"
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    if name in V2:
        write(name, path)
        return path
    rng = np.random.default_rng({"W1": 1, "W2": 2, "W3": 3, "W2s": 4, "W3s": 5}[name])
    (a_mean, b_mean), (a_sd, b_sd) = TRUTH["beta"], TRUTH["group_sd"]
    a = rng.normal(a_mean, a_sd, groups)
    b = rng.normal(b_mean, b_sd, groups)
    codes = np.repeat(np.arange(groups, dtype=np.int32), rows)
    if name.endswith("s"):
        x = rng.uniform(0.0, 10.0, len(codes))
    else:
        x = np.tile(np.arange(rows, dtype=float) / max(rows / 11, 1), groups)  # 0..10 like W1
    y = a[codes] + b[codes] * x + rng.normal(0, TRUTH["sigma"], len(codes))
    labels = pa.array([f"g{j:05d}" for j in range(groups)])
    table = pa.table(
        {"group": pa.DictionaryArray.from_arrays(pa.array(codes), labels), "x": x, "y": y}
    )
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def workload_formula(name: str) -> str:
    return formula(name) if name in V2 else V1_FORMULA


def spec_for(name: str, folder: Path, **sampler) -> Path:
    import yaml

    # W1-W3 keep the v1 spec form (it maps onto V1_FORMULA); the v2 workloads use formulas.
    model = (
        {"formula": formula(name)}
        if name in V2
        else {"response": "y", "predictor": "x", "group": "group"}
    )
    spec = {
        "name": f"bench-{name}",
        "data": {"path": str(workload_file(name))},
        "model": model,
        "sampler": {"chains": 4, "warmup": 1000, "draws": 1000, "seed": 1, **sampler},
        "output": {"dir": str(folder / "run"), "plots": False},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def min_ess_all(idata, names) -> tuple[float, float]:
    """Min bulk ESS and max R-hat over every parameter listed (group effects included)."""
    from framework.results.convergence import diagnostics

    worst_ess, worst_rhat = np.inf, 0.0
    for name in names:
        v = np.asarray(idata.posterior[name].values, dtype=float)
        rhat, bulk, _ = diagnostics(v.reshape(v.shape[0], v.shape[1], -1))
        worst_ess, worst_rhat = min(worst_ess, np.nanmin(bulk)), max(worst_rhat, np.nanmax(rhat))
    return float(worst_ess), float(worst_rhat)


# ---------------------------------------------------------------- one configuration (child)


def run_framework(
    workload: str,
    backend: str,
    method: str,
    options: dict,
    repeat: bool = False,
    sampler: dict | None = None,
) -> dict:
    """`framework run` in-process, timed by stage; with `repeat`, a second run shows the compile cache."""
    import framework
    from framework.results.run_directory import atomic_directory, write_run
    from framework.runner import fit, prepare, summarise

    def once(spec, folder: Path) -> dict:
        t0 = time.perf_counter()
        prepared = prepare(spec)
        idata = fit(prepared)
        result = summarise(prepared, idata)
        with atomic_directory(folder / "run") as out:
            write_run(out, result)
        attrs, d = idata.posterior.attrs, result.diagnostics
        return {
            "read_reduce_s": prepared.seconds["prepare"],
            "compile_s": float(attrs.get("compile_seconds", np.nan)),
            "sampling_s": float(attrs["sampling_seconds"]),
            "min_ess_bulk": d["min_ess_bulk"],
            "max_rhat": d["max_r_hat"],
            "divergences": d["divergences"],
            "end_to_end_s": time.perf_counter() - t0,
            "engine": attrs.get("engine"),
            "method": f"{d['method']}{'/' + d['parameterisation'] if d['method'] == 'full' else ''}",
        }

    with tempfile.TemporaryDirectory() as tmp:
        spec = framework.load_spec(
            spec_for(workload, Path(tmp), method=method, **(sampler or {})),
            [f"backend.name={backend}"],
        )
        spec = spec.model_copy(
            update={"backend": spec.backend.model_copy(update={"options": options})}
        )
        out = once(spec, Path(tmp))
        if repeat:
            # A new seed so no sampler-side fit cache can answer: only the compile cache may help.
            again = once(
                spec.model_copy(update={"sampler": spec.sampler.model_copy(update={"seed": 2})}),
                Path(tmp),
            )
            out["second_compile_s"] = again["compile_s"]
            out["second_end_to_end_s"] = again["end_to_end_s"]
    return out


def run_blog_pystan(workload: str) -> dict:
    """The blog's program with plain pystan: the baseline."""
    import pyarrow.parquet as pq
    import stan

    from framework.cache import cache_dir

    os.environ["XDG_CACHE_HOME"] = str(cache_dir("httpstan"))  # share the compiled-model cache
    t0 = time.perf_counter()
    table = pq.read_table(workload_file(workload))
    codes = table.column("group").combine_chunks().indices.to_numpy().astype(int)
    data = {
        "N": len(codes),
        "J": int(codes.max()) + 1,
        "county": (codes + 1).tolist(),
        "x": table.column("x").to_numpy().tolist(),
        "y": table.column("y").to_numpy().tolist(),
    }
    read_s = time.perf_counter() - t0
    t = time.perf_counter()
    model = stan.build(BLOG_PROGRAM, data=data, random_seed=1)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    fit = model.sample(num_chains=4, num_warmup=1000, num_samples=1000)
    sampling_s = time.perf_counter() - t
    import arviz as az

    idata = az.from_pystan(posterior=fit)
    ess, rhat = min_ess_all(
        idata,
        [
            "intercept_mu",
            "intercept_sigma",
            "slope_mu",
            "slope_sigma",
            "error_sigma",
            "intercept",
            "slope",
        ],
    )
    return {
        "read_reduce_s": read_s,
        "compile_s": compile_s,
        "sampling_s": sampling_s,
        "min_ess_bulk": ess,
        "max_rhat": rhat,
        "divergences": int(np.asarray(fit["divergent__"]).sum()),
        "end_to_end_s": time.perf_counter() - t0,
        "engine": "pystan",
        "method": "blog program",
    }


def run_bambi_default(workload: str) -> dict:
    """Bambi's defaults: `y ~ x + (x | group)`, default priors, PyMC NUTS."""
    import bambi as bmb
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    frame = pq.read_table(workload_file(workload)).to_pandas()
    frame["group"] = frame["group"].astype(str)
    read_s = time.perf_counter() - t0
    t = time.perf_counter()
    model = bmb.Model("y ~ x + (x | group)", frame)
    idata = model.fit(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
    fit_s = time.perf_counter() - t
    names = [v for v in idata.posterior.data_vars if not v.startswith("mu")]
    ess, rhat = min_ess_all(idata, names)
    return {
        "read_reduce_s": read_s,
        "compile_s": float("nan"),
        "sampling_s": fit_s,
        "min_ess_bulk": ess,
        "max_rhat": rhat,
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "end_to_end_s": time.perf_counter() - t0,
        "engine": "bambi+pymc",
        "method": "bambi default",
    }


def child(config: dict) -> dict:
    kind = config["kind"]
    if kind == "blog":
        out = run_blog_pystan(config["workload"])
    elif kind == "bambi":
        out = run_bambi_default(config["workload"])
    else:
        out = run_framework(
            config["workload"],
            config["backend"],
            config["method"],
            config.get("options", {}),
            config.get("repeat", False),
            config.get("sampler"),
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["peak_mem_mb"] = max(own, kids) / 1024
    return out


# ---------------------------------------------------------------- the parent


def measure(config: dict, timeout: float = 3600) -> dict:
    """Run one configuration in a fresh process; its failure is reported, not raised."""
    label = config["label"]
    print(f"... {label}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(
            [sys.executable, __file__, json.dumps(config)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"label": label, "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"label": label, "error": tail[:200]}
    return {"label": label, **json.loads(lines[-1])}


def print_table(rows: list[dict], baselines: dict[str, str]) -> None:
    """Rows plus ratios of min-ESS-per-second against each named baseline row."""
    for r in rows:
        if "error" not in r:
            r["ess_per_s"] = (
                r["min_ess_bulk"] / r["sampling_s"] if r["sampling_s"] > 0 else float("nan")
            )
    base = {
        k: next((r for r in rows if r["label"] == v and "error" not in r), None)
        for k, v in baselines.items()
    }
    cols = [
        "label",
        "read_reduce_s",
        "compile_s",
        "sampling_s",
        "min_ess_bulk",
        "ess_per_s",
        "max_rhat",
        "divergences",
        "peak_mem_mb",
    ] + [f"x_{k}" for k in baselines]
    print(" | ".join(cols))
    print(" | ".join("---" for _ in cols))
    for r in rows:
        if "error" in r:
            print(f"{r['label']} | FAILED: {r['error']}")
            continue
        for k, b in base.items():
            r[f"x_{k}"] = (
                r["ess_per_s"] / b["ess_per_s"] if b and b["ess_per_s"] > 0 else float("nan")
            )
        print(" | ".join(_fmt(r.get(c)) for c in cols))


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if np.isnan(v) else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}")
    return str(v)


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
