"""The Stan backend: generated programs, their exactness, real pystan fits, engines and options.

Programs depend only on the model's structure (method, parameterisation, q, correlated, prior
families), so the tests below compile few (marginal q = 1, 2 independent, 2 correlated, 3
correlated; full centred and non-centred, correlated): each compiles once per machine into the
project cache (minutes on a busy machine), then loads in well under a second. The exactness
checks are about the program text, so they take the engine that compiles faster
(stan_log_density.py); tests/precompile.py builds all of them in the background.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import subprocess

import arviz as az
import numpy as np
import pytest
from stan_log_density import engine as density_engine
from stan_log_density import log_density

from framework import (
    FAMILIES,
    BackendError,
    CompileError,
    Dataset,
    OptionsError,
    Problem,
    SamplerSettings,
    SamplingError,
    cache_dir,
    check_posterior,
    get_registry,
)
from framework.model.gaussian_marginal import designs, marginal_loglik
from framework.model.model import build_model
from framework.model.prior_classes import parse_priors
from framework.model.statistics import GroupStats
from framework.model.terms import Column
from framework_stan import (
    StanBackend,
    engines,
    io_cmdstanpy,
    program,
    scaling,
    stanc,
)

PYSTAN = {"engine": "pystan"}
SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300, seed=11)
pystan_ok, pystan_reason = engines.pystan_status()
needs_pystan = pytest.mark.skipif(not pystan_ok, reason=f"pystan not usable: {pystan_reason}")

CASES = {  # name: (formula, numeric columns, with a categorical column)
    "q1": ("y ~ x + (1 | g)", ("x",), False),
    "q2-independent": ("y ~ x + (x || g)", ("x",), False),
    "q2-correlated": ("y ~ x + (x | g)", ("x",), False),
    "q3-categorical": ("y ~ x + cat + (1 + cat | g)", ("x",), True),
    "two-predictors": ("y ~ x + w + (x | g)", ("x", "w"), False),
}
CORR = np.array([[1.0, -0.5, 0.2], [-0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])


def simulate(case="q2-correlated", groups=30, rows=20, seed=2024, panel=False, offset=0.0,
             labels=None, priors=None, column_names=None):  # fmt: skip
    """(Model, Dataset, true coefficients) drawn with NumPy from the model's generative process."""
    formula, numeric, categorical = CASES[case]
    rng = np.random.default_rng(seed)
    n = groups * rows
    names = column_names or {}
    columns = {"y": Column("y", "numeric"), "g": Column("g", "categorical", ("a",))}
    data = {}
    grid = {c: rng.uniform(0, 10, rows) for c in numeric}
    for c in numeric:  # a panel: every group observed at the same values (one design)
        data[c] = np.tile(grid[c], groups) if panel else rng.uniform(0, 10, n)
        columns[c] = Column(c, "numeric")
    if categorical:
        levels = ("a", "b", "c")
        data["cat"] = np.tile(np.resize(levels, rows), groups) if panel else rng.choice(levels, n)
        columns["cat"] = Column("cat", "categorical", levels)
    for old, new in names.items():  # numeric columns renamed
        formula = formula.replace(old, new)
        columns[new] = Column(new, columns.pop(old).kind)
        data[new] = data.pop(old)
    model = build_model(formula, columns, priors=parse_priors(priors or {}, ("sigma",)))
    x = model.design(data)
    p, q, z = model.n_terms, model.n_group_terms, model.group_term_index
    beta = np.linspace(2.0, 0.5, p)
    beta[0] += offset
    sd = np.linspace(1.5, 0.4, q)
    corr = CORR[:q, :q] if model.correlated else np.eye(q)
    b = rng.multivariate_normal(np.zeros(q), np.outer(sd, sd) * corr, groups)
    codes = np.repeat(np.arange(groups), rows)
    y = x @ beta + np.einsum("nq,nq->n", x[:, z], b[codes]) + rng.normal(0, 1.0, n)
    stats = GroupStats.from_rows(codes, np.column_stack([x, y]), groups)
    labels = labels or [f"g{j:02d}" for j in range(groups)]
    dataset = Dataset(labels, stats, y=y, X=x, codes=codes)
    truth = {"beta": beta, "group_sd": sd, "group_corr": corr, "sigma": 1.0, "coef": beta[z] + b}
    return model, dataset, truth


