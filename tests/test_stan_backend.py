"""The Stan backend: generated programs, real pystan fits, engines, options and error mapping.

Every fit below runs the real sampler on a small simulated problem (30 groups x 20 rows).
Distinct Stan programs are few (marginal, full centred, full non-centred, one prior probe):
each compiles once per machine (~1 min) into the project cache, then loads in well under 1 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import arviz as az
import numpy as np
import pytest

from framework import (
    DEFAULT_PRIORS,
    FAMILIES,
    HYPERPARAMETERS,
    BackendError,
    CompileError,
    Dataset,
    Interrupted,
    OptionsError,
    Prior,
    Problem,
    SamplerSettings,
    SamplingError,
    cache_dir,
    check_posterior,
    design_stats,
    get_registry,
    marginal_loglik,
)
from framework.testing import simulated_dataset
from framework_stan import (
    StanBackend,
    engine_pystan,
    engines,
    io_cmdstanpy,
    program,
    scaling,
    stanc,
)
from framework_stan.assemble import assemble

TRUTH = {
    "intercept_mu": 20.0,
    "intercept_sigma": 5.0,
    "slope_mu": 1.0,
    "slope_sigma": 0.5,
    "error_sigma": 3.0,
}
SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300, seed=11)
PYSTAN = {"engine": "pystan"}
DEFAULT_FAMILIES = {name: DEFAULT_PRIORS[name].family for name in HYPERPARAMETERS}

pystan_ok, pystan_reason = engines.pystan_status()
needs_pystan = pytest.mark.skipif(not pystan_ok, reason=f"pystan not usable: {pystan_reason}")


def simulate(groups=30, rows=20, seed=2024, labels=None) -> Dataset:
    """The model's generative process with TRUTH, drawn with NumPy."""
    rng = np.random.default_rng(seed)
    intercept = rng.normal(TRUTH["intercept_mu"], TRUTH["intercept_sigma"], groups)
    slope = rng.normal(TRUTH["slope_mu"], TRUTH["slope_sigma"], groups)
    codes = np.repeat(np.arange(groups), rows)
    x = rng.uniform(0, 10, groups * rows)
    y = intercept[codes] + slope[codes] * x + rng.normal(0, TRUTH["error_sigma"], groups * rows)
    labels = labels or [f"g{j:02d}" for j in range(groups)]
    truth = {**TRUTH, "intercept": intercept, "slope": slope}
    return Dataset(y, x, codes, labels, truth=truth)


def problem(dataset, method="marginal", parameterisation="centred", priors=None, progress=None):
    return Problem(
        dataset, {**DEFAULT_PRIORS, **(priors or {})}, method, parameterisation, progress
    )


def hyper_means(idata) -> np.ndarray:
    return np.array([float(idata.posterior[name].mean()) for name in HYPERPARAMETERS])


def _clear_fit_cache():
    # httpstan stores every seeded fit; remove them so the next fit really samples again.
    for path in cache_dir("httpstan").glob("*/models/*/fits/*"):
        path.unlink()


@pytest.fixture(scope="session")
def dataset():
    return simulate()


@pytest.fixture(scope="session")
def fits(dataset):
    """One real fit per program variant, shared by the tests (each program compiles once)."""
    if not pystan_ok:
        pytest.skip(f"pystan not usable: {pystan_reason}")
    _clear_fit_cache()  # sample for real each session, rather than read a stored fit
    backend, out = StanBackend(), {"reports": {}}
    options = backend.validate_options({"engine": "pystan"})
    for key, method, par in (
        ("marginal", "marginal", "centred"),
        ("centred", "full", "centred"),
        ("non_centred", "full", "non_centred"),
    ):
        lines = []
        out[key] = backend.fit(
            problem(dataset, method, par, progress=lines.append), SETTINGS, options
        )
        out["reports"][key] = lines
        print(
            f"stan/pystan {key}: compile {out[key].posterior.attrs['compile_seconds']:.1f} s, "
            f"sampling {out[key].posterior.attrs['sampling_seconds']:.1f} s"
        )
    return out


# --- the generated program --------------------------------------------------------------


def test_every_family_has_a_template_and_no_other():
    assert set(program.STATEMENTS) == set(FAMILIES)
    for family in FAMILIES:
        bounds, statement, n_args = program.prior_template(family)
        assert n_args == len(FAMILIES[family].params)
        assert statement.count("{p}[") == n_args  # every prior argument reaches Stan as data


