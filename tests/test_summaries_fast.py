"""The batched summaries (R-hat, ESS, estimates, mixture quantiles) give the one-by-one numbers."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from arviz.stats import diagnostics as az_diagnostics
from scipy.special import ndtr
from test_group_draws import _panel as group_draws_panel
from test_results_v2 import correlated_model, flat, posterior

from framework.model.gaussian_marginal import conditional_moments
from framework.model.model import build_model
from framework.model.terms import Column
from framework.results import convergence
from framework.results import group_mixture as gmx
from framework.results.estimates import group_estimates, hyperparameter_table
from framework.results.forecasts import forecast
from framework.results.mixture_series import QUANTILE_TOL

PANEL_MODEL = build_model(
    "y ~ x + (x | g)",
    {"y": Column("y", "numeric"), "x": Column("x", "numeric"), "g": Column("g", "categorical")},
)


def _ar(phi: float, chains: int, draws: int, rng) -> np.ndarray:
    x = np.zeros((chains, draws))
    e = rng.standard_normal((chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


@pytest.fixture(scope="module")
def awkward():
    """(4, 300, K): parameters whose Geyer sequence ends in each ESS pass, and edge cases."""
    rng = np.random.default_rng(5)
    columns = [_ar(phi, 4, 300, rng) for phi in (0.0, -0.6, 0.5, 0.6, 0.7, 0.8, 0.95, 0.99)]
    columns.append(np.full((4, 300), 2.5))  # constant: ESS is the draw count, R-hat NaN
    with_nan = rng.standard_normal((4, 300))
    with_nan[2, 17] = np.nan
    columns.append(with_nan)  # a NaN draw: every diagnostic NaN, as arviz
    columns.append(np.round(_ar(0.3, 4, 300, rng), 1))  # ties in the ranks
    shifted = _ar(0.2, 4, 300, rng)
    shifted[0] += 1.0  # one chain off: R-hat well above 1
    columns.append(shifted)
    return np.stack(columns, axis=-1)


def _same(ours: float, theirs: float) -> bool:
    # Both sides compute the same formulas; only summation order differs (1e-10 is generous).
    if np.isnan(theirs):
        return bool(np.isnan(ours))
    return ours == pytest.approx(theirs, rel=1e-10)


def test_a_batch_of_awkward_parameters_matches_arviz_one_by_one(awkward):
    rhat, bulk, tail = convergence.diagnostics(awkward)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns about the NaN and the constant column
        for i in range(awkward.shape[2]):
            one = awkward[..., i]
            assert _same(rhat[i], az.rhat(one)), i
            assert _same(bulk[i], az.ess(one, method="bulk")), i
            assert _same(tail[i], az.ess(one, method="tail")), i


def test_every_ess_pass_is_used_and_none_changes_a_number(awkward, monkeypatch):
    rows = {"head": [], "fft": []}
    head, rfft = convergence._head, convergence.rfft
    monkeypatch.setattr(
        convergence, "_head", lambda c, lags: rows["head"].append(len(c)) or head(c, lags)
    )
    monkeypatch.setattr(
        convergence, "rfft", lambda c, **kw: rows["fft"].append(len(c)) or rfft(c, **kw)
    )
    staged = convergence.diagnostics(awkward)
    # 8 lags for every row, 16 for fewer of them, every lag (FFT) for fewer still.
    assert rows["head"][0] > rows["head"][1] > rows["fft"][0] > 0
    monkeypatch.setattr(convergence, "FIRST_LAGS", convergence.HEAD_LAGS)  # one direct pass
    for a, b in zip(staged, convergence.diagnostics(awkward), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_single_chain_gives_arviz_ess_and_its_split_r_hat():
    x = _ar(0.4, 1, 500, np.random.default_rng(2))
    rhat, bulk, tail = convergence.diagnostics(x[..., None])
    assert bulk[0] == pytest.approx(az.ess(x, method="bulk"), rel=1e-10)
    assert tail[0] == pytest.approx(az.ess(x, method="tail"), rel=1e-10)
    # az.rhat refuses one chain (NaN); its own steps on the split chain give ours.
    split = az_diagnostics._split_chains(x)
    folded = np.abs(split - np.median(split))
    bulk_rhat = az_diagnostics._rhat(az_diagnostics._z_scale(split))
    tail_rhat = az_diagnostics._rhat(az_diagnostics._z_scale(folded))
    assert rhat[0] == pytest.approx(max(bulk_rhat, tail_rhat), rel=1e-10)


def _panel():
    """A balanced panel's statistics and hyperparameter draws spread enough that Newton runs."""
    return group_draws_panel(groups=40, rows=10, noise=0.03, draws=300, seed=8)


