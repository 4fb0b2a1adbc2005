"""Plots written with a run: hyperparameter posteriors and per-group effects."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .priors import HYPERPARAMETERS  # noqa: E402

MAX_GROUPS_SHOWN = 60


def write_plots(folder: Path, result) -> None:
    """hyperparameters.png (per-chain densities) and group_effects.png (90% intervals)."""
    post = result.idata.posterior
    fig, axes = plt.subplots(1, len(HYPERPARAMETERS), figsize=(3.2 * len(HYPERPARAMETERS), 2.6))
    truth = result.dataset.truth or {}
    for ax, name in zip(axes, HYPERPARAMETERS, strict=True):
        for chain in post.coords["chain"].values:
            ax.hist(post[name].sel(chain=chain).values, bins=40, histtype="step", density=True)
        if name in truth:
            ax.axvline(truth[name], color="k", linestyle="--", linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(folder / "hyperparameters.png", dpi=90)
    plt.close(fig)

    est = result.estimates.head(MAX_GROUPS_SHOWN)
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.18 * len(est) + 1.2), sharey=True)
    y = np.arange(len(est))[::-1]
    for ax, name in zip(axes, ("intercept", "slope"), strict=True):
        ax.hlines(y, est[f"{name}_q5"], est[f"{name}_q95"], linewidth=1)
        ax.plot(est[f"{name}_mean"], y, "o", markersize=2.5)
        ax.set_title(f"{name} (mean, 90% interval)", fontsize=9)
        ax.tick_params(labelsize=6)
    # Labels are data: "$...$" in a label must not be parsed as mathtext (it can raise).
    axes[0].set_yticks(y, est["group"], fontsize=6, parse_math=False)
    fig.tight_layout()
    fig.savefig(folder / "group_effects.png", dpi=90)
    plt.close(fig)
