"""The Orientations dock: viewing directions, Fourier sampling, posterior precision, SCF* and
(with two half maps) cFAR, through :mod:`napari_cryodiag.workflows.orientations`.

magicgui: ``particles`` (particle sets open in the viewer: File > Open of a STAR / ``.cs``
without pick coordinates, or the table of a picks layer), ``particles_file`` (or open one
here), ``half1``/``half2`` (3D maps for cFAR; never masks, derived layers or stacks of 2D images
such as class averages; empty = no cFAR), ``options``
(:class:`~napari_cryodiag.workflows.orientations.OrientationsOptions`), ``figures_folder``.
One plot per tab, each sized for the dock.
"""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import Container, FileEdit, PushButton
from qtpy.QtWidgets import QTabWidget

from ..errors import CryodiagInputError
from ..plots.orientations import plot_conical_fsc, plot_directional_map, plot_scf_cfar, plot_viewing_directions
from ..workflows.orientations import (
    OrientationsOptions,
    export,
    iter_orientation_diagnostics,
    load_particles,
    plan_outputs,
)
from ._canvas import MplCanvas
from ._dock import Dock, JobControls, page
from ._forms import options_form
from ._layers import chooser, half_map_choices, layer_choices, pair_of_half_maps, pixel_size_A
from ._tables import open_table_file, refined_poses, table_choices

__all__ = ["OrientationsWidget"]

#: tab -> what it shows (short tab names: they fit the dock's width)
TABS = {"Views": "viewing directions", "Sampling": "Fourier sampling", "Precision": "posterior precision",
        "Scores": "SCF* and cFAR", "Cones": "conical FSCs"}


