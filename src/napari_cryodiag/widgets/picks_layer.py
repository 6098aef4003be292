"""A pick set on its micrographs: one napari Points layer that shows the shown micrograph's picks
and turns napari's own point tools into edits of the pick set.

Datasets carry 1e5-1e7 picks; a Points layer with millions of points is slow to draw and to
select. :class:`PicksController` pre-groups the rows by micrograph once and, each time the
micrograph slider moves, swaps the layer's data for that micrograph's rows only (O(picks on that
micrograph)).

**Curating by hand.** The pick set (:class:`~napari_cryodiag.compute.picks.pickset.PickSet`, in
``metadata["cryodiag"]["pickset"]``) is the truth; the layer is a view of one micrograph of it.
napari's tools edit the set:

- *delete* (select, then Delete): the picks leave the set (``PickSet.remove``);
- *add* (the add tool): a pick joins the set on the shown micrograph, with that micrograph's
  defocus and CTF values; its scores are filled in by whoever listens to ``on_edit`` (Inspect
  Picks computes NCC and power when the micrographs are open);
- *move* (drag in select mode): the pick gets its new coordinates, marked ``moved``.

Edits persist across micrograph changes, and every export writes the set as edited. Picks added
or moved by hand are kept whatever their scores (``compute.picks.pickset``).

**Style.** The point size, symbol, border width and face/border colours the user sets in the
layer controls are read back before each swap and applied to every micrograph; by default picks
are thin circles of the particle diameter (or of the box size, ``size_mode``).

Public API (used by the Inspect Picks widget): :func:`get_picks_controller`, :func:`link_viewer`,
:func:`is_picks_layer`; the controller's ``pickset``, ``table``, ``points_layer``, ``image_layer``,
``keys``, ``report``, ``micrograph_of_row``, ``current_index()``, ``rows_shown()``,
``rows_of(i)``, ``set_kept(mask)``, ``rejected_mode`` ("dim" | "hide"), ``show_micrograph(i)``,
``on_micrograph_changed`` / ``on_edit`` (lists of callables), ``assign(key, index)``,
``set_pickset(pickset)``, ``append_picks(table)`` (picks that arrived), ``refresh()``, ``bind_image(layer)``.
"""

from __future__ import annotations

import os
import time
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..compute.picks.pickset import PickSet
from ..io.picks import group_rows, match_to_micrographs
from ._layers import is_micrographs, is_picks, meta, micrograph_refs, text_overlay
from .layer_data import BORDER_WIDTH, picks_layer_data, placeholder_layer_data
from .stack_axis import update_stack_axis_label

__all__ = ["PicksController", "PointStyle", "get_picks_controller", "link_viewer", "is_picks_layer",
           "KEPT_COLOR", "REJECTED_COLOR", "pickset_of"]

KEPT_COLOR = np.array([0.0, 1.0, 0.5, 1.0], dtype=np.float32)
REJECTED_COLOR = np.array([1.0, 0.25, 0.25, 0.35], dtype=np.float32)

_CONTROLLERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LINKED_VIEWERS: "weakref.WeakSet" = weakref.WeakSet()

is_picks_layer = is_picks


def auto_bins(n: int) -> int:
    """Histogram bins per axis for ``n`` picks: sqrt(n)/1.5 within [20, 100]."""
    return int(np.clip(np.sqrt(max(n, 1)) / 1.5, 20, 100))


def pickset_of(layer) -> PickSet | None:
    """The pick set a picks layer shows (made from its table on first use)."""
    md = meta(layer)
    ps = md.get("pickset")
    if isinstance(ps, PickSet):
        return ps
    table = md.get("table")
    if not isinstance(table, pd.DataFrame):
        return None
    ps = PickSet(table, bins=auto_bins(len(table)))
    md["pickset"] = ps
    md["table"] = ps.table
    return ps


@dataclass
class PointStyle:
    """How picks are drawn on every micrograph (the user's choices from the layer controls win)."""

    size_px: float | None = None  #: one size for every pick; None: per pick (``size_mode``)
    symbol: str = "disc"
    border_width: float = BORDER_WIDTH
    face_color: tuple = (0.0, 0.0, 0.0, 0.0)
    kept_color: tuple = tuple(KEPT_COLOR)
    rejected_color: tuple = tuple(REJECTED_COLOR)


