"""Run one spec on several backends and test that their posteriors agree."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .outputs import atomic_directory
from .priors import HYPERPARAMETERS
from .runner import RunResult, fit, prepare, summarise
from .spec import Spec

# Two correct samplers' posterior means differ by a normal error with variance
# mcse_a^2 + mcse_b^2, so |z| > 4 happens with probability 6e-5 per parameter
# (under 1% over the ~100 parameters of the rainfall case) when they agree.
Z_TOLERANCE = 4.0


@dataclass
class Comparison:
    """The side-by-side table, each backend's run, and which parameters disagree."""

    table: pd.DataFrame
    runs: dict[str, RunResult]

    @property
    def flagged(self) -> pd.DataFrame:
        return self.table[self.table["flagged"]]

    def timings(self) -> pd.DataFrame:
        rows = []
        for name, r in self.runs.items():
            d = r.diagnostics
            rows.append(
                {
                    "backend": name,
                    "engine": d["engine"],
                    "method": d["method"],
                    "compile_s": _num(d["timings"].get("compile")),
                    "sampling_s": _num(d["timings"].get("sampling")),
                    "min_ess_bulk": d["min_ess_bulk"],
                    "min_ess_per_s": _num(d.get("min_ess_bulk_per_second")),
                    "max_r_hat": d["max_r_hat"],
                    "divergences": d["divergences"],
                }
            )
        return pd.DataFrame(rows)


def _num(v) -> float:
    return float(v) if v is not None else float("nan")


def compare(spec: Spec, backends: list[str], progress=None) -> Comparison:
    """Fit `spec` with each backend (the spec's options apply to its own backend only)."""
    runs = {}
    for name in backends:
        options = dict(spec.backend.options) if name == spec.backend.name else {}
        variant = spec.model_copy(
            update={"backend": spec.backend.model_copy(update={"name": name, "options": options})}
        )
        if progress:
            progress(f"backend {name}: fitting")
        prepared = prepare(variant, progress)
        runs[name] = summarise(prepared, fit(prepared))
    return Comparison(agreement_table(runs), runs)


def agreement_table(runs: dict[str, RunResult]) -> pd.DataFrame:
    """Per parameter: each backend's mean, and the largest pairwise difference in MCSE and sd units."""
    names = list(runs)
    per = {n: _moments(runs[n].idata) for n in names}
    rows = []
    for param in per[names[0]]:
        row = {"parameter": param}
        for n in names:
            row[f"mean_{n}"] = per[n][param][0]
        worst_z, worst_sd = 0.0, 0.0
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                (ma, sa, ea), (mb, sb, eb) = per[a][param], per[b][param]
                diff = abs(ma - mb)
                worst_z = max(worst_z, diff / np.hypot(ea, eb))
                worst_sd = max(worst_sd, diff / (0.5 * (sa + sb)))
        row.update(diff_mcse=worst_z, diff_sd=worst_sd, flagged=bool(worst_z > Z_TOLERANCE))
        rows.append(row)
    return pd.DataFrame(rows)


def _moments(idata) -> dict[str, tuple[float, float, float]]:
    """(mean, sd, mcse of the mean) per scalar parameter, group effects as name[label]."""
    import arviz as az

    post = idata.posterior
    mcse = az.mcse(idata, var_names=list(HYPERPARAMETERS) + ["intercept", "slope"])
    out = {}
    for name in HYPERPARAMETERS:
        v = post[name].values
        out[name] = (float(v.mean()), float(v.std(ddof=1)), float(mcse[name].values))
    labels = [str(g) for g in post.coords["group"].values]
    for name in ("intercept", "slope"):
        v = post[name].values.reshape(-1, len(labels))
        means, sds, errs = v.mean(axis=0), v.std(axis=0, ddof=1), np.asarray(mcse[name].values)
        for j, g in enumerate(labels):
            out[f"{name}[{g}]"] = (float(means[j]), float(sds[j]), float(errs[j]))
    return out


def write_comparison(comparison: Comparison, folder) -> None:
    """compare.csv (every parameter), timings.csv and compare.json, atomically."""
    with atomic_directory(folder) as tmp:
        comparison.table.to_csv(tmp / "compare.csv", index=False)
        comparison.timings().to_csv(tmp / "timings.csv", index=False)
        summary = {
            "z_tolerance": Z_TOLERANCE,
            "flagged": comparison.flagged["parameter"].tolist(),
            "backends": list(comparison.runs),
        }
        (tmp / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
