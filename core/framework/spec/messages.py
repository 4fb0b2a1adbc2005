"""Messages for schema errors: one line each, `FILE:LINE: yaml.path: what; what to do`."""

from __future__ import annotations

import difflib
import re

from pydantic import ValidationError

from ..model.prior_classes import V1_POSITIVE
from .schema import (
    BackendSpec,
    DaskSpec,
    DataSpec,
    Forecast,
    ModelSpec,
    OutputSpec,
    SamplerSpec,
    Simulate,
    Spec,
    Truth,
    XRange,
    forecast_indices,
)
from .yaml_source import LineMap
from .yaml_source import where as _where


def format_errors(exc: ValidationError, filename: str, lines: LineMap, raw=None) -> list[str]:
    errors = _drop_union_noise(exc.errors())
    given = raw.get("forecasts") if isinstance(raw, dict) else None
    places = forecast_indices(given) if isinstance(given, list) else []
    problems = []
    for err in errors:
        loc = _plain_loc(err["loc"])
        if err["type"] == "at_path":  # a validator's error below the value it validated
            loc += tuple(err["ctx"]["subpath"])
        if loc[:1] == ("forecasts",) and len(loc) > 1 and isinstance(loc[1], int):
            loc = ("forecasts", places[loc[1]] if loc[1] < len(places) else loc[1], *loc[2:])
        if err["type"] == "extra_forbidden" and loc[-1:] != err["loc"][-1:]:
            loc += err["loc"][
                -1:
            ]  # an unknown key named like a union tag ('float') is still the key
        dotted = dotted_path(loc)
        where = _where(filename, lines, loc)
        problems.append(f"{where}: {dotted}: {_message(err, loc)}")
    # A union reports one error per branch; keep each message once.
    return list(dict.fromkeys(problems))


def dotted_path(loc) -> str:
    """`sampler.chains`; a key that is not a plain name is quoted, so a message stays one line."""
    parts = [str(p) if _PLAIN_KEY.match(str(p)) else kind(str(p)) for p in loc]
    return ".".join(parts) or "(top level)"


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,60}$")


def _plain_loc(loc) -> tuple:
    return tuple(p for p in loc if not _is_union_tag(p))


_TYPE_ERRORS = {
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "string_type",
    "dict_type",
    "list_type",
    "model_type",
    "model_attributes_type",
    "is_instance_of",
    "none_required",
}


def _drop_union_noise(errors: list[dict]) -> list[dict]:
    # Each branch of a union (e.g. groups: int | list) reports its own error. When the
    # input fits one branch's type, the other branches' "wrong type" errors are noise.
    keyed = [(_plain_loc(e["loc"]), e) for e in errors]
    out = []
    for loc, err in keyed:
        in_union = any(_is_union_tag(p) for p in err["loc"])
        if in_union and err["type"] in _TYPE_ERRORS:
            others = [
                e
                for lo, e in keyed
                if e is not err
                and lo[: len(loc)] == loc
                and not (lo == loc and e["type"] in _TYPE_ERRORS)
            ]
            if others:
                continue
        out.append(err)
    # Several type errors left at one place (no branch fits): say it once.
    seen: set[tuple] = set()
    merged = []
    for err in out:
        loc = _plain_loc(err["loc"])
        if err["type"] in _TYPE_ERRORS and any(_is_union_tag(p) for p in err["loc"]):
            if loc in seen:
                continue
            seen.add(loc)
            err = {**err, "type": "union_type"}
        merged.append(err)
    return merged


def _is_union_tag(part) -> bool:
    return isinstance(part, str) and (
        part.startswith(("constrained-", "list[", "function-", "union[", "dict["))
        or part in ("int", "float", "XRange", "str", "bool", "Prior", "none")
    )


