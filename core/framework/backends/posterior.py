"""The common posterior every backend returns, built by one shared function and checked by the core."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PosteriorContractError, SamplingError
from ..model.gaussian_marginal import draw_coefficients
from ..model.model import COEF, GROUP_DIM, GROUP_TERM2_DIM, GROUP_TERM_DIM, TERM_DIM, Model
from ..model.prior_classes import GROUP_CORR, GROUP_SD
from .posterior_groups import Posterior, as_posterior
from .xarray_probes import import_xarray

if TYPE_CHECKING:
    import xarray as xr

    from ..data.dataset import Dataset
    from .problem import Problem, SamplerSettings

REQUIRED_ATTRS = ("backend", "engine", "library_versions", "sampling_seconds", "seed")
# The coefficients of a marginal fit get their own random stream, derived from the sampler seed.
COEF_STREAM = 1
COLUMNS_ATTR = "model_columns"  # JSON: each predictor column's kind and levels (rebuilds the Model)


def coef_rng(seed: int) -> np.random.Generator:
    """The generator that draws the group coefficients of a marginal fit, derived from `seed`."""
    return np.random.default_rng([int(seed), COEF_STREAM])


def complete_posterior(
    problem: Problem,
    settings: SamplerSettings,
    draws: dict[str, np.ndarray],
    sample_stats: dict[str, np.ndarray],
    attrs: dict,
) -> Posterior:
    """The one function every backend ends with: natural-scale draws -> the common posterior.

    `draws` holds arrays shaped (chain, draw, ...) for every variable of
    `problem.model.variables()`; for method marginal `coef` is left out and
    drawn here from its exact Gaussian conditional, seeded from the run's seed
    (unless `problem.group_draws` is False: then the posterior has no `coef`).
    `sample_stats` must hold `diverging`.
    """
    model = problem.model
    who = f"backend '{attrs.get('backend', '?')}' ({attrs.get('engine', '?')})"
    draws = {k: np.asarray(v, dtype=np.float64) for k, v in draws.items()}
    _check_finite(draws, who)
    if COEF not in draws and problem.method != "marginal":
        raise SamplingError(f"{who} returned no '{COEF}' draws for method {problem.method}")
    if COEF not in draws and problem.group_draws:
        params = {k: v for k, v in draws.items() if k != COEF}
        draws[COEF] = draw_coefficients(
            model, problem.dataset.stats, **params, seed=coef_rng(settings.seed)
        )
        _check_finite({COEF: draws[COEF]}, who)
    stats = dict(sample_stats)
    diverging = np.asarray(stats.pop("diverging")).astype(bool)
    return build_posterior(model, problem.dataset, draws, diverging, stats, attrs)


def _check_finite(arrays: dict, who: str) -> None:
    bad = [name for name, values in arrays.items() if not np.all(np.isfinite(values))]
    if bad:
        raise SamplingError(
            f"{who} returned non-finite draws for {', '.join(bad)}: the sampler diverged or the "
            "data are badly scaled; check the data for extreme values, use tighter priors, or "
            "raise sampler.target_accept"
        )


def coords(model: Model, dataset: Dataset) -> dict[str, np.ndarray]:
    return {
        TERM_DIM: np.asarray(model.term_names, dtype=str),
        GROUP_TERM_DIM: np.asarray(model.group_term_names, dtype=str),
        GROUP_TERM2_DIM: np.asarray(model.group_term_names, dtype=str),
        GROUP_DIM: np.asarray(dataset.labels, dtype=str),
    }


def build_posterior(
    model: Model,
    dataset: Dataset,
    draws: dict[str, np.ndarray],
    diverging: np.ndarray,
    sample_stats: dict[str, np.ndarray] | None = None,
    attrs: dict | None = None,
) -> Posterior:
    """Assemble the common format from natural-scale arrays shaped (chain, draw, ...)."""
    # A fraction of a second, once pandas is in: only when a posterior is built.
    xr = import_xarray()

    variables = model.variables()
    chains, n_draws = np.asarray(diverging).shape
    all_coords = {"chain": np.arange(chains), "draw": np.arange(n_draws), **coords(model, dataset)}
    posterior = {
        name: (("chain", "draw", *dims), np.asarray(draws[name], dtype=np.float64))
        for name, dims in variables.items()
        if name != COEF or COEF in draws  # output.group_draws: the coefficients may be left out
    }
    # The group labels stay a coordinate even without `coef`: estimates and forecasts need them.
    used = {d for dims in variables.values() for d in dims} | {"chain", "draw"}
    post_coords = {k: v for k, v in all_coords.items() if k in used}
    stats = {"diverging": (("chain", "draw"), np.asarray(diverging, dtype=bool))}
    for name, values in (sample_stats or {}).items():
        stats[name] = (("chain", "draw"), np.asarray(values))
    attrs = {k: _attr(v) for k, v in (attrs or {}).items()}
    attrs.setdefault("formula", model.formula)
    attrs.setdefault("family", model.family.name)
    attrs[COLUMNS_ATTR] = json.dumps(
        {c.name: {"kind": c.kind, "levels": list(c.levels)} for c in model.columns.values()}
    )
    return Posterior(
        posterior=xr.Dataset(posterior, coords=post_coords, attrs=attrs),
        sample_stats=xr.Dataset(
            stats, coords={"chain": all_coords["chain"], "draw": all_coords["draw"]}, attrs=attrs
        ),
        **data_groups(model, dataset),
    )


def data_groups(model: Model, dataset: Dataset) -> dict[str, xr.Dataset]:
    """The data in the posterior: the rows, or the per-group statistics when the rows were not kept.

    With rows: `observed_data.y` and `constant_data.X` (obs, term), `.group`
    (codes) over dim `obs`. Without: `constant_data` holds `n` (group),
    `mean` (group, column) and `cross` (group, column, column2) over the
    design columns and the response (enough to evaluate the likelihood again),
    with the row count and the data's SHA-256 as attrs.
    """
    xr = import_xarray()

    terms = {TERM_DIM: np.asarray(model.term_names, dtype=str)}
    if dataset.has_rows:
        obs = {"obs": np.arange(dataset.n_rows)}
        return {
            "observed_data": xr.Dataset({"y": (("obs",), dataset.y)}, coords=obs),
            "constant_data": xr.Dataset(
                {"X": (("obs", TERM_DIM), dataset.X), "group": (("obs",), dataset.codes)},
                coords={**obs, **terms},
            ),
        }
    columns = np.asarray([*model.term_names, model.response], dtype=str)
    s = dataset.stats
    data = {
        "n": ((GROUP_DIM,), s.n),
        "mean": ((GROUP_DIM, "column"), s.mean),
        "cross": ((GROUP_DIM, "column", "column2"), s.cross),
    }
    labels = {
        GROUP_DIM: np.asarray(dataset.labels, dtype=str),
        "column": columns,
        "column2": columns,
    }
    attrs = {"rows": dataset.n_rows, "data_sha256": dataset.digest()}
    return {"constant_data": xr.Dataset(data, coords=labels, attrs=attrs)}


def without_rows(idata, model: Model, dataset: Dataset):
    """`idata` with the data groups replaced by the per-group statistics (output.observed_data: false)."""
    kept = {g: idata[g] for g in idata.groups() if g not in ("observed_data", "constant_data")}
    return Posterior(**kept, **data_groups(model, dataset.without_rows()))


def _attr(value):
    # NetCDF attributes hold numbers and text only; nested values go in as text.
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return int(value)
    return value


def check_posterior(
    idata, model: Model, dataset: Dataset, backend: str, group_draws: bool = True
) -> None:
    """Refuse a posterior that breaks the common format, naming the backend.

    With `group_draws` False (output.group_draws), `coef` may be absent.
    """
    problems = list(_problems(idata, model, dataset, group_draws))
    if problems:
        raise PosteriorContractError(
            f"backend '{backend}' returned a posterior that breaks the common format: "
            + "; ".join(problems[:8])
            + ". This is a bug in the plugin: report it to its authors, or use another backend."
        )


def posterior_problems(idata, model: Model, dataset, group_draws: bool = True) -> list[str]:
    """Every way `idata` breaks the common format, empty if none (for readers of saved runs)."""
    return list(_problems(idata, model, dataset, group_draws))


def _problems(idata, model: Model, dataset: Dataset, group_draws: bool = True):
    idata = as_posterior(idata)
    if not isinstance(idata, Posterior):
        yield (
            "expected a framework.Posterior (or an arviz.InferenceData or xarray.DataTree), "
            f"got {type(idata).__name__}"
        )
        return
    groups = set(idata.groups())
    data = ("observed_data", "constant_data") if dataset.has_rows else ("constant_data",)
    for g in ("posterior", "sample_stats", *data):
        if g not in groups:
            yield f"group '{g}' is missing"
    if "posterior" not in groups:
        return
    post = idata.posterior
    expected = coords(model, dataset)
    for name, dims in model.variables().items():
        if name == COEF and name not in post and not group_draws:
            continue
        if name not in post:
            yield f"posterior variable '{name}' is missing"
            continue
        if post[name].dims != ("chain", "draw", *dims):
            yield f"'{name}' has dims {post[name].dims}, expected {('chain', 'draw', *dims)}"
            continue
        values = np.asarray(post[name].values)
        if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
            yield f"'{name}' has non-finite or non-numeric values"
        elif (name == GROUP_SD or name in model.family_parameters) and np.any(values <= 0):
            yield f"'{name}' has values <= 0"
        elif name == GROUP_CORR and np.any(np.abs(values) > 1 + 1e-9):
            yield f"'{name}' has values outside [-1, 1]"
    for dim, want in expected.items():
        if dim in post.coords and [str(v) for v in post.coords[dim].values] != list(want):
            what = (
                "group labels in the dataset's order" if dim == GROUP_DIM else "the model's names"
            )
            yield f"the '{dim}' coordinate does not list {what}"
    if "sample_stats" in groups:
        ss = idata.sample_stats
        if "diverging" not in ss:
            yield "sample_stats.diverging is missing"
        elif ss["diverging"].dtype != bool or ss["diverging"].dims != ("chain", "draw"):
            yield "sample_stats.diverging must be boolean with dims ('chain', 'draw')"
    if dataset.has_rows and "observed_data" in groups and "y" not in idata.observed_data:
        yield "observed_data.y is missing"
    if "constant_data" in groups:
        names = ("X", "group") if dataset.has_rows else ("n", "mean", "cross")
        for name in names:
            if name not in idata.constant_data:
                yield f"constant_data.{name} is missing"
    missing_attrs = [a for a in REQUIRED_ATTRS if a not in post.attrs]
    if missing_attrs:
        yield f"posterior attrs missing: {', '.join(missing_attrs)}"
