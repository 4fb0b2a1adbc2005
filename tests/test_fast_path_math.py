"""The exact fast path: sufficient statistics, marginal likelihood and conditional draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from framework import (
    GroupStats,
    design_stats,
    draw_group_effects,
    marginal_loglik,
    reduce_chunks,
)

HYPER = {
    "intercept_mu": 1.0,
    "intercept_sigma": 3.0,
    "slope_mu": 0.02,
    "slope_sigma": 0.5,
    "error_sigma": 2.0,
}


def _rows(seed=0, sizes=(1, 3, 5, 10), x_offset=0.0, y_offset=0.0):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(len(sizes)), sizes)
    x = x_offset + rng.normal(0, 3, len(codes))
    y = y_offset + rng.normal(0, 5, len(codes))
    return codes, x, y


def _dense_loglik(codes, x, y, h):
    """log p(y) from the dense multivariate normal of each group: the definition."""
    total = 0.0
    for j in np.unique(codes):
        X = np.c_[np.ones((codes == j).sum()), x[codes == j]]
        cov = (
            h["error_sigma"] ** 2 * np.eye(len(X))
            + X @ np.diag([h["intercept_sigma"] ** 2, h["slope_sigma"] ** 2]) @ X.T
        )
        total += st.multivariate_normal(X @ [h["intercept_mu"], h["slope_mu"]], cov).logpdf(
            y[codes == j]
        )
    return total


def test_chunked_reduction_equals_one_pass():
    codes, x, y = _rows()
    whole = GroupStats.from_rows(codes, x, y, 4)
    order = np.random.default_rng(1).permutation(len(codes))  # chunks mix groups arbitrarily
    parts = [
        (codes[order[i : i + 4]], x[order[i : i + 4]], y[order[i : i + 4]])
        for i in range(0, len(codes), 4)
    ]
    merged = reduce_chunks(parts, 4)
    for name, value in whole.as_dict().items():
        np.testing.assert_allclose(getattr(merged, name), value, rtol=1e-12, atol=1e-9)


def test_centred_moments_keep_precision_with_large_offsets():
    # Raw sums of squares at offset 1e9 would lose every digit of a variance of ~9.
    codes, x, y = _rows()
    near = GroupStats.from_rows(codes, x, y, 4)
    far = reduce_chunks(
        [(codes[:9], x[:9] + 1e9, y[:9] + 1e9), (codes[9:], x[9:] + 1e9, y[9:] + 1e9)], 4
    )
    np.testing.assert_allclose(far.sxx, near.sxx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(far.syy, near.syy, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(far.sxy, near.sxy, rtol=1e-6, atol=1e-6)


def test_ten_million_rows_reduce_without_loss():
    # Per-chunk centring keeps a 10-million-row reduction within float rounding of the exact value.
    rng = np.random.default_rng(3)
    n = 10_000_000
    codes = rng.integers(0, 10, n)
    x = 2000.0 + rng.integers(0, 20, n)
    y = 1e6 + 0.5 * (x - 2000.0) + rng.standard_normal(n)
    chunks = (
        (codes[i : i + 1_000_000], x[i : i + 1_000_000], y[i : i + 1_000_000])
        for i in range(0, n, 1_000_000)
    )
    stats = reduce_chunks(chunks, 10)
    j = codes == 0
    xs, ys = x[j] - 2000.0, y[j] - 1e6  # exact reference on shifted data
    assert stats.n[0] == j.sum()
    np.testing.assert_allclose(stats.sxx[0], ((xs - xs.mean()) ** 2).sum(), rtol=1e-9)
    np.testing.assert_allclose(stats.sxy[0], ((xs - xs.mean()) * (ys - ys.mean())).sum(), rtol=1e-9)
    np.testing.assert_allclose(stats.syy[0], ((ys - ys.mean()) ** 2).sum(), rtol=1e-9)


@pytest.mark.parametrize("x_offset", [0.0, 2000.0])
def test_marginal_loglik_matches_dense_normal(x_offset):
    codes, x, y = _rows(x_offset=x_offset, y_offset=50.0)
    stats = GroupStats.from_rows(codes, x, y, 4)
    assert marginal_loglik(stats, **HYPER) == pytest.approx(
        _dense_loglik(codes, x, y, HYPER), rel=1e-9
    )


def test_marginal_loglik_single_row_and_constant_x_groups():
    codes = np.array([0, 1, 1, 1])
    x = np.array([5.0, 2.0, 2.0, 2.0])  # group 1 has a constant x
    y = np.array([1.0, 3.0, 4.0, 2.0])
    stats = GroupStats.from_rows(codes, x, y, 2)
    assert marginal_loglik(stats, **HYPER) == pytest.approx(
        _dense_loglik(codes, x, y, HYPER), rel=1e-9
    )


def test_marginal_loglik_broadcasts_over_draws():
    codes, x, y = _rows()
    stats = GroupStats.from_rows(codes, x, y, 4)
    draws = {k: np.array([[v, v * 1.1]]) for k, v in HYPER.items()}
    out = marginal_loglik(stats, **draws)
    assert out.shape == (1, 2)
    assert out[0, 0] == pytest.approx(marginal_loglik(stats, **HYPER))
    assert out[0, 1] == pytest.approx(
        marginal_loglik(stats, **{k: v * 1.1 for k, v in HYPER.items()})
    )


def test_group_effect_draws_follow_the_exact_conditional():
    codes, x, y = _rows(x_offset=10.0)
    stats = GroupStats.from_rows(codes, x, y, 4)
    n = 200_000
    a, b = draw_group_effects(
        stats, **{k: np.full((2, n // 2), v) for k, v in HYPER.items()}, seed=5
    )
    assert a.shape == b.shape == (2, n // 2, 4)
    D_inv = np.diag([1 / HYPER["intercept_sigma"] ** 2, 1 / HYPER["slope_sigma"] ** 2])
    s2 = HYPER["error_sigma"] ** 2
    for j in range(4):
        X = np.c_[np.ones((codes == j).sum()), x[codes == j]]
        cov = np.linalg.inv(D_inv + X.T @ X / s2)
        mean = cov @ (D_inv @ [HYPER["intercept_mu"], HYPER["slope_mu"]] + X.T @ y[codes == j] / s2)
        draws = np.c_[a[..., j].ravel(), b[..., j].ravel()]
        # Monte Carlo error of a mean over 200k draws is sd / 447: 6 of those is a safe bound.
        se = np.sqrt(np.diag(cov) / n)
        assert np.all(np.abs(draws.mean(axis=0) - mean) < 6 * se)
        np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.02, atol=1e-12)


def test_group_effect_draws_are_seeded():
    codes, x, y = _rows()
    stats = GroupStats.from_rows(codes, x, y, 4)
    h = {k: np.full((2, 5), v) for k, v in HYPER.items()}
    a1, _ = draw_group_effects(stats, **h, seed=1)
    a2, _ = draw_group_effects(stats, **h, seed=1)
    a3, _ = draw_group_effects(stats, **h, seed=2)
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    with pytest.raises(TypeError):
        draw_group_effects(stats, *HYPER.values())  # positional order mix-ups are impossible


def test_merge_with_an_empty_side_keeps_huge_values_finite():
    codes, x, y = np.array([0, 0, 1]), np.array([1.0, 2.0, 3.0]), np.array([1e160, 2e160, 3.0])
    stats = reduce_chunks([(codes, x, y)], 2)
    assert np.all(np.isfinite(stats.ybar)) and np.isfinite(stats.syy[1])


# --- groups pooled by design --------------------------------------------------------------


def test_a_balanced_panel_is_one_design_and_sizes_split_designs():
    from framework.testing import simulated_dataset

    panel = simulated_dataset(
        n_groups=12, rows_per_group=11, seed=4, unbalanced=False, shared_x=True
    )
    assert design_stats(panel.stats).n_designs == 1
    mixed = simulated_dataset(n_groups=12, rows_per_group=11, seed=4, shared_x=True)
    sizes = len(np.unique(mixed.stats.n))
    designs = design_stats(mixed.stats)
    assert 1 < designs.n_designs == sizes < 12 and designs.groups.sum() == 12
    scattered = simulated_dataset(n_groups=12, rows_per_group=11, seed=4)
    assert design_stats(scattered.stats).n_designs == 12  # distinct x: nothing to pool


@pytest.mark.parametrize("offset", [0.0, 1e6], ids=["plain", "offset-1e6"])
def test_design_sums_equal_the_per_group_sums(offset):
    # The identities DesignStats promises, at hyperparameters near and far from the data;
    # with y offset by 1e6 the per-group values are ~1e6 and their spread ~10.
    from framework.testing import simulated_dataset

    ds = simulated_dataset(n_groups=40, rows_per_group=9, seed=6, shared_x=True)
    stats = GroupStats(**{**ds.stats.as_dict(), "ybar": ds.stats.ybar + offset})
    d = design_stats(stats)
    index = {key: k for k, key in enumerate(zip(d.n, d.xbar, d.sxx, strict=True))}
    design = np.array([index[key] for key in zip(stats.n, stats.xbar, stats.sxx, strict=True)])
    for mu0, mu1 in [(20.0 + offset, 1.0), (offset - 300.0, -4.0)]:
        m_j = stats.ybar - mu0 - mu1 * stats.xbar
        e_j = stats.sxy - mu1 * stats.sxx
        f_j = e_j + stats.n * stats.xbar * m_j
        m, e = d.ybar - mu0 - mu1 * d.xbar, d.sxy - mu1 * d.sxx
        f = e + d.n * d.xbar * m
        for pooled, per_group in [
            (d.ybar_ss + d.groups * m**2, m_j**2),
            (d.sxy_ss + d.groups * e**2, e_j**2),
            (d.f_ss + d.groups * f**2, f_j**2),
        ]:
            expected = np.bincount(design, per_group)
            np.testing.assert_allclose(pooled, expected, rtol=1e-9, atol=1e-9 * expected.max())
    assert d.syy_total == pytest.approx(stats.syy.sum(), rel=1e-14)