class PicksController:
    """Keeps one micrograph's picks in ``points_layer`` and its edits in the pick set."""

    def __init__(self, points_layer, viewer=None, image_layer=None):
        md = meta(points_layer)
        if "table" not in md and "pickset" not in md:
            raise ValueError("not a cryodiag picks layer (metadata['cryodiag']['table'] missing)")
        self.points_layer = points_layer
        self._viewer_ref = weakref.ref(viewer) if viewer is not None else None
        self.image_layer = None
        self.rejected_mode = "dim"
        self.size_mode = "diameter"  # "diameter" | "box" | "fixed"
        self.style = PointStyle()
        self.on_micrograph_changed: list = []
        self.on_edit: list = []
        self.report = None
        self.keys: list[str] = []
        self.assignments: dict[str, int] = {}
        self._kept: np.ndarray | None = None
        self._current = -1
        self._forced_index = 0
        self._rows = np.zeros(0, dtype=np.int64)
        self._groups: list = []
        self._stale = False
        self._swapping = False
        self._last_drawn: dict | None = None
        self.last_swap_rows = 0
        self._default_size = float(md.get("default_size_px") or 64.0)
        self.pickset = pickset_of(points_layer)
        if self.pickset is not None:
            self.pickset.set_interactive()  # threshold steps from the dock: sort the scores now
        _CONTROLLERS[points_layer] = self
        if viewer is not None:
            viewer.dims.events.point.connect(self._on_dims)
        points_layer.events.visible.connect(self._on_visible)
        points_layer.events.data.connect(self._on_data)
        self.bind_image(image_layer, notify=image_layer is not None)

    # ------------------------------------------------------------------ the set
    @property
    def table(self) -> pd.DataFrame:
        return self.pickset.table

    def set_pickset(self, pickset: PickSet) -> None:
        """Show another pick set (rescored or deduplicated picks) on the same micrographs."""
        pickset.set_interactive()
        self.pickset = pickset
        md = self.points_layer.metadata.setdefault("cryodiag", {})
        md["pickset"] = pickset
        md["table"] = pickset.table
        md["kept"] = None
        self._kept = None
        self.bind_image(self.image_layer, notify=False)

    def set_table(self, table: pd.DataFrame) -> None:
        """Replace the picks by a new table (a new pick set, no edits)."""
        self.set_pickset(PickSet(table, bins=auto_bins(len(table))))

    def append_picks(self, table: pd.DataFrame) -> np.ndarray:
        """Picks that arrived (a live session): they join the pick set as read picks
        (``PickSet.extend``: the current thresholds decide whether they are kept), every pick is
        matched again to the image layer's micrographs (which may have grown: call it after the
        stack was extended), the shown micrograph is redrawn, and ``on_edit`` listeners hear
        ``("arrived", rows)``. Returns the new rows."""
        rows = self.pickset.extend(table)
        md = self.points_layer.metadata.setdefault("cryodiag", {})
        md["table"] = self.pickset.table
        if self._kept is not None:
            self._kept = self.pickset.evaluate().kept
            md["kept"] = self._kept
        self.bind_image(self.image_layer, notify=False)
        if len(rows):
            self._after_edit("arrived", rows)
        return rows

    # ------------------------------------------------------------------ binding
    @property
    def viewer(self):
        return self._viewer_ref() if self._viewer_ref is not None else None

    def bind_image(self, image_layer=None, *, notify: bool = True) -> None:
        """Match the picks to ``image_layer``'s micrographs (or, without one, to the picks' own
        micrographs in order of appearance) and show the current micrograph."""
        self.image_layer = image_layer
        t = self.table
        ps = None
        if image_layer is not None:
            m = meta(image_layer)
            self.keys = [str(k) for k in m.get("keys", [])]
            ps = m.get("pixel_size_A")
        elif "micrograph" in t.columns:
            self.keys = [str(k) for k in pd.unique(t["micrograph"].astype(str))]
        else:
            self.keys = ["micrograph"]
        self._xy = np.column_stack([
            t["y_px"].to_numpy(dtype=np.float64) if "y_px" in t.columns else np.full(len(t), np.nan),
            t["x_px"].to_numpy(dtype=np.float64) if "x_px" in t.columns else np.full(len(t), np.nan),
        ])
        self._match()
        if ps:  # after the groups exist: a scale change moves the slider, which redraws
            self.points_layer.scale = (1.0, float(ps), float(ps))
        md = self.points_layer.metadata.setdefault("cryodiag", {})
        if image_layer is not None and meta(image_layer).get("kind") != "placeholder":
            shape = meta(image_layer).get("raw_shape") or image_layer.data.shape[-2:]  # as read, not as shown
            md["micrograph_shape"] = tuple(int(v) for v in shape[-2:])
            md["micrograph_refs"] = micrograph_refs(image_layer)  # names and shapes for File > Save
        if notify and image_layer is not None and self.report is not None:
            if self.report["n_unmatched"] or self.report["micrographs_without_picks"]:
                _warn(f"cryodiag: {self.points_layer.name} on {image_layer.name}: {self.report.summary()}")
        self._current = -1
        self.refresh()

    def _match(self) -> None:
        t = self.table
        if "micrograph" in t.columns or len(self.keys) == 1:
            self.micrograph_of_row, self.report = match_to_micrographs(t, self.keys)
        else:
            self.micrograph_of_row = np.zeros(len(t), dtype=np.int64)
            self.report = None
        if self.assignments and "micrograph" in t.columns:
            mic = t["micrograph"].astype(str).to_numpy()
            for key, idx in self.assignments.items():
                self.micrograph_of_row[mic == key] = idx
        self._groups = group_rows(self.micrograph_of_row, len(self.keys))
        md = self.points_layer.metadata.setdefault("cryodiag", {})
        md["match_report"] = self.report
        md["micrograph_of_row"] = self.micrograph_of_row

    def assign(self, key: str, index: int) -> None:
        """Put the picks of micrograph ``key`` (a name the picks use) on stack micrograph
        ``index`` (when their names match no open micrograph, e.g. crYOLO on EPU names)."""
        self.assignments[str(key)] = int(index)
        self._match()
        self._current = -1
        self.refresh()

    def unmatched_keys(self) -> list[str]:
        """Micrograph names of the picks that are on no open micrograph."""
        if self.report is None:
            return []
        return [k for k in self.report["unmatched_micrographs"] if k not in self.assignments]

    # ------------------------------------------------------------------ state
    def current_index(self) -> int:
        """Index of the micrograph shown (axis 0 of the micrograph stack)."""
        v = self.viewer
        img = self.image_layer
        if v is not None and img is not None and img.ndim >= 3 and v.dims.ndim >= 3:
            world = float(v.dims.point[-3])
            tr = float(img.translate[-3]) if len(img.translate) >= 3 else 0.0
            sc = float(img.scale[-3]) if len(img.scale) >= 3 else 1.0
            i = int(round((world - tr) / sc))
        elif img is not None and img.ndim == 2:
            i = 0
        elif v is not None and img is None and v.dims.ndim >= 3:
            i = int(round(float(v.dims.point[-3])))
        else:
            i = self._forced_index
        return int(min(max(i, 0), max(len(self.keys) - 1, 0)))

    def key_of_index(self, i: int) -> str:
        return self.keys[i] if 0 <= i < len(self.keys) else ""

    def rows_shown(self) -> np.ndarray:
        """Table row indices currently in the Points layer (in layer order)."""
        return self._rows.copy()

    def rows_of(self, i: int, *, include_removed: bool = False) -> np.ndarray:
        """Table rows of micrograph ``i`` (without the picks deleted by hand)."""
        rows = self._groups[i] if 0 <= i < len(self._groups) else np.zeros(0, dtype=np.int64)
        if include_removed or not len(rows):
            return rows
        return rows[~self.pickset.removed[rows]]

    @property
    def kept(self) -> np.ndarray | None:
        return self._kept

    def set_kept(self, mask) -> None:
        """Mark kept picks (bool over all rows; None = all kept). Only the shown micrograph's
        points are redrawn; rejected ones are dimmed or hidden per ``rejected_mode``."""
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (len(self.table),):
                raise ValueError(f"kept mask must have one entry per row ({len(self.table)})")
        self._kept = mask
        self.points_layer.metadata.setdefault("cryodiag", {})["kept"] = mask
        layer = self.points_layer
        if (self.rejected_mode == "dim" and self._current == self.current_index() and layer.visible
                and not self._stale and len(layer.data) == len(self._rows) == len(self.rows_of(self._current))):
            self._capture_style()  # the user's colours before ours
            colors = self._colors(self._rows)
            if self._last_drawn is not None and np.array_equal(colors, self._last_drawn["border_color"]):
                return  # nothing changed on the shown micrograph: no redraw
            self._swapping = True
            try:
                # napari's visual follows the colour manager's own event; the layer's
                # border_color event would rebuild the visual a second time and make the layer
                # list repaint its row (a second composite of the whole window under software
                # OpenGL) although neither its thumbnail nor its text changed
                with layer.events.border_color.blocker():
                    layer.border_color = colors
            finally:
                self._swapping = False
            self._remember_drawn()
            return
        self._current = -1
        self.refresh()

    def _colors(self, rows: np.ndarray) -> np.ndarray:
        colors = np.tile(np.asarray(self.style.kept_color, dtype=np.float32), (len(rows), 1))
        if self._kept is not None and self.rejected_mode != "hide" and len(rows):
            colors[~self._kept[rows]] = np.asarray(self.style.rejected_color, dtype=np.float32)
        return colors

    def show_micrograph(self, i: int) -> None:
        """Move the slider to micrograph ``i`` (or, without a viewer, show it directly)."""
        i = int(i)
        v = self.viewer
        img = self.image_layer
        if v is not None and img is not None and img.ndim >= 3:
            tr = float(img.translate[-3])
            sc = float(img.scale[-3])
            v.dims.set_point(v.dims.ndim - 3, tr + sc * i)
        else:
            self._forced_index = i
        self.refresh()

    # ------------------------------------------------------------------ style
    def _sizes(self, rows: np.ndarray) -> np.ndarray | float:
        if self.style.size_px is not None:
            return float(self.style.size_px)
        t = self.table
        col = {"diameter": "diameter_px", "box": "box_px"}.get(self.size_mode)
        if col and col in t.columns:
            d = pd.to_numeric(t[col], errors="coerce").to_numpy(dtype=np.float64)[rows]
            return np.where(np.isfinite(d) & (d > 0), d, self._default_size)
        return self._default_size

    def set_size_mode(self, mode: str, size_px: float | None = None) -> None:
        """Circles of the particle ``"diameter"``, the ``"box"`` size, or ``"fixed"`` (``size_px``)."""
        self.size_mode = mode
        self.style.size_px = float(size_px) if mode == "fixed" and size_px else None
        self._current = -1
        self.refresh()

    def _remember_drawn(self) -> None:
        layer = self.points_layer
        self._last_drawn = {
            "n": len(layer.data),
            "size": np.array(layer.size, dtype=np.float64, copy=True),
            "symbol": [str(s) for s in np.atleast_1d(layer.symbol)],
            "border_width": np.array(layer.border_width, dtype=np.float64, copy=True),
            "face_color": np.array(layer.face_color, dtype=np.float32, copy=True),
            "border_color": np.array(layer.border_color, dtype=np.float32, copy=True),
        }
        d = self._last_drawn
        d["uniform"] = {name: _uniform(d[name]) for name in ("size", "border_width", "face_color")}
        d["uniform"]["symbol"] = d["symbol"][0] if d["symbol"] and len(set(d["symbol"])) == 1 else None

    def _features(self, rows: np.ndarray) -> pd.DataFrame:
        """The numeric columns of ``rows`` as the layer's features (hover, colour by feature): from
        numpy copies of the columns, taken once per version of the set (a pandas row selection of
        the whole table costs more than the swap)."""
        t = self.table
        key = (id(t), self.pickset.version, len(t), tuple(t.columns))
        if getattr(self, "_feature_key", None) != key:
            self._feature_columns = {c: t[c].to_numpy() if isinstance(t[c].dtype, np.dtype) else t[c].array
                                     for c in t.columns if t[c].dtype.kind in "iufb"}
            self._feature_key = key
        cols = self._feature_columns
        if not cols:
            return pd.DataFrame(index=np.arange(len(rows)))
        return pd.DataFrame({c: v[rows] for c, v in cols.items()})

    def _capture_style(self) -> None:
        """Adopt what the user changed in the layer controls since the last draw."""
        last = self._last_drawn
        layer = self.points_layer
        if last is None or len(layer.data) != last["n"] or last["n"] == 0:
            return
        size = np.asarray(layer.size, dtype=np.float64)
        if size.shape == last["size"].shape and not np.allclose(size, last["size"]):
            changed = ~np.isclose(size, last["size"])
            self.style.size_px = float(np.median(size[changed]))
        sym = [str(s) for s in np.atleast_1d(layer.symbol)]
        if sym != last["symbol"]:
            changed = [s for s, o in zip(sym, last["symbol"]) if s != o] or sym
            self.style.symbol = changed[0]
        bw = np.asarray(layer.border_width, dtype=np.float64)
        if bw.shape == last["border_width"].shape and not np.allclose(bw, last["border_width"]):
            self.style.border_width = float(np.median(bw[~np.isclose(bw, last["border_width"])]))
        fc = np.asarray(layer.face_color, dtype=np.float32)
        if fc.shape == last["face_color"].shape and not np.allclose(fc, last["face_color"]):
            rows = np.flatnonzero(~np.all(np.isclose(fc, last["face_color"]), axis=1))
            self.style.face_color = tuple(float(v) for v in fc[rows[0]])
        bc = np.asarray(layer.border_color, dtype=np.float32)
        if bc.shape == last["border_color"].shape and not np.allclose(bc, last["border_color"]):
            rows = np.flatnonzero(~np.all(np.isclose(bc, last["border_color"]), axis=1))
            new = bc[rows[0]]
            self.style.kept_color = tuple(float(v) for v in new)
            self.style.rejected_color = (float(new[0]) * 0.6 + 0.4, float(new[1]) * 0.4, float(new[2]) * 0.4, 0.35)

    # ------------------------------------------------------------------ drawing
    def _on_dims(self, event=None) -> None:
        if self.points_layer not in _CONTROLLERS:
            return
        self.refresh()

    def _on_visible(self, event=None) -> None:
        if self.points_layer.visible and self._stale:
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        i = self.current_index()
        if i == self._current and not force:
            return
        self._capture_style()
        rows = self.rows_of(i)
        if self._kept is not None and len(rows) and self.rejected_mode == "hide":
            rows = rows[self._kept[rows]]
        self._rows = rows
        self.last_swap_rows = len(rows)
        layer = self.points_layer
        if not layer.visible:
            # napari does not re-slice a hidden Points layer when its data changes, and then
            # fails on the next property update; a hidden layer is redrawn when it is shown
            self._stale = True
            self._current = i
            self._last_drawn = None
            self._notify(i)
            return
        self._stale = False
        data = np.empty((len(rows), 3), dtype=np.float64)
        data[:, 0] = i
        data[:, 1:] = self._xy[rows]
        from napari.utils.colormaps.standardize_color import transform_color

        feats = self._features(rows)
        st = self.style
        sizes = self._sizes(rows)
        last = self._last_drawn if self._last_drawn is not None and self._last_drawn["n"] == len(layer.data) else None
        grows = len(rows) > len(layer.data)

        def kept_as_is(name, value, current) -> bool:
            """Every point already has ``value`` for ``name`` (set by the last swap, unchanged since)
            and the points napari adds when the data grows get it too (``current``)."""
            u = last["uniform"].get(name) if last is not None else None
            if u is None or not np.allclose(u, value, rtol=0, atol=1e-6):
                return False
            return not grows or (current is not None and np.allclose(current(), value, rtol=0, atol=1e-6))

        self._swapping = True
        try:
            if len(layer.selected_data):
                layer.selected_data = set()
            # all properties under one event block, then one refresh: napari's visual is rebuilt
            # once per swap instead of once per property. Uniform properties that every point
            # already has are not set again (napari re-slices the layer on a new size or border
            # width, and rebuilds its visual on new colours, even under the block)
            with layer.events.blocker_all():
                layer.data = data
                layer.features = feats
                if np.ndim(sizes) or not kept_as_is("size", sizes, None):
                    layer.size = sizes
                if last is None or last["uniform"].get("symbol") != st.symbol or (
                        grows and str(layer.current_symbol) != st.symbol):
                    layer.symbol = st.symbol
                if not kept_as_is("border_width", st.border_width, lambda: float(layer.current_border_width)):
                    layer.border_width = st.border_width
                # no colours for no points: napari takes an empty colour array for illegal values
                # and warns (the layer's colour arrays are empty with its data anyway)
                if len(rows):
                    if not kept_as_is("face_color", np.asarray(st.face_color, np.float32),
                                      lambda: transform_color(layer.current_face_color)[0]):
                        layer.face_color = np.tile(np.asarray(st.face_color, dtype=np.float32), (len(rows), 1))
                    layer.border_color = self._colors(rows)
            layer.refresh()
            drawn_style = (st.symbol, st.border_width, tuple(st.face_color), tuple(st.kept_color))
            if drawn_style != getattr(self, "_current_style", None):  # new points get the same style
                layer.current_symbol = st.symbol
                layer.current_border_width = st.border_width
                layer.current_face_color = st.face_color
                layer.current_border_color = st.kept_color
                self._current_style = drawn_style
            # a pick added with napari's add tool is drawn at the size of the others (their
            # median: the particle's diameter), and the layer controls show that size
            if np.ndim(sizes) == 0:
                new_size = float(sizes)
            else:
                new_size = float(np.median(sizes)) if len(rows) else self._default_size
            if not np.isclose(float(layer.current_size), new_size):
                layer.current_size = new_size
        finally:
            self._swapping = False
        self._remember_drawn()
        self._current = i
        self._notify(i)

    def _notify(self, i: int) -> None:
        for cb in list(self.on_micrograph_changed):
            try:
                cb(i)
            except Exception as err:  # noqa: BLE001 - a widget's bug must not break the slider
                _warn(f"cryodiag: micrograph-changed callback failed: {err}")

    # ------------------------------------------------------------------ edits
    def _on_data(self, event) -> None:
        """napari's add / delete / move tools changed the layer: edit the pick set."""
        if self._swapping or self._stale:
            return
        action = str(getattr(event, "action", ""))
        idx = np.asarray(getattr(event, "data_indices", ()) or (), dtype=np.int64)
        layer = self.points_layer
        if action == "removed" and idx.size:
            keep = np.ones(len(self._rows), dtype=bool)
            idx = idx[(idx >= 0) & (idx < len(self._rows))]
            rows = self._rows[idx]
            keep[idx] = False
            self.pickset.remove(rows)
            self._rows = self._rows[keep]
            self._after_edit("removed", rows)
        elif action == "added" and idx.size:
            n_new = len(layer.data) - len(self._rows)
            if n_new <= 0:
                return
            new = np.asarray(layer.data)[-n_new:]
            i = self.current_index()
            key = self.key_of_index(i)
            name = self._micrograph_name(i)
            rows = self.pickset.add(key, new[:, -1], new[:, -2], name=name)
            self._xy = np.concatenate([self._xy, new[:, -2:]])
            self.micrograph_of_row = np.concatenate([self.micrograph_of_row, np.full(len(rows), i, np.int64)])
            if 0 <= i < len(self._groups):
                self._groups[i] = np.concatenate([self._groups[i], rows])
            self._rows = np.concatenate([self._rows, rows])
            if self._kept is not None:
                self._kept = np.concatenate([self._kept, np.ones(len(rows), dtype=bool)])
            self.points_layer.metadata.setdefault("cryodiag", {})["table"] = self.pickset.table
            self._after_edit("added", rows)
        elif action == "changed" and idx.size and len(layer.data) == len(self._rows):
            idx = idx[(idx >= 0) & (idx < len(self._rows))]
            rows = self._rows[idx]
            pts = np.asarray(layer.data)[idx]
            moved = ~np.all(np.isclose(pts[:, -2:], self._xy[rows], rtol=0, atol=1e-6), axis=1)
            if not moved.any():
                return
            rows, pts = rows[moved], pts[moved]
            self.pickset.move(rows, pts[:, -1], pts[:, -2])
            self._xy[rows] = pts[:, -2:]
            self._after_edit("moved", rows)

    def _micrograph_name(self, i: int) -> str | None:
        img = self.image_layer
        names = meta(img).get("names") or meta(img).get("paths") if img is not None else None
        return str(names[i]) if names and 0 <= i < len(names) else None

    def _after_edit(self, kind: str, rows: np.ndarray) -> None:
        self._remember_drawn()
        for cb in list(self.on_edit):
            try:
                cb(kind, rows)
            except Exception as err:  # noqa: BLE001
                _warn(f"cryodiag: edit callback failed: {err}")


