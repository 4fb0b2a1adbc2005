"""output.group_draws: exact mixture estimates without the coef draws, and everything downstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

import framework
from fake_backend import FakePlugin
from framework import runner
from framework.model.gaussian_marginal import conditional_moments
from framework.model.model import build_model
from framework.model.statistics import GroupStats
from framework.model.terms import Column
from framework.results import group_mixture as gmx
from framework.results import mixture_series
from framework.results.estimates import group_estimates
from framework.results.forecasts import forecast_table
from framework.results.run_reader import load_posterior, saved_model

ROOT = Path(__file__).resolve().parents[1]
RAINFALL = ROOT / "specs" / "rainfall.yaml"
FAST = ["backend.name=fake", "sampler.draws=400", "sampler.chains=2", "sampler.seed=11"]
STATS = ["mean", "sd", "q5", "q95"]
MODEL = build_model(
    "y ~ x + (x | g)",
    {"y": Column("y", "numeric"), "x": Column("x", "numeric"), "g": Column("g", "categorical")},
)


@pytest.fixture(scope="module", autouse=True)
def fake_plugin():
    framework.register_plugin(FakePlugin(), name="fake")
    yield
    framework.unregister_plugin("fake")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The rainfall case on the fake backend with group_draws all and none (same seed)."""
    base = tmp_path_factory.mktemp("group_draws")
    return {
        choice: runner.run(
            RAINFALL, [*FAST, f"output.group_draws={choice}"], output_dir=base / choice
        )
        for choice in ("all", "none")
    }


