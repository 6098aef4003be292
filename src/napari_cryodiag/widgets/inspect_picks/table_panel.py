"""Inspect Picks, Micrographs tab: one row per micrograph with everything known about it
(:meth:`~napari_cryodiag.compute.picks.pickset.PickSet.micrograph_statistics`: picks, kept, CTF
defocus, astigmatism, fit resolution and figure of merit, median scores raw and calibrated, the
kept fraction, and why a micrograph the exposure thresholds drop is dropped: those rows are drawn
in the dropped colour), sortable; a click shows that micrograph. Micrographs of the micrograph
table without picks are listed after the others. Picks whose micrograph names match no open
micrograph can be assigned to one (``assign_key`` → ``assign_to`` → Assign).

The table is a Qt model over arrays (10,000 micrographs fill in milliseconds); the kept counts,
kept fractions and dropped rows follow the thresholds a moment after they stop moving.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from ...compute.picks.exposures import statistic_label
from ...plots.exposures import DROPPED_COLOUR

__all__ = ["MicrographTablePanel", "MicrographModel"]

COLUMNS = ["micrograph", "defocus (Å)", "picks", "kept", "median x", "median y"]
#: the statistics' columns in the table, in this order (others after them)
STAT_ORDER = ("defocus_A", "n_picks", "kept", "astigmatism_A", "ctf_max_resolution_A", "ctf_figure_of_merit")
#: columns that follow the thresholds (updated without refilling the table)
LIVE = ("kept", "kept_fraction", "why")


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    f = float(v)
    if not np.isfinite(f):
        return ""
    return f"{f:,.0f}" if abs(f) >= 1e4 else f"{f:.4g}"  # defocus in Å: 14,235, not 1.424e+04


class MicrographModel(QAbstractTableModel):
    """Columns of per-micrograph arrays; sorting uses the numbers, not their text."""

    def __init__(self):
        super().__init__()
        self.names = np.zeros(0, dtype=object)
        self.values: list[np.ndarray] = []
        self.headers = list(COLUMNS)
        self.dropped = np.zeros(0, dtype=bool)  #: rows drawn in the dropped colour

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

    def set_dropped(self, dropped) -> None:
        d = np.zeros(len(self.names), dtype=bool) if dropped is None else np.asarray(dropped, dtype=bool)
        if d.shape == self.dropped.shape and np.array_equal(d, self.dropped):
            return
        self.dropped = d
        if len(self.names):
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.names) - 1, len(self.headers) - 1))

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
            if isinstance(v, str):
                return v
            f = float(v)
            return f if np.isfinite(f) else -np.inf
        if role == Qt.ItemDataRole.ForegroundRole and r < len(self.dropped) and self.dropped[r]:
            return QColor(DROPPED_COLOUR)
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
        self.view.horizontalHeader().setResizeContentsPrecision(200)
        self.view.setMinimumHeight(160)
        self.view.clicked.connect(self._on_clicked)
        self._code_to_stack = np.zeros(0, dtype=np.int64)  #: per row: the micrograph's slider position
        self.columns: list[str] = []  #: the statistic of each column after the name
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
        self._code_to_stack = self._stack_index_per_row(len(self.model.names))

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
            self.model.set_dropped(None)
            self.assign_box.visible = False
            return
        sel = s.selection if s.selection is not None else ps.evaluate()
        stats = ps.micrograph_statistics(sel)
        if "defocus_A" not in stats.columns:
            stats["defocus_A"] = np.nan
        if s.ctf is not None and not np.isfinite(stats["defocus_A"].to_numpy(np.float64)).any():
            stats["defocus_A"] = stats["micrograph"].astype(str).map(s.ctf["defocus_A"]).to_numpy(np.float64)
        cols = [c for c in STAT_ORDER if c in stats.columns]
        cols += [c for c in stats.columns if c not in cols and c not in ("micrograph", "keep", "why")]
        cols += ["why"] if "why" in stats.columns else []
        self.columns = cols
        headers = ["micrograph"] + [("dropped because" if c == "why" else statistic_label(c)) for c in cols]
        self.model.set_data(stats["micrograph"].to_numpy(dtype=object),
                            [stats[c].to_numpy(dtype=object if c == "why" else None) for c in cols], headers)
        self.model.set_dropped(~stats["keep"].to_numpy(dtype=bool) if "keep" in stats.columns else None)
        self.view.resizeColumnsToContents()  # (from the first rows: setResizeContentsPrecision)
        self._code_to_stack = self._stack_index_per_row(len(stats))
        self._fill_assign()
        self.select_current()

    def _stack_index_per_row(self, n_rows: int) -> np.ndarray:
        """Slider position of each row's micrograph (-1: not open): the pick set's micrographs by
        their picks, those without picks by name among the open micrographs."""
        s = self.session
        per_code = s.stack_index_per_code()
        out = np.full(n_rows, -1, dtype=np.int64)
        out[: len(per_code)] = per_code[:n_rows]
        ctrl = s.controller
        keys = [str(k) for k in getattr(ctrl, "keys", None) or []]
        if n_rows > len(per_code) and keys:
            index = {k: i for i, k in enumerate(keys)}
            for r in range(len(per_code), n_rows):
                out[r] = index.get(str(self.model.names[r]), -1)
        return out

    def update_kept(self):
        if self._stale or not self.shown:
            return
        s = self.session
        sel, ps = s.selection, s.pickset
        if sel is None or ps is None:
            return
        stats = ps.micrograph_statistics(sel)
        if len(stats) != len(self.model.names) or ("why" in stats.columns) != ("why" in self.columns):
            self._fill()  # exposure thresholds set or cleared: the 'dropped because' column comes or goes
            return
        for c in LIVE:
            if c in self.columns and c in stats.columns:
                self.model.set_column(self.columns.index(c) + 1, stats[c].to_numpy(dtype=object if c == "why" else None))
        if "n_picks" in self.columns:
            self.model.set_column(self.columns.index("n_picks") + 1, stats["n_picks"].to_numpy())
        self.model.set_dropped(~stats["keep"].to_numpy(dtype=bool) if "keep" in stats.columns else None)

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
        """Show the micrograph of row ``code`` (the pick set's micrograph code, or a micrograph of
        the micrograph table after them)."""
        ctrl = self.session.controller
        if len(self._code_to_stack) != len(self.model.names):
            self._code_to_stack = self._stack_index_per_row(len(self.model.names))
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

