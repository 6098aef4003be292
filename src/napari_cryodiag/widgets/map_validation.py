"""The "Map validation" dock widget.

Wiring only: the validation runs through :mod:`napari_cryodiag.workflows.maps`
(:class:`~napari_cryodiag.workflows.maps.MapValidation` keeps the compute session: FSC family
with automatic masks and the corrected curve, diagnosis, Guinier fit, sharpening), computed in
a worker with progress and cancel; figures and exports from the same workflow.

Inputs are two half-map layers (3D images) and optionally a mask layer; files can be loaded as
layers. The session is kept while the same half maps are selected, so changing the B-factor
only re-filters the cached transform ("what-if" mode: the sharpened layer and the Guinier plot
follow the B spin box live), and changing mask parameters recomputes only the masks and their
transforms. Masks, the sharpened map and the log-amplitude Fourier volume can be added as
layers; figures (PNG/PDF/SVG) and exports (CSV, EMDB XML, postprocess.star, JSON) are saved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import CryodiagInputError
from ._canvas import MplCanvas
from ._worker import start_worker

NO_MASK = "(automatic masks only)"
VIEWS = ("FSC", "Guinier", "slices", "projections", "Fourier slices")
RULES = {"75% of tight 0.143 (cryoSPARC guide)": "tight75", "unmasked < 0.8 (RELION)": "relion",
         "no mask < 0.143": "nomask143", "explicit (Å)": "explicit"}


def _meta(layer) -> dict:
    md = getattr(layer, "metadata", None) or {}
    cd = md.get("cryodiag") if isinstance(md, dict) else None
    return cd if isinstance(cd, dict) else {}


def _is_volume(layer) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and getattr(layer.data, "ndim", 0) == 3 and not layer.rgb


def _voxel_size(layer) -> float | None:
    apix = _meta(layer).get("pixel_size_A")
    if apix:
        return float(apix)
    s = float(layer.scale[-1])
    return s if s != 1.0 else None


def _spin(lo, hi, value, step=1.0, decimals=2, suffix=""):
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(value)
    if suffix:
        w.setSuffix(suffix)
    return w


def _compute_job(validation, options):
    """Generator for the worker: progress tuples, then the session."""
    return (yield from validation.iter_compute(options))


class MapValidationWidget(QWidget):
    """FSC curves, resolution, diagnosis, Guinier B-factor, sharpening and volume views."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.validation = None  # workflows.maps.MapValidation
        self.session = None  # its compute session
        self._session_key = None
        self.worker = None

        # --- inputs
        box = QGroupBox("Half maps")
        form = QFormLayout(box)
        self.half1_combo = QComboBox()
        self.half2_combo = QComboBox()
        self.mask_combo = QComboBox()
        self.voxel_spin = _spin(0.0, 100.0, 0.0, 0.01, 4, " Å")
        self.voxel_spin.setSpecialValueText("from layer")
        self.voxel_spin.setToolTip("voxel size; 'from layer' uses the layer's metadata or scale")
        self.load_btn = QPushButton("Load half maps / mask from files…")
        self.load_btn.clicked.connect(self._load_dialog)
        form.addRow("half map 1", self.half1_combo)
        form.addRow("half map 2", self.half2_combo)
        form.addRow("mask", self.mask_combo)
        form.addRow("voxel size", self.voxel_spin)
        form.addRow(self.load_btn)

        # --- options
        opts = QGroupBox("Options")
        oform = QFormLayout(opts)
        self.rule_combo = QComboBox()
        self.rule_combo.addItems(list(RULES))
        self.rule_combo.setToolTip("where phase randomisation starts (corrected FSC)")
        self.rule_A = _spin(0.5, 1000.0, 8.0, 0.5, 2, " Å")
        self.wait_spin = QSpinBox()
        self.wait_spin.setRange(0, 10)
        self.wait_spin.setToolTip("shells after the randomisation shell that keep the masked value (RELION: 2)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.threshold_spin = _spin(0.01, 0.99, 0.5, 0.05, 2)
        self.mask_lp_spin = _spin(0.0, 100.0, 15.0, 1.0, 1, " Å")
        self.loose_in = _spin(0.0, 200.0, 25.0, 1.0, 1, " Å")
        self.loose_out = _spin(0.0, 200.0, 40.0, 1.0, 1, " Å")
        self.tight_in = _spin(0.0, 200.0, 6.0, 1.0, 1, " Å")
        self.tight_out = _spin(0.0, 200.0, 12.0, 1.0, 1, " Å")
        self.sphere_inner = _spin(0.1, 1.0, 0.85, 0.05, 2)
        self.window_combo = QComboBox()
        self.window_combo.addItems(["fsc143", "relion"])
        self.window_combo.setToolTip("Guinier fit: 10 Å to the 0.143 resolution, or to where FSC weighting zeroes shells")
        self.quantity_combo = QComboBox()
        self.quantity_combo.addItems(["amplitude2", "amplitude"])
        self.quantity_combo.setToolTip("ln mean |F|² (cryoSPARC) or ln mean |F| (RELION)")
        rrow = QHBoxLayout()
        rrow.addWidget(self.rule_combo, 1)
        rrow.addWidget(self.rule_A)
        oform.addRow("randomise from", rrow)
        srow = QHBoxLayout()
        srow.addWidget(QLabel("wait shells"))
        srow.addWidget(self.wait_spin)
        srow.addWidget(QLabel("seed"))
        srow.addWidget(self.seed_spin)
        oform.addRow(srow)
        mrow = QHBoxLayout()
        mrow.addWidget(QLabel("threshold"))
        mrow.addWidget(self.threshold_spin)
        mrow.addWidget(QLabel("low-pass"))
        mrow.addWidget(self.mask_lp_spin)
        oform.addRow("auto masks", mrow)
        lrow = QHBoxLayout()
        for label, a, b in (("loose", self.loose_in, self.loose_out), ("tight", self.tight_in, self.tight_out)):
            lrow.addWidget(QLabel(label))
            lrow.addWidget(a)
            lrow.addWidget(b)
        oform.addRow("1 within / 0 from", lrow)
        oform.addRow("sphere inner/outer", self.sphere_inner)
        grow = QHBoxLayout()
        grow.addWidget(self.window_combo)
        grow.addWidget(self.quantity_combo)
        oform.addRow("Guinier", grow)

        # --- actions
        self.compute_btn = QPushButton("Compute FSC")
        self.compute_btn.clicked.connect(self.compute)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        arow = QHBoxLayout()
        arow.addWidget(self.compute_btn, 1)
        arow.addWidget(self.cancel_btn)

        # --- sharpening ("what-if")
        sh = QGroupBox("Sharpening (what-if)")
        sform = QFormLayout(sh)
        self.fitted_check = QCheckBox("use the fitted B-factor")
        self.fitted_check.setChecked(True)
        self.b_spin = _spin(-1000.0, 1000.0, 0.0, 5.0, 1, " Å²")
        self.b_spin.setToolTip("sharpening B-factor (RELION sign: negative sharpens)")
        self.b_spin.setEnabled(False)
        self.fsc_weight_check = QCheckBox("FSC weighting √(2F/(1+F))")
        self.fsc_weight_check.setChecked(True)
        self.lowpass_spin = _spin(0.0, 100.0, 0.0, 0.5, 2, " Å")
        self.lowpass_spin.setSpecialValueText("none")
        self.apply_mask_check = QCheckBox("multiply by the mask")
        self.live_check = QCheckBox("update live")
        self.live_check.setChecked(True)
        brow = QHBoxLayout()
        brow.addWidget(self.fitted_check)
        brow.addWidget(self.b_spin)
        sform.addRow("B", brow)
        frow = QHBoxLayout()
        frow.addWidget(self.fsc_weight_check)
        frow.addWidget(self.apply_mask_check)
        sform.addRow(frow)
        lprow = QHBoxLayout()
        lprow.addWidget(self.lowpass_spin)
        lprow.addWidget(self.live_check)
        sform.addRow("low-pass", lprow)
        self.sharpen_btn = QPushButton("Sharpened map → layer")
        self.sharpen_btn.clicked.connect(self.add_sharpened_layer)
        self.masks_btn = QPushButton("Masks → layers")
        self.masks_btn.clicked.connect(self.add_mask_layers)
        self.fourier_btn = QPushButton("Fourier volume → layer")
        self.fourier_btn.clicked.connect(self.add_fourier_layer)
        lrow2 = QHBoxLayout()
        lrow2.addWidget(self.sharpen_btn)
        lrow2.addWidget(self.masks_btn)
        lrow2.addWidget(self.fourier_btn)
        sform.addRow(lrow2)
        self.proj_btn = QPushButton("Projections → layers")
        self.proj_btn.setToolTip("the three projections (sums) of the shown map as 2D layers, below the map")
        self.proj_btn.clicked.connect(self.add_projection_layers)
        sform.addRow(self.proj_btn)
        for w in (self.b_spin, self.lowpass_spin):
            w.valueChanged.connect(self._what_if)
        for w in (self.fsc_weight_check, self.apply_mask_check):
            w.toggled.connect(self._what_if)
        self.fitted_check.toggled.connect(self._fitted_toggled)

        # --- plot, diagnosis, saving
        self.view_combo = QComboBox()
        self.view_combo.addItems(VIEWS)
        self.view_combo.currentTextChanged.connect(self.redraw)
        self.view_map_combo = QComboBox()
        self.view_map_combo.addItems(["average", "sharpened", "half map 1"])
        self.view_map_combo.setToolTip("map shown by the slice/projection/Fourier views")
        self.view_map_combo.currentTextChanged.connect(self.redraw)
        self.canvas = MplCanvas(self, figsize=(5, 4.2))
        self.canvas.setMinimumHeight(450)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.RichText)
        self.save_fig_btn = QPushButton("Save figure…")
        self.save_fig_btn.clicked.connect(self._save_figure_dialog)
        self.export_btn = QPushButton("Export all…")
        self.export_btn.setToolTip("figures + fsc.csv, fsc_corrected.xml, postprocess.star, fsc.json into a folder")
        self.export_btn.clicked.connect(self._export_dialog)
        vrow = QHBoxLayout()
        vrow.addWidget(QLabel("view"))
        vrow.addWidget(self.view_combo, 1)
        vrow.addWidget(self.view_map_combo)
        vrow.addWidget(self.save_fig_btn)
        vrow.addWidget(self.export_btn)

        lay = QVBoxLayout(self)
        lay.addWidget(box)
        lay.addWidget(opts)
        lay.addLayout(arow)
        lay.addWidget(self.progress)
        lay.addWidget(self.summary)
        lay.addLayout(vrow)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(sh)

        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    # ------------------------------------------------------------------ inputs
    def _refresh_layers(self, event=None):
        vols = [layer.name for layer in self.viewer.layers if _is_volume(layer) and not _meta(layer).get("derived")]
        for i, combo in enumerate((self.half1_combo, self.half2_combo)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(vols)
            if current in vols:
                combo.setCurrentText(current)
            elif len(vols) > i:
                combo.setCurrentIndex(i)
            combo.blockSignals(False)
        current = self.mask_combo.currentText()
        self.mask_combo.blockSignals(True)
        self.mask_combo.clear()
        masks = [layer.name for layer in self.viewer.layers if _is_volume(layer)]
        self.mask_combo.addItems([NO_MASK] + masks)
        if current in masks:
            self.mask_combo.setCurrentText(current)
        self.mask_combo.blockSignals(False)

    def set_files(self, half1, half2, mask=None) -> None:
        """Read MRC files and add them as layers (selected as inputs)."""
        from ..io.mrc import read_map

        names = []
        for path in [half1, half2] + ([mask] if mask else []):
            m = read_map(path)
            apix = m.pixel_size_A
            layer = self.viewer.add_image(
                m.data, name=Path(path).name, scale=(apix or 1.0,) * 3,
                metadata={"cryodiag": {"kind": "map", "paths": [str(path)], "pixel_size_A": apix}},
            )
            names.append(layer.name)
        self.half1_combo.setCurrentText(names[0])
        self.half2_combo.setCurrentText(names[1])
        if mask:
            self.mask_combo.setCurrentText(names[2])

    def _load_dialog(self):
        paths, _ = QFileDialog.getOpenFileNames(self, "Half maps (2) and optional mask (in that order)", "",
                                                "Maps (*.mrc *.map *.rec)")
        if len(paths) in (2, 3):
            try:
                self.set_files(*paths)
            except CryodiagInputError as err:
                show_error(f"Map validation: {err}")
        elif paths:
            show_error("Map validation: choose two half maps, and optionally a mask")

    def options(self):
        """The :class:`~napari_cryodiag.workflows.maps.MapValidationOptions` of the controls."""
        from ..workflows.maps import MapValidationOptions

        rule = RULES[self.rule_combo.currentText()]
        return MapValidationOptions(
            randomise_from=rule, randomise_from_A=self.rule_A.value(), wait_shells=self.wait_spin.value(),
            seed=self.seed_spin.value(), threshold_fraction=self.threshold_spin.value(),
            mask_lowpass_A=self.mask_lp_spin.value(), loose_dilate_A=self.loose_in.value(),
            loose_soft_A=self.loose_out.value(), tight_dilate_A=self.tight_in.value(),
            tight_soft_A=self.tight_out.value(), sphere_inner_fraction=self.sphere_inner.value(),
            guinier_window=self.window_combo.currentText(), guinier_quantity=self.quantity_combo.currentText())

    def mask_params(self):
        return self.options().mask_params()

    def _inputs(self):
        """``(MapInputs, layer 1, layer 2)`` of the chosen layers (checked by the workflow)."""
        from ..workflows.maps import load_half_maps

        n1, n2 = self.half1_combo.currentText(), self.half2_combo.currentText()
        if not n1 or not n2:
            raise CryodiagInputError("choose two half-map layers (3D images)")
        if n1 == n2:
            raise CryodiagInputError(f"half map 1 and half map 2 are the same layer ({n1})")
        l1, l2 = self.viewer.layers[n1], self.viewer.layers[n2]
        mname = self.mask_combo.currentText()
        mask = None
        if mname and mname != NO_MASK:
            mask = np.asarray(self.viewer.layers[mname].data)
        inputs = load_half_maps(np.asarray(l1.data), np.asarray(l2.data), mask,
                                pixel_size_A=self.voxel_spin.value() or None,
                                voxel_sizes_A=(_voxel_size(l1), _voxel_size(l2)), names=(n1, n2),
                                mask_name=mname if mask is not None else None)
        inputs.files = [p for layer in (l1, l2) for p in _meta(layer).get("paths", [])]
        return inputs, l1, l2

    # ------------------------------------------------------------------ compute
    def compute(self):
        """Start the computation in a worker; returns the worker (None on bad input)."""
        from ..workflows.maps import MapValidation

        try:
            inputs, l1, l2 = self._inputs()
            key = (l1.name, id(l1.data), l2.name, id(l2.data), float(inputs.pixel_size_A))
            if self.validation is None or key != self._session_key:
                self.validation = MapValidation(inputs)
                self.session = self.validation.session
                self._session_key = key
            else:  # same half maps: keep the cached transforms; the same mask values keep the curves
                self.validation.use_mask(inputs.mask, inputs.mask_name)
        except CryodiagInputError as err:
            show_error(f"Map validation: {err}")
            self.summary.setText(f"error: {err}")
            return None
        self.summary.setText("computing the FSC curves…")
        self.compute_btn.setEnabled(False)
        self.worker = start_worker(_compute_job, self.validation, self.options(), on_done=self._on_result,
                                   progress_bar=self.progress, cancel_button=self.cancel_btn,
                                   description="Map validation")
        self.worker.finished.connect(lambda: self.compute_btn.setEnabled(True))
        self.worker.aborted.connect(lambda: self.summary.setText("cancelled"))
        self.worker.errored.connect(lambda exc: self.summary.setText(f"error: {exc}"))
        return self.worker

    def _on_result(self, session):
        self.session = session
        if self.fitted_check.isChecked() and session.guinier is not None:
            self.b_spin.blockSignals(True)
            self.b_spin.setValue(session.guinier.sharpening_bfactor_A2)
            self.b_spin.blockSignals(False)
        if session.sharpened is not None:
            self._sharpen()  # what-if: keep the sharpened layer in step with new curves
        self.summary.setText(self.summary_html())
        self.redraw()

    def summary_html(self) -> str:
        s = self.session
        if s is None or s.fsc is None:
            return ""
        r = s.fsc
        c = r.resolution("corrected")
        t = r.resolution(r.corrected_mask)
        nyq = " (Nyquist-limited)" if c.nyquist_limited else ""
        lines = [
            f"<b>Resolution (corrected, FSC 0.143): {c.interpolated_A:.2f} Å</b>{nyq} "
            f"[shell edge {c.shell_edge_A:.2f} Å]; {r.corrected_mask} {t.interpolated_A:.2f} Å; "
            f"0.5: {r.resolution('corrected', 0.5).interpolated_A:.2f} Å",
            f"box {r.box} px at {r.pixel_size_A:.4g} Å/px (Nyquist {r.nyquist_A:.2f} Å); phase randomisation from "
            f"{r.randomise_from_A:.2f} Å ({r.randomise_rule}, seed {r.seed})",
            (f"B-factor {s.guinier.bfactor_A2:.1f} Å² (map decay; sharpening B {s.guinier.sharpening_bfactor_A2:.1f} Å²), "
             f"fit {s.guinier.low_A:.1f}–{s.guinier.high_A:.2f} Å") if s.guinier is not None
            else f"no B-factor fit: {s.guinier_error}",
        ]
        if s.flags:
            for f in s.flags:
                lines.append(f"<span style='color:#b35900'>⚠ <b>{f.title}</b>: {f.explanation} <i>{f.advice}</i></span>")
        else:
            lines.append("<span style='color:#2e7d32'>no diagnosis flags: the curves look healthy</span>")
        return "<br>".join(lines)

    # ------------------------------------------------------------------ what-if sharpening
    def _fitted_toggled(self, on):
        self.b_spin.setEnabled(not on)
        if on and self.session is not None and self.session.guinier is not None:
            self.b_spin.setValue(self.session.guinier.sharpening_bfactor_A2)
        self._what_if()

    def sharpen_options(self):
        """The :class:`~napari_cryodiag.workflows.maps.SharpenOptions` of the controls."""
        from ..workflows.maps import SharpenOptions

        return SharpenOptions(use_fitted_bfactor=self.fitted_check.isChecked(), bfactor_A2=self.b_spin.value(),
                              fsc_weighting=self.fsc_weight_check.isChecked(), lowpass_A=self.lowpass_spin.value(),
                              apply_mask=self.apply_mask_check.isChecked())

    def sharpen_params(self):
        return self.sharpen_options().params()

    def _sharpen(self):
        s = self.session
        vol = self.validation.sharpen(self.sharpen_options())
        name = "sharpened"
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = vol
            layer.contrast_limits = (float(vol.min()), float(vol.max()))
            layer.metadata["cryodiag"]["bfactor_A2"] = s.sharpen_used.bfactor_A2
        return vol

    def _what_if(self, *args):
        if self.session is None or self.session.fsc is None or not self.live_check.isChecked():
            return
        if self.worker is not None and getattr(self.worker, "is_running", False):
            return  # the curves are being recomputed; the result will re-sharpen
        if self.session.sharpened is None and "sharpened" not in self.viewer.layers:
            return
        self._sharpen()
        if self.view_combo.currentText() == "Guinier":
            self.redraw()

    def add_sharpened_layer(self):
        if self.session is None or self.session.fsc is None:
            show_info("Map validation: compute the FSC first")
            return None
        vol = self._sharpen()
        s = self.session
        if "sharpened" not in self.viewer.layers:
            self.viewer.add_image(
                vol, name="sharpened", scale=(s.halfmaps.pixel_size_A,) * 3,
                contrast_limits=(float(vol.min()), float(vol.max())),
                metadata={"cryodiag": {"kind": "map", "derived": True, "pixel_size_A": s.halfmaps.pixel_size_A,
                                       "bfactor_A2": s.sharpen_used.bfactor_A2}},
            )
        self.redraw()
        return self.viewer.layers["sharpened"]

    def add_mask_layers(self):
        if self.session is None or self.session.fsc is None:
            show_info("Map validation: compute the FSC first")
            return []
        s = self.session
        colors = {"spherical": "blue", "loose": "magenta", "tight": "green"}
        added = []
        for name in ("spherical", "loose", "tight"):
            m = s.fsc.masks[name]
            lname = f"mask {name}"
            if lname in self.viewer.layers:
                self.viewer.layers[lname].data = m
            else:
                self.viewer.add_image(m, name=lname, scale=(s.halfmaps.pixel_size_A,) * 3, colormap=colors[name],
                                      blending="additive", opacity=0.35, contrast_limits=(0.0, 1.0),
                                      metadata={"cryodiag": {"kind": "mask", "derived": True,
                                                             "pixel_size_A": s.halfmaps.pixel_size_A,
                                                             "params": s.fsc.mask_params.to_dict()}})
            added.append(self.viewer.layers[lname])
        return added

    def _view_volume(self):
        return self.validation.view_volume(self.view_map_combo.currentText())

    def add_fourier_layer(self):
        """log|F| of the shown map as a 3D layer, placed beside the map (same voxel spacing)."""
        from ..compute.maps.views import fourier_log_amplitude

        if self.session is None:
            show_info("Map validation: compute the FSC first")
            return None
        vol, label = self._view_volume()
        la = fourier_log_amplitude(vol)
        apix = self.session.halfmaps.pixel_size_A
        n = la.shape[-1]
        name = f"log|F| ({label})"
        lo, hi = np.percentile(la[:: max(1, n // 32)], [1, 99.9])
        if name in self.viewer.layers:
            self.viewer.layers[name].data = la
        else:
            self.viewer.add_image(la, name=name, scale=(apix,) * 3, translate=(0, 0, 1.1 * n * apix), colormap="magma",
                                  contrast_limits=(float(lo), float(hi)),
                                  metadata={"cryodiag": {"kind": "fourier", "derived": True,
                                                         "note": "log amplitude of the centred 3D transform; "
                                                                 "DC at n//2; placed beside the map"}})
        return self.viewer.layers[name]

    def add_projection_layers(self):
        """Projections (sums) z-y, z-x, y-x of the shown map as 2D image layers placed below the map."""
        from ..compute.maps.views import projections

        if self.session is None:
            show_info("Map validation: compute the FSC first")
            return []
        vol, label = self._view_volume()
        apix = self.session.halfmaps.pixel_size_A
        n = vol.shape[-1]
        added = []
        for i, (plane, img) in enumerate(projections(vol).items()):
            name = f"projection {plane} ({label})"
            translate = (1.15 * n * apix, i * 1.1 * n * apix)
            lo, hi = float(img.min()), float(img.max())
            if name in self.viewer.layers:
                self.viewer.layers[name].data = img
            else:
                self.viewer.add_image(img, name=name, scale=(apix, apix), translate=translate,
                                      contrast_limits=(lo, hi if hi > lo else lo + 1),
                                      metadata={"cryodiag": {"kind": "projection", "derived": True, "plane": plane,
                                                             "pixel_size_A": apix}})
            added.append(self.viewer.layers[name])
        return added

    # ------------------------------------------------------------------ plots and saving
    def draw_view(self, view: str, fig):
        from ..workflows.maps import draw_view

        draw_view(self.validation, view, fig, view_map=self.view_map_combo.currentText())

    def redraw(self, *args):
        fig = self.canvas.clear()
        if self.session is not None and self.session.fsc is not None:
            self.draw_view(self.view_combo.currentText(), fig)
        self.canvas.draw()

    def save_figure(self, path):
        from ..io.atomic import atomic_write

        fmt = Path(path).suffix[1:].lower() or "png"
        return atomic_write(path, lambda p: self.canvas.figure.savefig(p, dpi=150, format=fmt), overwrite=True)

    def export(self, folder, formats: str = "png,pdf,svg", overwrite: bool = True) -> list[Path]:
        """Write every view's figure, fsc.csv, fsc_corrected.xml, postprocess.star and fsc.json into
        ``folder`` (never over the maps the layers were read from)."""
        from ..io.outputs import OutputPlan
        from ..workflows.maps import plan_exports

        if self.session is None or self.session.fsc is None:
            raise CryodiagInputError("nothing to export: compute the FSC first")
        plan = OutputPlan(folder, overwrite=overwrite, formats=formats).protect(self.validation.inputs.files)
        plan_exports(plan, views=VIEWS)
        plan.check()
        return self.validation.export(plan, views=VIEWS, view_map=self.view_map_combo.currentText())

    def _save_figure_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save figure", f"{self.view_combo.currentText().lower()}.png",
                                              "Images (*.png *.pdf *.svg)")
        if path:
            try:
                self.save_figure(path)
            except CryodiagInputError as err:
                show_error(str(err))

    def _export_dialog(self):
        folder = QFileDialog.getExistingDirectory(self, "Export figures and FSC files into")
        if folder:
            try:
                paths = self.export(folder)
                show_info(f"Map validation: wrote {len(paths)} files to {folder}")
            except CryodiagInputError as err:
                show_error(str(err))