def problem(model, dataset, method="marginal", parameterisation="centred", progress=None):
    return Problem(model, dataset, method, parameterisation, progress)


# --- the generated programs --------------------------------------------------------------


def test_every_family_has_a_template_and_no_other():
    assert set(program.STATEMENTS) == set(FAMILIES)
    for family in FAMILIES:
        statement, n_args = program.prior_template(family)
        assert n_args == len(FAMILIES[family].params)
        assert statement.count("{p}[") == n_args  # every prior argument reaches Stan as data


@pytest.mark.parametrize(
    ("method", "par"), [("marginal", "centred"), ("full", "centred"), ("full", "non_centred")]
)
def test_program_depends_on_the_structure_only(method, par):
    model, data, _ = simulate()
    base = program.program_for(problem(model, data, method, par))
    # Other prior numbers, other data, another number of terms, hostile labels and column
    # names: the same text, so no recompilation, and nothing a user wrote is in it.
    numbers = {"beta": {"Intercept": "normal(123.456, 7.25)"}, "group_sd": "uniform(0, 987.5)"}
    hostile_labels = ['a"}; reject("x"); //', "model {"] + [f"h{j}" for j in range(8)]
    hostile_names = {"x": "evil_column_zz"}
    variants = [
        simulate(priors=numbers),
        simulate(groups=10, rows=3, seed=5, labels=hostile_labels),
        simulate(column_names=hostile_names),
        simulate("two-predictors"),
        simulate(panel=True),
    ]
    for other_model, other_data, _ in variants:
        assert program.program_for(problem(other_model, other_data, method, par)) == base
    for text in ("123.456", "987.5", "reject", "model {\n  model", "evil_column_zz", "h0"):
        assert text not in base
    # What the text does depend on: q, the covariance structure, the prior families.
    for other in (simulate("q1"), simulate("q2-independent"), simulate("q3-categorical")):
        assert program.program_for(problem(*other[:2], method, par)) != base
    half = simulate(priors={"group_sd": {"x": "half_normal(2)"}})
    half_code = program.program_for(problem(*half[:2], method, par))
    assert half_code != base and "hyper[i_half_normal] ~ normal(0, a_half_normal[1]);" in half_code


def test_program_variants_differ_where_they_should():
    model, data, _ = simulate()
    marginal = program.program_for(problem(model, data))
    centred = program.program_for(problem(model, data, "full", "centred"))
    non_centred = program.program_for(problem(model, data, "full", "non_centred"))
    assert (
        "ztz" in marginal
        and "coef" not in marginal
        and "L_Omega ~ lkj_corr_cholesky(eta);" in marginal
    )
    assert "multiply_lower_tri_self_transpose(L_Omega)" in marginal + centred + non_centred
    assert "y ~ normal(XF * beta[ft] + rows_dot_product(XZ, coef[g]), sigma);" in centred
    assert "matrix[J, 2] coef;" in centred and "z_dev ~" not in centred
    assert "to_vector(z_dev) ~ std_normal();" in non_centred
    assert "diag_pre_multiply(group_sd, L_Omega) * z_dev" in non_centred
    # The parameterisation does not matter to the marginal method.
    assert program.program_for(problem(model, data, "marginal", "non_centred")) == marginal
    # Only the marginal program asks stanc for --O1, in its header (so caches never mix levels).
    assert marginal.splitlines()[1] == "// stanc options: --O1"
    assert program.stanc_options(marginal) == ("--O1",) and program.stanc_options(centred) == ()
    independent = program.program_for(problem(*simulate("q2-independent")[:2]))
    assert "L_Omega" not in independent and "group_corr" not in independent
    with pytest.raises(BackendError, match="unknown method"):
        program.generate(program.Shape("laplace", "centred", 1, False, ("normal",)))