def _uniform(values: np.ndarray):
    """The one value every row of ``values`` has, else None."""
    if not len(values):
        return None
    first = values[0]
    return first.copy() if np.all(values == first) else None


def _warn(msg: str) -> None:
    try:
        from napari.utils.notifications import show_warning

        show_warning(msg)
    except Exception:  # pragma: no cover  # noqa: BLE001
        pass


def _best_image_layer(viewer, table) -> object | None:
    cands = [ly for ly in viewer.layers if is_micrographs(ly) and meta(ly).get("keys")]
    if not cands:
        cands = [ly for ly in viewer.layers if meta(ly).get("kind") == "placeholder" and meta(ly).get("keys")]
    if not cands:
        return None
    if len(cands) == 1 or "micrograph" not in table.columns:
        return cands[-1]
    tkeys = {str(k) for k in pd.unique(table["micrograph"].astype(str))}
    return max(cands, key=lambda ly: (len(tkeys & set(map(str, meta(ly)["keys"]))), list(viewer.layers).index(ly)))


def get_picks_controller(points_layer, create: bool = True):
    """The controller of a cryodiag picks layer (created on demand), else None."""
    if points_layer is None:
        return None
    try:
        ctrl = _CONTROLLERS.get(points_layer)
    except TypeError:
        return None
    if ctrl is not None or not create or not is_picks(points_layer):
        return ctrl
    viewer = None
    try:
        import napari

        viewer = napari.current_viewer()
        if viewer is not None and points_layer not in viewer.layers:
            viewer = None
    except Exception:  # noqa: BLE001
        viewer = None
    image = _best_image_layer(viewer, pickset_of(points_layer).table) if viewer is not None else None
    return PicksController(points_layer, viewer=viewer, image_layer=image)


