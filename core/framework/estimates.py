"""Per-group estimates, hyperparameter summaries and recovery, from the posterior alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .priors import HYPERPARAMETERS

QUANTILES = (0.05, 0.95)
GROUP_BLOCK = 256


def _draws(idata, name: str) -> np.ndarray:
    """Draws of a variable with chain and draw flattened into the first axis."""
    values = np.asarray(idata.posterior[name].values)
    return values.reshape((-1,) + values.shape[2:])


def group_estimates(idata) -> pd.DataFrame:
    """Per group: intercept and slope mean, sd, 5% and 95% quantiles."""
    out = pd.DataFrame({"group": [str(g) for g in idata.posterior.coords["group"].values]})
    for name in ("intercept", "slope"):
        d = _draws(idata, name)
        columns = np.empty((4, d.shape[1]))
        # A block of groups at a time: temporaries stay small next to the draws (W3: 320 MB).
        for start in range(0, d.shape[1], GROUP_BLOCK):
            block = np.ascontiguousarray(d[:, start : start + GROUP_BLOCK].T)
            columns[:2, start : start + GROUP_BLOCK] = block.mean(axis=1), block.std(axis=1, ddof=1)
            columns[2:, start : start + GROUP_BLOCK] = np.quantile(block, QUANTILES, axis=1)
        for column, suffix in zip(columns, ("mean", "sd", "q5", "q95"), strict=True):
            out[f"{name}_{suffix}"] = column
    return out


def hyperparameter_table(idata, diagnostics: dict | None = None) -> pd.DataFrame:
    """Per hyperparameter: mean, sd, 5/50/95% quantiles, and R-hat and ESS when given."""
    rows = []
    for name in HYPERPARAMETERS:
        d = _draws(idata, name)
        q5, q50, q95 = np.quantile(d, (0.05, 0.5, 0.95))
        row = {
            "parameter": name,
            "mean": d.mean(),
            "sd": d.std(ddof=1),
            "q5": q5,
            "q50": q50,
            "q95": q95,
        }
        if diagnostics:
            per = diagnostics["parameters"][name]
            row.update(r_hat=per["r_hat"], ess_bulk=per["ess_bulk"], ess_tail=per["ess_tail"])
        rows.append(row)
    return pd.DataFrame(rows)


def recovery_table(idata, truth: dict) -> pd.DataFrame:
    """Per hyperparameter: truth, posterior mean, 90% interval, covered or not."""
    rows = []
    for name in HYPERPARAMETERS:
        d = _draws(idata, name)
        lo, hi = np.quantile(d, QUANTILES)
        t = float(truth[name])
        rows.append(
            {
                "parameter": name,
                "truth": t,
                "mean": d.mean(),
                "q5": lo,
                "q95": hi,
                "covered": bool(lo <= t <= hi),
            }
        )
    table = pd.DataFrame(rows)
    for name in ("intercept", "slope"):
        if name in truth:
            d = _draws(idata, name)
            lo, hi = np.quantile(d, QUANTILES, axis=0)
            t = np.asarray(truth[name])
            table.attrs[f"{name}_coverage"] = float(np.mean((lo <= t) & (t <= hi)))
    return table
