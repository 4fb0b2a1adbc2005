"""Issue 13: the summary stages of a run (diagnostics, estimates, forecasts, coef draws) on real posteriors.

For W1 and W2 (harness.py's workloads: 51 and 1,000 groups, 2 group terms,
4 chains x 1,000 draws) it samples once with the Stan backend (compile cache
warm), reads posterior.nc back, and times each stage in this process against
baselines run on the same arrays in the same invocation:

- diagnostics: arviz's rhat + ess bulk + ess tail, per parameter (timed on a
  sample of the parameters and scaled to all of them: arviz loops in Python),
  and a floor, numpy sorting each parameter's draws once (no rank statistic
  can do with less);
- estimates (exact mixtures of a marginal fit): a floor of one normal CDF
  evaluation per draw, group and term (Newton needs several per quantile);
- forecasts: numpy quantiles of the same number of draws;
- coef draws (the backend's "draws to arrays"): numpy drawing as many normals.

Figures are medians of --repeat runs (wall seconds; CPU seconds alongside, the
stages use both cores). Ratios are stage / baseline.

    nice .venv/bin/python benchmarks/summaries.py            # W1 and W2
    nice .venv/bin/python benchmarks/summaries.py W2 --repeat 5
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from harness import ROOT, spec_for

ARVIZ_SAMPLE = 40  # parameters arviz is timed on (it takes ~10 ms each: all 2,000 take a minute)


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `fn()` over `repeat` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def sampled_run(name: str, folder: Path):
    """(prepared run, posterior) of workload `name`, sampled by the CLI in a child process."""
    from framework.backends.posterior_groups import Posterior
    from framework.runner import prepare
    from framework.spec.load import load_spec

    spec = spec_for(name, folder)
    cli = [sys.executable, "-m", "framework.cli", "run", str(spec)]
    done = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"{name}: framework run failed:\n{done.stderr}")
    prepared = prepare(load_spec(spec), check_available=False)
    return prepared, Posterior.from_netcdf(folder / "run" / "posterior.nc")


def arviz_per_parameter(draws: np.ndarray) -> float:
    """arviz's seconds for rhat + bulk + tail ESS of all K parameters of (chain, draw, K) draws."""
    import arviz as az

    pick = np.linspace(0, draws.shape[2] - 1, min(ARVIZ_SAMPLE, draws.shape[2])).astype(int)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in pick:
            one = draws[..., k]
            az.rhat(one), az.ess(one, method="bulk"), az.ess(one, method="tail")
    return (time.perf_counter() - t0) / len(pick) * draws.shape[2]


def stages(prepared, idata, repeat: int) -> list[tuple[str, tuple, str, tuple]]:
    """(stage, its (wall, cpu), baseline, its (wall, cpu)) per summary stage."""
    from scipy.special import ndtr

    from framework.backends.posterior import coef_rng
    from framework.model.gaussian_marginal import draw_coefficients
    from framework.results.diagnostics import diagnose
    from framework.results.estimates import group_estimates, hyperparameter_table
    from framework.results.forecasts import forecast_table
    from framework.results.group_mixture import hyperparameter_draws

    model, stats = prepared.model, prepared.dataset.stats
    coef = idata.posterior["coef"].values
    every = np.concatenate(
        [coef.reshape(*coef.shape[:2], -1)]
        + [
            idata.posterior[v].sel(s).values[..., None].astype(float)
            for v, s in model.hyperparameters()
        ],
        axis=2,
    )
    rows = np.ascontiguousarray(np.moveaxis(every, 2, 0)).reshape(every.shape[2], -1)
    params = hyperparameter_draws(idata, model)
    n_draws, n_values = len(params["beta"]), coef[0, 0].size
    z = np.random.default_rng(0).standard_normal((n_draws, n_values))
    label = str(idata.posterior.coords["group"].values[0])
    requests = [(label, {"x": 5.0}), ("a new group", {"x": 5.0})]
    shaped = {k: v.reshape(*coef.shape[:2], *v.shape[1:]) for k, v in params.items()}
    diagnostics = timed(lambda: diagnose(idata, model, prepared.settings.max_treedepth), repeat)
    return [
        (
            "diagnostics",
            diagnostics,
            f"arviz, {every.shape[2]} parameters",
            (arviz_per_parameter(every), float("nan")),
        ),
        (
            "diagnostics",
            diagnostics,
            "floor: numpy sort of each parameter",
            timed(lambda: np.sort(rows, axis=1), repeat),
        ),
        (
            "estimates (exact mixtures)",
            timed(lambda: group_estimates(idata, model, stats), repeat),
            "floor: one normal CDF per draw x group x term",
            timed(lambda: ndtr(z), repeat),
        ),
        (
            "hyperparameters table",
            timed(lambda: hyperparameter_table(idata, model), repeat),
            "floor: numpy quantiles of those draws",
            timed(
                lambda: np.quantile(every[..., -8:].reshape(-1, 8), (0.05, 0.5, 0.95), 0), repeat
            ),
        ),
        (
            "forecasts (2 requests)",
            timed(lambda: forecast_table(idata, model, requests), repeat),
            "floor: 2 x numpy quantiles of as many draws",
            timed(lambda: [np.quantile(z[:, 0], (0.05, 0.5, 0.95)) for _ in range(2)], repeat),
        ),
        (
            "coef draws (draws to arrays)",
            timed(lambda: draw_coefficients(model, stats, **shaped, seed=coef_rng(1)), repeat),
            "floor: numpy drawing as many normals",
            timed(lambda: np.random.default_rng(1).standard_normal(coef.shape), repeat),
        ),
    ]


def main(argv: list[str]) -> None:
    repeat = 3
    if "--repeat" in argv:
        at = argv.index("--repeat")
        repeat, argv = int(argv[at + 1]), argv[:at] + argv[at + 2 :]
    names = argv or ["W1", "W2"]
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {repeat}; seconds wall (cpu)")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            prepared, idata = sampled_run(name, Path(tmp))
            rows = stages(prepared, idata, repeat)
        print(f"\n{name}: {prepared.dataset.n_groups:,} groups, method {prepared.problem.method}")
        print(f"  {'stage':30s} {'wall':>7s} {'(cpu)':>7s}   {'baseline':46s} {'wall':>7s}  ratio")
        for stage, (wall, cpu), base, (base_wall, _) in rows:
            print(
                f"  {stage:30s} {wall:7.3f} ({cpu:5.2f})   {base:46s} {base_wall:7.3f}"
                f"  {wall / base_wall:5.2f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