def _panel(groups: int, rows: int, noise: float, draws: int = 400, seed: int = 0):
    """Statistics of a balanced panel and fake hyperparameter draws spread by `noise`."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(groups), rows)
    x = np.tile(np.linspace(0, 10, rows), groups)
    y = 1 + x + 3 * rng.normal(size=groups)[codes] + rng.normal(size=codes.size) * 2
    stats = GroupStats.from_rows(codes, np.column_stack([np.ones_like(x), x, y]), groups)
    params = {
        "beta": rng.normal([1, 1], noise, (draws, 2)),
        "group_sd": np.abs(rng.normal([3, 0.5], noise, (draws, 2))),
        "group_corr": np.broadcast_to([[1, 0.3], [0.3, 1]], (draws, 2, 2)).copy(),
        "sigma": np.abs(rng.normal(2, noise, draws)),
    }
    return stats, params


def test_none_and_all_give_the_same_estimates(runs):
    a, b = runs["all"], runs["none"]
    assert "coef" in a.idata.posterior and "coef" not in b.idata.posterior
    assert (a.diagnostics["coef_draws_in_posterior"], b.diagnostics["coef_draws_in_posterior"]) == (
        True,
        False,
    )
    # The same seed gives the same hyperparameter draws, and both tables are the exact
    # mixture over them (the coef draws of `all` are not used): equal up to rounding.
    np.testing.assert_allclose(a.estimates[STATS], b.estimates[STATS], rtol=0, atol=1e-6)
    saved = pd.read_csv(b.output_dir / "estimates.csv")
    assert saved["group"].astype(str).tolist() == b.estimates["group"].tolist()
    assert (b.output_dir / "group_effects.png").stat().st_size > 0  # plots need no draws
    assert set(b.diagnostics["parameters"]) == set(b.model.parameter_names())


def test_exact_estimates_agree_with_the_coef_draws_within_monte_carlo_error(runs):
    est, post = runs["all"].estimates, runs["all"].idata.posterior
    draws = post["coef"].transpose("chain", "draw", "group", "group_term").values
    draws = draws.reshape(-1, *draws.shape[2:])  # (S, J, q): independent draws (fake sampler)
    s = len(draws)
    mean, sd = est["mean"].to_numpy(), est["sd"].to_numpy()
    # 5 Monte Carlo standard errors on each of 102 group-terms: a false alarm ~6e-5 overall.
    assert np.all(np.abs(draws.mean(0).ravel() - mean) <= 5 * sd / np.sqrt(s))
    assert np.all(np.abs(draws.std(0).ravel() - sd) <= 5 * sd / np.sqrt(2 * s))
    for col, p in (("q5", 0.05), ("q95", 0.95)):
        share = (draws.reshape(s, -1) <= est[col].to_numpy()).mean(0)  # binomial(S, p) / S
        assert np.all(np.abs(share - p) <= 5 * np.sqrt(p * (1 - p) / s))


def test_exact_mixture_quantiles_against_brute_force_monte_carlo():
    rng = np.random.default_rng(3)
    # A bimodal, skewed mixture: far from normal, so Newton must bisect on the way.
    means = np.concatenate([rng.normal(0, 0.3, 300), rng.normal(6, 0.3, 100)])[:, None]
    sds = np.concatenate([np.full(300, 1.0), np.full(100, 0.5)])[:, None]
    probs = (0.05, 0.5, 0.9, 0.95)
    q = gmx.mixture_quantiles(means, sds, probs)[:, 0]
    cdf = ndtr((q[:, None] - means[:, 0]) / sds[:, 0]).mean(1)
    np.testing.assert_allclose(cdf, probs, atol=1e-9)  # the defining equation, solved
    m = 2_000_000
    pick = rng.integers(0, len(means), m)
    y = means[pick, 0] + sds[pick, 0] * rng.standard_normal(m)
    # The share of 2e6 mixture draws below each quantile is binomial: 5 standard errors.
    share = (y[:, None] <= q).mean(0)
    assert np.all(np.abs(share - probs) <= 5 * np.sqrt(np.multiply(probs, 1 - np.array(probs)) / m))


@pytest.mark.parametrize("noise", [0.003, 0.03])
def test_the_series_is_used_only_where_its_bound_proves_it(noise):
    stats, params = _panel(300, 10, noise)
    means, cov = conditional_moments(MODEL, stats, **params)
    m, s = means[..., 1], np.sqrt(cov[..., 1, 1])
    centre, a = m.mean(0), m - m.mean(0)
    var_s = (s * s).mean(0)
    spread = np.sqrt(var_s + (a * a).mean(0))
    q, proven = mixture_series.series_quantiles(a, s, centre, var_s, spread, (0.05, 0.95))
    exact = gmx.mixture_quantiles(m, s, (0.05, 0.95))
    error = np.abs(q - exact) / spread
    assert np.all(error[:, proven] <= mixture_series.QUANTILE_TOL)
    if noise == 0.003:  # well-determined hyperparameters: the series answers many groups
        assert proven.mean() > 0.2
    else:  # the series is off by more than the tolerance, and the bound knows it
        assert not proven.any() and error.max() > 100 * mixture_series.QUANTILE_TOL


def test_pooled_designs_give_the_per_group_answer(monkeypatch):
    stats, params = _panel(400, 10, 0.002)
    pooled = gmx.mixture_summaries(MODEL, stats, params, (0.05, 0.95))
    monkeypatch.setattr(gmx, "POOL_MIN_GROUPS", 10**9)  # every group on its own
    general = gmx.mixture_summaries(MODEL, stats, params, (0.05, 0.95), chunk=37)
    # Both are exact to QUANTILE_TOL sds; means and sds are closed forms (rounding only).
    np.testing.assert_allclose(
        pooled, general, rtol=0, atol=4 * mixture_series.QUANTILE_TOL * general[1].max()
    )


def test_conditional_moments_match_dense_linear_algebra():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 10, 7)
    X = np.column_stack([np.ones(7), x])
    y = 2 + 0.5 * x + rng.normal(size=7)
    stats = GroupStats.from_rows(np.zeros(7, int), np.column_stack([X, y]), 1)
    beta, sd, corr, sigma = np.array([1.5, 0.4]), np.array([2.0, 0.3]), 0.4, 1.3
    cov_b = np.outer(sd, sd) * np.array([[1, corr], [corr, 1]])
    a = np.linalg.inv(cov_b) + X.T @ X / sigma**2
    want_cov = np.linalg.inv(a)
    want_mean = beta + want_cov @ X.T @ (y - X @ beta) / sigma**2
    mean, cov = conditional_moments(
        MODEL,
        stats,
        beta=beta[None],
        group_sd=sd[None],
        sigma=np.array([sigma]),
        group_corr=np.array([[[1, corr], [corr, 1]]]),
    )
    np.testing.assert_allclose(mean[0, 0], want_mean, rtol=1e-10)
    np.testing.assert_allclose(cov[0, 0], want_cov, rtol=1e-10)


def test_auto_keeps_the_draws_up_to_the_limit(monkeypatch, tmp_path):
    assert runner.keep_group_draws("auto", 100, limit=100)
    assert not runner.keep_group_draws("auto", 101, limit=100)
    assert runner.keep_group_draws("all", 10**12, limit=1)
    assert not runner.keep_group_draws("none", 1, limit=100)
    n_values = 2 * 400 * 51 * 2  # chains x draws x groups x group terms of FAST's rainfall
    for limit, kept in ((n_values, True), (n_values - 1, False)):
        monkeypatch.setattr(runner, "GROUP_DRAWS_AUTO", limit)
        out = tmp_path / str(limit)
        runner.run(RAINFALL, [*FAST, "output.plots=false"], output_dir=out)
        assert ("coef" in load_posterior(out).posterior) is kept


def test_forecasts_from_a_saved_none_run(runs, tmp_path):
    none, every = runs["none"], runs["all"]
    idata = load_posterior(none.output_dir)
    assert "coef" not in idata.posterior and "group" in idata.posterior.coords
    model = saved_model(idata)
    requests = [("CA", {"x": 16.0}), ("PR", {"x": 16.0})]
    saved = forecast_table(idata, model, requests)
    cols = ["mean", "sd", "q5", "q50", "q95"]
    np.testing.assert_allclose(
        saved[cols],
        none.forecast("CA", [16]).pipe(
            lambda t: pd.concat([t, forecast_table(none.idata, none.model, requests[1:])])
        )[cols],
        rtol=1e-12,
    )
    # The same hyperparameter draws: the exact conditional vs the `all` run's coef draws
    # differ by Monte Carlo error only, well under a tenth of the predictive sd here.
    ref = forecast_table(every.idata, every.model, requests)
    assert np.all(np.abs(saved["mean"] - ref["mean"]) <= 0.1 * ref["sd"])
    # The real CLI reads the same numbers from the saved run.
    proc = subprocess.run(
        [sys.executable, "-m", "framework.cli", "forecast", str(none.output_dir),
         "--group", "CA", "--x", "16"],
        capture_output=True, text=True, env={**os.environ}, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{saved['mean'][0]:.2f}" in proc.stdout


def test_rows_or_statistics_give_the_same_exact_forecast(tmp_path):
    tables = []
    for rows in ("true", "false"):
        out = tmp_path / rows
        sets = [*FAST, "output.plots=false", "output.group_draws=none"]
        runner.run(RAINFALL, [*sets, f"output.observed_data={rows}"], output_dir=out)
        idata = load_posterior(out)
        assert ("observed_data" in idata.groups()) is (rows == "true")
        model = saved_model(idata)
        tables.append(
            (forecast_table(idata, model, [("CA", {"x": 16.0})]), group_estimates(idata, model))
        )
    (f1, e1), (f2, e2) = tables
    np.testing.assert_allclose(f1[["mean", "sd", "q5", "q95"]], f2[["mean", "sd", "q5", "q95"]])
    np.testing.assert_allclose(e1[STATS], e2[STATS], rtol=1e-9)


def test_method_full_summarises_its_draws_and_leaves_them_out_of_the_file(tmp_path):
    sets = [*FAST, "output.plots=false", "output.group_draws=none", "sampler.method=full"]
    result = runner.run(RAINFALL, sets, output_dir=tmp_path / "full")
    assert "coef" not in load_posterior(tmp_path / "full").posterior
    assert "coef[*,Intercept]" in result.diagnostics["parameters"]  # from the draws in memory
    saved = json.loads((tmp_path / "full" / "diagnostics.json").read_text())
    assert saved["method"] == "full"
    idata = load_posterior(tmp_path / "full")
    row = forecast_table(idata, saved_model(idata), [("CA", {"x": 16.0})])
    assert row["source"][0] == "fitted" and np.isfinite(row["q95"][0])


def test_a_real_stan_run_without_group_draws(tmp_path):
    """The real CLI and sampler: no coef in posterior.nc, exact estimates, forecasts work."""
    from framework_stan import engines

    ok, _ = engines.cmdstan_status()
    engine = "cmdstanpy" if ok else "pystan"
    out = tmp_path / "stan"
    sets = ["sampler.chains=2", "sampler.warmup=200", "sampler.draws=200",
            "output.plots=false", "output.group_draws=none", f"backend.options.engine={engine}"]  # fmt: skip
    args = [sys.executable, "-m", "framework.cli", "run", str(RAINFALL), "-o", str(out)]
    proc = subprocess.run(
        [*args, *(f"--set={s}" for s in sets)],
        capture_output=True, text=True, env={**os.environ}, timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr  # 1: diagnostics may flag 400 draws
    idata = load_posterior(out)
    assert "coef" not in idata.posterior
    model = saved_model(idata)
    saved = pd.read_csv(out / "estimates.csv")
    again = group_estimates(idata, model)  # recomputed from the saved hyperparameter draws
    np.testing.assert_allclose(saved[STATS], again[STATS], rtol=1e-9)
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert forecasts["source"].tolist()[:1] == ["fitted"] and forecasts["q95"].notna().all()
