"""The state of Classes, held once: the diagnostics of the last computation
(:class:`~napari_cryodiag.compute.particles.class_diagnostics.ClassDiagnostics`), the classes
selected for export, and the order the classes are shown in.

Signals (psygnal): ``result_changed()``, ``selection_changed()``, ``order_changed()``.
"""

from __future__ import annotations

import pandas as pd
from psygnal import Signal

from ...compute.particles.classes import sort_summary
from ...plots.classes import ESS_SHORT

__all__ = ["ClassesSession"]


class ClassesSession:
    result_changed = Signal()
    selection_changed = Signal()
    order_changed = Signal()

    def __init__(self):
        self.result = None
        self.selected: set[int] = set()
        self.sort_by = "count"
        self.source_name = ""

    def set_result(self, result, source_name: str = "") -> None:
        self.result = result
        self.source_name = source_name
        self.selected = set()
        self.result_changed.emit()
        self.selection_changed.emit()

    def set_selection(self, classes) -> None:
        sel = {int(c) for c in classes}
        if sel != self.selected:
            self.selected = sel
            self.selection_changed.emit()

    def toggle(self, cls: int) -> None:
        self.set_selection(self.selected ^ {int(cls)})

    def set_sort(self, sort_by: str) -> None:
        if sort_by != self.sort_by:
            self.sort_by = sort_by
            self.order_changed.emit()

    # ------------------------------------------------------------------ views of the result
    @property
    def ess_name(self) -> str:
        """What the ESS-like number is called (RELION: significant samples, "nSig")."""
        return ESS_SHORT.get(self.result.posterior.source, "ESS") if self.result is not None else "ESS"

    def sorted_summary(self) -> pd.DataFrame:
        return sort_summary(self.result.summary, self.sort_by)

    def n_selected_particles(self) -> int:
        if self.result is None or not self.selected:
            return 0
        s = self.result.summary
        return int(s.loc[s["class"].isin(self.selected), "count"].sum())

    def common_note(self) -> tuple[str, dict]:
        """``(note shared by every class, {class: its own note})`` of the FRC column."""
        s = self.result.summary
        if "frc_note" not in s:
            return "", {}
        notes = s["frc_note"].fillna("").astype(str)
        common = notes.mode().iloc[0] if len(notes) else ""
        if len(notes) > 1 and (notes == common).sum() < 2:
            common = ""  # no note is shared: each class keeps its own
        return common, {int(c): n for c, n in zip(s["class"], notes) if n and n != common}
