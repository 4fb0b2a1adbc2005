"""`framework compare`: agreement in Monte Carlo standard errors, flagged disagreement, --strict."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_core_run import FAST, RAINFALL

import framework
from fake_backend import FakeBackend, FakePlugin
from framework.cli import main
from framework.results.comparison import compare
from framework.spec.load import load_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.fixture
def backends():
    plugins = {
        "same": FakeBackend(name="same"),
        "other-seedless": FakeBackend(name="other-seedless"),
        "biased": FakeBackend(name="biased", bias=3.0),
    }
    for name, backend in plugins.items():
        framework.register_plugin(FakePlugin(backend), name=name)
    yield plugins
    for name in plugins:
        framework.unregister_plugin(name)


def test_agreeing_backends_pass_and_a_biased_one_is_flagged(backends):
    spec = load_spec(RAINFALL, FAST)
    agree = compare(spec, ["same", "other-seedless"])
    assert not agree.table["flagged"].any()
    disagree = compare(spec, ["same", "biased"])
    # Every scalar parameter and every group coefficient is compared, in v2 names.
    assert {"beta[Intercept]", "sigma", "coef[CA,Intercept]"} <= set(agree.table["parameter"])
    assert set(agree.table["variable"]) >= {"beta", "group_sd", "sigma", "coef"}
    # A shift of 3 in beta[Intercept] is 3 posterior sds of the fake (5% of the truth 20, sd 1):
    # far beyond 4 MCSE.
    assert "beta[Intercept]" in disagree.flagged["parameter"].tolist()
    row = disagree.table.set_index("parameter").loc["beta[Intercept]"]
    assert row["diff_sd"] == pytest.approx(3, rel=0.1)
    assert set(disagree.timings()["backend"]) == {"same", "biased"}


def test_cli_strict_exits_3_on_disagreement(backends, tmp_path, capsys):
    args = ["compare", str(RAINFALL), "--backends", "same,biased", "-o", str(tmp_path / "c"), "-q"]
    args += [f"--set={o}" for o in FAST]
    assert main(args) == 0
    assert "DISAGREE" in capsys.readouterr().out
    assert (tmp_path / "c" / "compare.csv").is_file()
    assert main(args + ["--strict"]) == 3
    assert main(["compare", str(RAINFALL), "--backends", "same"]) == 2


@pytest.mark.slow
def test_stan_and_pymc_agree_on_a_correlated_model_through_compare():
    """The two built-in backends, through `framework compare`, on simulated data with correlated
    effects, two numeric predictors and a categorical one: every scalar and every group's
    coefficients within 4 MCSE (plus 0.1 sd; comparison.py gives the false-alarm reasoning)."""
    settings = ["sampler.chains=2", "sampler.warmup=500", "sampler.draws=500", "sampler.seed=3"]
    spec = load_spec(SPECS / "correlated.yaml", settings)
    result = compare(spec, ["stan", "pymc"])
    assert "group_corr[Intercept,x]" in set(result.table["parameter"])
    assert not result.table["flagged"].any(), result.flagged.to_string()


class _Unavailable(FakeBackend):
    name = "unavailable"

    def available(self):
        return framework.Availability(False, "its sampler is not installed here")


@pytest.fixture
def unavailable():
    framework.register_plugin(FakePlugin(_Unavailable()), name="unavailable")
    yield
    framework.unregister_plugin("unavailable")


def _refused_before_fitting(args, tmp_path, capsys) -> str:
    """Exit 2 with no backend fitted: no "fitting" progress line and no output folder."""
    out = tmp_path / "c"
    assert main(["compare", str(RAINFALL), *args, "-o", str(out), "--set=sampler.draws=100"]) == 2
    err = capsys.readouterr().err
    assert "fitting" not in err and "Traceback" not in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("first", ["stan", "same"])
def test_compare_refuses_an_unknown_backend_before_fitting_any(first, backends, tmp_path, capsys):
    if first not in framework.get_registry():
        pytest.skip(f"backend '{first}' is not installed here")
    err = _refused_before_fitting(["--backends", f"{first},nope"], tmp_path, capsys)
    assert "rainfall.yaml (--backends nope): backend.name: unknown backend 'nope'" in err


def test_compare_refuses_an_unavailable_backend_before_fitting_any(
    backends, unavailable, tmp_path, capsys
):
    err = _refused_before_fitting(["--backends", "same,unavailable"], tmp_path, capsys)
    assert "backend 'unavailable' is not available here: its sampler is not installed" in err


def test_compare_refuses_bad_options_of_a_later_backend_before_fitting_any(
    backends, tmp_path, capsys
):
    # The spec's own backend (stan) keeps its options; "same" comes first and must not fit.
    if "stan" not in framework.get_registry():
        pytest.skip("backend 'stan' is not installed here")
    args = ["--backends", "same,stan", "--set=backend.options.speeed=1"]
    err = _refused_before_fitting(args, tmp_path, capsys)
    assert "backend.options.speeed: unknown option for backend 'stan'" in err


def test_compare_refuses_a_backend_named_twice(backends, capsys):
    assert main(["compare", str(RAINFALL), "--backends", "same,same"]) == 2
    assert "--backends: same named twice" in capsys.readouterr().err
