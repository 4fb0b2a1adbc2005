"""check_posterior refuses every way a posterior can break the common format."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import framework
from framework import Column, Dataset, build_model, build_posterior, check_posterior

ATTRS = {
    "backend": "t",
    "engine": "e",
    "library_versions": {"x": "1"},
    "sampling_seconds": 1.0,
    "seed": 1,
}
COLUMNS = {
    "y": Column("y", "numeric"),
    "x": Column("x", "numeric"),
    "g": Column("g", "categorical"),
}
SHAPE = (2, 3)
DATA_GROUPS = ["observed_data", "constant_data"]


def _model(formula="y ~ x + (x || g)"):
    return build_model(formula, COLUMNS)


@pytest.fixture
def model():
    return _model()


@pytest.fixture
def dataset(model):
    x = np.array([0.0, 1, 0, 1, 2, 3])
    return Dataset(
        labels=["b", "a"],
        y=[1.0, 2, 3, 4, 5, 7],
        X=model.design({"x": x}),
        codes=[0, 0, 1, 1, 0, 1],
        group="g",
    )


def _draws(model, n_groups=2):
    """Valid natural-scale draws of every posterior variable of `model`."""
    draws = {}
    for name, dims in model.variables().items():
        size = tuple(n_groups if d == "group" else model.n_group_terms for d in dims)
        if name == "beta":
            size = (model.n_terms,)
        draws[name] = np.ones(SHAPE + size)
    if "group_corr" in draws:
        draws["group_corr"] = np.broadcast_to(
            np.eye(model.n_group_terms), draws["group_corr"].shape
        )
    return draws


def _idata(model, dataset, attrs=ATTRS):
    return build_posterior(model, dataset, _draws(model), np.zeros(SHAPE, bool), attrs=attrs)


def test_a_well_formed_posterior_passes(model, dataset):
    idata = _idata(model, dataset)
    check_posterior(idata, model, dataset, "t")
    assert list(idata.posterior.coords["group"].values) == ["b", "a"]
    assert list(idata.posterior.coords["term"].values) == model.term_names
    # Without the rows the per-group statistics stand in for them, and still pass.
    lean = dataset.without_rows()
    check_posterior(_idata(model, lean), model, lean, "t")


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda i: i.posterior.drop_vars("group_sd"), "'group_sd' is missing"),
        (lambda i: i.posterior.assign(sigma=-i.posterior["sigma"]), "'sigma' has values <= 0"),
        (
            lambda i: i.posterior.assign(group_sd=-i.posterior["group_sd"]),
            "'group_sd' has values <= 0",
        ),
        (lambda i: i.posterior.assign(coef=i.posterior["coef"] * np.nan), "non-finite"),
        (
            lambda i: i.posterior.assign_coords(group=["a", "b"]),
            "group labels in the dataset's order",
        ),
        (
            lambda i: i.posterior.assign_coords(term=["x", "Intercept"]),
            "'term' coordinate does not list the model's names",
        ),
        (lambda i: i.posterior.rename({"group": "state"}), "dims"),
        (lambda i: i.posterior.assign(beta=i.posterior["coef"]), "'beta' has dims"),
    ],
)
def test_broken_posteriors_are_refused_naming_the_backend(model, dataset, breakage, message):
    idata = _idata(model, dataset)
    idata.posterior = breakage(idata)
    with pytest.raises(framework.PosteriorContractError, match=rf"backend 'plugin-x'.*{message}"):
        check_posterior(idata, model, dataset, "plugin-x")


def test_a_correlated_model_needs_a_valid_group_corr(dataset):
    model = _model("y ~ x + (x | g)")
    idata = _idata(model, dataset)
    check_posterior(idata, model, dataset, "t")
    bad = idata.posterior["group_corr"].copy(data=np.full(idata.posterior["group_corr"].shape, 1.5))
    idata.posterior = idata.posterior.assign(group_corr=bad)
    with pytest.raises(framework.PosteriorContractError, match="'group_corr' has values outside"):
        check_posterior(idata, model, dataset, "p")
    idata.posterior = idata.posterior.drop_vars("group_corr")
    with pytest.raises(framework.PosteriorContractError, match="'group_corr' is missing"):
        check_posterior(idata, model, dataset, "p")


def test_missing_groups_and_attrs_are_refused(model, dataset):
    idata = _idata(model, dataset, attrs={"backend": "t"})
    del idata.sample_stats
    del idata.observed_data
    with pytest.raises(framework.PosteriorContractError) as err:
        check_posterior(idata, model, dataset, "p")
    assert "sample_stats' is missing" in str(err.value)
    assert "observed_data' is missing" in str(err.value)
    assert "attrs missing: engine" in str(err.value)
    with pytest.raises(framework.PosteriorContractError, match="expected a framework.Posterior"):
        check_posterior({"posterior": 1}, model, dataset, "p")


def test_a_posterior_without_rows_needs_the_group_statistics(model, dataset):
    lean = dataset.without_rows()
    idata = _idata(model, lean)
    idata.constant_data = idata.constant_data.drop_vars("cross")
    with pytest.raises(framework.PosteriorContractError, match="constant_data.cross is missing"):
        check_posterior(idata, model, lean, "p")


def test_the_posterior_file_reads_back_in_arviz_and_as_a_posterior(model, dataset, tmp_path):
    import arviz as az

    idata = _idata(model, dataset)
    idata.to_netcdf(tmp_path / "posterior.nc")
    # The layout arviz writes: one HDF5 group per InferenceData group, values and attrs kept.
    loaded = az.from_netcdf(str(tmp_path / "posterior.nc"), engine="h5netcdf")
    assert loaded.groups() == idata.groups() == ["posterior", "sample_stats", *DATA_GROUPS]
    again = framework.Posterior.from_netcdf(tmp_path / "posterior.nc")
    for name in idata.groups():
        assert loaded[name].identical(idata[name]) and again[name].identical(idata[name])
    assert loaded.sample_stats["diverging"].dtype == bool
    check_posterior(again, model, dataset, "t")


def test_a_third_party_inference_data_or_datatree_is_taken_as_is(model, dataset):
    idata = _idata(model, dataset)
    # arviz 0.x backends return an InferenceData, arviz 1.x ones an xarray DataTree.
    check_posterior(idata.to_arviz(), model, dataset, "t")
    tree = xr.DataTree.from_dict({f"/{g}": idata[g] for g in idata.groups()})
    check_posterior(tree, model, dataset, "t")
    broken = idata.to_arviz()
    del broken.sample_stats
    with pytest.raises(framework.PosteriorContractError, match="'sample_stats' is missing"):
        check_posterior(broken, model, dataset, "t")


def test_a_posterior_changes_like_an_inference_data(model, dataset):
    idata = _idata(model, dataset)
    copy = idata.copy()
    copy.posterior = copy.posterior.drop_vars("sigma")
    assert "sigma" in idata.posterior and "sigma" not in copy["posterior"]
    del copy.sample_stats
    assert copy.groups() == ["posterior", *DATA_GROUPS] and "sample_stats" in idata
    with pytest.raises(AttributeError, match="no group 'prior'"):
        idata.prior  # noqa: B018
