"""The "Classes" dock widget: posterior/ESS histograms, class-average grid, sortable table, export.

Wiring only: numbers from :func:`napari_cryodiag.workflows.classes.iter_class_diagnostics`
(run in a worker with progress and cancel), figures from :mod:`napari_cryodiag.plots.classes`,
selection export through :func:`napari_cryodiag.workflows.classes.write_selection`.

Inputs: particles from a layer whose ``metadata["cryodiag"]["table"]`` holds a canonical table
(the readers put it there) or from a STAR / ``.cs`` file; class averages from an image-stack
layer, an MRCS file, the RELION model's reference stack, or computed from the particle images
(when found); optional RELION ``_model.star`` and particle-stack locations.

Outputs: tabs "Histograms" (best-class probability and class ESS, or RELION's analogues),
"Grid" (class averages labelled with count, FRC resolution at 0.5 and median ESS; click a
tile to select it), "Table" (sortable; multi-selection) and "FRC" (half-set curves), and a
napari image layer "class averages" — a stack in the chosen order, or a tiled grid. Selected
classes are written with "Export selected…" to STAR or ``.cs`` (atomic, never over an input).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..compute.particles.classes import sort_summary
from ..errors import CryodiagInputError
from ..plots.classes import (
    ESS_SHORT,
    RELION_GRID_NOTE,
    SELECTED_COLOR,
    class_label,
    plot_class_grid,
    plot_frc_curves,
    plot_posterior_histograms,
)
from ..workflows.classes import iter_class_diagnostics, write_selection
from ._canvas import MplCanvas
from ._worker import start_worker

FILE_ITEM = "(file…)"
AUTO_AVERAGES = "(model's / computed)"
LAYER_NAME = "class averages"
LABELS_NAME = "class labels"
SORT_CHOICES = ["count", "resolution", "median_ess", "class"]
TABLE_COLUMNS = ["class", "count", "fraction", "FRC 0.5 (Å)", "median ESS", "mean best p", "note"]


def _layer_table(layer):
    md = getattr(layer, "metadata", None) or {}
    cd = md.get("cryodiag") if isinstance(md, dict) else None
    if isinstance(cd, dict) and isinstance(cd.get("table"), pd.DataFrame):
        return cd["table"]
    return None


def _is_stack_layer(layer) -> bool:
    data = getattr(layer, "data", None)
    return (getattr(layer, "_type_string", "") == "image" and getattr(data, "ndim", 0) == 3
            and layer.name != LAYER_NAME)


def _item(value, fmt="{:.4g}") -> QTableWidgetItem:
    """A read-only table item that sorts numerically (empty for NaN)."""
    it = QTableWidgetItem()
    if isinstance(value, str):
        it.setData(Qt.ItemDataRole.DisplayRole, value)
    elif value is None or (isinstance(value, float) and not np.isfinite(value)):
        it.setData(Qt.ItemDataRole.DisplayRole, "")
    elif isinstance(value, (int, np.integer)):
        it.setData(Qt.ItemDataRole.DisplayRole, int(value))
    else:
        it.setData(Qt.ItemDataRole.DisplayRole, float(fmt.format(float(value))))
    it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return it


def tile_grid(stack: np.ndarray, ncols: int, pad: int = 2, row_gap: int = 0) -> np.ndarray:
    """Tile ``(K, n, n)`` images into one 2D mosaic (row-major): columns ``pad`` pixels apart,
    rows ``pad + row_gap`` apart (room for labels above each tile); tile ``i`` starts at row
    ``row_gap + (i // ncols) * (n + pad + row_gap)``, column ``(i % ncols) * (n + pad)``."""
    k, n = stack.shape[0], stack.shape[-1]
    nrows = int(np.ceil(k / ncols))
    dy, dx = n + pad + row_gap, n + pad
    out = np.full((nrows * dy - pad, ncols * dx - pad), np.nan, dtype=np.float32)
    for i, img in enumerate(stack):
        r, c = divmod(i, ncols)
        # normalise each tile so tiles of different contrast show alike
        lo, hi = np.percentile(img, [1, 99.5])
        y0 = row_gap + r * dy
        out[y0: y0 + n, c * dx: c * dx + n] = (img - lo) / (hi - lo or 1)
    fill = np.nanmin(out) if np.isfinite(out).any() else 0.0
    return np.nan_to_num(out, nan=fill)


class _BadInput:
    """Bad input, returned (not raised) by the worker so the widget shows it in its status line."""

    def __init__(self, error: CryodiagInputError):
        self.error = error


def _job(particles, **kwargs):
    """The worker's generator (superqt re-raises a returned exception, hence the wrapper)."""
    try:
        return (yield from iter_class_diagnostics(particles, **kwargs))
    except CryodiagInputError as err:
        return _BadInput(err)


class ClassesWidget(QWidget):
    """Classes: histograms, class grid with count/FRC/median ESS, sortable table, selection export."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result = None  # ClassDiagnostics
        self.worker = None
        self.selected: set[int] = set()
        self._axes_class: dict = {}
        self._order: list[int] = []
        self._memory = None
        self._memory_name = ""
        self._labels: list[str] = []
        self._build_ui()
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(self._show_slice_label)
        self._refresh_layers()

    # ================================================================== UI
    def _build_ui(self):
        outer = QVBoxLayout(self)
        form = QFormLayout()

        self.particles_combo = QComboBox()
        self.particles_path = QLineEdit()
        self.particles_path.setPlaceholderText("RELION _data.star or cryoSPARC .cs")
        b = QPushButton("…")
        b.clicked.connect(lambda: self._browse(self.particles_path, "Particles (*.star *.cs)"))
        row = QHBoxLayout()
        row.addWidget(self.particles_combo, 1)
        row.addWidget(self.particles_path, 2)
        row.addWidget(b)
        form.addRow("Particles", row)

        self.averages_combo = QComboBox()
        self.averages_path = QLineEdit()
        self.averages_path.setPlaceholderText("class averages .mrcs (optional)")
        b = QPushButton("…")
        b.clicked.connect(lambda: self._browse(self.averages_path, "Class averages (*.mrcs *.mrc)"))
        row = QHBoxLayout()
        row.addWidget(self.averages_combo, 1)
        row.addWidget(self.averages_path, 2)
        row.addWidget(b)
        form.addRow("Averages", row)

        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("RELION _model.star (optional)")
        b = QPushButton("…")
        b.clicked.connect(lambda: self._browse(self.model_path, "RELION model (*_model.star *.star)"))
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(b)
        form.addRow("Model", row)

        self.stacks_path = QLineEdit()
        self.stacks_path.setPlaceholderText("particle stacks: files or folders, ';'-separated (optional)")
        form.addRow("Stacks", self.stacks_path)

        self.ctf_combo = QComboBox()
        self.ctf_combo.addItems(["phase_flip", "wiener", "none"])
        self.halves_combo = QComboBox()
        self.halves_combo.addItems(["auto", "split", "alternate"])
        self.frc_check = QCheckBox("FRC from particle images")
        self.frc_check.setChecked(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("CTF"))
        row.addWidget(self.ctf_combo)
        row.addWidget(QLabel("halves"))
        row.addWidget(self.halves_combo)
        row.addWidget(self.frc_check)
        form.addRow(row)
        outer.addLayout(form)

        row = QHBoxLayout()
        self.compute_btn = QPushButton("Compute")
        self.compute_btn.clicked.connect(self.compute)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        row.addWidget(self.compute_btn)
        row.addWidget(self.cancel_btn)
        row.addWidget(self.progress, 1)
        outer.addLayout(row)

        row = QHBoxLayout()
        row.addWidget(QLabel("Sort by"))
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(SORT_CHOICES)
        self.sort_combo.currentTextChanged.connect(self._on_sort)
        row.addWidget(self.sort_combo)
        row.addWidget(QLabel("layer"))
        self.layer_mode = QComboBox()
        self.layer_mode.addItems(["stack", "tiled grid"])
        self.layer_mode.currentTextChanged.connect(lambda _: self._update_layer())
        row.addWidget(self.layer_mode)
        row.addStretch(1)
        outer.addLayout(row)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        # long paths in the status must not widen the dock
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.status)

        self.tabs = QTabWidget()
        self.hist_canvas = MplCanvas(self, figsize=(6, 3))
        self.grid_canvas = MplCanvas(self, figsize=(6, 5))
        self.frc_canvas = MplCanvas(self, figsize=(6, 4))
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        self.tabs.addTab(self.hist_canvas, "Histograms")
        self.tabs.addTab(self.grid_canvas, "Grid")
        self.tabs.addTab(self.table, "Table")
        self.tabs.addTab(self.frc_canvas, "FRC")
        outer.addWidget(self.tabs, 1)
        self.grid_canvas.canvas.mpl_connect("button_press_event", self._on_grid_click)

        row = QHBoxLayout()
        self.selection_label = QLabel("selected: none")
        self.export_btn = QPushButton("Export selected…")
        self.export_btn.clicked.connect(lambda: self.export_selected())
        self.export_btn.setEnabled(False)
        self.clear_btn = QPushButton("Clear selection")
        self.clear_btn.clicked.connect(lambda: self.set_selection([]))
        row.addWidget(self.selection_label, 1)
        row.addWidget(self.clear_btn)
        row.addWidget(self.export_btn)
        outer.addLayout(row)

    def _browse(self, edit: QLineEdit, filt: str):
        path, _ = QFileDialog.getOpenFileName(self, "Open", "", filt)
        if path:
            edit.setText(path)

    def _refresh_layers(self, event=None):
        cur_p = self.particles_combo.currentText()
        cur_a = self.averages_combo.currentText()
        self.particles_combo.blockSignals(True)
        self.averages_combo.blockSignals(True)
        self.particles_combo.clear()
        self.averages_combo.clear()
        self.particles_combo.addItem(FILE_ITEM)
        self.averages_combo.addItems([AUTO_AVERAGES, FILE_ITEM])
        for layer in self.viewer.layers:
            if _layer_table(layer) is not None:
                self.particles_combo.addItem(layer.name)
            if _is_stack_layer(layer):
                self.averages_combo.addItem(layer.name)
        if getattr(self, "_memory", None) is not None:
            self.particles_combo.addItem(f"[memory] {self._memory_name}")
        for combo, cur in ((self.particles_combo, cur_p), (self.averages_combo, cur_a)):
            i = combo.findText(cur)
            if i >= 0:
                combo.setCurrentIndex(i)
        if (cur_p in ("", FILE_ITEM) and not self.particles_path.text().strip()
                and self.particles_combo.count() > 1):
            self.particles_combo.setCurrentIndex(1)  # a layer with a particle table, rather than no input
        self.particles_combo.blockSignals(False)
        self.averages_combo.blockSignals(False)

    # ================================================================== compute
    def _options(self) -> dict:
        """Everything but the particles: averages, model, stacks, FRC options."""
        kwargs: dict = {}
        a = self.averages_combo.currentText()
        if a == FILE_ITEM:
            if self.averages_path.text().strip():
                kwargs["averages"] = self.averages_path.text().strip()
        elif a != AUTO_AVERAGES and a in self.viewer.layers:
            layer = self.viewer.layers[a]
            kwargs["averages"] = np.asarray(layer.data, dtype=np.float32)
            apix = ((layer.metadata or {}).get("cryodiag", {}) or {}).get("pixel_size_A")
            if apix:
                kwargs["pixel_size_A"] = float(apix)
        if self.model_path.text().strip():
            kwargs["model"] = self.model_path.text().strip()
        kwargs.update(
            stacks=[s.strip() for s in self.stacks_path.text().split(";") if s.strip()],
            compute_frc=self.frc_check.isChecked(),
            ctf=self.ctf_combo.currentText(),
            halves=self.halves_combo.currentText(),
        )
        return kwargs

    def _inputs(self) -> dict:
        name = self.particles_combo.currentText()
        kwargs = self._options()
        if name.startswith("[memory]"):
            return {"particles": self._memory["table"], "images": self._memory["images"], **kwargs}
        if name != FILE_ITEM and name in self.viewer.layers:
            layer = self.viewer.layers[name]
            particles = _layer_table(layer)
            md = ((layer.metadata or {}).get("cryodiag", {}) or {})
            if md.get("images") is not None:
                kwargs["images"] = md["images"]
            if "averages" not in kwargs and _is_stack_layer(layer):
                # a class-average stack that carries its particle table (e.g. the sample data)
                kwargs["averages"] = np.asarray(layer.data, dtype=np.float32)
                if md.get("pixel_size_A"):
                    kwargs.setdefault("pixel_size_A", float(md["pixel_size_A"]))
        else:
            text = self.particles_path.text().strip()
            if not text:
                raise CryodiagInputError("choose a particle file (STAR or .cs) or a layer with a particle table")
            particles = text
        return {"particles": particles, **kwargs}

    def load_table(self, table: pd.DataFrame, images: np.ndarray | None = None, name: str = "particles"):
        """Offer an in-memory particle table (and its images) as the source (e.g. simulated classes)."""
        self._memory = {"table": table, "images": images}
        self._memory_name = name
        self.particles_combo.addItem(f"[memory] {name}")
        self.particles_combo.setCurrentIndex(self.particles_combo.count() - 1)

    def compute(self):
        """Start the computation in a worker (progress bar and Cancel)."""
        try:
            inp = self._inputs()
        except CryodiagInputError as err:
            show_error(str(err))
            self.status.setText(str(err))
            return None
        particles = inp.pop("particles")
        self.status.setText("computing…")
        self.compute_btn.setEnabled(False)
        self.worker = start_worker(
            _job,
            particles,
            on_done=self._on_done,
            progress_bar=self.progress,
            cancel_button=self.cancel_btn,
            description="Classes",
            **inp,
        )
        self.worker.finished.connect(lambda: self.compute_btn.setEnabled(True))
        self.worker.errored.connect(lambda e: self.status.setText(f"error: {e}"))
        self.worker.aborted.connect(lambda: self.status.setText("cancelled"))
        return self.worker

    def _on_done(self, result):
        if isinstance(result, _BadInput):
            show_error(f"Classes: {result.error}")
            self.status.setText(f"error: {result.error}")
            return
        self.result = result
        self.selected = set()
        s = result.summary
        n_used = int((s["count"] > 0).sum())
        msg = (f"{len(result.table):,} particles in {n_used} classes; "
               f"{result.posterior.source} posteriors; averages: {result.averages_source}")
        if result.frc_reason:
            msg += f"\nFRC: {result.frc_reason}"
        notes = list(result.posterior.notes) + list(result.notes)
        if notes:
            msg += "\n" + "\n".join(notes)
        self.status.setText(msg)
        plot_posterior_histograms(result.histograms, fig=self.hist_canvas.clear(),
                                  source=result.posterior.source)
        self.hist_canvas.draw()
        fig = self.frc_canvas.clear()
        if result.class_averages is not None:
            plot_frc_curves(result.class_averages, fig=fig)
        else:
            ax = fig.subplots()
            ax.set_axis_off()
            ax.text(0.5, 0.5, result.frc_reason or "no FRC", ha="center", va="center", wrap=True)
        self.frc_canvas.draw()
        self._fill_table()
        self._draw_grid()
        self._update_layer()
        self._update_selection_ui()

    # ================================================================== views
    @property
    def sort_by(self) -> str:
        return self.sort_combo.currentText()

    def sorted_summary(self) -> pd.DataFrame:
        return sort_summary(self.result.summary, self.sort_by)

    def _on_sort(self, _=None):
        if self.result is None:
            return
        self._draw_grid()
        self._update_layer()
        col = {"count": 1, "resolution": 3, "median_ess": 4, "class": 0}[self.sort_by]
        order = Qt.SortOrder.DescendingOrder if self.sort_by == "count" else Qt.SortOrder.AscendingOrder
        self.table.sortItems(col, order)

    def _ess_name(self) -> str:
        return ESS_SHORT.get(self.result.posterior.source, "ESS") if self.result is not None else "ESS"

    def _fill_table(self):
        s = self.result.summary
        header = list(TABLE_COLUMNS)
        if self._ess_name() != "ESS":
            header[4] = f"median {self._ess_name()}"
            header[5] = "mean pMax"
        self.table.setHorizontalHeaderLabels(header)
        self.table.setSortingEnabled(False)
        self.table.blockSignals(True)
        self.table.setRowCount(len(s))
        for r, (_, row) in enumerate(s.iterrows()):
            vals = [int(row["class"]), int(row["count"]), float(row["fraction"]),
                    float(row.get("frc_resolution_A", np.nan)), float(row.get("median_ess", np.nan)),
                    float(row.get("mean_best_prob", np.nan)), str(row.get("frc_note", "") or "")]
            for c, v in enumerate(vals):
                self.table.setItem(r, c, _item(v))
        self.table.blockSignals(False)
        self.table.setSortingEnabled(True)

    def _draw_grid(self):
        r = self.result
        fig = self.grid_canvas.clear()
        ess_name = self._ess_name()
        plot_class_grid(r.summary, r.averages, fig=fig, sort_by=self.sort_by, selected=self.selected,
                        title=Path(str(r.table.attrs.get("source", "particles"))).name, ess_name=ess_name,
                        footnote=RELION_GRID_NOTE if ess_name != "ESS" else None)
        self._order = self.sorted_summary()["class"].astype(int).tolist()
        self._axes_class = {ax: c for ax, c in zip(fig.axes, self._order)}
        self.grid_canvas.draw()

    def _update_layer(self):
        r = self.result
        if r is None or r.averages is None:
            return
        s = self.sorted_summary()
        s = s[s["average_index"] >= 0]
        stack = r.averages[s["average_index"].astype(int).to_numpy()]
        classes = s["class"].astype(int).tolist()
        apix = r.averages_pixel_size_A or 1.0
        if self.layer_mode.currentText() == "tiled grid":
            ncols = max(1, int(np.ceil(np.sqrt(len(stack) * 1.4))))
            gap = max(stack.shape[-1] // 4, 8)
            data = tile_grid(stack, ncols, row_gap=gap)
            scale = (apix, apix)
        else:
            data = stack
            scale = (1.0, apix, apix)
        md = {"cryodiag": {"kind": "class_averages", "classes": classes, "sort_by": self.sort_by,
                           "pixel_size_A": apix, "source": r.averages_source}}
        lo, hi = np.percentile(data, [1, 99.5]) if data.size else (0.0, 1.0)
        if LAYER_NAME in self.viewer.layers and self.viewer.layers[LAYER_NAME].data.ndim == data.ndim:
            layer = self.viewer.layers[LAYER_NAME]
            layer.data = data
            layer.scale = scale
            layer.metadata = md
            layer.contrast_limits = (float(lo), float(hi if hi > lo else lo + 1))
        else:
            if LAYER_NAME in self.viewer.layers:
                self.viewer.layers.remove(LAYER_NAME)
            self.viewer.add_image(data, name=LAYER_NAME, scale=scale, metadata=md, colormap="gray",
                                  contrast_limits=(float(lo), float(hi if hi > lo else lo + 1)))
        self._labels = [class_label(row, self._ess_name()) for _, row in s.iterrows()]
        if self.layer_mode.currentText() == "tiled grid":
            n = stack.shape[-1]
            pad = 2
            pos = [(((i // ncols) * (n + pad + gap) + gap) * apix, (i % ncols) * (n + pad) * apix)
                   for i in range(len(stack))]  # top-left corner of each tile; text goes above
            text = {"string": "{label}", "anchor": "upper_left", "color": "yellow", "size": 8}
            feats = {"label": list(self._labels)}
            if LABELS_NAME in self.viewer.layers:
                self.viewer.layers.remove(LABELS_NAME)
            self.viewer.add_points(np.array(pos, dtype=float).reshape(-1, 2), name=LABELS_NAME, size=0.0,
                                   features=feats, text=text, face_color="transparent", border_width=0)
            self.viewer.layers.selection.active = self.viewer.layers[LAYER_NAME]  # not the labels
            self.viewer.text_overlay.visible = False
        else:
            if LABELS_NAME in self.viewer.layers:
                self.viewer.layers.remove(LABELS_NAME)
            ov = self.viewer.text_overlay
            ov.visible = True
            ov.position = "top_left"
            ov.font_size = 10
            self._show_slice_label()

    def _show_slice_label(self, event=None):
        """In stack mode, the text overlay names the class on screen (count, FRC, median ESS)."""
        if not self._labels or LAYER_NAME not in self.viewer.layers:
            return
        layer = self.viewer.layers[LAYER_NAME]
        if layer.data.ndim != 3:
            return
        i = int(self.viewer.dims.current_step[0]) if self.viewer.dims.ndim >= 3 else 0
        i = min(max(i, 0), len(self._labels) - 1)
        self.viewer.text_overlay.text = self._labels[i]

    # ================================================================== selection
    def _on_grid_click(self, event):
        if event.inaxes is None or event.inaxes not in self._axes_class:
            return
        c = self._axes_class[event.inaxes]
        sel = set(self.selected)
        sel.symmetric_difference_update({c})
        self.set_selection(sel)

    def _on_table_selection(self):
        rows = {i.row() for i in self.table.selectedIndexes()}
        sel = {int(self.table.item(r, 0).text()) for r in rows if self.table.item(r, 0)}
        if sel != self.selected:
            self.selected = sel
            self._restyle_grid()
            self._update_selection_ui()

    def set_selection(self, classes):
        """Select classes (by number, as in the file); updates the table, grid and buttons."""
        self.selected = {int(c) for c in classes}
        self.table.blockSignals(True)
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for r in range(self.table.rowCount()):
            it = self.table.item(r, 0)
            if it is not None and int(it.text()) in self.selected:
                self.table.selectRow(r)
        self.table.setSelectionMode(mode)
        self.table.blockSignals(False)
        if self.result is not None:
            self._restyle_grid()
        self._update_selection_ui()

    def _restyle_grid(self):
        """Frame the selected tiles in place (no re-layout of the figure)."""
        for ax, c in self._axes_class.items():
            sel = c in self.selected
            for sp in ax.spines.values():
                sp.set_visible(sel)
                sp.set_color(SELECTED_COLOR)
                sp.set_linewidth(3)
            ax.title.set_color(SELECTED_COLOR if sel else "black")
        self.grid_canvas.draw()

    def _update_selection_ui(self):
        if not self.selected or self.result is None:
            self.selection_label.setText("selected: none")
            self.export_btn.setEnabled(False)
            return
        s = self.result.summary
        n = int(s.loc[s["class"].isin(self.selected), "count"].sum())
        self.selection_label.setText(
            f"selected: {len(self.selected)} classes ({', '.join(map(str, sorted(self.selected)))}), {n:,} particles")
        self.export_btn.setEnabled(True)

    def export_selected(self, path: str | None = None, overwrite: bool = False):
        """Write the particles of the selected classes to ``path`` (.star or .cs)."""
        if self.result is None or not self.selected:
            show_error("Classes: select classes first")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save selected particles", "",
                                                  "RELION STAR (*.star);;cryoSPARC (*.cs)")
            if not path:
                return None
        try:
            out, n = write_selection(self.result.table, sorted(self.selected), path, overwrite=overwrite)
        except CryodiagInputError as err:
            show_error(str(err))
            self.status.setText(str(err))
            return None
        show_info(f"wrote {n:,} particles to {out}")
        self.status.setText(f"wrote {n:,} particles of classes {sorted(self.selected)} to {out}")
        return out
