"""check_posterior refuses every way a posterior can break the common format."""

from __future__ import annotations

import numpy as np
import pytest

import framework
from framework import Dataset, build_posterior, check_posterior

ATTRS = {
    "backend": "t",
    "engine": "e",
    "library_versions": {"x": "1"},
    "sampling_seconds": 1.0,
    "seed": 1,
}


@pytest.fixture
def dataset():
    return Dataset(y=[1.0, 2, 3, 4], x=[0.0, 1, 0, 1], codes=[0, 0, 1, 1], labels=["b", "a"])


def _idata(dataset, **change):
    shape = (2, 3)
    hyper = {k: np.ones(shape) for k in framework.HYPERPARAMETERS}
    effects = {"intercept": np.zeros(shape + (2,)), "slope": np.zeros(shape + (2,))}
    hyper.update({k: v for k, v in change.items() if k in hyper})
    effects.update({k: v for k, v in change.items() if k in effects})
    return build_posterior(
        hyper, effects, dataset, np.zeros(shape, bool), attrs=change.get("attrs", ATTRS)
    )


def test_a_well_formed_posterior_passes(dataset):
    idata = _idata(dataset)
    check_posterior(idata, dataset, "t")
    assert list(idata.posterior.coords["group"].values) == ["b", "a"]


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d, i: i.posterior.drop_vars("slope_mu"), "slope_mu' is missing"),
        (
            lambda d, i: i.posterior.assign(error_sigma=-i.posterior["error_sigma"]),
            "error_sigma' has values <= 0",
        ),
        (
            lambda d, i: i.posterior.assign(intercept=i.posterior["intercept"] * np.nan),
            "non-finite",
        ),
        (lambda d, i: i.posterior.assign_coords(group=["a", "b"]), "order"),
        (lambda d, i: i.posterior.rename({"group": "state"}), "dims"),
        (
            lambda d, i: i.posterior.assign(intercept_mu=i.posterior["intercept"]),
            "intercept_mu' has dims",
        ),
    ],
)
def test_broken_posteriors_are_refused_naming_the_backend(dataset, breakage, message):
    idata = _idata(dataset)
    idata.posterior = breakage(dataset, idata)
    with pytest.raises(framework.PosteriorContractError, match=rf"backend 'plugin-x'.*{message}"):
        check_posterior(idata, dataset, "plugin-x")


def test_missing_groups_and_attrs_are_refused(dataset):
    idata = _idata(dataset, attrs={"backend": "t"})
    del idata.sample_stats
    with pytest.raises(framework.PosteriorContractError) as err:
        check_posterior(idata, dataset, "p")
    assert "sample_stats' is missing" in str(err.value)
    assert "attrs missing: engine" in str(err.value)
    with pytest.raises(framework.PosteriorContractError, match="expected arviz.InferenceData"):
        check_posterior({"posterior": 1}, dataset, "p")
