"""The PyMC backend: options, priors, the PyTensor likelihoods, error mapping, and real NUTS runs."""

from __future__ import annotations

import dataclasses
import math
from importlib.util import find_spec

import arviz as az
import numpy as np
import pytest

from framework.backends.plugins import get_registry
from framework.backends.posterior import check_posterior
from framework.backends.problem import Problem, SamplerSettings
from framework.data.dataset import Dataset
from framework.errors import BackendError, CompileError, OptionsError, SamplingError
from framework.model import gaussian_marginal as gm
from framework.model.model import build_model
from framework.model.priors import FAMILIES, Prior
from framework.model.statistics import GroupStats
from framework.model.terms import Column
from framework_pymc import PyMCBackend, full, marginal, parameters
from framework_pymc.options import validate_options
from framework_pymc.priors import PYMC_FAMILIES, pymc_dist

SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300, seed=20240611, target_accept=0.8)
COLUMNS = {
    "y": Column("y", "numeric"),
    "x": Column("x", "numeric"),
    "x2": Column("x2", "numeric"),
    "trt": Column("trt", "categorical", ("a", "b", "c")),
    "g": Column("g", "categorical"),
}


def _eval(expr):
    """Evaluate a PyTensor expression without compiling C (fast for one-off checks)."""
    import pytensor

    return np.asarray(pytensor.function([], expr, mode="FAST_COMPILE")())


def simulate(formula, n_groups, rows, seed, *, panel=False, offset=0.0, truth=None):
    """(Model, Dataset, truth) drawn from the model; labels are neither sorted nor in code order."""
    model = build_model(formula, COLUMNS)
    rng = np.random.default_rng(seed)
    p, q, z = model.n_terms, model.n_group_terms, model.group_term_index
    truth = truth or {}
    beta = np.asarray(truth.get("beta", rng.normal(0, 2, p)), dtype=float)
    beta[0] += offset
    sd = np.asarray(truth.get("group_sd", rng.uniform(0.5, 2.0, q)), dtype=float)
    corr = np.asarray(truth.get("group_corr", np.eye(q)), dtype=float)
    codes = np.repeat(np.arange(n_groups), rows)
    rng.shuffle(codes)  # rows of different groups interleaved
    n = len(codes)
    if panel:  # every group observed at the same predictor values: one design
        order = np.argsort(codes, kind="stable")
        data = {
            "x": np.empty(n),
            "x2": np.empty(n),
            "trt": np.empty(n, dtype=object),
        }
        data["x"][order] = np.tile(np.linspace(0, 10, rows), n_groups)
        data["x2"][order] = np.tile(np.cos(np.arange(rows)), n_groups)
        data["trt"][order] = np.tile(np.array(["a", "b", "c"])[np.arange(rows) % 3], n_groups)
    else:
        data = {
            "x": rng.uniform(0, 10, n),
            "x2": rng.normal(size=n),
            "trt": rng.choice(["a", "b", "c"], n),
        }
    X = model.design(data)
    chol = np.diag(sd) @ np.linalg.cholesky(corr)
    coef = beta[z] + rng.normal(size=(n_groups, q)) @ chol.T
    eta = X @ beta + (X[:, z] * (coef - beta[z])[codes]).sum(1)
    y = eta + rng.normal(0, truth.get("sigma", 1.5), n)
    labels = [f"g{(7 * j) % n_groups:03d}x" for j in range(n_groups)]
    stats = GroupStats.from_rows(codes, np.column_stack([X, y]), n_groups)
    dataset = Dataset(labels, stats=stats, y=y, X=X, codes=codes)
    return model, dataset, {"beta": beta, "group_sd": sd, "group_corr": corr, "coef": coef}