@pytest.mark.parametrize(
    ("method", "par"), [("marginal", "centred"), ("full", "centred"), ("full", "non_centred")]
)
def test_program_is_a_pure_function_of_method_parameterisation_and_families(dataset, method, par):
    base = program.program_for(problem(dataset, method, par))
    assert base == program.generate(method, par, DEFAULT_FAMILIES)
    # Other numbers, other data and hostile labels: same text, so no recompilation.
    other_numbers = {
        "intercept_mu": Prior("normal", (123.456, 7.25)),
        "intercept_sigma": Prior("uniform", (0.5, 987.5)),
    }
    hostile = simulate(
        groups=4, rows=3, seed=5, labels=['a"}; reject("x"); //', "model {", "b", "c"]
    )
    assert program.program_for(problem(dataset, method, par, other_numbers)) == base
    assert program.program_for(problem(hostile, method, par)) == base
    for text in ("123.456", "987.5", "reject", "model {\n  model"):
        assert text not in base
    # Uniform bounds are data, positive families are bounded at zero.
    assert "array[2] real p_error_sigma;" in base
    half = program.generate(method, par, {**DEFAULT_FAMILIES, "slope_sigma": "half_normal"})
    assert "array[1] real p_slope_sigma;" in half and half != base
    if method == "full":
        assert "real<lower=p_error_sigma[1], upper=p_error_sigma[2]> error_sigma;" in base
        assert "real<lower=0> slope_sigma;" in half
    else:  # the marginal program applies Stan's transforms itself, to its scaled coordinates
        assert (
            "real error_sigma = p_error_sigma[1] + (p_error_sigma[2] - p_error_sigma[1])"
            " * inv_logit(error_sigma_unc);" in base
        )
        assert "real slope_sigma = exp(slope_sigma_unc);" in half
        assert "target += slope_sigma_unc;" in half  # its log Jacobian


def test_program_variants_differ_where_they_should():
    marginal = program.generate("marginal", "centred", DEFAULT_FAMILIES)
    centred = program.generate("full", "centred", DEFAULT_FAMILIES)
    non_centred = program.generate("full", "non_centred", DEFAULT_FAMILIES)
    assert "sxy" in marginal and "intercept[g]" not in marginal
    assert "y ~ normal(intercept[g] + slope[g] .* x, error_sigma);" in centred
    assert "intercept ~ normal(intercept_mu, intercept_sigma);" in centred
    assert "intercept_z ~ std_normal();" in non_centred and "transformed parameters" in non_centred
    # The parameterisation does not matter to the marginal method.
    assert program.generate("marginal", "non_centred", DEFAULT_FAMILIES) == marginal
    # Only the marginal program asks stanc for --O1, in its header (so caches never mix levels).
    assert marginal.splitlines()[1] == "// stanc options: --O1"
    assert program.stanc_options(marginal) == ("--O1",) and program.stanc_options(centred) == ()
    with pytest.raises(BackendError, match="unknown method"):
        program.generate("laplace", "centred", DEFAULT_FAMILIES)


def test_data_carries_prior_numbers_statistics_and_one_based_groups(dataset):
    pr = problem(dataset, "full", priors={"slope_mu": Prior("student_t", (3, 1, 2.5))})
    data = program.data_for(pr)
    assert data["p_slope_mu"] == [3.0, 1.0, 2.5] and data["p_error_sigma"] == [0.0, 100.0]
    assert data["g"].min() == 1 and data["g"].max() == dataset.n_groups == data["J"]
    marginal = program.data_for(problem(dataset))
    statistics = {"K", "groups", "n", "xbar", "sxx", "ybar", "sxy", "ybar_ss", "sxy_ss", "f_ss"}
    assert set(marginal) >= statistics | {"syy_total"} and "y" not in marginal
    assert marginal["groups"].sum() == marginal["J"] == dataset.n_groups
    assert len(marginal["u_centre"]) == len(marginal["u_scale"]) == 5


