"""From spec to Model: term names as R's model.matrix gives them, priors by class, errors at their YAML line."""

from __future__ import annotations

import numpy as np
import pytest

from framework.errors import SpecError
from framework.model.prior_classes import LKJ
from framework.model.priors import Prior
from framework.model.terms import Column
from framework.spec.load import load_spec
from framework.spec.model_spec import categorical_columns

# The columns a data stage would report for a small clinical-trial-like table.
COLUMNS = {
    "y": Column("y", "numeric"),
    "x": Column("x", "numeric"),
    "x2": Column("x2", "numeric"),
    "trt": Column("trt", "categorical", ("A", "B", "C")),
    "sex": Column("sex", "categorical", ("f", "m")),
    "clinic": Column("clinic", "categorical", ("01", "02", "10")),
    "g": Column("g", "categorical", ("g1", "g2")),
}


def spec_of(tmp_path, model: str, forecasts: str = ""):
    """A spec file with this model section (YAML lines indented by two spaces) over a data file."""
    (tmp_path / "d.csv").write_text("y,x,g\n1,2,a\n")
    text = f"name: m\ndata:\n  path: d.csv\nmodel:\n{model}{forecasts}"
    (tmp_path / "spec.yaml").write_text(text)
    return load_spec(tmp_path / "spec.yaml")


def build(tmp_path, model: str, columns=COLUMNS):
    return spec_of(tmp_path, model).build_model(columns)


def names(tmp_path, formula: str, extra: str = "") -> list[str]:
    return build(tmp_path, f"  formula: {formula}\n{extra}").term_names


# --- terms, named as R's model.matrix names the columns (trtB -> trt[B]) ---------------------
@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        # model.matrix(~ x + trt): (Intercept) x trtB trtC
        ("y ~ x + trt + (1 | g)", ["Intercept", "x", "trt[B]", "trt[C]"]),
        # ~ 0 + trt: every level of the first factor, no intercept
        ("y ~ 0 + trt + (0 + trt | g)", ["trt[A]", "trt[B]", "trt[C]"]),
        ("y ~ trt - 1 + (0 + trt | g)", ["trt[A]", "trt[B]", "trt[C]"]),
        # ~ 0 + trt + sex: only the first factor is coded in full
        ("y ~ 0 + trt + sex + (0 + trt | g)", ["trt[A]", "trt[B]", "trt[C]", "sex[m]"]),
        # ~ x * trt: (Intercept) x trtB trtC x:trtB x:trtC
        ("y ~ x * trt + (x | g)", ["Intercept", "x", "trt[B]", "trt[C]", "x:trt[B]", "x:trt[C]"]),
        # ~ x:trt alone: every level inside the interaction
        ("y ~ x:trt + (1 | g)", ["Intercept", "x:trt[A]", "x:trt[B]", "x:trt[C]"]),
        # ~ trt * sex: trtB trtC sexm trtB:sexm trtC:sexm
        (
            "y ~ trt * sex + (1 | g)",
            ["Intercept", "trt[B]", "trt[C]", "sex[m]", "trt[B]:sex[m]", "trt[C]:sex[m]"],
        ),
        ("y ~ x + x2 + x:x2 + (x | g)", ["Intercept", "x", "x2", "x:x2"]),
    ],
)
def test_term_names_follow_model_matrix(tmp_path, formula, expected):
    assert names(tmp_path, formula) == expected


def test_reference_level_can_be_overridden(tmp_path):
    got = names(tmp_path, "y ~ trt + (1 | g)", "  categorical:\n    trt: {reference: C}\n")
    assert got == ["Intercept", "trt[A]", "trt[B]"]


def test_numeric_codes_declared_categorical_keep_their_text(tmp_path):
    spec = spec_of(
        tmp_path, "  formula: y ~ clinic + (1 | g)\n  categorical:\n    clinic: {reference: 02}\n"
    )
    assert categorical_columns(spec) == {"clinic": "02"}  # not 2
    assert spec.build_model(COLUMNS).term_names == ["Intercept", "clinic[01]", "clinic[10]"]
    listed = spec_of(tmp_path, "  formula: y ~ clinic + (1 | g)\n  categorical: [clinic]\n")
    assert categorical_columns(listed) == {"clinic": None}


def test_design_matches_treatment_coding(tmp_path):
    model = build(tmp_path, "  formula: y ~ x * trt + (x | g)\n")
    data = {"x": np.array([1.0, 2.0, 3.0]), "trt": np.array(["A", "B", "C"])}
    expected = [[1, 1, 0, 0, 0, 0], [1, 2, 1, 0, 2, 0], [1, 3, 0, 1, 0, 3]]
    np.testing.assert_array_equal(model.design(data), expected)


