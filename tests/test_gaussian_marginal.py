"""The exact fast path's maths: per-group and pooled marginal likelihoods against the dense normal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from framework.model import gaussian_marginal as gm
from framework.model.model import build_model
from framework.model.statistics import GroupStats, reduce_chunks
from framework.model.terms import Column

COLUMNS = {
    "y": Column("y", "numeric"),
    "x1": Column("x1", "numeric"),
    "x2": Column("x2", "numeric"),
    "c": Column("c", "categorical", ("a", "b", "c")),
    "g": Column("g", "categorical"),
}
FORMULAS = [
    "y ~ x1 + (x1 || g)",  # the v1 model
    "y ~ x1 + x2 + c + (x1 | g)",
    "y ~ x1 + c:x2 + (1 + x1 || g)",
    "y ~ x1 + (1 | g)",
    "y ~ x1*c + (1 + x1 + c | g)",
]


def _parameters(model, rng, draws=3, offset=0.0):
    p, q = model.n_terms, model.n_group_terms
    beta = rng.normal(size=(draws, p))
    beta[:, 0] += offset
    corr = None
    if model.correlated:
        a = rng.normal(size=(draws, q, q + 2))
        s = a @ a.transpose(0, 2, 1)
        d = np.sqrt(np.diagonal(s, axis1=1, axis2=2))
        corr = s / d[:, :, None] / d[:, None, :]
    return {
        "beta": beta,
        "group_sd": rng.uniform(0.5, 2, (draws, q)),
        "sigma": rng.uniform(1, 3, draws),
        "group_corr": corr,
    }


def _data(model, rng, groups, rows, offset=0.0, panel=False):
    if panel:  # every group observed at the same predictor values: one design
        per = rows // groups
        codes = np.repeat(np.arange(groups), per)
        x1 = np.tile(rng.normal(5, 2, per), groups)
        x2 = np.tile(rng.normal(size=per), groups)
        c = np.tile(rng.choice(["a", "b", "c"], per), groups)
    else:
        codes = np.sort(rng.integers(0, groups, rows))
        x1, x2 = rng.normal(5, 2, rows), rng.normal(size=rows)
        c = rng.choice(["a", "b", "c"], rows)
    y = (
        offset
        + rng.normal(0, 3, len(codes))
        + np.repeat(rng.normal(size=groups), np.bincount(codes))
    )
    x = model.design({"y": y, "x1": x1, "x2": x2, "c": c})
    return codes, x, y


def _dense(model, codes, x, y, params, d):
    """log p(y) from the dense N(X beta, s^2 I + Z Sigma Z') of every group: the definition."""
    z = model.group_term_index
    sd = params["group_sd"][d]
    corr = np.eye(len(sd)) if params["group_corr"] is None else params["group_corr"][d]
    cov = np.diag(sd) @ corr @ np.diag(sd)
    total = 0.0
    for g in np.unique(codes):
        rows = codes == g
        xg = x[rows]
        v = params["sigma"][d] ** 2 * np.eye(rows.sum()) + xg[:, z] @ cov @ xg[:, z].T
        total += multivariate_normal(xg @ params["beta"][d], v).logpdf(y[rows])
    return total


@pytest.mark.parametrize("formula", FORMULAS)
def test_marginal_loglik_equals_dense_normal(formula):
    rng = np.random.default_rng(1)
    model = build_model(formula, COLUMNS)
    codes, x, y = _data(model, rng, groups=7, rows=60)
    stats = GroupStats.from_rows(codes, np.column_stack([x, y]), 7)
    params = _parameters(model, rng)
    want = [_dense(model, codes, x, y, params, d) for d in range(3)]
    # Rounding only: sums of ~60 terms of size ~10 in float64.
    np.testing.assert_allclose(gm.marginal_loglik(model, stats, **params), want, atol=1e-8)
    pooled = gm.designs(model, stats)
    np.testing.assert_allclose(gm.designs_loglik(pooled, **params), want, atol=1e-8)


@pytest.mark.parametrize("formula", FORMULAS[1:])
def test_pooled_designs_equal_per_group_with_offsets(formula):
    """A panel pools into one design; y and beta near 1e6 must not lose the likelihood."""
    rng = np.random.default_rng(2)
    model = build_model(formula, COLUMNS)
    codes, x, y = _data(model, rng, groups=40, rows=400, offset=1e6, panel=True)
    stats = GroupStats.from_rows(codes, np.column_stack([x, y]), 40)
    pooled = gm.designs(model, stats)
    assert pooled.n_designs == 1 and pooled.pooled
    params = _parameters(model, rng, offset=1e6)
    per_group = gm.marginal_loglik(model, stats, **params)
    # ~1e3 in size; the pooled form subtracts sums of order n * 1e12 / sigma^2: 1e-6 relative
    # would be cancellation, 1e-9 is rounding.
    np.testing.assert_allclose(gm.designs_loglik(pooled, **params), per_group, rtol=1e-9)


def test_statistics_merge_in_any_chunks():
    rng = np.random.default_rng(3)
    model = build_model(FORMULAS[1], COLUMNS)
    codes, x, y = _data(model, rng, groups=9, rows=300, offset=1e6)
    w = np.column_stack([x, y])
    whole = GroupStats.from_rows(codes, w, 9)
    cuts = [0, 1, 17, 150, 299, 300]
    parts = reduce_chunks((codes[a:b], w[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
    np.testing.assert_allclose(parts.n, whole.n)
    np.testing.assert_allclose(parts.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(parts.cross, whole.cross, rtol=1e-9, atol=1e-6)


def test_conditional_draws_match_the_exact_conditional():
    """Mean and covariance of many draws of one group's coefficients against the closed form."""
    rng = np.random.default_rng(4)
    model = build_model(FORMULAS[1], COLUMNS)
    codes, x, y = _data(model, rng, groups=3, rows=30)
    stats = GroupStats.from_rows(codes, np.column_stack([x, y]), 3)
    one = {k: (None if v is None else v[:1]) for k, v in _parameters(model, rng, 1).items()}
    many = {k: (None if v is None else np.repeat(v, 40_000, axis=0)) for k, v in one.items()}
    coef = gm.draw_coefficients(model, stats, **many, seed=5)
    z = model.group_term_index
    cov = np.diag(one["group_sd"][0]) @ one["group_corr"][0] @ np.diag(one["group_sd"][0])
    for g in range(3):
        rows = codes == g
        zg, r = x[rows][:, z], y[rows] - x[rows] @ one["beta"][0]
        a = np.linalg.inv(cov) + zg.T @ zg / one["sigma"][0] ** 2
        post_cov = np.linalg.inv(a)
        mean = one["beta"][0][z] + post_cov @ zg.T @ r / one["sigma"][0] ** 2
        draws = coef[:, g, :]
        se = np.sqrt(np.diag(post_cov) / len(draws))
        # 40,000 independent draws: the sample mean is within 4.5 standard errors (p < 1e-5).
        assert np.all(np.abs(draws.mean(0) - mean) < 4.5 * se)
        np.testing.assert_allclose(np.cov(draws.T), post_cov, rtol=0.05)


def test_same_seed_same_draws():
    rng = np.random.default_rng(6)
    model = build_model(FORMULAS[4], COLUMNS)
    codes, x, y = _data(model, rng, groups=5, rows=80)
    stats = GroupStats.from_rows(codes, np.column_stack([x, y]), 5)
    params = _parameters(model, rng, draws=50)
    a = gm.draw_coefficients(model, stats, **params, seed=7, chunk=50)
    b = gm.draw_coefficients(model, stats, **params, seed=7, chunk=50)
    np.testing.assert_array_equal(a, b)
    c = gm.draw_coefficients(model, stats, **params, seed=8, chunk=50)
    assert not np.allclose(a, c)
    assert a.shape == (50, 5, model.n_group_terms)


# --- from the v1 fast-path tests: statistics, edge cases, pooling identities ----------------


def _stats(model, codes, x, y, n_groups):
    return GroupStats.from_rows(codes, np.column_stack([x, y]), n_groups)


def test_chunks_that_mix_groups_in_any_order_reduce_to_one_pass():
    rng = np.random.default_rng(11)
    model = build_model(FORMULAS[1], COLUMNS)
    codes, x, y = _data(model, rng, groups=4, rows=40)
    w = np.column_stack([x, y])
    whole = GroupStats.from_rows(codes, w, 4)
    order = rng.permutation(len(codes))  # chunks hold rows of several groups, unsorted
    parts = reduce_chunks(((codes[order[i : i + 4]], w[order[i : i + 4]])
                           for i in range(0, len(codes), 4)), 4)  # fmt: skip
    for name, value in whole.as_dict().items():
        np.testing.assert_allclose(getattr(parts, name), value, rtol=1e-12, atol=1e-9)


def test_centred_moments_keep_precision_with_large_offsets():
    # Raw sums of squares at offset 1e9 would lose every digit of a variance of ~9.
    rng = np.random.default_rng(12)
    model = build_model(FORMULAS[0], COLUMNS)
    codes, x, y = _data(model, rng, groups=4, rows=19)
    w = np.column_stack([x, y])
    near = GroupStats.from_rows(codes, w, 4)
    shifted = w.copy()
    shifted[:, 1:] += 1e9  # x1 and y; the intercept column stays 1
    far = reduce_chunks([(codes[:9], shifted[:9]), (codes[9:], shifted[9:])], 4)
    np.testing.assert_allclose(far.cross, near.cross, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(far.mean[:, 1:] - 1e9, near.mean[:, 1:], atol=1e-6)


def test_ten_million_rows_reduce_without_loss():
    # Per-chunk centring keeps a 10-million-row reduction within float rounding of the exact value.
    rng = np.random.default_rng(3)
    n, step = 10_000_000, 1_000_000
    codes = rng.integers(0, 10, n)
    x = 2000.0 + rng.integers(0, 20, n)
    y = 1e6 + 0.5 * (x - 2000.0) + rng.standard_normal(n)
    chunks = (
        (codes[i : i + step], np.column_stack([np.ones(len(x[i : i + step])), x[i : i + step],
                                              y[i : i + step]]))
        for i in range(0, n, step)
    )  # fmt: skip
    stats = reduce_chunks(chunks, 10)
    j = codes == 0
    xs, ys = x[j] - 2000.0, y[j] - 1e6  # exact reference on shifted data
    assert stats.n[0] == j.sum()
    cross = stats.cross[0]
    np.testing.assert_allclose(cross[1, 1], ((xs - xs.mean()) ** 2).sum(), rtol=1e-9)
    np.testing.assert_allclose(cross[1, 2], ((xs - xs.mean()) * (ys - ys.mean())).sum(), rtol=1e-9)
    np.testing.assert_allclose(cross[2, 2], ((ys - ys.mean()) ** 2).sum(), rtol=1e-9)


def test_merge_with_an_empty_side_keeps_huge_values_finite():
    codes = np.array([0, 0, 1])
    w = np.array([[1.0, 1.0, 1e160], [1.0, 2.0, 2e160], [1.0, 3.0, 3.0]])
    stats = reduce_chunks([(codes, w)], 2)
    assert np.all(np.isfinite(stats.mean)) and np.all(np.isfinite(stats.cross[1]))


@pytest.mark.parametrize("formula", [FORMULAS[0], FORMULAS[1]])
def test_single_row_and_constant_predictor_groups(formula):
    # Group 0 has one row; in group 1 x1 is constant, so its Z'Z is singular on its own.
    model = build_model(formula, COLUMNS)
    codes = np.array([0, 1, 1, 1, 2, 2, 2])
    data = {
        "x1": np.array([5.0, 2.0, 2.0, 2.0, 1.0, 4.0, 7.0]),
        "x2": np.array([0.1, -1.0, 0.5, 2.0, 0.0, 1.0, -0.3]),
        "c": np.array(["a", "b", "c", "a", "b", "b", "c"]),
    }
    x = model.design(data)
    y = np.array([1.0, 3.0, 4.0, 2.0, 0.5, 6.0, 1.0])
    stats = _stats(model, codes, x, y, 3)
    params = _parameters(model, np.random.default_rng(13))
    want = [_dense(model, codes, x, y, params, d) for d in range(3)]
    np.testing.assert_allclose(gm.marginal_loglik(model, stats, **params), want, atol=1e-8)
    np.testing.assert_allclose(
        gm.designs_loglik(gm.designs(model, stats), **params), want, atol=1e-8
    )


def test_marginal_loglik_broadcasts_over_leading_draw_axes():
    rng = np.random.default_rng(14)
    model = build_model(FORMULAS[1], COLUMNS)
    codes, x, y = _data(model, rng, groups=5, rows=50)
    stats = _stats(model, codes, x, y, 5)
    flat = _parameters(model, rng, draws=6)
    shaped = {k: v.reshape((2, 3) + v.shape[1:]) for k, v in flat.items()}  # (chain, draw, ...)
    out = gm.marginal_loglik(model, stats, **shaped)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.ravel(), gm.marginal_loglik(model, stats, **flat), rtol=1e-12)
    single = {k: v[4] for k, v in flat.items()}  # one draw, no leading axis
    assert np.ndim(gm.marginal_loglik(model, stats, **single)) == 0
    assert float(gm.marginal_loglik(model, stats, **single)) == pytest.approx(out[1, 1])
    pooled = gm.designs(model, stats)
    np.testing.assert_allclose(gm.designs_loglik(pooled, **shaped), out, rtol=1e-10)


def test_parameters_are_keyword_only():
    # Positional mix-ups of beta, group_sd and sigma are impossible.
    rng = np.random.default_rng(15)
    model = build_model(FORMULAS[0], COLUMNS)
    codes, x, y = _data(model, rng, groups=3, rows=20)
    stats = _stats(model, codes, x, y, 3)
    p = _parameters(model, rng, draws=1)
    with pytest.raises(TypeError):
        gm.marginal_loglik(model, stats, p["beta"], p["group_sd"], p["sigma"])
    with pytest.raises(TypeError):
        gm.draw_coefficients(model, stats, p["beta"], p["group_sd"], p["sigma"], seed=1)


def _shared_x(model, rng, sizes, per=11):
    """Groups observed at the first n_j of one common set of predictor values."""
    x1, x2 = rng.normal(5, 2, per), rng.normal(size=per)
    c = rng.choice(["a", "b", "c"], per)
    codes = np.repeat(np.arange(len(sizes)), sizes)
    take = np.concatenate([np.arange(n) for n in sizes])
    x = model.design({"x1": x1[take], "x2": x2[take], "c": c[take]})
    y = rng.normal(0, 3, len(codes)) + np.repeat(rng.normal(size=len(sizes)), sizes)
    return codes, x, y


@pytest.mark.parametrize("formula", [FORMULAS[0], FORMULAS[1], FORMULAS[4]])
def test_a_balanced_panel_is_one_design_and_sizes_split_designs(formula):
    rng = np.random.default_rng(16)
    model = build_model(formula, COLUMNS)
    panel = _stats(model, *_shared_x(model, rng, [11] * 12), 12)
    assert gm.designs(model, panel).n_designs == 1
    sizes = [11, 9, 11, 7, 9, 11, 7, 7, 9, 11, 5, 11]  # shared values, four distinct sizes
    mixed = gm.designs(model, _stats(model, *_shared_x(model, rng, sizes), 12))
    assert mixed.n_designs == len(set(sizes)) and mixed.groups.sum() == 12
    # Designs in order of first appearance; each group's design has its size.
    assert list(mixed.n) == list(dict.fromkeys(sizes))
    np.testing.assert_array_equal(mixed.n[mixed.design], sizes)
    codes, x, y = _data(model, rng, groups=12, rows=132)  # distinct x: nothing to pool
    scattered = gm.designs(model, _stats(model, codes, x, y, 12))
    assert scattered.n_designs == 12 and not scattered.pooled


@pytest.mark.parametrize("offset", [0.0, 1e6], ids=["plain", "offset-1e6"])
@pytest.mark.parametrize("formula", [FORMULAS[0], FORMULAS[1]])
def test_design_sums_equal_the_per_group_sums(formula, offset):
    # The identities Designs promises, straight from the rows; with y offset by 1e6 the
    # per-group values are ~1e6 and their spread ~10, so cancellation would show.
    rng = np.random.default_rng(17)
    model = build_model(formula, COLUMNS)
    sizes = rng.choice([5, 8, 11], 40)
    codes, x, y = _shared_x(model, rng, sizes)
    y = y + offset
    stats = _stats(model, codes, x, y, 40)
    d = gm.designs(model, stats)
    z = model.group_term_index
    assert d.groups.sum() == 40 and d.n_designs == len(set(sizes))
    ybar = np.array([y[codes == j].mean() for j in range(40)])
    zty = np.array([x[codes == j][:, z].T @ y[codes == j] for j in range(40)])
    for k in range(d.n_designs):
        members = d.design == k
        rows = codes == np.flatnonzero(members)[0]
        np.testing.assert_allclose(d.n[k], rows.sum())
        np.testing.assert_allclose(d.xbar[k], x[rows].mean(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(d.ztx[k], x[rows][:, z].T @ x[rows], rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(d.ztz[k], d.ztx[k][:, z])
        np.testing.assert_allclose(d.ybar[k], ybar[members].mean(), rtol=1e-12)
        dev = ybar[members] - ybar[members].mean()
        np.testing.assert_allclose(d.ybar_ss[k], (dev**2).sum(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(d.a[k], zty[members].mean(0), rtol=1e-10)
        da = zty[members] - zty[members].mean(0)
        s = d.scatter[k]
        scale = max(np.abs(da.T @ da).max(), 1.0)
        np.testing.assert_allclose(s @ s.T, da.T @ da, rtol=1e-6, atol=1e-9 * scale)
    within = [(x[codes == j] - x[codes == j].mean(0), y[codes == j] - ybar[j]) for j in range(40)]
    assert d.syy == pytest.approx(sum((r @ r) for _, r in within), rel=1e-9)
    np.testing.assert_allclose(d.sxy, sum(c.T @ r for c, r in within), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(d.sxx, sum(c.T @ c for c, _ in within), rtol=1e-9, atol=1e-9)
