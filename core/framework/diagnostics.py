"""Convergence diagnostics, checkable from code (not only printed)."""

from __future__ import annotations

import numpy as np

from . import convergence
from .posterior import GROUP_PARAMETERS
from .priors import HYPERPARAMETERS

RHAT_MAX = 1.01
ESS_MIN = 400


def diagnose(idata, max_treedepth: int | None = None) -> dict:
    """R-hat, bulk and tail ESS per parameter, divergences and tree-depth hits, with verdicts.

    Thresholds follow Vehtari et al. (2021): R-hat <= 1.01 and ESS >= 400 for
    four chains; any divergence is a failure. For `intercept` and `slope` the
    worst group is reported.
    """
    names = list(HYPERPARAMETERS) + [n for n in GROUP_PARAMETERS if n in idata.posterior]
    parameters = {}
    for name in names:
        values = np.asarray(idata.posterior[name].values, dtype=float)
        rhat, bulk, tail = convergence.diagnostics(
            values.reshape(values.shape[0], values.shape[1], -1)
        )
        parameters[name] = {
            "r_hat": _worst(rhat, max),
            "ess_bulk": _worst(bulk, min),
            "ess_tail": _worst(tail, min),
        }
    ss = idata.sample_stats
    divergences = int(np.asarray(ss["diverging"].values).sum())
    treedepth_hits = None
    if max_treedepth is not None and "tree_depth" in ss:
        treedepth_hits = int((np.asarray(ss["tree_depth"].values) >= max_treedepth).sum())
    max_rhat = max(p["r_hat"] for p in parameters.values())
    min_bulk = min(p["ess_bulk"] for p in parameters.values())
    min_tail = min(p["ess_tail"] for p in parameters.values())
    problems = []
    draws = int(idata.posterior.sizes["draw"])
    if draws < convergence.MIN_DRAWS:
        problems.append(
            f"only {draws} draw(s) per chain: R-hat and ESS need at least "
            f"{convergence.MIN_DRAWS} (raise sampler.draws)"
        )
    elif not max_rhat <= RHAT_MAX:
        problems.append(
            f"R-hat {max_rhat:.3f} > {RHAT_MAX} (chains disagree: run longer or check the model)"
        )
    if draws >= convergence.MIN_DRAWS and not min(min_bulk, min_tail) >= ESS_MIN:
        problems.append(
            f"min ESS {min(min_bulk, min_tail):.0f} < {ESS_MIN} (too few effective draws: raise sampler.draws)"
        )
    if divergences:
        problems.append(
            f"{divergences} divergent transition(s) (raise sampler.target_accept or change model.parameterisation)"
        )
    if treedepth_hits:
        problems.append(
            f"{treedepth_hits} draw(s) hit max_treedepth {max_treedepth} (raise sampler.max_treedepth)"
        )
    return {
        "parameters": parameters,
        "max_r_hat": max_rhat,
        "min_ess_bulk": min_bulk,
        "min_ess_tail": min_tail,
        "divergences": divergences,
        "treedepth_hits": treedepth_hits,
        "chains": int(idata.posterior.sizes["chain"]),
        "draws": draws,
        "passed": not problems,
        "problems": problems,
    }


def _worst(values, pick) -> float:
    values = np.asarray(values, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    # A NaN R-hat (e.g. a constant chain) is a failure, not a pass.
    if len(finite) < len(values):
        return float("inf") if pick is max else 0.0
    return float(pick(finite))