# What to write instead, by YAML path (list indices as *); appended when a message has no advice.
HINTS = {
    "name": "it names the output folder, e.g. name: rainfall",
    "data": "write data: {path: FILE.csv} or data: {simulate: {...}}",
    "data.path": "give the CSV or Parquet file, relative to the spec's folder",
    "data.missing": "use refuse (the default) or drop",
    "data.engine": "use arrow (the default, this process) or dask (Dask tasks)",
    "data.dask": "give address: tcp://HOST:8786 (an existing cluster) or n_workers: N (a local one)",
    "data.dask.address": "give the scheduler's address, e.g. tcp://10.0.0.5:8786",
    "data.dask.n_workers": "give the number of local worker processes, a whole number >= 1",
    "data.simulate": "give groups, x and truth (and optionally seed)",
    "data.simulate.groups": "give the number of groups (at least 2) or a list of their labels",
    "data.simulate.groups.*": "write each label as text, e.g. CA",
    "data.simulate.x": "give a list of numbers or {start: 0, stop: 10, step: 1}",
    "data.simulate.x.*": "give a number",
    "data.simulate.seed": "use a whole number from 0 to 4294967295",
    "data.simulate.truth": "give beta: {TERM: value, ...}, group_sd: {TERM: value, ...}, sigma "
    "(and group_corr for correlated effects), or the v1 form's five names",
    "data.simulate.truth.sigma": "a standard deviation: give a number > 0",
    **{f"data.simulate.truth.{n}": "a standard deviation: give a number > 0" for n in V1_POSITIVE},
    "model": "write model: {formula: y ~ x + (x | g)} or model: {response: COLUMN, predictor: COLUMN, group: COLUMN}",
    "model.formula": "write lme4 syntax, e.g. formula: y ~ x + (x | g)",
    "model.family": "write family: gaussian, or leave family out",
    "model.categorical": "write a list of columns, e.g. categorical: [clinic], or clinic: {reference: LEVEL}",
    "model.categorical.*": "name a column the formula uses, e.g. clinic",
    "model.trials": "remove it",
    "model.response": "name the column holding the response, e.g. response: rainfall",
    "model.predictor": "name the column holding the predictor, e.g. predictor: year",
    "model.group": "name the column holding the group labels, e.g. group: state",
    "model.priors": "give priors by class, e.g. priors: {beta: normal(0, 10), sigma: half_normal(5)}",
    "model.parameterisation": "use auto (the default), centred or non_centred",
    "backend": "write backend: {name: stan}",
    "backend.name": "e.g. name: stan; `framework backends` lists the installed ones",
    "backend.options": "give a mapping of option names to values, or leave options out",
    "sampler": "write sampler: {chains: 4, draws: 1000}",
    "sampler.method": "use auto (the default), marginal or full",
    "sampler.chains": "e.g. chains: 4",
    "sampler.warmup": "e.g. warmup: 1000",
    "sampler.draws": "e.g. draws: 1000",
    "sampler.seed": "use a whole number from 0 to 4294967295, or leave seed out for a random one",
    "sampler.target_accept": "use a value strictly between 0 and 1, e.g. 0.8 (raise it towards 0.99 after divergences)",
    "sampler.max_treedepth": "e.g. max_treedepth: 10",
    "forecasts": "write a list such as forecasts: [{group: CA, x: 16}]",
    "forecasts.*": "write each forecast as {group: LABEL, x: NUMBER} or {group: LABEL, at: {COLUMN: VALUE, ...}}",
    "forecasts.*.at": "give each predictor a value, e.g. at: {x1: 16, trt: b}",
    "forecasts.*.group": "give a group label, e.g. group: CA",
    "forecasts.*.x": "give a number (or a list of numbers), e.g. x: 16",
    "output": "write output: {dir: FOLDER, plots: true}",
    "output.dir": "give a folder path, or leave dir out to use runs/NAME",
    "output.plots": "write plots: true or plots: false",
    "output.observed_data": "auto keeps the rows in posterior.nc up to 1,000,000 rows; true always, false never",
    "description": "write one line of text",
}
_NAME_RULE = "must be a plain name: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 100 characters"


def _message(err: dict, loc: tuple) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    got = _got(err)
    generic = ".".join("*" if isinstance(p, int) else str(p) for p in loc)
    if kind == "extra_forbidden":
        return unknown_key_text(str(loc[-1]), fields_at(loc[:-1]))
    if kind == "at_path":
        text, hint = ctx["message"], HINTS.get(generic)
        return f"{text}; {hint}" if hint and ";" not in text else text
    if kind == "missing":
        hint = HINTS.get(generic)
        return f"is required; {hint}" if hint else "is required; add it"
    text = {
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be text",
        "dict_type": "must be a mapping (key: value)",
        "model_type": "must be a mapping (key: value)",
        "model_attributes_type": "must be a mapping (key: value)",
        "list_type": "must be a list",
        "string_too_short": "must not be empty",
        "union_type": "has the wrong type",
        "invalid_key": "keys must be text",
        "recursion_loop": "is nested too deeply",
        "greater_than_equal": f"must be >= {ctx.get('ge')}",
        "greater_than": f"must be > {ctx.get('gt')}",
        "less_than": f"must be < {ctx.get('lt')}",
        "less_than_equal": f"must be <= {ctx.get('le')}",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "string_pattern_mismatch": _NAME_RULE
        if generic == "name"
        else "has characters that are not allowed",
    }.get(kind)
    if kind == "too_short":
        text = f"needs at least {ctx.get('min_length')} item(s)"
    elif kind == "too_long":
        text = f"has too many items (at most {ctx.get('max_length')})"
    elif kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        close = difflib.get_close_matches(str(err.get("input")), choices, n=1, cutoff=0.6)
        text = f"must be one of: {', '.join(choices)}"
        got = got + (f"; did you mean '{close[0]}'?" if close else "")
        return f"{text}{got}"
    if text is None:  # a validator's own message, or a pydantic message we have no wording for
        text = err["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    hint = HINTS.get(generic)
    if hint and ";" not in text:
        return f"{text}{got}; {hint}"
    return f"{text}{got}"


def _got(err: dict) -> str:
    if err["type"] in ("missing", "value_error", "extra_forbidden") or "input" not in err:
        return ""
    return f" (got {kind(err['input'])})"


def kind(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)[:60]


def unknown_key_text(key: str, allowed) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    hint = f"did you mean '{close[0]}'? " if close else ""
    known = f"the known keys are: {', '.join(allowed)}" if allowed else "remove it"
    return f"unknown key {kind(key)}; {hint}{known}"


def fields_at(loc) -> list[str]:
    key = ".".join(str(p) for p in loc if not isinstance(p, int))
    model = _SECTION_MODELS.get(key)
    if model is None:
        return []
    return [n for n, f in model.model_fields.items() if not f.exclude]


_SECTION_MODELS = {
    "": Spec,
    "data": DataSpec,
    "data.dask": DaskSpec,
    "data.simulate": Simulate,
    "data.simulate.truth": Truth,
    "data.simulate.x": XRange,
    "model": ModelSpec,
    "backend": BackendSpec,
    "sampler": SamplerSpec,
    "output": OutputSpec,
    "forecasts": Forecast,
}
