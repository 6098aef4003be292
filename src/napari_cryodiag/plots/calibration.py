"""Score-vs-defocus calibration plots (cryoSPARC's "Calibrate Pick/Power Score to CTF").

One column per calibrated score (e.g. NCC and power). Top row: per-micrograph median score
against defocus with the fitted robust line (before calibration). Bottom row: the medians of
the calibrated scores with the level a flat trend sits at (1 for ratios, 0 for differences)
and the residual fit, which should be flat (after calibration).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..compute.picks.calibration import Calibration

_LABELS = {
    "ncc": "NCC score",
    "power": "power score",
    "rlnAutopickFigureOfMerit": "RELION autopick FOM",
    "Confidence": "crYOLO confidence",
}


def _label(score: str) -> str:
    return _LABELS.get(score, score)


def plot_calibration(
    calibrations: Calibration | Sequence[Calibration],
    fig: Figure | None = None,
    *,
    show_after: bool = True,
    layout: str = "columns",
) -> Figure:
    """Draw median score vs defocus with the fitted line, before (and after) calibration.

    Parameters
    ----------
    calibrations
        One :class:`~napari_cryodiag.compute.picks.calibration.Calibration` or several (one column each).
    fig
        Figure to draw into (cleared by the caller, e.g. ``MplCanvas.clear()``); a new one when None.
    show_after
        Add the bottom row with the calibrated medians.
    layout
        ``"columns"``: one column per score (before above after); ``"rows"``: one column, each
        score's before and after one under the other (for a narrow dock).
    """
    cals = [calibrations] if isinstance(calibrations, Calibration) else list(calibrations)
    # the same calibration twice (one score on both histogram axes) is drawn once
    def _key(c):
        return (c.score, c.method, c.mode, getattr(c, "scale", "linear"), float(c.slope), float(c.intercept))

    cals = list({_key(c): c for c in cals}.values())
    if fig is None:
        fig = Figure(figsize=(4.6 * max(1, len(cals)), 7.0 if show_after else 3.8), layout="constrained")
    if not cals:
        ax = fig.add_subplot(111)
        ax.text(0.5, 0.5, "no calibration", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    per_score = 2 if show_after else 1
    if layout == "rows":
        grid_axes = fig.subplots(per_score * len(cals), 1, squeeze=False)
        axes_of = [[grid_axes[per_score * j + k, 0] for k in range(per_score)] for j in range(len(cals))]
    else:
        grid_axes = fig.subplots(per_score, len(cals), squeeze=False)
        axes_of = [[grid_axes[k, j] for k in range(per_score)] for j in range(len(cals))]
    for j, cal in enumerate(cals):
        per = cal.per_micrograph
        df_um = per["defocus_A"].to_numpy(dtype=float) / 1e4
        med = per["median"].to_numpy(dtype=float)
        n = per["n_scored"].to_numpy(dtype=float)
        size = 12 + 60 * np.sqrt(n / max(1.0, float(np.nanmax(n)) if n.size else 1.0))
        ok = np.isfinite(df_um) & np.isfinite(med)
        grid = np.linspace(np.nanmin(df_um[ok]), np.nanmax(df_um[ok]), 50) if ok.any() else np.array([0.0, 1.0])
        ax = axes_of[j][0]
        ax.scatter(df_um[ok], med[ok], s=size[ok], color="#1f77b4", alpha=0.8, edgecolor="white", linewidth=0.5,
                   label="micrograph median")
        fit_label = (f"{cal.method} fit (log): x{np.exp(cal.slope * 1e4):.3g} per µm" if getattr(cal, "scale", "linear") == "log"
                     else f"{cal.method} fit: {cal.slope * 1e4:+.3g} per µm")
        ax.plot(grid, cal.line(grid * 1e4), color="#d62728", lw=1.8, label=fit_label)
        ax.set_xlabel("defocus (µm)")
        ax.set_ylabel(f"median {_label(cal.score)}")
        ax.set_title(f"{_label(cal.score)} vs defocus (before)", fontsize=10)
        ax.legend(fontsize=8, loc="best", frameon=False)
        ax.grid(alpha=0.3)
        if show_after:
            ax2 = axes_of[j][1]
            medc = per["median_calibrated"].to_numpy(dtype=float) if "median_calibrated" in per else np.full_like(med, np.nan)
            ok2 = np.isfinite(df_um) & np.isfinite(medc)
            level = 1.0 if cal.mode == "ratio" else 0.0
            ax2.scatter(df_um[ok2], medc[ok2], s=size[ok2], color="#2ca02c", alpha=0.8, edgecolor="white",
                        linewidth=0.5, label="calibrated median")
            ax2.axhline(level, color="0.4", lw=1.0, ls=":", label="flat (no trend)")
            if np.isfinite(cal.residual_slope):
                ax2.plot(grid, cal.residual_intercept + cal.residual_slope * grid * 1e4, color="#d62728", lw=1.5,
                         label=f"residual trend: {cal.residual_slope * 1e4:+.2g} per µm")
            ax2.set_xlabel("defocus (µm)")
            unit = "ratio to line" if cal.mode == "ratio" else "difference from line"
            ax2.set_ylabel(f"median calibrated {_label(cal.score)}\n({unit})")
            ax2.set_title(f"{_label(cal.score)} after calibration ({cal.mode})", fontsize=10)
            ax2.legend(fontsize=8, loc="best", frameon=False)
            ax2.grid(alpha=0.3)
    return fig
