"""The core's run path with a fake backend: estimates, forecasts, outputs, the contract check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import framework
from fake_backend import FakeBackend, FakePlugin
from framework.results.estimates import group_estimates
from framework.results.forecasts import forecast, mixture_quantiles
from framework.runner import run

ROOT = Path(__file__).resolve().parents[1]
RAINFALL = ROOT / "specs" / "rainfall.yaml"
FAST = ["backend.name=fake", "sampler.draws=300", "sampler.chains=2", "output.plots=false"]


@pytest.fixture(autouse=True)
def fake_plugin():
    framework.register_plugin(FakePlugin(), name="fake")
    yield
    framework.unregister_plugin("fake")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    # Unregistered at once: with the per-test `fake` also registered, two plugins would claim
    # the backend name "fake", which the registry refuses.
    framework.register_plugin(FakePlugin(), name="fake-module")
    out = tmp_path_factory.mktemp("runs") / "rainfall"
    try:
        return run(RAINFALL, FAST, output_dir=out)
    finally:
        framework.unregister_plugin("fake-module")


def test_run_writes_every_output(result):
    files = {p.name for p in result.output_dir.iterdir()}
    assert {
        "posterior.nc",
        "estimates.csv",
        "hyperparameters.csv",
        "forecasts.csv",
        "diagnostics.json",
        "spec.yaml",
        "recovery.csv",
    } <= files
    diag = json.loads((result.output_dir / "diagnostics.json").read_text())
    assert diag["backend"] == "fake" and diag["seed"] == 1234
    assert len(diag["spec_sha256"]) == 64 and len(diag["data_sha256"]) == 64
    assert set(diag["parameters"]) >= set(_labels(result.model))
    est = pd.read_csv(result.output_dir / "estimates.csv", keep_default_na=False)
    # One row per group and group term, groups in the data's order (not sorted).
    assert list(est["group"].unique()[:5]) == ["AL", "AK", "AZ", "AR", "CA"]
    assert est["group"].nunique() == 51
    assert len(est) == 51 * len(result.model.group_term_names)
    assert list(est["term"][:2]) == result.model.group_term_names


def _labels(model):
    """The model's scalar parameters as the outputs name them, e.g. beta[Intercept], sigma."""
    return [model.label(v, sel) for v, sel in model.hyperparameters()]


def test_estimates_are_the_draws_summarised(result):
    post = result.idata.posterior
    model = result.model
    est = group_estimates(result.idata, model)
    for term in model.group_term_names:  # each group's slope (and intercept) coefficient
        draws = post["coef"].sel(group_term=term).values.reshape(-1, 51)
        rows = est[est["term"] == term]
        assert list(rows["group"]) == list(post.coords["group"].values)
        np.testing.assert_allclose(rows["mean"], draws.mean(axis=0))
        np.testing.assert_allclose(rows["sd"], draws.std(axis=0, ddof=1))
        np.testing.assert_allclose(rows["q95"], np.quantile(draws, 0.95, axis=0))


def test_forecast_for_a_fitted_group_matches_direct_computation(result):
    post = result.idata.posterior
    intercept, slope = result.model.group_term_names  # y ~ x + (x || g): both terms by group
    a = post["coef"].sel(group="CA", group_term=intercept).values.ravel()
    b = post["coef"].sel(group="CA", group_term=slope).values.ravel()
    s = post["sigma"].values.ravel()
    row = forecast(result.idata, result.model, "CA", {"x": 16.0})
    assert row["source"] == "fitted"
    # Mean and variance of a mixture of Normal(a + 16 b, s): the law of total variance.
    assert row["mean"] == pytest.approx(np.mean(a + 16 * b), rel=1e-12)
    assert row["sd"] == pytest.approx(np.sqrt(np.var(a + 16 * b) + np.mean(s**2)), rel=1e-9)
    # Quantiles against brute-force predictive sampling: 400 predictive draws per posterior draw
    # gives a Monte Carlo sd of the 5% quantile of about 0.01 sd; 0.03 sd is a safe bound.
    rng = np.random.default_rng(0)
    y = (a + 16 * b + s * rng.standard_normal((400, len(a)))).ravel()
    for q, key in ((0.05, "q5"), (0.5, "q50"), (0.95, "q95")):
        assert row[key] == pytest.approx(np.quantile(y, q), abs=0.03 * row["sd"])
    table = pd.read_csv(result.output_dir / "forecasts.csv")
    assert table.loc[table.group == "CA", "mean"].item() == pytest.approx(row["mean"])


