"""Every bad spec in tests/bad_inputs gets one clear message from the real CLI: exit 2, no traceback."""

from __future__ import annotations

import pytest
import yaml
from bad_inputs.corpus import HERE, check_refused, load_cases, run_all, skip_reason
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import SpecError
from framework.spec.load import load_spec, validate_spec
from framework.spec.yaml_source import parse_yaml

CASES = load_cases("specs")


@pytest.fixture(scope="module")
def results():
    return run_all(CASES)


def test_corpus_is_large_enough():
    spec_files = list((HERE / "specs").glob("*.yaml"))
    assert len(spec_files) >= 40
    named = {c.args[1] for c in CASES if c.args[0] == "validate"}
    unused = [f.name for f in spec_files if f"specs/{f.name}" not in named]
    assert not unused, f"spec files without an expected message in cases.yaml: {unused}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_spec_gets_one_clear_message(case, results):
    result = results[case.id]
    reason = skip_reason(case, result)
    if reason:
        pytest.skip(reason)
    check_refused(case, result)


def test_python_tag_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(SpecError, match="not allowed in a spec"):
        parse_yaml(text)
    assert not marker.exists()


def test_every_problem_of_a_spec_is_reported_at_once():
    raw, lines = parse_yaml(
        "name: a/b\ndata: {path: x.csv, simulate: {}}\nmodel: {response: y}\n"
        "sampler: {chains: 0, seed: -1, target_accept: 2}\nbogus: 1\n"
    )
    with pytest.raises(SpecError) as err:
        validate_spec(raw, None, lines)
    text = str(err.value)
    for path in (
        "name:",
        "model.predictor:",
        "model.group:",
        "sampler.chains:",
        "sampler.seed:",
        "sampler.target_accept:",
        "bogus:",
        "data.simulate.groups:",
    ):
        assert path in text, text
    assert all(p.startswith("<spec>:") for p in err.value.problems), err.value.problems


def test_spec_name_cannot_leave_the_output_folder():
    valid = yaml.safe_load((HERE / "valid.yaml").read_text())
    for name in ("../up", "a/b", "..", "/abs", "a\\b", ".hidden", "x" * 101, "a b", "ä"):
        with pytest.raises(SpecError, match="name: must be a plain name"):
            validate_spec({**valid, "name": name})


def test_locate_points_backend_problems_at_the_spec_line():
    spec = load_spec(HERE / "valid.yaml")
    assert spec.locate("backend.options.foo: unknown option").startswith(
        f"{HERE / 'valid.yaml'}:13: "
    )
    assert spec.locate("no path here") == "no path here"


# --- the model section (v2) at the schema level ---------------------------------------------------
def test_v1_and_v2_specs_validate():
    for path in (HERE / "valid.yaml", HERE.parents[1] / "specs" / "rainfall.yaml"):
        spec = load_spec(path)
        assert spec.model.formula is None
        assert (
            spec.model.formula_text()
            == f"{spec.model.response} ~ {spec.model.predictor} + ({spec.model.predictor} || {spec.model.group})"
        )
    spec = load_spec(HERE / "valid_v2.yaml")
    assert spec.model.column_names() == ["y", "x", "x2", "clinic", "g"]
    assert (spec.model.response, spec.model.group, spec.model.predictor) == ("y", "g", None)
    assert spec.model.categorical == {"clinic": "02"}  # the level as written, not 2


def test_labels_and_levels_keep_the_text_written():
    spec = load_spec(HERE / "valid_v2.yaml")
    assert [f.group for f in spec.forecasts] == ["a", "NO"]  # NO is not false
    assert spec.forecasts[0].at == {"x": "1e1", "x2": "1.5E-1", "clinic": "01"}
    spec = load_spec(HERE / "valid_v2.yaml", ["forecasts.0.group=007"])
    assert spec.forecasts[0].group == "007"


def test_numbers_in_usual_notations():
    raw, lines = parse_yaml("a: 1e3\nb: 1.5E-3\nc: 010\nd: 0x1F\ne: .5\nf: 1:30\ng: 01\n")
    assert raw == {"a": 1000.0, "b": 0.0015, "c": 10, "d": 31, "e": 0.5, "f": "1:30", "g": 1}
    assert lines.texts[("g",)] == "01"
    valid = yaml.safe_load((HERE / "valid.yaml").read_text())
    raw, lines = parse_yaml(yaml.safe_dump(valid).replace("x: 5", "x: 1e3"))
    assert validate_spec(raw, None, lines).forecasts[0].x == 1000.0


@pytest.mark.parametrize("name", ["valid.yaml", "valid_v2.yaml", "../../specs/rainfall.yaml"])
def test_resolved_spec_runs_again_as_is(name, tmp_path):
    spec = load_spec(HERE / name)
    resolved = spec.resolved()
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    again = load_spec(tmp_path / "spec.yaml")  # elsewhere, as in a run directory
    assert again.resolved() == resolved
    assert again.model.formula_text() == spec.model.formula_text()
    assert again.forecasts == spec.forecasts


