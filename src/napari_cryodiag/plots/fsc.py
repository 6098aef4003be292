"""The FSC plot: every curve against spatial frequency, thresholds, randomisation shell, Nyquist.

The legend gives each curve's 0.143 resolution in Å (interpolated, or shell-edge with
``convention="shell_edge"``); Nyquist-limited curves are marked "≥ Nyquist". The top axis is
labelled in Å. Diagnosis flags can be printed under the plot.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from .style import ink, muted

COLORS = {
    "no_mask": "#2ca02c",
    "spherical": "#1f77b4",
    "loose": "#9467bd",
    "tight": "#d62728",
    "user": "#ff7f0e",
    "corrected": "#000000",
    "phase_randomised": "#7f7f7f",
}
LABELS = {
    "no_mask": "No mask",
    "spherical": "Spherical",
    "loose": "Loose",
    "tight": "Tight",
    "user": "User mask",
    "corrected": "Corrected",
    "phase_randomised": "Phase-randomised",
}
ORDER = ("no_mask", "spherical", "loose", "tight", "user", "corrected", "phase_randomised")


def _res_label(r, convention: str) -> str:
    if r.nyquist_limited:
        return f"≥ Nyquist {r.shell_edge_A:.2f} Å"
    v = r.shell_edge_A if convention == "shell_edge" else r.interpolated_A
    return f"{v:.2f} Å"


def add_resolution_axis(ax, max_freq: float) -> None:
    """Top axis in Å for an x axis in 1/Å."""
    sec = ax.secondary_xaxis("top", functions=(lambda f: f, lambda f: f))
    ticks = [f for f in np.linspace(0, max_freq, 7)[1:]]
    sec.set_xticks(ticks)
    sec.set_xticklabels([f"{1 / t:.1f}" for t in ticks])
    sec.set_xlabel("resolution (Å)")


def plot_fsc(result, fig: Figure | None = None, *, flags=None, convention: str = "interpolated",
             show_randomised: bool = True, title: str | None = None) -> Figure:
    """Draw the curves of an :class:`~napari_cryodiag.compute.maps.fsc.FSCResult` into ``fig``."""
    fig = fig if fig is not None else Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot(111)
    f = np.asarray(result.frequency_invA)
    for name in ORDER:
        if name not in result.curves or (name == "phase_randomised" and not show_randomised):
            continue
        c = result.curves[name]
        if name == "phase_randomised":
            m = LABELS.get(result.corrected_mask, result.corrected_mask).lower()
            m = m if m.endswith("mask") else f"{m} mask"
            ax.plot(f, c, color=COLORS[name], lw=1, ls=":", label=f"{LABELS[name]} ({m})")
            continue
        r = result.resolutions[name]["0.143"]
        lw = 2.2 if name == "corrected" else 1.5
        ax.plot(f, c, color=ink() if name == "corrected" else COLORS[name], lw=lw, label=f"{LABELS[name]} ({_res_label(r, convention)})")
    ax.axhline(0.143, color=muted(0.7), lw=0.8, ls="--")
    ax.axhline(0.5, color=muted(0.4), lw=0.8, ls=":")
    ax.axhline(0.0, color=muted(0.2), lw=0.6)
    ax.text(f[-1], 0.143, " 0.143", va="center", ha="left", fontsize=8, color=muted(0.7), clip_on=False)
    ax.text(f[-1], 0.5, " 0.5", va="center", ha="left", fontsize=8, color=muted(0.5), clip_on=False)
    fr = result.randomise_shell / (result.box * result.pixel_size_A)
    ax.axvline(fr, color=muted(0.5), lw=0.8, ls="-.")
    ax.text(fr, 0.02, f" randomised from {result.randomise_from_A:.2f} Å ({result.randomise_rule})",
            rotation=90, va="bottom", ha="right", fontsize=7, color=muted(0.6))
    ax.axvline(f[-1], color="tab:red", lw=0.8, alpha=0.5)
    ax.text(f[-1], 1.02, f"Nyquist {result.nyquist_A:.2f} Å", ha="right", va="bottom", fontsize=7, color="tab:red")
    ax.set_xlim(0, f[-1])
    lo = min(-0.1, float(np.nanmin([np.nanmin(c) for c in result.curves.values()])) - 0.05)
    ax.set_ylim(max(lo, -1.05), 1.08)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    add_resolution_axis(ax, f[-1])
    conv = "interpolated" if convention != "shell_edge" else "shell edge"
    ax.set_title(title or f"FSC, {result.box}³ px at {result.pixel_size_A:.3g} Å/px (0.143, {conv})", fontsize=10)
    # below the axes, never over the curves (inside, at a dock's width, it hid where they fall)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, ncols=3 if fig.get_figwidth() >= 6 else 2, frameon=False,
               loc="outside lower center" if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
               else "lower center")
    if flags:
        text = "\n".join(f"⚠ {fl.title}" for fl in flags)
        ax.text(0.99, 0.98, text, transform=ax.transAxes, ha="right", va="top", fontsize=7.5, color="#3b2f00",
                bbox=dict(boxstyle="round", fc="#fff3cd", ec="#d4a017", alpha=0.9))
    return fig