def test_data_carries_prior_numbers_and_the_designs():
    priors = {"beta": {"x": "student_t(3, 1, 2.5)"}, "sigma": "half_normal(4)"}
    model, data, _ = simulate(priors=priors)
    d = program.data_for(problem(model, data))
    assert d["P"] == 2 and d["D"] == 5 and d["eta"] == 1.0
    np.testing.assert_array_equal(d["i_student_t"], [2])
    np.testing.assert_array_equal(d["a_student_t"], [[3.0], [1.0], [2.5]])
    np.testing.assert_array_equal(d["i_half_normal"], [5])  # sigma: positive, exp transform
    np.testing.assert_array_equal(d["i_pos"], [5])
    np.testing.assert_array_equal(d["i_int"], [3, 4])  # the group sds' uniform(0, 100)
    np.testing.assert_array_equal(d["upper_int"], [100.0, 100.0])
    assert d["K"] == data.n_groups and d["C"] == 0 and "y" not in d  # every group its own design
    panel = program.data_for(problem(*simulate(panel=True)[:2]))
    assert panel["K"] == 1 and panel["C"] == 2 and panel["groups"][0] == 30
    full = program.data_for(problem(model, data, "full"))
    assert full["g"].min() == 1 and full["g"].max() == full["J"] == data.n_groups
    np.testing.assert_array_equal(full["gt"], [1, 2])
    assert full["F"] == 0 and full["X"].shape == (600, 2)


@needs_pystan
@pytest.mark.parametrize("case", ["q1", "q2-correlated", "q3-categorical"])
def test_stanc_accepts_every_family(case):
    model, data, _ = simulate(case)
    for family in sorted(FAMILIES):
        shape = program.shape_of(problem(model, data))
        families = tuple(sorted({*shape.families, family}))
        for method, par in (("marginal", "centred"), ("full", "centred"), ("full", "non_centred")):
            code = program.generate(program.Shape(method, par, shape.q, shape.correlated, families))
            stanc.compile_program(code, "framework_check")


def _mem_patterns(code: str, tmp_path) -> list[str]:
    (tmp_path / "model.stan").write_text(code)
    options = [*program.stanc_options(code), "--debug-mem-patterns"]
    with importlib.resources.as_file(importlib.resources.files("httpstan") / "stanc") as binary:
        done = subprocess.run(
            [binary, *options, str(tmp_path / "model.stan"), "--o", str(tmp_path / "m.hpp")],
            capture_output=True,
            timeout=60,
        )
    return done.stdout.decode().split("\n")


@needs_pystan
@pytest.mark.parametrize("case", ["q2-independent", "q3-categorical"])
def test_marginal_vectors_are_struct_of_arrays_under_o1(case, tmp_path):
    # The marginal program's speed on many designs rests on this: each per-design vector is
    # one autodiff node holding K values, not K nodes (stanc reports "AoS" otherwise).
    code = program.program_for(problem(*simulate(case)[:2]))
    lines = _mem_patterns(code, tmp_path)
    per_design = [line for line in lines if line.startswith("vector[K]")]
    assert len(per_design) >= 5 and all(line.endswith(": SoA") for line in per_design), lines


@needs_pystan
def test_pystan_builds_get_the_programs_stanc_options():
    # stan.build reaches stanc through httpstan.compile.compile (looked up at call time);
    # inside with_program_options it emits struct-of-arrays vectors (--O1), outside it does not.
    import httpstan.compile

    code = program.program_for(problem(*simulate()[:2]))
    soa = "stan::math::var_value<Eigen::Matrix<double,-1,1>>"
    original = httpstan.compile.compile
    # Without its header line the same program compiles without --O1 (httpstan's own call
    # gives stanc 1 s, too little on a busy machine, so our call stands in for it here).
    unoptimised = "\n".join(line for line in code.splitlines() if "stanc options" not in line)
    assert soa not in stanc.compile_program(unoptimised, "framework_check")[0]
    with stanc.with_program_options():
        assert soa in httpstan.compile.compile(code, "framework_check")[0]
    assert httpstan.compile.compile is original


