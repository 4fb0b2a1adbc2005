"""Property tests: whatever a user writes, the spec loader and prior parser answer with their own error.

A fixed, derandomised budget keeps CI repeatable. The only exceptions allowed to
escape are framework.SpecError (spec loader) and PriorError (prior parser); a
prior that parses renders as a family name and numbers only, and the generated
Stan program contains only template text.
"""

from __future__ import annotations

import contextlib
import copy
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import FAMILIES, HYPERPARAMETERS, SpecError
from framework.priors import Prior, PriorError, parse_prior
from framework.spec import validate_spec
from framework.yaml_source import parse_yaml

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
        *HYPERPARAMETERS,
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
@given(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4), structures)
def test_validate_spec_of_a_damaged_valid_spec_raises_only_spec_error(path, value):
    _validate_or_spec_error(_set_path(VALID, path, value))


@BUDGET
@given(structures)
def test_damaged_spec_round_trips_through_yaml(value):
    # The same damage written as YAML text and parsed back: same answer, a SpecError or a Spec.
    raw = _set_path(VALID, ["sampler", "chains"], value)
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
@given(prior_input, st.sampled_from(HYPERPARAMETERS))
def test_parse_prior_raises_only_prior_error(value, parameter):
    try:
        prior = parse_prior(value, parameter)
    except PriorError as exc:
        assert "\n" not in str(exc)
        return
    _check_rendering(prior, parameter)


@BUDGET
@given(
    st.sampled_from(sorted(FAMILIES)),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=3),
    st.sampled_from(HYPERPARAMETERS),
)
def test_every_valid_prior_renders_as_family_and_numbers(family, args, parameter):
    n = len(FAMILIES[family].params)
    try:
        prior = parse_prior(
            {"dist": family, **dict(zip(FAMILIES[family].params, (args * 3)[:n], strict=True))},
            parameter,
        )
    except PriorError:
        return
    _check_rendering(prior, parameter)


def _check_rendering(prior: Prior, parameter: str):
    text = str(prior)
    assert RENDERED.match(text), text
    assert all(isinstance(a, float) for a in prior.args)
    # The text reads back as exactly the same prior: nothing is lost by rendering.
    assert parse_prior(text, parameter) == prior


@pytest.fixture(scope="module")
def stan_program():
    program = pytest.importorskip(
        "framework_stan.program", reason="the Stan backend plugin is not installed"
    )
    families = sorted(set(FAMILIES) & set(program.STATEMENTS))
    universe = set()
    for method in program.METHODS:
        for parameterisation in program.PARAMETERISATIONS:
            for family in families:
                text = program.generate(
                    method, parameterisation, dict.fromkeys(HYPERPARAMETERS, family)
                )
                universe.update(text.splitlines())
    return program, universe


@BUDGET
@given(
    st.fixed_dictionaries({h: prior_text | prior_mapping for h in HYPERPARAMETERS}),
    st.sampled_from(["marginal", "full"]),
    st.sampled_from(["centred", "non_centred"]),
)
def test_generated_stan_program_holds_only_template_text(
    stan_program, priors, method, parameterisation
):
    program, universe = stan_program
    raw = _set_path(VALID, ["model", "priors"], priors)
    try:
        spec = validate_spec(raw)
    except SpecError:
        return
    parsed = {h: spec.model.prior(h) for h in HYPERPARAMETERS}

    class Problem:  # what program_for and data_for read
        pass

    problem = Problem()
    problem.priors, problem.method, problem.parameterisation = parsed, method, parameterisation
    code = program.program_for(problem)
    assert set(code.splitlines()) <= universe
    for h in HYPERPARAMETERS:
        assert program.prior_data_name(h) in code
