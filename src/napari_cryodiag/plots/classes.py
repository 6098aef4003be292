"""Figures of the class diagnostics (shared by the CLI and the widget).

- :func:`plot_posterior_histograms`: best-class probability and class ESS histograms (or
  RELION's analogues, labelled as such), with the median marked.
- :func:`plot_class_grid`: the class averages in a grid, each labelled with its particle
  count, FRC resolution at 0.5 and median ESS, in a chosen order; selected classes framed.
- :func:`plot_frc_curves`: the per-class half-set FRC curves with the 0.5 threshold.

Each takes an optional ``fig`` (a widget passes ``canvas.clear()``) and returns the figure.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..compute.particles.classes import Histogram, sort_summary
from .style import ink, muted, paper

__all__ = ["plot_posterior_histograms", "plot_class_grid", "plot_frc_curves", "class_label"]

SELECTED_COLOR = "#ff9f1c"


def _new(fig: Figure | None, size=(8, 3.4)) -> Figure:
    if fig is None:
        fig = Figure(figsize=size, layout="constrained")
    return fig


def _hist_axis(ax, h: Histogram | None, color: str, xlabel: str, empty_text: str) -> None:
    if h is None or h.counts.sum() == 0:
        ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes, wrap=True)
        ax.set_xlabel(xlabel)
        return
    e, c = h.edges, h.counts
    ax.bar(e[:-1], c, width=np.diff(e), align="edge", color=color, edgecolor=paper(), linewidth=0.3)
    ax.set_xlim(e[0], e[-1])
    ax.set_xlabel(textwrap.fill(h.label, 48), fontsize=8.5)
    ax.set_ylabel("particles")
    # median from the counts (exact within a bin)
    cum = np.cumsum(c)
    j = int(np.searchsorted(cum, cum[-1] / 2.0))
    mid = 0.5 * (e[j] + e[j + 1])
    ax.axvline(mid, color=ink(), lw=1, ls="--")
    info = f"n = {int(cum[-1]):,}"
    if h.n_nan:
        info += f", {h.n_nan:,} missing"
    if h.n_outside:
        info += f", {h.n_outside:,} outside"
    ax.text(0.97, 0.97, info + f"\nmedian bin ≈ {mid:.3g}", transform=ax.transAxes, va="top",
            ha="right", fontsize=8, bbox=dict(facecolor=paper(), edgecolor="none", alpha=0.8, pad=1.5))


def plot_posterior_histograms(histograms: dict[str, Histogram], fig: Figure | None = None,
                              title: str | None = None, source: str = "", layout: str = "columns") -> Figure:
    """Two panels: best-class probability and class ESS, side by side (``layout="columns"``) or
    one above the other (``"rows"``, for a narrow dock)."""
    fig = _new(fig)
    ax1, ax2 = fig.subplots(2, 1) if layout == "rows" else fig.subplots(1, 2)
    relion = source == "relion"
    _hist_axis(ax1, histograms.get("best_prob"), "tab:blue", "best-class probability",
               "no best-class probability in this file")
    _hist_axis(ax2, histograms.get("ess"), "tab:green", "class ESS", "no class ESS in this file")
    ax1.set_title("RELION analogue of best-class probability" if relion else "Probability of best class",
                  fontsize=9)
    ax2.set_title("RELION analogue of class ESS" if relion else "Class ESS (1 = certain, K = uniform)",
                  fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _fmt_res(v, note: str = "", nyq: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "FRC n/a"
    return f"FRC {'≤' if nyq else ''}{v:.1f} Å"


#: Short name of the median "ESS" in grid labels, by posterior source: RELION's analogue is the
#: number of significant samples, not an ESS.
ESS_SHORT = {"relion": "nSig"}
RELION_GRID_NOTE = "nSig: median rlnNrOfSignificantSamples (RELION's analogue of class ESS)"


def class_label(row: pd.Series, ess_name: str = "ESS") -> str:
    """Two-line label of one class: number and count, FRC resolution and median ESS
    (``ess_name`` names the ESS-like quantity, e.g. ``"nSig"`` for RELION)."""
    ess = row.get("median_ess", np.nan)
    ess_s = f"{ess_name} {ess:.3g}" if ess is not None and np.isfinite(ess) else f"{ess_name} n/a"
    res = _fmt_res(row.get("frc_resolution_A", np.nan), nyq=bool(row.get("frc_nyquist_limited", False)))
    return f"#{int(row['class'])}  n={int(row['count']):,}\n{res}  {ess_s}"


def plot_class_grid(
    summary: pd.DataFrame,
    averages: np.ndarray | None,
    fig: Figure | None = None,
    *,
    sort_by: str = "count",
    ncols: int | None = None,
    selected=(),
    max_classes: int | None = None,
    title: str | None = None,
    footnote: str | None = None,
    ess_name: str = "ESS",
) -> Figure:
    """Grid of class averages labelled with count, FRC resolution (0.5) and median ESS.

    ``summary`` rows carry ``class``, ``count``, ``median_ess``, ``frc_resolution_A`` and
    ``average_index`` (row of ``averages``; -1 draws an empty tile). ``sort_by``: ``count``,
    ``resolution``, ``median_ess`` or ``class``.
    """
    s = sort_summary(summary, sort_by)
    if max_classes is not None:
        s = s.iloc[:max_classes]
    k = max(len(s), 1)
    if ncols is None:
        ncols = min(k, max(4, int(math.ceil(math.sqrt(k * 1.4)))))
    nrows = int(math.ceil(k / ncols))
    if fig is None:
        fig = Figure(figsize=(1.55 * ncols + 0.3, 1.85 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    selected = set(int(c) for c in selected)
    for ax in axes:
        ax.set_axis_off()
    for ax, (_, row) in zip(axes, s.iterrows()):
        idx = int(row.get("average_index", -1)) if "average_index" in row else -1
        img = None if averages is None or idx < 0 or idx >= len(averages) else averages[idx]
        if img is not None:
            lo, hi = np.percentile(img, [1, 99.5])
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        else:
            ax.imshow(np.zeros((8, 8)), cmap="gray", vmin=0, vmax=1)
            ax.text(0.5, 0.5, "no average", color="w", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        sel = int(row["class"]) in selected
        for sp in ax.spines.values():
            sp.set_visible(sel)
            sp.set_color(SELECTED_COLOR)
            sp.set_linewidth(3)
        ax.set_title(class_label(row, ess_name), fontsize=7.5, color=SELECTED_COLOR if sel else ink(), pad=2)
    head = title or "2D classes"
    head += f" — sorted by {sort_by.replace('_', ' ')}"
    fig.suptitle(head, fontsize=10)
    if footnote:
        width = max(60, int(ncols * 1.55 * 14))
        fig.supxlabel(textwrap.fill(footnote, width), fontsize=7, color=muted(0.7))
    return fig


def plot_frc_curves(class_averages, fig: Figure | None = None, *, max_curves: int = 30) -> Figure:
    """Half-set FRC of every class (best resolution first), with the threshold line."""
    from ..compute.fourier import shell_frequencies_invA

    fig = _new(fig, size=(6.5, 4))
    ax = fig.subplots()
    ca = class_averages
    n = ca.averages.shape[-1]
    f = shell_frequencies_invA(n, ca.pixel_size_A)
    order = np.argsort(np.where(np.isfinite(ca.frc_resolution_A), ca.frc_resolution_A, np.inf))
    cmap = __import__("matplotlib").colormaps["viridis"]
    shown = [i for i in order if np.isfinite(ca.frc[i]).all()][:max_curves]
    for j, i in enumerate(shown):
        res = ca.frc_resolution_A[i]
        ax.plot(f, ca.frc[i], color=cmap(j / max(len(shown) - 1, 1)), lw=1.2,
                label=f"#{int(ca.labels[i])} ({res:.1f} Å)")
    ax.axhline(ca.threshold, color=ink(), ls="--", lw=1)
    ax.text(f[-1], ca.threshold, f" {ca.threshold:g}", va="bottom", ha="right", fontsize=8)
    ax.set_xlim(0, f[-1])
    ax.set_ylim(-0.2, 1.05)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FRC of half-set averages")
    sec = ax.secondary_xaxis("top", functions=(lambda x: 1 / np.maximum(x, 1e-9), lambda x: 1 / np.maximum(x, 1e-9)))
    sec.set_xlabel("resolution (Å)", fontsize=8)
    ticks = [t for t in (50, 20, 12, 8, 6, 5, 4, 3) if 1 / t <= f[-1]]
    sec.set_xticks(ticks)
    ax.set_title(f"Class FRC ({ca.ctf_mode.replace('_', '-')} averages, halves: {ca.halves})", fontsize=10)
    if shown:
        ax.legend(fontsize=7, ncols=2 if len(shown) > 8 else 1, loc="upper right")
    return fig