@pytest.mark.parametrize(
    "case", ["plain", "one-row-groups", "constant-x", "tight-uniform", "positive-families"]
)
def test_scaling_is_finite_and_positive_on_awkward_data(case):
    ds, priors = simulate(groups=12, rows=6, seed=3), dict(DEFAULT_PRIORS)
    if case == "one-row-groups":
        ds = simulate(groups=12, rows=1, seed=3)
    elif case == "constant-x":
        codes = np.repeat(np.arange(4), 5)
        ds = Dataset(np.arange(20.0), np.full(20, 2.0), codes, ["a", "b", "c", "d"])
    elif case == "tight-uniform":  # the data put intercept_sigma near 5, the prior below 1
        priors["intercept_sigma"] = Prior("uniform", (0.0, 1.0))
    elif case == "positive-families":
        priors.update(
            intercept_sigma=Prior("half_normal", (10.0,)),
            slope_sigma=Prior("gamma", (2.0, 1.0)),
            error_sigma=Prior("lognormal", (1.0, 1.0)),
        )
    centre, scale = scaling.centre_and_scale(ds.stats, priors)
    assert np.all(np.isfinite(centre)) and np.all(np.isfinite(scale)) and min(scale) > 0


@needs_pystan
def test_scaling_matches_the_posterior_it_precedes(fits, dataset):
    # Centre and scale are rough moment estimates, not the posterior: within a few sds and a
    # factor of 3 is all the sampler needs (its warmup adapts the rest), and a wrong transform
    # or a swapped hyperparameter would miss by orders of magnitude.
    pr = problem(dataset)
    centre, scale = scaling.centre_and_scale(dataset.stats, pr.priors)
    post = fits["marginal"].posterior
    for k, name in enumerate(HYPERPARAMETERS):
        draws = post[name].values.ravel()
        if FAMILIES[pr.priors[name].family].support == "interval":
            low, high = pr.priors[name].bounds
            draws = np.log((draws - low) / (high - draws))
        assert abs(draws.mean() - centre[k]) < 3 * draws.std(), name
        assert 1 / 3 < scale[k] / draws.std() < 3, (name, scale[k], draws.std())


@needs_pystan
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_stanc_accepts_every_family(family):
    scale = FAMILIES[family].support != "real"
    families = dict(DEFAULT_FAMILIES)
    families["error_sigma" if scale else "slope_mu"] = family
    if family == "uniform":  # uniform fits both kinds of hyperparameter
        families["intercept_mu"] = "uniform"
    for method, par in (("marginal", "centred"), ("full", "non_centred")):
        stanc.compile_program(program.generate(method, par, families), "framework_check")


@needs_pystan
def test_marginal_vectors_are_struct_of_arrays_under_o1(tmp_path):
    # The speed of the marginal program on many groups rests on this: each per-group vector
    # is one autodiff node holding K values, not K nodes (stanc reports "AoS" otherwise).
    import importlib.resources
    import subprocess

    code = program.generate("marginal", "centred", DEFAULT_FAMILIES)
    (tmp_path / "marginal.stan").write_text(code)
    options = [*program.stanc_options(code), "--debug-mem-patterns"]
    with importlib.resources.as_file(importlib.resources.files("httpstan") / "stanc") as binary:
        done = subprocess.run(
            [binary, *options, str(tmp_path / "marginal.stan")], capture_output=True, timeout=60
        )
    lines = done.stdout.decode().split("\n")
    patterns = [line for line in lines if line.startswith("vector[K]")]
    assert len(patterns) >= 5 and all(line.endswith(": SoA") for line in patterns), lines


@needs_pystan
def test_pystan_builds_get_the_programs_stanc_options():
    # stan.build reaches stanc through httpstan.compile.compile (looked up at call time);
    # inside with_program_options it emits struct-of-arrays vectors (--O1), outside it does not.
    import httpstan.compile

    code = program.generate("marginal", "centred", DEFAULT_FAMILIES)
    soa = "stan::math::var_value<Eigen::Matrix<double,-1,1>>"
    original = httpstan.compile.compile
    assert soa not in original(code, "framework_check")[0]
    with stanc.with_program_options():
        assert soa in httpstan.compile.compile(code, "framework_check")[0]
    assert httpstan.compile.compile is original


# --- exactness of what Stan computes ---------------------------------------------------


@pytest.fixture(scope="session")
def pystan_model():
    """Build a compiled program with data (cached compile) and return its Stan log density."""
    stan = engines.import_pystan()

    def build(code, data):
        with engine_pystan.httpstan_cache():
            model = stan.build(code, data=data)

        def log_prob(values: dict) -> float:
            with engine_pystan.httpstan_cache():
                return model.log_prob(model.unconstrain_pars(values), adjust_transform=False)

        return log_prob

    return build


