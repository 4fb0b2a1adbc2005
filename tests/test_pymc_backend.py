"""The Bambi/PyMC backend: options, prior mapping, model wiring, and real NUTS runs on small problems."""

from __future__ import annotations

import math
from importlib.util import find_spec

import arviz as az
import numpy as np
import pytest
import xarray as xr

from framework import (
    DEFAULT_PRIORS,
    FAMILIES,
    HYPERPARAMETERS,
    BackendError,
    CompileError,
    OptionsError,
    Prior,
    Problem,
    SamplerSettings,
    SamplingError,
    check_posterior,
    get_registry,
    marginal_loglik,
)
from framework.testing.synthetic import simulated_dataset
from framework_pymc import PyMCBackend, engine, full, marginal
from framework_pymc.options import validate_options
from framework_pymc.priors import PYMC_FAMILIES, pymc_dist

SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300, seed=20240611, target_accept=0.8)


def _eval(expr):
    """Evaluate a PyTensor expression without compiling C (fast for one-off checks)."""
    import pytensor

    return np.asarray(pytensor.function([], expr, mode="FAST_COMPILE")())


# --- registration and options -------------------------------------------------------------


def test_registered_through_the_entry_point():
    backend = get_registry(refresh=True).get("pymc")
    assert isinstance(backend, PyMCBackend)
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


def test_unknown_option_gets_a_did_you_mean():
    with pytest.raises(OptionsError) as info:
        validate_options({"samplr": "pymc"})
    (problem,) = info.value.problems
    assert problem.startswith("backend.options.samplr: unknown option for backend 'pymc'")
    assert "did you mean 'sampler'?" in problem


def test_every_bad_option_is_listed():
    with pytest.raises(OptionsError) as info:
        validate_options({"sampler": "nutpy", "progressbar": "yes", "cores": 0})
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(
        "backend.options.sampler: expected one of pymc, nutpie, numpyro, blackjax"
    )
    assert "did you mean 'nutpie'?" in problems[0]
    assert problems[1].startswith("backend.options.progressbar: expected true or false")
    assert problems[2].startswith("backend.options.cores: expected a whole number >= 1")
    with pytest.raises(OptionsError, match="cores"):
        validate_options({"cores": True})
    with pytest.raises(OptionsError, match="expected a mapping"):
        validate_options(["sampler"])


@pytest.mark.skipif(find_spec("blackjax") is not None, reason="blackjax is installed here")
def test_missing_sampler_is_refused_at_validation_with_the_install_command():
    with pytest.raises(OptionsError) as info:
        validate_options({"sampler": "blackjax"})
    (problem,) = info.value.problems
    assert problem.startswith("backend.options.sampler: 'blackjax' cannot run here")
    assert "pip install blackjax" in problem


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


def test_unexpressible_prior_is_refused_before_anything_is_built():
    dataset = simulated_dataset(n_groups=4, rows_per_group=4, seed=1)
    priors = {**DEFAULT_PRIORS, "slope_sigma": Prior("weibull", (1.0, 2.0))}
    problem = Problem(dataset, priors, method="marginal")
    with pytest.raises(
        BackendError, match=r"priors.slope_sigma: family 'weibull' has no PyMC equivalent"
    ):
        PyMCBackend().fit(problem, SETTINGS, {})


# --- model wiring (no sampling) -------------------------------------------------------------


@pytest.mark.parametrize("shared_x", [False, True], ids=["distinct-designs", "panel"])
def test_pytensor_marginal_loglik_matches_the_numpy_reference(shared_x):
    import pytensor.tensor as pt

    dataset = simulated_dataset(n_groups=9, rows_per_group=6, seed=2, shared_x=shared_x)
    rng = np.random.default_rng(3)
    for _ in range(4):
        point = {
            "intercept_mu": rng.normal(20, 5),
            "slope_mu": rng.normal(-1, 1),
            "intercept_sigma": rng.uniform(0.5, 8),
            "slope_sigma": rng.uniform(0.1, 3),
            "error_sigma": rng.uniform(0.5, 5),
        }
        symbolic = {k: pt.constant(v) for k, v in point.items()}
        got = _eval(marginal.marginal_loglik(dataset.stats, **symbolic))
        np.testing.assert_allclose(got, marginal_loglik(dataset.stats, **point), rtol=1e-12)


CUSTOM_PRIORS = {
    "intercept_mu": Prior("normal", (5.0, 30.0)),
    "slope_mu": Prior("student_t", (3.0, 0.0, 2.0)),
    "intercept_sigma": Prior("half_normal", (7.0,)),
    "slope_sigma": Prior("gamma", (2.0, 0.5)),
    "error_sigma": Prior("exponential", (0.3,)),
}