def test_resolved_model_section_is_the_users_form():
    v1 = load_spec(HERE / "valid.yaml").resolved()["model"]
    assert {"response", "predictor", "group"} <= set(v1) and "formula" not in v1
    assert v1["priors"] == {
        "beta": "normal(0, 100)",
        "group_sd": "uniform(0, 100)",
        "sigma": "uniform(0, 100)",
    }
    v2 = load_spec(HERE / "valid_v2.yaml").resolved()
    assert v2["model"]["formula"] == "y ~ x + x2 + clinic + x:clinic + (x | g)"
    assert "response" not in v2["model"]
    assert v2["model"]["categorical"] == {"clinic": {"reference": "02"}}
    assert v2["model"]["priors"] == {
        "beta": {"Intercept": "normal(0, 100)", "default": "normal(0, 10)"},
        "group_sd": "half_normal(5)",
        "group_corr": "lkj(2)",
        "sigma": "exponential(0.5)",
    }
    assert v2["forecasts"][1] == {"group": "NO", "at": {"x": 3, "x2": 0, "clinic": "02"}}


def test_model_section_problems_are_all_reported():
    raw, lines = parse_yaml(
        "name: m\ndata: {path: x.csv}\nmodel:\n  formula: y ~ log(x) + (1 | g)\n"
        "  family: poisson\n  categorical: 5\n"
    )
    with pytest.raises(SpecError) as err:
        validate_spec(raw, None, lines)
    assert [p.split(": ")[1] for p in err.value.problems] == [
        "model.formula",
        "model.family",
        "model.categorical",
    ]


# A model section of any shape: a SpecError with one line per problem, or a spec whose
# resolved form validates again to the same thing.
MODEL_KEYS = ["formula", "response", "predictor", "group", "family", "categorical", "priors"]
MODEL_KEYS += ["parameterisation", "trials", "beta", "group_sd", "group_corr", "sigma", "default"]
MODEL_KEYS += ["reference", "Intercept", "x", "trt", "trt[b]", "slope_mu", "error_sigma"]
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "normal(0, 1)",
            "half_normal(2)",
            "lkj(2)",
            "lkj(0)",
            "gaussian",
            "poisson",
            "y ~ x + (x | g)",
            "y ~ x + trt + (1 + x || g)",
            "y ~ log(x) + (1 | g)",
            "x",
            "trt",
            "g",
            "b",
            "01",
        ]
    )
)
_sections = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(MODEL_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.dictionaries(st.sampled_from(MODEL_KEYS), _sections, max_size=5))
def test_any_model_section_is_a_spec_error_or_runs_again(section):
    raw = {
        "name": "p",
        "data": {"path": str(HERE / "data" / "model_columns.csv")},
        "model": {"formula": "y ~ x + trt + (x | g)", **section},
        "forecasts": [{"group": "a", "at": {"x": 1, "trt": "b"}}],
    }
    try:
        spec = validate_spec(raw)
    except SpecError as exc:
        assert exc.problems and all(p.strip() and "\n" not in p for p in exc.problems)
        return
    again = validate_spec(yaml.safe_load(yaml.safe_dump(spec.resolved())))
    assert again.resolved() == spec.resolved()


_real = st.sampled_from(
    ["normal(0, 1)", "student_t(3, 0, 2.5)", {"dist": "normal", "mu": 0, "sigma": 5}]
)
_positive = st.sampled_from(["half_normal(2)", "exponential(1)", "uniform(0, 100)"])
_priors = st.fixed_dictionaries(
    {},
    optional={
        "beta": _real
        | st.dictionaries(st.sampled_from(["Intercept", "x", "default"]), _real, max_size=2),
        "group_sd": _positive,
        "group_corr": st.sampled_from(["lkj(1)", "lkj(2.5)"]),
        "sigma": _positive,
    },
)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(
        [
            "y ~ x + (x | g)",
            "y ~ x + x2 + (x || g)",
            "y ~ 0 + x + (0 + x | g)",
            "y ~ x*x2 + (x | g)",
        ]
    ),
    _priors,
    st.sampled_from([None, ["x2"], {"x2": {"reference": "01"}}]),
)
def test_valid_model_sections_run_again_as_they_resolve(formula, priors, categorical):
    model = {"formula": formula, "priors": priors}
    if categorical is not None:
        model["categorical"] = categorical
    raw = {"name": "p", "data": {"path": str(HERE / "data" / "model_columns.csv")}, "model": model}
    try:
        spec = validate_spec(raw)
    except SpecError as exc:  # e.g. x2 declared categorical but not in the formula, lkj with ||
        assert all("\n" not in p for p in exc.problems)
        return
    text = yaml.safe_dump(spec.resolved(), sort_keys=False)
    again_raw, lines = parse_yaml(text)
    again = validate_spec(again_raw, None, lines)
    assert again.resolved() == spec.resolved()
    assert again.model.formula_text() == formula
