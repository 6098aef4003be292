"""The 2D pick-score histogram (x: NCC, y: power by default) with threshold lines.

:func:`plot_pick_histogram` builds the figure once (the CLI saves it; the widget shows it);
the returned :class:`PickHistogramPlot` then updates in place, cheaply, from precomputed
counts (:meth:`~PickHistogramPlot.set_counts`), thresholds
(:meth:`~PickHistogramPlot.set_thresholds`) and kept/total numbers
(:meth:`~PickHistogramPlot.set_title_counts`), so the widget never rebuilds the figure while
the user drags.

Counts are shown on a logarithmic colour scale; empty bins are left blank. A single score (a
histogram with one y bin, ``PickInspection.one_d``) is drawn as a 1D histogram (picks per bin)
with its low/high thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from ..compute.picks.histogram import PickHistogram
from ..compute.picks.thresholds import Thresholds

LINE_STYLE = dict(color="tab:red", lw=1.6, alpha=0.9)
POLYGON_STYLE = dict(fill=False, edgecolor="tab:orange", lw=1.8, ls="-")


def _include_thresholds(ax, t: Thresholds | None, *, x: bool, y: bool) -> None:
    """Widen the view to the threshold lines that lie outside the histogram's range (a suggested
    minimum below every pick): a line the user cannot see cannot be dragged."""
    if t is None:
        return
    for on, get, set_, vals, log in ((x, ax.get_xlim, ax.set_xlim, (t.x_min, t.x_max), ax.get_xscale() == "log"),
                                     (y, ax.get_ylim, ax.set_ylim, (t.y_min, t.y_max), ax.get_yscale() == "log")):
        vals = [float(v) for v in vals if v is not None and np.isfinite(v) and (v > 0 or not log)]
        if not on or not vals:
            continue
        lo, hi = get()
        if log:
            f = (hi / lo) ** 0.03
            set_(min(lo, min(vals) / f), max(hi, max(vals) * f))
        else:
            pad = 0.03 * (hi - lo)
            set_(min(lo, min(vals) - pad), max(hi, max(vals) + pad))


def _log_ticks(axis) -> None:
    """Ticks at 1, 2 and 5 per decade, labelled plainly (5000, 10000, 20000), as major ticks and
    no minor ticks: a log axis's eight minor ticks per decade cost most of a full redraw (the
    layout measures every tick) and their labels are not shown anyway."""
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def _masked(counts: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.masked_less(np.asarray(counts), 1)


@dataclass
class PickHistogramPlot:
    """Handles on the artists of the histogram figure, for in-place updates."""

    fig: Figure
    ax: object
    mesh: object
    colorbar: object
    lines: dict = field(default_factory=dict)  # "x_min", "x_max", "y_min", "y_max" -> Line2D
    polygon: Polygon | None = None
    x_label: str = ""
    y_label: str = ""
    title_prefix: str = ""
    one_d: bool = False
    #: where the counts title goes instead of the axes' title (a widget's live title: a Qt label
    #: that repaints at each step for far less than the figure's text), or None: in the figure
    title_sink: Callable[[str], None] | None = None

    @property
    def animated_artists(self) -> list:
        """What changes while thresholds move (redrawn by blitting): lines, polygon, title."""
        arts = list(self.lines.values()) + ([self.ax.title] if self.title_sink is None else [])
        if self.polygon is not None:
            arts.append(self.polygon)
        return arts

    def set_counts(self, counts: np.ndarray) -> None:
        """Replace the histogram's counts (shape ``(n_y, n_x)``) without rebuilding."""
        counts = np.asarray(counts)
        if self.one_d:
            c = counts.reshape(-1).astype(float)
            self.mesh.set_data(c)
            top = max(float(c.max()) if c.size else 1.0, 1.0)
            self.ax.set_ylim(0, top * 1.08)
            return
        self.mesh.set_array(_masked(counts))
        vmax = max(float(counts.max()) if counts.size else 1.0, 1.0 + 1e-9)
        if vmax != self.mesh.norm.vmax:  # the colour bar only changes with the maximum
            self.mesh.norm.vmin = 1.0
            self.mesh.norm.vmax = vmax
            self.colorbar.update_normal(self.mesh)
            _log_ticks(self.colorbar.ax.yaxis)

    def can_show(self, hist: PickHistogram) -> bool:
        """Whether :meth:`show_histogram` can draw ``hist`` in this figure: the same kind (1D or
        2D) on the same axis scales."""
        return (hist.n_y == 1) == self.one_d and (self.ax.get_xscale() == "log") == bool(hist.log_x) and (
            self.one_d or (self.ax.get_yscale() == "log") == bool(hist.log_y))

    def show_histogram(self, hist: PickHistogram, *, counts: np.ndarray | None = None,
                       thresholds: Thresholds | None = None, x_label: str = "", y_label: str = "") -> None:
        """Draw another histogram of the same kind (:meth:`can_show`) in place: new bins, counts,
        limits and labels in the same axes and colour bar. A calibration toggled or another score
        then costs no new figure (its axes, ticks and colour bar are most of a new figure's cost)."""
        ax = self.ax
        self.mesh.remove()
        self.mesh = _draw_counts(ax, hist, hist.counts() if counts is None else counts,
                                 None if self.one_d else self.colorbar.cmap)
        if not self.one_d:
            ax.set_ylim(hist.y_edges[0], hist.y_edges[-1])
            ax.set_ylabel(y_label + (" (log scale)" if hist.log_y else ""))
            self.colorbar.update_normal(self.mesh)
            _log_ticks(self.colorbar.ax.yaxis)
        ax.set_xlim(hist.x_edges[0], hist.x_edges[-1])
        ax.set_xlabel(x_label)
        self.x_label, self.y_label = x_label, y_label
        self.set_thresholds(thresholds)
        _include_thresholds(ax, thresholds, x=True, y=not self.one_d)

    def set_thresholds(self, t: Thresholds | None) -> None:
        """Move (or hide) the threshold lines and the polygon."""
        values = {
            "x_min": None if t is None else t.x_min,
            "x_max": None if t is None else t.x_max,
            "y_min": None if t is None else t.y_min,
            "y_max": None if t is None else t.y_max,
        }
        for name, line in self.lines.items():
            v = values[name]
            if v is None or not np.isfinite(v):
                line.set_visible(False)
                continue
            line.set_visible(True)
            if name.startswith("x"):
                line.set_xdata([v, v])
            else:
                line.set_ydata([v, v])
        poly = None if t is None else t.polygon
        if poly is not None and len(poly) >= 3:
            xy = np.asarray(poly, dtype=float)
            if self.polygon is None:
                self.polygon = Polygon(xy, closed=True, **POLYGON_STYLE)
                self.ax.add_patch(self.polygon)
            else:
                self.polygon.set_xy(xy)
            self.polygon.set_visible(True)
        elif self.polygon is not None:
            self.polygon.set_visible(False)

    def set_title_counts(self, n_kept: int, n_total: int, *, n_missing: int = 0, extra: str = "") -> None:
        """Title with the kept/total counts (and NaN picks, which are in no bin)."""
        text = title_text(n_kept, n_total, n_missing=n_missing, extra=extra, prefix=self.title_prefix)
        if self.title_sink is not None:
            self.title_sink(text)
        else:
            self.ax.set_title(text, fontsize=10)


