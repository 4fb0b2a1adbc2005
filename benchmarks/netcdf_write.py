"""Issue 13: writing posterior.nc with the direct h5netcdf writer against xarray's writer.

Each measurement is a fresh process that builds a posterior shaped like a run's,
then times one write: the imports each writer does on first use (xarray's pulls
in dask and distributed to look for a scheduler) count, as they do in a run.
Sizes: rainfall (W1, ~110 parameters x 4 chains x 1000 draws) and W2 (~2,005
parameters: a (4, 1000, 1000, 2) coef array and a few scalars), compressed and
raw (a run compresses below 8 MiB of draws). Prints median seconds of --repeat
processes and the ratio xarray / direct, both measured in this invocation.

    nice .venv/bin/python benchmarks/netcdf_write.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"W1": (51, 561), "W2": (1000, 100_000)}  # groups, observations

CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
from framework.backends.xarray_probes import import_xarray
from framework import Posterior
from framework.backends import netcdf_writer

xr = import_xarray()
groups, rows = int(sys.argv[1]), int(sys.argv[2])
writer, compress, path = sys.argv[3], sys.argv[4] == "compressed", Path(sys.argv[5])
rng = np.random.default_rng(0)
chains = {"chain": np.arange(4), "draw": np.arange(1000)}
terms = ["Intercept", "year_numeric"]
attrs = {"backend": "stan", "engine": "pystan", "seed": 1234, "sampling_seconds": 1.0,
         "created_at": "2026-12-01T00:00:00", "inference_library": "pystan"}
cd = ("chain", "draw")
posterior = xr.Dataset(
    {"beta": (cd + ("term",), rng.normal(size=(4, 1000, 2))),
     "group_sd": (cd + ("group_term",), rng.gamma(2.0, size=(4, 1000, 2))),
     "sigma": (cd, rng.gamma(2.0, size=(4, 1000))),
     "coef": (cd + ("group", "group_term"), rng.normal(size=(4, 1000, groups, 2)))},
    coords={**chains, "term": terms, "group_term": terms,
            "group": np.array([f"g{i}" for i in range(groups)], dtype=object)},
    attrs=attrs)
stats = xr.Dataset(
    {"diverging": (cd, rng.random((4, 1000)) < 0.01),
     "tree_depth": (cd, rng.integers(1, 6, (4, 1000))),
     "n_steps": (cd, rng.integers(1, 32, (4, 1000))),
     **{k: (cd, rng.normal(size=(4, 1000))) for k in ("lp", "energy", "acceptance_rate", "step_size")}},
    coords=chains, attrs=attrs)
observed = xr.Dataset({"y": ("obs", rng.normal(size=rows))}, coords={"obs": np.arange(rows)})
constant = xr.Dataset({"X": (("obs", "term"), rng.normal(size=(rows, 2))),
                       "group": ("obs", rng.integers(0, groups, rows))},
                      coords={"obs": np.arange(rows), "term": terms})
post = Posterior(posterior=posterior, sample_stats=stats, observed_data=observed, constant_data=constant)
t0 = time.perf_counter()
if writer == "xarray":
    netcdf_writer.write_with_xarray(dict(post._groups), path, compress)
else:
    post.to_netcdf(path, compress=compress)
took = time.perf_counter() - t0
print(json.dumps({"seconds": took, "bytes": path.stat().st_size, "mb_draws": post.nbytes / 2**20}))
"""


def measure(workload: str, writer: str, compress: str, folder: Path) -> dict:
    groups, rows = SIZES[workload]
    path = folder / f"{workload}-{writer}-{compress}.nc"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(groups), str(rows), writer, compress, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per cell")
    args = parser.parse_args()
    print(f"{'workload':<9}{'file':<12}{'MiB':>7}{'xarray s':>10}{'direct s':>10}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for workload in SIZES:
            for compress in ("compressed", "raw"):
                seconds = {"xarray": [], "direct": []}
                for _ in range(args.repeat):  # interleaved: both writers see the same machine
                    for writer in seconds:
                        result = measure(workload, writer, compress, Path(tmp))
                        seconds[writer].append(result["seconds"])
                xa, di = (statistics.median(seconds[w]) for w in ("xarray", "direct"))
                mib = result["bytes"] / 2**20
                print(
                    f"{workload:<9}{compress:<12}{mib:>7.1f}{xa:>10.3f}{di:>10.3f}{xa / di:>7.1f}x"
                )


if __name__ == "__main__":
    main()
