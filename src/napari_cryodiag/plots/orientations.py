"""Figures of the orientation diagnostics (shared by the "Orientations" widget and the CLI).

- :func:`plot_viewing_directions` — cryoSPARC-style azimuth × elevation histogram of viewing
  directions on equal-area bins (elevation bins uniform in sin(elevation)).
- :func:`plot_directional_map` — Fourier sampling or posterior precision on the same axes.
- :func:`plot_scf_cfar` — SCF* and cFAR as bars with their guide values (0.81, 0.5) marked.
- :func:`plot_conical_fsc` — the conical FSC curves (worst/best cones, global FSC, 0.143) and
  the cone areas on the azimuth × elevation axes.
- :func:`plot_orientations_overview` — the four panels of the widget in one figure.

Each function draws into ``fig`` (a ``matplotlib.figure.Figure``, cleared by the caller) or
creates one, and returns it. No pyplot: figures are safe to build in worker threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..compute.particles.cfar import CFAR_GUIDE, FSC_THRESHOLD, ConicalFSC
from ..compute.particles.fourier_sampling import DirectionalMaps
from ..compute.particles.orientations import ViewingHistogram, azimuth_elevation_deg
from ..compute.particles.scf import SCF_STAR_GUIDE, SCFResult
from .style import ink, muted

__all__ = [
    "plot_viewing_directions",
    "plot_directional_map",
    "plot_scf_cfar",
    "plot_conical_fsc",
    "plot_orientations_overview",
]

_CMAP = "viridis"


def _fig(fig, figsize=(6.4, 3.6)) -> Figure:
    return fig if fig is not None else Figure(figsize=figsize, layout="constrained")


def _sky_axes(ax):
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xticks(np.arange(-180, 181, 90))  # 5 labels: they do not overlap in a narrow dock
    ax.set_yticks(np.arange(-90, 91, 30))
    ax.set_xlabel("azimuth (°) = rot")
    ax.set_ylabel("elevation (°) = 90° − tilt")


def _draw_viewing(ax, hist: ViewingHistogram, fig):
    mesh = ax.pcolormesh(
        hist.azimuth_edges_deg, hist.elevation_edges_deg, hist.counts, cmap=_CMAP, shading="flat"
    )
    _sky_axes(ax)
    ax.set_title(f"Viewing direction distribution ({hist.n_particles:,} particles)", fontsize=9)
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(f"particles per bin\n(equal-area bins, {hist.bin_solid_angle_sr:.4f} sr each)", fontsize=8)
    return mesh


def plot_viewing_directions(hist: ViewingHistogram, fig: Figure | None = None) -> Figure:
    """Azimuth × elevation histogram of viewing directions (equal-area bins)."""
    fig = _fig(fig)
    ax = fig.add_subplot(111)
    _draw_viewing(ax, hist, fig)
    return fig


def _draw_map(ax, maps: DirectionalMaps, which: str, fig, scf: SCFResult | None = None):
    data = maps.fourier_sampling if which == "fourier_sampling" else maps.posterior_precision
    if data is None:
        ax.text(0.5, 0.5, "no CTF parameters:\nposterior precision unavailable", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return None
    mesh = ax.pcolormesh(maps.azimuth_edges_deg, maps.elevation_edges_deg, data, cmap=_CMAP, shading="flat")
    _sky_axes(ax)
    tol_deg = np.degrees(np.arcsin(maps.tolerance))
    if which == "fourier_sampling":
        title = f"Fourier sampling, R = {maps.radius_px:g} voxels (±{tol_deg:.2f}°)"
        label = "projections sampling\nthe radial direction"
    else:
        title = f"Posterior precision, R = {maps.radius_px:g} voxels"
        label = "Σ ⟨CTF²⟩ / σ² of projections\nsampling the radial direction"
    if scf is not None and which == "fourier_sampling":
        flag = "preferred orientation" if scf.preferred_orientation else "OK"
        title += f"\nSCF* = {scf.scf_star:.3f} (guide {SCF_STAR_GUIDE}: {flag})"
    ax.set_title(title, fontsize=9)
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(label, fontsize=8)
    return mesh


def plot_directional_map(
    maps: DirectionalMaps, which: str = "fourier_sampling", fig: Figure | None = None, scf: SCFResult | None = None
) -> Figure:
    """Fourier sampling (``which="fourier_sampling"``) or posterior precision directional map."""
    if which not in ("fourier_sampling", "posterior_precision"):
        raise ValueError(f"unknown map {which!r}")
    fig = _fig(fig)
    ax = fig.add_subplot(111)
    _draw_map(ax, maps, which, fig, scf)
    return fig


def _draw_scores(ax, scf: SCFResult | None, cfsc: ConicalFSC | None):
    labels, values, guides = [], [], []
    if scf is not None:
        labels.append("SCF*")
        values.append(scf.scf_star)
        guides.append(SCF_STAR_GUIDE)
        labels.append("SCF")
        values.append(scf.scf)
        guides.append(None)
    if cfsc is not None:
        labels.append("cFAR")
        values.append(cfsc.cfar)
        guides.append(CFAR_GUIDE)
    y = np.arange(len(labels))[::-1]
    colours = []
    for v, g in zip(values, guides):
        colours.append("tab:grey" if g is None else ("tab:green" if v >= g else "tab:red"))
    ax.barh(y, values, color=colours, height=0.6)
    for yi, v, g in zip(y, values, guides):
        ax.text(min(v, 1.0) + 0.02, yi, f"{v:.3f}", va="center", fontsize=9)
        if g is not None:
            ax.plot([g, g], [yi - 0.42, yi + 0.42], color=ink(), ls="--", lw=1.2)
            ax.text(g, yi + 0.45, f"guide {g}", ha="center", va="bottom", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlim(0, 1.15)
    ax.set_ylim(-0.7, len(labels) - 0.2)
    ax.set_xlabel("value (1 = isotropic)")
    parts = []
    if scf is not None:
        parts.append(f"SCF* < {SCF_STAR_GUIDE}: preferred orientation")
    if cfsc is not None:
        parts.append(f"cFAR < {CFAR_GUIDE}: anisotropic resolution")
    ax.set_title("\n".join(parts) if parts else "no orientation scores", fontsize=8)


def plot_scf_cfar(scf: SCFResult | None, cfsc: ConicalFSC | None = None, fig: Figure | None = None) -> Figure:
    """SCF*, SCF and cFAR as bars on [0, 1] with the 0.81 (SCF*) and 0.5 (cFAR) guides."""
    fig = _fig(fig, (5.0, 2.6))
    ax = fig.add_subplot(111)
    _draw_scores(ax, scf, cfsc)
    return fig


def plot_conical_fsc(cfsc: ConicalFSC, fig: Figure | None = None, layout: str = "columns") -> Figure:
    """Conical FSC curves and the cone areas on the azimuth × elevation axes, side by side
    (``layout="columns"``) or one above the other (``"rows"``, for a narrow dock)."""
    rows = layout == "rows"
    fig = _fig(fig, (5.0, 7.0) if rows else (10.0, 3.8))
    ax1, ax2 = fig.subplots(2, 1) if rows else fig.subplots(1, 2)
    f = cfsc.frequencies_invA
    for c in range(len(cfsc.axes)):
        ax1.plot(f, cfsc.fsc[c], color=muted(0.3), lw=0.5)
    ax1.plot(f, cfsc.global_fsc, color=ink(), lw=1.5, label="global FSC")
    az, el = azimuth_elevation_deg(cfsc.axes)
    for idx, col, name in ((cfsc.worst, "tab:red", "worst cone"), (cfsc.best, "tab:blue", "best cone")):
        res = 1.0 / cfsc.crossing_invA[idx] if cfsc.crossing_invA[idx] > 0 else np.inf
        ax1.plot(f, cfsc.fsc[idx], color=col, lw=1.5, label=f"{name} ({az[idx]:.0f}°, {el[idx]:.0f}°): {res:.1f} Å")
    ax1.axhline(FSC_THRESHOLD, color=ink(), ls=":", lw=1)
    ax1.text(f[-1], FSC_THRESHOLD + 0.02, "0.143", ha="right", fontsize=7)
    ax1.axhline(0, color=muted(0.5), lw=0.5)
    ax1.set_xlabel("spatial frequency (1/Å)")
    ax1.set_ylabel("FSC")
    ax1.set_ylim(-0.1, 1.05)
    ax1.set_xlim(0, f[-1])
    flag = "anisotropic" if cfsc.anisotropic else "OK"
    # two short lines: the title fits the axes' width in a dock
    ax1.set_title(
        f"{len(cfsc.axes)} conical FSCs, {cfsc.half_angle_deg:g}° half-angle\n"
        f"cFAR = {cfsc.cfar:.3f} (guide {CFAR_GUIDE}: {flag})",
        fontsize=9,
    )
    ax1.legend(fontsize=6.5, loc="upper right")
    top = ax1.twiny()
    top.set_xlim(ax1.get_xlim())
    ticks = [t for t in ax1.get_xticks() if 0 < t <= f[-1]]
    top.set_xticks(ticks)
    top.set_xticklabels([f"{1 / t:.1f}" for t in ticks], fontsize=7)
    top.set_xlabel("resolution (Å)", fontsize=8)
    # cone areas, each axis and its antipode
    rel = cfsc.areas / cfsc.areas.max()
    az2 = np.concatenate([az, np.where(az > 0, az - 180, az + 180)])
    el2 = np.concatenate([el, -el])
    sc = ax2.scatter(az2, el2, c=np.concatenate([rel, rel]), cmap=_CMAP, s=22, vmin=min(rel.min(), CFAR_GUIDE), vmax=1)
    _sky_axes(ax2)
    ax2.set_title("cone FSC area / max (axis and antipode)", fontsize=9)
    cb = fig.colorbar(sc, ax=ax2)
    cb.set_label("area / max area")
    cb.ax.axhline(CFAR_GUIDE, color="r", lw=1.5)
    return fig


def plot_orientations_overview(
    hist: ViewingHistogram,
    maps: DirectionalMaps | None,
    scf: SCFResult | None,
    cfsc: ConicalFSC | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Viewing directions, Fourier sampling, posterior precision and the SCF*/cFAR bars."""
    fig = _fig(fig, (11.0, 7.0))
    axes = fig.subplots(2, 2)
    _draw_viewing(axes[0, 0], hist, fig)
    if maps is not None:
        _draw_map(axes[0, 1], maps, "fourier_sampling", fig, scf)
        _draw_map(axes[1, 0], maps, "posterior_precision", fig)
    else:
        axes[0, 1].set_axis_off()
        axes[1, 0].set_axis_off()
    _draw_scores(axes[1, 1], scf, cfsc)
    return fig