# --- the sampling coordinates --------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["plain", "one-row-groups", "constant-x", "tight-uniform", "positive-families", "q3"]
)
def test_scaling_is_finite_and_positive_on_awkward_data(case):
    kw = {"groups": 12, "rows": 6, "seed": 3}
    if case == "one-row-groups":
        kw["rows"] = 1
    elif case == "tight-uniform":  # the data put group_sd[Intercept] near 1.5, the prior below 1
        kw["priors"] = {"group_sd": {"Intercept": "uniform(0, 1)"}}
    elif case == "positive-families":
        kw["priors"] = {"group_sd": "half_normal(10)", "sigma": "lognormal(1, 1)"}
    model, data, _ = simulate("q3-categorical" if case == "q3" else "q2-correlated", **kw)
    stats = data.stats
    if case == "constant-x":  # x never varies within a group
        x = np.repeat(np.arange(12.0), 6)
        stats = GroupStats.from_rows(data.codes, np.column_stack([np.ones(72), x, data.y]), 12)
    centre, scale = scaling.centre_and_scale(model, stats)
    assert len(centre) == len(scale) == len(program.scalar_priors(model))
    assert np.all(np.isfinite(centre)) and np.all(np.isfinite(scale)) and scale.min() > 0


def test_scaling_sees_a_group_level_predictor_through_rounding_noise():
    """A column constant within groups, read from text, keeps ~1e-32 of centred sum of squares
    from rounding; taking that for within-group variation put MathAchieve's MEANSES at a scale
    of 3e14 and sent the chains apart (R-hat 5). Its centre must be the between-group estimate
    (lme4: 3.78) and its scale about its standard error (lme4: 0.38)."""
    from pathlib import Path

    from framework.data.load import read_file

    csv = Path(__file__).parent / "reference" / "lme4" / "mathachieve.csv"
    model, data = read_file(csv, "MathAch ~ SES + MEANSES + (SES | School)", keep_rows=False)
    within = data.stats.cross[:, 2, 2]
    assert np.any(within > 0)  # the noise this test is about is really there
    centre, scale = scaling.centre_and_scale(model, data.stats)
    j = model.term_names.index("MEANSES")
    assert abs(centre[j] - 3.78) < 1.0 and 0.05 < scale[j] < 2.0


# --- exactness of what Stan computes -----------------------------------------------------


@pytest.fixture(scope="session")
def stan_log_density():
    """Build a program with data (each distinct program compiled once) -> its log density."""
    if density_engine() is None:
        pytest.skip(f"neither Stan engine can run: {pystan_reason}")
    return log_density


def random_point(model, rng, offset=0.0):
    """Natural-scale parameter values near the simulation's, and the marginal program's u."""
    p, q = model.n_terms, model.n_group_terms
    beta = np.linspace(2.0, 0.5, p) + rng.normal(0, 0.3, p)
    beta[0] += offset
    sd = np.linspace(1.5, 0.4, q) * rng.uniform(0.6, 1.5, q)
    sigma = rng.uniform(0.8, 1.3)
    corr = None
    if model.correlated:
        a = rng.normal(size=(q, q))
        c = a @ a.T + q * np.eye(q)
        corr = c / np.sqrt(np.outer(np.diag(c), np.diag(c)))
    return beta, sd, sigma, corr


def stan_values(model, beta, sd, sigma, corr) -> tuple[dict, float]:
    """The program's parameters at these values (default priors), and its prior + log Jacobian."""
    scales = np.append(sd, sigma)  # uniform(0, 100): u = logit(x / 100)
    values = {"u": np.concatenate([beta, np.log(scales / (100 - scales))])}
    extra = float(np.sum(np.log(scales / 100) + np.log1p(-scales / 100)))
    extra += float(np.sum(-0.5 * (beta / 100) ** 2))  # normal(0, 100) up to a constant
    if corr is not None:
        low = np.linalg.cholesky(corr)
        values["L_Omega"] = low
        q = len(sd)  # lkj_corr_cholesky(1): sum over k >= 2 of (q - k) log L_kk
        extra += float(sum((q - k) * np.log(low[k - 1, k - 1]) for k in range(2, q + 1)))
    return values, extra


