"""What the PyMC backend's compile cache saves: nutpie's compile of the rainfall models, cached vs not.

    FRAMEWORK_CACHE_DIR=.cache python benchmarks/pymc_compile.py [--repeat 2]

In one process, for the marginal and the full rainfall model, times
`nutpie.compile_pymc_model` with the framework's callback cache (after one
warm-up compile that fills it, as a user's first run does) and without it
(what every process paid before), interleaved; prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def models():
    from framework.runner import prepare
    from framework.spec.load import load_spec
    from framework_pymc import full, marginal

    for method, module in (("marginal", marginal), ("full", full)):
        spec = load_spec(ROOT / "specs" / "rainfall.yaml", [f"sampler.method={method}"])
        pm_model, params = module.build_model(prepare(spec).problem)
        extra = [module.COEF_FREE["centred"]] if method == "full" else []
        yield method, pm_model, [*params.var_names, *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import nutpie

    from framework_pymc import compile_cache

    compile_cache.install()
    for method, pm_model, var_names in models():
        nutpie.compile_pymc_model(pm_model, var_names=var_names, cache=True)  # fills the cache
        seconds = {"cached": [], "uncached": []}
        hits = []
        for _ in range(args.repeat):
            for kind in ("cached", "uncached"):
                start = time.perf_counter()
                compiled = nutpie.compile_pymc_model(
                    pm_model, var_names=var_names, cache=kind == "cached"
                )
                seconds[kind].append(time.perf_counter() - start)
                if kind == "cached":
                    hits.append(compile_cache.was_hit(compiled))
        cached, uncached = (statistics.median(seconds[k]) for k in ("cached", "uncached"))
        print(
            f"rainfall {method:<8} compile: uncached {uncached:6.2f} s, cached {cached:6.2f} s "
            f"({uncached / cached:.1f}x less; cache hits {sum(hits)}/{len(hits)})"
        )


if __name__ == "__main__":
    main()
