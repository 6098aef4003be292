"""Inspect Picks, Calibration tab: scores calibrated against defocus.

The form is :class:`napari_cryodiag.workflows.picks.CalibrationOptions` ("Calibrate Pick Score to
CTF", "Calibrate Power Score to CTF", ratio or difference, robust fit, fit scale); the plot is
:func:`napari_cryodiag.plots.calibration.plot_calibration` (per-micrograph medians against defocus
with the fitted line, before and after). Defocus comes from the picks or from an open CTF table.
"""

from __future__ import annotations

from magicgui.widgets import Label
from napari.qt.threading import thread_worker

from ...workflows.picks import CalibrationOptions
from .._canvas import MplCanvas
from .._forms import options_form

__all__ = ["CalibrationPanel", "BACKGROUND_FIT_ROWS"]

#: above this many picks the calibration lines are fitted in a worker thread (about 1.8 s per
#: score at 1e7 picks: the per-micrograph medians and two Theil-Sen lines); the view is then
#: rebuilt on the GUI thread with the fits taken from the cache
BACKGROUND_FIT_ROWS = 2_000_000


class CalibrationPanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.shown = False  #: its tab is the current one (the dock sets it)
        self.form = options_form(CalibrationOptions)
        self.source = Label(value="")
        self.note = Label(value="")
        for lab in (self.source, self.note):
            lab.native.setWordWrap(True)
        self.canvas = MplCanvas(figsize=(4.0, 4.2), min_height=300, theme=dock.theme)
        self._stale = True
        self._worker = None  #: the thread fitting calibration lines (large tables), or None
        self.form.changed_value.connect(self._on_form)
        session.layer_changed.connect(self.redraw)
        session.view_changed.connect(self.redraw)

    def widgets(self):
        return [self.form, self.source, self.canvas, self.note]

    @property
    def fitting(self) -> bool:
        """A worker thread is fitting calibration lines."""
        return self._worker is not None

    def _on_form(self, options: CalibrationOptions):
        s = self.session
        insp = s.inspection
        if insp is None:
            s.calibration = options
            return
        if self._worker is not None:
            return  # the form's latest value is applied when the fit is done
        names = insp.unfitted(calibrate_x=options.calibrate_x, calibrate_y=options.calibrate_y,
                              mode=options.mode, method=options.method, scale=options.scale)
        if names and len(insp.table) > BACKGROUND_FIT_ROWS:
            self._fit_in_background(insp, names, options)
            return
        self._apply(options)

    def _fit_in_background(self, insp, names, options: CalibrationOptions) -> None:
        """Fit the lines of ``names`` in a worker thread; then apply the form as it is by then."""
        n_mics = len(insp.names)
        self.note.value = f"fitting {', '.join(names)} against defocus over {n_mics:,} micrographs …"
        self.dock.report(f"calibration: fitting {', '.join(names)} over {n_mics:,} micrographs", "info")

        def job():
            insp.prepare_fits(names, mode=options.mode, method=options.method, scale=options.scale)

        w = thread_worker(job, start_thread=False, ignore_errors=True)()
        w.finished.connect(self._fitted)
        w.errored.connect(lambda err: self.dock.report(f"calibration failed: {err}", "warning"))
        self._worker = w
        self.form.enabled = False
        w.start()

    def _fitted(self) -> None:
        self._worker = None
        self.form.enabled = True
        if self.session.inspection is not None:
            self._on_form(self.form.value)  # the form's latest value: a fit it still needs runs next

    def wait(self, timeout_ms: int = 60_000) -> None:
        """Block until no calibration line is being fitted (tests and scripts)."""
        from qtpy.QtCore import QCoreApplication, QElapsedTimer, QThread

        t = QElapsedTimer()
        t.start()
        while self._worker is not None and t.elapsed() < timeout_ms:
            QCoreApplication.processEvents()
            QThread.msleep(2)
        QCoreApplication.processEvents()

    def _apply(self, options: CalibrationOptions) -> None:
        s = self.session
        s.configure(calibration=options, log_y=None)
        insp = s.inspection
        for axis, name in (("x", "calibrate_x"), ("y", "calibrate_y")):
            if axis in insp.calibration_errors and getattr(options, name):
                self.dock.report(insp.calibration_errors[axis], "warning")

    def sync_form(self):
        """Show what the view does (a calibration that failed is unticked)."""
        insp = self.session.inspection
        if insp is None:
            return
        self.form.changed_value.disconnect(self._on_form)
        try:
            self.form.set_value(self.session.calibration,
                                calibrate_x="x" in insp.calibrations,
                                calibrate_y="y" in insp.calibrations)
        finally:
            self.form.changed_value.connect(self._on_form)

    def redraw(self, *_):
        """Redraw now when the tab is shown, else when it is next shown (``show``)."""
        self.sync_form()
        if not self.shown:
            self._stale = True
            return
        self._redraw()

    def show(self) -> None:
        if self._stale:
            self._redraw()

    def _redraw(self):
        self._stale = False
        s = self.session
        insp = s.inspection
        self.form.calibrate_y.enabled = insp is not None and not insp.one_d
        where = ""
        if s.pickset is not None:
            if "defocus_A" in s.pickset.table.columns:
                where = "defocus: from the picks"
            elif s.ctf is not None:
                where = f"defocus: from {s.ctf_source}"
            else:
                where = "no defocus: open a CTF table (e.g. RELION's micrographs_ctf.star) to calibrate"
        self.source.value = where
        with self.canvas.plotting() as fig:
            cals = {} if insp is None else insp.calibrations
            if not cals:
                ax = fig.add_subplot(111)
                msg = "calibration off\n(tick a “Calibrate … to CTF” option)"
                if insp is not None and insp.calibration_errors:
                    msg = "\n".join(insp.calibration_errors.values())
                ax.text(0.5, 0.5, msg, ha="center", va="center", wrap=True, transform=ax.transAxes)
                ax.set_axis_off()
            else:
                from ...plots.calibration import plot_calibration

                plot_calibration(list(cals.values()), fig, layout="rows")
        lines = [] if insp is None else list(insp.calibration_errors.values())
        for cal in ({} if insp is None else insp.calibrations).values():
            lines.append(f"{cal.score}: median = {cal.intercept:.4g} + {cal.slope:.4g}·defocus_A "
                         f"({cal.method}, {cal.mode}); residual slope {cal.residual_slope:.3g}")
        self.note.value = "\n".join(lines)
        self.sync_form()
