"""The state of Inspect Picks, held once: the picks layer, its controller and pick set, the CTF
table, and the current selection. The panels read it and change it through its methods; its
signals tell them what to redraw.

Signals (psygnal):

- ``layer_changed()``: another picks layer (or none), or a new pick set on it (rescored);
- ``view_changed()``: axes, calibration, bins or log scale changed (a new histogram);
- ``selection_changed()``: thresholds or hand edits changed what is kept (``selection``);
- ``rows_changed(kind, rows)``: picks deleted / added / moved by hand;
- ``micrograph_changed(index)``: the micrograph slider moved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from psygnal import Signal

from ...compute.picks.pickset import PickSet, Selection
from ...compute.picks.thresholds import Thresholds
from ...errors import CryodiagInputError
from ...workflows.picks import CalibrationOptions, defocus_per_micrograph
from .._layers import is_picks, meta, pixel_size_A
from .._tables import tables_of
from ..picks_layer import auto_bins, get_picks_controller, link_viewer, pickset_of

__all__ = ["PickSession"]


class PickSession:
    """What Inspect Picks inspects (see the module docstring)."""

    layer_changed = Signal()
    view_changed = Signal()
    selection_changed = Signal()
    rows_changed = Signal(str, object)
    micrograph_changed = Signal(int)

    def __init__(self, viewer):
        self.viewer = viewer
        self.layer = None
        self.controller = None
        self.pickset: PickSet | None = None
        self.selection: Selection | None = None
        self.ctf: pd.DataFrame | None = None  #: per-micrograph CTF values (index: micrograph key)
        self.ctf_source = ""
        self.exposures_source = ""  #: the open micrograph table the pick set's micrographs are curated with
        self.calibration = CalibrationOptions()
        self.bins = 0  #: 0 = automatic
        self._own_pixel_size = None  #: (pick set, table, (rows, version), the picks' own pixel size)
        self.notes: list[str] = []

    # ------------------------------------------------------------------ layer
    def set_layer(self, layer) -> None:
        """Inspect the picks of ``layer`` (a picks layer), or nothing (None)."""
        if self.controller is not None:
            for lst, cb in ((self.controller.on_micrograph_changed, self._on_micrograph),
                            (self.controller.on_edit, self._on_edit)):
                if cb in lst:
                    lst.remove(cb)
        self.layer = layer if layer is not None and is_picks(layer) else None
        self.controller = None
        self.pickset = None
        self.selection = None
        self.notes = []
        if self.layer is not None:
            link_viewer(self.viewer)
            self.pickset = pickset_of(self.layer)
            self.controller = get_picks_controller(self.layer)
            if self.controller is not None:
                self.controller.on_micrograph_changed.append(self._on_micrograph)
                self.controller.on_edit.append(self._on_edit)
            self._attach_ctf()
            self._attach_exposures()
            self._configure_new_set()
        self.layer_changed.emit()
        self.apply()

    def _configure_new_set(self) -> None:
        """A new set: the session's calibration and defocus go to its view."""
        ps = self.pickset
        if ps is None or ps.inspection is None:
            return
        insp = ps.inspection
        defocus = None
        if self.ctf is not None and "defocus_A" not in ps.table.columns:
            defocus = self.ctf["defocus_A"]
        if defocus is not None and insp.defocus is None:
            insp.defocus = pd.Series(defocus, dtype=np.float64)
            insp.defocus.index = insp.defocus.index.astype(str)
        c = self.calibration
        if (c.calibrate_x, c.calibrate_y) != (insp._want_cal["x"], insp._want_cal["y"]) or defocus is not None:
            self.configure(calibration=c, emit=False)

    def _attach_ctf(self) -> None:
        """Defocus per micrograph from an open CTF table, or another table with defocus."""
        self.ctf, self.ctf_source = None, ""
        if self.pickset is None or "defocus_A" in self.pickset.table.columns:
            return
        for item in tables_of(self.viewer).of_kind("ctf", "particles"):
            t = item.table
            if isinstance(t, pd.DataFrame) and "micrograph" in t.columns and "defocus_A" in t.columns:
                self.ctf, self.ctf_source = defocus_per_micrograph(t), item.name
                return
        for ly in self.viewer.layers:
            t = meta(ly).get("table") if ly is not self.layer else None
            if isinstance(t, pd.DataFrame) and "micrograph" in t.columns and "defocus_A" in t.columns:
                self.ctf, self.ctf_source = defocus_per_micrograph(t), ly.name
                return

    def _attach_exposures(self) -> bool:
        """The micrograph table of the pick set (an open CTF table: RELION micrographs STAR,
        cryoSPARC exposures): its CTF statistics for curating exposures, its rows for the micrograph
        subset an export writes. Returns whether one was attached now."""
        ps = self.pickset
        if ps is None or ps.exposures is not None:
            return False
        keys = set(map(str, ps.names))
        for item in tables_of(self.viewer).of_kind("ctf"):
            t = item.table
            if isinstance(t, pd.DataFrame) and "micrograph" in t.columns and \
                    not keys.isdisjoint(t["micrograph"].astype(str)):
                ps.set_exposures(t)
                self.exposures_source = item.name
                return True
        return False

    def set_exposure_thresholds(self, thresholds) -> None:
        """Replace the thresholds on the micrograph statistics (dropping whole micrographs) and
        apply; a statistic the micrographs do not have, or min above max, is refused."""
        if self.pickset is None:
            return
        self.pickset.set_exposure_thresholds(thresholds)
        self.apply()

    def tables_changed(self) -> None:
        """A table was opened: a CTF table makes calibration possible for picks without defocus."""
        if self._attach_exposures():
            self.view_changed.emit()
            self.apply()
        if self.pickset is not None and self.ctf is None and "defocus_A" not in self.pickset.table.columns:
            self._attach_ctf()
            if self.ctf is not None:
                self._configure_new_set()
                self.view_changed.emit()
                self.apply()

    def set_pickset(self, pickset: PickSet) -> None:
        """A new pick set on the same layer (rescored picks)."""
        if self.controller is not None:
            self.controller.set_pickset(pickset)
        elif self.layer is not None:
            self.layer.metadata["cryodiag"]["pickset"] = pickset
            self.layer.metadata["cryodiag"]["table"] = pickset.table
        old = self.pickset
        if old is not None and old is not pickset and pickset.exposures is None:  # the curation goes on
            pickset.set_exposures(old.exposures)
            pickset.exposure_thresholds = old.exposure_thresholds
        self.pickset = pickset
        self._configure_new_set()
        self.layer_changed.emit()
        self.apply()

    # ------------------------------------------------------------------ view
    @property
    def inspection(self):
        return None if self.pickset is None else self.pickset.inspection

    def configure(self, *, x_feature=None, y_feature="keep", calibration: CalibrationOptions | None = None,
                  log_y="keep", bins: int | None = None, keep_thresholds: bool = False, emit: bool = True) -> None:
        """Change axes / calibration / bins / log scale and rebuild the view."""
        insp = self.inspection
        if insp is None:
            return
        if calibration is not None:
            self.calibration = calibration
        c = self.calibration
        if bins is not None:
            self.bins = int(bins)
        b = self.bins_for(len(insp.table))
        insp.configure(x_feature=x_feature, y_feature=y_feature, calibrate_x=c.calibrate_x,
                       calibrate_y=c.calibrate_y, mode=c.mode, method=c.method, scale=c.scale, log_y=log_y,
                       bins=b, keep_thresholds=keep_thresholds)
        if emit:
            self.view_changed.emit()
            self.apply()

    def bins_for(self, n: int) -> int:
        """Bins per axis: the chosen number, or auto = sqrt(n)/1.5 within [20, 100]."""
        return self.bins if self.bins > 0 else auto_bins(n)

    # ------------------------------------------------------------------ thresholds
    @property
    def thresholds(self) -> Thresholds | None:
        return None if self.inspection is None else self.inspection.thresholds

    def set_thresholds(self, t: Thresholds) -> None:
        """Replace the thresholds (units of the current view); inconsistent ones are refused."""
        insp = self.inspection
        if insp is None:
            return
        t.x_feature, t.y_feature = insp.x_feature, insp.y_feature
        t.x_units, t.y_units = insp.x_units, insp.y_units
        t.check(self.layer.name if self.layer is not None else None)
        insp.thresholds = t
        self.apply()

    def set_threshold(self, name: str, value: float | None) -> None:
        """Set one of ``x_min``, ``x_max``, ``y_min``, ``y_max`` (None: no cut) and apply; a value
        that would put a min above its max is refused with a message."""
        insp = self.inspection
        if insp is None:
            return
        t = insp.thresholds
        old = getattr(t, name)
        setattr(t, name, None if value is None else float(value))
        bad = t.problems()
        if bad:
            setattr(t, name, old)
            raise CryodiagInputError("inconsistent thresholds: " + "; ".join(bad))
        t.method = "manual"
        self.apply()

    def set_polygon(self, vertices) -> None:
        insp = self.inspection
        if insp is None:
            return
        t = insp.thresholds
        if vertices is None or len(vertices) < 3:
            t.polygon = None
        else:
            t.polygon = [(float(a), float(b)) for a, b in vertices]
            t.polygon_log_x = bool(insp.hist.log_x)
            t.polygon_log_y = bool(insp.hist.log_y)
        self.apply()

    def suggested(self) -> Thresholds | None:
        """The suggested thresholds (a proposal: :meth:`set_thresholds` applies it)."""
        insp = self.inspection
        if insp is None:
            return None
        t = insp.suggest()
        t.polygon, t.polygon_log_x, t.polygon_log_y = (insp.thresholds.polygon, insp.thresholds.polygon_log_x,
                                                       insp.thresholds.polygon_log_y)
        return t

    def apply(self) -> None:
        """Evaluate thresholds and edits; show kept/rejected picks on the micrograph."""
        if self.pickset is None:
            self.selection = None
            self.selection_changed.emit()
            return
        self.selection = self.pickset.evaluate()
        if self.controller is not None:
            self.controller.set_kept(self.selection.kept)
        self.selection_changed.emit()

    # ------------------------------------------------------------------ micrographs
    def current_index(self) -> int | None:
        return None if self.controller is None else self.controller.current_index()

    def rows_of_shown(self) -> np.ndarray:
        if self.controller is None:
            return np.zeros(0, dtype=np.int64)
        return self.controller.rows_of(self.controller.current_index())

    def stack_index_per_code(self) -> np.ndarray:
        """Stack index (slider position) of each micrograph code of the pick set; -1 when not open."""
        ps = self.pickset
        if ps is None:
            return np.zeros(0, dtype=np.int64)
        n = len(ps.names)
        out = np.full(n, -1, dtype=np.int64)
        mor = getattr(self.controller, "micrograph_of_row", None)
        if mor is None:
            return out
        mor = np.asarray(mor)
        codes = ps.codes
        m = min(len(mor), len(codes))
        first = np.full(n, -1, dtype=np.int64)
        order = np.arange(m)[::-1]
        first[codes[order]] = order  # last write wins = first occurrence
        ok = first >= 0
        out[ok] = mor[first[ok]]
        return out

    def _on_micrograph(self, index, *_):
        self.micrograph_changed.emit(int(index))

    def _on_edit(self, kind: str, rows) -> None:
        self.apply()
        self.rows_changed.emit(kind, rows)

    # ------------------------------------------------------------------ facts for jobs / export
    def micrograph_layer(self):
        return None if self.controller is None else self.controller.image_layer

    def pixel_size_A(self, entered: float | None = None) -> float | None:
        """Micrograph pixel size: the picks' table, the micrographs, the CTF/optics tables, else
        what the user entered."""
        from ...workflows.picks import pixel_size_of

        cands = []
        img = self.micrograph_layer()
        if img is not None:
            cands.append(pixel_size_A(img))
        if self.ctf is not None and "pixel_size_A" in self.ctf.columns:
            v = self.ctf["pixel_size_A"].to_numpy(dtype=float)
            v = v[np.isfinite(v) & (v > 0)]
            cands.append(float(np.median(v)) if v.size else None)
        for item in tables_of(self.viewer).of_kind("ctf", "particles"):
            if isinstance(item.table, pd.DataFrame) and "pixel_size_A" in item.table.columns:
                cands.append(pixel_size_of(item.table))
            optics = (item.table.attrs.get("optics") if isinstance(item.table, pd.DataFrame) else None)
            if isinstance(optics, pd.DataFrame) and "rlnMicrographPixelSize" in optics.columns:
                cands.append(float(optics["rlnMicrographPixelSize"].median()))
        cands.append(entered)
        own = self._table_pixel_size()
        return own if own is not None else pixel_size_of(pd.DataFrame(), *cands)

    def _table_pixel_size(self) -> float | None:
        """The picks' own pixel size (their ``pixel_size_A`` median), kept per table: the Export
        tab asks at every view change, and at 1e7 picks the median costs ~0.2 s."""
        from ...workflows.picks import pixel_size_of

        if self.pickset is None:
            return None
        ps, t = self.pickset, self.pickset.table
        hit = self._own_pixel_size
        if hit is None or hit[0] is not ps or hit[1] is not t or hit[2] != (len(t), ps.version):
            hit = (ps, t, (len(t), ps.version), pixel_size_of(t))
            self._own_pixel_size = hit
        return hit[3]

    def micrograph_shape(self) -> tuple[int, int] | None:
        """(ny, nx) of the micrographs when anything gives it (open micrographs, the picks)."""
        img = self.micrograph_layer()
        if img is not None and meta(img).get("kind") != "placeholder":
            sh = meta(img).get("raw_shape") or img.data.shape[-2:]
            return int(sh[-2]), int(sh[-1])
        t = None if self.pickset is None else self.pickset.table
        if t is not None and {"micrograph_ny", "micrograph_nx"} <= set(t.columns):
            ny = pd.to_numeric(t["micrograph_ny"], errors="coerce").median()
            nx = pd.to_numeric(t["micrograph_nx"], errors="coerce").median()
            if np.isfinite(ny) and np.isfinite(nx):
                return int(ny), int(nx)
        return None

    def diameter_A(self) -> float | None:
        """The particle diameter the picks record (their ``diameter_px`` × pixel size), else None."""
        t = None if self.pickset is None else self.pickset.table
        apix = self.pixel_size_A()
        if t is None or "diameter_px" not in t.columns or not apix:
            return None
        d = pd.to_numeric(t["diameter_px"], errors="coerce").to_numpy(dtype=float)
        d = d[np.isfinite(d) & (d > 0)]
        return float(np.median(d) * apix) if d.size else None
