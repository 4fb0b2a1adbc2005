"""Results from a common posterior v2: estimates, hyperparameters, recovery, forecasts, plots, compare.

The posteriors are built from known draws in the v2 layout, so every number is
checked against a direct computation from those draws.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import pytest

from framework.backends.posterior import build_posterior, check_posterior
from framework.cli import main
from framework.errors import RunDirectoryError, UserError
from framework.model.model import build_model
from framework.model.terms import Column
from framework.results.comparison import agreement_table
from framework.results.diagnostics import diagnose
from framework.results.estimates import group_estimates, hyperparameter_table, recovery_table
from framework.results.forecasts import forecast, forecast_table, mixture_quantiles
from framework.results.plots import write_plots
from framework.results.run_reader import saved_model

CHAINS, DRAWS = 4, 500
LEVELS = ("a", "b", "c")


def correlated_model():
    columns = {
        "y": Column("y", "numeric"),
        "x": Column("x", "numeric"),
        "trt": Column("trt", "categorical", LEVELS),
        "g": Column("g", "categorical", ()),
    }
    return build_model("y ~ x + trt + (x | g)", columns)


def one_predictor_model():
    columns = {n: Column(n, "numeric") for n in ("rain", "year")}
    columns["state"] = Column("state", "categorical", ())
    return build_model("rain ~ year + (year || state)", columns)


def statistics_only(model, n_groups: int):
    """What build_posterior reads of a Dataset without rows: labels and per-group statistics."""
    k = len(model.term_names) + 1
    stats = SimpleNamespace(
        n=np.full(n_groups, 10), mean=np.zeros((n_groups, k)), cross=np.zeros((n_groups, k, k))
    )
    return SimpleNamespace(
        labels=[f"g{j}" for j in range(n_groups)],
        has_rows=False,
        stats=stats,
        n_rows=10 * n_groups,
        digest=lambda: "0" * 64,
        without_rows=lambda: None,
    )


def posterior(model, n_groups: int, seed: int = 0, shift: float = 0.0):
    """A v2 posterior from known draws through the shared build_posterior (checked by the core)."""
    rng = np.random.default_rng(seed)
    shape = (CHAINS, DRAWS)
    p, q = len(model.term_names), len(model.group_term_names)
    beta = rng.normal(np.arange(1.0, p + 1), 0.1, (*shape, p))
    beta[..., 0] += shift
    sd = np.abs(rng.normal([1.0, 0.5][:q] + [0.3] * (q - 2), 0.05, (*shape, q)))
    draws = {"beta": beta, "group_sd": sd, "sigma": np.abs(rng.normal(0.7, 0.05, shape))}
    omega = np.broadcast_to(np.eye(q), (*shape, q, q)).copy()
    if model.correlated:
        r = np.tanh(rng.normal(0.8, 0.05, shape))  # strong: ignoring it changes the forecast
        omega[..., 0, 1] = omega[..., 1, 0] = r
        draws["group_corr"] = omega
    cov = sd[..., :, None] * omega * sd[..., None, :]
    b = np.einsum(
        "cdij,cdgj->cdgi", np.linalg.cholesky(cov), rng.normal(size=(*shape, n_groups, q))
    )
    draws["coef"] = beta[..., model.group_term_index][..., None, :] + b
    dataset = statistics_only(model, n_groups)
    attrs = {"backend": "test", "engine": "numpy", "library_versions": "", "sampling_seconds": 1.0}
    idata = build_posterior(
        model, dataset, draws, np.zeros(shape, bool), {}, {**attrs, "seed": seed}
    )
    check_posterior(idata, model, dataset, "test")
    return idata


def flat(idata, name):
    v = idata.posterior[name].values
    return v.reshape(-1, *v.shape[2:])


@pytest.fixture(scope="module")
def model():
    return correlated_model()


@pytest.fixture(scope="module")
def idata(model):
    return posterior(model, n_groups=7)


def test_estimates_are_the_coef_draws_summarised_a_block_at_a_time(idata, model, monkeypatch):
    monkeypatch.setattr("framework.results.estimates.GROUP_BLOCK", 3)  # 7 groups: 3 blocks
    est = group_estimates(idata, model)
    coef = flat(idata, "coef")
    assert list(est.columns) == ["group", "term", "mean", "sd", "q5", "q95"]
    assert list(est["term"][:2]) == ["Intercept", "x"] and list(est["group"][:3]) == ["g0"] * 2 + [
        "g1"
    ]
    for j in (0, 4, 6):
        for k, term in enumerate(model.group_term_names):
            row = est[(est.group == f"g{j}") & (est.term == term)].iloc[0]
            d = coef[:, j, k]
            assert row["mean"] == pytest.approx(d.mean())
            assert row["sd"] == pytest.approx(d.std(ddof=1))
            assert (row["q5"], row["q95"]) == pytest.approx(tuple(np.quantile(d, [0.05, 0.95])))


def test_hyperparameters_every_scalar_in_v2_names_with_diagnostics(idata, model):
    diag = diagnose(idata, model)
    table = hyperparameter_table(idata, model, diag)
    assert table["parameter"].tolist() == [
        "beta[Intercept]",
        "beta[x]",
        "beta[trt[b]]",
        "beta[trt[c]]",
        "group_sd[Intercept]",
        "group_sd[x]",
        "group_corr[Intercept,x]",
        "sigma",
    ]
    row = table.set_index("parameter").loc["group_corr[Intercept,x]"]
    r = flat(idata, "group_corr")[:, 0, 1]
    assert row["mean"] == pytest.approx(r.mean()) and row["q50"] == pytest.approx(np.median(r))
    assert row["r_hat"] == diag["parameters"]["group_corr[Intercept,x]"]["r_hat"]
    # Independent draws: R-hat near 1 and ESS near the draw count, for coef too.
    assert set(diag["parameters"]) >= {"coef[*,Intercept]", "coef[*,x]", "sigma"}
    assert diag["max_r_hat"] < 1.01 and diag["min_ess_bulk"] > 1000 and diag["passed"]
    assert diag["parameters"]["coef[*,x]"]["worst_group"] in idata.posterior.coords["group"]


def test_recovery_reads_v2_truth_and_reports_coef_coverage(idata, model):
    coef = flat(idata, "coef").mean(axis=0)
    truth = {
        "beta": {"Intercept": 1.0, "x": 2.0, "trt[b]": 3.0, "trt[c]": 30.0},
        "group_sd": {"Intercept": 1.0, "x": 0.5},
        "group_corr": {("x", "Intercept"): 0.66},  # either order of the pair
        "sigma": 0.7,
        "coef": coef,
    }
    rec = recovery_table(idata, model, truth).set_index("parameter")
    assert len(rec) == 8 and rec.loc["group_corr[Intercept,x]", "truth"] == 0.66
    assert rec["covered"].sum() == 7 and not rec.loc["beta[trt[c]]", "covered"]
    assert rec.attrs["coef_coverage"] == 1.0 and set(rec.attrs["coef_coverage_by_term"]) == {
        "Intercept",
        "x",
    }


def exact_mixture(means, sds):
    mean = means.mean()
    return mean, np.sqrt(np.mean(sds**2) + means.var()), mixture_quantiles(means, sds)


def test_fitted_group_forecast_at_a_categorical_level(idata, model):
    row = forecast(idata, model, "g3", {"x": 2.5, "trt": "c"})
    beta, coef, sigma = flat(idata, "beta"), flat(idata, "coef")[:, 3], flat(idata, "sigma")
    # x and the intercept vary by group: their betas are inside coef; trt[c] is population-only.
    means = coef[:, 0] + 2.5 * coef[:, 1] + beta[:, 3]
    mean, sd, q = exact_mixture(means, sigma)
    assert row["source"] == "fitted" and row["trt"] == "c" and row["x"] == 2.5
    assert (row["mean"], row["sd"]) == pytest.approx((mean, sd), rel=1e-12)
    assert (row["q5"], row["q50"], row["q95"]) == pytest.approx(tuple(q), rel=1e-9)
    reference = forecast(idata, model, "g3", {"x": 2.5, "trt": "a"})
    assert row["mean"] - reference["mean"] == pytest.approx(beta[:, 3].mean())


def test_new_group_forecast_uses_the_full_covariance(idata, model):
    row = forecast(idata, model, "elsewhere", {"x": 3.0, "trt": "b"})
    assert row["source"] == "population"
    # Monte Carlo from the draws: per draw, b ~ N(0, Sigma_d), y ~ N(x beta_d + z b, sigma_d).
    rng = np.random.default_rng(5)
    beta, sd, sigma = flat(idata, "beta"), flat(idata, "group_sd"), flat(idata, "sigma")
    corr = flat(idata, "group_corr")
    reps = 200
    z = np.array([1.0, 3.0])
    cov = sd[:, :, None] * corr * sd[:, None, :]
    b = np.einsum("sij,srj->sri", np.linalg.cholesky(cov), rng.normal(size=(len(sd), reps, 2)))
    y = beta @ np.array([1.0, 3.0, 1.0, 0.0]) + (b @ z).T + sigma * rng.normal(size=(reps, len(sd)))
    y = y.ravel()
    m = y.size  # 400,000 draws of y
    # Tolerances of 5 Monte Carlo standard errors (false alarm ~1e-6 each): the mean's is
    # sd/sqrt(m); the sd's is sd/sqrt(2m) (nearly normal y); a quantile is checked by the share
    # of draws below it, binomial with se sqrt(p(1-p)/m).
    assert row["mean"] == pytest.approx(y.mean(), abs=5 * y.std() / np.sqrt(m))
    assert row["sd"] == pytest.approx(y.std(), abs=5 * y.std() / np.sqrt(2 * m))
    for p in (0.05, 0.5, 0.95):
        share = np.mean(y <= row[f"q{round(100 * p)}"])
        assert share == pytest.approx(p, abs=5 * np.sqrt(p * (1 - p) / m))
    # Ignoring the correlation (0.66 here) would miss the sd by far more than the tolerance.
    independent = np.sqrt(np.mean(sigma**2 + (sd**2 * z**2).sum(axis=1)) + (beta[:, :2] @ z).var())
    assert abs(independent - row["sd"]) > 50 * y.std() / np.sqrt(2 * m)


def test_forecast_table_keeps_the_names_given(idata, model):
    requests = [
        ("g0", {"x": 1.0, "trt": "b"}),
        {"group": "new", "at": {"trt": "a", "x": 0}},
        SimpleNamespace(group="g1", x=None, at={"x": "2", "trt": "c"}),
    ]
    table = forecast_table(idata, model, requests)
    assert list(table.columns) == [
        "group", "x", "trt", "source", "mean", "sd", "q5", "q50", "q95", "note"
    ]  # fmt: skip
    assert table["x"].tolist() == [1.0, 0.0, 2.0] and table["trt"].tolist() == ["b", "a", "c"]
    assert table["source"].tolist() == ["fitted", "population", "fitted"]
    empty = forecast_table(idata, model, [])
    assert len(empty) == 0 and "mean" in empty.columns


def test_x_means_the_one_predictor_and_stays_x_in_the_table():
    model = one_predictor_model()
    idata = posterior(model, n_groups=3)
    table = forecast_table(idata, model, [("g1", 16), ("g1", {"year": 16})])
    assert list(table.columns[:3]) == ["group", "x", "year"]
    assert table["mean"][0] == table["mean"][1]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"x": 1, "trt": "z"},
            "'z' is not a level of the categorical column 'trt'; its levels are: a, b, c",
        ),
        ({"x": 1, "tr": "a"}, "'tr' is not a predictor of the model; did you mean 'trt'?"),
        ({"x": 1}, "no value for the predictor(s) trt"),
        ({"x": "soon", "trt": "a"}, "x = 'soon' is not a number"),
        ({"x": float("nan"), "trt": "a"}, "must be a finite number"),
    ],
)
def test_bad_forecast_values_get_one_clear_message(idata, model, values, message):
    with pytest.raises(UserError) as err:
        forecast(idata, model, "g0", values)
    assert message in str(err.value) and "forecast for group 'g0'" in str(err.value)


def test_x_for_a_several_predictor_model_says_to_use_at():
    columns = {n: Column(n, "numeric") for n in ("y", "x1", "x2")}
    columns["g"] = Column("g", "categorical", ())
    model = build_model("y ~ x1 + x2 + (x1 | g)", columns)
    idata = posterior(model, n_groups=2)
    with pytest.raises(UserError, match=r"predictors are x1, x2: give each with at:"):
        forecast(idata, model, "g0", {"x": 1.0})


def test_saved_run_rebuilds_the_model_and_the_cli_forecasts(tmp_path, idata, model, capsys):
    run = tmp_path / "run"
    run.mkdir()
    idata.to_netcdf(run / "posterior.nc")
    loaded = az.from_netcdf(str(run / "posterior.nc"), engine="h5netcdf")
    rebuilt = saved_model(loaded)
    assert rebuilt.term_names == model.term_names and rebuilt.correlated
    assert rebuilt.columns["trt"].levels == LEVELS
    args = ["forecast", str(run), "--group", "g2", "--at", "x=1.5", "--at", "trt=b"]
    assert main(args) == 0
    out = capsys.readouterr().out
    expected = forecast(idata, model, "g2", {"x": 1.5, "trt": "b"})
    assert f"{expected['mean']:.3f}" in out and "fitted" in out
    assert main(["forecast", str(run), "--group", "g2", "--at", "trt=q", "--at", "x=1"]) == 2
    assert "'q' is not a level of the categorical column 'trt'" in capsys.readouterr().err
    assert main(["forecast", str(run), "--group", "g2", "--at", "trt"]) == 2
    assert "write COLUMN=VALUE" in capsys.readouterr().err
    assert main(["forecast", str(run), "--group", "g2"]) == 2


def test_a_posterior_without_model_attrs_is_refused_clearly(idata):
    old = idata.copy()
    old.posterior.attrs = {"backend": "test"}
    with pytest.raises(RunDirectoryError, match="no formula/family/model_columns attrs"):
        saved_model(old)


def test_plots_stay_fast_and_readable_at_2000_groups(tmp_path):
    model = one_predictor_model()
    idata = posterior(model, n_groups=2000)
    start = time.perf_counter()
    est = group_estimates(idata, model)
    write_plots(tmp_path, idata, model, est, truth={"sigma": 0.7, "beta": {"year": 2.0}})
    # Two shared cores: a per-group artist (2,000 labelled lines) takes far longer than this.
    assert time.perf_counter() - start < 30
    for name in ("hyperparameters.png", "group_effects.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_small_plots_label_each_group(tmp_path, idata, model):
    write_plots(tmp_path, idata, model, group_estimates(idata, model))
    assert (tmp_path / "group_effects.png").stat().st_size > 10_000


def test_compare_flags_a_shifted_backend_in_mcse_units(model):
    runs = {
        "a": SimpleNamespace(idata=posterior(model, 5, seed=1), model=model),
        "b": SimpleNamespace(idata=posterior(model, 5, seed=2), model=model),
        "c": SimpleNamespace(idata=posterior(model, 5, seed=2, shift=0.3), model=model),
    }
    table = agreement_table({k: runs[k] for k in ("a", "b")}).set_index("parameter")
    # 8 scalars + 5 groups x 2 terms, every one compared.
    assert len(table) == 18 and "coef[g4,x]" in table.index
    # Independent draws from the same distribution: |z| > 4 has probability 6e-5 each.
    assert not table["flagged"].any()
    shifted = agreement_table({k: runs[k] for k in ("a", "c")}).set_index("parameter")
    # 0.3 on beta[Intercept] (sd 0.1, MCSE ~0.1/sqrt(2000)) is ~100 MCSE, ~3 sd.
    assert shifted.loc["beta[Intercept]", "flagged"]
    assert shifted.loc["beta[Intercept]", "diff_sd"] == pytest.approx(3, rel=0.15)
    assert pd.api.types.is_bool_dtype(shifted["flagged"])


def test_a_stuck_group_is_named_in_the_r_hat_problem(model):
    idata = posterior(model, n_groups=4)
    coef = idata.posterior["coef"].values
    coef[0, :, 2, 1] += 5.0  # chain 0 of group g2's x coefficient sits elsewhere
    diag = diagnose(idata, model)
    assert diag["parameters"]["coef[*,x]"]["worst_group"] == "g2"
    assert not diag["passed"] and "at coef[g2,x]" in diag["problems"][0]


def test_terminal_summary_shows_v2_names_first_groups_and_outputs(idata, model, tmp_path):
    from framework.cli.terminal import summary

    (tmp_path / "estimates.csv").write_text("")
    diag = diagnose(idata, model)
    diag.update(
        backend="test", engine="numpy", method="marginal", parameterisation="centred", seed=1
    )
    diag["data"] = {"rows": 70, "groups": 7}
    result = SimpleNamespace(
        spec=SimpleNamespace(name="demo"),
        model=model,
        diagnostics=diag,
        hyperparameters=hyperparameter_table(idata, model, diag),
        estimates=group_estimates(idata, model),
        recovery=None,
        forecasts=forecast_table(idata, model, [("g0", {"x": 1, "trt": "b"})]),
        output_dir=tmp_path,
    )
    text = summary(result)
    line = next(ln for ln in text.splitlines() if ln.startswith("group_corr[Intercept,x]"))
    r_hat, ess_bulk = line.split()[-3:-1]
    assert len(r_hat.split(".")[1]) == 3 and ess_bulk.isdigit()
    assert "first 5 groups; 2 more in estimates.csv" in text and "g4" in text and "g5" not in text
    assert f"Outputs: {tmp_path}: estimates.csv" in text


def test_an_intercept_only_model_forecasts_without_values():
    columns = {"y": Column("y", "numeric"), "g": Column("g", "categorical", ())}
    model = build_model("y ~ 1 + (1 | g)", columns)
    idata = posterior(model, n_groups=2)
    fitted, new = forecast_table(idata, model, [("g1", {}), ("other", {})]).to_dict("records")
    sigma, coef = flat(idata, "sigma"), flat(idata, "coef")[:, 1, 0]
    assert fitted["mean"] == pytest.approx(coef.mean())
    assert fitted["sd"] == pytest.approx(np.sqrt(np.mean(sigma**2) + coef.var()))
    between = flat(idata, "group_sd")[:, 0] ** 2
    assert new["sd"] == pytest.approx(
        np.sqrt(np.mean(sigma**2 + between) + flat(idata, "beta")[:, 0].var())
    )
