"""Map validation, files: a RELION postprocess.star to plot, and the exports.

magicgui: ``postprocess`` (the postprocess.star files open in the viewer: File > Open puts them in
the viewer's open tables), ``postprocess_file`` (or a file chosen here), ``export_folder``,
``formats`` and ``overwrite``, and the Export button: every view's figure, ``fsc.csv``,
``fsc_corrected.xml``, ``postprocess.star`` and ``fsc.json``, written through the workflow's
output plan (never over the maps the layers were read from).
"""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton

from ...errors import CryodiagInputError
from ...workflows.maps import VIEWS, plan_exports
from .._layers import chooser
from .._tables import open_table_file, table_choices

__all__ = ["FilesPanel"]


class FilesPanel:
    def __init__(self, session, dock, plots):
        self.session = session
        self.dock = dock
        self.plots = plots
        v = dock.viewer
        self.postprocess = chooser(table_choices(v, "postprocess"), label="postprocess.star", none="none",
                                   tooltip="a RELION postprocess.star open in the viewer: its FSC curves are plotted")
        self.postprocess_file = FileEdit(label="or open", mode="r", filter="RELION postprocess (*.star)")
        self.export_folder = FileEdit(label="export to", mode="d")
        self.formats = ComboBox(label="figures", choices=["png", "pdf", "svg", "png,pdf,svg"], value="png")
        self.overwrite = CheckBox(text="replace existing files", value=False)
        self.export_button = PushButton(text="Export figures and FSC files")
        self.relion = Container(widgets=[self.postprocess, self.postprocess_file])
        self.exports = Container(widgets=[self.export_folder, self.formats, self.overwrite, self.export_button])
        dock.track(self.relion)
        dock.actions(self.export_button)
        self.postprocess.changed.connect(self._on_postprocess)
        self.postprocess_file.changed.connect(self._on_file)
        self.export_button.changed.connect(lambda *_: self._on_export())

    def widgets(self):
        return [self.relion, self.exports]

    # ------------------------------------------------------------------ postprocess
    def _on_file(self, path):
        if not path or str(path) in ("", "."):
            return
        try:
            item = open_table_file(self.dock.viewer, path, "postprocess")
        except CryodiagInputError as err:
            self.dock.error(err)
            return
        self.postprocess.reset_choices()
        self.postprocess.value = item

    def _on_postprocess(self, item):
        try:
            self.session.load_postprocess(item)
        except CryodiagInputError as err:
            self.dock.error(err)
            return
        if item is not None:
            fsc, flags, name = self.session.postprocess
            text = f"{name}: corrected FSC 0.143 at {fsc.resolution_A:.2f} Å ({fsc.box}³ px at {fsc.pixel_size_A:.3g} Å/px)"
            if flags:
                text += "; " + "; ".join(f.title for f in flags)
            self.dock.report(text)

    # ------------------------------------------------------------------ export
    def _on_export(self):
        folder = self.export_folder.value
        if not folder or str(folder) in ("", "."):
            self.dock.error("choose a folder to export to ('export to')")
            return
        try:
            paths = self.export(folder, formats=self.formats.value, overwrite=self.overwrite.value)
        except CryodiagInputError as err:
            self.dock.error(err)
            return
        self.dock.report(f"wrote {len(paths)} files to {folder}")

    def export(self, folder, formats: str = "png", overwrite: bool = False) -> list[Path]:
        """Write every view's figure and the FSC files into ``folder``; returns the paths."""
        from ...io.outputs import OutputPlan

        v = self.session.validation
        if v is None or not self.session.ready:
            raise CryodiagInputError("nothing to export: compute the FSC first")
        plan = OutputPlan(folder, overwrite=overwrite, formats=formats).protect(v.inputs.files)
        plan_exports(plan, views=VIEWS)
        plan.check()
        return v.export(plan, views=VIEWS, view_map=self.plots.view_map.value)
