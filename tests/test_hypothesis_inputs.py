"""Property tests: whatever a user writes, the spec loader and prior parser answer with their own error.

A fixed, derandomised budget keeps CI repeatable. The only exceptions allowed to
escape are framework.SpecError (spec loader) and PriorError (prior parser); a
prior that parses renders as a family name and numbers only, and the generated
Stan program contains only template text (nothing of the formula, the column
names or the priors a user wrote). Specs are damaged in both forms: v1
(response/predictor/group) and v2 (formula, categorical, priors by class).
"""

from __future__ import annotations

import contextlib
import copy
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import FAMILIES, Column, ModelError, SpecError
from framework.model.model import build_model
from framework.model.prior_classes import (
    BETA,
    GROUP_CORR,
    GROUP_SD,
    LKJ,
    V1_ALIASES,
    parse_lkj,
    parse_priors,
)
from framework.model.priors import Prior, PriorError, parse_prior
from framework.spec.load import validate_spec
from framework.spec.yaml_source import parse_yaml

BUDGET = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

VALID = {
    "name": "prop",
    "data": {
        "simulate": {
            "groups": 3,
            "x": [0, 1, 2],
            "seed": 1,
            "truth": {
                "intercept_mu": 0,
                "intercept_sigma": 1,
                "slope_mu": 0,
                "slope_sigma": 1,
                "error_sigma": 1,
            },
        }
    },
    "model": {
        "response": "y",
        "predictor": "x",
        "group": "g",
        "priors": {"intercept_mu": "normal(0, 100)", "error_sigma": "uniform(0, 100)"},
    },
    "backend": {"name": "fake", "options": {}},
    "sampler": {"chains": 2, "draws": 10, "seed": 1, "target_accept": 0.8},
    "forecasts": [{"group": "g1", "x": 3}],
    "output": {"plots": False},
}
VALID_V2 = {
    "name": "prop2",
    "data": {
        "simulate": {
            "groups": 3,
            "columns": {"x": [0, 1, 2], "c": {"levels": ["a", "b"]}},
            "rows_per_group": 4,
            "seed": 1,
            "truth": {
                "beta": {"Intercept": 0, "x": 1, "c[b]": 0.5},
                "group_sd": {"Intercept": 1, "x": 0.5},
                "group_corr": {"Intercept,x": 0.3},
                "sigma": 1,
            },
        }
    },
    "model": {
        "formula": "y ~ x + c + (x | g)",
        "family": "gaussian",
        "categorical": {"c": {"reference": "a"}},
        "priors": {
            "beta": {"Intercept": "normal(0, 100)", "default": "normal(0, 10)"},
            "group_sd": "half_normal(5)",
            "group_corr": "lkj(2)",
            "sigma": "exponential(1)",
        },
    },
    "backend": {"name": "fake", "options": {}},
    "sampler": {"chains": 2, "draws": 10, "seed": 1, "target_accept": 0.8},
    "forecasts": [{"group": "g1", "at": {"x": 3, "c": "b"}}],
    "output": {"plots": False},
}
VALID_SPECS = st.sampled_from([VALID, VALID_V2])
# Prior classes, and whether each is a standard deviation (positive).
CLASSES = {BETA: False, GROUP_SD: True, "sigma": True}
KEYS = sorted(
    {
        "name",
        "data",
        "model",
        "backend",
        "sampler",
        "forecasts",
        "output",
        "path",
        "simulate",
        "missing",
        "groups",
        "x",
        "truth",
        "seed",
        "response",
        "predictor",
        "group",
        "priors",
        "options",
        "chains",
        "draws",
        "warmup",
        "target_accept",
        "method",
        "dir",
        "plots",
        "dist",
        "mu",
        "sigma",
        "lower",
        "upper",
        *V1_ALIASES,
        *CLASSES,
        GROUP_CORR,
        "formula",
        "family",
        "categorical",
        "reference",
        "parameterisation",
        "columns",
        "rows_per_group",
        "levels",
        "values",
        "normal",
        "uniform",
        "at",
        "default",
        "Intercept",
        "c[b]",
        "eta",
        "lines",
        "raw",
        "source",
    }
)

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "normal(0, 1)",
            "uniform(0, -1)",
            "../x",
            "",
            ".nan",
            "\x00",
            "runs/../../etc",
            "!!python/name:os.system",
            "y ~ x + (x | g)",
            "y ~ x * c + (1 | g)",
            "y ~ exp(x) + (x | g)",
            "y ~ x + (x | g/h)",
            "lkj(2)",
            "lkj(0)",
        ]
    )
)
keys = st.text(max_size=12) | st.sampled_from(KEYS)
structures = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)