def marginal_parameters(values: dict, priors: dict) -> tuple[dict, float]:
    """The marginal program's parameters at natural values, and its log Jacobian there."""
    params, log_jacobian = {}, 0.0
    for name, value in values.items():
        support = FAMILIES[priors[name].family].support
        if support == "real":
            params[name] = value
        elif support == "positive":
            params[f"{name}_unc"] = np.log(value)
            log_jacobian += np.log(value)
        else:
            low, high = priors[name].bounds
            params[f"{name}_unc"] = np.log((value - low) / (high - value))
            log_jacobian += np.log((value - low) * (high - value) / (high - low))
    return params, log_jacobian


@needs_pystan
@pytest.mark.parametrize("case", ["20-rows", "2000-rows", "panel"])
def test_marginal_program_matches_the_numpy_reference(dataset, pystan_model, fits, case):
    # 2000 rows per group: the per-group terms are ~1e3 times their differences (cancellation).
    # panel: groups share designs (same x grid), so the program pools them (design_stats).
    data = {
        "20-rows": dataset,
        "2000-rows": simulate(groups=30, rows=2000, seed=8),
        "panel": simulated_dataset(n_groups=30, rows_per_group=11, seed=8, shared_x=True),
    }[case]
    if case == "panel":
        assert 1 < design_stats(data.stats).n_designs < 15  # 30 groups, 11 sizes
    pr = problem(data)  # the default priors: the program every marginal fit here uses
    log_prob = pystan_model(program.program_for(pr), program.data_for(pr))
    points = [
        TRUTH,
        {**TRUTH, "intercept_mu": 18.5, "slope_sigma": 0.8},
        {
            "intercept_mu": 21.0,
            "intercept_sigma": 3.0,
            "slope_mu": 0.7,
            "slope_sigma": 0.3,
            "error_sigma": 3.4,
        },
    ]
    stan_lp, ref = [], []
    for point in points:
        params, log_jacobian = marginal_parameters(point, pr.priors)
        stan_lp.append(log_prob(params))
        prior = sum(float(pr.priors[k].logpdf(v)) for k, v in point.items())
        ref.append(float(marginal_loglik(data.stats, **point)) + prior + log_jacobian)
    stan_lp, ref = np.array(stan_lp), np.array(ref)
    # `~` drops constants, so compare differences; both are double-precision sums of ~1e3
    # (20 rows) to ~1e5 (2000 rows) terms.
    np.testing.assert_allclose(stan_lp[1:] - stan_lp[0], ref[1:] - ref[0], rtol=1e-9, atol=1e-7)


PROBE = {  # family: (arguments, two values inside the support)
    "normal": ((1.5, 2.0), (0.3, -1.2)),
    "student_t": ((4.0, 1.0, 2.0), (0.3, 3.1)),
    "cauchy": ((0.5, 1.5), (0.2, -2.0)),
    "uniform": ((-1.0, 4.0), (0.5, 3.0)),
    "half_normal": ((2.0,), (0.5, 2.5)),
    "half_cauchy": ((1.5,), (0.5, 3.0)),
    "half_student_t": ((3.0, 2.0), (0.5, 2.5)),
    "exponential": ((0.7,), (0.5, 2.5)),
    "gamma": ((2.5, 1.5), (0.5, 2.5)),
    "inv_gamma": ((3.0, 2.0), (0.5, 2.5)),
    "lognormal": ((0.2, 0.8), (0.5, 2.5)),
}


def probe_program() -> str:
    """One parameter per family, each with the backend's own template: checks every template."""
    data, params, model = [], [], []
    for family in sorted(PROBE):
        bounds, statement, n_args = program.prior_template(family)
        p, v = f"p_{family}", f"v_{family}"
        data.append(f"  array[{n_args}] real {p};")
        params.append(f"  real{bounds.format(p=p)} {v};")
        model.append("  " + statement.format(v=v, p=p))
    return (
        "data {\n"
        + "\n".join(data)
        + "\n}\nparameters {\n"
        + "\n".join(params)
        + "\n}\nmodel {\n"
        + "\n".join(model)
        + "\n}\n"
    )