class OrientationsWidget(Dock):
    """Orientation diagnostics of a refined particle set (see the module docstring)."""

    title = "Orientations"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        v = napari_viewer
        self.result = None
        self.particles = chooser(table_choices(v, "particles", with_picks=True, needs=("rot_deg", "tilt_deg"),
                                              usable=refined_poses), label="particles",
                                 tooltip="a refinement result with 3D poses (RELION STAR, cryoSPARC .cs)")
        self.particles_file = FileEdit(label="or open", mode="r", filter="Particles (*.star *.cs)")
        self.half1 = chooser(layer_choices(v, half_map_choices), label="half map 1", none="none (no cFAR)")
        self.half2 = chooser(layer_choices(v, half_map_choices), label="half map 2", none="none (no cFAR)")
        self.options = options_form(OrientationsOptions)
        self.figures_folder = FileEdit(label="figures to", mode="d")
        self.save_button = PushButton(text="Save figures and numbers", enabled=False)
        self.compute_button = PushButton(text="Compute")
        self.controls = JobControls()
        self.inputs = Container(widgets=[self.particles, self.half1, self.half2])
        self.files = Container(widgets=[self.particles_file, self.figures_folder, self.save_button])
        self.track(self.inputs, self.files)
        self.actions(self.compute_button, self.save_button)

        self.canvases = {name: MplCanvas(figsize=(4.0, 2.8), min_height=480 if name == "Cones" else 230,
                                         max_aspect=1.3 if name == "Cones" else 0.85, theme=self.theme)
                         for name in TABS}
        self.tabs = QTabWidget()
        for name, c in self.canvases.items():
            self.tabs.addTab(page(c, stretch=c), name)
            self.tabs.setTabToolTip(self.tabs.count() - 1, TABS[name])
        self.tabs.addTab(page(self.options), "Options")
        self.tabs.addTab(page(self.files), "Files")

        self.arrange(self.inputs, self.action_row(self.compute_button, self.controls), tabs=self.tabs)
        self.status.value = "Choose a particle set with 3D poses (STAR or .cs) and press Compute."

        self.compute_button.changed.connect(lambda *_: self.compute())
        self.particles_file.changed.connect(self._open_particles)
        self.save_button.changed.connect(lambda *_: self._on_save())
        self._choose_half_maps()
        self._draw()

    # ------------------------------------------------------------------ compat names
    @property
    def viewing_canvas(self):
        return self.canvases["Views"]

    @property
    def sampling_canvas(self):
        return self.canvases["Sampling"]

    @property
    def precision_canvas(self):
        return self.canvases["Precision"]

    @property
    def scores_canvas(self):
        return self.canvases["Scores"]

    @property
    def cfar_canvas(self):
        return self.canvases["Cones"]

    # ------------------------------------------------------------------ inputs
    def _choose_half_maps(self):
        """Two different half maps when a pair is open (cFAR is optional: none otherwise)."""
        a, b = self.half1.value, self.half2.value
        if a is not None and b is not None and a is not b:
            return
        one, two = pair_of_half_maps(list(self.viewer.layers))
        if one is not None and two is not None:
            self.half1.value, self.half2.value = one, two

    def on_layers_changed(self) -> None:
        self._choose_half_maps()

    def _open_particles(self, path):
        if not path or str(path) in ("", "."):
            return
        self.load_file(path)

    def load_file(self, path):
        """Open a STAR / .cs particle file and choose it; returns the open table (None on error)."""
        try:
            item = open_table_file(self.viewer, path, "particles")
        except CryodiagInputError as err:
            self.error(err)
            return None
        self.reset_choices()
        self.particles.value = item
        return item

    def current_table(self):
        item = self.particles.value
        return None if item is None else item.table

    # ------------------------------------------------------------------ compute
    def compute(self):
        """Compute in a worker; returns it (None when there is no input, or while a job runs)."""
        table = self.current_table()
        try:
            if table is None:
                raise CryodiagInputError("choose a particle set (or open a STAR / .cs file) with 3D poses")
            table, warnings = load_particles(table)
            h1, h2 = self.half1.value, self.half2.value
            if (h1 is None) != (h2 is None):
                raise CryodiagInputError("cFAR needs two half maps: choose both, or none")
            if h1 is not None and h1 is h2:
                raise CryodiagInputError(f"half map 1 and half map 2 are the same layer ({h1.name})")
        except CryodiagInputError as err:
            self.error(err)
            return None
        for w in warnings:
            self.report(w, "warning")
        options = self.options.value
        box = self.particles.value.images_box
        if not options.box_px and box is not None:
            # a particle set opened with its images in memory (the sample) gives its box
            from dataclasses import replace

            options = replace(options, box_px=box)
        half = {} if h1 is None else dict(half1=h1.data, half2=h2.data,
                                          half_pixel_size_A=pixel_size_A(h1) or pixel_size_A(h2))

        def job():
            return (yield from iter_orientation_diagnostics(table, options, **half))

        self.status.value = f"computing on {len(table):,} particles …"
        return self.run(job, on_done=self._on_done, controls=self.controls, description="Orientations")

    def _on_done(self, result) -> None:
        self.result = result
        self.show_result(result)

    # ------------------------------------------------------------------ plots
    def _draw(self):
        r = self.result
        for name, canvas in self.canvases.items():
            with canvas.plotting() as fig:
                if r is None:
                    ax = fig.add_subplot(111)
                    ax.set_axis_off()
                    ax.text(0.5, 0.5, "press Compute", ha="center", va="center", transform=ax.transAxes)
                elif name == "Views":
                    plot_viewing_directions(r.histogram, fig=fig)
                elif name == "Sampling":
                    plot_directional_map(r.maps, "fourier_sampling", fig=fig, scf=r.scf)
                elif name == "Precision":
                    plot_directional_map(r.maps, "posterior_precision", fig=fig)
                elif name == "Scores":
                    plot_scf_cfar(r.scf, r.cfsc, fig=fig)
                elif r.cfsc is not None:
                    plot_conical_fsc(r.cfsc, fig=fig, layout="rows")
                else:
                    ax = fig.add_subplot(111)
                    ax.set_axis_off()
                    ax.text(0.5, 0.5, "choose two half maps for cFAR", ha="center", va="center",
                            transform=ax.transAxes)

    def show_result(self, result) -> None:
        self.result = result
        self._draw()
        s = result.scf
        text = (f"{result.n_particles:,} particles · R = {result.radius_px:g} voxels ({result.radius_source}) · "
                f"SCF* = {s.scf_star:.3f} ({'< 0.81: preferred orientation' if s.preferred_orientation else '≥ 0.81'})")
        if result.cfsc is not None:
            text += f" · cFAR = {result.cfsc.cfar:.3f} ({'< 0.5: anisotropic' if result.cfsc.anisotropic else '≥ 0.5'})"
        self.status.value = text
        self.save_button.enabled = True

    def on_theme_changed(self) -> None:
        for c in self.canvases.values():
            c.set_theme(self.theme)
        self._draw()

    # ------------------------------------------------------------------ save
    def _on_save(self):
        folder = self.figures_folder.value
        if not folder or str(folder) in ("", "."):
            self.error("choose a folder ('figures to')")
            return
        try:
            paths = self.save_figures(folder)
        except CryodiagInputError as err:
            self.error(err)
            return
        self.report(f"wrote {len(paths)} files to {folder}")

    def save_figures(self, folder, fmt: str = "png", overwrite: bool = False) -> list[Path]:
        """Write each figure and the JSON of the numbers into ``folder``; returns the paths."""
        from ..io.outputs import OutputPlan

        if self.result is None:
            raise CryodiagInputError("nothing to save: press Compute first")
        src = self.result.source
        plan = OutputPlan(folder, overwrite=overwrite, formats=fmt).protect([src] if src else [])
        plan_outputs(plan)
        plan.check()
        return export(self.result, plan)
