"""The Stan backend's marginal method (pystan) on W1, W2 and W3, and pystan's fixed cost per fit.

4 chains x 1000 warmup + 1000 draws, a fresh seed per run (httpstan answers a repeated
seeded request from its fit store, which would time nothing). Per workload: the program's load (or
compile) seconds, sampling seconds, the rest of the fit (drawing the group effects,
building the InferenceData), leapfrog steps per draw, divergences, min bulk ESS and
max R-hat over every parameter (beta, group_sd, group_corr, sigma and every group's coef). "overhead" samples a one-parameter program with
the same settings, so its sampling seconds are pystan's cost per fit, not compute.

    FRAMEWORK_CACHE_DIR=.cache .venv/bin/python benchmarks/stan_marginal.py \
        [overhead W1 W2 W3 W2s W3s W2c W2p W2ps]
"""

from __future__ import annotations

import json
import sys
import time

from harness import WORKLOADS, workload_file, workload_formula

TRIVIAL = "parameters { real y; } model { y ~ std_normal(); }"


def overhead() -> dict:
    from framework_stan import engine_pystan, engines

    stan = engines.import_pystan()
    with engine_pystan.httpstan_cache():
        start = time.perf_counter()
        # a fresh seed: httpstan answers a repeated seeded request from its fit store
        model = stan.build(TRIVIAL, data={}, random_seed=time.time_ns() % 2**31)
        load = time.perf_counter() - start
        start = time.perf_counter()
        model.sample(num_chains=4, num_warmup=1000, num_samples=1000)
        sampling = time.perf_counter() - start
    return {"workload": "overhead", "compile_s": round(load, 2), "sampling_s": round(sampling, 2)}


def marginal(name: str) -> dict:
    from framework import Problem, SamplerSettings
    from framework.data.load import read_file
    from framework.results.diagnostics import diagnose
    from framework_stan import StanBackend

    model, dataset = read_file(workload_file(name), workload_formula(name), keep_rows=False)
    problem = Problem(model, dataset, "marginal", "centred")
    seed = time.time_ns() % 2**31
    settings = SamplerSettings(chains=4, warmup=1000, draws=1000, seed=seed)
    start = time.perf_counter()
    idata = StanBackend().fit(problem, settings, {"engine": "pystan"})
    total = time.perf_counter() - start
    attrs, stats = idata.posterior.attrs, idata.sample_stats
    checked = diagnose(idata, model)  # every parameter, each group's coefficients included
    return {
        "workload": f"{name} ({WORKLOADS[name][0]} groups)",
        "seed": seed,
        "compile_s": round(attrs["compile_seconds"], 2),
        "sampling_s": round(attrs["sampling_seconds"], 2),
        "rest_s": round(total - attrs["compile_seconds"] - attrs["sampling_seconds"], 2),
        "steps_per_draw": round(float(stats["n_steps"].mean()), 2),
        "divergences": int(stats["diverging"].sum()),
        "min_ess_bulk": int(checked["min_ess_bulk"]),
        "max_rhat": round(checked["max_r_hat"], 4),
        "from_cache": bool(attrs["fit_from_cache"]),
    }


if __name__ == "__main__":
    for name in sys.argv[1:] or ["overhead", "W1", "W2", "W3", "W2s", "W3s"]:
        row = overhead() if name == "overhead" else marginal(name)
        print(json.dumps(row), flush=True)