def test_group_terms_and_correlation(tmp_path):
    corr = build(tmp_path, "  formula: y ~ x + x2 + (x | g)\n")
    assert corr.group_term_names == ["Intercept", "x"] and corr.correlated
    assert corr.group_term_index == [0, 1]
    indep = build(tmp_path, "  formula: y ~ x + x2 + (x || g)\n")
    assert not indep.correlated and indep.corr_prior is None
    one = build(tmp_path, "  formula: y ~ x + (1 | g)\n")
    assert not one.correlated  # a single group term has no correlation


def test_v1_form_is_the_same_model_as_its_formula(tmp_path):
    v1 = build(tmp_path, "  response: y\n  predictor: x\n  group: g\n")
    f = build(tmp_path, "  formula: y ~ x + (x || g)\n")
    assert v1.term_names == f.term_names == ["Intercept", "x"]
    assert v1.group_term_names == f.group_term_names
    assert v1.formula == f.formula and not v1.correlated
    assert v1.priors == f.priors


# --- priors -----------------------------------------------------------------------------------
def test_default_priors_are_the_blogs(tmp_path):
    model = build(tmp_path, "  formula: y ~ x + (x | g)\n")
    assert model.priors == {
        "beta[Intercept]": Prior("normal", (0.0, 100.0)),
        "beta[x]": Prior("normal", (0.0, 100.0)),
        "group_sd[Intercept]": Prior("uniform", (0.0, 100.0)),
        "group_sd[x]": Prior("uniform", (0.0, 100.0)),
        "sigma": Prior("uniform", (0.0, 100.0)),
    }
    assert model.corr_prior == LKJ(1.0)


def test_priors_by_class_with_default_and_terms(tmp_path):
    model = build(
        tmp_path,
        "  formula: y ~ x + trt + (x | g)\n  priors:\n"
        "    beta: {Intercept: 'normal(0, 50)', 'trt[B]': 'normal(0, 1)', default: 'normal(0, 10)'}\n"
        "    group_sd: half_normal(5)\n    group_corr: lkj(2)\n    sigma: exponential(1)\n",
    )
    p = model.priors
    assert p["beta[Intercept]"] == Prior("normal", (0.0, 50.0))
    assert p["beta[trt[B]]"] == Prior("normal", (0.0, 1.0))
    assert p["beta[x]"] == p["beta[trt[C]]"] == Prior("normal", (0.0, 10.0))
    assert p["group_sd[Intercept]"] == p["group_sd[x]"] == Prior("half_normal", (5.0,))
    assert p["sigma"] == Prior("exponential", (1.0,))
    assert model.corr_prior == LKJ(2.0)


def test_v1_prior_names_are_aliases(tmp_path):
    model = build(
        tmp_path,
        "  response: y\n  predictor: x\n  group: g\n  priors:\n    intercept_mu: normal(1, 2)\n"
        "    slope_mu: normal(3, 4)\n    intercept_sigma: half_normal(5)\n"
        "    slope_sigma: half_normal(6)\n    error_sigma: exponential(7)\n",
    )
    assert model.priors == {
        "beta[Intercept]": Prior("normal", (1.0, 2.0)),
        "beta[x]": Prior("normal", (3.0, 4.0)),
        "group_sd[Intercept]": Prior("half_normal", (5.0,)),
        "group_sd[x]": Prior("half_normal", (6.0,)),
        "sigma": Prior("exponential", (7.0,)),
    }


# --- errors: one line, FILE:LINE: path: what; what to do -----------------------------------
def refused(tmp_path, model: str, columns=COLUMNS, forecasts: str = "") -> str:
    spec = spec_of(tmp_path, model, forecasts)
    with pytest.raises(SpecError) as err:
        built = spec.build_model(columns)
        spec.forecast_requests(built)
    (line,) = err.value.problems
    assert "\n" not in line
    return line.replace(str(tmp_path / "spec.yaml"), "spec.yaml")


def test_unknown_column_points_at_the_formula(tmp_path):
    line = refused(
        tmp_path, "  formula: y ~ x + yeer + (x | g)\n", {**COLUMNS, "year": COLUMNS["x"]}
    )
    assert line.startswith("spec.yaml:5: model.formula: column 'yeer' is not in the data; ")
    assert "did you mean 'year'?" in line


def test_unknown_column_of_the_v1_form_points_at_its_key(tmp_path):
    line = refused(tmp_path, "  response: y\n  predictor: xx\n  group: g\n")
    assert line.startswith("spec.yaml:6: model.predictor: column 'xx' is not in the data")


