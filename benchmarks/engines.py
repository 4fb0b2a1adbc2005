"""cmdstanpy vs pystan on the rainfall spec: compile, sampling and whole-run seconds, cache cold and warm.

Every run is `framework run specs/rainfall.yaml` in a process of its own. Whole-run seconds are
that command's wall clock (interpreter start, imports, reading, sampling, writing every output);
compile and sampling seconds are the ones the run records in posterior.nc. "cold": a fresh
FRAMEWORK_CACHE_DIR, so the Stan program is compiled; "warm": the same folder again, with a
fresh seed (httpstan answers a repeated seeded request from its fit store, which would time
nothing). The engines alternate, so a busy machine slows both alike. With --assemble it also
times assembling CmdStan into a fresh folder (what a machine's first CI run adds) and the
reuse of the finished build (what every later CI run adds).

    CMDSTAN=~/.cache/framework-cmdstan/cmdstan-2.35.0 \
        .venv/bin/python benchmarks/engines.py [--assemble] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "rainfall.yaml"
ASSEMBLE = ROOT.parent / "shared" / "cmdstan" / "assemble.sh"
ENGINES = ("cmdstanpy", "pystan")


def run_once(engine: str, cache: Path, out: Path, overrides: list[str]) -> dict:
    """One `framework run` of the rainfall spec; its seconds and the engine's own timings."""
    sets = [f"backend.options.engine={engine}", "output.plots=false"]
    sets += [f"sampler.seed={secrets.randbelow(2**31)}", *overrides]
    args = [sys.executable, "-m", "framework.cli", "run", str(SPEC), "-q", "-o", str(out)]
    args += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "FRAMEWORK_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    whole = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{engine}: framework run failed (exit {done.returncode}):\n{done.stderr}")
    attrs = _posterior_attrs(out / "posterior.nc")
    return {
        "engine": attrs.get("engine", engine),
        "compile_s": round(float(attrs["compile_seconds"]), 2),
        "sampling_s": round(float(attrs["sampling_seconds"]), 2),
        "whole_run_s": round(whole, 2),
        "versions": attrs.get("library_versions", ""),
    }


def _posterior_attrs(path: Path) -> dict:
    import xarray as xr

    with xr.open_dataset(path, group="posterior") as posterior:
        return dict(posterior.attrs)


def assembly() -> list[dict]:
    """Seconds to assemble CmdStan into a fresh folder, then to find the finished build."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="framework_cmdstan_bench_") as folder:
        for case in ("cold (first CI run on a machine)", "warm (build reused)"):
            start = time.perf_counter()
            subprocess.run(
                ["bash", str(ASSEMBLE), folder, sys.executable], check=True, capture_output=True
            )
            rows.append({"assembly": case, "seconds": round(time.perf_counter() - start, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assemble", action="store_true", help="also time assembling CmdStan")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="spec override"
    )
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="framework_engines_bench_") as tmp:
        caches = {engine: Path(tmp) / f"cache-{engine}" for engine in ENGINES}
        for phase in ("cold", "warm"):
            for engine in ENGINES:
                out = Path(tmp) / f"run-{engine}-{phase}"
                row = {"cache": phase, **run_once(engine, caches[engine], out, args.overrides)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(
        f"\n{'engine':10s} {'cache':5s} {'compile s':>9s} {'sampling s':>10s} {'whole run s':>11s}"
    )
    for r in rows:
        print(
            f"{r['engine']:10s} {r['cache']:5s} {r['compile_s']:9.1f} {r['sampling_s']:10.2f} "
            f"{r['whole_run_s']:11.1f}"
        )
    if args.assemble:
        for row in assembly():
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