@needs_pystan
@pytest.mark.parametrize(
    ("case", "panel", "offset"),
    [
        ("q1", False, 0.0),
        ("q2-independent", True, 0.0),
        ("q2-correlated", False, 0.0),
        ("q2-correlated", True, 0.0),
        ("q2-correlated", False, 1e6),
        ("q3-categorical", False, 0.0),
        ("q3-categorical", True, 1e6),
    ],
)
def test_marginal_program_is_the_numpy_reference(stan_log_density, case, panel, offset):
    # panel: groups share designs, so the program pools them and uses the scatter terms;
    # offset 1e6: y and the intercept carry a large offset that the centred statistics cancel.
    model, data, _ = simulate(case, panel=panel, offset=offset)
    if panel:
        assert designs(model, data.stats).pooled
    pr = problem(model, data)
    log_prob = stan_log_density(program.program_for(pr), program.data_for(pr))
    rng = np.random.default_rng(7)
    stan_lp, ref = [], []
    for _ in range(4):
        beta, sd, sigma, corr = random_point(model, rng, offset)
        values, extra = stan_values(model, beta, sd, sigma, corr)
        stan_lp.append(log_prob(values))
        loglik = marginal_loglik(
            model, data.stats, beta=beta, group_sd=sd, sigma=sigma, group_corr=corr
        )
        ref.append(float(loglik) + extra)
    stan_lp, ref = np.array(stan_lp), np.array(ref)
    # `~` drops constants, so compare differences. Both are double-precision sums of ~1e3
    # terms; with the offset, beta[Intercept] ~ 1e6 enters squared (1e12 / 100^2 in its prior).
    np.testing.assert_allclose(stan_lp[1:] - stan_lp[0], ref[1:] - ref[0], rtol=1e-8, atol=1e-6)


# --- real fits ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def correlated():
    """A correlated model, y ~ x + (x | g), on 30 groups x 20 rows, and its truth."""
    return simulate("q2-correlated", groups=30, rows=20, seed=2024)


@pytest.fixture(scope="session")
def fits(correlated):
    """One real pystan fit per method and parameterisation, shared by the tests below."""
    if not pystan_ok:
        pytest.skip(f"pystan not usable: {pystan_reason}")
    model, data, _ = correlated
    backend, out = StanBackend(), {"reports": {}}
    for key, method, par in (
        ("marginal", "marginal", "centred"),
        ("centred", "full", "centred"),
        ("non_centred", "full", "non_centred"),
    ):
        lines: list[str] = []
        pr = problem(model, data, method, par, progress=lines.append)
        out[key] = backend.fit(pr, SETTINGS, PYSTAN)
        out["reports"][key] = lines
    return out


@needs_pystan
@pytest.mark.parametrize("key", ["marginal", "centred", "non_centred"])
def test_fit_passes_the_contract_and_recovers_the_truth(correlated, fits, key):
    model, data, truth = correlated
    idata = fits[key]
    check_posterior(idata, model, data, "stan")
    attrs = idata.posterior.attrs
    assert attrs["backend"] == "stan" and attrs["engine"] == "pystan"
    assert attrs["method"] == ("marginal" if key == "marginal" else "full")
    assert "pystan=" in attrs["library_versions"] and attrs["formula"] == model.formula
    for name in ("diverging", "tree_depth", "energy", "step_size", "n_steps", "acceptance_rate"):
        assert idata.sample_stats[name].dims == ("chain", "draw")
    assert int(idata.sample_stats["diverging"].sum()) <= 3  # well posed: (almost) none
    # The step size is fixed per chain after warmup: constant along draws, chains not mixed up.
    step = idata.sample_stats["step_size"].values
    assert np.all(step == step[:, :1]) and step[0, 0] != step[1, 0]
    post = idata.posterior
    corr = post["group_corr"].values
    np.testing.assert_allclose(corr[..., 0, 0], 1.0)
    np.testing.assert_allclose(corr[..., 0, 1], corr[..., 1, 0])
    # Truth inside mean +- 4 posterior sd: for a calibrated posterior each check fails with
    # probability ~6e-5 (data and seeds are fixed, so the test is deterministic anyway); a
    # wrong likelihood or swapped parameters move the mean by many sds.
    for name, true in (
        ("beta", truth["beta"]),
        ("group_sd", truth["group_sd"]),
        ("sigma", truth["sigma"]),
        ("group_corr", truth["group_corr"][0, 1]),
        ("coef", truth["coef"]),
    ):
        values = post[name].values
        if name == "group_corr":
            values = values[..., 0, 1]
        mean, sd = values.mean((0, 1)), values.std((0, 1))
        assert np.all(np.abs(mean - true) < 4 * sd), (key, name, mean, sd, true)
    assert list(post["group"].values) == data.labels


