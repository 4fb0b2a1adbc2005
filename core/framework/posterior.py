"""The common posterior every backend returns, and the core's check of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from .data import Dataset
from .errors import PosteriorContractError
from .priors import HYPERPARAMETERS

if TYPE_CHECKING:
    from arviz import InferenceData

GROUP_PARAMETERS = ("intercept", "slope")
REQUIRED_ATTRS = ("backend", "engine", "library_versions", "sampling_seconds", "seed")


def build_posterior(
    hyper: dict[str, np.ndarray],
    group_effects: dict[str, np.ndarray],
    dataset: Dataset,
    diverging: np.ndarray,
    sample_stats: dict[str, np.ndarray] | None = None,
    attrs: dict | None = None,
) -> InferenceData:
    """Assemble the common format from arrays shaped (chain, draw[, group]).

    Backends call this after converting their draws to the natural scale, so
    names, dims and coordinates are the same whoever sampled.
    """
    from arviz import InferenceData  # arviz takes seconds to import: only when needed

    first = np.asarray(hyper[HYPERPARAMETERS[0]])
    chains, draws = first.shape[:2]
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(draws),
        "group": np.asarray(dataset.labels, dtype=str),
    }
    posterior = {
        name: (("chain", "draw"), np.asarray(hyper[name], dtype=float)) for name in HYPERPARAMETERS
    }
    for name in GROUP_PARAMETERS:
        posterior[name] = (("chain", "draw", "group"), np.asarray(group_effects[name], dtype=float))
    stats = {"diverging": (("chain", "draw"), np.asarray(diverging, dtype=bool))}
    for name, values in (sample_stats or {}).items():
        stats[name] = (("chain", "draw"), np.asarray(values))
    attrs = {k: _attr(v) for k, v in (attrs or {}).items()}
    return InferenceData(
        posterior=xr.Dataset(posterior, coords=coords, attrs=attrs),
        sample_stats=xr.Dataset(
            stats, coords={"chain": coords["chain"], "draw": coords["draw"]}, attrs=attrs
        ),
        **data_groups(dataset),
    )


def data_groups(dataset: Dataset) -> dict[str, xr.Dataset]:
    """The data in the posterior: the rows, or the per-group statistics when the rows were not kept.

    With rows: `observed_data.y` and `constant_data.x`, `.group` (codes) over
    dim `obs`. Without: `constant_data` holds `n`, `xbar`, `ybar`, `sxx`,
    `sxy`, `syy` over dim `group` (enough to evaluate the likelihood again),
    with the row count and the data's SHA-256 as attrs.
    """
    if dataset.has_rows:
        obs = {"obs": np.arange(dataset.n_rows)}
        return {
            "observed_data": xr.Dataset({"y": (("obs",), dataset.y)}, coords=obs),
            "constant_data": xr.Dataset(
                {"x": (("obs",), dataset.x), "group": (("obs",), dataset.codes)}, coords=obs
            ),
        }
    stats = {k: (("group",), v) for k, v in dataset.stats.as_dict().items()}
    labels = {"group": np.asarray(dataset.labels, dtype=str)}
    attrs = {"rows": dataset.n_rows, "data_sha256": dataset.digest()}
    return {"constant_data": xr.Dataset(stats, coords=labels, attrs=attrs)}


def without_rows(idata, dataset: Dataset):
    """`idata` with the data groups replaced by the per-group statistics (output.observed_data: false)."""
    from arviz import InferenceData

    kept = {g: idata[g] for g in idata.groups() if g not in ("observed_data", "constant_data")}
    return InferenceData(**kept, **data_groups(dataset.without_rows()))


def _attr(value):
    # NetCDF attributes hold numbers and text only; nested values go in as text.
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return int(value)
    return value


def check_posterior(idata, dataset: Dataset, backend: str) -> None:
    """Refuse a posterior that breaks the common format, naming the backend."""
    problems = list(_problems(idata, dataset))
    if problems:
        raise PosteriorContractError(
            f"backend '{backend}' returned a posterior that breaks the common format: "
            + "; ".join(problems)
            + ". This is a bug in the plugin: report it to its authors, or use another backend."
        )


def _problems(idata, dataset: Dataset):
    from arviz import InferenceData

    if not isinstance(idata, InferenceData):
        yield f"expected arviz.InferenceData, got {type(idata).__name__}"
        return
    groups = set(idata.groups())
    data = ("observed_data", "constant_data") if dataset.has_rows else ("constant_data",)
    for g in ("posterior", "sample_stats", *data):
        if g not in groups:
            yield f"group '{g}' is missing"
    if "posterior" not in groups:
        return
    post = idata.posterior
    for name in HYPERPARAMETERS:
        if name not in post:
            yield f"posterior variable '{name}' is missing"
        elif post[name].dims != ("chain", "draw"):
            yield f"'{name}' has dims {post[name].dims}, expected ('chain', 'draw')"
    for name in GROUP_PARAMETERS:
        if name not in post:
            yield f"posterior variable '{name}' is missing"
        elif post[name].dims != ("chain", "draw", "group"):
            yield f"'{name}' has dims {post[name].dims}, expected ('chain', 'draw', 'group')"
    if "group" in post.coords:
        labels = [str(v) for v in post.coords["group"].values]
        if labels != list(dataset.labels):
            yield "the 'group' coordinate does not list the dataset's group labels in the dataset's order"
    elif any(name in post for name in GROUP_PARAMETERS):
        yield "the 'group' coordinate is missing"
    for name in HYPERPARAMETERS + GROUP_PARAMETERS:
        if name in post:
            values = np.asarray(post[name].values)
            if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
                yield f"'{name}' has non-finite or non-numeric values"
    for name in ("intercept_sigma", "slope_sigma", "error_sigma"):
        if name in post and np.any(np.asarray(post[name].values) <= 0):
            yield f"'{name}' has values <= 0"
    if "sample_stats" in groups:
        ss = idata.sample_stats
        if "diverging" not in ss:
            yield "sample_stats.diverging is missing"
        elif ss["diverging"].dtype != bool or ss["diverging"].dims != ("chain", "draw"):
            yield "sample_stats.diverging must be boolean with dims ('chain', 'draw')"
    if dataset.has_rows and "observed_data" in groups and "y" not in idata.observed_data:
        yield "observed_data.y is missing"
    if "constant_data" in groups:
        names = ("x", "group") if dataset.has_rows else tuple(dataset.stats.as_dict())
        for name in names:
            if name not in idata.constant_data:
                yield f"constant_data.{name} is missing"
    missing_attrs = [a for a in REQUIRED_ATTRS if a not in post.attrs]
    if missing_attrs:
        yield f"posterior attrs missing: {', '.join(missing_attrs)}"