def title_text(n_kept: int, n_total: int, *, n_missing: int = 0, extra: str = "", prefix: str = "") -> str:
    pct = 100.0 * n_kept / n_total if n_total else 0.0
    s = f"{prefix}kept {n_kept:,} / {n_total:,} ({pct:.1f} %)"
    if n_missing:
        s += f"; {n_missing:,} without a value (not shown)"
    if extra:
        s += f"\n{extra}"
    return s


def _draw_counts(ax, hist: PickHistogram, counts, cmap):
    """The histogram's artist in ``ax``: a 1D histogram's steps (with the y range of its counts),
    or a 2D histogram's mesh on a logarithmic colour scale (empty bins blank)."""
    counts = np.asarray(counts)
    if hist.n_y == 1:
        c = counts.reshape(-1).astype(float)
        mesh = ax.stairs(c, hist.x_edges, fill=True, color="tab:blue", alpha=0.85)
        ax.set_ylim(0, max(float(c.max()) if c.size else 1.0, 1.0) * 1.08)
        return mesh
    vmax = max(float(np.max(counts)) if counts.size else 1.0, 1.0 + 1e-9)
    return ax.pcolormesh(hist.x_edges, hist.y_edges, _masked(counts), norm=LogNorm(vmin=1.0, vmax=vmax), cmap=cmap,
                         shading="flat", rasterized=True)


