"""Plots written with a run: hyperparameter posteriors and per-group coefficients.

Drawn with matplotlib directly (no arviz plotting): a few vectorised calls per
panel, so 100,000 groups plot as fast as 50. Panels come from the Model's
hyperparameters and group terms. Margins are set in inches from the few texts
that need room, not by tight_layout, which lays every text out an extra time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

# Figures drawn straight onto Agg canvases: files only, never a display, and no pyplot
# (its global figure manager and GUI machinery cost a tenth of matplotlib's import).
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .estimates import true_value

LABELLED_GROUPS = 60  # up to this many groups: one labelled line each; beyond: a ranked band
PANEL_COLUMNS = 4
DPI = 90
TITLE_PT, TICK_PT, GROUP_PT = 9, 7, 6  # font sizes: panel titles, tick labels, group names


def write_plots(folder: Path, idata, model, estimates, truth: dict | None = None) -> None:
    """hyperparameters.png (per-chain densities) and group_effects.png (90% intervals)."""
    _save(hyperparameter_figure(idata, model, truth), Path(folder) / "hyperparameters.png")
    beta = idata.posterior["beta"].mean(dim=("chain", "draw"))
    centre = {t: float(beta.sel(term=t)) for t in model.group_term_names}
    _save(group_figure(estimates, model, centre), Path(folder) / "group_effects.png")


def hyperparameter_figure(idata, model, truth: dict | None = None):
    """One panel per scalar parameter: each chain's histogram, the truth as a dashed line."""
    hyper = model.hyperparameters()
    ncols = min(PANEL_COLUMNS, len(hyper))
    nrows = math.ceil(len(hyper) / ncols)
    fig = _figure(3.2 * ncols, 2.4 * nrows)
    # Room for a title above and tick labels below each panel; there are no y ticks.
    _margins(
        fig, (ncols, nrows), left=0.15, right=0.15, top=0.3, bottom=0.3, wspace=0.3, hspace=0.6
    )
    for i, (variable, selection) in enumerate(hyper):
        ax = fig.add_subplot(nrows, ncols, i + 1)  # only the panels used: no hidden axes
        draws = np.asarray(idata.posterior[variable].sel(selection).values, dtype=float)
        edges = np.histogram_bin_edges(draws, bins=40)  # one grid: chains compare bin by bin
        x = np.repeat(edges, 2)
        for chain in draws:  # a step outline as one plain line: patches cost 10x to lay out
            density = np.histogram(chain, bins=edges, density=True)[0]
            ax.plot(x, np.concatenate([[0.0], np.repeat(density, 2), [0.0]]), linewidth=1)
        ax.set_ylim(bottom=0)
        t = true_value(truth or {}, variable, selection)
        if t is not None:
            ax.axvline(float(t), color="k", linestyle="--", linewidth=1)
        # Names are data (term and level names): "$...$" must not be parsed as mathtext.
        ax.set_title(model.label(variable, selection), fontsize=TITLE_PT, parse_math=False)
        ax.tick_params(labelsize=TICK_PT)
        ax.set_yticks([])
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
    names = [str(g) for g in estimates["group"].to_numpy()] if labelled else []
    # Labelled: the widest group name sets the room left of each panel.
    label_room = _text_width(names, GROUP_PT) + 0.12 if names else 0.55  # else: tick numbers
    fig = _figure(4 * len(terms), height)
    axes = fig.subplots(1, len(terms), squeeze=False)
    _margins(
        fig,
        (len(terms), 1),
        left=label_room,
        right=0.15,
        top=0.3,
        bottom=0.3 if labelled else 0.5,
        wspace=label_room + 0.1,
    )
    for ax, term in zip(axes[0], terms, strict=True):
        est = estimates[estimates["term"].to_numpy() == term]
        order = np.argsort(est["mean"].to_numpy(), kind="stable")
        mean, lo, hi = (est[c].to_numpy()[order] for c in ("mean", "q5", "q95"))
        rank = np.arange(len(order))
        if labelled:
            ax.hlines(rank, lo, hi, linewidth=1)
            ax.plot(mean, rank, "o", markersize=2.5)
            ax.set_ylim(-1, len(rank))
            ax.set_yticks([])
            # Plain texts beside the axis: tick objects (a line, two labels each) cost 3x more.
            side = ax.get_yaxis_transform()  # x in axes fractions, y in data
            for r, group in zip(rank, est["group"].to_numpy()[order], strict=True):
                ax.text(
                    -0.01,
                    r,
                    str(group),
                    transform=side,
                    ha="right",
                    va="center",
                    fontsize=GROUP_PT,
                    parse_math=False,
                )
        else:
            # Thousands of groups: the intervals as one band and the means as one line.
            ax.fill_between(rank, lo, hi, alpha=0.3, linewidth=0, label="90% interval")
            ax.plot(rank, mean, linewidth=1, label="mean")
            ax.set_xlabel(f"{n_groups:,} groups, ranked by posterior mean", fontsize=8)
            ax.legend(fontsize=7, loc="upper left")
        if centre and term in centre:
            line = ax.axvline if labelled else ax.axhline
            line(centre[term], color="k", linestyle="--", linewidth=0.8)
        ax.set_title(f"coef[{term}] by {model.group}", fontsize=TITLE_PT, parse_math=False)
        ax.tick_params(labelsize=TICK_PT)
    return fig


def _figure(width: float, height: float) -> Figure:
    """A figure of `width` x `height` inches on its own Agg canvas."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # sets fig.canvas
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI)


def _margins(fig, grid, left, right, top, bottom, wspace, hspace=0.0) -> None:
    """Margins and gaps in inches for a (columns, rows) grid; matplotlib wants fractions."""
    width, height = fig.get_size_inches()
    ncols, nrows = grid
    panel_w = (width - left - right - wspace * (ncols - 1)) / ncols
    panel_h = (height - top - bottom - hspace * (nrows - 1)) / nrows
    fig.subplots_adjust(
        left=min(left / width, 0.45),
        right=max(1 - right / width, 0.55),
        bottom=min(bottom / height, 0.45),
        top=max(1 - top / height, 0.55),
        wspace=max(wspace / max(panel_w, 0.1), 0.0),  # gaps are fractions of a panel
        hspace=max(hspace / max(panel_h, 0.1), 0.0),
    )


def _text_width(texts: list[str], points: float) -> float:
    """Width in inches of the widest of `texts` at `points` in matplotlib's default font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(size=points)
    measure = TextToPath().get_text_width_height_descent  # in points
    return max(measure(t, prop, ismath=False)[0] for t in set(texts)) / 72
