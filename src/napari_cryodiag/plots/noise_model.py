"""Figures of the noise model (shared by the "Noise model" widget and ``cryodiag noise``).

- :func:`plot_noise_basic` — noise variance per shell against spatial frequency (1/Å, with
  resolution in Å on the top axis), statistical band, optional true spectrum (simulations).
- :func:`plot_noise_advanced` — the 2D mean residual power before ring averaging, next to the
  ring-averaged model (cryoSPARC's advanced plot), on one colour scale.
- :func:`plot_relion_sigma2` — RELION's per-group ``rlnSigma2Noise`` spectra from a model.star.
- :func:`plot_noise_overview` — basic and advanced in one figure (the widget's default view).

Each function draws into ``fig`` (cleared by the caller) or creates one, and returns it. No
pyplot: figures are safe to build in worker threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ..compute.particles.noise_model import NoiseModel
from .style import ink

__all__ = ["plot_noise_basic", "plot_noise_advanced", "plot_relion_sigma2", "plot_noise_overview"]

_NICE_RES_A = [200, 100, 50, 30, 20, 15, 10, 8, 6, 5, 4, 3.5, 3, 2.5, 2.2, 2, 1.8, 1.6, 1.5, 1.4, 1.2, 1.0]


def _fig(fig, figsize=(6.4, 4.0)) -> Figure:
    return fig if fig is not None else Figure(figsize=figsize, layout="constrained")


def _resolution_top_axis(ax, fmax: float):
    """Top axis labelled in Å at the positions of the bottom axis's 1/Å."""
    top = ax.secondary_xaxis("top")
    ticks, labels, last = [], [], -np.inf
    for d in _NICE_RES_A:
        f = 1.0 / d
        if f <= fmax * 1.001 and f - last > 0.1 * fmax:
            ticks.append(f)
            labels.append(f"{d:g}")
            last = f
    top.set_xticks(ticks)
    top.set_xticklabels(labels, fontsize=8)
    top.set_xlabel("resolution (Å)", fontsize=9)
    return top


def _draw_basic(ax, nm: NoiseModel, truth=None, show_signal: bool = True):
    f = nm.frequency_invA
    v = nm.noise_variance
    se = nm.relative_standard_error()
    ok = v > 0
    ax.fill_between(f[ok], (v * (1 - 2 * se))[ok].clip(min=v[ok].min() * 0.5), (v * (1 + 2 * se))[ok],
                    color="C0", alpha=0.25, lw=0, label="±2 s.e. (statistics)")
    ax.plot(f[ok], v[ok], "-", color="C0", lw=1.6, label=f"noise variance ({nm.n_images:,} images)")
    if truth is not None:
        ax.plot(f, truth, "--", color=ink(), lw=1.0, label="true noise spectrum")
    if show_signal and np.any(nm.signal_power > 0):
        s = nm.signal_power
        oks = s > 0
        ax.plot(f[oks], s[oks], ":", color="C3", lw=1.2, label="model signal |a·CTF·P|²")
    ax.set_yscale("log")
    ax.set_xlim(0, f[-1])
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("power per pixel")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    _resolution_top_axis(ax, f[-1])
    sc = f"scale a = {nm.scale:.4g}" if np.ndim(nm.scale) == 0 else \
        f"per-image scale, median {np.median(nm.scale):.4g}"
    ax.set_title(f"Noise model (box {nm.box} px, {nm.pixel_size_A:.3g} Å/px; {sc})", fontsize=9)


def plot_noise_basic(nm: NoiseModel, fig: Figure | None = None, truth=None,
                     show_signal: bool = True) -> Figure:
    """Noise variance per shell (per-pixel convention) against spatial frequency."""
    fig = _fig(fig)
    ax = fig.add_subplot(1, 1, 1)
    _draw_basic(ax, nm, truth, show_signal)
    return fig


