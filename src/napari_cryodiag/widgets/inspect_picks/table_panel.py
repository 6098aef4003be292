"""Inspect Picks, Micrographs tab: one row per micrograph (name, defocus, picks, kept, median
scores), sortable; a click shows that micrograph. Picks whose micrograph names match no open
micrograph can be assigned to one (``assign_key`` → ``assign_to`` → Assign).

The table is a Qt model over arrays (10,000 micrographs fill in milliseconds); the kept column
follows the thresholds a moment after they stop moving.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableView

__all__ = ["MicrographTablePanel", "MicrographModel"]

COLUMNS = ["micrograph", "defocus (Å)", "picks", "kept", "median x", "median y"]


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    f = float(v)
    return "" if not np.isfinite(f) else f"{f:.4g}"


class MicrographModel(QAbstractTableModel):
    """Columns of per-micrograph arrays; sorting uses the numbers, not their text."""

    def __init__(self):
        super().__init__()
        self.names = np.zeros(0, dtype=object)
        self.values: list[np.ndarray] = []
        self.headers = list(COLUMNS)

    def set_data(self, names, values: list[np.ndarray], headers=None) -> None:
        self.beginResetModel()
        self.names = np.asarray(names, dtype=object)
        self.values = [np.asarray(v) for v in values]
        if headers is not None:
            self.headers = list(headers)
        self.endResetModel()

    def set_column(self, j: int, values) -> None:
        self.values[j - 1] = np.asarray(values)
        if len(self.names):
            self.dataChanged.emit(self.index(0, j), self.index(len(self.names) - 1, j))

    def rowCount(self, parent=QModelIndex()):  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.names)

    def columnCount(self, parent=QModelIndex()):  # noqa: N802
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return str(self.names[r]) if c == 0 else _fmt(self.values[c - 1][r])
        if role == Qt.ItemDataRole.UserRole:  # sort key
            if c == 0:
                return str(self.names[r])
            v = self.values[c - 1][r]
            f = float(v)
            return f if np.isfinite(f) else -np.inf
        if role == Qt.ItemDataRole.TextAlignmentRole and c > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return None


class MicrographTablePanel:
    """The Micrographs tab (see the module docstring)."""

    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.shown = False  #: its tab is the current one (the dock sets it)
        self.model = MicrographModel()
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.setMinimumHeight(160)
        self.view.clicked.connect(self._on_clicked)
        self._code_to_stack = np.zeros(0, dtype=np.int64)
        self._stale = True

        self.assign_key = ComboBox(label="picks named", choices=[])
        self.assign_to = ComboBox(label="are on", choices=[])
        self.assign_button = PushButton(text="Assign")
        self.assign_note = Label(value="")
        self.assign_note.native.setWordWrap(True)
        self.assign_box = Container(widgets=[self.assign_note, self.assign_key, self.assign_to, self.assign_button],
                                    visible=False)
        self.assign_button.changed.connect(self.assign)

        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.update_kept)
        session.layer_changed.connect(self.fill)
        session.view_changed.connect(self.fill)
        session.rows_changed.connect(lambda *_: self.fill())
        session.selection_changed.connect(lambda *_: self._timer.start())
        session.micrograph_changed.connect(self.select_current)
        session.layer_changed.connect(self._codes_for_navigation)

    def _codes_for_navigation(self, *_):
        self._code_to_stack = self.session.stack_index_per_code()

    def widgets(self):
        return [self.view, self.assign_box]

    # ------------------------------------------------------------------ filling
    def fill(self, *_):
        """Fill the table now when it is shown, else when it is next shown (``show``)."""
        if not self.shown:
            self._stale = True
            return
        self._fill()

    def show(self) -> None:
        """The tab is shown: bring the table up to date."""
        if self._stale:
            self._fill()
        else:
            self.update_kept()

    def _fill(self):
        self._stale = False
        s = self.session
        ps = s.pickset
        if ps is None:
            self.model.set_data([], [np.zeros(0)] * 5)
            self.assign_box.visible = False
            return
        sel = s.selection if s.selection is not None else ps.evaluate()
        insp = ps.inspection
        n = len(ps.names)
        codes = ps.codes
        active = ~ps.removed
        t = ps.table
        if insp is not None:
            x, y = insp.x, insp.y
        else:
            x = y = np.full(len(t), np.nan)
        med_x = _group_median(codes[active], x[active], n)
        med_y = _group_median(codes[active], y[active], n) if insp is not None and not insp.one_d else np.full(n, np.nan)
        if "defocus_A" in t.columns:
            defocus = _group_median(codes, t["defocus_A"].to_numpy(dtype=np.float64), n)
        elif s.ctf is not None:
            defocus = np.array([s.ctf["defocus_A"].get(str(k), np.nan) for k in ps.names], dtype=np.float64)
        else:
            defocus = np.full(n, np.nan)
        xf = insp.x_feature if insp is not None else "x"
        yf = insp.y_feature if insp is not None and not insp.one_d else "y"
        headers = ["micrograph", "defocus (Å)", "picks", "kept", f"median {xf}", f"median {yf}"]
        self.model.set_data(ps.names, [defocus, sel.total_per_micrograph, sel.kept_per_micrograph, med_x, med_y],
                            headers)
        self.view.resizeColumnToContents(0)
        self._code_to_stack = s.stack_index_per_code()
        self._fill_assign()
        self.select_current()

    def update_kept(self):
        if self._stale or not self.shown:
            return
        sel = self.session.selection
        if sel is None or len(sel.kept_per_micrograph) != len(self.model.names):
            return
        self.model.set_column(3, sel.kept_per_micrograph)
        self.model.set_column(2, sel.total_per_micrograph)

    def _fill_assign(self):
        ctrl = self.session.controller
        img = self.session.micrograph_layer()
        unmatched = ctrl.unmatched_keys() if ctrl is not None else []
        if not unmatched or img is None:
            self.assign_box.visible = False
            return
        names = [str(k) for k in ctrl.keys]
        self.assign_key.choices = unmatched
        self.assign_to.choices = [(f"{i}: {k}", i) for i, k in enumerate(names)]
        n = sum(ctrl.report["unmatched_micrographs"].get(k, 0) for k in unmatched)
        self.assign_note.value = (f"{n:,} picks on {len(unmatched)} micrograph names that match no open "
                                  f"micrograph of {img.name}: assign them to one")
        self.assign_box.visible = True

    def assign(self, *_):
        ctrl = self.session.controller
        key, idx = self.assign_key.value, self.assign_to.value
        if ctrl is None or key is None or idx is None:
            return
        ctrl.assign(key, idx)
        self.dock.report(f"picks of {key} placed on micrograph {idx} ({ctrl.key_of_index(idx)})")
        self.fill()
        ctrl.show_micrograph(idx)

    # ------------------------------------------------------------------ navigation
    def _on_clicked(self, index):
        src = self.proxy.mapToSource(index)
        code = src.row()
        self.show_code(code)

    def show_code(self, code: int) -> None:
        ctrl = self.session.controller
        if len(self._code_to_stack) != len(getattr(self.session.pickset, "names", ())):
            self._code_to_stack = self.session.stack_index_per_code()
        idx = int(self._code_to_stack[code]) if 0 <= code < len(self._code_to_stack) else -1
        if idx < 0 or ctrl is None:
            self.dock.report(f"micrograph {self.model.names[code]} is not open in the viewer", "warning")
            return
        ctrl.show_micrograph(idx)

    def select_current(self, *_):
        s = self.session
        i = s.current_index()
        if i is None:
            return
        codes = np.flatnonzero(self._code_to_stack == i)
        if codes.size == 0:
            return
        src = self.model.index(int(codes[0]), 0)
        view_index = self.proxy.mapFromSource(src)
        sm = self.view.selectionModel()
        if sm is not None and view_index.isValid():
            self.view.blockSignals(True)
            self.view.selectRow(view_index.row())
            self.view.scrollTo(view_index)
            self.view.blockSignals(False)


def _group_median(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """NaN-ignoring median of ``values`` per code (0..n-1)."""
    import pandas as pd

    med = pd.Series(values).groupby(codes).median()
    return med.reindex(range(n)).to_numpy(dtype=np.float64)