def link_viewer(viewer) -> None:
    """Wire every cryodiag picks layer of ``viewer`` (present and future) to its micrographs.

    Idempotent. A picks layer added before or after its micrograph stack finds it; a new
    micrograph stack re-binds picks layers that had none (or a worse match).
    """
    if viewer is None:
        return
    if viewer not in _LINKED_VIEWERS:
        _LINKED_VIEWERS.add(viewer)
        viewer.layers.events.inserted.connect(lambda event: _on_inserted(viewer, event.value))
        viewer.layers.events.removed.connect(lambda event: _on_removed(event.value))
        # after napari's own handlers (connected when the viewer was made): the stacked axis's
        # slider says what it moves through
        viewer.layers.events.inserted.connect(lambda event: update_stack_axis_label(viewer))
        viewer.layers.events.removed.connect(lambda event: update_stack_axis_label(viewer))
    update_stack_axis_label(viewer)
    for layer in list(viewer.layers):
        if is_picks(layer):
            _wire(viewer, layer)


def _wire(viewer, layer) -> None:
    ctrl = _CONTROLLERS.get(layer)
    image = _best_image_layer(viewer, pickset_of(layer).table)
    if ctrl is None:
        PicksController(layer, viewer=viewer, image_layer=image)
    else:
        if ctrl.viewer is None:
            ctrl._viewer_ref = weakref.ref(viewer)
            viewer.dims.events.point.connect(ctrl._on_dims)
        if image is not None and image is not ctrl.image_layer:
            ctrl.bind_image(image)


