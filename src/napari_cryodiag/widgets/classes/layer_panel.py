"""Classes, the layer: the class averages as a napari image layer, in the chosen order, with the
pixel size of the averages (their file, their layer, the model, or the particles).

magicgui: ``mode`` — ``stack`` (one class per slider step; the viewer's text overlay names the
class on screen: number, count, FRC, median ESS) or ``tiled grid`` (one image, each tile
labelled by a text layer). The labels and the overlay go when the layer goes.

The averages are a hundred-odd pixels wide, the micrographs beside them thousands: when the layer
is made (or remade for the other mode), and when a class is double-clicked in the table
(:meth:`ClassLayerPanel.show_class`), the canvas is fitted to the averages, and a double-clicked
class is put on screen (the slider moved to it in stack mode).
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox

from ...plots.classes import class_label
from .._layers import fit_view_to, text_overlay

__all__ = ["ClassLayerPanel", "tile_grid", "LAYER_NAME", "LABELS_NAME"]

LAYER_NAME = "class averages"
LABELS_NAME = "class labels"


def tile_grid(stack: np.ndarray, ncols: int, pad: int = 2, row_gap: int = 0) -> np.ndarray:
    """Tile ``(K, n, n)`` images into one 2D mosaic (row-major): columns ``pad`` pixels apart,
    rows ``pad + row_gap`` apart (room for labels above each tile); tile ``i`` starts at row
    ``row_gap + (i // ncols) * (n + pad + row_gap)``, column ``(i % ncols) * (n + pad)``. Each tile
    is scaled to its own 1-99.5 % range so that tiles of different contrast show alike."""
    k, n = stack.shape[0], stack.shape[-1]
    nrows = int(np.ceil(k / ncols))
    dy, dx = n + pad + row_gap, n + pad
    out = np.full((nrows * dy - pad, ncols * dx - pad), np.nan, dtype=np.float32)
    for i, img in enumerate(stack):
        r, c = divmod(i, ncols)
        lo, hi = np.percentile(img, [1, 99.5])
        y0 = row_gap + r * dy
        out[y0: y0 + n, c * dx: c * dx + n] = (img - lo) / (hi - lo or 1)
    fill = np.nanmin(out) if np.isfinite(out).any() else 0.0
    return np.nan_to_num(out, nan=fill)


class ClassLayerPanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.mode = ComboBox(label="layer", choices=["stack", "tiled grid"], value="stack",
                             tooltip="the class averages as a stack (one class per slider step) or one tiled image")
        self.layer = None
        self.labels_layer = None
        self.labels: list[str] = []
        self.mode.changed.connect(lambda *_: self.update())
        session.result_changed.connect(self.update)
        session.order_changed.connect(self.update)
        v = dock.viewer
        v.dims.events.current_step.connect(self._show_slice_label)
        v.layers.events.removed.connect(self._on_removed)

    # ------------------------------------------------------------------ layers
    def _alive(self, layer):
        return layer if layer is not None and layer in list(self.dock.viewer.layers) else None

    def _on_removed(self, event=None):
        gone = getattr(event, "value", None)
        if gone is not None and gone is self.layer:
            self.layer = None
            if self._alive(self.labels_layer) is not None:
                self.dock.viewer.layers.remove(self.labels_layer)
            self.labels_layer = None
            self.labels = []
            text_overlay(self.dock.viewer).visible = False
            text_overlay(self.dock.viewer).text = ""
        elif gone is not None and gone is self.labels_layer:
            self.labels_layer = None

    def update(self, *_):
        r = self.session.result
        if r is None or r.averages is None:
            return
        viewer = self.dock.viewer
        s = self.session.sorted_summary()
        s = s[s["average_index"] >= 0]
        stack = r.averages[s["average_index"].astype(int).to_numpy()]
        classes = s["class"].astype(int).tolist()
        apix = r.averages_pixel_size_A
        unit = apix or 1.0
        tiled = self.mode.value == "tiled grid"
        ncols = gap = 0
        if tiled:
            ncols = max(1, int(np.ceil(np.sqrt(len(stack) * 1.4))))
            gap = max(stack.shape[-1] // 4, 8)
            data, scale = tile_grid(stack, ncols, row_gap=gap), (unit, unit)
        else:
            data, scale = stack, (1.0, unit, unit)
        md = {"cryodiag": {"kind": "derived", "what": "class averages", "classes": classes,
                           "sort_by": self.session.sort_by, "pixel_size_A": apix, "source": r.averages_source}}
        lo, hi = np.percentile(data, [1, 99.5]) if data.size else (0.0, 1.0)
        clim = (float(lo), float(hi if hi > lo else lo + 1))
        layer = self._alive(self.layer)
        if layer is not None and layer.data.ndim == data.ndim:
            layer.data = data
            layer.scale = scale
            layer.metadata = md
            layer.contrast_limits = clim
        else:
            if layer is not None:
                self.layer = None  # replaced: not "removed by the user"
                viewer.layers.remove(layer)
            self.layer = viewer.add_image(data, name=LAYER_NAME, scale=scale, metadata=md, colormap="gray",
                                          contrast_limits=clim)
            fit_view_to(viewer, self.layer)  # a new layer: on screen, not a speck beside 4k micrographs
        self.labels = [class_label(row, self.session.ess_name) for _, row in s.iterrows()]
        if self._alive(self.labels_layer) is not None:
            old, self.labels_layer = self.labels_layer, None
            viewer.layers.remove(old)
        if tiled:
            n, pad = stack.shape[-1], 2
            pos = [(((i // ncols) * (n + pad + gap) + gap) * unit, (i % ncols) * (n + pad) * unit)
                   for i in range(len(stack))]  # top-left corner of each tile; the text goes above
            self.labels_layer = viewer.add_points(
                np.array(pos, dtype=float).reshape(-1, 2), name=LABELS_NAME, size=0.0,
                features={"label": list(self.labels)},
                text={"string": "{label}", "anchor": "upper_left", "color": "yellow", "size": 8},
                face_color="transparent", border_width=0,
                metadata={"cryodiag": {"kind": "derived", "what": "class labels"}})
            viewer.layers.selection.active = self.layer  # not the labels
            text_overlay(viewer).visible = False
        else:
            ov = text_overlay(viewer)
            ov.visible = True
            ov.position = "top_left"
            ov.font_size = 10
            self._show_slice_label()

    def _show_slice_label(self, event=None):
        """In stack mode, the text overlay names the class on screen (count, FRC, median ESS)."""
        layer = self._alive(self.layer)
        if not self.labels or layer is None or layer.data.ndim != 3:
            return
        v = self.dock.viewer
        # the shown slice of this layer (in world units the slider's step may be another layer's)
        i = int(round(float(layer.world_to_data(tuple(v.dims.point)[-3:])[0]))) if v.dims.ndim >= 3 else 0
        i = min(max(i, 0), len(self.labels) - 1)
        text_overlay(v).text = self.labels[i]

    def show_class(self, cls: int) -> bool:
        """Put class ``cls`` on screen: select the layer, move the slider to it (stack mode) and
        fit the canvas to the averages. False when the class has no average in the layer."""
        layer = self._alive(self.layer)
        if layer is None:
            return False
        classes = list(layer.metadata.get("cryodiag", {}).get("classes", []))
        if int(cls) not in classes:
            return False
        v = self.dock.viewer
        v.layers.selection.active = layer
        if layer.data.ndim == 3:
            # the slider in world units (another layer may have set its step); the layer's first
            # axis is the viewer's axis ndim - 3 (napari aligns layers on their last axes)
            world = layer.data_to_world([classes.index(int(cls)), 0, 0])
            v.dims.set_point(v.dims.ndim - 3, float(world[0]))
        fit_view_to(v, layer)
        return True
