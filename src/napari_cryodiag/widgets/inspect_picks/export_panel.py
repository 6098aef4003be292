"""Inspect Picks, Export tab: write the kept picks (RELION STAR or cryoSPARC .cs).

magicgui: the duplicate search (:class:`~napari_cryodiag.workflows.picks.DedupeOptions`), the
destination (``path``, a file picker; the suffix chooses the format), ``rejected`` (also write
the left-out picks), ``overwrite``; a pixel size and the micrograph size appear when nothing open
gives them and the export needs them. The summary says how many picks will be written, how many
are left out, and why, before anything is written. The same writer serves File > Save
(:func:`napari_cryodiag.workflows.picks.write_selection`): the same files and the same side JSON.
A session file records the pick files, the settings and the hand edits, for
``cryodiag picks --session``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from magicgui.widgets import CheckBox, Container, FileEdit, FloatSpinBox, Label, PushButton, SpinBox

from ...errors import CryodiagInputError
from ...workflows.picks import DedupeOptions, micrograph_subset_path, save_session, write_selection
from .._forms import options_form
from .._layers import micrograph_refs

__all__ = ["ExportPanel", "export_settings"]


def export_settings(session, dedupe: DedupeOptions | None = None) -> dict:
    """The side JSON's settings: source, axes, units, thresholds, calibration, duplicates."""
    ps = session.pickset
    insp = ps.inspection
    out = {"source": ps.table.attrs.get("source"), "sources": list(ps.table.attrs.get("sources") or [])}
    if insp is not None:
        rep = insp.report()
        out.update({k: rep[k] for k in ("x_feature", "y_feature", "x_units", "y_units", "thresholds",
                                        "calibration", "calibration_errors")})
    out["calibration_options"] = asdict(session.calibration)
    if ps.exposure_thresholds.active:
        out["exposure_thresholds"] = ps.exposure_thresholds.to_dict()
    if dedupe is not None:
        out["duplicates_options"] = asdict(dedupe)
    return out


class ExportPanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.shown = False  #: its tab is the current one (the dock sets it)
        self.dedupe = options_form(DedupeOptions)
        self.path = FileEdit(label="write to", mode="w", filter="*.star *.cs",
                             tooltip="the suffix chooses the format: .star (RELION 3.1) or .cs (cryoSPARC)")
        self.rejected = CheckBox(text="also write the left-out picks", value=False,
                                 tooltip="the picks the thresholds or the duplicate removal leave out, to "
                                         "<name>_rejected.<suffix> (picks deleted by hand are in neither file)")
        self.micrographs = CheckBox(text="also write the kept micrographs", value=True, visible=False,
                                    tooltip="the kept micrographs' rows of the micrograph table beside the picks: "
                                            "<name>_micrographs.star (RELION, optics kept) or <name>_exposures.cs "
                                            "(cryoSPARC, every field kept)")
        self.overwrite = CheckBox(text="replace existing files", value=False,
                                  tooltip="an earlier export may be replaced; an input file never is")
        self.pixel_size_A = FloatSpinBox(label="pixel size (Å)", value=0.0, min=0.0, max=100.0, step=0.01,
                                         visible=False, tooltip="nothing open gives the micrograph pixel size")
        self.micrograph_ny = SpinBox(label="micrograph rows (ny)", value=0, min=0, max=100_000, visible=False)
        self.micrograph_nx = SpinBox(label="micrograph columns (nx)", value=0, min=0, max=100_000, visible=False)
        self.summary = Label(value="")
        self.summary.native.setWordWrap(True)
        self.count_button = PushButton(text="Count duplicates")
        self.export_button = PushButton(text="Export kept picks")
        self.session_path = FileEdit(label="session", mode="w", filter="*.json")
        self.session_button = PushButton(text="Save session")
        self.form = Container(widgets=[self.dedupe, self.pixel_size_A, self.path, self.rejected, self.micrographs,
                                       self.overwrite,
                                       self.micrograph_ny, self.micrograph_nx])
        self.buttons = Container(widgets=[self.count_button, self.export_button], layout="horizontal", labels=False)
        self.session_box = Container(widgets=[self.session_path, self.session_button])
        dock.actions(self.export_button)
        self.count_button.changed.connect(lambda *_: self.update_summary(dedupe=True))
        self.export_button.changed.connect(lambda *_: self.export_to_path())
        self.session_button.changed.connect(lambda *_: self.save_session())
        self.path.changed.connect(lambda *_: self._needs())
        self.dedupe.changed_value.connect(lambda *_: self._needs())
        session.selection_changed.connect(lambda *_: self.update_summary())
        session.layer_changed.connect(lambda *_: self._needs())
        session.view_changed.connect(lambda *_: self._needs())

    def show(self) -> None:
        """The tab is shown: what would be written, now."""
        self.update_summary()

    def widgets(self):
        return [self.form, self.buttons, self.summary, Label(value="<b>session</b> (for cryodiag picks --session)"),
                self.session_box]

    # ------------------------------------------------------------------ what is needed
    def _needs(self):
        s = self.session
        known_apix = s.pixel_size_A() is not None
        self.pixel_size_A.visible = self.dedupe.value.distance_A > 0 and not known_apix
        p = str(self.path.value or "")
        need_shape = p.lower().endswith(".cs") and s.micrograph_shape() is None and not (
            s.pickset is not None and s.pickset.table.attrs.get("format") == "cs")
        self.micrograph_ny.visible = self.micrograph_nx.visible = need_shape
        self.micrographs.visible = s.pickset is not None and s.pickset.exposures is not None
        self.update_summary()

    def _pixel_size(self):
        v = float(self.pixel_size_A.value)
        return self.session.pixel_size_A(v if v > 0 else None)

    def _shape(self):
        sh = self.session.micrograph_shape()
        if sh is None and self.micrograph_ny.value > 0 and self.micrograph_nx.value > 0:
            sh = (int(self.micrograph_ny.value), int(self.micrograph_nx.value))
        return sh

    def selection(self, dedupe: bool = True):
        s = self.session
        ps = s.pickset
        d = self.dedupe.value
        if not dedupe or not d.distance_A:
            return ps.evaluate()
        apix = self._pixel_size()
        if apix is None:
            raise CryodiagInputError("removing duplicates within a distance in Å needs the micrograph pixel size: "
                                     "enter it under 'pixel size (Å)'", ps.source)
        return ps.selection(dedupe_A=d.distance_A, dedupe_keep=d.keep, pixel_size_A=apix)

    def update_summary(self, dedupe: bool = False):
        s = self.session
        if s.pickset is None:
            self.summary.value = "no picks layer"
            return
        if not dedupe and not self.shown:
            return  # the Export tab is not shown: summarised when it is (show)
        try:
            sel = s.selection if (not dedupe and s.selection is not None) else self.selection(dedupe=dedupe)
        except CryodiagInputError as err:
            self.summary.value = str(err.problem if hasattr(err, "problem") else err)
            return
        text = "will write " + sel.explain()
        if not dedupe and self.dedupe.value.distance_A:
            text += f" (duplicates within {self.dedupe.value.distance_A:g} Å are removed when writing)"
        if self._writes_micrographs():
            ex = sel.exposures
            n = ex.n_kept if ex is not None else len(s.pickset.exposures)
            text += f"; and the {n:,} kept micrographs"
        self.summary.value = text

    def _writes_micrographs(self) -> bool:
        ps = self.session.pickset
        return bool(self.micrographs.value) and ps is not None and ps.exposures is not None

    # ------------------------------------------------------------------ writing
    def export_to_path(self):
        p = self.path.value
        if not p or str(p) in ("", "."):
            self.dock.report("choose the file to write (write to …)", "warning")
            return []
        return self.export(p, rejected=self.rejected.value, overwrite=self.overwrite.value)

    def export(self, path, *, rejected: bool = False, overwrite: bool = False) -> list[Path]:
        """Write the kept picks to ``path`` (.star or .cs), the left-out ones when asked, and the
        settings beside each; returns the written files (none when refused, with the reason)."""
        s = self.session
        if s.pickset is None:
            self.dock.report("choose a picks layer first", "warning")
            return []
        try:
            sel = self.selection(dedupe=True)
            subset = self._writes_micrographs() and micrograph_subset_path(s.pickset, path) is not None
            files, sel = write_selection(s.pickset, path, selection=sel, rejected=rejected, overwrite=overwrite,
                                         micrographs=micrograph_refs(s.micrograph_layer()),
                                         micrograph_shape=self._shape(),
                                         settings=export_settings(s, self.dedupe.value), micrograph_subset=subset)
        except CryodiagInputError as err:
            self.dock.error(err)
            return []
        if s.layer is not None:  # File > Save writes the same selection
            s.layer.metadata["cryodiag"]["export_options"] = asdict(self.dedupe.value)
        msg = f"wrote {sel.n_kept:,} picks to {Path(path).name}; " + sel.explain().split("; ", 1)[-1] \
            if sel.n_left_out or sel.n_removed_by_hand else f"wrote all {sel.n_kept:,} picks to {Path(path).name}"
        written = list(files.files)
        self.summary.value = msg + " (" + ", ".join(Path(p).name for p in written) + ")"
        if files.notes:  # what the user should act on, e.g. names not found among the micrographs
            msg += "\n" + "\n".join(files.notes)
        self.dock.report(msg, "warning" if files.notes else "info")
        return written

    def save_session(self, path=None):
        s = self.session
        path = path or self.session_path.value
        if s.pickset is None or not path or str(path) in ("", "."):
            self.dock.report("choose a picks layer and the session file", "warning")
            return None
        from .._layers import meta

        md = meta(s.layer)
        sources = md.get("paths") or [md.get("path")]
        try:
            out = save_session(path, s.pickset, sources=[p for p in sources if p], ctf=None,
                               calibration=s.calibration, dedupe=self.dedupe.value, overwrite=self.overwrite.value)
        except CryodiagInputError as err:
            self.dock.error(err)
            return None
        self.dock.report(f"session saved to {out}")
        return out