@needs_pystan
@pytest.mark.parametrize("key", ["centred", "non_centred"])
def test_full_agrees_with_marginal_within_monte_carlo_error(fits, key):
    # Both target the same posterior, so means differ only by Monte Carlo error: with
    # |diff| < 5 * sqrt(mcse_a^2 + mcse_b^2) a false alarm has probability ~6e-7 per check
    # (~1e-4 over the ~130 numbers compared); the floor (5% of a posterior sd) only guards
    # against an MCSE estimate near zero from 600 draws.
    a, b = fits["marginal"], fits[key]
    for name in ("beta", "group_sd", "group_corr", "sigma", "coef"):
        ma, mb = (
            az.mcse(f.posterior, var_names=[name], method="mean")[name].values for f in (a, b)
        )
        diff = (
            a.posterior[name].mean(("chain", "draw")).values
            - b.posterior[name].mean(("chain", "draw")).values
        )
        sd = a.posterior[name].std(("chain", "draw")).values
        tol = 5 * np.sqrt(ma**2 + mb**2) + 0.05 * sd
        if name == "group_corr":  # the diagonal is exactly 1 in both
            tol = tol + np.eye(2)
        assert np.all(np.abs(diff) < tol), (key, name, diff, tol)


@needs_pystan
def test_scaling_matches_the_posterior_it_precedes(correlated, fits):
    # Centre and scale are rough moment estimates, not the posterior: within 3 posterior sds
    # and a factor of 4 is all the sampler needs (its warmup adapts the rest); a wrong
    # transform or a swapped parameter would miss by orders of magnitude.
    model, data, _ = correlated
    centre, scale = scaling.centre_and_scale(model, data.stats)
    post = fits["marginal"].posterior
    for k, (label, prior) in enumerate(program.scalar_priors(model)):
        variable, _, term = label.partition("[")
        values = post[variable]
        if term:
            values = values.sel({values.dims[-1]: term.rstrip("]")})
        draws = values.values.ravel()
        if FAMILIES[prior.family].support == "interval":
            low, high = prior.bounds
            draws = np.log((draws - low) / (high - draws))
        assert abs(draws.mean() - centre[k]) < 3 * draws.std(), label
        assert 1 / 4 < scale[k] / draws.std() < 4, (label, scale[k], draws.std())


@needs_pystan
def test_progress_is_reported(fits):
    lines = fits["reports"]["marginal"]
    assert any(line.startswith(("compiling Stan program", "Stan program found")) for line in lines)
    assert any(line.startswith("sampling 2 chains") for line in lines)


@needs_pystan
def test_prior_bounds_are_data_and_bind(correlated, fits):
    # Same program as the marginal fit (no compile): the posterior of group_sd[x] lies around
    # 0.4, so a uniform(0, 0.3) prior must pile its draws just below 0.3.
    model, data, _ = correlated
    tight = simulate("q2-correlated", priors={"group_sd": {"x": "uniform(0, 0.3)"}})[0]
    idata = StanBackend().fit(problem(tight, data), SETTINGS, PYSTAN)
    draws = idata.posterior["group_sd"].sel(group_term="x").values
    assert draws.max() < 0.3 and draws.max() > 0.25
    same = (
        idata.posterior.attrs["program_sha256"]
        == fits["marginal"].posterior.attrs["program_sha256"]
    )
    assert same


