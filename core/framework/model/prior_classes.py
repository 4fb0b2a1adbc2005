"""Priors by parameter class (`beta`, `group_sd`, `group_corr`, family parameters).

A class takes one prior for all its terms, or a mapping of term name to prior
with `default` for the rest. The v1 names (intercept_mu, slope_mu,
intercept_sigma, slope_sigma, error_sigma) are aliases of single terms of a
model with an intercept and one other term. Parsing (the spec's job) and
resolution against a model's terms (the Model's job) are separate steps, so
the spec can check a prior's text before the data are read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .priors import Prior, PriorError, format_number, parse_prior

BETA, GROUP_SD, GROUP_CORR = "beta", "group_sd", "group_corr"
DEFAULT_KEY = "default"
# The v1 prior names: (class, which term) with "slope" the model's one non-intercept term.
V1_ALIASES = {
    "intercept_mu": (BETA, "intercept"),
    "slope_mu": (BETA, "slope"),
    "intercept_sigma": (GROUP_SD, "intercept"),
    "slope_sigma": (GROUP_SD, "slope"),
    "error_sigma": ("sigma", None),
}
V1_POSITIVE = tuple(k for k, (cls, _) in V1_ALIASES.items() if cls != BETA)
_LKJ = re.compile(r"^\s*lkj\s*\(\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\)\s*$")


@dataclass(frozen=True)
class LKJ:
    """The LKJ prior of a correlation matrix: eta = 1 is uniform, larger shrinks towards I."""

    eta: float

    def __str__(self) -> str:
        return f"lkj({format_number(self.eta)})"


DEFAULT_CORR = LKJ(1.0)
DEFAULT_BETA = Prior("normal", (0.0, 100.0))
DEFAULT_GROUP_SD = Prior("uniform", (0.0, 100.0))


def parse_lkj(value: object) -> LKJ:
    """`lkj(eta)` or `{dist: lkj, eta: 2}`; eta > 0."""
    eta = None
    if isinstance(value, str) and (m := _LKJ.match(value)):
        eta = float(m.group(1))
    elif isinstance(value, dict) and value.get("dist") == "lkj" and set(value) == {"dist", "eta"}:
        v = value["eta"]
        eta = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    if eta is None:
        raise PriorError(
            f"a correlation matrix takes an LKJ prior, lkj(eta) with eta > 0, e.g. lkj(2) "
            f"(got {str(value)[:60]!r})"
        )
    if not (math.isfinite(eta) and eta > 0):
        raise PriorError(f"lkj(eta) needs a finite eta > 0 (got {format_number(eta)}); e.g. lkj(2)")
    return LKJ(eta)


def parse_priors(raw: dict | None, family_parameters: tuple[str, ...]) -> dict:
    """Parse the spec's `model.priors` mapping; PriorError messages start with the key path.

    Returns {class or alias: Prior | LKJ | {term or 'default': Prior}}.
    """
    out: dict = {}
    classes = (BETA, GROUP_SD, GROUP_CORR, *family_parameters)
    for key, value in (raw or {}).items():
        if key == GROUP_CORR:
            out[key] = _at(key, lambda v=value: parse_lkj(v))
        elif key in V1_ALIASES:
            positive = V1_ALIASES[key][0] != BETA
            out[key] = _at(key, lambda v=value, k=key, p=positive: parse_prior(v, k, p))
        elif key in classes:
            positive = key != BETA
            if isinstance(value, dict) and "dist" not in value:
                out[key] = {
                    str(term): _at(
                        f"{key}.{term}", lambda v=v, k=key, p=positive: parse_prior(v, k, p)
                    )
                    for term, v in value.items()
                }
            else:
                out[key] = _at(key, lambda v=value, k=key, p=positive: parse_prior(v, k, p))
        else:
            import difflib

            known = [*classes, *V1_ALIASES]
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise PriorError(
                f"{_one_line(key)}: unknown prior class; {hint}use one of {', '.join(known)}"
            )
    return out


def _at(path: str, parse):
    try:
        return parse()
    except PriorError as exc:
        raise PriorError(f"{_one_line(path)}: {exc}") from None


def _one_line(path) -> str:
    """A key as written, escaped if it holds line breaks or other unprintable characters."""
    text = str(path)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def v1_terms(term_names: list[str]) -> dict[str, tuple[str, str | None]] | None:
    """Each v1 name's (class, term) for a model with an intercept and one other term, else None."""
    others = [t for t in term_names if t != "Intercept"]
    if len(others) != 1 or "Intercept" not in term_names:
        return None
    term = {"intercept": "Intercept", "slope": others[0], None: None}
    return {name: (cls, term[which]) for name, (cls, which) in V1_ALIASES.items()}