def _extent(nm: NoiseModel):
    n, apix = nm.box, nm.pixel_size_A
    df = 1.0 / (n * apix)
    lo, hi = (-(n // 2) - 0.5) * df, (n - n // 2 - 0.5) * df
    return [lo, hi, lo, hi]


def _draw_advanced(axes, fig, nm: NoiseModel, log: bool = True):
    before = nm.full_map(ring_average=False)
    after = nm.full_map(ring_average=True)
    finite = np.concatenate([before[np.isfinite(before)], after[np.isfinite(after)]])
    pos = finite[finite > 0]
    if log and pos.size:
        norm = LogNorm(vmin=np.percentile(pos, 0.5), vmax=np.percentile(pos, 99.5))
    else:
        norm = Normalize(vmin=np.nanmin(finite), vmax=np.nanmax(finite))
    ext = _extent(nm)
    nyq = 1.0 / (2 * nm.pixel_size_A)
    im = None
    for ax, data, title in (
        (axes[0], before, "before ring averaging"),
        (axes[1], after, "ring average (model)"),
    ):
        im = ax.imshow(np.where(data > 0, data, np.nan) if log else data, origin="lower",
                       extent=ext, norm=norm, cmap="magma", interpolation="nearest")
        ax.add_patch(Circle((0, 0), nyq, fill=False, ls="--", lw=0.6, color="w"))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("kx (1/Å)")
        ax.set_aspect("equal")
    axes[0].set_ylabel("ky (1/Å)")
    cb = fig.colorbar(im, ax=list(axes), shrink=0.85)
    cb.set_label("mean |X − a·CTF·P|² per pixel", fontsize=8)


def plot_noise_advanced(nm: NoiseModel, fig: Figure | None = None, log: bool = True) -> Figure:
    """2D residual power before ring averaging next to the ring-averaged model, one colour scale."""
    fig = _fig(fig, figsize=(8.0, 3.8))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    _draw_advanced(axes, fig, nm, log)
    fig.suptitle(f"Noise model in 2D: mean residual power of {nm.n_images:,} images", fontsize=10)
    return fig


def plot_noise_overview(nm: NoiseModel, fig: Figure | None = None, truth=None) -> Figure:
    """Basic plot (top) and advanced plot (bottom) in one figure."""
    fig = _fig(fig, figsize=(7.0, 7.0))
    gs = fig.add_gridspec(2, 2, height_ratios=[1.0, 1.0])
    _draw_basic(fig.add_subplot(gs[0, :]), nm, truth)
    a0 = fig.add_subplot(gs[1, 0])
    a1 = fig.add_subplot(gs[1, 1], sharex=a0, sharey=a0)
    _draw_advanced([a0, a1], fig, nm)
    return fig


def _short(name: str, width: int = 34) -> str:
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return base if len(base) <= width else "…" + base[-(width - 1):]


def plot_relion_sigma2(spectra: dict, fig: Figure | None = None, per_pixel: bool = False,
                       counts: dict | None = None, title: str = "") -> Figure:
    """RELION ``rlnSigma2Noise`` per group (from :func:`compute.noise_model.relion_noise_spectra`).

    ``per_pixel=True`` plots ``2 N² sigma2`` (this package's per-pixel convention) instead of
    RELION's own numbers. More than 12 groups are drawn thin with their median in bold.
    """
    fig = _fig(fig)
    ax = fig.add_subplot(1, 1, 1)
    key = "per_pixel" if per_pixel else "sigma2_noise"
    names = list(spectra)
    many = len(names) > 12
    fmax = 0.0
    for i, name in enumerate(names):
        s = spectra[name]
        f, y = np.asarray(s["frequency_invA"]), np.asarray(s[key])
        ok = (y > 0) & np.isfinite(f)
        fmax = max(fmax, float(np.nanmax(f[ok]))) if ok.any() else fmax
        label = None
        if not many:
            label = _short(name)
            if counts and name in counts:
                label += f" ({counts[name]:,} particles)"
        ax.plot(f[ok], y[ok], lw=0.6 if many else 1.3, alpha=0.35 if many else 1.0,
                color="C0" if many else f"C{i % 10}", label=label)
    if many:
        lengths = {len(spectra[n][key]) for n in names}
        if len(lengths) == 1:
            stack = np.vstack([spectra[n][key] for n in names])
            f = np.asarray(spectra[names[0]]["frequency_invA"])
            med = np.median(stack, axis=0)
            ok = med > 0
            ax.plot(f[ok], med[ok], color=ink(), lw=1.8, label=f"median of {len(names)} groups")
    ax.set_yscale("log")
    ax.set_xlim(0, fmax if fmax > 0 else None)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("2 N² σ² (per pixel)" if per_pixel else "rlnSigma2Noise (RELION units)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    if fmax > 0:
        _resolution_top_axis(ax, fmax)
    ax.set_title(title or f"RELION noise spectra ({len(names)} groups)", fontsize=9)
    return fig
