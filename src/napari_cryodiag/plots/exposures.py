"""Curating exposures: one per-micrograph statistic against another, kept and dropped micrographs
in two colours, the thresholds on either axis drawn as lines (cryoSPARC's Curate Exposures).
Used by Inspect Picks' Micrographs tab and by ``cryodiag picks --exposure`` (``exposures.png``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..compute.picks.exposures import statistic_label
from .style import ink, muted

__all__ = ["plot_exposure_scatter", "KEPT_COLOUR", "DROPPED_COLOUR"]

KEPT_COLOUR = "#4fa3e0"
DROPPED_COLOUR = "#e8684a"


def plot_exposure_scatter(stats: pd.DataFrame, x: str, y: str, fig: Figure | None = None, *, keep=None,
                          bounds: dict | None = None, current: int | None = None):
    """Scatter of statistic ``y`` against ``x`` over the rows of ``stats`` (one per micrograph);
    ``keep`` (bool per row) colours kept and dropped micrographs; ``bounds`` (``{statistic: (min,
    max)}``) draws the thresholds on the two axes; ``current`` rings one row (the micrograph
    shown). Micrographs without a value on an axis are left out and counted in the title.
    Returns ``(fig, ax, points)`` with ``points``: the row of each plotted point, in order."""
    if fig is None:
        fig = Figure(figsize=(4.2, 3.4), layout="constrained")
    ax = fig.add_subplot(111)
    n = len(stats)
    keep = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    xv = pd.to_numeric(stats[x], errors="coerce").to_numpy(np.float64) if x in stats.columns else np.full(n, np.nan)
    yv = pd.to_numeric(stats[y], errors="coerce").to_numpy(np.float64) if y in stats.columns else np.full(n, np.nan)
    ok = np.isfinite(xv) & np.isfinite(yv)
    rows = np.flatnonzero(ok)
    for mask, colour, label in ((ok & keep, KEPT_COLOUR, "kept"), (ok & ~keep, DROPPED_COLOUR, "dropped")):
        if mask.any():
            ax.scatter(xv[mask], yv[mask], s=16, color=colour, alpha=0.85, linewidth=0,
                       label=f"{label} ({int(mask.sum()):,})")
    if current is not None and 0 <= current < n and ok[current]:
        ax.scatter([xv[current]], [yv[current]], s=70, facecolor="none", edgecolor=ink(), linewidth=1.2)
    for name, line in ((x, ax.axvline), (y, ax.axhline)):
        lo, hi = (bounds or {}).get(name, (None, None))
        for v in (lo, hi):
            if v is not None:
                line(v, color=DROPPED_COLOUR, linewidth=1.0, linestyle="--")
    ax.set_xlabel(statistic_label(x))
    ax.set_ylabel(statistic_label(y))
    missing = int(n - ok.sum())
    title = f"{int(keep.sum()):,} of {n:,} micrographs kept"
    if missing:
        title += f" ({missing:,} without a value not shown)"
    ax.set_title(title)
    if ok.any():
        ax.legend(loc="best", frameon=False, markerscale=1.0, handletextpad=0.2)
    ax.grid(True, color=muted(0.25), linewidth=0.4)
    return fig, ax, rows
