"""The vectorised R-hat and ESS give arviz's numbers exactly."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from framework.results.convergence import diagnostics, mcse_mean


@pytest.fixture(scope="module", params=[400, 399], ids=["even-draws", "odd-draws"])
def chains(request):
    # AR(1) chains from independent (Geyer's sequence ends within the directly summed lags)
    # to strongly autocorrelated (it needs the FFT), one chain shifted (so R-hat > 1), one
    # parameter rounded (ties in the ranks). An odd draw count drops a draw from split chains.
    rng = np.random.default_rng(0)
    m, n, k = 4, request.param, 24
    phi = np.linspace(0.0, 0.97, k)
    x = np.zeros((m, n, k))
    e = rng.standard_normal((m, n, k))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    x[1] += np.linspace(0, 0.6, k)
    x[..., 3] = np.round(x[..., 3], 1)
    return x


def test_matches_arviz(chains):
    rhat, bulk, tail = diagnostics(chains)
    for i in range(chains.shape[2]):
        one = chains[..., i]
        assert rhat[i] == pytest.approx(az.rhat(one), rel=1e-10)
        assert bulk[i] == pytest.approx(az.ess(one, method="bulk"), rel=1e-10)
        assert tail[i] == pytest.approx(az.ess(one, method="tail"), rel=1e-10)


def test_chunks_do_not_change_the_answer(chains, monkeypatch):
    whole = diagnostics(chains)
    monkeypatch.setattr("framework.results.convergence.CHUNK", 5)
    for a, b in zip(whole, diagnostics(chains), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)  # FFT sizes differ by batch: rounding only


def test_a_stuck_chain_is_flagged(chains):
    stuck = chains.copy()
    stuck[2] = 10.0 + 0.01 * stuck[2]
    rhat, _, _ = diagnostics(stuck)
    assert np.all(rhat > 1.1)


@pytest.mark.parametrize("draws", [1, 2, 3])
def test_too_few_draws_give_nan_not_a_crash(draws):
    # `sampler.draws: 2` is a valid spec; its diagnostics must fail the checks, not the run.
    x = np.random.default_rng(1).normal(size=(4, draws, 3))
    for values in diagnostics(x):
        assert values.shape == (3,) and np.isnan(values).all()


def test_mcse_of_the_mean_matches_arviz(chains):
    mcse = mcse_mean(chains)
    for i in range(chains.shape[2]):
        assert mcse[i] == pytest.approx(az.mcse(chains[..., i], method="mean"), rel=1e-10)
