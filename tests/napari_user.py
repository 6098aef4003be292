"""Drive napari's own tools the way a user does: mouse presses, drags and releases on a layer go
through the layer's mouse callbacks (the same path as a click on the canvas), keys through the
napari's actions. Used by the viewer tests of the curation and display behaviour."""

from __future__ import annotations

import numpy as np
from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks


class _MouseEvent:
    """What napari's mouse callbacks read from a canvas event."""

    def __init__(self, viewer, kind, world, *, dragging=False, modifiers=(), pos=(0, 0)):
        self.type = kind
        self.is_dragging = dragging
        self.modifiers = list(modifiers)
        self.position = tuple(float(v) for v in world)
        self.view_direction = None
        self.up_direction = None
        self.dims_displayed = list(viewer.dims.displayed)
        self.dims_point = list(viewer.dims.point)
        self.pos = np.asarray(pos, dtype=float)
        self.button = 1
        self.buttons = [1]
        self.handled = False
        self.delta = (0, 0)
        self.native = None
        self.source_type = "mouse"


class _Persisted:
    """The press event as napari keeps it for a drag: later events replace what it wraps
    (``__wrapped__``), so the drag generator sees the moves and the release."""

    def __init__(self, event):
        self.__wrapped__ = event

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)

    def __setattr__(self, name, value):
        if name == "__wrapped__":
            object.__setattr__(self, name, value)
        else:
            setattr(self.__wrapped__, name, value)


def world_of(layer, data_point) -> tuple:
    """World coordinates of a point given in ``layer``'s data coordinates."""
    return tuple(np.asarray(layer.data_to_world(np.asarray(data_point, dtype=float))))


def click(viewer, layer, data_point) -> None:
    """A click (press + release without moving) at ``data_point`` of ``layer``."""
    w = world_of(layer, data_point)
    mouse_press_callbacks(layer, _Persisted(_MouseEvent(viewer, "mouse_press", w)))
    mouse_release_callbacks(layer, _MouseEvent(viewer, "mouse_release", w))


def drag(viewer, layer, start, end, steps: int = 4) -> None:
    """Press at ``start``, move in ``steps`` to ``end`` and release (data coordinates of ``layer``)."""
    a, b = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    mouse_press_callbacks(layer, _Persisted(_MouseEvent(viewer, "mouse_press", world_of(layer, a))))
    for k in range(1, steps + 1):
        p = a + (b - a) * k / steps
        mouse_move_callbacks(layer, _MouseEvent(viewer, "mouse_move", world_of(layer, p), dragging=True,
                                                pos=(20 * k, 20 * k)))
    mouse_release_callbacks(layer, _MouseEvent(viewer, "mouse_release", world_of(layer, b), pos=(20 * steps, 20 * steps)))


def delete_selected(layer, indices) -> None:
    """Select points (as a click or a box selection does) and press Delete (napari's binding for
    Delete / Backspace is ``Points.remove_selected``)."""
    layer.selected_data = set(int(i) for i in indices)
    layer.remove_selected()
