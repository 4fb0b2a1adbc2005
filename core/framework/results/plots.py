"""Plots written with a run: hyperparameter posteriors and per-group coefficients.

Drawn with matplotlib directly (no arviz plotting): a few vectorised calls per
panel, so 100,000 groups plot as fast as 50. What is drawn comes as plain data
from figure_data (a plot worker process, plot_process.py, receives only that).
Margins are set in inches from the few texts that need room, not by
tight_layout, which lays every text out an extra time.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

# Figures drawn straight onto Agg canvases: files only, never a display, and no pyplot
# (its global figure manager and GUI machinery cost a tenth of matplotlib's import).
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .figure_data import (
    LABELLED_GROUPS,
    Figures,
    GroupPanel,
    HyperPanel,
    gather,
    group_count,
    group_panels,
)

PANEL_COLUMNS = 4
DPI = 90
TITLE_PT, TICK_PT, GROUP_PT = 9, 7, 6  # font sizes: panel titles, tick labels, group names
PNGS = ("hyperparameters.png", "group_effects.png")


def write_plots(folder: Path, idata, model, estimates, truth: dict | None = None) -> None:
    """hyperparameters.png (per-chain densities) and group_effects.png (90% intervals)."""
    draw_plots(gather(idata, model, estimates, truth), Path(folder))


def draw_plots(figures: Figures, folder: Path, hyperparameters_png: bytes | None = None) -> None:
    """Both PNGs of a run into `folder`, from their gathered data (or the first, drawn already)."""
    if hyperparameters_png is None:
        hyperparameters_png = png(draw_hyperparameters(figures.hyper))
    (folder / PNGS[0]).write_bytes(hyperparameters_png)
    _save(draw_groups(figures.groups, figures.n_groups), folder / PNGS[1])


def png(fig) -> bytes:
    """The figure as PNG bytes, the same bytes savefig writes to a .png file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    return buffer.getvalue()


def group_figure(estimates, model, centre: dict | None = None):
    """Per group term, groups ranked by posterior mean with their 90% intervals.

    `centre` (term -> population value, e.g. beta's mean) is drawn as a dashed
    line: the value every group's coefficient is shrunk towards.
    """
    return draw_groups(group_panels(estimates, model, centre), group_count(estimates, model))


def draw_hyperparameters(hyper: list[HyperPanel]):
    """One panel per scalar parameter: each chain's histogram, the truth as a dashed line."""
    ncols = min(PANEL_COLUMNS, len(hyper))
    nrows = math.ceil(len(hyper) / ncols)
    fig = _figure(3.2 * ncols, 2.4 * nrows)
    # Room for a title above and tick labels below each panel; there are no y ticks.
    _margins(
        fig, (ncols, nrows), left=0.15, right=0.15, top=0.3, bottom=0.3, wspace=0.3, hspace=0.6
    )
    for i, panel in enumerate(hyper):
        ax = fig.add_subplot(nrows, ncols, i + 1)  # only the panels used: no hidden axes
        draws = panel.draws
        edges = np.histogram_bin_edges(draws, bins=40)  # one grid: chains compare bin by bin
        x = np.repeat(edges, 2)
        for chain in draws:  # a step outline as one plain line: patches cost 10x to lay out
            density = np.histogram(chain, bins=edges, density=True)[0]
            ax.plot(x, np.concatenate([[0.0], np.repeat(density, 2), [0.0]]), linewidth=1)
        ax.set_ylim(bottom=0)
        if panel.truth is not None:
            ax.axvline(panel.truth, color="k", linestyle="--", linewidth=1)
        # Names are data (term and level names): "$...$" must not be parsed as mathtext.
        ax.set_title(panel.title, fontsize=TITLE_PT, parse_math=False)
        ax.tick_params(labelsize=TICK_PT)
        ax.set_yticks([])
    return fig


def draw_groups(groups: list[GroupPanel], n_groups: int):
    """Per group term, groups ranked by posterior mean with their 90% intervals and centre."""
    labelled = n_groups <= LABELLED_GROUPS
    height = 0.16 * n_groups + 1.2 if labelled else 3.2
    names = [name for panel in groups for name in panel.names] if labelled else []
    # Labelled: the widest group name sets the room left of each panel.
    label_room = _text_width(names, GROUP_PT) + 0.12 if names else 0.55  # else: tick numbers
    fig = _figure(4 * len(groups), height)
    axes = fig.subplots(1, len(groups), squeeze=False)
    _margins(
        fig,
        (len(groups), 1),
        left=label_room,
        right=0.15,
        top=0.3,
        bottom=0.3 if labelled else 0.5,
        wspace=label_room + 0.1,
    )
    for ax, panel in zip(axes[0], groups, strict=True):
        mean, lo, hi = panel.mean, panel.lo, panel.hi
        rank = np.arange(len(mean))
        if labelled:
            ax.hlines(rank, lo, hi, linewidth=1)
            ax.plot(mean, rank, "o", markersize=2.5)
            ax.set_ylim(-1, len(rank))
            ax.set_yticks([])
            # Plain texts beside the axis: tick objects (a line, two labels each) cost 3x more.
            side = ax.get_yaxis_transform()  # x in axes fractions, y in data
            for r, group in zip(rank, panel.names, strict=True):
                ax.text(
                    -0.01,
                    r,
                    group,
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
        if panel.centre is not None:
            line = ax.axvline if labelled else ax.axhline
            line(panel.centre, color="k", linestyle="--", linewidth=0.8)
        ax.set_title(panel.title, fontsize=TITLE_PT, parse_math=False)
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