def _on_inserted(viewer, layer) -> None:
    if is_picks(layer):
        _wire(viewer, layer)
        _queue_batch(viewer, layer)
    elif is_micrographs(layer) or meta(layer).get("kind") == "placeholder":
        for ly in list(viewer.layers):
            if is_picks(ly):
                _wire(viewer, ly)
        if is_micrographs(layer):
            _later(lambda: _drop_unused_placeholders(viewer))
    _update_overlay(viewer)


def _on_removed(layer) -> None:
    if is_picks(layer):
        ctrl = _CONTROLLERS.pop(layer, None)
        if ctrl is not None and ctrl.viewer is not None:
            try:
                ctrl.viewer.dims.events.point.disconnect(ctrl._on_dims)
            except (TypeError, ValueError, RuntimeError):
                pass
            v = ctrl.viewer
            _later(lambda: (_drop_unused_placeholders(v), _update_overlay(v)))
    elif is_micrographs(layer) or meta(layer).get("kind") == "placeholder":
        for ctrl in list(_CONTROLLERS.values()):
            if ctrl.image_layer is layer:
                v = ctrl.viewer
                image = _best_image_layer(v, ctrl.table) if v is not None else None
                ctrl.bind_image(image if image is not layer else None, notify=False)


# ---------------------------------------------------------------------------- several files, one set
#
# napari hands the files of one File > Open (or one drop) to the reader one by one, and runs the
# event loop between them (drawing each new layer). Picks layers of one format from one folder that
# arrive within BATCH_GAP_S of each other, not yet edited, are merged into one pick set, as opening
# their folder does; a merged set absorbs later files of the same batch (the merge runs when the
# event loop is idle, so it may run several times during one long File > Open).

