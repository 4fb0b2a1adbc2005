"""Issue 13: where a whole `framework run` process spends its time, compile cache warm.

Each measurement is a fresh process. For W1 (specs/rainfall.yaml) and W2
(1,000 groups x 100 rows, see harness.py) it prints the plain CLI's wall time
and, from an instrumented run of the same CLI under `python -X importtime`, the
breakdown by stage (interpreter start, spec, data, backend start, sampling,
posterior assembly, diagnostics, NetCDF, CSVs, plots, summary) with the import
time spent inside each stage. `framework --help` and `framework validate` are
timed too, and so is a run in a warm process (the same spec run again by
`framework.run` in one Python process, as in a notebook: what is left once
nothing is imported), and baselines run in the same invocation (`python -c pass`,
`python -c "import numpy, pandas"`) so ratios survive a loaded machine.
Everything repeats 3 times interleaved; figures are medians.

    nice .venv/bin/python benchmarks/latency.py            # W1 and W2, Stan backend
    nice .venv/bin/python benchmarks/latency.py W1 --repeat 1 --backend pymc
    nice .venv/bin/python benchmarks/latency.py --stan-only  # as if only framework[stan] were installed

`--stan-only` blocks the imports a `pip install 'framework[stan]'` would not
have (pymc, pytensor, numba, nutpie, bambi and the arviz-* preview packages
that bambi pulls in) with tests/import_blocker/sitecustomize.py.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
FRAMEWORK = [PYTHON, "-m", "framework.cli"]
TARGETS = {"W1": 1.5, "W2": 2.5, "--help": 0.5, "validate": 0.5}  # idle 2-core machine, seconds
STAN_ONLY_BLOCKS = "pymc,pytensor,numba,nutpie,bambi,arviz_base,arviz_stats,arviz_plots"

# (module, attribute) -> stage: the instrumented child times each call, imports included.
STAGES = {
    ("framework.spec.load", "load_spec"): "spec",
    ("framework.backends.plugins", "get_registry"): "plugins",
    ("framework.backends.registry", "BackendRegistry.require_available"): "availability",
    ("framework.runner", "load"): "data",
    ("framework.runner", "prepare"): "prepare",
    ("framework.runner", "fit"): "fit",
    ("stan", "build"): "stan.build",
    ("stan.common", "HttpstanClient.__aenter__"): "server start",
    ("stan.model", "Model.sample"): "sampling",
    ("cmdstanpy", "CmdStanModel.sample"): "sampling",
    ("framework.backends.posterior", "complete_posterior"): "posterior",
    ("framework.backends.posterior", "build_posterior"): "build_posterior",
    ("framework.backends.posterior", "check_posterior"): "check_posterior",
    ("framework.runner", "summarise"): "summarise",
    ("framework.results.diagnostics", "diagnose"): "diagnostics",
    ("framework.results.run_directory", "write_run"): "write_run",
    ("framework.backends.posterior_groups", "Posterior.to_netcdf"): "netcdf",
    ("arviz.data.inference_data", "InferenceData.to_netcdf"): "netcdf",  # a backend's own idata
    ("pandas.core.generic", "NDFrame.to_csv"): "csv",
    ("framework.results.plot_process", "PlotWorker.start"): "plot worker",
    ("framework.results.plot_process", "PlotWorker.draw_early"): "plot data",
    ("framework.results.figure_data", "gather"): "plot data",
    ("framework.results.plot_process", "PlotWorker.send"): "plot data",
    ("framework.results.plot_process", "PlotWorker.wait"): "plots",
    ("framework.results.plots", "draw_plots"): "plots inline",  # no worker, or it failed
    ("framework.cli.terminal", "summary"): "summary",
}
# Modules whose import is part of a stage (imported by the caller just before the call).
IMPORT_STAGES = {"framework.results.plots": "plots inline"}  # matplotlib comes with it
# Rows of the breakdown, each a stage's own time (the stages it calls are rows of their own).
ROWS = [
    ("interpreter start", "interpreter"),
    ("CLI; imports outside the stages below", "top"),
    ("spec", "spec"),
    ("run: plot worker starts", "plot worker"),
    ("prepare: plugins", "plugins"),
    ("prepare: backend available()", "availability"),
    ("prepare: data", "data"),
    ("prepare: rest", "prepare"),
    ("fit: stan.build (compile cache hit)", "stan.build"),
    ("fit: httpstan server starts", "server start"),
    ("fit: sampling", "sampling"),
    ("fit: draws to arrays (backend)", "posterior"),
    ("fit: build_posterior", "build_posterior"),
    ("fit: check_posterior", "check_posterior"),
    ("fit: rest", "fit"),
    ("summarise: diagnostics", "diagnostics"),
    ("summarise: estimates, forecasts", "summarise"),
    ("write: posterior.nc", "netcdf"),
    ("write: CSVs", "csv"),
    ("plots: data gathered and sent", "plot data"),
    ("write: plots, wait for the worker", "plots"),
    ("write: plots inline (+ matplotlib)", "plots inline"),
    ("write: rest (json, yaml)", "write_run"),
    ("terminal summary", "summary"),
    ("process exit", "exit"),
]


# ---------------------------------------------------------------- the instrumented child


def child(argv: list[str]) -> None:
    """Run the CLI in this process with STAGES timed; print one JSON line of stage seconds."""
    import functools
    import importlib.abc
    import importlib.util
    import inspect

    started = float(os.environ["LATENCY_T0"])
    spent: dict[str, float] = {"interpreter": time.time() - started}  # each stage's own time
    stack: list[list] = [["top", time.perf_counter(), 0.0]]  # [stage, start, time in callees]

    def mark() -> None:  # the -X importtime lines that follow belong to this stage
        print(f"@@stage {stack[-1][0]}", file=sys.stderr, flush=True)

    def enter(stage):
        stack.append([stage, time.perf_counter(), 0.0])
        mark()

    def leave():
        stage, t0, inner = stack.pop()
        took = time.perf_counter() - t0
        spent[stage] = spent.get(stage, 0.0) + took - inner
        stack[-1][2] += took
        mark()

    def timed(stage, fn):
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args, **kwargs):
                enter(stage)
                try:
                    return await fn(*args, **kwargs)
                finally:
                    leave()

            return awrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            enter(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                leave()

        return wrapper

    def patch(module) -> None:
        for (name, attr), stage in STAGES.items():
            if name != module.__name__:
                continue
            owner, _, leaf = attr.rpartition(".")
            target = getattr(module, owner, None) if owner else module
            if hasattr(target, leaf):  # a renamed function just goes untimed
                setattr(target, leaf, timed(stage, getattr(target, leaf)))

    modules = {name for name, _ in STAGES} | set(IMPORT_STAGES)

    class PatchOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname not in modules:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(fullname)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            load = spec.loader.exec_module

            def exec_module(module):
                stage = IMPORT_STAGES.get(module.__name__)
                if stage:
                    enter(stage)
                try:
                    load(module)
                finally:
                    if stage:
                        leave()
                patch(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, PatchOnImport())
    mark()
    from framework.cli.main import main

    code = main(argv)
    spent["end"] = time.time() - started
    spent["top"] = time.perf_counter() - stack[0][1] - stack[0][2]
    print("@@json " + json.dumps({"code": code, "seconds": spent}), file=sys.stderr, flush=True)
    from framework.cli.process_end import end_process  # as the `framework` command ends

    end_process(code)


# ---------------------------------------------------------------- the parent


def imports_by_stage(stderr: str) -> dict[str, float]:
    """Seconds of top-level imports between the child's stage markers (-X importtime lines)."""
    out: dict[str, float] = {}
    stage = "interpreter"
    for line in stderr.splitlines():
        if line.startswith("@@stage "):
            stage = line.split(" ", 1)[1]
            continue
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and match.group(2) == "":  # top level only: nested ones are inside it
            # A module's line comes after its import ends: IMPORT_STAGES name its stage.
            owner = IMPORT_STAGES.get(match.group(3), stage)
            out[owner] = out.get(owner, 0.0) + int(match.group(1)) / 1e6
    return out


