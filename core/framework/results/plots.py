"""Plots written with a run: hyperparameter posteriors and per-group coefficients.

Drawn with matplotlib directly (no arviz plotting): a few vectorised calls per
panel, so 100,000 groups plot as fast as 50. Panels come from the Model's
hyperparameters and group terms.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .estimates import true_value  # noqa: E402

LABELLED_GROUPS = 60  # up to this many groups: one labelled line each; beyond: a ranked band
PANEL_COLUMNS = 4


def write_plots(folder: Path, idata, model, estimates, truth: dict | None = None) -> None:
    """hyperparameters.png (per-chain densities) and group_effects.png (90% intervals)."""
    hyperparameter_figure(idata, model, truth).savefig(Path(folder) / "hyperparameters.png", dpi=90)
    beta = idata.posterior["beta"].mean(dim=("chain", "draw"))
    centre = {t: float(beta.sel(term=t)) for t in model.group_term_names}
    group_figure(estimates, model, centre).savefig(Path(folder) / "group_effects.png", dpi=90)
    plt.close("all")


def hyperparameter_figure(idata, model, truth: dict | None = None):
    """One panel per scalar parameter: each chain's histogram, the truth as a dashed line."""
    hyper = model.hyperparameters()
    ncols = min(PANEL_COLUMNS, len(hyper))
    nrows = math.ceil(len(hyper) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax, (variable, selection) in zip(axes.ravel(), hyper, strict=False):
        draws = np.asarray(idata.posterior[variable].sel(selection).values, dtype=float)
        for chain in draws:
            ax.hist(chain, bins=40, histtype="step", density=True)
        t = true_value(truth or {}, variable, selection)
        if t is not None:
            ax.axvline(float(t), color="k", linestyle="--", linewidth=1)
        # Names are data (term and level names): "$...$" must not be parsed as mathtext.
        ax.set_title(model.label(variable, selection), fontsize=9, parse_math=False)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in axes.ravel()[len(hyper) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def group_figure(estimates, model, centre: dict | None = None):
    """Per group term, groups ranked by posterior mean with their 90% intervals.

    `centre` (term -> population value, e.g. beta's mean) is drawn as a dashed
    line: the value every group's coefficient is shrunk towards.
    """
    terms = list(model.group_term_names)
    n_groups = len(estimates) // max(len(terms), 1)
    labelled = n_groups <= LABELLED_GROUPS
    height = 0.16 * n_groups + 1.2 if labelled else 3.2
    fig, axes = plt.subplots(1, len(terms), figsize=(4 * len(terms), height), squeeze=False)
    for ax, term in zip(axes[0], terms, strict=True):
        est = estimates[estimates["term"].to_numpy() == term]
        order = np.argsort(est["mean"].to_numpy(), kind="stable")
        mean, lo, hi = (est[c].to_numpy()[order] for c in ("mean", "q5", "q95"))
        rank = np.arange(len(order))
        if labelled:
            ax.hlines(rank, lo, hi, linewidth=1)
            ax.plot(mean, rank, "o", markersize=2.5)
            names = est["group"].to_numpy()[order]
            ax.set_yticks(rank, [str(g) for g in names], fontsize=6, parse_math=False)
            ax.set_ylim(-1, len(rank))
        else:
            # Thousands of groups: the intervals as one band and the means as one line.
            ax.fill_between(rank, lo, hi, alpha=0.3, linewidth=0, label="90% interval")
            ax.plot(rank, mean, linewidth=1, label="mean")
            ax.set_xlabel(f"{n_groups:,} groups, ranked by posterior mean", fontsize=8)
            ax.legend(fontsize=7, loc="upper left")
        if centre and term in centre:
            line = ax.axvline if labelled else ax.axhline
            line(centre[term], color="k", linestyle="--", linewidth=0.8)
        ax.set_title(f"coef[{term}] by {model.group}", fontsize=9, parse_math=False)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig
