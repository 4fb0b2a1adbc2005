"""What the plots show, as plain data: gathered from a run with numpy alone, drawn by plots.py.

Kept apart from the drawing so that the main process never imports matplotlib when a
plot worker (plot_process.py) draws: these objects are all it sends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABELLED_GROUPS = 60  # up to this many groups: one labelled line each; beyond: a ranked band


@dataclass
class HyperPanel:
    """One scalar parameter: its draws (chains x draws), panel title and the simulation's value."""

    title: str
    draws: np.ndarray
    truth: float | None = None


@dataclass
class GroupPanel:
    """One group term: groups ranked by posterior mean, their 90% intervals and names."""

    term: str
    title: str
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    names: list[str]  # ranked like `mean`; empty beyond LABELLED_GROUPS
    centre: float | None = None  # the population value every group is shrunk towards


@dataclass
class Figures:
    """Everything hyperparameters.png and group_effects.png show."""

    hyper: list[HyperPanel]
    groups: list[GroupPanel]
    n_groups: int


def gather(idata, model, estimates, truth: dict | None = None) -> Figures:
    """The data of both figures: hyperparameter draws, and group intervals centred on beta's mean."""
    beta = idata.posterior["beta"].mean(dim=("chain", "draw"))
    centre = {t: float(beta.sel(term=t)) for t in model.group_term_names}
    return Figures(
        hyperparameter_panels(idata, model, truth),
        group_panels(estimates, model, centre),
        group_count(estimates, model),
    )


def group_count(estimates, model) -> int:
    """How many groups `estimates` holds (one row per group and group term)."""
    return len(estimates) // max(len(model.group_term_names), 1)


def hyperparameter_panels(idata, model, truth: dict | None = None) -> list[HyperPanel]:
    """One panel per scalar parameter of the model, each chain's draws kept apart."""
    from .estimates import true_value  # pandas: already loaded wherever a run is summarised

    panels = []
    for variable, selection in model.hyperparameters():
        draws = np.asarray(idata.posterior[variable].sel(selection).values, dtype=float)
        t = true_value(truth or {}, variable, selection)
        panels.append(
            HyperPanel(model.label(variable, selection), draws, None if t is None else float(t))
        )
    return panels


def group_panels(estimates, model, centre: dict | None = None) -> list[GroupPanel]:
    """Per group term, the groups of `estimates` ranked by posterior mean (stable for ties)."""
    terms = list(model.group_term_names)
    labelled = group_count(estimates, model) <= LABELLED_GROUPS
    panels = []
    for term in terms:
        est = estimates[estimates["term"].to_numpy() == term]
        order = np.argsort(est["mean"].to_numpy(), kind="stable")
        mean, lo, hi = (est[c].to_numpy()[order] for c in ("mean", "q5", "q95"))
        names = [str(g) for g in est["group"].to_numpy()[order]] if labelled else []
        title = f"coef[{term}] by {model.group}"
        panels.append(GroupPanel(term, title, mean, lo, hi, names, (centre or {}).get(term)))
    return panels