# --- errors -------------------------------------------------------------------------------


@needs_pystan
def test_stan_compile_error_becomes_compile_error(correlated, monkeypatch):
    model, data, _ = correlated
    monkeypatch.setattr(
        program, "program_for", lambda problem: "parameters { real a; } model { a ~ normal(0, 1) }"
    )
    with pytest.raises(CompileError) as err:
        StanBackend().fit(problem(model, data), SETTINGS, PYSTAN)
    message = str(err.value)
    assert "backend 'stan'" in message and "Syntax error" in message and "report it" in message


@needs_pystan
def test_initialisation_failure_becomes_sampling_error(fits):
    # x = 1e154: the statistics are finite, but n x^2 overflows, so every starting point has
    # log density -inf (same program as the marginal fit: no compile).
    model, _, _ = simulate("q2-correlated")
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(3), 5)
    x = np.column_stack([np.ones(15), np.full(15, 1e154)])
    y = rng.normal(size=15)
    stats = GroupStats.from_rows(codes, np.column_stack([x, y]), 3)
    bad = Dataset(["a", "b", "c"], stats, y=y, X=x, codes=codes)
    with pytest.raises(SamplingError) as err:
        StanBackend().fit(problem(model, bad), SamplerSettings(1, 50, 50, seed=1), PYSTAN)
    message = str(err.value)
    assert message.startswith("backend 'stan' (pystan): sampling failed")
    assert "traceback" not in message


def test_other_families_are_refused_by_name():
    model, data, _ = simulate()
    student = type(model.family)("student_t", ("sigma", "nu"), exact_marginal=False)
    import dataclasses

    other = dataclasses.replace(model, family=student)
    with pytest.raises(BackendError, match="family 'student_t'"):
        program.shape_of(problem(other, data, "full"))


# --- converters, options, engines, registration ------------------------------------------


class FakeCmdStanMCMC:
    """The documented shapes of cmdstanpy's CmdStanMCMC accessors, for the converter alone."""

    def __init__(self, chains, draws, groups, q=2, p=2):
        self.chains = chains
        chain = np.repeat(np.arange(chains), draws).astype(float)  # chain 1's draws first
        self._vars = {
            "beta": chain[:, None] + np.arange(p) / 10,
            "group_sd": chain[:, None] + 1 + np.arange(q) / 10,
            "group_corr": np.broadcast_to(np.eye(q), (len(chain), q, q)).copy(),
            "sigma": chain + 0.5,
            "coef": chain[:, None, None]
            + np.arange(groups)[None, :, None] * 100.0
            + np.arange(q) / 10,
        }
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


def test_cmdstanpy_converter_puts_chains_first(correlated):
    model, data, _ = correlated
    fake = FakeCmdStanMCMC(chains=2, draws=5, groups=data.n_groups)
    attrs = {"backend": "stan", "engine": "cmdstanpy", "library_versions": "x", "seed": 1,
             "sampling_seconds": 0.0}  # fmt: skip
    idata = io_cmdstanpy.to_posterior(fake, problem(model, data, "full"), SETTINGS, attrs)
    post, stats = idata.posterior, idata.sample_stats
    assert post["sigma"].shape == (2, 5) and post["coef"].shape == (2, 5, data.n_groups, 2)
    np.testing.assert_array_equal(post["beta"].values[:, 0, 1], [0.1, 1.1])
    np.testing.assert_array_equal(post["coef"].values[1, 3, :3, 1], [1.1, 101.1, 201.1])
    np.testing.assert_array_equal(stats["diverging"].values.any(axis=1), [False, True])
    np.testing.assert_array_equal(stats["tree_depth"].values[:, 0], [3, 4])