# Fragments that make YAML parsers work hard: flow brackets, tags, anchors, tabs, quotes, documents.
YAML_BITS = [
    "name: x\n",
    "data:\n",
    "  simulate:\n",
    "  - ",
    "{",
    "}",
    "[",
    "]",
    ": ",
    ", ",
    "'",
    '"',
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!tag ",
    "&a ",
    "*a",
    "<<: *a\n",
    "\t",
    "\n",
    "---\n",
    "...\n",
    "? ",
    "|\n  ",
    ">\n  ",
    "#",
    "%YAML 1.1\n",
    "\\",
    "\ufeff",
    "normal(0, 1)",
    "1e400",
    ".inf",
    "0x1F",
    "~",
    "null",
    "yes",
    "chains: 0\n",
    "model:\n",
]
yaml_text = st.lists(st.sampled_from(YAML_BITS) | st.text(max_size=8), max_size=30).map("".join)

NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?"
RENDERED = re.compile(rf"^(?:{'|'.join(FAMILIES)})\((?:{NUMBER}(?:, {NUMBER})*)?\)$")


def _set_path(spec: dict, path: list, value) -> dict:
    """A copy of `spec` with the value at `path` (as far as it exists) replaced."""
    out = copy.deepcopy(spec)
    node = out
    for key in path[:-1]:
        nxt = node.get(key) if isinstance(node, dict) else None
        if not isinstance(nxt, dict):
            break
        node = nxt
    if isinstance(node, dict):
        node[path[-1]] = value
    return out


@BUDGET
@given(yaml_text)
def test_parse_yaml_raises_only_spec_error(text):
    try:
        raw, lines = parse_yaml(text, "prop.yaml")
    except SpecError as exc:
        assert str(exc).startswith("prop.yaml"), str(exc)
        return
    if isinstance(raw, dict):
        _validate_or_spec_error(raw)


@BUDGET
@given(st.text(max_size=200))
def test_parse_yaml_of_any_text_raises_only_spec_error(text):
    with contextlib.suppress(SpecError):
        parse_yaml(text)


@BUDGET
@given(structures)
def test_validate_spec_of_any_structure_raises_only_spec_error(raw):
    _validate_or_spec_error(raw)


@BUDGET
@given(VALID_SPECS, st.lists(st.sampled_from(KEYS), min_size=1, max_size=4), structures)
def test_validate_spec_of_a_damaged_valid_spec_raises_only_spec_error(valid, path, value):
    _validate_or_spec_error(_set_path(valid, path, value))


@BUDGET
@given(VALID_SPECS, st.sampled_from([["sampler", "chains"], ["model", "formula"],
                                     ["model", "priors", "beta"], ["model", "categorical"]]),
       structures)  # fmt: skip
def test_damaged_spec_round_trips_through_yaml(valid, path, value):
    # The same damage written as YAML text and parsed back: same answer, a SpecError or a Spec.
    raw = _set_path(valid, path, value)
    try:
        text = yaml.safe_dump(raw, allow_unicode=True)
    except yaml.YAMLError:
        return
    parsed, _ = parse_yaml(text)
    _validate_or_spec_error(parsed)


def _validate_or_spec_error(raw):
    try:
        spec = validate_spec(raw)
    except SpecError as exc:
        assert exc.problems and all(p.strip() for p in exc.problems)
        assert all("\n" not in p for p in exc.problems), exc.problems  # one line per problem
        return
    # A valid spec resolves and hashes without surprises.
    spec.resolved()
    assert len(spec.digest()) == 64