@pytest.mark.parametrize("parameterisation", ["centred", "non_centred"])
def test_bambi_model_has_the_users_priors_unscaled(parameterisation):
    import pymc as pm

    dataset = simulated_dataset(n_groups=5, rows_per_group=5, seed=4)
    problem = Problem(dataset, CUSTOM_PRIORS, method="full", parameterisation=parameterisation)
    model = full.build_model(problem).backend.model
    names = set(model.named_vars)
    form = full.form(parameterisation)
    assert set(form.var_names) <= names
    assert ("1|g_offset" in names) == (parameterisation == "non_centred")
    # Centred means each group's intercept is a random variable of its own, N(mu, sigma).
    assert (model["1|g"] in model.free_RVs) == (parameterisation == "centred")
    # The data went in under the fixed safe names only.
    assert set(full.frame(dataset).columns) == {"y", "x", "g"}
    for name, var in form.hyper.items():
        value = 1.7
        got = _eval(pm.logp(model[var], np.asarray(value)))
        np.testing.assert_allclose(got, CUSTOM_PRIORS[name].logpdf(value), rtol=1e-10)


def test_group_levels_are_mapped_back_by_name():
    # Bambi may sort levels as text: g0, g1, g10, g11, g2, ...; values encode their code.
    n = 12
    sorted_levels = sorted(full.level_names(n))
    codes = np.array([int(name[1:]) for name in sorted_levels], dtype=float)
    values = np.broadcast_to(codes, (2, 3, n))
    variable = xr.DataArray(
        values, dims=("chain", "draw", "g__factor_dim"), coords={"g__factor_dim": sorted_levels}
    )
    out = full._in_dataset_order(variable, n)
    np.testing.assert_array_equal(out[1, 2], np.arange(n))
    with pytest.raises(SamplingError, match="group levels"):
        full._in_dataset_order(variable, n + 1)


# --- error mapping (library failures simulated) ----------------------------------------------


def _tiny_problem(method="marginal"):
    return Problem(
        simulated_dataset(n_groups=4, rows_per_group=4, seed=5), dict(DEFAULT_PRIORS), method=method
    )


def test_nutpie_compile_failure_is_a_compile_error(monkeypatch):
    import nutpie

    def broken(*args, **kwargs):
        raise RuntimeError("numba lowering failed\nlong details")

    monkeypatch.setattr(nutpie, "compile_pymc_model", broken)
    with pytest.raises(
        CompileError,
        match=r"backend 'pymc': nutpie could not compile the model \(numba lowering failed\); use backend.options.sampler: pymc",
    ):
        PyMCBackend().fit(_tiny_problem(), SETTINGS, {"sampler": "nutpie"})


def test_sampler_failure_is_a_sampling_error_with_a_next_step(monkeypatch):
    import pymc as pm

    def broken(*args, **kwargs):
        raise pm.exceptions.SamplingError("Initial evaluation of model at starting point failed!")

    monkeypatch.setattr(pm, "sample", broken)
    with pytest.raises(
        SamplingError,
        match=r"pymc failed while sampling \(Initial evaluation .*\); try a higher sampler.target_accept",
    ):
        PyMCBackend().fit(_tiny_problem(), SETTINGS, {"sampler": "pymc"})


def test_a_partial_trace_means_the_run_was_interrupted(monkeypatch):
    import pymc as pm

    def interrupted(*args, **kwargs):
        # What PyMC returns after swallowing Ctrl-C: fewer draws than asked for.
        draws = {name: np.zeros((2, 17)) for name in HYPERPARAMETERS}
        return az.from_dict(posterior=draws, sample_stats={"diverging": np.zeros((2, 17), bool)})

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


def test_non_finite_draws_are_refused():
    with pytest.raises(SamplingError, match="non-finite draws for slope_sigma"):
        engine.check_finite(
            {"slope_mu": np.zeros(3), "slope_sigma": np.array([1.0, np.nan, 2.0])}, "nutpie"
        )


# --- real sampling ----------------------------------------------------------------------

# 24 groups of about 16 rows (sizes 8..24, rows interleaved), labels neither sorted nor in
# generation order: a backend that sorts labels or mixes up groups fails the coverage checks.
DATASET = simulated_dataset(n_groups=24, rows_per_group=16, seed=11)


def _fit(
    method, sampler="nutpie", seed=SETTINGS.seed, parameterisation="non_centred", messages=None
):
    problem = Problem(
        DATASET,
        dict(DEFAULT_PRIORS),
        method=method,
        parameterisation=parameterisation,
        progress=None if messages is None else messages.append,
    )
    settings = SamplerSettings(
        SETTINGS.chains, SETTINGS.warmup, SETTINGS.draws, seed, SETTINGS.target_accept
    )
    idata = PyMCBackend().fit(problem, settings, {"sampler": sampler})
    check_posterior(idata, DATASET, "pymc")
    return idata