@needs_pystan
def test_every_prior_template_is_the_scipy_density(pystan_model):
    assert set(PROBE) == set(FAMILIES)
    log_prob = pystan_model(probe_program(), {f"p_{f}": list(a) for f, (a, _) in PROBE.items()})
    base = {f"v_{f}": vals[0] for f, (_, vals) in PROBE.items()}
    lp0 = log_prob(base)
    for family, (args, (a, b)) in PROBE.items():
        moved = log_prob({**base, f"v_{family}": b}) - lp0
        prior = Prior(family, args)
        expected = float(prior.logpdf(b) - prior.logpdf(a))
        assert moved == pytest.approx(expected, rel=1e-9, abs=1e-9), family


# --- real fits --------------------------------------------------------------------------


@needs_pystan
@pytest.mark.parametrize("key", ["marginal", "centred", "non_centred"])
def test_fit_passes_the_contract_and_recovers_the_truth(dataset, fits, key):
    idata = fits[key]
    check_posterior(idata, dataset, "stan")
    attrs = idata.posterior.attrs
    assert (
        attrs["backend"] == "stan"
        and attrs["engine"] == "pystan"
        and attrs["seed"] == SETTINGS.seed
    )
    assert attrs["method"] == ("marginal" if key == "marginal" else "full")
    for name in (
        "library_versions",
        "sampling_seconds",
        "compile_seconds",
        "parameterisation",
        "max_treedepth",
    ):
        assert name in attrs
    assert "pystan=" in attrs["library_versions"] and "httpstan=" in attrs["library_versions"]
    for name in ("diverging", "tree_depth", "energy", "step_size", "n_steps", "acceptance_rate"):
        assert idata.sample_stats[name].dims == ("chain", "draw")
    assert idata.sample_stats["diverging"].dtype == bool
    assert int(idata.sample_stats["diverging"].sum()) <= 3  # a well-posed problem: (almost) none
    # The step size is fixed per chain after warmup: constant along draws, so chains were not mixed up.
    step = idata.sample_stats["step_size"].values
    assert np.all(step == step[:, :1]) and step[0, 0] != step[1, 0]
    # Truth inside mean +- 4 posterior sd: for a calibrated posterior each check fails with
    # probability ~6e-5 (the data and seeds are fixed, so the test is deterministic anyway);
    # a wrong likelihood or swapped parameters move the mean by many sd.
    post = idata.posterior
    for name, true in TRUTH.items():
        mean, sd = float(post[name].mean()), float(post[name].std())
        assert abs(mean - true) < 4 * sd, (key, name, mean, sd, true)
    # Group effects: the simulated per-group values, same 4-sd rule (60 checks, ~4e-3 in all).
    for name in ("intercept", "slope"):
        mean = post[name].mean(("chain", "draw")).values
        sd = post[name].std(("chain", "draw")).values
        assert np.all(np.abs(mean - dataset.truth[name]) < 4 * sd), (key, name)
    assert list(post["group"].values) == dataset.labels


@needs_pystan
def test_many_rows_sample_as_easily_as_few(fits):
    # 600,000 rows pin the hyperparameters down (error_sigma's posterior sd ~0.003). In Stan's
    # unscaled coordinates the chains start far out with a unit metric and need ~25 leapfrog
    # steps per draw even after warmup; in the scaled ones ~6, as for a small data set.
    many = simulate(groups=300, rows=2000, seed=5)
    idata = StanBackend().fit(problem(many), SamplerSettings(2, 300, 300, seed=5), PYSTAN)
    assert float(idata.sample_stats["n_steps"].mean()) < 10
    post = idata.posterior
    for name, true in TRUTH.items():  # the 4-sd rule of the fits above
        mean, sd = float(post[name].mean()), float(post[name].std())
        assert abs(mean - true) < 4 * sd, (name, mean, sd, true)


@needs_pystan
@pytest.mark.parametrize("key", ["centred", "non_centred"])
def test_full_agrees_with_marginal_within_monte_carlo_error(fits, key):
    # Both target the same posterior, so means differ only by Monte Carlo error: with
    # |diff| < 5 * sqrt(mcse_a^2 + mcse_b^2) a false alarm has probability ~6e-7 per check;
    # the floor (2% of a posterior sd) only guards against an MCSE estimate near zero.
    a, b = fits["marginal"], fits[key]
    for name in HYPERPARAMETERS + ("intercept", "slope"):
        ma, mb = (az.mcse(f, var_names=[name], method="mean")[name].values for f in (a, b))
        diff = (
            a.posterior[name].mean(("chain", "draw")).values
            - b.posterior[name].mean(("chain", "draw")).values
        )
        sd = a.posterior[name].std(("chain", "draw")).values
        tol = 5 * np.sqrt(ma**2 + mb**2) + 0.02 * sd
        assert np.all(np.abs(diff) < tol), (key, name, diff, tol)


