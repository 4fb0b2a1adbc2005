"""Real data no one here wrote, fitted as lme4 fits it: the posterior agrees with lme4's REML fit.

tests/reference/lme4/ holds three classic data sets that ship with Debian's R
packages and lme4 1.1.31's REML fits of them (make_reference.R writes both):
sleepstudy (correlated intercept and slope), Orthodont (a numeric and a
categorical predictor, Male the reference level as R codes it) and
MathAchieve (two numeric predictors, one of them constant within schools).

Tolerances. With wide priors the posterior mean of beta and REML's estimate
differ only through averaging over the variance components (REML plugs in
their estimates), which moves beta by a small fraction of its posterior sd
when there are 18-160 groups, plus Monte Carlo error (~0.02 sd at ~3,000
ESS): 0.3 posterior sd, the issue's bar, leaves room for both. Each group's
coefficients are shrunk by the posterior's group sds rather than REML's, so
they are compared by correlation (>= 0.98), which a shuffled or mislabelled
group, a wrong reference level or a missing term breaks at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import framework

REFERENCE = Path(__file__).parent / "reference" / "lme4"
DATASETS = ("sleepstudy", "orthodont", "mathachieve")
# The bar is 0.98 (met: sleepstudy 0.9999 for Days, mathachieve 0.998 for SES). In
# Orthodont the slope's variance is barely identified (27 children x 4 visits, REML puts the
# intercept-slope correlation at -0.77): the posterior averages over group sds well away from
# REML's point estimates, and the intercepts, 8-14 years from the data, follow them. Measured
# over seeds 11 and 1-4 (the same draws through pystan and CmdStan): intercepts 0.913-0.931,
# age slopes 0.886-0.909, so 0.85 leaves room for Monte Carlo and a mis-coded term or group
# order (correlation near 0) still fails. The exact-conditional test below shows that at REML's
# estimates the framework gives lme4's coefficients to 1e-6, so what remains is REML versus
# the full posterior.
COEF_CORRELATION = {"sleepstudy": 0.98, "mathachieve": 0.98, "orthodont": 0.85}


def lme4_name(term: str) -> str:
    """lme4's name of a term: (Intercept), age, SexFemale, age:SexFemale."""
    if term == "Intercept":
        return "(Intercept)"
    return ":".join(part.replace("[", "").replace("]", "") for part in term.split(":"))


# Wide priors on the data sets' scales, so the posterior follows the likelihood as lme4 does.
WIDE_PRIORS = {
    "beta": "normal(0, 1000)",
    "group_sd": "half_normal(100)",
    "group_corr": "lkj(1)",
    "sigma": "half_normal(100)",
}


def spec_for(name: str) -> tuple[dict, dict]:
    """(lme4's reference, the spec that fits its data as lme4 does, with wide priors)."""
    ref = json.loads((REFERENCE / f"{name}.json").read_text())
    model = {
        "formula": ref["formula"],
        "priors": dict(WIDE_PRIORS),
    }
    if ref["categorical"]:
        model["categorical"] = {
            col: {"reference": info["reference_level"]} for col, info in ref["categorical"].items()
        }
    spec = {
        "name": name,
        "data": {"path": str(REFERENCE / ref["csv"])},
        "model": model,
        "sampler": {"chains": 4, "warmup": 1000, "draws": 1000, "seed": 11},
        "output": {"plots": False},
    }
    return ref, spec


@pytest.fixture(scope="module", params=DATASETS)
def fitted(request, tmp_path_factory):
    ref, spec = spec_for(request.param)
    path = tmp_path_factory.mktemp(request.param) / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return ref, framework.run(path, write=False)


@pytest.mark.slow
def test_population_coefficients_agree_with_lme4(fitted):
    ref, result = fitted
    assert result.diagnostics["max_r_hat"] < 1.01
    beta = result.idata.posterior["beta"]
    off = {}
    for term in result.model.term_names:
        draws = beta.sel(term=term).values
        estimate = ref["fixed_effects"][lme4_name(term)]["estimate"]
        off[term] = (draws.mean() - estimate) / draws.std()
    assert max(abs(v) for v in off.values()) <= 0.3, off


@pytest.mark.slow
def test_group_coefficients_correlate_with_lme4(fitted):
    ref, result = fitted
    coef = result.idata.posterior["coef"].mean(("chain", "draw"))
    theirs = ref["coef"][ref["group"]]
    labels = [str(g) for g in coef.coords["group"].values]
    assert sorted(labels) == sorted(theirs)
    for term in result.model.group_term_names:
        ours = coef.sel(group_term=term).values
        lme4 = np.array([theirs[g][lme4_name(term)] for g in labels])
        assert np.corrcoef(ours, lme4)[0, 1] >= COEF_CORRELATION[ref["name"]], term


@pytest.mark.parametrize("name", DATASETS)
def test_exact_conditional_at_lme4s_estimates_gives_lme4s_coefficients(name):
    """Given lme4's REML variance components and fixed effects, each group's conditional mean
    (framework.model.gaussian_marginal.conditional_means: data read, terms coded, statistics
    reduced, Woodbury solve) is lme4's BLUP: the whole pipeline checked without priors or
    Monte Carlo. lme4's JSON holds its estimates to ~1e-12; the BLUPs depend on them smoothly,
    so 1e-6 relative to each term's spread across groups is rounding, and a mis-coded term,
    reference level or group order misses by orders of magnitude more."""
    from framework.data.load import read_file
    from framework.model.gaussian_marginal import conditional_means

    ref = json.loads((REFERENCE / f"{name}.json").read_text())
    categorical = {c: i["reference_level"] for c, i in (ref["categorical"] or {}).items()}
    model, dataset = read_file(REFERENCE / ref["csv"], ref["formula"], categorical)
    re = ref["random_effects"]
    names = model.group_term_names
    sd = np.array([re["sd"][lme4_name(t)] for t in names])
    corr = np.eye(len(names))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i < j:
                r = re["correlation"][f"{lme4_name(a)} ~ {lme4_name(b)}"]
                corr[i, j] = corr[j, i] = r
    beta = np.array([ref["fixed_effects"][lme4_name(t)]["estimate"] for t in model.term_names])
    means = conditional_means(
        model, dataset.stats, beta=beta, group_sd=sd, sigma=ref["sigma"], group_corr=corr
    )
    theirs = ref["coef"][ref["group"]]
    lme4 = np.array([[theirs[g][lme4_name(t)] for t in names] for g in dataset.labels])
    spread = lme4.std(axis=0)
    np.testing.assert_allclose(means, lme4, atol=1e-6 * spread.max(), rtol=0)
