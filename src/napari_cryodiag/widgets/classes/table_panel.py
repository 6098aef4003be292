"""Classes, the class table: one row per class with its average as a thumbnail large enough to
judge it (at least 96 px: a 100-px average is shown at its own size), the particle count and
fraction, the FRC resolution at 0.5 (when there is one), the median ESS (RELION: significant
samples, "nSig") and the mean best-class probability (RELION: "pMax"). Every row is reachable (the table scrolls), a header click sorts it,
and a click on a row selects or unselects that class for export. A note shared by every class
(e.g. why there is no FRC) is said once above the table, not in every row.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QElapsedTimer, QEvent, QObject, QSize, Qt
from qtpy.QtGui import QIcon, QImage, QPixmap
from qtpy.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QTableWidget, QTableWidgetItem

from .._dock import note

__all__ = ["ClassTablePanel", "thumbnail", "THUMB_MIN_PX"]

#: smallest thumbnail side (px); larger averages are shown at their size up to THUMB_MAX_PX
THUMB_MIN_PX = 96
THUMB_MAX_PX = 128


def thumbnail(img: np.ndarray, size: int) -> QPixmap:
    """A grey ``size``-px pixmap of ``img`` (1-99.5 % percentile contrast)."""
    a = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(a, [1, 99.5]) if a.size else (0.0, 1.0)
    u8 = np.ascontiguousarray(np.clip((a - lo) / ((hi - lo) or 1.0) * 255.0, 0, 255).astype(np.uint8))
    h, w = u8.shape
    qimg = QImage(u8.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation)


def _item(value, fmt: str = "{:.4g}") -> QTableWidgetItem:
    """A read-only item that sorts numerically (empty for NaN)."""
    it = QTableWidgetItem()
    if isinstance(value, str):
        it.setData(Qt.ItemDataRole.DisplayRole, value)
    elif value is None or (isinstance(value, float) and not np.isfinite(value)):
        it.setData(Qt.ItemDataRole.DisplayRole, "")
    elif isinstance(value, (int, np.integer)):
        it.setData(Qt.ItemDataRole.DisplayRole, int(value))
    else:
        it.setData(Qt.ItemDataRole.DisplayRole, float(fmt.format(float(value))))
    it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return it


class _PressWatcher(QObject):
    """Event filter of the table's viewport: the class selection as it was before the first press
    of a click (read by a double click, whose presses toggle the row once under Qt 5 and twice
    under Qt 6)."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.before = set(session.selected)
        self._since = QElapsedTimer()

    def eventFilter(self, obj, event):  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.MouseButtonPress:
            if not self._since.isValid() or self._since.elapsed() > QApplication.doubleClickInterval():
                self.before = set(self.session.selected)  # a first press (not a double click's second)
            self._since.start()
        return False


class ClassTablePanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.note = note()
        self.view = QTableWidget(0, 0)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # a click selects or unselects one class (no modifier keys needed)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.verticalHeader().setVisible(False)
        self.view.setMinimumHeight(2 * THUMB_MIN_PX + 30)
        self.view.itemSelectionChanged.connect(self._on_rows_selected)
        self.view.cellDoubleClicked.connect(self._on_double_click)
        self._presses = _PressWatcher(session, self.view)
        self.view.viewport().installEventFilter(self._presses)
        self.view.setToolTip("click a class to select it for export (click again to unselect); "
                             "double-click to show it in the viewer")
        self._filling = False
        self.thumb_px = THUMB_MIN_PX
        session.result_changed.connect(self.fill)
        session.selection_changed.connect(self._show_selection)
        session.order_changed.connect(self._sort)

    def widgets(self):
        return [self.note, self.view]

    # ------------------------------------------------------------------ content
    def columns(self) -> list[str]:
        """Short headers (the dock is narrow): the FRC column only when some class has an FRC
        resolution, the note column only when classes have notes of their own."""
        ess = self.session.ess_name
        r = self.session.result
        has_frc = r is not None and "frc_resolution_A" in r.summary and r.summary["frc_resolution_A"].notna().any()
        cols = ["class", "count", "%"] + (["FRC Å"] if has_frc else []) + [
            ess, "pMax" if ess != "ESS" else "best p"]
        if r is not None and self.session.common_note()[1]:
            cols.append("note")
        return cols

    def fill(self) -> None:
        r = self.session.result
        self._filling = True
        self.view.setSortingEnabled(False)
        self.view.clearSelection()
        try:
            if r is None:
                self.view.setRowCount(0)
                self.note.value = ""
                return
            cols = self.columns()
            common, own = self.session.common_note()
            self.note.value = f"FRC: {common}" if common else ""
            n = int(r.averages.shape[-1]) if r.averages is not None else THUMB_MIN_PX
            self.thumb_px = int(min(max(n, THUMB_MIN_PX), THUMB_MAX_PX))
            self.view.setColumnCount(len(cols))
            self.view.setHorizontalHeaderLabels(cols)
            self.view.setIconSize(QSize(self.thumb_px, self.thumb_px))
            s = self.session.sorted_summary()  # the order of the layer; a header click re-sorts
            self.view.setRowCount(len(s))
            for row, (_, rec) in enumerate(s.iterrows()):
                cls = int(rec["class"])
                first = _item(cls)
                img = r.average_for(cls) if r.averages is not None else None
                if img is not None:
                    pix = thumbnail(img, self.thumb_px)
                    icon = QIcon(pix)
                    icon.addPixmap(pix, QIcon.Mode.Selected)  # a selected class is not tinted: it stays judgeable
                    first.setData(Qt.ItemDataRole.DecorationRole, icon)
                vals = [first, _item(int(rec["count"])), _item(100.0 * float(rec["fraction"]), "{:.3g}")]
                if "FRC Å" in cols:
                    vals.append(_item(float(rec.get("frc_resolution_A", np.nan)), "{:.3g}"))
                vals += [_item(float(rec.get("median_ess", np.nan)), "{:.3g}"),
                         _item(float(rec.get("mean_best_prob", np.nan)), "{:.3g}")]
                if "note" in cols:
                    vals.append(_item(own.get(cls, "")))
                for c, it in enumerate(vals):
                    self.view.setItem(row, c, it)
                self.view.setRowHeight(row, self.thumb_px + 6)
            hdr = self.view.horizontalHeader()
            hdr.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            self.view.setColumnWidth(0, self.thumb_px + 48)
            hdr.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        finally:
            # header clicks sort; enabling it must not re-sort what was filled in order
            self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
            self.view.setSortingEnabled(True)
            self._filling = False
        self._show_selection()

    def classes_in_order(self) -> list[int]:
        """The classes as the table shows them, top to bottom."""
        out = []
        for row in range(self.view.rowCount()):
            it = self.view.item(row, 0)
            if it is not None:
                out.append(int(it.data(Qt.ItemDataRole.DisplayRole)))
        return out

    def _sort(self) -> None:
        self.fill()

    # ------------------------------------------------------------------ selection
    def _on_rows_selected(self):
        if self._filling:
            return
        rows = {i.row() for i in self.view.selectedIndexes()}
        sel = {int(self.view.item(r, 0).data(Qt.ItemDataRole.DisplayRole)) for r in rows if self.view.item(r, 0)}
        self.session.set_selection(sel)

    def _show_selection(self):
        self._filling = True
        try:
            self.view.clearSelection()
            for row in range(self.view.rowCount()):
                it = self.view.item(row, 0)
                if it is not None and int(it.data(Qt.ItemDataRole.DisplayRole)) in self.session.selected:
                    self.view.selectRow(row)
        finally:
            self._filling = False

    def _class_at(self, row: int) -> int | None:
        it = self.view.item(row, 0)
        return None if it is None else int(it.data(Qt.ItemDataRole.DisplayRole))

    def _on_double_click(self, row: int, _column: int) -> None:
        """Show the class in the viewer; the selection goes back to what it was before the double
        click (its presses toggled the row), so that a double click only shows the class."""
        cls = self._class_at(row)
        if cls is None:
            return
        self.session.set_selection(self._presses.before)
        self.dock.layer_panel.show_class(cls)

    def click_class(self, cls: int) -> None:
        """What a click on the row of class ``cls`` does (select it, or unselect it)."""
        for row in range(self.view.rowCount()):
            it = self.view.item(row, 0)
            if it is not None and int(it.data(Qt.ItemDataRole.DisplayRole)) == int(cls):
                self.view.selectionModel().select(
                    self.view.model().index(row, 0),
                    self.view.selectionModel().SelectionFlag.Toggle | self.view.selectionModel().SelectionFlag.Rows)
                return
        raise KeyError(f"no class {cls} in the table")
