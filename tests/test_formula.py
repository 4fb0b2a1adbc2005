"""The formula grammar: what it reads, what it refuses, and that its canonical text reads back the same."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.errors import SpecError
from framework.model.formula import FormulaError, parse_formula, quote, v1_formula
from framework.spec.load import validate_spec

BUDGET = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_v1_form_is_independent_intercept_and_slope():
    f = parse_formula(v1_formula("rainfall", "year_numeric", "state"))
    assert f.response == "rainfall"
    assert f.terms == (("year_numeric",),) and f.intercept
    (block,) = f.blocks
    assert block.group == "state" and not block.correlated
    assert block.terms == (("year_numeric",),) and block.intercept


@pytest.mark.parametrize(
    ("text", "terms", "intercept"),
    [
        ("y ~ x + (x | g)", [("x",)], True),
        ("y ~ 1 + x + (1 | g)", [("x",)], True),
        ("y ~ 0 + x + (x | g)", [("x",)], False),
        ("y ~ x - 1 + (x | g)", [("x",)], False),
        ("y ~ a*b + (1 | g)", [("a",), ("b",), ("a", "b")], True),
        (
            "y ~ a*b*c + (1 | g)",
            [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")],
            True,
        ),
        ("y ~ a + b + a:b + (1 | g)", [("a",), ("b",), ("a", "b")], True),
        ("y ~ a + b + b:a + a:b + (1 | g)", [("a",), ("b",), ("b", "a")], True),  # b:a is a:b
        ("y ~ a + a + (1 | g)", [("a",)], True),
        ("y ~ `log x` + `2nd-dose` + (1 | g)", [("log x",), ("2nd-dose",)], True),
        ("y~x+(x|g)", [("x",)], True),
        ("y ~ x.1 + (1 | g)", [("x.1",)], True),
    ],
)
def test_accepted_formulas(text, terms, intercept):
    f = parse_formula(text)
    assert list(f.terms) == terms
    assert f.intercept is intercept


def test_group_blocks_correlated_or_independent():
    corr = parse_formula("y ~ x + (x | g)").blocks[0]
    indep = parse_formula("y ~ x + (x || g)").blocks[0]
    assert corr.correlated and not indep.correlated
    no_intercept = parse_formula("y ~ x + (0 + x | g)").blocks[0]
    assert not no_intercept.intercept and no_intercept.terms == (("x",),)
    minus_one = parse_formula("y ~ x + (x - 1 | g)").blocks[0]
    assert not minus_one.intercept
    assert parse_formula("y ~ x + (1 | `county name`)").blocks[0].group == "county name"


def test_columns_in_order_response_first_group_last():
    f = parse_formula("y ~ x1 + x2:trt + (x1 | g)")
    assert f.columns() == ["y", "x1", "x2", "trt", "g"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("y ~ log(x) + (1 | g)", "calls log(...)"),
        ("y ~ x + I(x^2) + (1 | g)", "calls I(...)"),
        ("log(y) ~ x + (1 | g)", "calls log(...)"),
        ("y ~ x + (1 | g) + poly(x, 2)", "calls poly(...)"),
        ("y ~ x + exp(x) + (1 | g)", "calls exp(...)"),
        ("y ~ x + x^2 + (1 | g)", "cannot read '^2"),
        ("y ~ x + (1 | a/b)", "nested (a/b)"),
        ("y ~ x + (1 | a:b)", "groups by one column only"),
        ("y ~ x + (1 | g", "ends too early"),
        ("y ~ x - x + (1 | g)", "'-' may only remove the intercept"),
        ("y ~ x + 2 + (1 | g)", "has the number 2"),
        ("y ~ x + ((1 | g) | h)", "cannot sit inside another"),
        ("y ~ x + (x | (1 | g))", "needs a grouping column"),
        ("y ~ x + (x)", "a parenthesis holds a group term"),
        ("~ x + (1 | g)", "must start with the response"),
        ("y x + (1 | g)", "needs '~'"),
        ("y ~ x + (x | )", "needs a grouping column"),
        ("y ~ x; import os", "cannot read ';"),
        ("y ~ x + `` + (1 | g)", "cannot read '`"),
        ("y ~ x + 'x' + (1 | g)", "cannot read"),
        ("", "is empty"),
        ("y ~ " + "x + " * 600 + "(1 | g)", "characters long"),
    ],
)
def test_refused_formulas_say_what_to_write(text, says):
    with pytest.raises(FormulaError) as err:
        parse_formula(text)
    assert says in str(err.value)
    assert "\n" not in str(err.value)


# --- properties ------------------------------------------------------------------------
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,6}", fullmatch=True) | st.text(
    alphabet=st.characters(blacklist_characters="`", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
)
chains = st.lists(names, min_size=1, max_size=3).map(lambda ns: ":".join(map(quote, ns)))
parts = st.lists(chains | st.sampled_from(["1", "0"]), min_size=1, max_size=4)


@st.composite
def formulas(draw):
    rhs = " + ".join(draw(parts))
    if draw(st.booleans()):
        rhs += " - 1"
    block = " + ".join(draw(parts))
    bar = draw(st.sampled_from(["|", "||"]))
    return f"{quote(draw(names))} ~ {rhs} + ({block} {bar} {quote(draw(names))})"


@BUDGET
@given(formulas())
def test_canonical_text_reads_back_as_the_same_formula(text):
    f = parse_formula(text)
    again = parse_formula(str(f))
    assert again == f
    assert str(again) == str(f)


@BUDGET
@given(st.text(max_size=60))
def test_any_text_parses_or_raises_formula_error(text):
    try:
        f = parse_formula(text)
    except FormulaError as exc:
        assert "\n" not in str(exc)
        return
    assert parse_formula(str(f)) == f


@BUDGET
@given(st.lists(chains, min_size=1, max_size=3))
def test_star_is_every_combination(factors):
    f = parse_formula(f"y ~ {' * '.join(factors)} + (1 | g)")
    expected = parse_formula(f"y ~ {' + '.join(factors)} + (1 | g)")
    # a*b has a, b and a:b; every main effect comes first, in order, then the interactions.
    assert f.terms[: len(expected.terms)] == expected.terms
    assert len(f.terms) <= 2 ** len(factors) - 1


V2 = {
    "name": "prop",
    "data": {"path": "x.csv"},
    "model": {"formula": "y ~ x + (x | g)"},
}


@BUDGET
@given(st.text(max_size=60))
def test_any_formula_in_a_spec_is_a_spec_error_or_valid(text):
    spec = {**V2, "model": {"formula": text}}
    try:
        validate_spec(spec)
    except SpecError as exc:
        assert all("\n" not in p for p in exc.problems)
        assert any(":" in p for p in exc.problems)
