"""Picks on micrographs: keep only the shown micrograph's picks in a napari Points layer.

Datasets carry 1e5-1e7 picks; a Points layer with millions of points is slow to draw and to
select. :class:`PicksOnMicrographs` pre-groups the table's rows by micrograph once (one argsort)
and, each time the micrograph slider moves, swaps the layer's data and features for that
micrograph's rows only, so a swap costs O(picks on that micrograph).

Public API (used by the Inspect Picks widget):

- :func:`get_picks_controller` ``(points_layer) -> PicksOnMicrographs | None``
- :func:`link_viewer` ``(viewer)``: idempotent; wires every cryodiag picks layer in the viewer
  (present and future) to the best-matching micrograph image layer.
- controller: ``.table``, ``.points_layer``, ``.image_layer``, ``.micrograph_of_row``,
  ``.keys``, ``.report``, ``.current_index()``, ``.rows_shown()``, ``.set_kept(mask)``,
  ``.rejected_mode`` ("dim" | "hide"), ``.show_micrograph(i)``, ``.on_micrograph_changed``
  (callables taking the new index), ``.refresh()``, ``.bind_image(layer)``.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from .io.picks import group_rows, match_to_micrographs

__all__ = ["PicksOnMicrographs", "get_picks_controller", "link_viewer", "is_picks_layer", "KEPT_COLOR",
           "REJECTED_COLOR"]

KEPT_COLOR = np.array([0.0, 1.0, 0.5, 1.0], dtype=np.float32)
REJECTED_COLOR = np.array([1.0, 0.25, 0.25, 0.35], dtype=np.float32)

_CONTROLLERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LINKED_VIEWERS: "weakref.WeakSet" = weakref.WeakSet()


def _meta(layer) -> dict:
    md = getattr(layer, "metadata", None) or {}
    return md.get("cryodiag", {}) if isinstance(md, dict) else {}


def is_picks_layer(layer) -> bool:
    return type(layer).__name__ == "Points" and _meta(layer).get("kind") == "picks"


def _is_micrograph_layer(layer) -> bool:
    m = _meta(layer)
    return type(layer).__name__ == "Image" and m.get("kind") in ("micrographs", "micrograph") and bool(m.get("keys"))


class PicksOnMicrographs:
    """Keeps one micrograph's picks in ``points_layer``, following the viewer's slider."""

    def __init__(self, points_layer, viewer=None, image_layer=None):
        meta = _meta(points_layer)
        if "table" not in meta:
            raise ValueError("not a cryodiag picks layer (metadata['cryodiag']['table'] missing)")
        self.points_layer = points_layer
        self._viewer_ref = weakref.ref(viewer) if viewer is not None else None
        self.image_layer = None
        self.rejected_mode = "dim"
        self.on_micrograph_changed: list = []
        self.report = None
        self.keys: list[str] = []
        self._kept: np.ndarray | None = None
        self._current = -1
        self._forced_index = 0
        self._rows = np.zeros(0, dtype=np.int64)
        self._groups: list = []
        self._stale = False  # the layer was hidden when its content should have changed
        self.last_swap_rows = 0  # rows touched by the last swap (for tests/benchmarks)
        self._default_size = float(meta.get("default_size_px") or 64.0)
        self._set_table_arrays(meta["table"])
        _CONTROLLERS[points_layer] = self
        if viewer is not None:
            viewer.dims.events.point.connect(self._on_dims)
        points_layer.events.visible.connect(self._on_visible)
        self.bind_image(image_layer, notify=image_layer is not None)

    def _set_table_arrays(self, table: pd.DataFrame) -> None:
        self.table: pd.DataFrame = table
        n = len(table)
        self._xy = np.column_stack([
            table["y_px"].to_numpy(dtype=np.float64) if "y_px" in table.columns else np.full(n, np.nan),
            table["x_px"].to_numpy(dtype=np.float64) if "x_px" in table.columns else np.full(n, np.nan),
        ])
        self._diam = table["diameter_px"].to_numpy(dtype=np.float64) if "diameter_px" in table.columns else None
        self._feature_cols = [c for c in table.columns if table[c].dtype.kind in "iufb"]
        self._feature_idx = [table.columns.get_loc(c) for c in self._feature_cols]

    def set_table(self, table: pd.DataFrame) -> None:
        """Replace the pick table (e.g. rescored or deduplicated picks) and redraw.

        The kept mask is dropped (it belonged to the old rows); the layer's metadata follows.
        """
        self._set_table_arrays(table)
        md = self.points_layer.metadata.setdefault("cryodiag", {})
        md["table"] = table
        md["kept"] = None
        self._kept = None
        self.bind_image(self.image_layer, notify=False)

    # ------------------------------------------------------------------ binding
    @property
    def viewer(self):
        return self._viewer_ref() if self._viewer_ref is not None else None

    def bind_image(self, image_layer=None, *, notify: bool = True) -> None:
        """Match the table to ``image_layer``'s micrographs (or, without one, to the table's
        own micrographs in order of appearance) and show the current micrograph."""
        self.image_layer = image_layer
        ps = None
        if image_layer is not None:
            m = _meta(image_layer)
            self.keys = list(m.get("keys", []))
            ps = m.get("pixel_size_A")
        elif "micrograph" in self.table.columns:
            self.keys = [str(k) for k in pd.unique(self.table["micrograph"])]
        else:
            self.keys = ["micrograph"]
        if "micrograph" in self.table.columns or len(self.keys) == 1:
            self.micrograph_of_row, self.report = match_to_micrographs(self.table, self.keys)
        else:
            self.micrograph_of_row = np.zeros(len(self.table), dtype=np.int64)
            self.report = None
        self._groups = group_rows(self.micrograph_of_row, len(self.keys))
        if ps:  # after the groups exist: a scale change moves the slider, which redraws
            self.points_layer.scale = (1.0, float(ps), float(ps))
        md = self.points_layer.metadata.setdefault("cryodiag", {})
        md["match_report"] = self.report
        md["micrograph_of_row"] = self.micrograph_of_row
        if image_layer is not None:
            md["micrograph_shape"] = tuple(int(v) for v in image_layer.data.shape[-2:])
            md["micrograph_paths"] = list(_meta(image_layer).get("paths", []))  # names for the exports
            md["micrograph_pixel_size_A"] = _meta(image_layer).get("pixel_size_A")
        if notify and image_layer is not None and self.report is not None:
            if self.report["n_unmatched"] or self.report["micrographs_without_picks"]:
                _warn(f"cryodiag: {self.points_layer.name} on {image_layer.name}: {self.report.summary()}")
        self._current = -1
        self.refresh()

    # ------------------------------------------------------------------ state
    def current_index(self) -> int:
        """Index of the micrograph shown (axis 0 of the micrograph stack)."""
        v = self.viewer
        img = self.image_layer
        if v is not None and img is not None and img.ndim >= 3 and v.dims.ndim >= 3:
            # the micrograph axis is the third from the right in world coordinates
            world = float(v.dims.point[-3])
            tr = float(img.translate[-3]) if len(img.translate) >= 3 else 0.0
            sc = float(img.scale[-3]) if len(img.scale) >= 3 else 1.0
            i = int(round((world - tr) / sc))
        elif img is not None and img.ndim == 2:
            i = 0
        else:
            i = self._forced_index
        return int(min(max(i, 0), max(len(self.keys) - 1, 0)))

    def rows_shown(self) -> np.ndarray:
        """Table row indices currently in the Points layer (in layer order)."""
        return self._rows.copy()

    def rows_of(self, i: int) -> np.ndarray:
        """Table row indices of micrograph ``i``."""
        return self._groups[i] if 0 <= i < len(self._groups) else np.zeros(0, dtype=np.int64)

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
            # same micrograph, same points: only the colours change
            layer.border_color = self._colors(self._rows)
            return
        self._current = -1
        self.refresh()

    def _colors(self, rows: np.ndarray) -> np.ndarray:
        colors = np.tile(KEPT_COLOR, (len(rows), 1))
        if self._kept is not None and self.rejected_mode != "hide" and len(rows):
            colors[~self._kept[rows]] = REJECTED_COLOR
        return colors

    def show_micrograph(self, i: int) -> None:
        """Move the slider to micrograph ``i`` (or, without a viewer, show it directly)."""
        i = int(i)
        v = self.viewer
        img = self.image_layer
        if v is not None and img is not None and img.ndim >= 3:
            tr = float(img.translate[-3])
            sc = float(img.scale[-3])
            axis = v.dims.ndim - 3
            v.dims.set_point(axis, tr + sc * i)
        else:
            self._forced_index = i
        self.refresh()

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
            self._notify(i)
            return
        self._stale = False
        data = np.empty((len(rows), 3), dtype=np.float64)
        data[:, 0] = i
        data[:, 1:] = self._xy[rows]
        if len(self._feature_cols):
            feats = self.table.iloc[rows, self._feature_idx].reset_index(drop=True)
        else:
            feats = pd.DataFrame(index=np.arange(len(rows)))
        if self._diam is not None:
            d = self._diam[rows]
            size = np.where(np.isfinite(d), d, self._default_size)
        else:
            cur = getattr(layer, "current_size", None)
            size = float(cur) if cur is not None and np.ndim(cur) == 0 and cur > 0 else self._default_size
        colors = self._colors(rows)
        if len(layer.selected_data):
            layer.selected_data = set()
        layer.data = data
        layer.features = feats
        layer.size = size
        layer.border_color = colors
        self._current = i
        self._notify(i)

    def _notify(self, i: int) -> None:
        for cb in list(self.on_micrograph_changed):
            try:
                cb(i)
            except Exception as err:  # a widget's bug must not break the slider
                _warn(f"cryodiag: micrograph-changed callback failed: {err}")


def _warn(msg: str) -> None:
    try:
        from napari.utils.notifications import show_warning

        show_warning(msg)
    except Exception:  # pragma: no cover
        pass


def _best_image_layer(viewer, table) -> object | None:
    cands = [l for l in viewer.layers if _is_micrograph_layer(l)]
    if not cands:
        return None
    if len(cands) == 1 or "micrograph" not in table.columns:
        return cands[-1]
    tkeys = {str(k) for k in pd.unique(table["micrograph"])}
    best = max(cands, key=lambda l: (len(tkeys & set(_meta(l)["keys"])), list(viewer.layers).index(l)))
    return best


def get_picks_controller(points_layer, create: bool = True):
    """The controller of a cryodiag picks layer (created on demand), else None."""
    if points_layer is None:
        return None
    try:
        ctrl = _CONTROLLERS.get(points_layer)
    except TypeError:
        return None
    if ctrl is not None or not create or not is_picks_layer(points_layer):
        return ctrl
    viewer = None
    try:
        import napari

        viewer = napari.current_viewer()
        if viewer is not None and points_layer not in viewer.layers:
            viewer = None
    except Exception:
        viewer = None
    image = _best_image_layer(viewer, _meta(points_layer)["table"]) if viewer is not None else None
    return PicksOnMicrographs(points_layer, viewer=viewer, image_layer=image)


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
    for layer in list(viewer.layers):
        if is_picks_layer(layer):
            _wire(viewer, layer)


def _wire(viewer, layer) -> None:
    ctrl = _CONTROLLERS.get(layer)
    image = _best_image_layer(viewer, _meta(layer)["table"])
    if ctrl is None:
        PicksOnMicrographs(layer, viewer=viewer, image_layer=image)
    else:
        if ctrl.viewer is None:
            ctrl._viewer_ref = weakref.ref(viewer)
            viewer.dims.events.point.connect(ctrl._on_dims)
        if image is not None and image is not ctrl.image_layer:
            ctrl.bind_image(image)


def _on_inserted(viewer, layer) -> None:
    if is_picks_layer(layer):
        _wire(viewer, layer)
    elif _is_micrograph_layer(layer):
        for l in list(viewer.layers):
            if is_picks_layer(l):
                _wire(viewer, l)


def _on_removed(layer) -> None:
    if is_picks_layer(layer):
        _CONTROLLERS.pop(layer, None)
    elif _is_micrograph_layer(layer):
        for ctrl in list(_CONTROLLERS.values()):
            if ctrl.image_layer is layer:
                v = ctrl.viewer
                image = _best_image_layer(v, ctrl.table) if v is not None else None
                ctrl.bind_image(image if image is not layer else None, notify=False)
