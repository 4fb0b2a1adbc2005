"""Where a pystan fit's wall time goes, against CmdStan on the same program and data (issue 10).

For one workload's marginal program (default W1), 1000 warmup + 1000 draws per chain:
- CmdStan (the baseline; CMDSTAN or --cmdstan): wall seconds, each chain's own elapsed
  seconds (Stan's clock) and the chains' CPU seconds, 4 chains in parallel and 1 alone.
- fork_pool_s, dlopen_s: forking httpstan's worker pool, and a worker's first import (dlopen)
  of the model's services extension; the engine does both before its sampling timer.
- pystan, per variant, chain count and refresh: `model.sample` wall seconds; when the first
  chain started and the last ended inside the workers (after that: pystan's 50 ms poll, the
  fits' transfer and parse); a chain's mean run time; the chains' and the parent's CPU
  seconds; megabytes of messages the chains sent; pystan's parse of them (client_parse_s).
  Variants: "httpstan" (httpstan's reader and pool: the engine before issue 10's fix),
  "reader" (the engine's reader, httpstan's pool of one worker per CPU), "engine" (the
  engine's reader and pool). Variants alternate within each repetition and report their
  median, so a neighbour's load hits them alike; x_httpstan_4 is wall-time speed-up against
  "httpstan" at 4 chains and refresh 20 in this invocation.

    FRAMEWORK_CACHE_DIR=.cache .venv/bin/python benchmarks/pystan_breakdown.py [W1] [--reps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from harness import workload_file, workload_formula

# this machine's CmdStan unless CMDSTAN names one; it only serves as the compute baseline
CMDSTAN = os.environ.get("CMDSTAN") or os.path.expanduser(
    "~/.cache/framework-cmdstan/cmdstan-2.35.0"
)
VARIANTS = ("httpstan", "reader", "engine")  # reader: the engine's reader, httpstan's pool
TIMES = os.path.join(tempfile.gettempdir(), f"pystan_breakdown_{os.getpid()}.jsonl")


def problem_for(name: str):
    from framework import Problem
    from framework.data.load import read_file

    model, dataset = read_file(workload_file(name), workload_formula(name), keep_rows=False)
    return Problem(model, dataset, "marginal", "centred")


def cmdstan_rows(problem, code: str, data: dict, path: str) -> list[dict]:
    """CmdStan's wall and per-chain seconds for the same program, data and settings."""
    from framework_stan import engine_cmdstanpy, engines
    from framework_stan.interrupt import ProcessStop

    install = engines.locate_cmdstan(path)
    if not install:  # the baseline is optional
        return [{"variant": "cmdstan", "error": install.reason()}]
    rows = []
    with engines.cmdstan_at(install.path):
        model, _ = engine_cmdstanpy.compile_model(problem, install, code, ProcessStop())
        for chains in (4, 1):
            with tempfile.TemporaryDirectory() as folder:
                start, cpu = time.perf_counter(), os.times()
                fit = model.sample(
                    data=data, chains=chains, parallel_chains=chains, iter_warmup=1000,
                    iter_sampling=1000, seed=time.time_ns() % 2**31, output_dir=folder,
                    show_progress=False, refresh=20,
                )  # fmt: skip
                wall, after = time.perf_counter() - start, os.times()
            per_chain = [t["total"] for t in fit.time]
            rows.append(
                {
                    "variant": "cmdstan",
                    "chains": chains,
                    "wall_s": round(wall, 3),
                    "chain_run_s": round(statistics.mean(per_chain), 3),
                    "chains_cpu_s": round(
                        after.children_user
                        - cpu.children_user
                        + after.children_system
                        - cpu.children_system,
                        3,
                    ),
                }  # fmt: skip
            )
    return rows


def _timed(basename, model_name, *args, **kwargs):
    """httpstan's in-worker entry point, recording each chain's start, end and CPU seconds."""
    start, cpu = time.perf_counter(), time.process_time()  # CLOCK_MONOTONIC: one clock for all
    try:
        return _ORIGINAL[0](basename, model_name, *args, **kwargs)
    finally:
        row = {"start": start, "end": time.perf_counter(), "cpu": time.process_time() - cpu}
        with open(TIMES, "a") as out:
            out.write(json.dumps(row) + "\n")


_ORIGINAL: list = []  # httpstan's entry point, which `_timed` wraps (module level: pickled by name)


def fork_pool() -> tuple[float, ProcessPoolExecutor]:
    """Seconds to fork httpstan's pool of workers (the engine does it before its timer)."""
    import httpstan.services_stub as stub

    start = time.perf_counter()
    pool = ProcessPoolExecutor(mp_context=get_context("fork"), initializer=stub.init_worker)
    pool.submit(int).result()
    return time.perf_counter() - start, pool


def dlopen_seconds(pool, model_name: str) -> float:
    """Seconds a worker forked before the build takes to import the model's extension."""
    start = time.perf_counter()
    pool.submit(_import_model, model_name).result()
    return time.perf_counter() - start


