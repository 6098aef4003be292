"""The Noise model dock: per-shell noise from particle residuals against CTF-modulated
projections of a map, and RELION's per-group noise spectra, through
:mod:`napari_cryodiag.workflows.noise`.

magicgui: ``particles`` (particle sets open in the viewer: File > Open of a STAR / ``.cs``
without pick coordinates, or the table of a picks layer; ``particles_file`` opens one here),
``map`` (a 3D map layer, the one opened last by default; ``map_file`` opens one as a layer), ``stack`` (the particle stack;
empty = the stacks the table names), ``model`` (a RELION ``*_model.star`` open in the viewer, or
``model_file``: its ``rlnSigma2Noise`` spectra are plotted), ``options``
(:class:`~napari_cryodiag.workflows.noise.NoiseOptions`), ``view``, ``save_figure``,
``save_numbers``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, PushButton
from qtpy.QtWidgets import QTabWidget

from ..errors import CryodiagInputError
from ..workflows.noise import NoiseOptions, iter_noise_model, numbers, relion_spectra, subset
from ._canvas import MplCanvas
from ._dock import Dock, JobControls, note, page
from ._forms import options_form
from ._layers import chooser, layer_choices, mask_choices, pixel_size_A, volume_choices
from ._tables import open_table_file, refined_poses, table_choices

__all__ = ["NoiseModelWidget", "VIEWS"]

VIEWS = ("overview", "basic", "advanced (2D)", "RELION σ²")


def reference_map_choices(layers) -> list:
    """Every 3D map, those that look like masks last (a density map scaled to [0, 1] reads as a
    mask by its values alone)."""
    layers = list(layers)
    return volume_choices(layers) + mask_choices(layers)


def _given(path) -> bool:
    return bool(path) and str(path) not in ("", ".")


class NoiseModelWidget(Dock):
    """Noise model from particle residuals, and RELION noise spectra (see the module docstring)."""

    title = "Noise model"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        v = napari_viewer
        self.result = None  #: the NoiseModel of the last computation
        self.relion = None  #: ``workflows.noise.relion_spectra`` of the chosen model.star
        self.particles = chooser(table_choices(v, "particles", with_picks=True,
                                               needs=("rot_deg", "tilt_deg", "defocus_A", "image_index"), usable=refined_poses),
                                 label="particles",
                                 tooltip="refined particles with poses and CTF (RELION STAR, cryoSPARC .cs)")
        self.particles_file = FileEdit(label="or open", mode="r", filter="Particles (*.star *.cs)")
        self.map = chooser(layer_choices(v, reference_map_choices), label="map",
                           tooltip="the map the particles were refined against")
        self.map_file = FileEdit(label="or open", mode="r", filter="Maps (*.mrc *.map)")
        self.stack = FileEdit(label="stack", mode="r", filter="Stacks (*.mrcs *.mrc)", nullable=True,
                              tooltip="the particle stack (empty: the stacks named in the table)")
        self.model = chooser(table_choices(v, "relion_model"), label="model.star", none="none",
                             tooltip="a RELION *_model.star: its per-group noise spectra (rlnSigma2Noise)")
        self.model_file = FileEdit(label="or open", mode="r", filter="RELION model (*_model.star *.star)")
        self.options = options_form(NoiseOptions)
        self.view = ComboBox(label="view", choices=list(VIEWS), value="overview")
        self.save_figure = FileEdit(label="save figure", mode="w", filter="Figures (*.png *.pdf *.svg)")
        self.save_numbers = FileEdit(label="save numbers", mode="w", filter="JSON (*.json)")
        self.compute_button = PushButton(text="Compute noise model")
        self.controls = JobControls()
        self.summary = note()
        self.inputs = Container(widgets=[self.particles, self.map, self.model])
        self.files = Container(widgets=[self.particles_file, self.map_file, self.stack, self.model_file,
                                        self.save_figure, self.save_numbers])
        self.track(self.inputs, self.files)
        self.actions(self.compute_button)

        self.canvas = MplCanvas(figsize=(4.0, 4.4), min_height=300, max_aspect=1.2, theme=self.theme)
        self.tabs = QTabWidget()
        self.tabs.addTab(page(self.view, self.canvas, self.summary, stretch=self.canvas), "Plots")
        self.tabs.addTab(page(self.options), "Options")
        self.tabs.addTab(page(self.files), "Files")

        self.arrange(self.inputs, self.action_row(self.compute_button, self.controls), tabs=self.tabs)

        self.compute_button.changed.connect(lambda *_: self.compute())
        self.view.changed.connect(self.redraw)
        self.model.changed.connect(self._on_model)
        self.particles_file.changed.connect(lambda p: self._open_table(p, "particles", self.particles))
        self.model_file.changed.connect(lambda p: self._open_table(p, "relion_model", self.model))
        self.map_file.changed.connect(self._open_map)
        v.layers.events.inserted.connect(self._on_inserted)
        self.particles.changed.connect(lambda *_: self._match_map())
        self._match_map()
        self.save_figure.changed.connect(self._on_save_figure)
        self.save_numbers.changed.connect(self._on_save_numbers)
        self.redraw()

    def _on_inserted(self, event=None):
        """A map just opened is the one to use."""
        layer = getattr(event, "value", None)
        self.map.reset_choices()
        if layer is not None and layer in (self.map.choices or ()):
            self.map.value = layer

    def _particle_box(self) -> int | None:
        """Box (px) of the chosen particle set: its images, else what its table records."""
        item = self.particles.value
        if item is None or item.table is None:
            return None
        box = item.images_box
        if box is not None:
            return box
        from ..compute.particles.orientations import table_box_px

        return table_box_px(item.table)

    def _match_map(self) -> None:
        """The map the particles were refined against has their box: when the chosen map does not,
        and one open map does, choose that one (the user's choice of a matching map stays)."""
        box = self._particle_box()
        current = self.map.value
        if box is None or (current is not None and tuple(current.data.shape) == (box,) * 3):
            return
        match = [ly for ly in (self.map.choices or ()) if tuple(ly.data.shape) == (box,) * 3]
        if match:
            self.map.value = match[-1]  # the most recently opened

    # ------------------------------------------------------------------ files
    def _open_table(self, path, kind, widget):
        if not _given(path):
            return None
        try:
            item = open_table_file(self.viewer, path, kind)
        except CryodiagInputError as err:
            self.error(err)
            return None
        self.reset_choices()
        widget.value = item
        return item

    def _open_map(self, path):
        if not _given(path):
            return
        opened = self.open_layers([path])
        new = [ly for ly in opened if ly in (self.map.choices or ())]
        if new:
            self.map.value = new[0]
        elif opened:
            self.error(f"{Path(str(path)).name} is not a 3D map")

    def set_inputs(self, particles=None, map_path=None, stack=None, model=None) -> None:
        """Open files as the inputs (each optional)."""
        if particles is not None:
            self.particles_file.value = particles
        if map_path is not None:
            self.map_file.value = map_path
        if stack is not None:
            self.stack.value = stack
        if model is not None:
            self.model_file.value = model

    # ------------------------------------------------------------------ compute
    def compute(self):
        """Start the noise model in a worker; returns the worker (None on bad input, or while a
        job runs)."""
        item, layer = self.particles.value, self.map.value
        try:
            if item is None or item.table is None:
                raise CryodiagInputError("choose a particle set (or open a STAR / .cs file)")
            if layer is None:
                raise CryodiagInputError("choose the map (a 3D image layer), or open a map file")
        except CryodiagInputError as err:
            self.error(err)
            self.summary.value = f"error: {err}"
            return None
        table, source = item.table, item.path or item.table.attrs.get("source")
        options = self.options.value
        if not options.map_pixel_size_A and pixel_size_A(layer):
            from dataclasses import replace

            options = replace(options, map_pixel_size_A=float(pixel_size_A(layer)))
        volume = np.asarray(layer.data, dtype=np.float32)
        stack = str(self.stack.value) if _given(self.stack.value) else None
        images = item.data.get("images") if item.data else None
        n = len(subset(table, options.max_particles))
        self.result = None

        def job():
            return (yield from iter_noise_model(table, volume, options, images=images, stack=stack, source=source))

        self.summary.value = f"computing the noise model of {n:,} particles …"
        worker = self.run(job, on_done=self._on_result, controls=self.controls, description="Noise model")
        if worker is not None:
            worker.errored.connect(lambda err: setattr(self.summary, "value", f"error: {err}"))
            worker.aborted.connect(lambda: setattr(self.summary, "value", "noise model cancelled"))
        return worker

    def _on_result(self, nm):
        self.result = nm
        sc = f"scale {nm.scale:.4g}" if np.ndim(nm.scale) == 0 else f"per-image scale, median {np.median(nm.scale):.4g}"
        hi = nm.noise_variance[-1] / nm.noise_variance[1] if nm.noise_variance[1] > 0 else np.nan
        text = (f"{nm.n_images:,} particles, box {nm.box} px at {nm.pixel_size_A:.4g} Å/px; {sc}; "
                f"noise at Nyquist / shell 1 = {hi:.3g}")
        if nm.notes:
            text += "\nnotes: " + "; ".join(nm.notes)
        self.summary.value = text
        if self.view.value == "RELION σ²":
            self.view.value = "overview"
        self.redraw()

    # ------------------------------------------------------------------ RELION spectra
    def _on_model(self, item):
        if item is None:
            self.relion = None
            self.redraw()
            return
        self.load_model(item)

    def load_model(self, item=None):
        """Read the chosen model.star's per-group noise spectra and show them; returns the spectra."""
        item = item if item is not None else self.model.value
        try:
            if item is None:
                raise CryodiagInputError("choose a RELION *_model.star (model.star) or open one")
            model = item.data.get("model") if item.data else None
            self.relion = relion_spectra(model if model is not None else item.path)
        except CryodiagInputError as err:
            self.relion = None
            self.error(err)
            return None
        n, kind = len(self.relion["spectra"]), self.relion["model"].group_kind
        self._relion_title = f"RELION noise spectra, {n} {kind}s\n{item.name}"  # two lines: fits the dock
        if self.view.value == "RELION σ²":
            self.redraw()
        else:
            self.view.value = "RELION σ²"
        self.report(f"{n} noise spectra from {item.name}")
        return self.relion["spectra"]

    # ------------------------------------------------------------------ plots
    def draw(self, fig) -> bool:
        from ..plots import noise_model as pn

        view = self.view.value
        if view == "RELION σ²":
            if not self.relion:
                return False
            pn.plot_relion_sigma2(self.relion["spectra"], fig=fig, counts=self.relion["counts"],
                                  title=getattr(self, "_relion_title", ""))
            return True
        if self.result is None:
            return False
        {"basic": pn.plot_noise_basic, "advanced (2D)": pn.plot_noise_advanced}.get(view, pn.plot_noise_overview)(
            self.result, fig=fig)
        return True

    def redraw(self, *_):
        with self.canvas.plotting() as fig:
            if not self.draw(fig):
                ax = fig.add_subplot(111)
                ax.set_axis_off()
                what = "choose a model.star" if self.view.value == "RELION σ²" else "press Compute noise model"
                ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes)

    def on_theme_changed(self) -> None:
        self.canvas.set_theme(self.theme)
        self.redraw()

    # ------------------------------------------------------------------ saving
    def numbers(self) -> dict:
        return numbers(self.result, self.relion)

    def _protect(self) -> list:
        item = self.particles.value
        return [p for p in (getattr(item, "path", None), str(self.stack.value) if _given(self.stack.value) else None)
                if p]

    def save_figure_to(self, path) -> Path:
        from ..io.atomic import atomic_write

        fmt = Path(path).suffix[1:].lower() or "png"
        if fmt not in ("png", "pdf", "svg"):
            raise CryodiagInputError("save the figure as .png, .pdf or .svg", path)
        return atomic_write(path, lambda p: self.canvas.figure.savefig(p, dpi=150, format=fmt), overwrite=True,
                            protect=self._protect())

    def save_json(self, path) -> Path:
        from ..io.jsonfile import write_json

        return write_json(path, self.numbers(), overwrite=True, protect=self._protect())

    def _on_save_figure(self, path):
        if _given(path):
            try:
                self.report(f"figure written to {self.save_figure_to(path)}")
            except CryodiagInputError as err:
                self.error(err)

    def _on_save_numbers(self, path):
        if _given(path):
            try:
                self.report(f"numbers written to {self.save_json(path)}")
            except CryodiagInputError as err:
                self.error(err)