def test_missing_reference_level(tmp_path):
    line = refused(
        tmp_path, "  formula: y ~ trt + (1 | g)\n  categorical:\n    trt: {reference: Z}\n"
    )
    assert line.startswith("spec.yaml:7: model.categorical.trt.reference: 'Z' is not a level")
    assert "its levels are: 'A', 'B', 'C'" in line


def test_prior_for_a_missing_term(tmp_path):
    line = refused(
        tmp_path, "  formula: y ~ x + (x | g)\n  priors:\n    beta:\n      x3: normal(0, 1)\n"
    )
    assert line.startswith("spec.yaml:8: model.priors.beta.x3: the model has no beta term 'x3'")
    line = refused(
        tmp_path,
        "  formula: y ~ x + x2 + (x | g)\n  priors:\n    group_sd:\n      x2: half_normal(1)\n",
    )
    assert line.startswith("spec.yaml:8: model.priors.group_sd.x2: ")


def test_v1_alias_on_a_two_predictor_model(tmp_path):
    line = refused(
        tmp_path, "  formula: y ~ x + x2 + (x | g)\n  priors:\n    slope_mu: normal(0, 1)\n"
    )
    assert line.startswith("spec.yaml:7: model.priors.slope_mu: is a v1 prior name")


def test_lkj_on_independent_effects(tmp_path):
    line = refused(tmp_path, "  formula: y ~ x + (x || g)\n  priors:\n    group_corr: lkj(2)\n")
    assert line.startswith("spec.yaml:7: model.priors.group_corr: sets an LKJ prior")


def test_group_term_not_fixed_depends_on_coding(tmp_path):
    # Found only with the column's kind: trt's group terms are every level, its fixed ones B and C.
    line = refused(tmp_path, "  formula: y ~ trt + (0 + trt | g)\n")
    assert line.startswith("spec.yaml:5: model.formula: lets 'trt[A]' vary by g")


def test_categorical_response(tmp_path):
    line = refused(tmp_path, "  formula: trt ~ x + (1 | g)\n")
    assert line.startswith("spec.yaml:5: model.formula: the response 'trt' must be numeric")


# --- forecasts against the Model -----------------------------------------------------------------
def test_forecast_requests(tmp_path):
    spec = spec_of(
        tmp_path,
        "  formula: y ~ x + clinic + (1 | g)\n  categorical: [clinic]\n",
        "forecasts:\n  - {group: 01, at: {x: 1e3, clinic: 01}}\n  - {group: NO, at: {x: -1.5E-3, clinic: '10'}}\n",
    )
    points = spec.forecast_requests(spec.build_model(COLUMNS))
    assert points == [("01", {"x": 1000.0, "clinic": "01"}), ("NO", {"x": -0.0015, "clinic": "10"})]
    one = spec_of(
        tmp_path, "  formula: y ~ x + (x | g)\n", "forecasts:\n  - {group: CA, x: [16, 17]}\n"
    )
    assert one.forecast_requests(one.build_model(COLUMNS)) == [
        ("CA", {"x": 16.0}),
        ("CA", {"x": 17.0}),
    ]


def test_forecast_x_needs_one_numeric_predictor(tmp_path):
    line = refused(
        tmp_path, "  formula: y ~ trt + (1 | g)\n", forecasts="forecasts:\n  - {group: a, x: 3}\n"
    )
    assert line.startswith("spec.yaml:7: forecasts.0.x: is for a model with exactly one predictor")


def test_forecast_x_given_column_values_points_to_at(tmp_path):
    with pytest.raises(SpecError) as err:  # refused as the spec is read
        spec_of(tmp_path, "  formula: y ~ x + (1 | g)\n", "forecasts:\n  - {group: a, x: {x: 3}}\n")
    (line,) = err.value.problems
    line = line.replace(str(tmp_path / "spec.yaml"), "spec.yaml")
    assert line.startswith("spec.yaml:7: forecasts.0.x: takes one number")
    assert line.endswith("write at: {x: 3} instead of x")


def test_forecast_at_values_of_the_wrong_kind(tmp_path):
    fc = "forecasts:\n  - {group: a, at: {x: 1, trt: A}}\n  - {group: a, at: {x: one, trt: B}}\n"
    line = refused(tmp_path, "  formula: y ~ x + trt + (1 | g)\n", forecasts=fc)
    assert line.startswith(
        "spec.yaml:8: forecasts.1.at.x: 'x' is numeric: give a finite number of at most 1e+100 "
        "in size (got 'one')"
    )
    fc = "forecasts:\n  - {group: a, at: {x: 1, trt: D}}\n"
    line = refused(tmp_path, "  formula: y ~ x + trt + (1 | g)\n", forecasts=fc)
    assert line.startswith("spec.yaml:7: forecasts.0.at.trt: 'D' is not a level of 'trt'")