def _import_model(model_name: str) -> None:
    import httpstan.models

    httpstan.models.import_services_extension_module(model_name)


def sample_once(model, variant: str, chains: int, refresh: int) -> dict:
    """One `model.sample` with fresh seed; the breakdown of its wall time."""
    import stan.fit

    from framework_stan.httpstan_reader import concurrent_reader

    object.__setattr__(model, "random_seed", time.time_ns() % 2**31)  # no fit-store answer
    with contextlib.suppress(FileNotFoundError):
        os.remove(TIMES)
    reader = contextlib.nullcontext() if variant == "httpstan" else concurrent_reader()
    start, cpu = time.perf_counter(), os.times()
    with reader:
        model.sample(num_chains=chains, num_warmup=1000, num_samples=1000, refresh=refresh)
    wall, after = time.perf_counter() - start, os.times()
    with open(TIMES) as lines:
        chain_times = [json.loads(line) for line in lines]
    parse = _parse_seconds(model, chains, stan.fit.Fit)
    return {
        "wall_s": wall,
        "first_chain_start_s": min(c["start"] for c in chain_times) - start,
        "last_chain_end_s": max(c["end"] for c in chain_times) - start,
        "after_chains_s": start + wall - max(c["end"] for c in chain_times),
        "chain_run_s": statistics.mean(c["end"] - c["start"] for c in chain_times),
        "chains_cpu_s": sum(c["cpu"] for c in chain_times),
        "parent_cpu_s": after.user - cpu.user + after.system - cpu.system,
        "messages_mb": parse[1] / 1e6,
        "client_parse_s": parse[0],
    }


def _parse_seconds(model, chains: int, fit_class) -> tuple[float, int]:
    """Seconds pystan's Fit takes to read the chains' messages again, and their size."""
    import gzip

    import httpstan.cache

    folder = httpstan.cache.model_directory(model.model_name) / "fits"
    newest = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)[-chains:]
    outputs = tuple(gzip.decompress(p.read_bytes()) for p in newest)
    start = time.perf_counter()
    fit_class(
        outputs, chains, model.param_names, model.constrained_param_names, model.dims,
        1000, 1000, 1, False,
    )  # fmt: skip
    return time.perf_counter() - start, sum(map(len, outputs))


def use_pool(variant: str, chains: int) -> None:
    """The engine's pool for "engine"; else a fresh one as httpstan makes (one worker per CPU)."""
    import httpstan.services_stub as stub

    from framework_stan import engine_pystan

    if variant == "engine":
        engine_pystan.workers_for(os.environ["XDG_CACHE_HOME"], chains)
        return
    stub.executor.shutdown()
    stub.executor = ProcessPoolExecutor(
        mp_context=get_context("fork"), initializer=stub.init_worker
    )
    stub.executor.submit(int).result()  # forked before the timer, as the engine does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", default="W1")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cmdstan", default=CMDSTAN, help="CmdStan folder for the baseline")
    args = parser.parse_args()
    import httpstan.services_stub as stub

    from framework_stan import engine_pystan, engines, program, stanc

    print(f"started {time.strftime('%H:%M:%S')}, load average {os.getloadavg()}", flush=True)
    problem = problem_for(args.workload)
    code, data = program.program_for(problem), program.data_for(problem)
    for row in cmdstan_rows(problem, code, data, args.cmdstan):
        print(json.dumps(row), flush=True)
    stan = engines.import_pystan()
    _ORIGINAL.append(stub._make_lazy_function_wrapper_helper)
    stub._make_lazy_function_wrapper_helper = _timed
    with engine_pystan.httpstan_cache(), contextlib.redirect_stderr(open(os.devnull, "w")):
        fork, pool = fork_pool()
        with stanc.with_program_options():
            model = stan.build(code, data=data, random_seed=1)
        print(json.dumps({"model": model.model_name, "load_average": os.getloadavg()}))
        dlopen = dlopen_seconds(pool, model.model_name)
        pool.shutdown()
        print(json.dumps({"fork_pool_s": round(fork, 3), "dlopen_s": round(dlopen, 3)}))
        variants = [(v, 4, 20) for v in VARIANTS] + [(v, 4, 200) for v in VARIANTS]
        variants += [(v, c, 20) for c in (2, 1) for v in ("httpstan", "engine")]
        results: dict[tuple, list[dict]] = {k: [] for k in variants}
        for _ in range(args.reps):
            for key in variants:
                use_pool(key[0], key[1])
                results[key].append(sample_once(model, *key))
    base = statistics.median(r["wall_s"] for r in results[("httpstan", 4, 20)])
    for (variant, chains, refresh), runs in results.items():
        row = {"variant": variant, "chains": chains, "refresh": refresh}
        for field in runs[0]:
            row[field] = round(statistics.median(r[field] for r in runs), 3)
        row["x_httpstan_4"] = round(base / row["wall_s"], 2)
        print(json.dumps(row), flush=True)
    print(f"done {time.strftime('%H:%M:%S')}, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
