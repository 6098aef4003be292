"""The Inspect Picks dock: a picks-layer chooser over five panels that share one
:class:`~.session.PickSession`.

=============  =================================================================================
tab            panel
=============  =================================================================================
Thresholds     :class:`~.histogram_panel.HistogramPanel`: axes, histogram, threshold sliders
Micrographs    :class:`~.exposure_panel.ExposurePanel`: curating exposures (scatter of per-micrograph
               statistics, thresholds dropping whole micrographs) over
               :class:`~.table_panel.MicrographTablePanel`: per-micrograph table, assign picks
Calibration    :class:`~.calibration_panel.CalibrationPanel`: scores against defocus
Jobs           :class:`~.jobs_panel.JobsPanel`: NCC and power, the picker
Export         :class:`~.export_panel.ExportPanel`: duplicates, STAR / .cs, session
=============  =================================================================================

Below the tabs: how picks are drawn (rejected dimmed or hidden; circles of the particle diameter,
the box size or a fixed size). Every parameter is a magicgui value widget reachable from Python
(``dock.picks.value``, ``dock.thresholds.x_range.value``, ``dock.calibration.form.calibrate_x.value``,
``dock.jobs.scoring.diameter_A.value``, ``dock.export.dedupe.distance_A.value`` …).
"""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, FloatSpinBox
from qtpy.QtWidgets import QTabWidget

from ...errors import CryodiagInputError
from .._dock import Dock, page
from .._layers import layer_choices, picks_choices
from .._tables import tables_of
from .calibration_panel import CalibrationPanel
from .export_panel import ExportPanel
from .exposure_panel import ExposurePanel
from .histogram_panel import HistogramPanel
from .jobs_panel import JobsPanel
from .session import PickSession
from .table_panel import MicrographTablePanel

__all__ = ["InspectPicksWidget"]