def test_cmdstanpy_gets_the_programs_stanc_options():
    # cmdstanpy's own option handling (no CmdStan needed) turns ours into the make flag.
    from cmdstanpy.compilation import CompilerOptions

    from framework_stan import engine_cmdstanpy

    model, data, _ = simulate()
    marginal = program.program_for(problem(model, data))
    options = CompilerOptions(stanc_options=engine_cmdstanpy.cmdstan_stanc_options(marginal))
    options.validate()
    assert options.compose() == ["STANCFLAGS+=--O1"]
    full = program.program_for(problem(model, data, "full"))
    assert engine_cmdstanpy.cmdstan_stanc_options(full) is None


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
                "cmdstan_path": "/no/such",
            }
        )
    problems = err.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("backend.options.engin: unknown option")
    assert "did you mean 'engine'" in problems[0] and "did you mean 'pystan'" in problems[1]
    assert problems[2].startswith("backend.options.show_progress: expected true or false")
    assert problems[3].startswith("backend.options.cmdstan_path:") and "not a folder" in problems[3]
    with pytest.raises(OptionsError, match="backend.options: expected a mapping"):
        StanBackend().validate_options(["engine"])


def test_registered_through_the_entry_point_and_available():
    backend = get_registry().get("stan")
    # The registry hands back the plugin's backend behind its guard (plugin_calls).
    assert isinstance(backend.backend, StanBackend) and backend.methods == ("marginal", "full")
    status = backend.available()
    assert bool(status) == (pystan_ok or engines.cmdstan_status()[0]), status.reason


def test_explicit_cmdstanpy_without_cmdstan_says_what_to_do(tmp_path):
    # A folder that is not a CmdStan installation: the next step must be named.
    with pytest.raises(BackendError, match="install_cmdstan"):
        engines.resolve_engine({"engine": "cmdstanpy", "cmdstan_path": str(tmp_path)})


@needs_pystan
def test_many_rows_sample_as_easily_as_few(fits):
    # 600,000 rows pin the parameters down (sigma's posterior sd ~0.001). In Stan's unscaled
    # coordinates the chains would start far out with a unit metric and need many more
    # leapfrog steps per draw; in the scaled ones ~6, as for a small data set.
    model, many, truth = simulate("q2-correlated", groups=300, rows=2000, seed=5)
    idata = StanBackend().fit(problem(model, many), SamplerSettings(2, 300, 300, seed=5), PYSTAN)
    assert float(idata.sample_stats["n_steps"].mean()) < 10
    post = idata.posterior
    for name in ("beta", "group_sd", "sigma"):  # the 4-sd rule of the fits above
        mean, sd = post[name].values.mean((0, 1)), post[name].values.std((0, 1))
        assert np.all(np.abs(mean - truth[name]) < 4 * sd), (name, mean, sd, truth[name])


def _clear_fit_cache():
    # httpstan stores every seeded fit; remove them so the next fit really samples again.
    for path in cache_dir("httpstan").glob("*/models/*/fits/*"):
        path.unlink()


@needs_pystan
def test_same_seed_same_draws_other_seed_other_draws(correlated, fits):
    model, data, _ = correlated
    backend = StanBackend()
    _clear_fit_cache()
    again = backend.fit(problem(model, data), SETTINGS, PYSTAN)  # sampled afresh
    for name in ("beta", "group_corr", "coef"):  # coef: drawn exactly, seeded from the run
        np.testing.assert_array_equal(
            again.posterior[name].values, fits["marginal"].posterior[name].values
        )
    other = backend.fit(problem(model, data), SamplerSettings(2, 300, 300, seed=12), PYSTAN)
    for name in ("beta", "coef"):
        assert not np.array_equal(other.posterior[name].values, again.posterior[name].values)


@needs_pystan
def test_fit_works_inside_a_running_event_loop(correlated, fits):
    model, data, _ = correlated

    async def notebook_cell():
        asyncio.get_running_loop()  # as in Jupyter: a loop is running in this thread
        return StanBackend().fit(problem(model, data), SETTINGS, PYSTAN)

    idata = asyncio.run(notebook_cell())
    check_posterior(idata, model, data, "stan")
    np.testing.assert_array_equal(
        idata.posterior["coef"].values, fits["marginal"].posterior["coef"].values
    )