def random_point(model, rng, offset=0.0):
    q = model.n_group_terms
    beta = rng.normal(0, 2, model.n_terms)
    beta[0] += offset
    a = rng.normal(size=(q, q + 2))
    cov = a @ a.T
    d = np.sqrt(np.diag(cov))
    corr = cov / d[:, None] / d[None, :] if model.correlated else None
    return {
        "beta": beta,
        "group_sd": rng.uniform(0.3, 3, q),
        "sigma": rng.uniform(0.5, 3),
        "group_corr": corr,
    }


# --- registration and options -------------------------------------------------------------


def test_registered_through_the_entry_point():
    backend = get_registry(refresh=True).get("pymc")
    assert isinstance(backend.backend, PyMCBackend)  # the registry guards every plugin call
    assert backend.methods == ("marginal", "full")
    assert backend.available()


def test_options_defaults():
    options = validate_options({})
    nutpie = find_spec("nutpie") is not None and find_spec("numba") is not None
    assert options == {
        "sampler": "nutpie" if nutpie else "pymc",
        "progressbar": False,
        "cores": options["cores"],
    }
    assert options["cores"] >= 1
    assert validate_options(None) == options


def test_every_bad_option_is_listed():
    with pytest.raises(OptionsError) as info:
        validate_options({"sampler": "nutpy", "progressbar": "yes", "cores": 0, "samplr": 1})
    problems = info.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("backend.options.samplr: unknown option for backend 'pymc'")
    assert "did you mean 'nutpie'?" in problems[1]
    assert problems[2].startswith("backend.options.progressbar: expected true or false")
    assert problems[3].startswith("backend.options.cores: expected a whole number >= 1")


@pytest.mark.parametrize(
    "sampler,module", [("pymc", "pymc"), ("nutpie", "nutpie"), ("numpyro", "numpyro")]
)
def test_installed_samplers_are_accepted(sampler, module):
    if find_spec(module) is None:
        pytest.skip(f"{module} is not installed here")
    assert validate_options({"sampler": sampler, "cores": 1})["sampler"] == sampler


# --- priors -------------------------------------------------------------------------------

# Arguments chosen so that rate and scale, or location and scale, cannot be swapped unnoticed.
PRIOR_CASES = {
    "normal": ((1.5, 2.0), [-3.1, 0.2, 4.7]),
    "student_t": ((4.0, -1.0, 3.0), [-3.1, 0.2, 4.7]),
    "cauchy": ((0.5, 2.0), [-3.1, 0.2, 4.7]),
    "uniform": ((-2.0, 5.0), [-1.5, 0.0, 4.2]),
    "half_normal": ((3.0,), [0.15, 1.3, 6.2]),
    "half_cauchy": ((2.0,), [0.15, 1.3, 6.2]),
    "half_student_t": ((3.0, 2.5), [0.15, 1.3, 6.2]),
    "exponential": ((0.7,), [0.15, 1.3, 6.2]),
    "gamma": ((2.5, 0.5), [0.15, 1.3, 6.2]),
    "inv_gamma": ((3.0, 2.0), [0.15, 1.3, 6.2]),
    "lognormal": ((0.3, 0.8), [0.15, 1.3, 6.2]),
}


def test_every_family_has_a_pymc_mapping_and_a_case():
    assert set(PYMC_FAMILIES) == set(FAMILIES) == set(PRIOR_CASES)


@pytest.mark.parametrize("family", sorted(PRIOR_CASES))
def test_prior_logp_matches_scipy(family):
    import pymc as pm

    args, points = PRIOR_CASES[family]
    prior = Prior(family, args)
    values = np.asarray(points)
    got = _eval(pm.logp(pymc_dist(prior), values))
    expected = prior.logpdf(values)
    if family == "half_student_t":
        # Prior.logpdf is the full t's; the half has twice its density on x > 0.
        expected = expected + math.log(2)
    # A swapped or misread argument moves these log densities by 0.1 or more; 1e-7 leaves room
    # only for the libraries' different ways of computing constants (PyMC's Cauchy: 2e-9).
    np.testing.assert_allclose(got, expected, rtol=1e-7)


