"""The Classes dock: 2D class diagnostics through :mod:`napari_cryodiag.workflows.classes`.

Always in view: the particles chooser, Compute with progress and Cancel, the sort order and the
layer mode. Below, in tabs:

==========  ===============================================================================
tab         panel
==========  ===============================================================================
Classes     :class:`~.table_panel.ClassTablePanel`: thumbnails and numbers, click to select, double-click to show
Histograms  :class:`~.plots_panel.ClassPlotsPanel`: best-class probability, class ESS
FRC         the half-set FRC curves
Inputs      :class:`~.inputs_panel.ClassInputsPanel`: averages, model.star, stacks, options
Export      :class:`~.export_panel.ClassExportPanel`: selected classes to STAR/.cs, figures
==========  ===============================================================================

Parameters are magicgui values: ``dock.inputs.particles.value``, ``dock.inputs.options.ctf.value``,
``dock.sort_by.value``, ``dock.layer_panel.mode.value``,
``dock.export_panel.selection_file.value`` …
"""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import Container, PushButton
from qtpy.QtWidgets import QTabWidget

from ...errors import CryodiagInputError
from ...workflows.classes import iter_class_diagnostics
from .._dock import Dock, JobControls, page
from .export_panel import ClassExportPanel
from .inputs_panel import ClassInputsPanel
from .layer_panel import LABELS_NAME, LAYER_NAME, ClassLayerPanel
from .plots_panel import ClassPlotsPanel
from .session import ClassesSession
from .table_panel import ClassTablePanel

__all__ = ["ClassesWidget", "LAYER_NAME", "LABELS_NAME"]


class ClassesWidget(Dock):
    """Classes (see the module docstring)."""

    title = "Classes"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.classes = ClassesSession()
        self.inputs = ClassInputsPanel(self)
        self.table = ClassTablePanel(self.classes, self)
        self.plots = ClassPlotsPanel(self.classes, self)
        self.layer_panel = ClassLayerPanel(self.classes, self)
        self.export_panel = ClassExportPanel(self.classes, self)

        self.compute_button = PushButton(text="Compute")
        self.controls = JobControls()
        self.actions(self.compute_button)
        o = self.inputs.options
        self.view = Container(widgets=[self.inputs.order, self.layer_panel.mode], layout="horizontal", labels=False)

        self.tabs = QTabWidget()
        self.tabs.addTab(page(*self.table.widgets(), stretch=self.table.view), "Classes")
        self.tabs.addTab(page(self.plots.histograms, stretch=self.plots.histograms), "Histograms")
        self.tabs.addTab(page(self.plots.frc, stretch=self.plots.frc), "FRC")
        self.tabs.addTab(page(self.inputs.choosers, o), "Inputs")
        self.tabs.addTab(page(*self.export_panel.widgets()), "Export")

        self.arrange(self.inputs.top, self.action_row(self.compute_button, self.controls), self.view, tabs=self.tabs)

        self.compute_button.changed.connect(lambda *_: self.compute())
        self.sort_by = self.inputs.order.sort_by
        self.sort_by.changed.connect(self.classes.set_sort)
        self.classes.set_sort(self.sort_by.value)

    # ------------------------------------------------------------------ API
    @property
    def result(self):
        """The last :class:`~napari_cryodiag.compute.particles.class_diagnostics.ClassDiagnostics`."""
        return self.classes.result

    @property
    def selected(self) -> set[int]:
        return self.classes.selected

    def set_selection(self, classes) -> None:
        self.classes.set_selection(classes)

    def export_selected(self, path, overwrite: bool = False):
        return self.export_panel.export_selected(path, overwrite=overwrite)

    def compute(self):
        """Compute in a worker; returns it (None on bad input, or while a job runs)."""
        try:
            kw = self.inputs.job_inputs()
        except CryodiagInputError as err:
            self.error(err)
            self.status.value = f"error: {err}"
            return None
        particles = kw.pop("particles")
        item = self.inputs.particles.value

        def job():
            return (yield from iter_class_diagnostics(particles, **kw))

        def done(result):
            self.classes.set_result(result, item.name if item is not None else "")
            s = result.summary
            msg = (f"{len(result.table):,} particles in {int((s['count'] > 0).sum())} classes; "
                   f"{result.posterior.source} posteriors; averages: {Path(str(result.averages_source)).name}")
            notes = list(result.posterior.notes) + list(result.notes)
            if notes:
                msg += "\n" + "\n".join(notes)
            self.status.value = msg

        self.status.value = f"computing on {len(particles):,} particles …"
        worker = self.run(job, on_done=done, controls=self.controls, description="Classes")
        if worker is not None:
            worker.errored.connect(lambda err: setattr(self.status, "value", f"error: {err}"))
            worker.aborted.connect(lambda: setattr(self.status, "value", "cancelled"))
        return worker

    # ------------------------------------------------------------------ events
    def on_layers_changed(self) -> None:
        self.inputs.choose_defaults()

    def on_theme_changed(self) -> None:
        self.plots.set_theme(self.theme)