def _bisect(means: np.ndarray, sds: np.ndarray, p: float) -> float:
    """The reference quantile of one equal-weight normal mixture: plain bisection to the last bit."""
    lo, hi = np.min(means - 12 * sds), np.max(means + 12 * sds)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if ndtr((mid - means) / sds).mean() < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def test_mixture_estimates_equal_a_group_by_group_reference(monkeypatch):
    stats, params = _panel()
    probs = (0.05, 0.95)
    monkeypatch.setattr(gmx, "CHUNK_VALUES", 300 * 7)  # Newton in chunks of 7 groups, threaded
    fast = gmx.mixture_summaries(PANEL_MODEL, stats, params, probs)
    monkeypatch.setattr(gmx, "CHUNK_VALUES", 10**9)  # every group in one chunk, one thread
    np.testing.assert_array_equal(fast, gmx.mixture_summaries(PANEL_MODEL, stats, params, probs))
    means, cov = conditional_moments(PANEL_MODEL, stats, **params)  # (S, J, q), (S, J, q, q)
    for j in (0, 13, 39):
        for t in range(2):
            m, s = means[:, j, t], np.sqrt(cov[:, j, t, t])
            spread = np.sqrt(np.mean(s**2) + m.var())
            # Mean and sd are the same sums in another order: rounding only.
            assert fast[0, j, t] == pytest.approx(m.mean(), rel=1e-12)
            assert fast[1, j, t] == pytest.approx(spread, rel=1e-12)
            for k, p in enumerate(probs):  # Newton stops within QUANTILE_TOL mixture sds
                assert abs(fast[2 + k, j, t] - _bisect(m, s, p)) <= QUANTILE_TOL * spread


def test_shared_sds_take_the_same_newton_steps_as_their_copies():
    rng = np.random.default_rng(4)
    means = rng.normal(0, 1, (200, 30)) + rng.normal(0, 3, 30)
    sds = rng.uniform(0.5, 2.0, (200, 1))
    shared = gmx.mixture_quantiles(means, np.broadcast_to(sds, means.shape), (0.05, 0.5, 0.95))
    copied = gmx.mixture_quantiles(means, np.repeat(sds, 30, axis=1), (0.05, 0.5, 0.95))
    np.testing.assert_array_equal(shared, copied)


def test_draw_estimates_hyperparameters_and_forecasts_equal_numpy_per_parameter():
    model = correlated_model()
    idata = posterior(model, n_groups=5, seed=3)
    est = group_estimates(idata, model)
    coef = flat(idata, "coef")
    for j in range(5):
        for t, term in enumerate(model.group_term_names):
            row = est[(est.group == f"g{j}") & (est.term == term)].iloc[0]
            d = coef[:, j, t]
            # Same numpy reductions over another memory layout: at most rounding differs.
            assert row["mean"] == pytest.approx(d.mean(), rel=1e-12)
            assert row["sd"] == pytest.approx(d.std(ddof=1), rel=1e-12)
            assert row["q5"] == pytest.approx(np.quantile(d, 0.05), rel=1e-12)
            assert row["q95"] == pytest.approx(np.quantile(d, 0.95), rel=1e-12)
    table = hyperparameter_table(idata, model).set_index("parameter")
    for variable, selection in model.hyperparameters():
        values = idata.posterior[variable].sel(selection).values.ravel()
        row = table.loc[model.label(variable, selection)]
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert row["sd"] == pytest.approx(values.std(ddof=1), rel=1e-12)
        expected = np.quantile(values, (0.05, 0.5, 0.95))
        np.testing.assert_allclose(row[["q5", "q50", "q95"]].to_numpy(float), expected, rtol=1e-12)
    out = forecast(idata, model, "g2", {"x": 1.5, "trt": "b"})
    beta, sigma = flat(idata, "beta"), flat(idata, "sigma")
    names = list(model.term_names)
    row = np.zeros(len(names))
    row[names.index("Intercept")], row[names.index("x")] = 1.0, 1.5
    row[names.index("trt[b]")] = 1.0
    z = row[model.group_term_index]
    rest = np.ones(len(row), bool)
    rest[model.group_term_index] = False
    means = beta[:, rest] @ row[rest] + coef[:, 2] @ z
    spread = np.sqrt(np.mean(sigma**2) + means.var())
    assert out["mean"] == pytest.approx(means.mean(), rel=1e-12)
    assert out["sd"] == pytest.approx(spread, rel=1e-12)
    for key, p in (("q5", 0.05), ("q50", 0.5), ("q95", 0.95)):  # bisection to 1e-10 relative
        assert out[key] == pytest.approx(_bisect(means, sigma, p), rel=1e-9)