def test_each_term_keeps_its_own_prior():
    import pymc as pm

    priors = {
        "beta": {
            "Intercept": Prior("normal", (5.0, 30.0)),
            "x": Prior("student_t", (3.0, 0.0, 2.0)),
        },
        "group_sd": {"Intercept": Prior("half_normal", (7.0,)), "x": Prior("gamma", (2.0, 0.5))},
        "sigma": Prior("exponential", (0.3,)),
    }
    model = build_model("y ~ x + trt + (x | g)", COLUMNS, priors=priors)
    with pm.Model() as pm_model:
        params = parameters.declare(model)
    point = {
        "beta": np.array([1.0, -0.5, 2.0, 0.3]),
        "group_sd": np.array([1.7, 0.4]),
        "sigma": 2.2,
    }
    expected = 0.0
    for variable, selection in model.hyperparameters():
        if variable == "group_corr":
            continue
        value = point[variable]
        if selection:
            names = model.term_names if variable == "beta" else model.group_term_names
            value = value[names.index(next(iter(selection.values())))]
        expected += model.priors[model.label(variable, selection)].logpdf(value)
    # Evaluate each sampler variable's log density at the point's values, mapped by its parts.
    got = 0.0
    for name, parts in params.parts.items():
        for var, index in parts:
            value = np.asarray(point[name]) if index is None else point[name][index]
            got += float(_eval(pm.logp(pm_model[var], value).sum()))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # Same-family priors share one variable: beta has two families, so two variables.
    assert len(params.parts["beta"]) == 2 and len(params.parts["group_sd"]) == 2


def test_unexpressible_prior_is_refused_before_anything_is_built():
    model, dataset, _ = simulate("y ~ x + (x | g)", 4, 4, seed=1)
    model = dataclasses.replace(
        model, priors={**model.priors, "group_sd[x]": Prior("weibull", (1.0, 2.0))}
    )
    with pytest.raises(
        BackendError, match=r"model.priors.group_sd\[x\]: family 'weibull' has no PyMC"
    ):
        PyMCBackend().fit(Problem(model, dataset), SETTINGS, {})


# --- the PyTensor likelihoods -------------------------------------------------------------------

CASES = {
    "q1": "y ~ x + (1 | g)",
    "q2-correlated": "y ~ x + (x | g)",
    "q2-independent": "y ~ x + (x || g)",
    "q3-categorical": "y ~ x + x2 + trt + (trt | g)",
}


