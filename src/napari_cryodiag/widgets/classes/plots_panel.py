"""Classes, plots: the best-class probability and class ESS histograms (or RELION's analogues,
named as such) and the half-set FRC curves of the classes, in napari's theme, one above the
other so that they read in a dock."""

from __future__ import annotations

from ...plots.classes import plot_frc_curves, plot_posterior_histograms
from .._canvas import MplCanvas

__all__ = ["ClassPlotsPanel"]


class ClassPlotsPanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.histograms = MplCanvas(figsize=(4.0, 4.4), min_height=360, max_aspect=1.2, theme=dock.theme)
        self.frc = MplCanvas(figsize=(4.0, 3.2), min_height=260, max_aspect=0.85, theme=dock.theme)
        session.result_changed.connect(self.redraw)
        self.redraw()

    def redraw(self, *_):
        r = self.session.result
        with self.histograms.plotting() as fig:
            if r is None:
                self._empty(fig, "press Compute")
            else:
                plot_posterior_histograms(r.histograms, fig=fig, source=r.posterior.source, layout="rows")
        with self.frc.plotting() as fig:
            if r is not None and r.class_averages is not None:
                plot_frc_curves(r.class_averages, fig=fig)
            else:
                self._empty(fig, (r.frc_reason if r is not None else "") or "no FRC: press Compute")

    @staticmethod
    def _empty(fig, text):
        ax = fig.add_subplot(111)
        ax.set_axis_off()
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)

    def set_theme(self, theme):
        for c in (self.histograms, self.frc):
            c.set_theme(theme)
        self.redraw()