def wall(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def instrumented(spec: Path, out: Path, env: dict, overrides: list[str]) -> dict:
    """One instrumented CLI run: wall, per-stage seconds, per-stage import seconds."""
    env = {**env, "LATENCY_T0": repr(time.time())}
    cmd = [
        PYTHON,
        "-X",
        "importtime",
        __file__,
        "--child",
        "run",
        str(spec),
        "-o",
        str(out),
        "-q",
        *overrides,
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    total = time.perf_counter() - t0
    found = [line for line in done.stderr.splitlines() if line.startswith("@@json ")]
    if done.returncode != 0 or not found:
        raise SystemExit(f"instrumented run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    seconds = json.loads(found[-1][7:])["seconds"]
    seconds["exit"] = total - seconds.pop("end")
    diag = json.loads((out / "diagnostics.json").read_text())
    seconds["sampling (backend's own)"] = diag["timings"].get("sampling") or 0.0
    return {"total": total, "seconds": seconds, "imports": imports_by_stage(done.stderr)}


WARM = """
import sys, time
from pathlib import Path
import framework
from framework.cli.terminal import Progress
spec, out, sets = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
seconds = []
for i in range(3):  # the first run imports; the next two find everything loaded
    t0 = time.perf_counter()
    # a new seed each time: httpstan answers a repeated seeded fit from memory, unsampled
    seed = [f"sampler.seed={9001 + i}"]
    framework.run(spec, [*sets, *seed], output_dir=out / str(i), progress=Progress(quiet=True))
    seconds.append(time.perf_counter() - t0)
print(min(seconds[1:]))
"""


def warm(spec: Path, out: Path, env: dict, overrides: list[str]) -> float:
    """A run's wall time in a process that has run it before (imports and caches warm)."""
    sets = [o for o in overrides if o != "--set"]
    cmd = [PYTHON, "-c", WARM, str(spec), str(out), *sets]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"warm runs failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main(argv: list[str]) -> None:
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 3
    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else None
    names = [a for a in argv if a in ("W1", "W2")] or ["W1", "W2"]
    env = {
        **os.environ,
        "FRAMEWORK_CACHE_DIR": os.environ.get("FRAMEWORK_CACHE_DIR", str(ROOT / ".cache")),
    }
    if "--stan-only" in argv:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "tests" / "import_blocker"), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        env["FRAMEWORK_BLOCK_IMPORTS"] = STAN_ONLY_BLOCKS
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from harness import spec_for

    tmp = Path(tempfile.mkdtemp(prefix="latency-"))
    specs = {"W1": ROOT / "specs" / "rainfall.yaml"}
    if "W2" in names:
        (tmp / "W2").mkdir()
        specs["W2"] = spec_for("W2", tmp / "W2")
    overrides = ["--set", f"backend.name={backend}"] if backend else []
    for name in names:  # warm the compile cache (and the OS file cache) once
        wall(
            [
                *FRAMEWORK,
                "run",
                str(specs[name]),
                "-o",
                str(tmp / f"warm-{name}"),
                "-q",
                *overrides,
            ],
            env,
        )

    walls: dict[str, list[float]] = {}
    runs: dict[str, list[dict]] = {n: [] for n in names}
    commands = {
        "python -c pass": [PYTHON, "-c", "pass"],
        "import numpy, pandas": [PYTHON, "-c", "import numpy, pandas"],
        "import arviz": [PYTHON, "-c", "import arviz"],
        "--help": [*FRAMEWORK, "--help"],
        "validate": [*FRAMEWORK, "validate", str(specs["W1"])],
    }
    for _ in range(repeat):
        for label, cmd in commands.items():
            walls.setdefault(label, []).append(wall(cmd, env))
        for name in names:
            out = tmp / f"run-{name}"
            cli = [*FRAMEWORK, "run", str(specs[name]), "-o", str(out), "-q", *overrides]
            walls.setdefault(name, []).append(wall(cli, env))
            warm_out = Path(tempfile.mkdtemp(dir=tmp))
            walls.setdefault(f"{name} in a warm process", []).append(
                warm(specs[name], warm_out, env, overrides)
            )
            runs[name].append(instrumented(specs[name], tmp / f"inst-{name}", env, overrides))

    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
        f"medians of {repeat} interleaved repetitions{'; ' + ' '.join(argv) if argv else ''}"
    )
    base = median(walls["python -c pass"])
    numpy_pandas = median(walls["import numpy, pandas"])
    print(f"\n{'whole process':34s} {'wall s':>7s} {'/ python':>9s} {'/ np+pd':>8s} {'target':>7s}")
    for label, values in walls.items():
        m = median(values)
        target = f"{TARGETS[label]:.1f}" if label in TARGETS else ""
        print(f"{label:34s} {m:7.2f} {m / base:9.1f} {m / numpy_pandas:8.2f} {target:>7s}")
    for name in names:
        stages = [r["seconds"] for r in runs[name]]
        imports = [r["imports"] for r in runs[name]]
        print(
            f"\n{name} instrumented ({specs[name].name}, under -X importtime): "
            f"{median(r['total'] for r in runs[name]):.2f} s"
        )
        print(f"  {'stage':36s} {'wall s':>7s} {'imports s':>10s}")
        for label, stage in ROWS:
            values = [s.get(stage) for s in stages]
            if all(v is None for v in values):
                continue
            imp = median(i.get(stage, 0.0) for i in imports)
            print(f"  {label:36s} {median(values):7.2f} {imp:10.2f}")
        own = median(r["seconds"]["sampling (backend's own)"] for r in runs[name])
        print(f"  (sampling_seconds the backend reports: {own:.2f})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main(sys.argv[1:])