BATCH_GAP_S = 10.0
_BATCH: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # viewer -> {"last": t, "layers": [refs]}
_TIMERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _later(fn) -> None:
    """Run ``fn`` when the event loop is back (never while napari is inserting a layer)."""
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, fn)


def note_reading(viewer) -> None:
    """A pick file is being read into ``viewer`` (the batch it may join stays open)."""
    b = _BATCH.get(viewer)
    if b is not None:
        b["last"] = time.monotonic()


def _queue_batch(viewer, layer) -> None:
    from qtpy.QtCore import QTimer

    now = time.monotonic()
    b = _BATCH.get(viewer)
    if b is None or now - b["last"] > BATCH_GAP_S:
        b = _BATCH[viewer] = {"last": now, "layers": []}
    b["last"] = now
    b["layers"].append(weakref.ref(layer))
    timer = _TIMERS.get(viewer)
    if timer is None:
        timer = QTimer()
        timer.setSingleShot(True)
        timer.setInterval(200)
        vref = weakref.ref(viewer)
        timer.timeout.connect(lambda: merge_batch(vref()) if vref() is not None else None)
        _TIMERS[viewer] = timer
    timer.start()


def _batch_key(layer):
    md = meta(layer)
    paths = md.get("paths") or ([md.get("path")] if md.get("path") else [])
    table = md.get("table")
    if not paths or not all(os.path.isfile(str(p)) for p in paths) or table is None:
        return None
    ps = md.get("pickset")
    if ps is not None and ps.version:
        return None  # edited already: keep it as it is
    return (str(table.attrs.get("format")), os.path.dirname(os.path.abspath(str(paths[0]))))


