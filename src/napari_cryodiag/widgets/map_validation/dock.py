"""The Map validation dock: half maps in, the FSC family, diagnosis, Guinier fit, what-if
sharpening and the map views out, all through :mod:`napari_cryodiag.workflows.maps`.

Always in view: the inputs (:class:`~.inputs_panel.InputsPanel`), Compute with its progress and
Cancel, and the summary (resolution, B-factor, flags). Below, in tabs:

=========  ================================================================================
tab        panel
=========  ================================================================================
Plots      :class:`~.plots_panel.PlotsPanel`: FSC, Guinier, slices, projections, Fourier
           slices (and a postprocess.star's FSC)
Sharpen    :class:`~.sharpen_panel.SharpenPanel`: what-if B-factor; masks, sharpened map,
           Fourier volume and projections as layers
Options    :class:`~.options_panel.OptionsPanel`: FSC, masks, Guinier, diagnosis forms
Files      :class:`~.files_panel.FilesPanel`: voxel size, maps to open, postprocess.star,
           exports
=========  ================================================================================

Every parameter is a magicgui value reachable from Python: ``dock.inputs.half1.value``,
``dock.options.masks.tight_dilate_A.value``, ``dock.sharpen.form.bfactor_A2.value``,
``dock.plots.view.value``, ``dock.files.postprocess.value`` …
"""

from __future__ import annotations

from magicgui.widgets import PushButton
from qtpy.QtWidgets import QTabWidget

from ...errors import CryodiagInputError
from .._dock import Dock, JobControls, note, page
from .files_panel import FilesPanel
from .inputs_panel import InputsPanel
from .options_panel import OptionsPanel
from .plots_panel import PlotsPanel
from .session import MapSession
from .sharpen_panel import SharpenPanel

__all__ = ["MapValidationWidget"]


def summary_html(session) -> str:
    """What the curves say, for the summary line (rich text)."""
    s = session.session
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
            lines.append(f"<span style='color:#e8a33d'>⚠ <b>{f.title}</b>: {f.explanation} <i>{f.advice}</i></span>")
    else:
        lines.append("<span style='color:#5cb85c'>no diagnosis flags: the curves look healthy</span>")
    return "<br>".join(lines)


class MapValidationWidget(Dock):
    """Map validation (see the module docstring)."""

    title = "Map validation"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.map_session = MapSession()
        self.inputs = InputsPanel(self)
        self.plots = PlotsPanel(self.map_session, self)
        self.sharpen = SharpenPanel(self.map_session, self, self.plots)
        self.options = OptionsPanel(self)
        self.files = FilesPanel(self.map_session, self, self.plots)

        self.compute_button = PushButton(text="Compute FSC")
        self.controls = JobControls()
        self.actions(self.compute_button)
        self.summary = note(rich=True)

        self.tabs = QTabWidget()
        self.tabs.addTab(page(*self.plots.widgets(), stretch=self.plots.canvas), "Plots")
        self.tabs.addTab(page(*self.sharpen.widgets()), "Sharpen")
        self.tabs.addTab(page(self.options.tabs), "Options")
        self.tabs.addTab(page(self.inputs.files, *self.files.widgets()), "Files")

        self.arrange(self.inputs.choosers, self.action_row(self.compute_button, self.controls), self.summary,
                     tabs=self.tabs)

        self.compute_button.changed.connect(lambda *_: self.compute())

    # ------------------------------------------------------------------ API
    @property
    def validation(self):
        """The workflow's :class:`~napari_cryodiag.workflows.maps.MapValidation` (None before Compute)."""
        return self.map_session.validation

    @property
    def session(self):
        """The compute session of the validation (curves, flags, Guinier fit, sharpening)."""
        return self.map_session.session

    def compute(self):
        """Compute (or update) the validation in a worker; returns the worker (None on bad input,
        or while a job runs)."""
        if self.busy:
            self.report("compute: a computation is running; wait for it or cancel it", "warning")
            return None
        inp = self.inputs
        self.sharpen.wait()  # the sharpening thread reads what a computation replaces
        try:
            v = self.map_session.prepare(inp.half1.value, inp.half2.value, inp.mask.value,
                                         inp.voxel_size_A.value or None)
        except CryodiagInputError as err:
            self.summary.value = f"error: {err}"
            self.error(err)
            return None
        options, diagnosis = self.options.options(), self.options.diagnosis_params()

        def job():
            return (yield from v.iter_compute(options, diagnosis))

        def done(_session):
            if self.map_session.validation is not v:
                return
            self.summary.value = summary_html(self.map_session)
            self.report(f"{v.inputs.half1_name} × {v.inputs.half2_name}: recomputed "
                        f"{', '.join(v.session.recomputed) or 'nothing (unchanged)'}")
            self.map_session.computed.emit()

        self.summary.value = "computing the FSC curves …"
        worker = self.run(job, on_done=done, controls=self.controls, description="Map validation")
        if worker is not None:
            worker.errored.connect(lambda err: setattr(self.summary, "value", f"error: {err}"))
            worker.aborted.connect(lambda: setattr(self.summary, "value", "cancelled"))
        return worker

    def export(self, folder, formats: str = "png", overwrite: bool = False):
        return self.files.export(folder, formats=formats, overwrite=overwrite)

    # ------------------------------------------------------------------ events
    def on_layers_changed(self) -> None:
        self.inputs.choose_defaults()
        a, b = self.map_session.layers
        layers = list(self.viewer.layers)
        if a is not None and (a not in layers or b not in layers):
            self.map_session.forget()
            self.summary.value = ""
            self.plots.redraw()

    def on_theme_changed(self) -> None:
        self.plots.canvas.set_theme(self.theme)
        self.plots.redraw()