@needs_pystan
def test_progress_is_reported(fits):
    lines = fits["reports"]["marginal"]
    assert any(line.startswith(("compiling Stan program", "Stan program found")) for line in lines)
    assert any(line.startswith("sampling 2 chains") for line in lines)
    assert any(line.startswith("sampled in") for line in lines)
    assert not fits["marginal"].posterior.attrs["fit_from_cache"]


@needs_pystan
def test_same_seed_same_draws_other_seed_other_draws(dataset, fits):
    backend = StanBackend()
    _clear_fit_cache()
    again = backend.fit(problem(dataset), SETTINGS, PYSTAN)  # sampled afresh, not read from a cache
    cached = backend.fit(problem(dataset), SETTINGS, PYSTAN)  # may come from httpstan's fit cache
    assert not again.posterior.attrs["fit_from_cache"] and cached.posterior.attrs["fit_from_cache"]
    for idata in (again, cached):
        for name in HYPERPARAMETERS + ("intercept", "slope"):
            np.testing.assert_array_equal(
                idata.posterior[name].values, fits["marginal"].posterior[name].values
            )
    other = backend.fit(problem(dataset), SamplerSettings(2, 300, 300, seed=12), PYSTAN)
    assert not np.array_equal(
        other.posterior["intercept_mu"].values, again.posterior["intercept_mu"].values
    )
    assert not np.array_equal(
        other.posterior["intercept"].values, again.posterior["intercept"].values
    )


@needs_pystan
def test_fit_works_inside_a_running_event_loop(dataset, fits):
    async def notebook_cell():
        asyncio.get_running_loop()  # as in Jupyter: a loop is running in this thread
        return StanBackend().fit(problem(dataset), SETTINGS, PYSTAN)

    idata = asyncio.run(notebook_cell())
    check_posterior(idata, dataset, "stan")
    np.testing.assert_array_equal(
        idata.posterior["slope"].values, fits["marginal"].posterior["slope"].values
    )


@needs_pystan
@pytest.mark.parametrize("in_loop", [False, True], ids=["plain", "inside-event-loop"])
def test_ctrl_c_ends_the_chains_at_once_and_pystan_still_works(dataset, fits, in_loop):
    import httpstan.services_stub as stub

    workers, sent = [], []

    def progress(line):
        if line.startswith("sampling"):  # httpstan's workers are forked by now
            workers.extend(getattr(stub.executor, "_processes", None) or {})
            threading.Timer(0.5, lambda: (sent.append(time.monotonic()), interrupt())).start()

    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)

    def fit():
        # ~100 s of sampling if the interrupt were ignored (the full program, 101,000 iterations).
        long = SamplerSettings(chains=2, warmup=1000, draws=100_000, seed=7)
        return StanBackend().fit(problem(dataset, "full", progress=progress), long, PYSTAN)

    async def notebook_cell():
        return fit()

    stray = []  # a signal outside the backend's handler must not end the test session
    previous = signal.signal(signal.SIGINT, lambda *args: stray.append(args))
    try:
        with pytest.raises(Interrupted, match="interrupted while sampling"):
            asyncio.run(notebook_cell()) if in_loop else fit()
        stopped = time.monotonic()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not stray and len(workers) == 2 and len(sent) == 1
    assert stopped - sent[0] < 3, "pystan waited for the chains"  # ~0.1 s here
    for pid in workers:  # killed and reaped: no orphans
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # httpstan has fresh workers: a new fit samples for real and passes the contract.
    again = StanBackend().fit(
        problem(dataset), SamplerSettings(2, 200, 200, seed=99 + in_loop), PYSTAN
    )
    check_posterior(again, dataset, "stan")
    assert not again.posterior.attrs["fit_from_cache"]


@needs_pystan
def test_uniform_bounds_are_data_and_bind(dataset, fits):
    # Same program as the default marginal fit (no compile); the posterior mean of
    # intercept_sigma is ~4, so a uniform(0, 3.5) prior must pile the draws below 3.5.
    tight = {"intercept_sigma": Prior("uniform", (0.0, 3.5))}
    idata = StanBackend().fit(problem(dataset, priors=tight), SETTINGS, PYSTAN)
    draws = idata.posterior["intercept_sigma"].values
    assert draws.max() < 3.5 and draws.max() > 3.3
    assert fits["marginal"].posterior["intercept_sigma"].values.max() > 3.5
    assert (
        idata.posterior.attrs["program_sha256"]
        == fits["marginal"].posterior.attrs["program_sha256"]
    )


