"""Classes, export: the particles of the selected classes to a STAR or ``.cs`` file (atomic, never
over an input), and the figures and numbers into a folder.

magicgui: ``selection_file`` (where the selected particles go), ``overwrite``, the Export and
Clear buttons, ``figures_folder`` and its button.
"""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import CheckBox, Container, FileEdit, PushButton

from ...errors import CryodiagInputError
from ...workflows.classes import export, plan_outputs, write_selection
from .._dock import note

__all__ = ["ClassExportPanel"]


class ClassExportPanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.selection_label = note("selected: none (click rows of the table)")
        self.selection_file = FileEdit(label="write to", mode="w", filter="RELION STAR (*.star);;cryoSPARC (*.cs)")
        self.overwrite = CheckBox(text="replace an existing file", value=False)
        self.export_button = PushButton(text="Export selected classes", enabled=False)
        self.clear_button = PushButton(text="Clear selection")
        self.figures_folder = FileEdit(label="figures to", mode="d")
        self.figures_button = PushButton(text="Save figures and numbers")
        self.container = Container(widgets=[
            self.selection_label, self.selection_file, self.overwrite,
            Container(widgets=[self.export_button, self.clear_button], layout="horizontal", labels=False),
            self.figures_folder, self.figures_button])
        dock.actions(self.figures_button)
        self.export_button.changed.connect(lambda *_: self._on_export())
        self.clear_button.changed.connect(lambda *_: session.set_selection([]))
        self.figures_button.changed.connect(lambda *_: self._on_figures())
        session.selection_changed.connect(self._show)

    def widgets(self):
        return [self.container]

    def _show(self):
        s = self.session
        if not s.selected or s.result is None:
            self.selection_label.value = "selected: none (click rows of the table)"
            self.export_button.enabled = False
            return
        self.selection_label.value = (f"selected: {len(s.selected)} classes ({', '.join(map(str, sorted(s.selected)))}), "
                                      f"{s.n_selected_particles():,} particles")
        self.export_button.enabled = True

    def _on_export(self):
        path = self.selection_file.value
        if not path or str(path) in ("", "."):
            self.dock.error("choose the file to write ('write to': .star or .cs)")
            return
        self.export_selected(path, overwrite=self.overwrite.value)

    def export_selected(self, path, overwrite: bool = False):
        """Write the particles of the selected classes to ``path``; returns the path (None on error)."""
        s = self.session
        if s.result is None or not s.selected:
            self.dock.error("select classes first (click their rows)")
            return None
        try:
            out, n = write_selection(s.result.table, sorted(s.selected), path, overwrite=overwrite)
        except CryodiagInputError as err:
            self.dock.error(err)
            return None
        self.dock.report(f"wrote {n:,} particles of classes {sorted(s.selected)} to {out}")
        return out

    def _on_figures(self):
        folder = self.figures_folder.value
        if not folder or str(folder) in ("", "."):
            self.dock.error("choose a folder ('figures to')")
            return
        try:
            paths = self.save_figures(folder, overwrite=self.overwrite.value)
        except CryodiagInputError as err:
            self.dock.error(err)
            return
        self.dock.report(f"wrote {len(paths)} files to {folder}")

    def save_figures(self, folder, fmt: str = "png", overwrite: bool = False) -> list[Path]:
        from ...io.outputs import OutputPlan

        r = self.session.result
        if r is None:
            raise CryodiagInputError("nothing to save: press Compute first")
        src = r.table.attrs.get("source")
        plan = OutputPlan(folder, overwrite=overwrite, formats=fmt).protect([src] if src else [])
        plan_outputs(plan)
        plan.check()
        return export(r, plan, sort_by=self.session.sort_by)