prior_text = st.builds(
    lambda fam, args, spaces: f"{fam}({(',' + spaces).join(args)})",
    st.sampled_from([*FAMILIES, "Normal", "normall", "os.system", ""]),
    st.lists(
        st.sampled_from(
            [
                "0",
                "1",
                "-1",
                "100",
                "1e3",
                "1e400",
                ".5",
                "1.",
                "-0",
                "+2",
                "nan",
                "x",
                "1_000",
                "0x10",
                "2*3",
                "1e-320",
            ]
        )
        | st.text(max_size=4),
        max_size=4,
    ),
    st.sampled_from(["", " ", "  "]),
)
prior_mapping = st.builds(
    lambda fam, args: {"dist": fam, **args},
    st.sampled_from([*FAMILIES, "nope"]) | st.text(max_size=5) | st.integers(),
    st.dictionaries(
        st.sampled_from(["mu", "sigma", "nu", "lower", "upper", "rate", "alpha", "beta", "x"]),
        st.floats() | st.integers() | st.text(max_size=3) | st.none(),
        max_size=4,
    ),
)
prior_input = prior_text | prior_mapping | structures | st.text(max_size=300)


@BUDGET
@given(prior_input, st.sampled_from(sorted(CLASSES)))
def test_parse_prior_raises_only_prior_error(value, parameter):
    try:
        prior = parse_prior(value, parameter, CLASSES[parameter])
    except PriorError as exc:
        assert "\n" not in str(exc)
        return
    _check_rendering(prior, parameter)


@BUDGET
@given(
    st.sampled_from(sorted(FAMILIES)),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=3),
    st.sampled_from(sorted(CLASSES)),
)
def test_every_valid_prior_renders_as_family_and_numbers(family, args, parameter):
    n = len(FAMILIES[family].params)
    try:
        prior = parse_prior(
            {"dist": family, **dict(zip(FAMILIES[family].params, (args * 3)[:n], strict=True))},
            parameter,
            CLASSES[parameter],
        )
    except PriorError:
        return
    _check_rendering(prior, parameter)


def _check_rendering(prior: Prior, parameter: str):
    text = str(prior)
    assert RENDERED.match(text), text
    assert all(isinstance(a, float) for a in prior.args)
    # The text reads back as exactly the same prior: nothing is lost by rendering.
    assert parse_prior(text, parameter, CLASSES[parameter]) == prior


lkj_input = (
    st.builds(
        lambda a: f"lkj({a})", st.sampled_from(["0", "1", "-1", "2.5", "1e400", "nan", "x", ""])
    )
    | st.builds(
        lambda v: {"dist": "lkj", "eta": v}, st.floats() | st.integers() | st.text(max_size=3)
    )
    | structures
)


@BUDGET
@given(lkj_input)
def test_parse_lkj_raises_only_prior_error(value):
    try:
        lkj = parse_lkj(value)
    except PriorError as exc:
        assert "\n" not in str(exc)
        return
    assert lkj.eta > 0 and parse_lkj(str(lkj)) == lkj  # renders as lkj(number) and reads back


@BUDGET
@given(
    st.dictionaries(
        st.sampled_from([*CLASSES, GROUP_CORR, *V1_ALIASES, "betaa"]) | st.text(max_size=6),
        prior_text | prior_mapping | lkj_input
        | st.dictionaries(st.sampled_from(["Intercept", "x", "default", "c[b]"]) | st.text(max_size=4),
                          prior_text | prior_mapping, max_size=3),
        max_size=4,
    )
)  # fmt: skip
def test_parse_priors_by_class_raises_only_prior_error(raw):
    try:
        parsed = parse_priors(raw, ("sigma",))
    except PriorError as exc:
        assert "\n" not in str(exc)
        return
    for key, value in parsed.items():
        values = value.values() if isinstance(value, dict) else [value]
        for prior in values:
            assert isinstance(prior, LKJ if key == GROUP_CORR else Prior)


