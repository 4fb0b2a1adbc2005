"""Real data sets no one here wrote, used as a new user would (tests/reference/real/README.md).

Statistics come from a real sampler; the messages from the real CLI in a subprocess
(`framework validate` with the Stan backend reads the data and checks the spec but
compiles and samples nothing).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import framework

# `framework validate` checks the spec's backend (stan, the default): without its plugin the
# CLI tests here would fail on the backend, not on what they test.
pytest.importorskip("framework_stan", reason="the Stan backend is not installed")

# The lme4 agreement test's priors: the same Stan program (its text depends only on the
# model's structure and prior families), so this module compiles nothing of its own.
from test_lme4_agreement import WIDE_PRIORS  # noqa: E402

REAL = Path(__file__).parent / "reference" / "real"


def write_spec(folder: Path, name: str, data: Path, model: dict, **extra) -> Path:
    spec = {"name": name, "data": {"path": str(data)}, "model": model, **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def validate(spec: Path, *sets: str) -> subprocess.CompletedProcess:
    """`framework validate SPEC --set ...` in a new interpreter, as a user runs it."""
    args = [arg for s in sets for arg in ("--set", s)]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "framework.cli", "validate", str(spec), *args],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=120, cwd=spec.parent,
    )  # fmt: skip


def warns_once_and_not_without(spec: Path, warning: str, formula: str) -> None:
    """`validate` passes with `warning` its only warning; with `formula` it says nothing."""
    done = validate(spec)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("framework: warning:") == 1, done.stderr
    assert warning in done.stderr
    clean = validate(spec, f"model.formula={formula}")
    assert clean.returncode == 0 and clean.stderr == "", clean.stderr


@pytest.mark.slow
def test_panel_population_coefficients_are_least_squares(tmp_path):
    """Loblolly: 14 seed sources, each measured at the same six ages, `(age | Seed)`.

    When every group has the same design and every population term varies by group,
    generalised least squares is ordinary least squares whatever the group covariance and
    sigma (Zyskind's condition: V X = X A). So given any draw of the variances, beta's
    conditional posterior is centred at the least-squares estimate (the normal(0, 1000)
    prior moves it by ~(sd / 1000)^2, 1e-6 of an sd), and its posterior mean is least
    squares up to Monte Carlo error: ~1 / sqrt(ESS ~ 2,000) = 0.022 posterior sd. The bound,
    0.1 sd, is 4.5 of those; a mis-read column, a mis-coded term or a wrong likelihood is off
    by far more (lme4 on these data gives the same beta to every printed digit).
    """
    data = REAL / "loblolly.csv"
    model = {"formula": "height ~ age + (age | Seed)", "priors": WIDE_PRIORS}
    sampler = {"chains": 4, "warmup": 1000, "draws": 1000, "seed": 11}
    spec = write_spec(tmp_path, "loblolly", data, model, sampler=sampler,
                      output={"plots": False})  # fmt: skip
    result = framework.run(spec, write=False)
    assert result.diagnostics["max_r_hat"] < 1.01

    rows = pd.read_csv(data)
    design = np.column_stack([np.ones(len(rows)), rows["age"]])
    ols = np.linalg.lstsq(design, rows["height"].to_numpy(), rcond=None)[0]
    beta = result.idata.posterior["beta"]
    for term, expected in zip(["Intercept", "age"], ols, strict=True):
        draws = beta.sel(term=term).values
        assert abs(draws.mean() - expected) <= 0.1 * draws.std(), (term, draws.mean(), expected)
    # Integer-coded seed labels stay as written, in order of first appearance.
    labels = [str(g) for g in result.idata.posterior["coef"].coords["group"].values]
    assert labels == [str(s) for s in pd.unique(rows["Seed"])]


def test_r_export_is_read_and_default_priors_far_from_the_data_are_named(tmp_path):
    """Dyestuff as R's write.csv exports it (a first column named ""), with no priors given.

    The default normal(0, 100) on beta is 15 sds from the yield (~1528 g): it pulled the
    intercept to ~1313 (lme4: 1527.5) and pinned the batch sd at the uniform(0, 100) bound,
    silently. Now validate reads the file and says so, naming the parameter and a fix.
    """
    spec = write_spec(tmp_path, "dyestuff", REAL / "dyestuff_r_export.csv",
                      {"formula": "Yield ~ 1 + (1 | Batch)"})  # fmt: skip
    done = validate(spec)
    assert done.returncode == 0, done.stderr
    assert "valid. 30 rows, 6 groups" in done.stdout
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 1, done.stderr
    for phrase in ("framework: warning: model.priors.beta:", "beta[Intercept] near 1528",
                   "15.3 sds from the mean of its prior normal(0, 100)",
                   "e.g. beta: {Intercept: normal(0, 10000)}"):  # fmt: skip
        assert phrase in warnings[0], done.stderr


def test_priors_on_the_data_scale_draw_no_warning_and_sigma_bounds_are_checked(tmp_path):
    spec = write_spec(tmp_path, "dyestuff", REAL / "dyestuff_r_export.csv",
                      {"formula": "Yield ~ 1 + (1 | Batch)"})  # fmt: skip
    wide = validate(spec, "model.priors.beta=normal(0, 10000)")
    assert wide.returncode == 0 and wide.stderr == "", wide.stderr
    # The residual sd within batches is ~49.5 (lme4: 49.51): uniform(0, 10) cannot hold it.
    narrow = validate(
        spec, "model.priors.beta=normal(1500, 100)", "model.priors.sigma=uniform(0, 10)"
    )
    assert narrow.returncode == 0, narrow.stderr
    assert narrow.stderr.count("framework: warning:") == 1, narrow.stderr
    assert "model.priors.sigma: the data put sigma near 49.5" in narrow.stderr
    assert "outside the bounds of its prior uniform(0, 10)" in narrow.stderr


def test_set_starts_the_forecast_list_of_a_spec_without_one(tmp_path):
    """`--set forecasts.0.x=...` on a spec with no forecasts once made a mapping {"0": ...} and
    was refused with `forecasts: must be a list (got a mapping)`, which the user never wrote."""
    spec = write_spec(tmp_path, "loblolly", REAL / "loblolly.csv",
                      {"formula": "height ~ age + (age | Seed)", "priors": WIDE_PRIORS})  # fmt: skip
    done = validate(spec, "forecasts.0.group=301", "forecasts.0.x=30", "forecasts.1.group=new",
                    "forecasts.1.x=30")  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "valid. 84 rows, 14 groups" in done.stdout
    # A digit after a key that is not a list field is a mapping key (a column named 2020).
    from framework.spec.load import apply_overrides

    raw = apply_overrides({"model": {}}, ["model.categorical.2020.reference=a"], "spec.yaml")
    assert raw == {"model": {"categorical": {"2020": {"reference": "a"}}}}


def test_tiny_values_are_not_printed_as_zero():
    """Data on a micro scale (a response ~3e-06) printed every summary as 0.000."""
    from framework.cli.terminal import table

    frame = pd.DataFrame({"parameter": ["beta[x]", "sigma"], "mean": [2.68e-06, 1.0]})
    lines = table(frame).splitlines()
    assert lines[2].split()[-1] == "2.68e-06" and lines[3].split()[-1] == "1.000", lines


def test_rhat_in_a_failed_check_never_prints_as_the_limit():
    """`R-hat 1.010 > 1.01` (1.0104 rounded) read as a false statement; enough digits now."""
    from framework.results.diagnostics import RHAT_MAX, _past

    assert _past(1.0104, RHAT_MAX) == "1.0104"
    assert _past(1.0100001, RHAT_MAX) == "1.0100001"
    assert _past(1.2345, RHAT_MAX) == "1.234"  # 3 decimals when they already differ


def test_column_names_in_any_script_need_no_backticks():
    """R reads `Größe` as a name; the grammar once stopped at 'ö' ("cannot read 'öße ...'")."""
    from framework.model.formula import parse_formula

    parsed = parse_formula("Gewicht ~ Größe + `Alter (Jahre)` + (1 + Größe | Baum_Nr.)")
    assert parsed.response == "Gewicht" and parsed.blocks[0].group == "Baum_Nr."
    assert set(parsed.columns()) == {"Gewicht", "Größe", "Alter (Jahre)", "Baum_Nr."}


def test_collinear_terms_are_named(tmp_path):
    """Loblolly with the age also in months, as a user might add it: lme4 drops one column
    ("rank deficient"); here the prior alone separated them and least squares, 1e4 scale off,
    fed the prior-scale check. Now the terms are named and beta's scale is not judged."""
    rows = pd.read_csv(REAL / "loblolly.csv")
    rows["age_months"] = 12 * rows["age"]
    data = tmp_path / "loblolly_months.csv"
    rows.to_csv(data, index=False)
    priors = {k: v for k, v in WIDE_PRIORS.items() if k != "group_corr"}  # one group term
    spec = write_spec(tmp_path, "months", data,
                      {"formula": "height ~ age + age_months + (1 | Seed)", "priors": priors})  # fmt: skip
    warns_once_and_not_without(
        spec,
        "model.formula: the terms age, age_months are collinear in the data",
        "height ~ age_months + (1 | Seed)",  # months alone: nothing to say
    )


def test_a_group_level_predictor_varying_by_group_is_named(tmp_path):
    """Orthodont: a child's sex never changes, so `(Sex | Subject)` gives each child a sex
    effect that is only a second intercept (lme4: a singular fit). Said before sampling."""
    lme4_orthodont = Path(__file__).parent / "reference" / "lme4" / "orthodont.csv"
    spec = write_spec(tmp_path, "orthodont", lme4_orthodont,
                      {"formula": "distance ~ age + Sex + (Sex | Subject)", "priors": WIDE_PRIORS,
                       "categorical": {"Sex": {"reference": "Male"}}})  # fmt: skip
    warns_once_and_not_without(
        spec,
        "model.formula: Sex[Female] never varies within a group of Subject",
        "distance ~ age + Sex + (age | Subject)",
    )


def test_a_number_written_otherwise_gets_a_did_you_mean():
    """Integer-coded subjects (Oxboys' 1..26): `--group 01` or `1.0` drew "not in the data"
    with no hint, though the spec's `reference: 1.0` already names the code 1."""
    from framework.results.forecasts import near_label

    seeds = [str(s) for s in pd.unique(pd.read_csv(REAL / "loblolly.csv")["Seed"])]
    assert near_label("0301", seeds) == "301" and near_label("301.0", seeds) == "301"
    assert near_label("302", ["301", "303"]) is None  # another number is not a near label


# A mixture far from normal (component means spread over ~3 sds, sds from 0.24 to 3): found
# by a search for what Orthodont's 2-chain fit did, where Newton on the series ran off and
# numpy printed "overflow encountered in multiply" to the user of framework.run.
OFFSETS = [-5.664, -2.745, -4.876, 0.462, -0.869, -2.307, -3.434, -3.771, -1.516, -4.48, -1.133,
           -2.254, -1.733, -4.36, -6.082, -3.093, -1.908, 1.606, -3.712, -4.373, -0.268, 4.348,
           4.239, -1.217, -1.997, 6.068, 0.981, 8.338, -6.413, 3.571, 3.409, -0.454, 6.6, 5.193,
           9.437, 0.868, 5.438, 4.099, 1.871, 2.129]  # fmt: skip
SDS = [2.842, 1.933, 2.8, 0.556, 2.347, 1.148, 2.057, 1.16, 0.547, 2.766, 0.385, 2.507, 0.262,
       2.987, 1.379, 1.635, 2.562, 1.483, 0.41, 1.661, 2.783, 1.53, 0.239, 1.586, 1.83, 2.451,
       1.846, 2.805, 0.616, 2.263, 2.651, 0.713, 2.512, 1.967, 2.75, 1.032, 0.417, 2.409, 2.095,
       1.024]  # fmt: skip


def test_a_series_that_runs_off_is_left_unproven_without_numpy_warnings():
    import warnings

    from framework.results.mixture_series import series_quantiles

    a = np.array(OFFSETS)[:, None] - np.mean(OFFSETS)
    sds = np.array(SDS)[:, None]
    var_s = float(np.mean(sds**2))
    spread = np.array([float(np.sqrt(np.mean(a**2) + var_s))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _, proven = series_quantiles(
            a, sds, np.zeros(1), var_s, spread, np.array([0.05, 0.5, 0.95])
        )
    assert not proven.any()  # the caller then solves these groups on the exact CDF