@pytest.fixture(scope="module")
def marginal_fit():
    return _fit("marginal")


@pytest.fixture(scope="module")
def full_fit():
    return _fit("full")


@pytest.fixture(scope="module")
def full_centred_fit():
    return _fit("full", parameterisation="centred")


@pytest.mark.slow
@pytest.mark.parametrize("which", ["marginal_fit", "full_fit"])
def test_recovers_the_truth(which, request):
    idata = request.getfixturevalue(which)
    post = idata.posterior
    truth = DATASET.truth
    # A calibrated posterior puts each true hyperparameter inside its central 99% interval
    # with probability 0.99; data and seeds are fixed, so this is deterministic here.
    for name in HYPERPARAMETERS:
        low, high = np.quantile(post[name].values, [0.005, 0.995])
        assert low < truth[name] < high, (which, name, low, truth[name], high)
    # Per group, the true effect lies in its 90% interval with probability 0.9: of 24 groups
    # about 21.6 are covered (binomial sd 1.5); fewer than 17 (3 sd below) means a real
    # fault, such as effects attached to the wrong group.
    for name in ("intercept", "slope"):
        low, high = np.quantile(post[name].values, [0.05, 0.95], axis=(0, 1))
        covered = int(np.sum((low < truth[name]) & (truth[name] < high)))
        assert covered >= 17, (which, name, covered)
        # With the wrong label order the means would be uncorrelated with the truth.
        means = post[name].mean(("chain", "draw")).values
        assert np.corrcoef(means, truth[name])[0, 1] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("which", ["full_fit", "full_centred_fit"])
def test_marginal_and_full_agree(marginal_fit, which, request):
    # Both estimate the same posterior mean, so the difference over its Monte Carlo
    # standard error is about N(0, 1) for each of the 5 + 48 quantities; |z| > 4.5 has
    # probability 7e-6 each (4e-4 for all), and the margin over 4 absorbs the error in
    # MCSE itself, estimated from 600 draws. Bambi writes the two parameterisations as
    # different models (framework_pymc.full.Form), so each is checked.
    full_fit = request.getfixturevalue(which)
    mcse_m = az.mcse(marginal_fit.posterior, method="mean")
    mcse_f = az.mcse(full_fit.posterior, method="mean")
    for name in (*HYPERPARAMETERS, "intercept", "slope"):
        mean_m = marginal_fit.posterior[name].mean(("chain", "draw")).values
        mean_f = full_fit.posterior[name].mean(("chain", "draw")).values
        z = np.abs(mean_m - mean_f) / np.sqrt(mcse_m[name].values ** 2 + mcse_f[name].values ** 2)
        assert np.all(z < 4.5), (name, np.max(z))


@pytest.mark.slow
def test_group_order_follows_the_dataset(marginal_fit, full_fit):
    assert DATASET.labels != sorted(DATASET.labels)
    for idata in (marginal_fit, full_fit):
        assert list(idata.posterior.group.values) == DATASET.labels


@pytest.mark.slow
def test_attrs_and_sample_stats(marginal_fit, full_fit):
    for idata, method in ((marginal_fit, "marginal"), (full_fit, "full")):
        attrs = idata.posterior.attrs
        assert attrs["backend"] == "pymc" and attrs["engine"] == "nutpie"
        assert attrs["method"] == method and attrs["parameterisation"] == "non_centred"
        assert attrs["seed"] == SETTINGS.seed
        assert attrs["sampling_seconds"] > 0 and attrs["compile_seconds"] > 0
        assert "pymc=5." in attrs["library_versions"] and "bambi=" in attrs["library_versions"]
        stats = idata.sample_stats
        assert stats.diverging.dtype == bool
        assert {"tree_depth", "n_steps", "step_size", "energy", "acceptance_rate"} <= set(stats)
        assert int(stats.tree_depth.max()) <= SETTINGS.max_treedepth
        # Bambi's own names never reach the common format.
        assert not any(
            "|" in name or name in ("Intercept", "sigma", "x") for name in idata.posterior
        )


@pytest.mark.slow
def test_same_seed_same_draws(marginal_fit):
    again = _fit("marginal")
    for name in (*HYPERPARAMETERS, "intercept", "slope"):
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
    for name in HYPERPARAMETERS:
        diff = float(idata.posterior[name].mean() - marginal_fit.posterior[name].mean())
        assert abs(diff) < 4.5 * math.hypot(float(mcse_a[name]), float(mcse_b[name])), name
