"""The "Inspect Picks" dock widget: NCC x power histogram with live thresholds.

Wiring only: the numbers come from :class:`~napari_cryodiag.compute.picks.thresholds.PickInspection`
(pre-binned histogram, thresholds, calibration against defocus), the figure from
:mod:`napari_cryodiag.plots.pick_histogram`, the per-micrograph picks from the points layer's
controller (:func:`napari_cryodiag.picks_layer.get_picks_controller`), long jobs from
:mod:`napari_cryodiag.compute.picks.jobs` in a worker.

Tabs:

- **Thresholds**: points layer, x/y features, the histogram (drag the red lines; "Draw polygon"
  for a lasso on the histogram), sliders for x min and y min/max, kept/total counts overall
  and on the shown micrograph, rejected picks dimmed or hidden.
- **Micrographs**: name, defocus, picks, kept, median x, median y; a click shows the micrograph.
- **Calibration**: "Calibrate Pick Score to CTF", "Calibrate Power Score to CTF", ratio or
  difference, fit method, and the median-vs-defocus plots with their lines.
- **Jobs**: (re)compute NCC and power (raw or a denoised layer; blob diameter or a
  template stack layer; optional dask scheduler address), run the picker on the shown or all
  micrographs.
- **Export**: remove duplicates within a distance in Å; write kept (and optionally
  rejected) picks to STAR or .cs with the thresholds in a side JSON.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QScrollArea,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt import QDoubleRangeSlider, QLabeledDoubleSlider

from ..compute.picks.thresholds import X_FEATURE_PREFERENCE, PickInspection, Thresholds, numeric_features
from ..errors import CryodiagInputError
from ..plots.pick_histogram import plot_pick_histogram
from ._canvas import MplCanvas
from ._worker import start_worker

HIST_ALL, HIST_KEPT, HIST_SHOWN = "all picks", "kept picks", "shown micrograph"
SLIDER_STEPS = 1000
TABLE_COLUMNS = ["micrograph", "defocus (Å)", "picks", "kept", "median x", "median y"]


def _is_picks_layer(layer) -> bool:
    md = getattr(layer, "metadata", None) or {}
    cd = md.get("cryodiag") if isinstance(md, dict) else None
    return isinstance(cd, dict) and cd.get("kind") == "picks"


def _num_item(value) -> QTableWidgetItem:
    """A table item that sorts numerically (4 significant digits)."""
    item = QTableWidgetItem()
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        item.setData(Qt.ItemDataRole.DisplayRole, "")
    elif isinstance(value, (int, np.integer)):
        item.setData(Qt.ItemDataRole.DisplayRole, int(value))
    else:
        item.setData(Qt.ItemDataRole.DisplayRole, float(f"{float(value):.4g}"))
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


class InspectPicksWidget(QWidget):
    """Inspect Picks: histogram of two pick features with live thresholds (see module doc)."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.layer = None
        self.controller = None
        self.inspection: PickInspection | None = None
        self.result = None  # SelectionCounts of the current thresholds
        self._plot = None
        self._dragging: str | None = None
        self._poly_selector = None
        self._updating = False
        self._workers = []
        self._shown_index = None
        self._code_to_stack = np.zeros(0, dtype=np.int64)
        self._blit_bg = None
        self._counts_mode = HIST_ALL

        self._table_timer = QTimer(self)
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(200)
        self._table_timer.timeout.connect(self._update_table_kept)

        self._build_ui()
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.layers.selection.events.active.connect(self._on_active_layer)
        self._refresh_layers()

    # ================================================================== UI
    def _build_ui(self):
        outer = QVBoxLayout(self)
        top = QFormLayout()
        self.layer_combo = QComboBox()
        self.layer_combo.currentIndexChanged.connect(self._on_layer_chosen)
        top.addRow("Picks layer", self.layer_combo)
        outer.addLayout(top)

        self.tabs = QTabWidget()
        outer.addWidget(self.tabs)
        self.tabs.addTab(self._build_threshold_tab(), "Thresholds")
        self.tabs.addTab(self._build_table_tab(), "Micrographs")
        self.tabs.addTab(self._build_calibration_tab(), "Calibration")
        self.tabs.addTab(self._build_jobs_tab(), "Jobs")
        self.tabs.addTab(self._build_export_tab(), "Export")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)

    def _build_threshold_tab(self):
        w = QWidget()
        lay = QVBoxLayout(w)
        form = QFormLayout()
        self.x_combo = QComboBox()
        self.y_combo = QComboBox()
        self.x_combo.currentIndexChanged.connect(self._on_features_changed)
        self.y_combo.currentIndexChanged.connect(self._on_features_changed)
        form.addRow("x feature", self.x_combo)
        form.addRow("y feature", self.y_combo)
        opts = QHBoxLayout()
        self.log_y_check = QCheckBox("log y")
        self.log_y_check.toggled.connect(self._on_log_y)
        self.hist_of_combo = QComboBox()
        self.hist_of_combo.addItems([HIST_ALL, HIST_KEPT, HIST_SHOWN])
        self.hist_of_combo.currentIndexChanged.connect(lambda *_: self._redraw_counts())
        self.bins_spin = QSpinBox()
        self.bins_spin.setRange(0, 500)
        self.bins_spin.setSpecialValueText("auto")
        self.bins_spin.setPrefix("bins ")
        self.bins_spin.setValue(0)
        self.bins_spin.editingFinished.connect(self._on_bins)
        opts.addWidget(self.log_y_check)
        opts.addWidget(self.bins_spin)
        opts.addWidget(QLabel("of"))
        opts.addWidget(self.hist_of_combo)
        form.addRow(opts)
        lay.addLayout(form)

        self.hist_canvas = MplCanvas(figsize=(4.5, 3.6))
        self.hist_canvas.canvas.mpl_connect("button_press_event", self._on_press)
        self.hist_canvas.canvas.mpl_connect("motion_notify_event", self._on_motion)
        self.hist_canvas.canvas.mpl_connect("button_release_event", self._on_release)
        self.hist_canvas.canvas.mpl_connect("resize_event", self._on_hist_resize)
        lay.addWidget(self.hist_canvas, 1)  # the plot takes the spare height, not the gaps

        sl = QFormLayout()
        self.x_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        # y: unlabeled range slider in axis units (log10 of the value on a log axis), with the
        # values in ``y_values_label``
        self.y_slider = QDoubleRangeSlider(Qt.Orientation.Horizontal)
        self.y_values_label = QLabel("")
        self.x_slider.valueChanged.connect(self._on_x_slider)
        self.y_slider.valueChanged.connect(self._on_y_slider)
        self.x_slider_label = QLabel("x min")
        self.y_slider_label = QLabel("y min / max")
        sl.addRow(self.x_slider_label, self.x_slider)
        sl.addRow(self.y_slider_label, self.y_slider)
        sl.addRow("", self.y_values_label)
        lay.addLayout(sl)

        btns = QHBoxLayout()
        self.suggest_button = QPushButton("Suggest thresholds")
        self.suggest_button.clicked.connect(self.suggest_thresholds)
        self.polygon_button = QPushButton("Draw polygon")
        self.polygon_button.setCheckable(True)
        self.polygon_button.toggled.connect(self._on_polygon_mode)
        self.clear_polygon_button = QPushButton("Clear polygon")
        self.clear_polygon_button.clicked.connect(lambda: self.set_polygon(None))
        btns.addWidget(self.suggest_button)
        btns.addWidget(self.polygon_button)
        btns.addWidget(self.clear_polygon_button)
        lay.addLayout(btns)

        rej = QHBoxLayout()
        rej.addWidget(QLabel("rejected picks"))
        self.rejected_combo = QComboBox()
        self.rejected_combo.addItems(["dim", "hide"])
        self.rejected_combo.currentTextChanged.connect(self._on_rejected_mode)
        rej.addWidget(self.rejected_combo)
        rej.addStretch(1)
        lay.addLayout(rej)

        self.counts_label = QLabel("no picks layer")
        self.counts_label.setWordWrap(True)
        lay.addWidget(self.counts_label)
        return w

    def _build_table_tab(self):
        w = QWidget()
        lay = QVBoxLayout(w)
        self.mic_table = QTableWidget(0, len(TABLE_COLUMNS))
        self.mic_table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.mic_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.mic_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.mic_table.setSortingEnabled(True)
        self.mic_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.mic_table.verticalHeader().setVisible(False)
        self.mic_table.cellClicked.connect(self._on_table_clicked)
        lay.addWidget(self.mic_table)
        return w

    def _build_calibration_tab(self):
        w = QWidget()
        lay = QVBoxLayout(w)
        form = QFormLayout()
        self.cal_x_check = QCheckBox("Calibrate Pick Score to CTF")
        self.cal_y_check = QCheckBox("Calibrate Power Score to CTF")
        self.cal_mode_combo = QComboBox()
        self.cal_mode_combo.addItems(["ratio", "difference"])
        self.cal_method_combo = QComboBox()
        from ..compute.picks.calibration import METHODS

        self.cal_method_combo.addItems(list(METHODS))
        self.cal_scale_combo = QComboBox()
        self.cal_scale_combo.addItems(["linear", "log"])
        self.cal_scale_combo.setToolTip("fit the line to the median scores (linear) or to their logarithm "
                                        "(log: the line stays positive when junk dominates some micrographs)")
        for c in (self.cal_x_check, self.cal_y_check):
            c.toggled.connect(self._on_calibration_changed)
        for c in (self.cal_mode_combo, self.cal_method_combo, self.cal_scale_combo):
            c.currentIndexChanged.connect(self._on_calibration_changed)
        form.addRow(self.cal_x_check)
        form.addRow(self.cal_y_check)
        form.addRow("mode", self.cal_mode_combo)
        form.addRow("robust fit", self.cal_method_combo)
        form.addRow("fit scale", self.cal_scale_combo)
        lay.addLayout(form)
        self.cal_canvas = MplCanvas(figsize=(4.5, 6.0))
        self.cal_canvas.canvas.setMinimumHeight(520)
        # one plot column per calibrated score: scroll sideways rather than squeeze them
        self.cal_scroll = QScrollArea()
        self.cal_scroll.setWidgetResizable(True)
        self.cal_scroll.setWidget(self.cal_canvas)
        lay.addWidget(self.cal_scroll)
        self.cal_label = QLabel("")
        self.cal_label.setWordWrap(True)
        lay.addWidget(self.cal_label)
        return w

    def _build_jobs_tab(self):
        w = QWidget()
        lay = QFormLayout(w)
        self.mic_layer_combo = QComboBox()
        self.score_image_combo = QComboBox()
        self.template_combo = QComboBox()
        self.diameter_spin = QDoubleSpinBox()
        self.diameter_spin.setRange(1.0, 10000.0)
        self.diameter_spin.setValue(150.0)
        self.diameter_spin.setSuffix(" Å")
        self.lowpass_spin = QDoubleSpinBox()
        self.lowpass_spin.setRange(0.0, 1000.0)
        self.lowpass_spin.setValue(0.0)
        self.lowpass_spin.setSpecialValueText("none")
        self.lowpass_spin.setSuffix(" Å")
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("threads (or tcp://host:8786)")
        self.min_distance_spin = QDoubleSpinBox()
        self.min_distance_spin.setRange(0.0, 10000.0)
        self.min_distance_spin.setValue(0.0)
        self.min_distance_spin.setSpecialValueText("= diameter")
        self.min_distance_spin.setSuffix(" Å")
        self.max_picks_spin = QSpinBox()
        self.max_picks_spin.setRange(1, 1_000_000)
        self.max_picks_spin.setValue(500)
        lay.addRow("micrographs", self.mic_layer_combo)
        lay.addRow("score on", self.score_image_combo)
        lay.addRow("template", self.template_combo)
        lay.addRow("blob diameter", self.diameter_spin)
        lay.addRow("low-pass", self.lowpass_spin)
        lay.addRow("dask scheduler", self.scheduler_edit)
        self.score_button = QPushButton("Compute scores")
        self.score_button.clicked.connect(self.compute_scores)
        lay.addRow(self.score_button)
        lay.addRow("picker min. distance", self.min_distance_spin)
        lay.addRow("max picks / micrograph", self.max_picks_spin)
        row = QHBoxLayout()
        self.pick_shown_button = QPushButton("Pick shown micrograph")
        self.pick_all_button = QPushButton("Pick all micrographs")
        self.pick_shown_button.clicked.connect(lambda: self.run_picker(all_micrographs=False))
        self.pick_all_button.clicked.connect(lambda: self.run_picker(all_micrographs=True))
        row.addWidget(self.pick_shown_button)
        row.addWidget(self.pick_all_button)
        lay.addRow(row)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        lay.addRow(row)
        self.jobs_label = QLabel("")
        self.jobs_label.setWordWrap(True)
        lay.addRow(self.jobs_label)
        return w

    def _build_export_tab(self):
        w = QWidget()
        lay = QFormLayout(w)
        self.dup_spin = QDoubleSpinBox()
        self.dup_spin.setRange(0.0, 10000.0)
        self.dup_spin.setValue(20.0)
        self.dup_spin.setSuffix(" Å")
        self.dup_button = QPushButton("Remove duplicates")
        self.dup_button.clicked.connect(self.remove_duplicates)
        lay.addRow("duplicate distance", self.dup_spin)
        lay.addRow(self.dup_button)
        self.dup_label = QLabel("")
        lay.addRow(self.dup_label)
        self.export_rejected_check = QCheckBox("also write the rejected picks")
        lay.addRow(self.export_rejected_check)
        row = QHBoxLayout()
        self.export_star_button = QPushButton("Export kept to STAR…")
        self.export_cs_button = QPushButton("Export kept to .cs…")
        self.export_star_button.clicked.connect(lambda: self._export_dialog(".star"))
        self.export_cs_button.clicked.connect(lambda: self._export_dialog(".cs"))
        row.addWidget(self.export_star_button)
        row.addWidget(self.export_cs_button)
        lay.addRow(row)
        self.export_label = QLabel("")
        self.export_label.setWordWrap(True)
        lay.addRow(self.export_label)
        return w

    # ============================================================ layers
    def _picks_layers(self):
        return [ly for ly in self.viewer.layers if _is_picks_layer(ly)]

    def _refresh_layers(self, *_):
        current = self.layer
        names = [ly.name for ly in self._picks_layers()]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current is not None and current.name in names:
            self.layer_combo.setCurrentText(current.name)
        self.layer_combo.blockSignals(False)
        images = [ly.name for ly in self.viewer.layers if ly.__class__.__name__ == "Image"]
        for combo, first in (
            (self.mic_layer_combo, None),
            (self.score_image_combo, "raw micrographs"),
            (self.template_combo, "blob"),
        ):
            keep = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            if first:
                combo.addItem(first)
            combo.addItems(images)
            if keep:
                combo.setCurrentText(keep)
            combo.blockSignals(False)
        if self.layer is None or self.layer not in self.viewer.layers:
            self._on_layer_chosen()
        elif (self.inspection is not None and self.inspection.defocus is None
              and "defocus_A" not in self.inspection.table.columns
              and self._defocus_table(exclude=self.layer) is not None):
            self.set_layer(self.layer)  # a CTF table arrived: calibration becomes possible

    def _on_active_layer(self, event=None):
        active = self.viewer.layers.selection.active
        if active is not None and _is_picks_layer(active) and active is not self.layer:
            self.layer_combo.setCurrentText(active.name)

    def _on_layer_chosen(self, *_):
        name = self.layer_combo.currentText()
        layer = next((ly for ly in self._picks_layers() if ly.name == name), None)
        self.set_layer(layer)

    def set_layer(self, layer) -> None:
        """Inspect the picks of ``layer`` (a points layer from the readers)."""
        self._disconnect_controller()
        self.layer = layer
        self.controller = None
        self.inspection = None
        if layer is None:
            self.counts_label.setText("no picks layer (open a STAR/.cs/.cbox file, or run the picker)")
            self.hist_canvas.clear()
            self.hist_canvas.draw()
            self._plot = None
            self.mic_table.setRowCount(0)
            return
        try:
            from ..picks_layer import get_picks_controller

            self.controller = get_picks_controller(layer)
        except Exception as err:  # noqa: BLE001 - a layer without a controller still has a table
            self.controller = None
            self.status.setText(f"points of {layer.name} will not follow the thresholds: {err}")
        table = self._layer_table()
        if table is None or len(table) == 0:
            self.counts_label.setText(f"{layer.name}: no picks")
            return
        feats = numeric_features(table)
        if not feats:
            self._error(CryodiagInputError("the picks have no numeric score column", table.attrs.get("source")))
            return
        for combo in (self.x_combo, self.y_combo):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(feats)
            combo.blockSignals(False)
        defocus = None
        if "defocus_A" not in table.columns:
            found = self._defocus_table(exclude=layer)
            if found is not None:
                defocus, where = found[0]["defocus_A"], found[1]
                self.status.setText(f"defocus of {layer.name}'s micrographs taken from {where}")
        try:
            self.inspection = PickInspection(
                table,
                defocus=defocus,
                bins=self._bins_for(len(table)),
                calibrate_x=self.cal_x_check.isChecked(),
                calibrate_y=self.cal_y_check.isChecked(),
                mode=self.cal_mode_combo.currentText(),
                method=self.cal_method_combo.currentText(),
                scale=self.cal_scale_combo.currentText(),
            )
        except CryodiagInputError as err:
            self._error(err)
            return
        if not any(f in feats for f in X_FEATURE_PREFERENCE):
            self.status.setText(f"{layer.name} has no pick scores: compute NCC and power in the Jobs tab")
        for combo, val in ((self.x_combo, self.inspection.x_feature), (self.y_combo, self.inspection.y_feature)):
            combo.blockSignals(True)
            combo.setCurrentText(val)
            combo.blockSignals(False)
        self.log_y_check.blockSignals(True)
        self.log_y_check.setChecked(self.inspection.log_y)
        self.log_y_check.blockSignals(False)
        if self.controller is not None:
            self._connect_controller()
            img = getattr(self.controller, "image_layer", None)
            if img is not None:
                self.mic_layer_combo.setCurrentText(img.name)
            self.rejected_combo.setCurrentText(getattr(self.controller, "rejected_mode", "dim"))
        self._after_rebuild()

    def _layer_table(self):
        if self.controller is not None and getattr(self.controller, "table", None) is not None:
            return self.controller.table
        md = (self.layer.metadata or {}).get("cryodiag", {})
        return md.get("table")

    def _connect_controller(self):
        cbs = getattr(self.controller, "on_micrograph_changed", None)
        if isinstance(cbs, list):
            cbs.append(self._on_micrograph_changed)
        elif callable(cbs):
            cbs(self._on_micrograph_changed)

    def _disconnect_controller(self):
        cbs = getattr(self.controller, "on_micrograph_changed", None) if self.controller else None
        if isinstance(cbs, list) and self._on_micrograph_changed in cbs:
            cbs.remove(self._on_micrograph_changed)

    # ========================================================= rebuilds
    def _after_rebuild(self):
        """Features/calibration changed: new histogram figure, sliders, table, counts."""
        insp = self.inspection
        fig = self.hist_canvas.clear()
        self._poly_selector = None
        if self.polygon_button.isChecked():
            self.polygon_button.blockSignals(True)
            self.polygon_button.setChecked(False)
            self.polygon_button.blockSignals(False)
        xl = insp.x_feature + ("" if insp.x_units == "raw" else f" [{insp.x_units}]")
        yl = insp.y_feature + ("" if insp.y_units == "raw" else f" [{insp.y_units}]")
        self._blit_bg = None
        self._counts_mode = HIST_ALL
        self._plot = plot_pick_histogram(fig, insp.hist, thresholds=insp.thresholds, x_label=xl, y_label=yl)
        self._setup_sliders()
        self._fill_table()
        self._draw_calibration()
        for axis, check in (("x", self.cal_x_check), ("y", self.cal_y_check)):
            if axis in insp.calibration_errors and check.isChecked():
                check.blockSignals(True)
                check.setChecked(False)
                check.blockSignals(False)
                show_warning(insp.calibration_errors[axis])
        self.apply_thresholds()
        self._freeze_layout()

    def _slider_range(self, edges, values, log: bool = False):
        """Histogram range, widened (by 2 % of the span) to hold every set threshold inside
        the ends: a slider at its end means "no cut"."""
        f = (lambda v: np.log10(v)) if log else (lambda v: v)
        lo, hi = f(float(edges[0])), f(float(edges[-1]))
        pad = 0.02 * (hi - lo)
        for v in values:
            if v is not None and np.isfinite(v) and (not log or v > 0):
                lo, hi = min(lo, f(v) - pad), max(hi, f(v) + pad)
        g = (lambda v: 10.0**v) if log else (lambda v: v)
        return g(lo), g(hi)

    def _setup_sliders(self):
        insp = self.inspection
        t = insp.thresholds
        self._updating = True
        try:
            lo, hi = self._slider_range(insp.hist.x_edges, [t.x_min])
            self.x_slider.setRange(lo, hi)
            self.x_slider.setSingleStep((hi - lo) / SLIDER_STEPS)
            self.x_slider.setDecimals(self._decimals(hi - lo))
            self.x_slider.setValue(lo if t.x_min is None else t.x_min)
            lo, hi = self._slider_range(insp.hist.y_edges, [t.y_min, t.y_max], log=insp.log_y)
            slo, shi = self._ys(lo), self._ys(hi)
            self.y_slider.setRange(slo, shi)
            self.y_slider.setSingleStep((shi - slo) / SLIDER_STEPS)
            self.y_slider.setValue((
                slo if t.y_min is None else self._ys(t.y_min), shi if t.y_max is None else self._ys(t.y_max)
            ))
            self.x_slider_label.setText(f"{insp.x_feature} min")
            self.y_slider_label.setText(f"{insp.y_feature} min / max" + (" (log)" if insp.log_y else ""))
            self._update_y_values_label()
        finally:
            self._updating = False

    @staticmethod
    def _decimals(span: float) -> int:
        if not span > 0:
            return 3
        return int(min(8, max(0, 3 - np.floor(np.log10(span)))))

    def _fill_table(self):
        insp = self.inspection
        res = insp.evaluate()
        s = insp.summary(res.mask)
        tb = self.mic_table
        tb.setSortingEnabled(False)
        tb.clearContents()
        tb.setRowCount(len(s))
        tb.setHorizontalHeaderLabels(
            ["micrograph", "defocus (Å)", "picks", "kept", f"median {insp.x_feature}", f"median {insp.y_feature}"]
        )
        for i, row in enumerate(s.itertuples(index=False)):
            name = QTableWidgetItem(str(row.micrograph))
            name.setData(Qt.ItemDataRole.UserRole, i)  # micrograph code
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            tb.setItem(i, 0, name)
            tb.setItem(i, 1, _num_item(row.defocus_A))
            tb.setItem(i, 2, _num_item(int(row.picks)))
            tb.setItem(i, 3, _num_item(int(row.kept)))
            tb.setItem(i, 4, _num_item(row.median_x))
            tb.setItem(i, 5, _num_item(row.median_y))
        tb.setSortingEnabled(True)
        tb.sortItems(0, Qt.SortOrder.AscendingOrder)
        self._code_to_stack = self._stack_index_per_code()
        self._select_row_of_current()

    def _stack_index_per_code(self) -> np.ndarray:
        """Stack index (micrograph slider position) of each micrograph code; -1 when not open."""
        insp = self.inspection
        n = len(insp.names)
        out = np.full(n, -1, dtype=np.int64)
        mor = getattr(self.controller, "micrograph_of_row", None) if self.controller else None
        if mor is None:
            return out
        mor = np.asarray(mor)
        first = np.full(n, -1, dtype=np.int64)
        order = np.arange(len(insp.codes))[::-1]
        first[insp.codes[order]] = order  # last write wins = first occurrence
        ok = first >= 0
        out[ok] = mor[first[ok]]
        return out

    def _update_table_kept(self):
        if self.inspection is None or self.result is None:
            return
        kept = self.result.kept_per_micrograph
        tb = self.mic_table
        tb.setSortingEnabled(False)
        for r in range(tb.rowCount()):
            item = tb.item(r, 0)
            if item is None:
                continue
            code = item.data(Qt.ItemDataRole.UserRole)
            tb.item(r, 3).setData(Qt.ItemDataRole.DisplayRole, int(kept[code]))
        tb.setSortingEnabled(True)

    def _draw_calibration(self):
        insp = self.inspection
        fig = self.cal_canvas.clear()
        cals = insp.calibrations
        if not cals:
            self.cal_canvas.setMinimumWidth(0)
            self.cal_label.setText("\n".join(insp.calibration_errors.values()))
            ax = fig.add_subplot(111)
            ax.text(0.5, 0.5, "calibration off\n(turn on a \"Calibrate … to CTF\" option)",
                    ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            self.cal_canvas.draw()
            return
        self.cal_canvas.setMinimumWidth(400 * len(cals))
        try:
            from ..plots.calibration import plot_calibration

            plot_calibration(list(cals.values()), fig)
        except Exception as err:  # noqa: BLE001 - the plot is informative; the numbers stay usable
            ax = fig.add_subplot(111)
            ax.text(0.5, 0.5, f"calibration plot unavailable: {err}", ha="center", va="center",
                    transform=ax.transAxes, wrap=True)
            ax.set_axis_off()
        lines = list(insp.calibration_errors.values())
        for axis, cal in cals.items():
            lines.append(
                f"{cal.score}: median = {cal.intercept:.4g} + {cal.slope:.4g}·defocus_A ({cal.method}, {cal.mode});"
                f" residual slope {cal.residual_slope:.3g}"
            )
        self.cal_label.setText("\n".join(lines))
        self.cal_canvas.draw()

    # ======================================================= thresholds
    @property
    def thresholds(self) -> Thresholds | None:
        return None if self.inspection is None else self.inspection.thresholds

    def set_thresholds(self, t: Thresholds) -> None:
        """Replace the thresholds (feature units of the current view) and apply them."""
        if self.inspection is None:
            return
        t.x_feature, t.y_feature = self.inspection.x_feature, self.inspection.y_feature
        t.x_units, t.y_units = self.inspection.x_units, self.inspection.y_units
        self.inspection.thresholds = t
        self._sync_sliders()
        self.apply_thresholds()

    def set_threshold(self, name: str, value: float | None) -> None:
        """Set one of ``x_min``, ``x_max``, ``y_min``, ``y_max`` and apply (sliders follow)."""
        if self.inspection is None:
            return
        setattr(self.inspection.thresholds, name, None if value is None else float(value))
        self.inspection.thresholds.method = "manual"
        self._sync_sliders()
        self.apply_thresholds()

    def set_polygon(self, vertices) -> None:
        """Set (or clear with ``None``) the polygon selection, in feature units."""
        if self.inspection is None:
            return
        t = self.inspection.thresholds
        if vertices is None or len(vertices) < 3:
            t.polygon = None
            if self._poly_selector is not None:
                self._poly_selector.clear()
        else:
            t.polygon = [(float(a), float(b)) for a, b in vertices]
            t.polygon_log_x = bool(self.inspection.hist.log_x)
            t.polygon_log_y = bool(self.inspection.hist.log_y)
        self.apply_thresholds()

    def suggest_thresholds(self) -> None:
        if self.inspection is None:
            return
        t = self.inspection.suggest()
        t.polygon = self.inspection.thresholds.polygon
        t.polygon_log_x = self.inspection.thresholds.polygon_log_x
        t.polygon_log_y = self.inspection.thresholds.polygon_log_y
        self.set_thresholds(t)

    def _sync_sliders(self):
        t = self.inspection.thresholds
        self._updating = True
        try:
            xlo, xhi = self.x_slider.minimum(), self.x_slider.maximum()
            ylo, yhi = self.y_slider.minimum(), self.y_slider.maximum()
            vals = [v for v in (t.x_min,) if v is not None]
            if vals and (min(vals) < xlo or max(vals) > xhi):
                self.x_slider.setRange(min(xlo, *vals), max(xhi, *vals))
            vals = [self._ys(v) for v in (t.y_min, t.y_max) if v is not None]
            if vals and (min(vals) < ylo or max(vals) > yhi):
                self.y_slider.setRange(min(ylo, *vals), max(yhi, *vals))
            self.x_slider.setValue(self.x_slider.minimum() if t.x_min is None else t.x_min)
            self.y_slider.setValue((
                self.y_slider.minimum() if t.y_min is None else self._ys(t.y_min),
                self.y_slider.maximum() if t.y_max is None else self._ys(t.y_max),
            ))
        finally:
            self._updating = False
        self._update_y_values_label()

    def _ys(self, v: float) -> float:
        """y value -> slider position (log10 on a log axis)."""
        if self.inspection is not None and self.inspection.log_y:
            return float(np.log10(max(float(v), 1e-300)))
        return float(v)

    def _yv(self, s: float) -> float:
        """slider position -> y value."""
        if self.inspection is not None and self.inspection.log_y:
            return float(10.0 ** float(s))
        return float(s)

    def _update_y_values_label(self):
        if self.inspection is None:
            return
        t = self.inspection.thresholds
        lo = "none" if t.y_min is None else f"{t.y_min:.4g}"
        hi = "none" if t.y_max is None else f"{t.y_max:.4g}"
        self.y_values_label.setText(f"min {lo}   max {hi}")

    def _on_x_slider(self, value):
        if self._updating or self.inspection is None:
            return
        v = float(value)
        self.inspection.thresholds.x_min = None if v <= self.x_slider.minimum() else v
        self.inspection.thresholds.method = "manual"
        self.apply_thresholds()

    def _on_y_slider(self, value):
        if self._updating or self.inspection is None:
            return
        lo, hi = (float(v) for v in value)
        t = self.inspection.thresholds
        # only the handle that moved changes its threshold
        old_lo = self.y_slider.minimum() if t.y_min is None else self._ys(t.y_min)
        old_hi = self.y_slider.maximum() if t.y_max is None else self._ys(t.y_max)
        eps = 1e-9 * max(1.0, abs(self.y_slider.maximum() - self.y_slider.minimum()))
        if abs(lo - old_lo) > eps:
            t.y_min = None if lo <= self.y_slider.minimum() else self._yv(lo)
        if abs(hi - old_hi) > eps:
            t.y_max = None if hi >= self.y_slider.maximum() else self._yv(hi)
        t.method = "manual"
        self._update_y_values_label()
        self.apply_thresholds()

    def apply_thresholds(self) -> None:
        """Evaluate the thresholds; update counts, points, histogram lines (the fast path)."""
        insp = self.inspection
        if insp is None:
            return
        self.result = insp.evaluate()
        if self.controller is not None:
            try:
                self._shown_index = self.controller.current_index()
                self.controller.set_kept(self.result.mask)
            except Exception as err:  # noqa: BLE001
                self.status.setText(f"could not update the points: {err}")
        self._update_counts_label()
        if self._plot is not None:
            self._plot.set_thresholds(insp.thresholds)
            self._redraw_counts(draw=False)
            if self._blit_bg is not None:
                self._blit()
            else:
                self.hist_canvas.draw()
        self._table_timer.start()

    def _update_counts_label(self):
        insp, res = self.inspection, self.result
        if insp is None or res is None:
            return
        shown = self._shown_counts()
        pct = 100.0 * res.n_kept / res.n_total if res.n_total else 0.0
        text = f"kept {res.n_kept:,} / {res.n_total:,} picks ({pct:.1f} %)"
        if shown is not None:
            k, n, name = shown
            text += f"; shown micrograph {name}: {k:,} / {n:,}"
        if insp.hist.n_missing:
            text += f"; {insp.hist.n_missing:,} picks without a {insp.x_feature}/{insp.y_feature} value (not on the histogram)"
        self.counts_label.setText(text)

    def _shown_counts(self):
        """(kept, total, name) on the shown micrograph, or None without a controller."""
        if self.controller is None or self.result is None:
            return None
        try:
            rows = self._rows_of_shown()
            idx = self.controller.current_index()
        except Exception:  # noqa: BLE001
            return None
        name = str(idx)
        if rows.size:
            name = str(self.inspection.names[self.inspection.codes[rows[0]]])
        return int(np.count_nonzero(self.result.mask[rows])), int(rows.size), name

    def _rows_of_shown(self) -> np.ndarray:
        """All table rows of the shown micrograph (also the hidden rejected ones)."""
        c = self.controller
        if hasattr(c, "rows_of"):
            return np.asarray(c.rows_of(c.current_index()), dtype=np.int64)
        return np.asarray(c.rows_shown(), dtype=np.int64)

    def _redraw_counts(self, draw: bool = True):
        insp = self.inspection
        if insp is None or self._plot is None or self.result is None:
            return
        mode = self.hist_of_combo.currentText()
        prefix = ""
        if mode == HIST_KEPT:
            counts = insp.hist.counts(self.result.mask)
            prefix = "histogram of kept picks; "
        elif mode == HIST_SHOWN and self.controller is not None:
            rows = self._rows_of_shown()
            counts = insp.hist.counts(rows)
            prefix = "histogram of the shown micrograph; "
        else:
            counts = None  # all picks: what the figure was built with (re-set when coming back)
            if self._counts_mode != HIST_ALL:
                counts = insp.hist.counts()
        self._counts_mode = mode
        if counts is not None:
            self._plot.set_counts(counts)
        self._plot.title_prefix = prefix
        self._plot.set_title_counts(self.result.n_kept, self.result.n_total, n_missing=insp.hist.n_missing)
        if draw:
            self.hist_canvas.draw()

    # ================================================== mouse on histogram
    def _nearest_line(self, event, tol_px: float = 8.0):
        ax = self._plot.ax
        best, best_d = None, tol_px
        for name, line in self._plot.lines.items():
            if not line.get_visible():
                continue
            if name.startswith("x"):
                v = line.get_xdata()[0]
                px = ax.transData.transform((v, ax.get_ylim()[0]))[0]
                d = abs(px - event.x)
            else:
                v = line.get_ydata()[0]
                py = ax.transData.transform((ax.get_xlim()[0], v))[1]
                d = abs(py - event.y)
            if d < best_d:
                best, best_d = name, d
        return best

    def _on_press(self, event):
        if self._plot is None or event.inaxes is not self._plot.ax or event.button != 1:
            return
        if self.polygon_button.isChecked():
            return
        tb = getattr(self.hist_canvas, "toolbar", None)
        if tb is not None and getattr(tb, "mode", ""):
            return  # zoom/pan active
        self._dragging = self._nearest_line(event)
        if self._dragging is not None:
            self._begin_blit()

    def _on_motion(self, event):
        if self._dragging is None or self._plot is None or event.inaxes is not self._plot.ax:
            return
        v = event.xdata if self._dragging.startswith("x") else event.ydata
        if v is None:
            return
        self.set_threshold(self._dragging, v)

    def _on_release(self, event):
        if self._dragging is not None:
            self._dragging = None
            self._end_blit()
            self._update_table_kept()

    # While a line is dragged only the moving artists are redrawn (blitting): the axes,
    # ticks and colourbar stay in a saved background, so a move costs a few ms instead of a
    # full redraw of the figure.
    def _blit_artists(self):
        p = self._plot
        arts = list(p.lines.values()) + [p.ax.title]
        if self.hist_of_combo.currentText() != HIST_ALL:
            arts.insert(0, p.mesh)
        return arts

    def _begin_blit(self):
        canvas = self.hist_canvas.canvas
        if not getattr(canvas, "supports_blit", False):
            return
        arts = self._blit_artists()
        for a in arts:
            a.set_animated(True)
        canvas.draw()
        self._blit_bg = canvas.copy_from_bbox(self._plot.fig.bbox)
        self._blit()

    def _blit(self):
        canvas = self.hist_canvas.canvas
        canvas.restore_region(self._blit_bg)
        fig = self._plot.fig
        for a in self._blit_artists():
            fig.draw_artist(a)
        canvas.blit(fig.bbox)

    def _end_blit(self):
        if self._blit_bg is None:
            return
        self._blit_bg = None
        for a in self._blit_artists():
            a.set_animated(False)
        self.hist_canvas.draw()

    def _freeze_layout(self):
        """Lay the histogram figure out once for the canvas size, then keep the positions:
        constrained layout costs about as much as the rest of a redraw."""
        if self._plot is None:
            return
        fig = self._plot.fig
        fig.set_layout_engine("constrained")
        self.hist_canvas.canvas.draw()
        fig.set_layout_engine("none")

    def _on_hist_resize(self, event=None):
        self._freeze_layout()

    def _on_polygon_mode(self, on: bool):
        if self._plot is None:
            return
        if on:
            from matplotlib.widgets import PolygonSelector

            self._poly_selector = PolygonSelector(
                self._plot.ax, self._on_polygon_drawn, useblit=False,
                props=dict(color="tab:orange", lw=1.5),
            )
            self.status.setText("click the polygon's corners on the histogram; click the first corner to close it")
        elif self._poly_selector is not None:
            self._poly_selector.set_active(False)
            self._poly_selector.set_visible(False)
            self._poly_selector = None
            self.hist_canvas.draw()

    def _on_polygon_drawn(self, verts):
        self.set_polygon(verts)

    # ================================================== other controls
    def _on_features_changed(self, *_):
        if self.inspection is None:
            return
        x, y = self.x_combo.currentText(), self.y_combo.currentText()
        if not x or not y or (x, y) == (self.inspection.x_feature, self.inspection.y_feature):
            return
        try:
            self.inspection.configure(x_feature=x, y_feature=y, log_y=None)
        except CryodiagInputError as err:
            self._error(err)
            return
        self.log_y_check.blockSignals(True)
        self.log_y_check.setChecked(self.inspection.log_y)
        self.log_y_check.blockSignals(False)
        self._after_rebuild()

    def _bins_for(self, n: int) -> int:
        """Bins per axis: the spin box, or auto = sqrt(n)/1.5 within [20, 100]."""
        b = int(self.bins_spin.value())
        return b if b > 0 else int(np.clip(np.sqrt(max(n, 1)) / 1.5, 20, 100))

    def _on_bins(self):
        if self.inspection is None:
            return
        b = self._bins_for(len(self.inspection.table))
        if b != self.inspection.bins:
            self.inspection.configure(bins=b, keep_thresholds=True)
            self._after_rebuild()

    def _on_log_y(self, on: bool):
        if self.inspection is None:
            return
        self.inspection.configure(log_y=bool(on), keep_thresholds=True)
        self._after_rebuild()

    def _on_calibration_changed(self, *_):
        if self.inspection is None:
            return
        self.inspection.configure(
            calibrate_x=self.cal_x_check.isChecked(),
            calibrate_y=self.cal_y_check.isChecked(),
            mode=self.cal_mode_combo.currentText(),
            method=self.cal_method_combo.currentText(),
            scale=self.cal_scale_combo.currentText(),
            log_y=None,
        )
        self.log_y_check.blockSignals(True)
        self.log_y_check.setChecked(self.inspection.log_y)
        self.log_y_check.blockSignals(False)
        self._after_rebuild()

    def _on_rejected_mode(self, mode: str):
        if self.controller is not None:
            try:
                self.controller.rejected_mode = mode
                if self.result is not None:
                    self._shown_index = self.controller.current_index()
                    self.controller.set_kept(self.result.mask)
            except Exception as err:  # noqa: BLE001
                self.status.setText(f"could not change the rejected display: {err}")

    def _on_table_clicked(self, row: int, _col: int):
        item = self.mic_table.item(row, 0)
        if item is None or self.inspection is None:
            return
        code = int(item.data(Qt.ItemDataRole.UserRole))
        self.show_micrograph_of_code(code)

    def show_micrograph_of_code(self, code: int) -> None:
        idx = int(self._code_to_stack[code]) if code < len(self._code_to_stack) else -1
        if idx < 0 or self.controller is None:
            show_info(f"micrograph {self.inspection.names[code]} is not open in the viewer")
            return
        self.controller.show_micrograph(idx)

    def _on_micrograph_changed(self, index=None, *_):
        """The controller swapped the shown micrograph (or redrew it after ``set_kept``)."""
        if self.inspection is None:
            return
        if index is not None and index == self._shown_index:
            return  # a redraw of the same micrograph (our own set_kept): nothing to update
        self._shown_index = index
        self._select_row_of_current()
        self._update_counts_label()
        if self.hist_of_combo.currentText() == HIST_SHOWN:
            self._redraw_counts()

    def _select_row_of_current(self):
        if self.controller is None or self.inspection is None:
            return
        try:
            idx = int(self.controller.current_index())
        except Exception:  # noqa: BLE001
            return
        codes = np.flatnonzero(self._code_to_stack == idx)
        if codes.size == 0:
            return
        tb = self.mic_table
        for r in range(tb.rowCount()):
            item = tb.item(r, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == codes[0]:
                tb.blockSignals(True)
                tb.selectRow(r)
                tb.blockSignals(False)
                break

    # ================================================== jobs (worker)
    def _layer_by_name(self, name):
        return next((ly for ly in self.viewer.layers if ly.name == name), None)

    def _micrograph_layer(self):
        layer = self._layer_by_name(self.mic_layer_combo.currentText())
        if layer is None and self.controller is not None:
            layer = getattr(self.controller, "image_layer", None)
        return layer

    def _pixel_size_A(self, image_layer):
        md = (getattr(image_layer, "metadata", None) or {}).get("cryodiag", {})
        apix = md.get("pixel_size_A")
        if apix:
            return float(apix)
        sc = getattr(image_layer, "scale", None)
        return float(sc[-1]) if sc is not None else 1.0

    def _job_options(self) -> dict:
        """Options shared by scoring and picking, from the Jobs tab."""
        mic = self._micrograph_layer()
        if mic is None:
            raise CryodiagInputError("open the micrographs first (choose them under 'micrographs')")
        apix = self._pixel_size_A(mic)
        md = (mic.metadata or {}).get("cryodiag", {})
        keys = list(md.get("keys") or [])
        score_name = self.score_image_combo.currentText()
        score_layer = None if score_name in ("", "raw micrographs") else self._layer_by_name(score_name)
        if score_layer is mic:
            score_layer = None
        if score_layer is not None and np.shape(score_layer.data)[0] != np.shape(mic.data)[0] and mic.data.ndim == 3:
            raise CryodiagInputError(
                f"the layer to score on ({score_layer.name}) has {np.shape(score_layer.data)[0]} micrographs, "
                f"the micrographs ({mic.name}) {np.shape(mic.data)[0]}"
            )
        tmpl_name = self.template_combo.currentText()
        kwargs = {}
        if tmpl_name not in ("", "blob"):
            tl = self._layer_by_name(tmpl_name)
            templates = np.asarray(tl.data, dtype=np.float32)
            kwargs["templates"] = templates[None] if templates.ndim == 2 else templates
            kwargs["template_pixel_size_A"] = self._pixel_size_A(tl)
        lp = float(self.lowpass_spin.value())
        if lp > 0:
            kwargs["lowpass_A"] = lp
        return dict(
            image_layer=mic,
            micrographs=mic.data,
            score_micrographs=None if score_layer is None else score_layer.data,
            keys=keys or None,
            names=[str(p) for p in md.get("paths", [])] or None,
            pixel_size_A=apix,
            diameter_px=float(self.diameter_spin.value()) / apix,
            client=self.scheduler_edit.text().strip() or None,
            kwargs=kwargs,
        )

    def compute_scores(self):
        """(Re)compute NCC and power for the layer's picks (``compute.pick_jobs``) in a
        worker with progress and cancel; the scored picks become a new picks layer.
        Returns the napari worker (None when it could not start)."""
        if self.inspection is None:
            show_warning("choose a picks layer first")
            return None
        try:
            o = self._job_options()
        except CryodiagInputError as err:
            self._error(err)
            return None
        from ..compute.picks import jobs as pick_jobs

        table = self.inspection.table
        old = self.layer
        diam_A = float(self.diameter_spin.value())

        def _job():
            return (yield from pick_jobs.iter_score_picks(
                o["micrographs"], table, diameter_px=o["diameter_px"], keys=o["keys"],
                score_micrographs=o["score_micrographs"], client=o["client"],
                pixel_size_A=o["pixel_size_A"], **o["kwargs"],
            ))

        def _done(scored):
            info = scored.attrs.get("cryodiag_scoring", {})
            msg = (f"scored {info.get('n_picks', len(scored)):,} picks on {info.get('n_micrographs_scored', '?')} "
                   f"micrographs (blob/template diameter {diam_A:g} Å"
                   + (f", on {self.score_image_combo.currentText()}" if o["score_micrographs"] is not None else "")
                   + f"); {info.get('n_nan', 0):,} off their micrograph, {info.get('n_unmatched', 0):,} on "
                   "micrographs that are not open (NaN)")
            self.jobs_label.setText(msg)
            show_info(msg)
            self.add_picks_layer(scored, f"{old.name} (scored)", hide=old)

        return self._start(_job, _done, "compute scores")

    def run_picker(self, all_micrographs: bool = True):
        """Pick the shown (or every) micrograph with a blob or the template layer
        (``compute.pick_jobs``); the picks become a new picks layer. Returns the worker."""
        try:
            o = self._job_options()
        except CryodiagInputError as err:
            self._error(err)
            return None
        from ..compute.picks import jobs as pick_jobs

        mic = o["image_layer"]
        data, keys, names = o["micrographs"], o["keys"], o["names"]
        n = data.shape[0] if data.ndim == 3 else 1
        keys = keys or [f"{mic.name}_{i:05d}" for i in range(n)]
        names = names or keys
        sdata = o["score_micrographs"]
        if not all_micrographs and data.ndim == 3:
            i = int(round((self.viewer.dims.point[-3] - mic.translate[-3]) / mic.scale[-3]))
            i = min(max(i, 0), n - 1)
            data, keys, names = data[i : i + 1], keys[i : i + 1], names[i : i + 1]
            sdata = None if sdata is None else sdata[i : i + 1]
        min_d = float(self.min_distance_spin.value())
        kwargs = dict(o["kwargs"])
        if min_d > 0:
            kwargs["min_distance_px"] = min_d / o["pixel_size_A"]
        found = self._defocus_table()
        ctf = None if found is None else found[0]

        def _job():
            return (yield from pick_jobs.iter_pick_micrographs(
                data, diameter_px=o["diameter_px"], keys=keys, names=names, score_micrographs=sdata,
                client=o["client"], pixel_size_A=o["pixel_size_A"], max_picks=int(self.max_picks_spin.value()),
                **kwargs,
            ))

        def _done(table):
            if ctf is not None and len(table):
                for col in ctf.columns:
                    table[col] = table["micrograph"].map(ctf[col]).to_numpy()
            msg = f"picker: {len(table):,} picks on {table['micrograph'].nunique() if len(table) else 0} micrographs"
            if ctf is None:
                msg += " (no defocus known: open a CTF table or picks with defocus to calibrate)"
            self.jobs_label.setText(msg)
            show_info(msg)
            self.add_picks_layer(table, f"picks ({mic.name})")

        return self._start(_job, _done, "picker")

    def _defocus_table(self, exclude=None):
        """``(per-micrograph CTF DataFrame, layer name)`` from any open table with defocus
        (picks, particles or a CTF table such as RELION's micrographs_ctf.star), or None."""
        import pandas as pd

        cols = ["defocus_A", "defocus_u_A", "defocus_v_A", "defocus_angle_deg"]
        for ly in self.viewer.layers:
            if ly is exclude:
                continue
            md = (getattr(ly, "metadata", None) or {}).get("cryodiag", {})
            t = md.get("table") if isinstance(md, dict) else None
            if isinstance(t, pd.DataFrame) and "micrograph" in t.columns and "defocus_A" in t.columns:
                have = [c for c in cols if c in t.columns]
                return t.groupby(t["micrograph"].astype(str))[have].median(), ly.name
        return None

    def _start(self, job, done, description):
        self.jobs_label.setText(f"{description}: running …")
        w = start_worker(job, on_done=done, progress_bar=self.progress, cancel_button=self.cancel_button,
                         description=description)
        w.errored.connect(lambda err: self.jobs_label.setText(f"{description}: {err}"))
        w.aborted.connect(lambda: self.jobs_label.setText(f"{description}: cancelled"))
        self._workers.append(w)
        w.finished.connect(lambda: self._workers.remove(w) if w in self._workers else None)
        return w

    def add_picks_layer(self, table, name: str, *, hide: object = None):
        """Add ``table`` as a new picks layer (as the reader builds it), linked to its
        micrographs, and inspect it. The layer it derives from (``hide``) is left untouched
        and shown: napari's Points raises when a hidden layer's data and colours are swapped
        as the slider moves (picks_layer refreshes hidden layers too), so it is not hidden.
        Returns the new layer."""
        from .._reader import picks_layer_data
        from ..picks_layer import link_viewer

        source = str(table.attrs.get("source") or name)
        data, kwargs, _ = picks_layer_data(table, source, name=name)
        layer = self.viewer.add_points(data, **kwargs)
        link_viewer(self.viewer)
        self._refresh_layers()
        self.layer_combo.setCurrentText(layer.name)
        if self.layer is not layer:
            self.set_layer(layer)
        return layer

    # ================================================== duplicates, export
    def _pixel_size_for_table(self, table) -> float | None:
        if "pixel_size_A" in table.columns:
            v = float(np.nanmedian(table["pixel_size_A"].to_numpy(dtype=float)))
            if np.isfinite(v) and v > 0:
                return v
        img = getattr(self.controller, "image_layer", None) if self.controller else None
        return self._pixel_size_A(img) if img is not None else None

    def remove_duplicates(self, distance_A: float | None = None):
        """Remove picks within ``distance_A`` of a higher-scoring pick on the same micrograph
        (x feature ranks them); the result becomes a new picks layer. Returns the
        :class:`~napari_cryodiag.compute.picks.duplicates.DuplicateResult` (None on error)."""
        if self.inspection is None:
            show_warning("choose a picks layer first")
            return None
        from ..compute.picks.duplicates import find_duplicates

        table = self.inspection.table
        dist = float(self.dup_spin.value() if distance_A is None else distance_A)
        try:
            apix = self._pixel_size_for_table(table)
            if apix is None:
                raise CryodiagInputError("no pixel size known to convert the distance from Å",
                                         table.attrs.get("source"))
            res = find_duplicates(table, dist, score=self.inspection.x_feature, keep="higher",
                                  pixel_size_A=apix)
        except (CryodiagInputError, ValueError) as err:
            self._error(err)
            return None
        new = table[res.keep].reset_index(drop=True)
        new.attrs = dict(table.attrs)
        new.attrs["duplicates"] = res.to_dict()
        msg = (f"removed {res.n_removed:,} duplicate picks within {dist:g} Å (kept the higher "
               f"{self.inspection.x_feature}); {len(new):,} of {len(table):,} remain")
        self.dup_label.setText(msg)
        show_info(msg)
        old = self.layer
        self.add_picks_layer(new, f"{old.name} (no duplicates)", hide=old)
        return res

    def _export_dialog(self, suffix: str):
        if self.inspection is None:
            show_warning("choose a picks layer first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export kept picks", "", f"*{suffix}")
        if path:
            if not path.endswith(suffix):
                path += suffix
            self.export(path)

    def export(self, path, *, rejected: bool | None = None, overwrite: bool = False) -> list[Path]:
        """Write the kept picks to ``path`` (.star or .cs), the rejected ones to ``<stem>_rejected``
        when asked, and the thresholds and counts to ``<name>.cryodiag.json`` (``io.selection``:
        the same files as the command line). Atomic; never over an input file. Returns the
        written paths."""
        from ..io.selection import MicrographRefs, write_selection

        insp = self.inspection
        if insp is None:
            return []
        if rejected is None:
            rejected = self.export_rejected_check.isChecked()
        res = insp.evaluate()
        refs = []
        img = getattr(self.controller, "image_layer", None) if self.controller else None
        if img is not None:
            md = img.metadata.get("cryodiag", {}) if isinstance(img.metadata, dict) else {}
            paths = [str(p) for p in md.get("paths", [])]
            if paths:
                refs.append(MicrographRefs.from_paths(paths, shapes=tuple(int(v) for v in np.shape(img.data)[-2:]),
                                                      pixel_size_A=md.get("pixel_size_A")))
        try:
            out = write_selection(path, insp.table, res.mask, rejected=rejected, settings=insp.report(res),
                                  left_out={"thresholds": int(res.n_rejected)}, micrographs=refs,
                                  overwrite=overwrite)
        except CryodiagInputError as err:
            self._error(err)
            return []
        msg = "wrote " + ", ".join(str(Path(p).name) for p in out.files)
        if out.notes:
            msg += "\n" + "\n".join(out.notes)
        self.export_label.setText(msg)
        show_info(msg)
        return [Path(p) for p in out.files]

    # ================================================== helpers
    def _error(self, err):
        self.status.setText(str(err))
        show_error(str(err))

    def closeEvent(self, event):  # noqa: N802
        self._disconnect_controller()
        super().closeEvent(event)


__all__ = ["InspectPicksWidget"]
