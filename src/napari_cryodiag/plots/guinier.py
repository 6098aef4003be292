"""The Guinier plot: ln structure factor against 1/d², the fitted line and the B-factor.

The y label says which structure factor (ln mean |F|² or ln mean |F|); the legend gives the
map's decay B (envelope exp(−B s²/4) on amplitudes, positive = blurred) and RELION's
sharpening B (its negative).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .style import muted, paper

YLABEL = {"amplitude2": "ln ⟨|F|²⟩ (shell mean)", "amplitude": "ln ⟨|F|⟩ (shell mean)"}


def plot_guinier(curve, fit, fig: Figure | None = None, *, sharpened=None, title: str | None = None) -> Figure:
    fig = fig if fig is not None else Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot(111)
    x, y = np.asarray(curve.x_invA2), np.asarray(curve.y)
    ok = np.isfinite(y) & (x > 0)
    ax.plot(x[ok], y[ok], color="tab:green", lw=1.6, label="structure factor")
    if sharpened is not None:
        ys = np.asarray(sharpened.y)
        oks = np.isfinite(ys) & (x > 0)
        ax.plot(x[oks], ys[oks], color="tab:orange", lw=1.2, label="sharpened")
    if fit is not None:
        lo_x, hi_x = 1 / fit.low_A**2, 1 / fit.high_A**2
        ax.axvspan(lo_x, hi_x, color="tab:blue", alpha=0.08, lw=0)
        xx = np.linspace(0, x[ok].max() if ok.any() else hi_x, 50)
        ax.plot(xx, fit.line(xx), color="tab:blue", lw=1.4,
                label=f"fit {fit.low_A:.1f}–{fit.high_A:.2f} Å: B = {fit.bfactor_A2:.1f} Å²")
        ax.text(0.98, 0.97,
                f"B = {fit.bfactor_A2:.1f} Å² (map decay: amplitudes × exp(−B s²/4); B = "
                f"{'−2' if fit.quantity == 'amplitude2' else '−4'}·slope)\n"
                f"sharpening B-factor (RELION sign) = {fit.sharpening_bfactor_A2:.1f} Å²\n"
                f"window: {fit.window_rule}, r = {fit.correlation:.3f}, {fit.n_points} shells",
                transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
                bbox=dict(boxstyle="round", fc=paper(), ec=muted(0.3), alpha=0.9))
    ax.set_xlabel("1/d² (Å⁻²)")
    ax.set_ylabel(YLABEL.get(curve.quantity, "ln structure factor"))
    if ok.any():
        xmax = x[ok].max()
        sec = ax.secondary_xaxis("top")
        ticks = np.linspace(0, xmax, 6)[1:]
        sec.set_xticks(ticks)
        sec.set_xticklabels([f"{1 / np.sqrt(t):.1f}" for t in ticks])
        sec.set_xlabel("resolution (Å)")
        ax.set_xlim(0, xmax)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title or "Guinier plot", fontsize=10)
    return fig
