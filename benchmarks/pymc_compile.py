"""Where the PyMC backend's compile time goes, in a first and a second process of the same model.

    FRAMEWORK_CACHE_DIR=.cache python benchmarks/pymc_compile.py [--method marginal full]

For each rainfall model, runs two fresh processes one after the other on one
cache folder: the first finds no entry of the PyMC backend's caches (compiled
model, nutpie's callbacks) and fills them, the second finds them. PyTensor's
own per-op Numba cache is shared with FRAMEWORK_CACHE_DIR (linked in), so the
first process is what a new spec costs, not a fresh install. Each process times
nutpie's compile stages (exclusive times: a stage's children are not counted in
it) and the table prints both with the ratio first / second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# stage name -> (module, attribute path) of what is timed
STAGES = {
    "PyMC model build": ("framework_pymc.marginal", "build_model"),
    "PyMC full model build": ("framework_pymc.full", "build_model"),
    "cache key (model graph)": ("framework_pymc.model_cache", "model_key"),
    "cache entry load (unpickle)": ("framework_pymc.model_cache", "_load"),
    "cache entry store (pickle)": ("framework_pymc.model_cache", "_save"),
    "initial-point function": ("pymc.initial_point", "make_initial_point_fn"),
    "logp graph (PyMC)": ("pymc.model.core", "Model.logp"),
    "logp rewrite_graph": ("pytensor.graph", "rewrite_graph"),
    "gradient graph": ("pytensor.gradient", "grad"),
    "PyTensor rewrites (pytensor.function)": (
        "pytensor.compile.function.types",
        "FunctionMaker.prepare_fgraph",
    ),
    "PyTensor linking (Numba funcify, cache load)": (
        "pytensor.compile.function.types",
        "FunctionMaker.create",
    ),
    "nutpie callbacks (numba cfunc)": ("numba.core.ccallback", "CFunc.compile"),
}


def models(methods=("marginal", "full")):
    """(method, PyMC model, variables kept) of the rainfall spec, built as the backend builds them."""
    from framework.runner import prepare
    from framework.spec.load import load_spec
    from framework_pymc import full, marginal

    for method in methods:
        module = full if method == "full" else marginal
        spec = load_spec(ROOT / "specs" / "rainfall.yaml", [f"sampler.method={method}"])
        pm_model, params = module.build_model(prepare(spec).problem)
        extra = [module.COEF_FREE["centred"]] if method == "full" else []
        yield method, pm_model, [*params.var_names, *extra]


class Stopwatch:
    """Exclusive seconds per stage: time inside a stage's own stages is theirs."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.stack: list[list] = []

    def wrap(self, name, func):
        def timed(*args, **kwargs):
            frame = [time.perf_counter(), 0.0]
            self.stack.append(frame)
            try:
                return func(*args, **kwargs)
            finally:
                self.stack.pop()
                spent = time.perf_counter() - frame[0]
                self.seconds[name] = self.seconds.get(name, 0.0) + spent - frame[1]
                if self.stack:
                    self.stack[-1][1] += spent

        return timed

    def install(self) -> None:
        import importlib

        for name, (module, path) in STAGES.items():
            owner = importlib.import_module(module)
            *parents, attr = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            original = owner.__dict__[attr]
            if isinstance(original, staticmethod):
                setattr(owner, attr, staticmethod(self.wrap(name, original.__func__)))
            else:
                setattr(owner, attr, self.wrap(name, original))


def child(method: str) -> None:
    """One process: import, build and compile `method`'s model; print the stages as JSON."""
    start = time.perf_counter()
    from framework_pymc import compile_cache

    compile_cache.use_framework_cache()  # as the backend does, before PyTensor's first import
    import nutpie  # noqa: F401 - imports pymc, pytensor, numba

    from framework_pymc import model_cache

    imported = time.perf_counter()
    watch = Stopwatch()
    watch.install()
    ((_, pm_model, var_names),) = models([method])
    compiling = time.perf_counter()
    compiled, stored = model_cache.compile_model(pm_model, var_names, compile_cache.install())
    done = time.perf_counter()
    stages = {"imports (pymc, pytensor, nutpie)": imported - start, **watch.seconds}
    staged = sum(watch.seconds.values()) - watch.seconds.get("PyMC model build", 0.0)
    staged -= watch.seconds.get("PyMC full model build", 0.0)
    stages["other (nutpie, PyMC)"] = (done - compiling) - staged
    result = {
        "stages": stages,
        "compile": done - compiling,
        "process": done - start,
        "hit": stored and compile_cache.was_hit(compiled),
    }
    print(json.dumps(result))


def run_child(method: str, cache: Path) -> dict:
    env = {**os.environ, "FRAMEWORK_CACHE_DIR": str(cache)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", nargs="+", default=["marginal", "full"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    shared = Path(os.environ.get("FRAMEWORK_CACHE_DIR", ROOT / ".cache")).resolve()
    (shared / "pytensor").mkdir(parents=True, exist_ok=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for method in args.method:
        with tempfile.TemporaryDirectory() as scratch:
            cache = Path(scratch)
            (cache / "pytensor").symlink_to(shared / "pytensor")  # PyTensor's per-op cache: warm
            first, second = run_child(method, cache), run_child(method, cache)
        print(f"\nrainfall {method}: seconds, first process / second process")
        print(f"  {'stage':<46} {'first':>7} {'second':>7} {'ratio':>7}")
        rows = [*first["stages"], *(s for s in second["stages"] if s not in first["stages"])]
        for stage in rows:
            a, b = first["stages"].get(stage, 0.0), second["stages"].get(stage, 0.0)
            if max(a, b) >= 0.005:
                ratio = f"{a / b:6.1f}x" if b >= 0.005 else "     -"
                print(f"  {stage:<46} {a:7.2f} {b:7.2f} {ratio:>7}")
        for total in ("compile", "process"):
            a, b = first[total], second[total]
            print(f"  {total + ' (total)':<46} {a:7.2f} {b:7.2f} {a / b:6.1f}x")
        print(f"  second process compiled nothing: {second['hit']} (first: {first['hit']})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
