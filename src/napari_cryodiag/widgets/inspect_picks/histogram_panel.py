"""Inspect Picks, Thresholds tab: the histogram of the pick scores with its thresholds.

magicgui controls: the axes (``x_feature``, ``y_feature``: score columns first, "none" for a 1D
histogram of one score), ``log_y``, ``bins`` (0 = auto), what the histogram counts
(``histogram_of``), the threshold sliders ``x_range`` / ``y_range`` (handles at an end: no cut;
on a log axis the y slider is in log10 of the value), and buttons (suggested thresholds as a
proposal to apply, keep all, draw / clear a polygon). The figure is
:func:`napari_cryodiag.plots.pick_histogram.plot_pick_histogram`; dragging a line and moving a
slider both redraw only the lines (blitting), so a step stays a few milliseconds plus the
evaluation of the thresholds. The counts title is the canvas's live title (a Qt label over the
figure, put in the figure when it is saved): matplotlib's text costs more than the rest of a step.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatRangeSlider, Label, PushButton, SpinBox
from qtpy.QtWidgets import QSizePolicy

from .._dock import QuietLabel
from .._forms import show_special

from ...compute.picks.thresholds import score_features
from ...errors import CryodiagInputError
from ...plots.pick_histogram import plot_pick_histogram
from .._canvas import Blitter, MplCanvas

__all__ = ["HistogramPanel", "HIST_ALL", "HIST_KEPT", "HIST_SHOWN", "NO_Y"]

HIST_ALL, HIST_KEPT, HIST_SHOWN = "all picks", "kept picks", "shown micrograph"
NO_Y = "(none: 1D)"
SLIDER_STEPS = 1000


def _decimals(span: float) -> int:
    if not span > 0 or not np.isfinite(span):
        return 3
    return int(min(8, max(0, 3 - np.floor(np.log10(span)))))


class HistogramPanel:
    """The Thresholds tab (see the module docstring)."""

    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self._syncing = False
        self._plot = None
        self._dragging: str | None = None
        self._poly_selector = None
        self._counts_mode = HIST_ALL
        self._layouts: dict = {}  #: layout key -> axes positions (see _relayout)
        self.proposal = None

        self.x_feature = ComboBox(label="x axis", choices=[])
        self.y_feature = ComboBox(label="y axis", choices=[])
        self.log_y = CheckBox(text="log y", value=False)
        self.bins = SpinBox(label="bins", value=0, min=0, max=500, tooltip="bins per axis; 0 = automatic")
        self.histogram_of = ComboBox(label="counts of", choices=[HIST_ALL, HIST_KEPT, HIST_SHOWN], value=HIST_ALL)
        self.x_range = FloatRangeSlider(label="x min / max", min=0.0, max=1.0, value=(0.0, 1.0), readout=False)
        self.y_range = FloatRangeSlider(label="y min / max", min=0.0, max=1.0, value=(0.0, 1.0), readout=False)
        # texts that change at every slider step or micrograph: they repaint only themselves
        self.y_values = QuietLabel()
        self.suggest_button = PushButton(text="Suggest thresholds")
        self.apply_button = PushButton(text="Apply suggestion", visible=False)
        self.keep_all_button = PushButton(text="Keep all")
        self.polygon_button = PushButton(text="Draw polygon")
        self.clear_polygon_button = PushButton(text="Clear polygon")
        self.counts = QuietLabel("no picks layer")
        self.proposal_label = Label(value="", visible=False)  # shown while it has a proposal to say
        for lab in (self.proposal_label,):
            lab.native.setWordWrap(True)
            lab.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        axes = Container(widgets=[self.x_feature, self.y_feature], layout="vertical")
        show_special(self.bins, "auto")  # 0 bins: chosen from the data
        # rows that fit the default dock width (no horizontal scrolling): two short rows
        opts = Container(widgets=[Container(widgets=[self.log_y, self.bins], layout="horizontal", labels=True),
                                  self.histogram_of], labels=True)
        self.canvas = MplCanvas(figsize=(4.2, 3.2), min_height=230, theme=dock.theme)
        self.blitter = Blitter(self.canvas.canvas)
        sliders = Container(widgets=[self.x_range, self.y_range, self.y_values])
        buttons = Container(widgets=[
            Container(widgets=[self.suggest_button, self.keep_all_button], layout="horizontal", labels=False),
            Container(widgets=[self.polygon_button, self.clear_polygon_button], layout="horizontal", labels=False),
        ], labels=False)
        for b in (self.suggest_button, self.keep_all_button, self.polygon_button, self.clear_polygon_button):
            b.native.setMinimumWidth(0)
        for r in (self.x_range, self.y_range):
            r.native.setMinimumWidth(120)
            # the values are said in words under the sliders (``y_values``): a label on a handle at
            # an end of the slider is clipped by the dock's edge (").493" for 0.493)
            positions = getattr(type(r.native), "LabelPosition", None)  # superqt's labeled slider
            if positions is not None:
                r.native.setHandleLabelPosition(positions.NoLabel)
        self.controls_top = Container(widgets=[axes, opts], labels=False)
        self.controls_bottom = Container(widgets=[sliders, buttons, self.proposal_label, self.apply_button,
                                                  self.counts], labels=False)

        self.x_feature.changed.connect(self._on_features)
        self.y_feature.changed.connect(self._on_features)
        self.log_y.changed.connect(self._on_log_y)
        self.bins.changed.connect(self._on_bins)
        self.histogram_of.changed.connect(lambda *_: self.redraw_counts())
        self.x_range.changed.connect(self._on_x_range)
        self.y_range.changed.connect(self._on_y_range)
        self.suggest_button.changed.connect(self.suggest)
        self.apply_button.changed.connect(self.apply_suggestion)
        self.keep_all_button.changed.connect(self.keep_all)
        self.polygon_button.changed.connect(self._toggle_polygon)
        self.clear_polygon_button.changed.connect(lambda *_: self.session.set_polygon(None))
        c = self.canvas.canvas
        c.mpl_connect("button_press_event", self._on_press)
        c.mpl_connect("motion_notify_event", self._on_motion)
        c.mpl_connect("button_release_event", self._on_release)
        c.mpl_connect("resize_event", lambda *_: self._relayout())

        session.layer_changed.connect(self.rebuild)
        session.view_changed.connect(self.rebuild)
        session.selection_changed.connect(self.update_selection)
        session.rows_changed.connect(self._on_rows_changed)
        session.micrograph_changed.connect(self._on_micrograph)

    # ------------------------------------------------------------------ building
    def widgets(self):
        return [self.controls_top, self.canvas, self.controls_bottom]

    def rebuild(self, *_, new_figure: bool = False):
        """New layer / axes / calibration: features, figure, sliders. A histogram of the same kind
        as the one shown is drawn in its figure; ``new_figure=True`` (a new theme) builds a new one."""
        s = self.session
        insp = s.inspection
        self._stop_polygon()
        self.proposal = None
        self.apply_button.visible = False
        self._say_proposal("")
        self._syncing = True
        try:
            self._enable_scores(s, insp)
            if s.pickset is None or insp is None:
                self.x_feature.choices, self.y_feature.choices = [], []
                with self.canvas.plotting() as fig:
                    ax = fig.add_subplot(111)
                    msg = "open picks (STAR, .cs, .cbox) or run the picker (Jobs tab)"
                    if s.pickset is not None:
                        msg = f"{s.pickset.no_scores}\ncompute NCC and power in the Jobs tab"
                    ax.text(0.5, 0.5, msg, ha="center", va="center", wrap=True, transform=ax.transAxes)
                    ax.set_axis_off()
                self._plot = None
                self.canvas.set_live_title("")
                return
            feats = self._feature_list(insp)
            self.x_feature.choices = feats
            self.y_feature.choices = [NO_Y] + feats
            self.x_feature.value = insp.x_feature
            self.y_feature.value = NO_Y if insp.one_d else insp.y_feature
            self.log_y.value = bool(insp.log_y)
            self.log_y.enabled = not insp.one_d
            self.y_range.visible = not insp.one_d
            # a polygon encloses picks in the plane of two scores: none on a 1D histogram
            for b in (self.polygon_button, self.clear_polygon_button):
                b.enabled = not insp.one_d
                b.tooltip = "a polygon needs two scores: choose a y axis" if insp.one_d else None
            xl = insp.x_feature + ("" if insp.x_units == "raw" else f" [{insp.x_units}]")
            yl = "" if insp.one_d else insp.y_feature + ("" if insp.y_units == "raw" else f" [{insp.y_units}]")
            self.blitter.stop(redraw=False)
            self._counts_mode = HIST_ALL
            if not new_figure and self._plot is not None and self._plot.can_show(insp.hist):
                # the same kind of histogram (a calibration toggled, another score): drawn in the
                # figure there is, not in a new one
                self._plot.show_histogram(insp.hist, counts=self._base_counts(), thresholds=insp.thresholds,
                                          x_label=xl, y_label=yl)
            else:
                with self.canvas.plotting(draw=False) as fig:  # _relayout draws it, once
                    self._plot = plot_pick_histogram(fig, insp.hist, counts=self._base_counts(),
                                                     thresholds=insp.thresholds, x_label=xl, y_label=yl)
                # the counts title changes at every step: a live title over the figure (a Qt
                # label), put in the figure when it is saved
                ax = self._plot.ax
                self._plot.title_sink = lambda text: self.canvas.set_live_title(text, ax, fontsize=10)
                ax.set_title("")
            self._setup_sliders()
        finally:
            self._syncing = False
        self._relayout()

    def _enable_scores(self, s, insp) -> None:
        """Without scores to inspect, the controls that act on them are disabled and say why (a
        click on one would do nothing)."""
        has = insp is not None
        why = None
        if not has:
            why = (f"{s.pickset.no_scores}: compute NCC and power in the Jobs tab" if s.pickset is not None
                   else "open picks (STAR, .cs, .cbox) or run the picker (Jobs tab)")
        controls = (self.x_feature, self.y_feature, self.log_y, self.bins, self.histogram_of, self.x_range,
                    self.y_range, self.suggest_button, self.keep_all_button, self.polygon_button,
                    self.clear_polygon_button)
        if not hasattr(self, "_tooltips"):
            self._tooltips = {id(w): w.tooltip for w in controls}
        for w in controls:
            w.enabled = has
            w.tooltip = why if why else self._tooltips[id(w)]

    @staticmethod
    def _feature_list(insp) -> list[str]:
        """Numeric columns, the scores first (the defaults are always scores)."""
        from ...compute.picks.thresholds import numeric_features

        feats = numeric_features(insp.table)
        scores = score_features(insp.table)
        return scores + [f for f in feats if f not in scores]

    def _base_counts(self):
        """All picks of the set (without the ones deleted by hand)."""
        s = self.session
        insp = s.inspection
        removed = s.pickset.removed
        if removed.any():
            return insp.hist.counts(~removed)
        return insp.hist.counts()

    def _relayout(self):
        """Lay the figure out once for the canvas size (constrained layout costs as much as a
        draw) in the same draw that takes the blitting background, then keep the positions
        while lines move: one full draw per new figure or size. A figure laid out before (the
        same canvas size, axes, limits, scales, labels and colour-bar range: calibration off and
        on again) takes the positions found then, without the layout engine: the layout is a
        function of these alone."""
        if self._plot is None:
            return
        fig = self._plot.fig
        key = self._layout_key()
        saved = self._layouts.get(key)
        if saved is not None and len(saved) == len(fig.axes):
            fig.set_layout_engine("none")
            for ax, pos in zip(fig.axes, saved):
                ax.set_position(pos)
        else:
            fig.set_layout_engine("constrained")
        try:
            self._start_blit()
            if self.blitter.active:
                self.blitter.update()
            else:
                self.canvas.draw_now()
        finally:
            if saved is None:
                self._layouts[key] = [ax.get_position() for ax in fig.axes]
                while len(self._layouts) > 16:
                    self._layouts.pop(next(iter(self._layouts)))
            fig.set_layout_engine("none")

    def _layout_key(self):
        """What the constrained layout of the histogram figure depends on."""
        p = self._plot
        c = self.canvas.canvas
        parts = [c.width(), c.height(), c.devicePixelRatioF(), len(p.fig.axes), p.one_d]
        for ax in p.fig.axes:
            parts += [ax.get_xscale(), ax.get_yscale(), *np.round(ax.get_xlim(), 9), *np.round(ax.get_ylim(), 9),
                      ax.get_xlabel(), ax.get_ylabel(), ax.get_title().count("\n"), bool(ax.get_title())]
        if p.colorbar is not None:
            parts += [float(p.mesh.norm.vmin), float(p.mesh.norm.vmax)]
        return tuple(parts)

    def _start_blit(self):
        if self._plot is None:
            return
        arts = self._plot.animated_artists
        if self.histogram_of.value != HIST_ALL:
            arts = [self._plot.mesh] + arts
        self.blitter.start(arts)

    # ------------------------------------------------------------------ sliders
    def _slider_range(self, edges, values, log=False):
        f = (lambda v: np.log10(v)) if log else (lambda v: v)
        lo, hi = f(float(edges[0])), f(float(edges[-1]))
        pad = 0.02 * (hi - lo)
        for v in values:
            if v is not None and np.isfinite(v) and (not log or v > 0):
                lo, hi = min(lo, f(v) - pad), max(hi, f(v) + pad)
        return lo, hi

    def _ys(self, v):
        insp = self.session.inspection
        if insp is not None and insp.log_y:
            return float(np.log10(max(float(v), 1e-300)))
        return float(v)

    def _yv(self, s):
        insp = self.session.inspection
        if insp is not None and insp.log_y:
            return float(10.0 ** float(s))
        return float(s)

    def _setup_sliders(self):
        insp = self.session.inspection
        t = insp.thresholds
        lo, hi = self._slider_range(insp.hist.x_edges, [t.x_min, t.x_max])
        self._set_slider(self.x_range, lo, hi, (lo if t.x_min is None else t.x_min, hi if t.x_max is None else t.x_max))
        self.x_range.label = f"{insp.x_feature} min / max"
        if not insp.one_d:
            lo, hi = self._slider_range(insp.hist.y_edges, [t.y_min, t.y_max], log=insp.log_y)
            self._set_slider(self.y_range, lo, hi, (lo if t.y_min is None else self._ys(t.y_min),
                                                    hi if t.y_max is None else self._ys(t.y_max)))
            self.y_range.label = f"{insp.y_feature} min / max" + (" (log10)" if insp.log_y else "")
        self._update_y_values()

    @staticmethod
    def _set_slider(sl, lo, hi, value):
        if not hi > lo:
            hi = lo + 1.0
        sl.min, sl.max = -1e300, 1e300  # widen first: min/max setters clamp against each other
        sl.min, sl.max = lo, hi
        sl.step = (hi - lo) / SLIDER_STEPS
        try:
            sl.native.setDecimals(_decimals(hi - lo))
        except AttributeError:  # pragma: no cover - backend without decimals
            pass
        sl.value = (max(lo, min(hi, value[0])), max(lo, min(hi, value[1])))

    def _sync_sliders(self):
        """Thresholds changed elsewhere (drag, suggestion): move the handles (widening the range)."""
        insp = self.session.inspection
        if insp is None:
            return
        t = insp.thresholds
        self._syncing = True
        try:
            lo, hi = self.x_range.min, self.x_range.max
            vals = [v for v in (t.x_min, t.x_max) if v is not None]
            if vals and (min(vals) < lo or max(vals) > hi):
                lo, hi = min(lo, *vals), max(hi, *vals)
                self._set_slider(self.x_range, lo, hi, self.x_range.value)
            self.x_range.value = (self.x_range.min if t.x_min is None else t.x_min,
                                  self.x_range.max if t.x_max is None else t.x_max)
            if not insp.one_d:
                lo, hi = self.y_range.min, self.y_range.max
                vals = [self._ys(v) for v in (t.y_min, t.y_max) if v is not None]
                if vals and (min(vals) < lo or max(vals) > hi):
                    self._set_slider(self.y_range, min(lo, *vals), max(hi, *vals), self.y_range.value)
                self.y_range.value = (self.y_range.min if t.y_min is None else self._ys(t.y_min),
                                      self.y_range.max if t.y_max is None else self._ys(t.y_max))
        finally:
            self._syncing = False
        self._update_y_values()

    def _update_y_values(self):
        """The thresholds in words under the sliders (the handles carry no labels)."""
        insp = self.session.inspection
        if insp is None:
            self.y_values.value = ""
            return
        t = insp.thresholds

        def rng(name, lo, hi):
            if lo is None and hi is None:
                return f"{name}: no cut"
            if hi is None:
                return f"{name} ≥ {lo:.4g}"
            if lo is None:
                return f"{name} ≤ {hi:.4g}"
            return f"{lo:.4g} ≤ {name} ≤ {hi:.4g}"

        parts = [rng(insp.x_feature, t.x_min, t.x_max)]
        if not insp.one_d:
            parts.append(rng(insp.y_feature, t.y_min, t.y_max))
        self.y_values.value = ";  ".join(parts)

    def _on_x_range(self, value):
        if self._syncing or self.session.inspection is None:
            return
        lo, hi = (float(v) for v in value)
        eps = 1e-9 * max(1.0, abs(self.x_range.max - self.x_range.min))
        self._set_pair("x", None if lo <= self.x_range.min + eps else lo, None if hi >= self.x_range.max - eps else hi)

    def _on_y_range(self, value):
        if self._syncing or self.session.inspection is None:
            return
        lo, hi = (float(v) for v in value)
        eps = 1e-9 * max(1.0, abs(self.y_range.max - self.y_range.min))
        self._set_pair("y", None if lo <= self.y_range.min + eps else self._yv(lo),
                       None if hi >= self.y_range.max - eps else self._yv(hi))

    def _set_pair(self, axis, lo, hi):
        t = self.session.thresholds
        changed = [(f"{axis}_min", lo), (f"{axis}_max", hi)]
        changed = [(k, v) for k, v in changed if getattr(t, k) != v]
        try:
            for k, v in changed[:-1]:
                setattr(t, k, v)
            if changed:
                self.session.set_threshold(*changed[-1])
        except CryodiagInputError as err:
            self.dock.error(err)
            self._sync_sliders()

    # ------------------------------------------------------------------ updates
    def update_selection(self, *_):
        """Thresholds or edits changed: lines, title, counts (blitted)."""
        s = self.session
        sel = s.selection
        if self._plot is None or sel is None or s.inspection is None:
            self._update_counts_label()
            return
        self._plot.set_thresholds(s.inspection.thresholds)
        if not self._syncing:
            self._sync_sliders()
        self.redraw_counts(draw=False)
        if self.blitter.active:
            self.blitter.update()
        else:
            self.canvas.draw()
        self._update_counts_label()

    def redraw_counts(self, draw: bool = True):
        s = self.session
        insp, sel = s.inspection, s.selection
        if insp is None or self._plot is None or sel is None:
            return
        mode = self.histogram_of.value
        prefix = ""
        counts = None
        if mode == HIST_KEPT:
            counts, prefix = insp.hist.counts(sel.kept), "kept picks: "
        elif mode == HIST_SHOWN:
            counts, prefix = insp.hist.counts(s.rows_of_shown()), "shown micrograph: "
        elif self._counts_mode != HIST_ALL:
            counts = self._base_counts()
        mode_changed = mode != self._counts_mode
        self._counts_mode = mode
        if counts is not None:
            self._plot.set_counts(counts)
        self._plot.title_prefix = prefix
        self._plot.set_title_counts(sel.n_kept, sel.n_rows, n_missing=insp.hist.n_missing)
        if mode_changed:
            self._start_blit()
        elif draw:
            if self.blitter.active:
                self.blitter.update()
            else:
                self.canvas.draw()

    def _update_counts_label(self):
        s = self.session
        sel = s.selection
        if sel is None:
            self.counts.value = "no picks layer (open STAR, .cs or .cbox picks, or run the picker)"
            return
        text = sel.explain()
        shown = self._shown_counts()
        if shown is not None:
            k, n, name = shown
            text += f". Shown micrograph {name}: {k:,} / {n:,} kept"
        insp = s.inspection
        if insp is not None and insp.hist.n_missing:
            k = insp.hist.n_missing
            text += f". {k:,} pick{'s' * (k != 1)} without a value {'are' if k != 1 else 'is'} not on the histogram"
        self.counts.value = text

    def _shown_counts(self):
        s = self.session
        if s.controller is None or s.selection is None:
            return None
        rows = s.rows_of_shown()
        i = s.current_index()
        name = s.controller.key_of_index(i) or str(i)
        return int(np.count_nonzero(s.selection.kept[rows])), int(rows.size), name

    def _on_rows_changed(self, kind, rows):
        if self._plot is None or self.session.inspection is None:
            return
        if self.histogram_of.value == HIST_ALL:
            self._plot.set_counts(self._base_counts())
            self._relayout()  # the counts are part of the background

    def _on_micrograph(self, index):
        self._update_counts_label()
        if self.histogram_of.value == HIST_SHOWN:
            self.redraw_counts()

    # ------------------------------------------------------------------ axes controls
    def _on_features(self, *_):
        if self._syncing:
            return
        insp = self.session.inspection
        if insp is None:
            return
        x = self.x_feature.value
        y = self.y_feature.value
        y = None if y in (None, NO_Y) else y
        if not x or (x, y) == (insp.x_feature, insp.y_feature):
            return
        try:
            self.session.configure(x_feature=x, y_feature=y, log_y=None)
        except CryodiagInputError as err:
            self.dock.error(err)

    def _on_log_y(self, on):
        if self._syncing or self.session.inspection is None:
            return
        self.session.configure(log_y=bool(on), keep_thresholds=True)

    def _on_bins(self, value):
        if self._syncing or self.session.inspection is None:
            return
        self.session.configure(bins=int(value), keep_thresholds=True)

    # ------------------------------------------------------------------ buttons
    def suggest(self, *_):
        """Show the suggested thresholds as a proposal (applied at once for NCC × power, where
        they are the default rule; elsewhere the user applies them)."""
        s = self.session
        t = s.suggested()
        if t is None:
            return
        insp = s.inspection
        n = int(insp.evaluator.evaluate(t).mask.sum())
        self.proposal = t
        self._say_proposal(f"suggested: {t.describe()} — would keep {n:,} of {len(insp.table):,} picks ({t.method})")
        if insp.suggests_by_default:
            self.apply_suggestion()
        else:
            self.apply_button.visible = True

    def _say_proposal(self, text: str) -> None:
        """The proposal's line, there only while it has something to say (an empty label would
        still take a row's height). A magicgui Label emits no change: its visibility is set here."""
        self.proposal_label.value = text
        self.proposal_label.visible = bool(text)

    def apply_suggestion(self, *_):
        if self.proposal is None:
            return
        try:
            self.session.set_thresholds(self.proposal)
        except CryodiagInputError as err:
            self.dock.error(err)
            return
        self.apply_button.visible = False
        self.proposal = None

    def keep_all(self, *_):
        s = self.session
        if s.inspection is None:
            return
        t = s.inspection.no_thresholds("manual: keep all")
        t.polygon = None
        s.set_thresholds(t)

    # ------------------------------------------------------------------ mouse on the histogram
    def _nearest_line(self, event, tol_px: float = 8.0):
        ax = self._plot.ax
        best, best_d = None, tol_px
        for name, line in self._plot.lines.items():
            if not line.get_visible():
                continue
            if name.startswith("x"):
                px = ax.transData.transform((line.get_xdata()[0], ax.get_ylim()[0]))[0]
                d = abs(px - event.x)
            else:
                py = ax.transData.transform((ax.get_xlim()[0], line.get_ydata()[0]))[1]
                d = abs(py - event.y)
            if d < best_d:
                best, best_d = name, d
        return best

    def _on_press(self, event):
        if self._plot is None or event.inaxes is not self._plot.ax or event.button != 1:
            return
        if self._poly_selector is not None:
            return
        tb = self.canvas.toolbar
        if tb is not None and getattr(tb, "mode", ""):
            return  # zoom/pan active
        self._dragging = self._nearest_line(event)

    def _on_motion(self, event):
        if self._dragging is None or self._plot is None or event.inaxes is not self._plot.ax:
            return
        v = event.xdata if self._dragging.startswith("x") else event.ydata
        if v is None:
            return
        try:
            self.session.set_threshold(self._dragging, v)
        except CryodiagInputError:
            pass  # a line dragged past its partner stops there

    def _on_release(self, event):
        self._dragging = None

    def _toggle_polygon(self, *_):
        if self._poly_selector is not None:
            self._stop_polygon()
            return
        if self._plot is None:
            return
        from matplotlib.widgets import PolygonSelector

        self.blitter.stop(redraw=False)
        self._poly_selector = PolygonSelector(self._plot.ax, self._polygon_drawn, useblit=False,
                                              props=dict(color="tab:orange", lw=1.5))
        self.polygon_button.text = "Stop drawing"
        self.dock.status.value = "click the polygon's corners on the histogram; click the first corner to close it"

    def _polygon_drawn(self, verts):
        self.session.set_polygon(verts)
        self._stop_polygon()

    def _stop_polygon(self):
        if self._poly_selector is not None:
            self._poly_selector.set_active(False)
            self._poly_selector.set_visible(False)
            self._poly_selector.disconnect_events()
            self._poly_selector = None
            self.polygon_button.text = "Draw polygon"
            if self.dock.status.value.startswith("click the polygon"):
                self.dock.status.value = ""
            self._relayout()