# Formulas of every program shape: q = 1, 2 and 3 group terms, independent and correlated.
# Column names no Stan program would use, so finding one in a program means it was pasted in.
FORMULAS = [
    "outcome ~ dose + (1 | patient)",
    "outcome ~ dose + (dose || patient)",
    "outcome ~ dose + (dose | patient)",
    "outcome ~ dose + clinic + dose:clinic + (dose | patient)",
    "outcome ~ dose + weight + (dose + weight | patient)",
    "outcome ~ dose + weight + (dose + weight || patient)",
]
STAND_IN = {
    "outcome": Column("outcome", "numeric"),
    "dose": Column("dose", "numeric"),
    "weight": Column("weight", "numeric"),
    "clinic": Column("clinic", "categorical", ("north", "south", "east")),
    "patient": Column("patient", "categorical"),
}


@pytest.fixture(scope="module")
def stan_program():
    program = pytest.importorskip(
        "framework_stan.program", reason="the Stan backend plugin is not installed"
    )
    families = tuple(sorted(set(FAMILIES) & set(program.STATEMENTS)))
    universe = set()
    for method in program.METHODS:
        for parameterisation in program.PARAMETERISATIONS:
            for q, correlated in ((1, False), (2, False), (2, True), (3, False), (3, True)):
                shape = program.Shape(method, parameterisation, q, correlated, families)
                universe.update(program.generate(shape).splitlines())
    return program, universe


# Priors that parse (every family: real-line ones for beta, positive ones for the standard
# deviations), so that enough generated specs get as far as a program; junk priors test
# the refusals above.
REAL_PRIORS = st.sampled_from(
    ["normal(0, 1e3)", "student_t(3, 0, 2.5)", "cauchy(0, 5)", "uniform(-10, 100)"]
)
POSITIVE_PRIORS = st.sampled_from(
    ["uniform(0, 100)", "half_normal(5)", "half_cauchy(2)", "half_student_t(3, 1)",
     "exponential(0.5)", "gamma(2, 0.1)", "inv_gamma(1, 1)", "lognormal(0, 1)"]
)  # fmt: skip


def class_prior(good):
    """A class's prior: mostly one that parses, as text or by term with a default; else junk."""
    by_term = st.fixed_dictionaries({"Intercept": good, "default": good | prior_text})
    return good | good | by_term | prior_text | prior_mapping


@BUDGET
@given(
    st.fixed_dictionaries(
        {
            BETA: class_prior(REAL_PRIORS),
            GROUP_SD: class_prior(POSITIVE_PRIORS),
            "sigma": class_prior(POSITIVE_PRIORS),
        }
    ),
    st.sampled_from(FORMULAS),
    st.sampled_from(["marginal", "full"]),
    st.sampled_from(["centred", "non_centred"]),
)
def test_generated_stan_program_holds_only_template_text(
    stan_program, priors, formula, method, parameterisation
):
    program, universe = stan_program
    raw = _set_path(VALID_V2, ["model", "priors"], priors)
    raw = _set_path(raw, ["model", "formula"], formula)
    raw["forecasts"] = []
    used = [c for c in ("dose", "weight", "clinic") if c in formula]
    levels = {"levels": list(STAND_IN["clinic"].levels)}
    raw["data"]["simulate"]["columns"] = {c: levels if c == "clinic" else [0, 1, 2] for c in used}
    raw["model"]["categorical"] = {"clinic": {"reference": "north"}} if "clinic" in used else {}
    try:
        spec = validate_spec(raw)
        model = build_model(
            spec.model.parsed_formula(), STAND_IN, spec.model.family, spec.model.priors
        )
    except (SpecError, ModelError):
        return

    class Problem:  # what program_for reads
        pass

    problem = Problem()
    problem.model, problem.method, problem.parameterisation = model, method, parameterisation
    code = program.program_for(problem)
    assert set(code.splitlines()) <= universe
    for name in STAND_IN:  # nothing the user named (columns, levels, terms) is in the program
        assert name not in code, name
    for level in STAND_IN["clinic"].levels:
        assert level not in code, level
