"""The "Orientations" dock widget: viewing directions, Fourier sampling, posterior precision,
SCF* and (with two half maps) cFAR.

Wiring only: numbers from :func:`napari_cryodiag.workflows.orientations.iter_orientation_diagnostics`
(run in a worker with progress and cancel), figures and their files from the same workflow.
The particle table comes from a layer whose ``metadata["cryodiag"]["table"]`` holds a canonical
table (the readers put it there), or from a STAR / ``.cs`` file chosen here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..errors import CryodiagInputError
from ..plots.orientations import (
    plot_conical_fsc,
    plot_directional_map,
    plot_scf_cfar,
    plot_viewing_directions,
)
from ..workflows.orientations import OrientationsOptions, iter_orientation_diagnostics
from ._canvas import MplCanvas
from ._worker import start_worker

FILE_ITEM = "(file…)"
NO_MAP = "(none)"


def _layer_table(layer):
    md = getattr(layer, "metadata", None) or {}
    cd = md.get("cryodiag") if isinstance(md, dict) else None
    if isinstance(cd, dict) and cd.get("table") is not None:
        return cd["table"]
    return None


def _is_volume_layer(layer) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and layer.data.ndim == 3 and not layer.rgb


class OrientationsWidget(QWidget):
    """Orientation diagnostics of a refined particle set (see module doc)."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.file_table = None  # table read from a file chosen here
        self.result = None  # OrientationDiagnostics
        self.worker = None
        self._build_ui()
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # ------------------------------------------------------------------ UI
    def _build_ui(self):
        outer = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        self.source_combo = QComboBox()
        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(self._choose_file)
        row.addWidget(self.source_combo, 1)
        row.addWidget(self.open_button)
        form.addRow("Particles", row)
        self.half1_combo = QComboBox()
        self.half2_combo = QComboBox()
        form.addRow("Half map 1 (cFAR)", self.half1_combo)
        form.addRow("Half map 2 (cFAR)", self.half2_combo)

        self.radius_spin = QDoubleSpinBox()
        self.radius_spin.setRange(0, 2048)
        self.radius_spin.setDecimals(1)
        self.radius_spin.setSpecialValueText("auto")
        self.radius_spin.setToolTip("Fourier shell radius (voxels); auto: box·apix/resolution, box/4, or 32")
        self.box_spin = QSpinBox()
        self.box_spin.setRange(0, 4096)
        self.box_spin.setSpecialValueText("from file")
        self.res_spin = QDoubleSpinBox()
        self.res_spin.setRange(0, 100)
        self.res_spin.setDecimals(2)
        self.res_spin.setSpecialValueText("none")
        self.res_spin.setSuffix(" Å")
        self.noise_spin = QDoubleSpinBox()
        self.noise_spin.setRange(1e-6, 1e9)
        self.noise_spin.setDecimals(4)
        self.noise_spin.setValue(1.0)
        self.method_combo = QComboBox()
        self.method_combo.addItems(["auto", "binned", "direct"])
        form.addRow("Radius (voxels)", self.radius_spin)
        form.addRow("Box (px)", self.box_spin)
        form.addRow("Resolution of the shell", self.res_spin)
        form.addRow("Noise variance σ²", self.noise_spin)
        form.addRow("Method", self.method_combo)
        outer.addLayout(form)

        btns = QHBoxLayout()
        self.compute_button = QPushButton("Compute")
        self.compute_button.clicked.connect(lambda: self.compute())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.save_button = QPushButton("Save figures…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._choose_save_folder)
        btns.addWidget(self.compute_button)
        btns.addWidget(self.cancel_button)
        btns.addWidget(self.save_button)
        outer.addLayout(btns)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        outer.addWidget(self.progress)

        # one plot per tab: readable in a narrow dock
        self.tabs = QTabWidget()
        self.viewing_canvas = MplCanvas(figsize=(6, 3.6))
        self.sampling_canvas = MplCanvas(figsize=(6, 3.6))
        self.precision_canvas = MplCanvas(figsize=(6, 3.6))
        self.scores_canvas = MplCanvas(figsize=(6, 3.0))
        self.cfar_canvas = MplCanvas(figsize=(9, 3.6))
        self.tabs.addTab(self.viewing_canvas, "Viewing directions")
        self.tabs.addTab(self.sampling_canvas, "Fourier sampling")
        self.tabs.addTab(self.precision_canvas, "Posterior precision")
        self.tabs.addTab(self.scores_canvas, "SCF* / cFAR")
        self.tabs.addTab(self.cfar_canvas, "Cone FSCs")
        self.tabs.setMinimumHeight(330)
        outer.addWidget(self.tabs, 1)
        self.status = QLabel("Choose a particle set with 3D poses (STAR or .cs) and press Compute.")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)

    def _refresh_layers(self, *_):
        cur = self.source_combo.currentText()
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        names = [ly.name for ly in self.viewer.layers if _layer_table(ly) is not None]
        self.source_combo.addItems(names)
        if self.file_table is not None:
            self.source_combo.addItem(self._file_item_name())
        if self.source_combo.count() == 0:
            self.source_combo.addItem(FILE_ITEM)
        idx = self.source_combo.findText(cur)
        if idx >= 0:
            self.source_combo.setCurrentIndex(idx)
        self.source_combo.blockSignals(False)
        vols = [ly.name for ly in self.viewer.layers if _is_volume_layer(ly)]
        for combo in (self.half1_combo, self.half2_combo):
            cur = combo.currentText()
            combo.clear()
            combo.addItems([NO_MAP] + vols)
            i = combo.findText(cur)
            combo.setCurrentIndex(max(i, 0))

    def _file_item_name(self) -> str:
        return f"file: {Path(self.file_table.attrs.get('source', 'table')).name}"

    # ------------------------------------------------------------------ inputs
    def _choose_file(self):
        path, _ = QFileDialog.getOpenFileName(self, "Particle file", "", "Particles (*.star *.cs);;All files (*)")
        if path:
            self.load_file(path)

    def load_file(self, path) -> None:
        """Read a STAR / .cs particle file and select it as the source."""
        from ..workflows.orientations import load_particles

        try:
            self.file_table, warnings = load_particles(path)
        except CryodiagInputError as err:
            show_error(str(err))
            return
        for w in warnings:
            show_info(f"Orientations: {w}")
        self._refresh_layers()
        self.source_combo.setCurrentIndex(self.source_combo.findText(self._file_item_name()))

    def set_table(self, table) -> None:
        """Use ``table`` (a canonical particle table) as the source."""
        self.file_table = table
        self._refresh_layers()
        self.source_combo.setCurrentIndex(self.source_combo.findText(self._file_item_name()))

    def current_table(self):
        name = self.source_combo.currentText()
        if self.file_table is not None and name == self._file_item_name():
            return self.file_table
        if name in self.viewer.layers:
            return _layer_table(self.viewer.layers[name])
        return None

    def _half_maps(self):
        n1, n2 = self.half1_combo.currentText(), self.half2_combo.currentText()
        if NO_MAP in (n1, n2) or not n1 or not n2:
            return None, None, None
        l1, l2 = self.viewer.layers[n1], self.viewer.layers[n2]
        apix = None
        md = (l1.metadata or {}).get("cryodiag", {}) if isinstance(l1.metadata, dict) else {}
        if isinstance(md, dict) and md.get("pixel_size_A"):
            apix = float(md["pixel_size_A"])
        elif l1.scale is not None and float(l1.scale[-1]) != 1.0:
            apix = float(l1.scale[-1])
        return np.asarray(l1.data), np.asarray(l2.data), apix

    # ------------------------------------------------------------------ compute
    def compute(self):
        """Start the computation in a worker; returns the worker (or None when no input)."""
        table = self.current_table()
        if table is None:
            show_error("Orientations: choose a particle layer or open a STAR / .cs file")
            return None
        h1, h2, hp = self._half_maps()
        self.status.setText(f"computing on {len(table):,} particles…")
        self.compute_button.setEnabled(False)
        self.worker = start_worker(
            iter_orientation_diagnostics,
            table,
            self.options(),
            half1=h1,
            half2=h2,
            half_pixel_size_A=hp,
            on_done=self._on_done,
            progress_bar=self.progress,
            cancel_button=self.cancel_button,
            description="Orientations",
        )
        self.worker.finished.connect(lambda: self.compute_button.setEnabled(True))
        return self.worker

    def options(self) -> OrientationsOptions:
        """The :class:`~napari_cryodiag.workflows.orientations.OrientationsOptions` of the controls."""
        return OrientationsOptions(radius_px=self.radius_spin.value(), box_px=self.box_spin.value(),
                                   resolution_A=self.res_spin.value(), noise_variance=self.noise_spin.value(),
                                   method=self.method_combo.currentText())

    def _on_done(self, result) -> None:
        self.result = result
        self.show_result(result)

    def show_result(self, result) -> None:
        plot_viewing_directions(result.histogram, fig=self.viewing_canvas.clear())
        plot_directional_map(result.maps, "fourier_sampling", fig=self.sampling_canvas.clear(), scf=result.scf)
        plot_directional_map(result.maps, "posterior_precision", fig=self.precision_canvas.clear())
        plot_scf_cfar(result.scf, result.cfsc, fig=self.scores_canvas.clear())
        fig = self.cfar_canvas.clear()
        if result.cfsc is not None:
            plot_conical_fsc(result.cfsc, fig=fig)
        else:
            ax = fig.add_subplot(111)
            ax.text(0.5, 0.5, "choose two half maps (3D image layers) for cFAR", ha="center", va="center")
            ax.set_axis_off()
        for c in (self.viewing_canvas, self.sampling_canvas, self.precision_canvas, self.scores_canvas, self.cfar_canvas):
            c.draw()
        s = result.scf
        text = (
            f"{result.n_particles:,} particles · R = {result.radius_px:g} voxels ({result.radius_source}) · "
            f"SCF* = {s.scf_star:.3f} ({'< 0.81: preferred orientation' if s.preferred_orientation else '≥ 0.81'})"
        )
        if result.cfsc is not None:
            text += f" · cFAR = {result.cfsc.cfar:.3f} ({'< 0.5: anisotropic' if result.cfsc.anisotropic else '≥ 0.5'})"
        self.status.setText(text)
        self.save_button.setEnabled(True)

    # ------------------------------------------------------------------ save
    def _choose_save_folder(self):
        folder = QFileDialog.getExistingDirectory(self, "Folder for the figures")
        if folder:
            paths = self.save_figures(folder)
            show_info(f"Orientations: wrote {len(paths)} files to {folder}")

    def save_figures(self, folder, fmt: str = "png", overwrite: bool = True) -> list[Path]:
        """Write each figure and the JSON of the numbers into ``folder``; returns the paths."""
        from ..io.outputs import OutputPlan
        from ..workflows.orientations import export, plan_outputs

        if self.result is None:
            raise RuntimeError("nothing computed yet")
        plan = OutputPlan(folder, overwrite=overwrite, formats=fmt)
        src = self.result.source
        plan.protect(src if src and Path(str(src)).is_file() else None)
        plan_outputs(plan)
        return export(self.result, plan.check())