def plot_pick_histogram(
    fig: Figure | None,
    hist: PickHistogram,
    *,
    counts: np.ndarray | None = None,
    thresholds: Thresholds | None = None,
    n_kept: int | None = None,
    n_total: int | None = None,
    x_label: str = "NCC score",
    y_label: str = "power score",
    title_prefix: str = "",
    extra_title: str = "",
    cmap: str = "viridis",
) -> PickHistogramPlot:
    """Draw the 2D histogram of ``hist`` into ``fig`` (a new Figure when None).

    ``counts`` defaults to all picks (``hist.counts()``). When ``n_kept`` is given the title
    reads "kept n_kept / n_total"; otherwise it shows the number of picks only.
    """
    if fig is None:
        fig = Figure(figsize=(6, 4.8), layout="constrained")
    ax = fig.add_subplot(111)
    if counts is None:
        counts = hist.counts()
    one_d = hist.n_y == 1
    face = matplotlib.rcParams["axes.facecolor"]
    cb = None
    mesh = _draw_counts(ax, hist, counts, cmap)
    if one_d:
        ax.set_ylabel("picks per bin")
    else:
        if hist.log_y:
            ax.set_yscale("log")
            _log_ticks(ax.yaxis)
        ax.set_ylim(hist.y_edges[0], hist.y_edges[-1])
        ax.set_ylabel(y_label + (" (log scale)" if hist.log_y else ""))
        ax.set_facecolor("#f4f4f4" if face in ("white", "#ffffff", "w") else face)
        cb = fig.colorbar(mesh, ax=ax, pad=0.01)
        cb.set_label("picks per bin (log scale)")
        _log_ticks(cb.ax.yaxis)
    if hist.log_x:
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)
    ax.set_xlim(hist.x_edges[0], hist.x_edges[-1])
    ax.set_xlabel(x_label)
    lines = {
        "x_min": ax.axvline(np.nan, **LINE_STYLE),
        "x_max": ax.axvline(np.nan, ls="--", **LINE_STYLE),
        "y_min": ax.axhline(np.nan, **LINE_STYLE),
        "y_max": ax.axhline(np.nan, ls="--", **LINE_STYLE),
    }
    for line in lines.values():
        line.set_visible(False)
    plot = PickHistogramPlot(
        fig=fig, ax=ax, mesh=mesh, colorbar=cb, lines=lines,
        x_label=x_label, y_label=y_label, title_prefix=title_prefix, one_d=one_d,
    )
    plot.set_thresholds(thresholds)
    _include_thresholds(ax, thresholds, x=True, y=not one_d)
    total = hist.n_picks if n_total is None else n_total
    if n_kept is None:
        ax.set_title(f"{title_prefix}{total:,} picks"
                     + (f"; {hist.n_missing:,} without a value (not shown)" if hist.n_missing else "")
                     + (f"\n{extra_title}" if extra_title else ""), fontsize=10)
    else:
        plot.set_title_counts(n_kept, total, n_missing=hist.n_missing, extra=extra_title)
    return plot