@pytest.mark.parametrize("panel", [False, True], ids=["distinct-designs", "pooled-panel"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_pytensor_marginal_loglik_matches_the_numpy_reference(case, panel):
    import pytensor.tensor as pt

    # An offset of 1e6 in y (and the intercept) tests that the pooled formula keeps precision.
    model, dataset, _ = simulate(CASES[case], 9, 6, seed=2, panel=panel, offset=1e6)
    d = gm.designs(model, dataset.stats)
    assert d.pooled == panel and (d.n_designs == 1) == panel
    rng = np.random.default_rng(3)
    q = model.n_group_terms
    for _ in range(3):
        point = random_point(model, rng, offset=1e6)
        chol = None
        if model.correlated:
            low = np.linalg.cholesky(point["group_corr"])
            chol = [[pt.constant(low[i, j]) for j in range(q)] for i in range(q)]
        got = _eval(
            marginal.designs_loglik(
                d,
                pt.constant(point["beta"]),
                pt.constant(point["group_sd"]),
                pt.constant(point["sigma"]),
                chol,
            )
        )
        expected = gm.marginal_loglik(model, dataset.stats, **point)
        # The log-likelihood is about -100; with y near 1e6 the terms it sums are near 1e12/sigma^2
        # and cancel, so float64 leaves ~1e-4 relative to those terms' size in the worst case; the
        # NumPy reference and this formula agree to 1e-9 relative here (a wrong term: > 1e-3).
        np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_lkj_density_of_the_free_values_is_pymc_lkjcorr_times_the_jacobian():
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    q, eta = 3, 2.5
    free = pt.vector("free")
    low, log_density = parameters.lkj_cholesky([free[k] for k in range(3)], q, eta, pt)
    corr = [
        [sum(low[i][k] * low[j][k] for k in range(min(i, j) + 1)) for j in range(q)]
        for i in range(q)
    ]
    upper = pt.stack(
        [corr[0][1], corr[0][2], corr[1][2]]
    )  # pm.LKJCorr's order: upper triangle by row
    log_jac = pt.log(pt.abs(pt.nlinalg.det(pytensor.gradient.jacobian(upper, free))))
    reference = pm.logp(pm.LKJCorr.dist(n=q, eta=eta), upper) + log_jac
    f = pytensor.function([free], [log_density - reference, upper], mode="FAST_COMPILE")
    rng = np.random.default_rng(4)
    offsets = []
    for _ in range(5):
        y = rng.normal(0, 1.2, 3)
        diff, values = f(y)
        offsets.append(float(diff))
        np.testing.assert_allclose(
            values, parameters.corr_from_free(y, q)[np.triu_indices(q, 1)], rtol=1e-12
        )
    # Equal up to LKJ's normalising constant, which NUTS never needs.
    np.testing.assert_allclose(offsets, offsets[0], atol=1e-9)


def test_non_centred_coefficients_are_beta_plus_scaled_units():
    rng = np.random.default_rng(5)
    out = {
        "beta": rng.normal(size=(2, 3, 4)),
        "group_sd": rng.uniform(1, 2, (2, 3, 2)),
        "group_corr": np.broadcast_to(np.array([[1, 0.5], [0.5, 1]]), (2, 3, 2, 2)),
    }
    unit = rng.normal(size=(2, 3, 5, 2))
    got = full.coefficients(out, unit, [0, 2])
    c, d, j = 1, 2, 3
    chol = np.diag(out["group_sd"][c, d]) @ np.linalg.cholesky(out["group_corr"][c, d])
    np.testing.assert_allclose(got[c, d, j], out["beta"][c, d, [0, 2]] + chol @ unit[c, d, j])


@pytest.mark.parametrize("parameterisation", ["centred", "non_centred"])
@pytest.mark.parametrize("formula", ["y ~ x + x2 + trt + (x + trt | g)", "y ~ x + x2 + (x || g)"])
def test_full_model_likelihood_matches_numpy(formula, parameterisation):
    import pymc as pm
    from scipy import stats

    model, dataset, _ = simulate(formula, 5, 6, seed=3)
    pm_model, _ = full.build_model(Problem(model, dataset, "full", parameterisation))
    rng = np.random.default_rng(6)
    p, q, n_groups, z = model.n_terms, model.n_group_terms, dataset.n_groups, model.group_term_index
    beta, sd, sigma = rng.normal(size=p), rng.uniform(0.5, 2, q), 1.3
    free = rng.normal(size=q * (q - 1) // 2)
    corr = parameters.corr_from_free(free, q) if model.correlated else np.eye(q)
    unit = rng.normal(size=(n_groups, q))
    draws = {"beta": beta[None, None], "group_sd": sd[None, None], "group_corr": corr[None, None]}
    coef = full.coefficients(draws, unit[None, None], z)[0, 0]
    fixed = {"beta": beta, "group_sd": sd, "sigma": np.array([sigma])}
    fixed[full.COEF_FREE[parameterisation]] = coef if parameterisation == "centred" else unit
    if model.correlated:
        fixed[parameters.FREE_CORR] = free
    done = pm.do(pm_model, {pm_model[k]: v for k, v in fixed.items()})
    loglik = done.compile_logp(vars=[done["y"]], jacobian=False, mode="FAST_COMPILE")({})
    eta = dataset.X @ beta + (dataset.X[:, z] * (coef - beta[z])[dataset.codes]).sum(1)
    np.testing.assert_allclose(loglik, stats.norm.logpdf(dataset.y, eta, sigma).sum(), rtol=1e-12)
    if model.correlated and parameterisation == "centred":
        # The hand-written multivariate normal equals scipy's up to its 2 pi constant.
        got = _eval(done["coef__mvnormal"])
        cov = np.diag(sd) @ corr @ np.diag(sd)
        expected = stats.multivariate_normal(beta[z], cov).logpdf(coef).sum()
        np.testing.assert_allclose(got - n_groups * q / 2 * np.log(2 * np.pi), expected, rtol=1e-10)


# --- error mapping (library failures simulated) ----------------------------------------------


def _tiny_problem(method="marginal"):
    model, dataset, _ = simulate("y ~ x + (x | g)", 4, 4, seed=5)
    return Problem(model, dataset, method=method)


def test_nutpie_compile_failure_is_a_compile_error(monkeypatch):
    import nutpie

    def broken(*args, **kwargs):
        raise RuntimeError("numba lowering failed\nlong details")

    monkeypatch.setattr(nutpie, "compile_pymc_model", broken)
    with pytest.raises(
        CompileError, match=r"nutpie could not compile the model \(numba lowering failed\); use"
    ):
        PyMCBackend().fit(_tiny_problem(), SETTINGS, {"sampler": "nutpie"})


def test_sampler_failure_is_a_sampling_error_with_a_next_step(monkeypatch):
    import pymc as pm

    def broken(*args, **kwargs):
        raise pm.exceptions.SamplingError("Initial evaluation of model at starting point failed!")

    monkeypatch.setattr(pm, "sample", broken)
    with pytest.raises(
        SamplingError, match=r"pymc failed while sampling \(Initial evaluation .*\); try a higher"
    ):
        PyMCBackend().fit(_tiny_problem(), SETTINGS, {"sampler": "pymc"})


def test_a_partial_trace_means_the_run_was_interrupted(monkeypatch):
    import pymc as pm

    def interrupted(*args, **kwargs):
        # What PyMC returns after swallowing Ctrl-C: fewer draws than asked for.
        return az.from_dict(
            posterior={"sigma": np.zeros((2, 17))},
            sample_stats={"diverging": np.zeros((2, 17), bool)},
        )

    monkeypatch.setattr(pm, "sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        PyMCBackend().fit(_tiny_problem(), SETTINGS, {"sampler": "pymc"})


def test_c_compile_failure_is_a_compile_error(monkeypatch):
    import pymc as pm
    from pytensor.link.c.exceptions import CompileError as CCompileError

    def broken(*args, **kwargs):
        raise CCompileError("g++: fatal error: no input files")

    monkeypatch.setattr(pm, "sample", broken)
    with pytest.raises(
        CompileError, match=r"C compiler \(g\+\+: fatal error.*'pytensor-cache clear'"
    ):
        PyMCBackend().fit(_tiny_problem(), SETTINGS, {"sampler": "pymc"})


def test_ctrl_c_during_nutpie_cancels_the_sampler(monkeypatch):
    import nutpie

    cancelled = []

    class Background:
        def wait(self):
            raise KeyboardInterrupt

        def cancel(self):
            cancelled.append(True)

    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda *a, **k: object())
    monkeypatch.setattr(nutpie, "sample", lambda *a, **k: Background())
    with pytest.raises(KeyboardInterrupt):
        PyMCBackend().fit(_tiny_problem(), SETTINGS, {"sampler": "nutpie"})
    assert cancelled == [True]


# --- real sampling ----------------------------------------------------------------------

# 30 groups of 12 rows, correlated intercept and slope (r = 0.6), rows interleaved and labels
# neither sorted nor in code order: a backend that mixes up groups fails the coverage checks.
TRUTH = {
    "beta": [20.0, 1.0],
    "group_sd": [3.0, 0.5],
    "group_corr": [[1, 0.6], [0.6, 1]],
    "sigma": 2.0,
}
MODEL, DATASET, TRUE = simulate("y ~ x + (x | g)", 30, 12, seed=11, truth=TRUTH)


def _fit(method, parameterisation="centred", sampler="nutpie", seed=SETTINGS.seed, messages=None):
    problem = Problem(
        MODEL,
        DATASET,
        method=method,
        parameterisation=parameterisation,
        progress=None if messages is None else messages.append,
    )
    settings = dataclasses.replace(SETTINGS, seed=seed)
    idata = PyMCBackend().fit(problem, settings, {"sampler": sampler})
    check_posterior(idata, MODEL, DATASET, "pymc")
    return idata


@pytest.fixture(scope="module")
def marginal_fit():
    return _fit("marginal")


@pytest.fixture(scope="module")
def full_fit():
    return _fit("full", "non_centred")


@pytest.fixture(scope="module")
def full_centred_fit():
    return _fit("full", "centred")


@pytest.mark.slow
@pytest.mark.parametrize("which", ["marginal_fit", "full_fit"])
def test_recovers_the_truth(which, request):
    post = request.getfixturevalue(which).posterior
    # A calibrated posterior puts each true value inside its central 99% interval with
    # probability 0.99; data and seeds are fixed, so this is deterministic here.
    checks = [("beta", i) for i in range(2)] + [("group_sd", i) for i in range(2)]
    for name, i in checks:
        low, high = np.quantile(post[name].values[..., i], [0.005, 0.995])
        assert low < TRUE[name][i] < high, (which, name, i, low, high)
    low, high = np.quantile(post["group_corr"].values[..., 0, 1], [0.005, 0.995])
    assert low < 0.6 < high and np.all(post["group_corr"].values[..., 0, 0] == 1)
    # Per group, the true coefficient lies in its 90% interval with probability 0.9: of 30
    # about 27 are covered (binomial sd 1.6); fewer than 22 (3 sd below) means a real fault,
    # such as coefficients attached to the wrong group.
    for k in range(2):
        low, high = np.quantile(post["coef"].values[..., k], [0.05, 0.95], axis=(0, 1))
        truth = TRUE["coef"][:, k]
        assert int(np.sum((low < truth) & (truth < high))) >= 22, (which, k)
        assert np.corrcoef(post["coef"].mean(("chain", "draw")).values[:, k], truth)[0, 1] > 0.7


@pytest.mark.slow
@pytest.mark.parametrize("which", ["full_fit", "full_centred_fit"])
def test_marginal_and_full_agree(marginal_fit, which, request):
    # Both estimate the same posterior mean, so the difference over its Monte Carlo standard
    # error is about N(0, 1) for each of the 7 + 60 quantities; |z| > 4.5 has probability 7e-6
    # each (5e-4 for all), and the margin over 4 absorbs the error in the MCSE itself,
    # estimated from 600 draws. Centred and non-centred are different programs: both checked.
    other = request.getfixturevalue(which)
    mcse_m = az.mcse(marginal_fit.posterior, method="mean")
    mcse_f = az.mcse(other.posterior, method="mean")
    for name in ("beta", "group_sd", "sigma", "coef", "group_corr"):
        mean_m = marginal_fit.posterior[name].mean(("chain", "draw")).values
        mean_f = other.posterior[name].mean(("chain", "draw")).values
        se = np.sqrt(mcse_m[name].values ** 2 + mcse_f[name].values ** 2)
        if name == "group_corr":  # the diagonal is exactly 1 in both: no error to compare
            mean_m, mean_f, se = mean_m[0, 1], mean_f[0, 1], se[0, 1]
        assert np.all(np.abs(mean_m - mean_f) / se < 4.5), (
            name,
            np.max(np.abs(mean_m - mean_f) / se),
        )


@pytest.mark.slow
def test_attrs_order_and_sample_stats(marginal_fit, full_fit):
    for idata, method in ((marginal_fit, "marginal"), (full_fit, "full")):
        post = idata.posterior
        assert list(post.group.values) == DATASET.labels != sorted(DATASET.labels)
        assert list(post.term.values) == MODEL.term_names
        attrs = post.attrs
        assert attrs["backend"] == "pymc" and attrs["engine"] == "nutpie"
        assert attrs["method"] == method and attrs["seed"] == SETTINGS.seed
        assert attrs["formula"] == MODEL.formula and attrs["family"] == "gaussian"
        assert attrs["sampling_seconds"] > 0 and attrs["compile_seconds"] > 0
        assert "pymc=5." in attrs["library_versions"]
        stats = idata.sample_stats
        assert stats.diverging.dtype == bool
        assert {"tree_depth", "n_steps", "step_size", "energy", "acceptance_rate"} <= set(stats)
        # The sampler's own variables never reach the common format.
        assert set(post.data_vars) == set(MODEL.variables())


@pytest.mark.slow
def test_same_seed_same_draws(marginal_fit):
    again = _fit("marginal")
    for name in MODEL.variables():
        np.testing.assert_array_equal(
            again.posterior[name].values, marginal_fit.posterior[name].values
        )


@pytest.mark.slow
def test_pymc_sampler_agrees_quietly(marginal_fit, capfd):
    messages: list[str] = []
    idata = _fit("marginal", sampler="pymc", seed=7, messages=messages)
    out, err = capfd.readouterr()
    assert out == "" and err == "", "the backend should print nothing by default"
    assert any("sampling the marginal model with pymc" in m for m in messages)
    assert idata.posterior.attrs["engine"] == "pymc"
    # Same posterior as nutpie's: tolerance as in test_marginal_and_full_agree.
    mcse_a = az.mcse(idata.posterior, method="mean")
    mcse_b = az.mcse(marginal_fit.posterior, method="mean")
    for name in ("beta", "group_sd", "sigma"):
        diff = (
            idata.posterior[name].mean(("chain", "draw"))
            - marginal_fit.posterior[name].mean(("chain", "draw"))
        ).values
        assert np.all(np.abs(diff) < 4.5 * np.hypot(mcse_a[name].values, mcse_b[name].values)), name


# --- the compiled-model cache's key ---------------------------------------------------------


def test_compiled_model_key_names_everything_compiled():
    """Equal for the same spec rebuilt; different for other data, priors, method or variables."""
    from pathlib import Path

    from framework.runner import prepare
    from framework.spec.load import load_spec
    from framework_pymc import model_cache

    rainfall = Path(__file__).resolve().parents[1] / "specs" / "rainfall.yaml"

    def key(*overrides, extra=()):
        spec = load_spec(rainfall, ["sampler.method=marginal", *overrides])
        problem = prepare(spec).problem
        module = full if problem.method == "full" else marginal
        pm_model, params = module.build_model(problem)
        return model_cache.model_key(pm_model, [*params.var_names, *extra])

    first = key()
    assert first is not None and first == key()  # a model built again: the same entry
    others = [
        key("data.simulate.seed=7"),  # other data
        key("model.priors.error_sigma=uniform(0, 50)"),  # another prior's parameter
        key("model.priors.slope_mu=normal(0, 10)"),
        key("sampler.method=full"),  # another likelihood
        key(extra=["marginal_loglik"]),  # other variables kept
    ]
    assert len({first, *others}) == 1 + len(others)


def test_compiled_model_cache_entries_that_do_not_load_or_pickle_are_skipped(tmp_path):
    import threading

    from framework_pymc import model_cache

    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"\x80\x05 truncated by a full disk")
    assert model_cache._load(broken) is None  # compiled again, not a failed run
    model_cache._save(tmp_path / "generator.pkl", (x for x in ()))  # does not pickle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pkl"]  # no scratch file left
    model_cache._save(tmp_path / "lock.pkl", ("kept", threading.Lock()))  # nutpie holds a lock
    kept, lock = model_cache._load(tmp_path / "lock.pkl")
    assert kept == "kept" and lock.acquire(blocking=False)