# --- errors -----------------------------------------------------------------------------


@needs_pystan
def test_stan_compile_error_becomes_compile_error(dataset, monkeypatch):
    monkeypatch.setattr(
        program, "program_for", lambda problem: "parameters { real a; } model { a ~ normal(0, 1) }"
    )
    with pytest.raises(CompileError) as err:
        StanBackend().fit(problem(dataset), SETTINGS, PYSTAN)
    message = str(err.value)
    assert "backend 'stan'" in message and "Syntax error" in message and "report it" in message


@needs_pystan
def test_initialisation_failure_becomes_sampling_error(fits):
    # x = 1e154: the statistics are finite, but n * xbar^2 overflows, so every starting
    # point has log density -inf (same program as the marginal fit: no compile).
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(3), 5)
    bad = Dataset(rng.normal(size=15), np.full(15, 1e154), codes, ["a", "b", "c"])
    assert all(np.all(np.isfinite(v)) for v in bad.stats.as_dict().values())
    with pytest.raises(SamplingError) as err:
        StanBackend().fit(problem(bad), SamplerSettings(1, 50, 50, seed=1), PYSTAN)
    message = str(err.value)
    assert message.startswith("backend 'stan' (pystan): sampling failed: Initialization between")
    assert "Next step: no starting point had a finite log density" in message
    assert "traceback" not in message


def test_non_finite_draws_become_sampling_error(dataset):
    hyper = {name: np.full((1, 2), 1.0) for name in HYPERPARAMETERS}
    hyper["slope_mu"][0, 1] = np.nan
    with pytest.raises(SamplingError, match="non-finite draws for slope_mu"):
        assemble(
            problem(dataset),
            SETTINGS,
            hyper,
            None,
            {"diverging": np.zeros((1, 2))},
            {"engine": "x"},
        )


# --- options, engines, registration -----------------------------------------------------


def test_options_defaults_and_valid_values(tmp_path):
    backend = StanBackend()
    assert backend.validate_options({}) == {
        "engine": "auto",
        "show_progress": False,
        "cmdstan_path": None,
    }
    opts = backend.validate_options(
        {"engine": "pystan", "show_progress": True, "cmdstan_path": str(tmp_path)}
    )
    assert opts == {"engine": "pystan", "show_progress": True, "cmdstan_path": str(tmp_path)}


def test_options_problems_are_all_listed_with_hints():
    with pytest.raises(OptionsError) as err:
        StanBackend().validate_options(
            {
                "engin": "pystan",
                "engine": "pystn",
                "show_progress": "yes",
                "cmdstan_path": "/no/such/dir",
            }
        )
    problems = err.value.problems
    assert len(problems) == 4
    assert (
        problems[0].startswith("backend.options.engin: unknown option")
        and "did you mean 'engine'" in problems[0]
    )
    assert (
        problems[1].startswith("backend.options.engine:") and "did you mean 'pystan'" in problems[1]
    )
    assert problems[2].startswith("backend.options.show_progress: expected true or false")
    assert problems[3].startswith("backend.options.cmdstan_path:") and "not a folder" in problems[3]
    with pytest.raises(OptionsError, match="backend.options.cmdstan_path: expected"):
        StanBackend().validate_options({"cmdstan_path": 3})
    with pytest.raises(OptionsError, match="backend.options: expected a mapping"):
        StanBackend().validate_options(["engine"])


def test_registered_through_the_entry_point_and_available():
    backend = get_registry().get("stan")
    assert isinstance(backend, StanBackend) and backend.methods == ("marginal", "full")
    status = backend.available()
    assert bool(status) == (pystan_ok or engines.cmdstan_status()[0]), status.reason


def test_auto_engine_prefers_cmdstan_and_falls_back_to_pystan():
    cmdstan_ok, reason = engines.cmdstan_status()
    expected = "cmdstanpy" if cmdstan_ok else "pystan"
    assert engines.resolve_engine({"engine": "auto", "cmdstan_path": None}) == expected
    if not cmdstan_ok:
        assert "install_cmdstan" in reason


