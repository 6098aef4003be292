"""Inspect Picks, Micrographs tab, above the table: curating exposures (cryoSPARC's Curate
Exposures). A scatter of any per-micrograph statistic against any other (``x``, ``y``: magicgui
ComboBoxes), kept micrographs in blue, dropped ones in orange, the thresholds as dashed lines;
a click on a point shows that micrograph. Below it, thresholds on one statistic at a time
(``stat``, then ``use_min``/``min`` and ``use_max``/``max``; setting a value switches its bound
on): they drop whole micrographs with their picks, live (a moment after the value stops
changing), in the histogram's kept picks and counts, the table, the picks on the micrograph and
every export. ``summary`` lists every threshold set; Clear removes them all.

The statistics are those of :meth:`~napari_cryodiag.compute.picks.pickset.PickSet.micrograph_statistics`:
CTF values come from the open micrograph table (File > Open a ``micrographs_ctf.star`` or an
exposure ``.cs``, or a project) or from the picks themselves.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton
from qtpy.QtCore import QTimer

from ...compute.picks.exposures import ExposureThresholds, statistic_label
from ...errors import CryodiagInputError
from .._canvas import MplCanvas

__all__ = ["ExposurePanel"]

#: the axes a new pick set starts with (the first of each that it has)
_X_DEFAULTS = ("defocus_A", "n_picks")
_Y_DEFAULTS = ("ctf_max_resolution_A", "ctf_figure_of_merit", "kept_fraction")


def _nice_step(span: float) -> float:
    if not np.isfinite(span) or span <= 0:
        return 0.01
    raw = span / 100.0
    p = 10.0 ** np.floor(np.log10(raw))
    return float(min((m * p for m in (1, 2, 5, 10) if m * p >= raw), default=raw))


class ExposurePanel:
    """The exposure-curation view (module docstring)."""

    def __init__(self, session, dock, table_panel):
        self.session = session
        self.dock = dock
        self.table = table_panel  #: the Micrographs table (its rows: the micrographs shown here)
        self.shown = False
        self.x = ComboBox(label="x", choices=[], tooltip="statistic on the horizontal axis")
        self.y = ComboBox(label="y", choices=[], tooltip="statistic on the vertical axis")
        self.axes = Container(widgets=[self.x, self.y], layout="horizontal")
        self.canvas = MplCanvas(figsize=(4.0, 2.8), min_height=190, theme=dock.theme)
        self.stat = ComboBox(label="drop micrographs by", choices=[],
                             tooltip="the statistic whose bounds are edited below; bounds on several statistics "
                                     "all apply")
        self.use_min = CheckBox(text="min", value=False, tooltip="drop micrographs below the minimum")
        self.min = FloatSpinBox(value=0.0, min=-1e12, max=1e12, step=0.01, label="min")
        self.use_max = CheckBox(text="max", value=False, tooltip="drop micrographs above the maximum")
        self.max = FloatSpinBox(value=0.0, min=-1e12, max=1e12, step=0.01, label="max")
        self.bounds_row = Container(widgets=[self.use_min, self.min, self.use_max, self.max], layout="horizontal",
                                    labels=False)
        self.clear_button = PushButton(text="Clear", tooltip="remove every exposure threshold")
        self.summary = Label(value="")
        self.summary.native.setWordWrap(True)
        self.form = Container(widgets=[self.stat])
        self.foot = Container(widgets=[self.summary, self.clear_button], layout="horizontal", labels=False)
        self._points = np.zeros(0, dtype=np.int64)
        self._xy = np.zeros((0, 2))
        self._stats = None
        self._loading = False
        self._stale = True
        self._stale_choices = True
        self._apply_timer = QTimer(self.canvas)  # (goes with the dock)
        self._apply_timer.setSingleShot(True)
        self._apply_timer.setInterval(150)
        self._apply_timer.timeout.connect(self.apply_bounds)
        self._draw_timer = QTimer(self.canvas)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.setInterval(200)
        self._draw_timer.timeout.connect(self.redraw)
        self.x.changed.connect(lambda *_: self.redraw())
        self.y.changed.connect(lambda *_: self.redraw())
        self.stat.changed.connect(lambda *_: self._load_bounds())
        for w in (self.use_min, self.use_max):
            w.changed.connect(lambda *_: self._edited())
        self.min.changed.connect(lambda *_: self._edited(self.use_min))
        self.max.changed.connect(lambda *_: self._edited(self.use_max))
        self.clear_button.changed.connect(lambda *_: self.clear())
        self.canvas.canvas.mpl_connect("button_press_event", self._on_click)
        session.layer_changed.connect(self.refill)
        session.view_changed.connect(self.refill)
        session.rows_changed.connect(lambda *_: self.refill())
        session.selection_changed.connect(self._later)
        session.micrograph_changed.connect(self._later)

    def _later(self, *_):
        """Redraw a moment after the thresholds stop moving (not at all once the dock is gone)."""
        try:
            self._draw_timer.start()
        except RuntimeError:  # the dock was closed
            pass

    def widgets(self):
        return [self.axes, self.canvas, self.form, self.bounds_row, self.foot]

    # ------------------------------------------------------------------ choices
    def refill(self, *_):
        """New statistics (another pick set, axes, calibration): the choosers offer them (when the
        tab is shown; else when it is next shown: the statistics cost a pass over the picks)."""
        if not self.shown:
            self._stale = self._stale_choices = True
            return
        self._stale_choices = False
        ps = self.session.pickset
        names = [] if ps is None else ps.statistic_names()
        choices = [(statistic_label(n), n) for n in names]
        self._loading = True
        try:
            for box, defaults in ((self.x, _X_DEFAULTS), (self.y, _Y_DEFAULTS), (self.stat, _Y_DEFAULTS)):
                old = box.value
                box.choices = choices
                if names:
                    box.value = old if old in names else next((d for d in defaults if d in names), names[0])
        finally:
            self._loading = False
        self._load_bounds()
        self.redraw()

    def show(self) -> None:
        if self._stale_choices:
            self.refill()
        elif self._stale:
            self.redraw()

    # ------------------------------------------------------------------ thresholds
    def _load_bounds(self):
        """Show the chosen statistic's bounds (its data range where none is set)."""
        ps = self.session.pickset
        name = self.stat.value
        if ps is None or name is None:
            return
        lo, hi = ps.exposure_thresholds.bounds.get(name, (None, None))
        stats = self._stats if self._stats is not None else ps.micrograph_statistics(self.session.selection)
        v = stats[name].to_numpy(np.float64) if name in stats.columns else np.zeros(0)
        v = v[np.isfinite(v)]
        dmin, dmax = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        step = _nice_step(dmax - dmin)
        self._loading = True
        try:
            for box in (self.min, self.max):
                box.step = step
            self.use_min.value, self.use_max.value = lo is not None, hi is not None
            self.min.value = dmin if lo is None else lo
            self.max.value = dmax if hi is None else hi
        finally:
            self._loading = False

    def _edited(self, switch_on: CheckBox | None = None):
        if self._loading:
            return
        if switch_on is not None and not switch_on.value:
            self._loading = True
            switch_on.value = True  # setting a bound's value sets the bound
            self._loading = False
        try:
            self._apply_timer.start()
        except RuntimeError:  # the dock was closed
            pass

    def apply_bounds(self):
        """The editor's bounds for the chosen statistic, applied (refused ones say why)."""
        ps = self.session.pickset
        name = self.stat.value
        if ps is None or name is None:
            return
        t = ExposureThresholds(dict(ps.exposure_thresholds.bounds))
        lo = float(self.min.value) if self.use_min.value else None
        hi = float(self.max.value) if self.use_max.value else None
        try:
            t.set(name, lo, hi)
            self.session.set_exposure_thresholds(t)
        except CryodiagInputError as err:
            self.dock.error(err)
            return
        self._summarise()

    def clear(self):
        if self.session.pickset is None:
            return
        self.session.set_exposure_thresholds(ExposureThresholds())
        self._load_bounds()
        self._summarise()

    def _summarise(self):
        sel = self.session.selection
        ex = None if sel is None else sel.exposures
        if ex is None:
            self.summary.value = "no exposure thresholds: every micrograph kept"
            return
        text = ex.explain()
        if sel.n_dropped_with_micrograph:
            text += f"; {sel.n_dropped_with_micrograph:,} picks dropped with them"
        self.summary.value = text

    # ------------------------------------------------------------------ the scatter
    def redraw(self, *_):
        if not self.shown:
            self._stale = True
            return
        self._stale = False
        s = self.session
        ps = s.pickset
        with self.canvas.plotting() as fig:
            if ps is None or self.x.value is None or self.y.value is None:
                ax = fig.add_subplot(111)
                ax.text(0.5, 0.5, "no picks layer", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                self._points, self._xy = np.zeros(0, np.int64), np.zeros((0, 2))
                return
            from ...plots.exposures import plot_exposure_scatter

            stats = ps.micrograph_statistics(s.selection)
            self._stats = stats
            keep = stats["keep"].to_numpy(bool) if "keep" in stats.columns else None
            cur = self._current_row()
            _, ax, rows = plot_exposure_scatter(stats, self.x.value, self.y.value, fig, keep=keep,
                                                bounds=ps.exposure_thresholds.bounds, current=cur)
            self._ax = ax
            self._points = rows
            self._xy = np.column_stack([stats[self.x.value].to_numpy(np.float64)[rows],
                                        stats[self.y.value].to_numpy(np.float64)[rows]]) if len(rows) else \
                np.zeros((0, 2))
        self._summarise()

    def _current_row(self) -> int | None:
        i = self.session.current_index()
        if i is None:
            return None
        rows = np.flatnonzero(self.table._code_to_stack == i)
        return int(rows[0]) if rows.size else None

    def _on_click(self, event):
        """A click within a few pixels of a point shows its micrograph."""
        if event.inaxes is None or not len(self._points) or event.button != 1:
            return
        if self.canvas.toolbar is not None and self.canvas.toolbar.mode:
            return  # zooming or panning
        px = event.inaxes.transData.transform(self._xy)
        d = np.hypot(px[:, 0] - event.x, px[:, 1] - event.y)
        j = int(np.argmin(d))
        if d[j] <= 8:
            self.show_row(int(self._points[j]))

    def show_row(self, row: int) -> None:
        """Show the micrograph of row ``row`` of the statistics (as a click on its point does)."""
        self.table.show_code(row)
