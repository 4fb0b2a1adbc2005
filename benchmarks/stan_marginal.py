"""The Stan backend's marginal method (pystan) on W1, W2 and W3, and pystan's fixed cost per fit.

4 chains x 1000 warmup + 1000 draws, a fresh seed per run (httpstan answers a repeated
seeded request from its fit store, which would time nothing). Per workload: the program's load (or
compile) seconds, sampling seconds, the rest of the fit (drawing the group effects,
building the InferenceData), leapfrog steps per draw, divergences, min bulk ESS and
max R-hat of the hyperparameters. "overhead" samples a one-parameter program with
the same settings, so its sampling seconds are pystan's cost per fit, not compute.

    FRAMEWORK_CACHE_DIR=.cache .venv/bin/python benchmarks/stan_marginal.py [overhead W1 W2 W3]
"""

from __future__ import annotations

import json
import sys
import time

from harness import WORKLOADS, workload_file

TRIVIAL = "parameters { real y; } model { y ~ std_normal(); }"
FORMULA = "y ~ x + (x || group)"  # the workloads' model: the v1 model


def overhead() -> dict:
    from framework_stan import engine_pystan, engines

    stan = engines.import_pystan()
    with engine_pystan.httpstan_cache():
        start = time.perf_counter()
        model = stan.build(TRIVIAL, data={}, random_seed=1)
        load = time.perf_counter() - start
        start = time.perf_counter()
        model.sample(num_chains=4, num_warmup=1000, num_samples=1000)
        sampling = time.perf_counter() - start
    return {"workload": "overhead", "compile_s": round(load, 2), "sampling_s": round(sampling, 2)}


def marginal(name: str) -> dict:
    import arviz as az
    import numpy as np

    from framework import Problem, SamplerSettings
    from framework.data.load import read_file
    from framework_stan import StanBackend

    model, dataset = read_file(workload_file(name), FORMULA)
    problem = Problem(model, dataset, "marginal", "centred")
    seed = time.time_ns() % 2**31
    settings = SamplerSettings(chains=4, warmup=1000, draws=1000, seed=seed)
    start = time.perf_counter()
    idata = StanBackend().fit(problem, settings, {"engine": "pystan"})
    total = time.perf_counter() - start
    attrs, stats = idata.posterior.attrs, idata.sample_stats
    hyper = [v for v in model.variables() if v != "coef"]  # every scalar parameter's variable
    ess = az.ess(idata, var_names=hyper)
    rhat = az.rhat(idata, var_names=hyper)
    return {
        "workload": f"{name} ({WORKLOADS[name][0]} groups)",
        "seed": seed,
        "compile_s": round(attrs["compile_seconds"], 2),
        "sampling_s": round(attrs["sampling_seconds"], 2),
        "rest_s": round(total - attrs["compile_seconds"] - attrs["sampling_seconds"], 2),
        "steps_per_draw": round(float(stats["n_steps"].mean()), 2),
        "divergences": int(stats["diverging"].sum()),
        "min_ess_bulk": int(min(float(np.min(ess[v])) for v in hyper)),
        "max_rhat": round(max(float(np.max(rhat[v])) for v in hyper), 4),
        "from_cache": bool(attrs["fit_from_cache"]),
    }


if __name__ == "__main__":
    for name in sys.argv[1:] or ["overhead", "W1", "W2", "W3", "W2s", "W3s"]:
        row = overhead() if name == "overhead" else marginal(name)
        print(json.dumps(row), flush=True)
