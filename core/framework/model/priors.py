"""Priors: a closed set of distributions with numeric arguments.

A prior is written either as text, `normal(0, 100)`, or as a mapping,
`{dist: normal, mu: 0, sigma: 100}`. Both are parsed into a `Prior` made only
of a family name from `FAMILIES` and floats, so nothing a user writes is ever
evaluated or pasted into generated code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Family:
    """A distribution family: its argument names and its support."""

    name: str
    params: tuple[str, ...]
    support: str  # "real", "positive" or "interval" (uniform)
    positive_params: tuple[str, ...] = ()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("normal", ("mu", "sigma"), "real", ("sigma",)),
        Family("student_t", ("nu", "mu", "sigma"), "real", ("nu", "sigma")),
        Family("cauchy", ("mu", "sigma"), "real", ("sigma",)),
        Family("uniform", ("lower", "upper"), "interval"),
        Family("half_normal", ("sigma",), "positive", ("sigma",)),
        Family("half_cauchy", ("sigma",), "positive", ("sigma",)),
        Family("half_student_t", ("nu", "sigma"), "positive", ("nu", "sigma")),
        Family("exponential", ("rate",), "positive", ("rate",)),
        Family("gamma", ("alpha", "beta"), "positive", ("alpha", "beta")),
        Family("inv_gamma", ("alpha", "beta"), "positive", ("alpha", "beta")),
        Family("lognormal", ("mu", "sigma"), "positive", ("sigma",)),
    )
}


# Each part of a number can match in one way only, so a failing match cannot backtrack
# quadratically (`\d+\.?\d*` on a long run of digits did).
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
MAX_PRIOR_TEXT = 200
_TEXT = re.compile(rf"^\s*([a-z_]+)\s*\(\s*((?:{_NUMBER})(?:\s*,\s*{_NUMBER})*)?\s*\)\s*$")


EXAMPLES = {
    "normal": "normal(0, 100)",
    "student_t": "student_t(3, 0, 10)",
    "cauchy": "cauchy(0, 5)",
    "uniform": "uniform(0, 100)",
    "half_normal": "half_normal(10)",
    "half_cauchy": "half_cauchy(5)",
    "half_student_t": "half_student_t(3, 10)",
    "exponential": "exponential(1)",
    "gamma": "gamma(2, 0.1)",
    "inv_gamma": "inv_gamma(3, 2)",
    "lognormal": "lognormal(0, 1)",
}


def format_number(value: float) -> str:
    """The shortest text that reads back as exactly `value` (100.0 -> '100')."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _shown(value: object) -> str:
    # User text quoted and cut short: messages stay one line whatever was written.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class PriorError(ValueError):
    """A prior cannot be parsed or its arguments are invalid."""


