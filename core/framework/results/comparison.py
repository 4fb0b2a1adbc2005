"""Run one spec on several backends and test that their posteriors agree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .convergence import mcse_mean
from .csv_cells import write_csv
from .run_directory import atomic_directory

if TYPE_CHECKING:  # the runner imports the results stage: import it back only when fitting
    from ..runner import RunResult
    from ..spec.load import Spec

# Two correct samplers' posterior means differ by a normal error with variance
# mcse_a^2 + mcse_b^2, so |z| > 4 happens with probability 6e-5 per parameter
# (under 1% over the ~100 parameters of the rainfall case) when they agree.
Z_TOLERANCE = 4.0
COLUMN_BLOCK = 1024


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
    from ..runner import fit, prepare, summarise

    prepared = {}
    for name in backends:  # every backend found, available and its options valid before any fits
        own = name == spec.backend.name
        options = dict(spec.backend.options) if own else {}
        backend = spec.backend.model_copy(update={"name": name, "options": options})
        # A problem with a backend named only on the command line is reported at --backends.
        lines = spec.lines if own else {**spec.lines, ("backend", "name"): f"--backends {name}"}
        variant = spec.model_copy(update={"backend": backend, "lines": lines})
        prepared[name] = prepare(variant, progress)
    runs = {}
    for name, ready in prepared.items():
        if progress:
            progress(f"backend {name}: fitting")
        runs[name] = summarise(ready, fit(ready))
    return Comparison(agreement_table(runs), runs)


def agreement_table(runs: dict[str, RunResult]) -> pd.DataFrame:
    """Per parameter: each backend's mean, and the largest pairwise difference in MCSE and sd units."""
    names = list(runs)
    model = runs[names[0]].model
    per = {n: moments(runs[n].idata, model) for n in names}
    first = per[names[0]]
    table = pd.DataFrame({"variable": first["variable"], "parameter": first["parameter"]})
    worst_z = np.zeros(len(table))
    worst_sd = np.zeros(len(table))
    for n in names:
        table[f"mean_{n}"] = per[n]["mean"]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = np.abs(per[a]["mean"] - per[b]["mean"])
            worst_z = np.maximum(worst_z, diff / np.hypot(per[a]["mcse"], per[b]["mcse"]))
            worst_sd = np.maximum(worst_sd, diff / (0.5 * (per[a]["sd"] + per[b]["sd"])))
    table["diff_mcse"] = worst_z
    table["diff_sd"] = worst_sd
    table["flagged"] = worst_z > Z_TOLERANCE
    return table


def moments(idata, model) -> dict[str, np.ndarray]:
    """Every scalar parameter and every coef element: label, mean, sd and MCSE of the mean."""
    post = idata.posterior
    hyper = model.hyperparameters()
    blocks = [np.stack([np.asarray(post[v].sel(s).values, float) for v, s in hyper], axis=-1)]
    variables = [v for v, _ in hyper]
    labels = [model.label(v, s) for v, s in hyper]
    if "coef" in post:  # absent under output.group_draws: none (only hyperparameters compared)
        coef = post["coef"].transpose("chain", "draw", "group", "group_term")
        groups = [str(g) for g in coef.coords["group"].values]
        values = coef.values
        blocks.append(values.reshape(*values.shape[:2], -1))  # a view: (chain, draw, J * q)
        for g in groups:
            for t in model.group_term_names:
                variables.append("coef")
                labels.append(model.label("coef", {"group": g, "group_term": t}))
    means, sds, errs = [], [], []
    for x in blocks:
        flat = x.reshape(-1, x.shape[2])
        # Columns a block at a time: std's temporaries stay small next to `coef`.
        for start in range(0, flat.shape[1], COLUMN_BLOCK):
            part = np.asarray(flat[:, start : start + COLUMN_BLOCK], dtype=float)
            means.append(part.mean(axis=0))
            sds.append(part.std(axis=0, ddof=1))
        errs.append(mcse_mean(x))
    return {
        "variable": np.asarray(variables, dtype=object),
        "parameter": np.asarray(labels, dtype=object),
        "mean": np.concatenate(means),
        "sd": np.concatenate(sds),
        "mcse": np.concatenate(errs),
    }


def write_comparison(comparison: Comparison, folder, spec=None, where="output.dir") -> None:
    """compare.csv (every parameter), timings.csv and compare.json, atomically."""
    with atomic_directory(folder, spec, where) as tmp:
        write_csv(comparison.table, tmp / "compare.csv")
        write_csv(comparison.timings(), tmp / "timings.csv")
        summary = {
            "z_tolerance": Z_TOLERANCE,
            "flagged": comparison.flagged["parameter"].tolist(),
            "backends": list(comparison.runs),
        }
        (tmp / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