class InspectPicksWidget(Dock):
    """Inspect Picks (see the module docstring)."""

    title = "Inspect Picks"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.session = PickSession(napari_viewer)
        self.picks = ComboBox(label="picks", choices=layer_choices(napari_viewer, picks_choices))
        self.top = Container(widgets=[self.picks])
        self.track(self.top)

        self.thresholds_panel = HistogramPanel(self.session, self)
        self.table = MicrographTablePanel(self.session, self)
        self.exposures = ExposurePanel(self.session, self, self.table)
        self.calibration = CalibrationPanel(self.session, self)
        self.jobs = JobsPanel(self.session, self)
        self.export_panel = ExportPanel(self.session, self)
        self.tabs = QTabWidget()
        self.tabs.addTab(page(*self.thresholds_panel.widgets(), stretch=self.thresholds_panel.canvas), "Thresholds")
        self.tabs.addTab(page(*self.exposures.widgets(), *self.table.widgets(), stretch=self.table.view), "Micrographs")
        self.tabs.addTab(page(*self.calibration.widgets(), stretch=self.calibration.canvas), "Calibration")
        self.tabs.addTab(page(*self.jobs.widgets()), "Jobs")
        self.tabs.addTab(page(*self.export_panel.widgets()), "Export")

        self.rejected = ComboBox(label="rejected picks", choices=["dim", "hide"], value="dim")
        self.circles = ComboBox(label="circles", choices=["particle diameter", "box size", "fixed size"],
                                value="particle diameter")
        self.circle_px = FloatSpinBox(label="size (px)", value=64.0, min=2.0, max=5000.0, step=2.0, visible=False)
        self.display = Container(widgets=[self.rejected, self.circles, self.circle_px])  # a form: fits the dock
        self.add(self.top)
        self.add(self.tabs, stretch=1)
        self.add(self.display)
        self.add(self.status)

        self.tabs.currentChanged.connect(self._on_tab)
        self.picks.changed.connect(self._on_picks_chosen)
        self.rejected.changed.connect(self._on_rejected)
        self.circles.changed.connect(self._on_circles)
        self.circle_px.changed.connect(self._on_circles)
        napari_viewer.layers.selection.events.active.connect(self._on_active_layer)
        tables_of(napari_viewer).changed.connect(self._on_tables)
        self.session.layer_changed.connect(self._on_session_layer)
        self._on_picks_chosen()

    # ------------------------------------------------------------------ compat / API
    # the thresholds tab's panel keeps its short name for scripts: dock.thresholds is the panel
    @property
    def thresholds(self):
        return self.thresholds_panel

    @property
    def layer(self):
        return self.session.layer

    @property
    def controller(self):
        return self.session.controller

    @property
    def pickset(self):
        return self.session.pickset

    @property
    def inspection(self):
        return self.session.inspection

    @property
    def result(self):
        """What is kept now (:class:`~napari_cryodiag.compute.picks.pickset.Selection`)."""
        return self.session.selection

    def set_layer(self, layer) -> None:
        self.reset_choices()
        self.picks.value = layer
        if self.session.layer is not layer:
            self.session.set_layer(layer)

    def set_threshold(self, name: str, value) -> None:
        try:
            self.session.set_threshold(name, value)
        except CryodiagInputError as err:
            self.error(err)

    def set_thresholds(self, t) -> None:
        try:
            self.session.set_thresholds(t)
        except CryodiagInputError as err:
            self.error(err)

    def set_polygon(self, vertices) -> None:
        self.session.set_polygon(vertices)

    def suggest_thresholds(self) -> None:
        self.thresholds_panel.suggest()

    def compute_scores(self):
        return self.jobs.compute_scores()

    def run_picker(self, all_micrographs: bool = True):
        return self.jobs.run_picker(all_micrographs=all_micrographs)

    def export(self, path, *, rejected: bool = False, overwrite: bool = False):
        return self.export_panel.export(path, rejected=rejected, overwrite=overwrite)

    def add_picks_layer(self, table, name: str):
        """Add ``table`` as a new picks layer (as the reader builds it) and inspect it."""
        from napari.layers import Layer

        from ..layer_data import picks_layer_data
        from ..picks_layer import link_viewer

        source = str(table.attrs.get("source") or name)
        layer = self.viewer.add_layer(Layer.create(*picks_layer_data(table, source, name=name)))
        link_viewer(self.viewer)
        self.set_layer(layer)
        return layer

    # ------------------------------------------------------------------ events
    def on_layers_changed(self) -> None:
        layer = self.session.layer
        if layer is not None and layer not in list(self.viewer.layers):
            self.session.set_layer(self.picks.value)
        elif layer is None and self.picks.value is not None:
            self.session.set_layer(self.picks.value)

    def _on_picks_chosen(self, *_):
        layer = self.picks.value
        if layer is not self.session.layer:
            self.session.set_layer(layer)

    def _on_active_layer(self, event=None):
        active = self.viewer.layers.selection.active
        if active is not None and active in (self.picks.choices or ()) and active is not self.session.layer:
            self.picks.value = active

    def _on_tables(self, *_):
        self.reset_choices()
        self.session.tables_changed()

    def _on_session_layer(self, *_):
        ctrl = self.session.controller
        if ctrl is not None:
            self.rejected.value = ctrl.rejected_mode
        if self.session.pickset is not None and not self.session.pickset.no_scores:
            if self.session.inspection is not None and self.session.inspection.x_feature not in ("ncc",):
                if "ncc" not in self.session.pickset.table.columns:
                    self.status.value = ""
        elif self.session.pickset is not None:
            self.status.value = f"{self.session.layer.name}: no scores; compute NCC and power in the Jobs tab"

    def _on_tab(self, index: int) -> None:
        """Panels whose tab is not the current one do not redraw; they catch up when it is."""
        lazy = {1: (self.table, self.exposures), 2: (self.calibration,), 4: (self.export_panel,)}
        for i, panels in lazy.items():
            for panel in panels:
                panel.shown = i == index
        for panel in lazy.get(index, ()):
            panel.show()

    def _on_rejected(self, mode):
        ctrl = self.session.controller
        if ctrl is None:
            return
        ctrl.rejected_mode = mode
        if self.session.selection is not None:
            ctrl.set_kept(self.session.selection.kept)

    def _on_circles(self, *_):
        ctrl = self.session.controller
        mode = {"particle diameter": "diameter", "box size": "box", "fixed size": "fixed"}[self.circles.value]
        self.circle_px.visible = mode == "fixed"
        if ctrl is not None:
            ctrl.set_size_mode(mode, float(self.circle_px.value))

    def on_theme_changed(self) -> None:
        for c in (self.thresholds_panel.canvas, self.calibration.canvas, self.exposures.canvas):
            c.set_theme(self.theme)
        self.thresholds_panel.rebuild(new_figure=True)  # the theme's colours are a figure's own
        self.calibration.redraw()
        self.exposures.redraw()