@dataclass(frozen=True)
class Prior:
    """A parsed prior: a family from the closed set and its float arguments."""

    family: str
    args: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.family}({', '.join(format_number(a) for a in self.args)})"

    @property
    def kwargs(self) -> dict[str, float]:
        return dict(zip(FAMILIES[self.family].params, self.args, strict=True))

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The support as (lower, upper); None where unbounded."""
        support = FAMILIES[self.family].support
        if support == "interval":
            return self.args[0], self.args[1]
        if support == "positive":
            return 0.0, None
        return None, None

    def scipy(self):
        """The frozen scipy.stats distribution, for reference computations."""
        from scipy import stats  # slow to import; only reference computations need it

        k = self.kwargs
        match self.family:
            case "normal":
                return stats.norm(k["mu"], k["sigma"])
            case "student_t":
                return stats.t(k["nu"], k["mu"], k["sigma"])
            case "cauchy":
                return stats.cauchy(k["mu"], k["sigma"])
            case "uniform":
                return stats.uniform(k["lower"], k["upper"] - k["lower"])
            case "half_normal":
                return stats.halfnorm(0, k["sigma"])
            case "half_cauchy":
                return stats.halfcauchy(0, k["sigma"])
            case "half_student_t":
                return stats.t(k["nu"], 0, k["sigma"])  # times 2 on the positive half
            case "exponential":
                return stats.expon(0, 1 / k["rate"])
            case "gamma":
                return stats.gamma(k["alpha"], scale=1 / k["beta"])
            case "inv_gamma":
                return stats.invgamma(k["alpha"], scale=k["beta"])
            case "lognormal":
                return stats.lognorm(k["sigma"], scale=math.exp(k["mu"]))
        raise AssertionError(self.family)

    def logpdf(self, value):
        """Log density at `value` (up to the constant of half_student_t)."""
        return np.asarray(self.scipy().logpdf(value))


def parse_prior(value: object, parameter: str, positive: bool) -> Prior:
    """Parse a prior written as text or as a mapping; raise PriorError with the reason.

    `positive`: the parameter is a standard deviation, so the prior must allow positive
    values only; otherwise it must allow negative ones.
    """
    if isinstance(value, str):
        family, args = _parse_text(value)
    elif isinstance(value, dict):
        family, args = _parse_mapping(value)
    else:
        raise PriorError(
            "must be a prior written as text, e.g. normal(0, 100), or as a mapping, e.g. "
            f"{{dist: normal, mu: 0, sigma: 100}} (got {_shown(value)})"
        )
    prior = Prior(family, args)
    _check_arguments(prior)
    _check_support(prior, parameter, positive)
    return prior


def _parse_text(text: str) -> tuple[str, tuple[float, ...]]:
    if len(text) > MAX_PRIOR_TEXT:
        raise PriorError(
            f"a prior is a family and a few numbers, not {len(text)} characters; e.g. normal(0, 100)"
        )
    match = _TEXT.match(text)
    if not match:
        raise PriorError(
            f"cannot read {_shown(text)} as a prior; write a family name and plain numbers, "
            "e.g. normal(0, 100)"
        )
    family = _known_family(match.group(1))
    numbers = match.group(2)
    args = tuple(float(a) for a in numbers.split(",")) if numbers else ()
    expected = FAMILIES[family].params
    if len(args) != len(expected):
        raise PriorError(
            f"{family} takes {len(expected)} argument(s) ({', '.join(expected)}), got {len(args)}; "
            f"e.g. {EXAMPLES[family]}"
        )
    return family, args


def _parse_mapping(mapping: dict) -> tuple[str, tuple[float, ...]]:
    if "dist" not in mapping:
        raise PriorError(
            "a prior written as a mapping needs 'dist'; e.g. {dist: normal, mu: 0, sigma: 1}"
        )
    if not isinstance(mapping["dist"], str):
        raise PriorError(
            f"'dist' must be a family name (got {_shown(mapping['dist'])}); e.g. dist: normal"
        )
    family = _known_family(mapping["dist"])
    expected = FAMILIES[family].params
    given = {k: v for k, v in mapping.items() if k != "dist"}
    unknown = sorted(str(k) for k in given if k not in expected)
    missing = [p for p in expected if p not in given]
    if unknown or missing:
        raise PriorError(
            f"{family} takes exactly {', '.join(expected)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + f"; e.g. {{dist: {family}, {', '.join(f'{p}: {a}' for p, a in zip(expected, _example(family), strict=True))}}}"
        )
    args = []
    for name in expected:
        v = given[name]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise PriorError(
                f"{family} argument {name} must be a number (got {_shown(v)}); e.g. {EXAMPLES[family]}"
            )
        args.append(float(v))
    return family, tuple(args)


def _example(family: str) -> list[str]:
    return EXAMPLES[family].partition("(")[2].rstrip(")").split(", ")


def _known_family(name: str) -> str:
    if name in FAMILIES:
        return name
    import difflib

    close = difflib.get_close_matches(name, FAMILIES, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise PriorError(
        f"unknown distribution {_shown(name)}; {hint}the known ones are: {', '.join(FAMILIES)}"
    )


def _check_arguments(prior: Prior) -> None:
    for name, value in prior.kwargs.items():
        if not math.isfinite(value):
            raise PriorError(
                f"{prior.family} argument {name} must be a finite number (got {value}); e.g. {EXAMPLES[prior.family]}"
            )
    for name in FAMILIES[prior.family].positive_params:
        if prior.kwargs[name] <= 0:
            raise PriorError(
                f"{prior.family} argument {name} must be > 0 (got {format_number(prior.kwargs[name])}); "
                f"e.g. {EXAMPLES[prior.family]}"
            )
    if prior.family == "uniform" and prior.args[1] <= prior.args[0]:
        raise PriorError(
            f"uniform upper ({format_number(prior.args[1])}) must be greater than lower "
            f"({format_number(prior.args[0])}); write uniform(LOWER, UPPER), e.g. uniform(0, 100)"
        )


def _check_support(prior: Prior, parameter: str, positive: bool) -> None:
    if not positive:
        if FAMILIES[prior.family].support == "positive":
            raise PriorError(
                f"{parameter} can be negative, but {prior.family} only allows positive values: "
                "use normal, student_t, cauchy or uniform"
            )
        return
    lower, _ = prior.bounds
    if lower is None or lower < 0:
        raise PriorError(
            f"{parameter} is a standard deviation, so its prior must allow positive values only: "
            f"use e.g. half_normal(10), exponential(1) or uniform(0, 100), not {prior}"
        )