def merge_batch(viewer) -> list:
    """Merge the picks layers of the current batch (see above); returns the merged layers."""
    from napari.layers import Layer

    from ..io.picks import concat_tables

    b = _BATCH.get(viewer)
    if b is None:
        return []
    layers = [r() for r in b["layers"]]
    layers = [ly for ly in layers if ly is not None and ly in viewer.layers and is_picks(ly)]
    groups: dict = {}
    for ly in layers:
        k = _batch_key(ly)
        if k is not None:
            groups.setdefault(k, []).append(ly)
    merged = []
    for (fmt, folder), group in groups.items():
        if len(group) < 2:
            continue
        files, tables = [], []
        for ly in group:
            md = meta(ly)
            sub_files = [str(p) for p in (md.get("paths") or [md["path"]])]
            t = md["table"]
            if len(sub_files) == 1 and "source_file" not in t.columns:
                t = t.assign(source_file=sub_files[0])
            files += sub_files
            tables.append(t.drop(columns=["manual"], errors="ignore"))
        order = np.argsort([str(t["source_file"].iloc[0]) if len(t) else "" for t in tables], kind="stable")
        tables = [tables[i] for i in order]
        files = sorted(files)
        table = concat_tables(tables, [str(t["source_file"].iloc[0]) if len(t) else "" for t in tables], label=folder)
        table["source_file"] = np.concatenate([t["source_file"].to_numpy(dtype=object) for t in tables])
        table.attrs["sources"] = files
        name = f"{os.path.basename(folder) or folder} ({len(files)} {fmt} files)"
        had_placeholder = any(meta(ly).get("kind") == "placeholder" for ly in viewer.layers)
        for ly in group:
            viewer.layers.remove(ly)
        data = picks_layer_data(table, folder, name=name)
        data[1]["metadata"]["cryodiag"]["paths"] = files
        if had_placeholder and not any(is_micrographs(ly) for ly in viewer.layers):
            viewer.add_layer(Layer.create(*placeholder_layer_data(table, name)))
        new = viewer.add_layer(Layer.create(*data))
        b["layers"] = [r for r in b["layers"] if r() is not None and r() in viewer.layers]
        merged.append(new)
    _drop_unused_placeholders(viewer)
    return merged


def _drop_unused_placeholders(viewer) -> None:
    """Remove the empty stand-ins no picks layer shows on (micrographs were opened, or the picks went)."""
    used = {id(c.image_layer) for c in _CONTROLLERS.values() if c.viewer is viewer and c.image_layer is not None}
    for ly in list(viewer.layers):
        if meta(ly).get("kind") == "placeholder" and id(ly) not in used:
            viewer.layers.remove(ly)
    _update_overlay(viewer)


def _update_overlay(viewer) -> None:
    """Say on the canvas when picks are shown without their micrographs."""
    try:
        ov = text_overlay(viewer)
    except AttributeError:  # pragma: no cover
        return
    shown = [c for c in _CONTROLLERS.values() if c.viewer is viewer and c.image_layer is not None
             and meta(c.image_layer).get("kind") == "placeholder" and c.image_layer in viewer.layers]
    if shown:
        ov.text = ("micrographs not open: picks on empty canvases of their size "
                   "(open the micrographs to see them)")
        ov.visible = True
        ov.color = "yellow"
    elif ov.text.startswith("micrographs not open"):
        ov.visible = False
        ov.text = ""