def test_forecast_for_a_new_group_uses_the_population(result):
    post, model = result.idata.posterior, result.model
    row = forecast(result.idata, model, "PR", {"x": 16.0})
    assert row["source"] == "population"
    intercept, slope = model.term_names
    beta, sd = post["beta"], post["group_sd"]
    mu = (beta.sel(term=intercept) + 16 * beta.sel(term=slope)).values.ravel()
    # Independent effects: a new group adds sd_a^2 + (16 sd_b)^2 to each draw's variance.
    var = (
        sd.sel(group_term=intercept) ** 2
        + (16 * sd.sel(group_term=slope)) ** 2
        + post["sigma"] ** 2
    ).values.ravel()
    assert row["mean"] == pytest.approx(mu.mean())
    assert row["sd"] == pytest.approx(np.sqrt(np.var(mu) + var.mean()))
    with pytest.raises(framework.UserError, match="not in the data"):
        forecast(result.idata, model, "PR", {"x": 16.0}, new_groups="error")


def test_mixture_quantiles_of_a_single_normal():
    q = mixture_quantiles(np.array([3.0]), np.array([2.0]), probs=(0.05, 0.5, 0.95))
    np.testing.assert_allclose(q, [3 - 2 * 1.6448536, 3.0, 3 + 2 * 1.6448536], atol=1e-6)


def test_result_forecast_method_and_cli_forecast_agree(result):
    direct = result.forecast("CA", [16, 17])
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework.cli",
            "forecast",
            str(result.output_dir),
            "--group",
            "CA",
            "--x",
            "16",
            "--x",
            "17",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("CA")]
    assert [float(r[1]) for r in rows] == [16.0, 17.0]
    np.testing.assert_allclose([float(r[3]) for r in rows], direct["mean"], atol=1e-3)


def test_recovery_reports_truth_and_coverage(result):
    rec = result.recovery
    assert list(rec["parameter"]) == _labels(result.model)
    # The spec's v1 truth in v2 order: beta (Intercept, slope), group_sd (same), sigma.
    assert rec["truth"].tolist() == [20.0, 1.0, 5.0, 0.5, 5.0]
    assert ((rec["q5"] <= rec["truth"]) & (rec["truth"] <= rec["q95"])).tolist() == rec[
        "covered"
    ].tolist()


def test_same_seed_same_result_and_written_spec_reruns(result, tmp_path):
    again = run(result.output_dir / "spec.yaml", ["output.plots=false"], write=False)
    np.testing.assert_array_equal(
        again.idata.posterior["coef"].values, result.idata.posterior["coef"].values
    )


def test_failed_run_leaves_previous_outputs_untouched(tmp_path):
    out = tmp_path / "run"
    run(RAINFALL, FAST, output_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    class Exploding(FakeBackend):
        name = "exploding"

        def fit(self, problem, settings, options):
            raise RuntimeError("boom")

    framework.register_plugin(FakePlugin(Exploding()), name="exploding")
    try:
        with pytest.raises(framework.FrameworkError, match="backend 'exploding' crashed"):
            run(RAINFALL, FAST + ["backend.name=exploding"], output_dir=out)
    finally:
        framework.unregister_plugin("exploding")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # No temporary folder left; the lock file beside the run is kept by design.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "run"]


def test_run_refuses_a_posterior_that_breaks_the_contract():
    class Relabel(FakeBackend):
        name = "relabel"

        def fit(self, problem, settings, options):
            idata = super().fit(problem, settings, options)
            return idata.to_arviz().assign_coords(  # a third party's InferenceData
                group=idata.posterior.coords["group"].values[::-1], groups="posterior"
            )

    framework.register_plugin(FakePlugin(Relabel()), name="relabel")
    try:
        with pytest.raises(framework.PosteriorContractError, match="backend 'relabel'.*order"):
            run(RAINFALL, FAST + ["backend.name=relabel"], write=False)
    finally:
        framework.unregister_plugin("relabel")


def test_too_few_draws_fail_the_diagnostics_with_the_fix(tmp_path):
    # A valid spec (draws >= 1) whose R-hat and ESS cannot be computed: the run completes
    # and the diagnostics say why they failed and what to raise.
    short = run(RAINFALL, [*FAST, "sampler.draws=3"], output_dir=tmp_path / "short")
    d = short.diagnostics
    assert not d["passed"] and d["draws"] == 3
    assert d["problems"] == [
        "only 3 draw(s) per chain: R-hat and ESS need at least 4 (raise sampler.draws)"
    ]


def test_method_full_samples_from_the_rows_but_can_leave_them_out_of_the_posterior(tmp_path):
    out = tmp_path / "run"
    result = run(RAINFALL, FAST + ["sampler.method=full", "output.observed_data=false"], out)
    assert result.dataset.has_rows  # the backend was given every row ...
    saved = framework.load_posterior(out)
    assert "observed_data" not in saved.groups()  # ... and posterior.nc has none of them
    np.testing.assert_array_equal(saved.constant_data["n"].values, result.dataset.stats.n)
    assert result.diagnostics["data"]["rows_in_posterior"] is False