def test_explicit_cmdstanpy_without_cmdstan_says_what_to_do(tmp_path):
    # A folder that is not a CmdStan installation: the next step must be named.
    with pytest.raises(BackendError, match="install_cmdstan"):
        engines.resolve_engine({"engine": "cmdstanpy", "cmdstan_path": str(tmp_path)})
    cmdstan_ok, reason = engines.cmdstan_status()
    if not cmdstan_ok:
        with pytest.raises(BackendError, match=r"CmdStan not found.*install_cmdstan"):
            StanBackend().fit(
                problem(simulate(groups=2, rows=3)), SETTINGS, {"engine": "cmdstanpy"}
            )


class FakeCmdStanMCMC:
    """The documented shapes of cmdstanpy's CmdStanMCMC accessors, for the converter alone."""

    def __init__(self, chains, draws, groups):
        self.chains = chains
        chain = np.repeat(np.arange(chains), draws)  # stan_variable: chain 1's draws first
        self._vars = {name: chain + i / 10 for i, name in enumerate(HYPERPARAMETERS)}
        for name in ("intercept", "slope"):
            self._vars[name] = chain[:, None] + np.arange(groups)[None, :] * 100.0
        per_draw = np.tile(np.arange(chains), (draws, 1))  # method_variables: (draws, chains)
        self._methods = {
            "divergent__": per_draw == 1,
            "treedepth__": per_draw + 3,
            "stepsize__": per_draw * 0.5 + 1,
        }

    def stan_variable(self, name):
        return self._vars[name]

    def method_variables(self):
        return self._methods


def test_cmdstanpy_converter_puts_chains_first(dataset):
    fake = FakeCmdStanMCMC(chains=2, draws=5, groups=dataset.n_groups)
    idata = io_cmdstanpy.to_posterior(
        fake, problem(dataset, "full"), SETTINGS, {"engine": "cmdstanpy"}
    )
    post, stats = idata.posterior, idata.sample_stats
    assert post["error_sigma"].shape == (2, 5)
    np.testing.assert_array_equal(post["intercept_mu"].values[:, 0], [0, 1])
    np.testing.assert_array_equal(post["slope"].values[1, 3, :3], [1, 101, 201])
    np.testing.assert_array_equal(stats["diverging"].values.any(axis=1), [False, True])
    np.testing.assert_array_equal(stats["tree_depth"].values[:, 0], [3, 4])


def test_cmdstanpy_gets_the_programs_stanc_options():
    # cmdstanpy's own option handling (no CmdStan needed) turns ours into the make flag.
    from cmdstanpy.compilation import CompilerOptions

    from framework_stan import engine_cmdstanpy

    marginal = program.generate("marginal", "centred", DEFAULT_FAMILIES)
    options = CompilerOptions(stanc_options=engine_cmdstanpy.cmdstan_stanc_options(marginal))
    options.validate()
    assert options.compose() == ["STANCFLAGS+=--O1"]
    full = program.generate("full", "centred", DEFAULT_FAMILIES)
    assert engine_cmdstanpy.cmdstan_stanc_options(full) is None


@pytest.fixture(scope="session")
def cmdstan():
    ok, reason = engines.cmdstan_status()
    if not ok:
        print(f"CmdStan not installed: {reason}")
        pytest.skip(f"CmdStan not installed: {reason}")


def test_cmdstanpy_fit_matches_pystan(cmdstan, dataset, fits):
    idata = StanBackend().fit(problem(dataset), SETTINGS, {"engine": "cmdstanpy"})
    check_posterior(idata, dataset, "stan")
    attrs = idata.posterior.attrs
    assert attrs["engine"] == "cmdstanpy" and "cmdstan=" in attrs["library_versions"]
    # Different engines, different random streams: agreement within Monte Carlo error (as above).
    for name in HYPERPARAMETERS:
        ma, mb = (
            az.mcse(f, var_names=[name], method="mean")[name].values
            for f in (idata, fits["marginal"])
        )
        diff = float(idata.posterior[name].mean() - fits["marginal"].posterior[name].mean())
        assert abs(diff) < 5 * np.sqrt(ma**2 + mb**2) + 0.02 * float(idata.posterior[name].std())
    again = StanBackend().fit(problem(dataset), SETTINGS, {"engine": "cmdstanpy"})
    np.testing.assert_array_equal(
        again.posterior["intercept"].values, idata.posterior["intercept"].values
    )
    # The executable is cached next to model.stan, so the second fit does not compile.
    assert again.posterior.attrs["compile_seconds"] < 5
