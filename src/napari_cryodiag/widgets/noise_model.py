"""The "Noise model" dock widget.

Wiring only: the numbers come from :mod:`napari_cryodiag.workflows.noise` (computed in a
worker with progress and cancel), the figures from :mod:`napari_cryodiag.plots.noise_model`.

Inputs: a particle table (a layer opened by this plugin's reader, or a .star/.cs file), the map
(a 3D image layer or an MRC file), optionally the particle stack (else the stacks named in the
table), and optionally a RELION ``*_model.star`` whose per-group ``rlnSigma2Noise`` spectra are
plotted. Views: overview, basic, advanced (2D) and RELION σ²; figures and the JSON of the numbers
can be saved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import CryodiagInputError
from ._canvas import MplCanvas
from ._worker import start_worker

FROM_FILE = "(file)"
VIEWS = ("overview", "basic", "advanced (2D)", "RELION σ²")


def _cryodiag_meta(layer) -> dict:
    md = getattr(layer, "metadata", None) or {}
    cd = md.get("cryodiag") if isinstance(md, dict) else None
    return cd if isinstance(cd, dict) else {}


def _is_table_layer(layer) -> bool:
    cd = _cryodiag_meta(layer)
    return cd.get("kind") in ("picks", "particles") and cd.get("table") is not None


def _is_map_layer(layer) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and getattr(layer.data, "ndim", 0) == 3 and (
        _cryodiag_meta(layer).get("kind") in (None, "map")
    )


class _PathEdit(QWidget):
    """A line edit with a browse button."""

    def __init__(self, caption: str, filters: str, parent=None):
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(caption)
        btn = QPushButton("…")
        btn.setMaximumWidth(30)
        btn.clicked.connect(lambda: self._browse(caption, filters))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit)
        lay.addWidget(btn)

    def _browse(self, caption, filters):
        path, _ = QFileDialog.getOpenFileName(self, caption, "", filters)
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(str(text))


class NoiseModelWidget(QWidget):
    """Noise model from particle residuals, and RELION noise spectra."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result = None  # NoiseModel
        self.relion = None  # {group: spectra}
        self.relion_counts: dict = {}
        self.worker = None

        # --- inputs
        box = QGroupBox("Inputs")
        form = QFormLayout(box)
        self.particles_combo = QComboBox()
        self.particles_file = _PathEdit("particles (.star, .cs)", "Particles (*.star *.cs)")
        self.map_combo = QComboBox()
        self.map_file = _PathEdit("map (.mrc)", "Maps (*.mrc *.map)")
        self.stack_file = _PathEdit("stack (optional; default: as in the table)", "Stacks (*.mrcs *.mrc)")
        self.model_file = _PathEdit("RELION *_model.star (optional)", "RELION model (*_model.star *.star)")
        form.addRow("particles", self.particles_combo)
        form.addRow("", self.particles_file)
        form.addRow("map", self.map_combo)
        form.addRow("", self.map_file)
        form.addRow("stack", self.stack_file)
        form.addRow("model.star", self.model_file)

        # --- options
        opts = QGroupBox("Options")
        oform = QFormLayout(opts)
        self.scale_combo = QComboBox()
        self.scale_combo.addItems(["global", "per_image", "none"])
        self.scale_combo.setToolTip("map-to-image amplitude: one least-squares scale, one per image, or 1")
        self.ctf_check = QCheckBox("multiply projections by each particle's CTF")
        self.ctf_check.setChecked(True)
        self.max_particles = QSpinBox()
        self.max_particles.setRange(0, 100_000_000)
        self.max_particles.setValue(0)
        self.max_particles.setSpecialValueText("all")
        self.max_particles.setToolTip("random subset (seed 0); 0 = all particles")
        self.chunk_size = QSpinBox()
        self.chunk_size.setRange(1, 100_000)
        self.chunk_size.setValue(256)
        oform.addRow("scale", self.scale_combo)
        oform.addRow("", self.ctf_check)
        oform.addRow("max particles", self.max_particles)
        oform.addRow("chunk size", self.chunk_size)

        # --- actions
        self.compute_btn = QPushButton("Compute noise model")
        self.compute_btn.clicked.connect(self.compute)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.model_btn = QPushButton("Load RELION spectra")
        self.model_btn.clicked.connect(self.load_model)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.compute_btn)
        row.addWidget(self.cancel_btn)
        row.addWidget(self.model_btn)

        # --- plot
        self.view_combo = QComboBox()
        self.view_combo.addItems(VIEWS)
        self.view_combo.currentTextChanged.connect(self.redraw)
        self.canvas = MplCanvas(self, figsize=(5, 5))
        self.canvas.setMinimumHeight(560)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.save_fig_btn = QPushButton("Save figure…")
        self.save_fig_btn.clicked.connect(self._save_figure_dialog)
        self.save_json_btn = QPushButton("Save numbers (JSON)…")
        self.save_json_btn.clicked.connect(self._save_json_dialog)
        srow = QHBoxLayout()
        srow.addWidget(QLabel("view"))
        srow.addWidget(self.view_combo, 1)
        srow.addWidget(self.save_fig_btn)
        srow.addWidget(self.save_json_btn)

        lay = QVBoxLayout(self)
        lay.addWidget(box)
        lay.addWidget(opts)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        lay.addLayout(srow)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.summary)

        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        from ._tables import tables_of

        tables_of(self.viewer).changed.connect(self._refresh_layers)
        self._refresh_layers()

    # ------------------------------------------------------------------ inputs
    def _refresh_layers(self, event=None):
        for combo, test in ((self.particles_combo, _is_table_layer), (self.map_combo, _is_map_layer)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            names = [layer.name for layer in self.viewer.layers if test(layer)]
            if combo is self.particles_combo:  # particle sets open as tables (no layer)
                from ._tables import tables_of

                names += [t.name for t in tables_of(self.viewer).of_kind("particles")]
            combo.addItems(names + [FROM_FILE])
            if current in names + [FROM_FILE]:
                combo.setCurrentText(current)
            combo.blockSignals(False)

    def set_inputs(self, particles=None, map_path=None, stack=None, model=None) -> None:
        """Fill the inputs with file paths (and select "(file)")."""
        if particles is not None:
            self.particles_file.setText(particles)
            self.particles_combo.setCurrentText(FROM_FILE)
        if map_path is not None:
            self.map_file.setText(map_path)
            self.map_combo.setCurrentText(FROM_FILE)
        if stack is not None:
            self.stack_file.setText(stack)
        if model is not None:
            self.model_file.setText(model)

    def _table(self):
        name = self.particles_combo.currentText()
        if name and name != FROM_FILE:
            if name in self.viewer.layers:
                cd = _cryodiag_meta(self.viewer.layers[name])
                return cd["table"], cd.get("path")
            from ._tables import tables_of

            item = next(t for t in tables_of(self.viewer).of_kind("particles") if t.name == name)
            return item.table, item.path
        path = self.particles_file.text()
        if not path:
            raise CryodiagInputError("choose a particle layer or a particle file")
        from ..io.picks import read_table

        return read_table(path), path

    def _map(self):
        name = self.map_combo.currentText()
        if name and name != FROM_FILE:
            layer = self.viewer.layers[name]
            cd = _cryodiag_meta(layer)
            apix = cd.get("pixel_size_A") or float(layer.scale[-1])
            return np.asarray(layer.data, dtype=np.float32), apix
        path = self.map_file.text()
        if not path:
            raise CryodiagInputError("choose a map layer or a map file")
        from ..io.mrc import read_map

        m = read_map(path)
        return m.data, m.pixel_size_A

    # ------------------------------------------------------------------ compute
    def options(self):
        """The :class:`~napari_cryodiag.workflows.noise.NoiseOptions` of the controls."""
        from ..workflows.noise import NoiseOptions

        return NoiseOptions(scale=self.scale_combo.currentText(), apply_ctf=self.ctf_check.isChecked(),
                            max_particles=self.max_particles.value(), chunk_size=self.chunk_size.value())

    def compute(self):
        """Start the noise model in a worker; returns the worker (None on bad input)."""
        from dataclasses import replace

        from ..workflows.noise import iter_noise_model, subset

        try:
            table, source = self._table()
            volume, map_apix = self._map()
        except CryodiagInputError as err:
            show_error(f"Noise model: {err}")
            return None
        options = replace(self.options(), map_pixel_size_A=map_apix or 0.0)
        n = len(subset(table, options.max_particles))
        stack = self.stack_file.text() or None
        self.result = None
        self.summary.setText(f"computing the noise model of {n:,} particles…")
        self.worker = start_worker(
            iter_noise_model, table, volume, options, stack=stack, source=source,
            on_done=self._on_result, progress_bar=self.progress, cancel_button=self.cancel_btn,
            description="Noise model",
        )
        self.worker.aborted.connect(lambda: self.summary.setText("noise model cancelled"))
        self.worker.errored.connect(lambda exc: self.summary.setText(f"error: {exc}"))
        return self.worker

    def _on_result(self, nm):
        self.result = nm
        sc = f"scale {nm.scale:.4g}" if np.ndim(nm.scale) == 0 else f"per-image scale, median {np.median(nm.scale):.4g}"
        hi = nm.noise_variance[-1] / nm.noise_variance[1] if nm.noise_variance[1] > 0 else np.nan
        text = (f"{nm.n_images:,} particles, box {nm.box} px at {nm.pixel_size_A:.4g} Å/px; {sc}; "
                f"noise at Nyquist / shell 1 = {hi:.3g}")
        if nm.notes:
            text += "\nnotes: " + "; ".join(nm.notes)
        self.summary.setText(text)
        if self.view_combo.currentText() == "RELION σ²":
            self.view_combo.setCurrentText("overview")
        self.redraw()

    def load_model(self):
        """Read the model.star's per-group noise spectra and show them."""
        from ..workflows.noise import relion_spectra

        path = self.model_file.text()
        try:
            if not path:
                raise CryodiagInputError("choose a RELION *_model.star file")
            got = relion_spectra(path)
        except CryodiagInputError as err:
            show_error(f"Noise model: {err}")
            return None
        spectra, model = got["spectra"], got["model"]
        self._relion = got
        self.relion, self.relion_counts = spectra, got["counts"]
        self._relion_title = f"RELION noise spectra: {Path(path).name} ({len(spectra)} {model.group_kind}s)"
        self.view_combo.setCurrentText("RELION σ²")
        self.redraw()
        show_info(f"Noise model: {len(spectra)} noise spectra from {Path(path).name}")
        return spectra

    # ------------------------------------------------------------------ plots
    def redraw(self, *args):
        from ..plots import noise_model as pn

        view = self.view_combo.currentText()
        fig = self.canvas.clear()
        if view == "RELION σ²":
            if self.relion:
                pn.plot_relion_sigma2(self.relion, fig=fig, counts=self.relion_counts,
                                      title=getattr(self, "_relion_title", ""))
        elif self.result is not None:
            if view == "basic":
                pn.plot_noise_basic(self.result, fig=fig)
            elif view == "advanced (2D)":
                pn.plot_noise_advanced(self.result, fig=fig)
            else:
                pn.plot_noise_overview(self.result, fig=fig)
        self.canvas.draw()

    def numbers(self) -> dict:
        from ..workflows.noise import numbers

        return numbers(self.result, getattr(self, "_relion", None) if self.relion else None)

    def save_figure(self, path) -> Path:
        from ..io.atomic import atomic_write

        return atomic_write(path, lambda p: self.canvas.figure.savefig(p, dpi=150, format=Path(path).suffix[1:] or "png"),
                            overwrite=True)

    def save_json(self, path, overwrite: bool = True) -> Path:
        from ..io.outputs import OutputPlan

        plan = OutputPlan(None, overwrite=overwrite, formats=None)
        plan.protect(self.particles_file.text() or None, self.map_file.text() or None,
                     self.stack_file.text() or None, self.model_file.text() or None)
        dest = plan.file(path, "JSON of the numbers", in_folder=False)
        return plan.check().write_json(dest, self.numbers())

    def _save_figure_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save figure", "noise_model.png", "Images (*.png *.pdf *.svg)")
        if path:
            try:
                self.save_figure(path)
            except CryodiagInputError as err:
                show_error(str(err))

    def _save_json_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save numbers", "noise_model.json", "JSON (*.json)")
        if path:
            try:
                self.save_json(path)
            except CryodiagInputError as err:
                show_error(str(err))
