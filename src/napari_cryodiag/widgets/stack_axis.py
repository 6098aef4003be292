"""The name of the slider that steps through the viewer's stacked axis.

napari aligns layers on their last axes, so every 3D layer shares the third-from-last axis and one
slider moves through all of them: the micrographs (and their picks), the z planes of a map, the
classes of a class-average stack. The slider says what it moves through, from the layers the
plugin made: ``"micrograph"`` alone, ``"micrograph / z"`` when a map is open too, ``"class"`` for
class averages alone (``"image"`` for a stack of particle images); the image axes are "y" and "x"
when no layer names them. Layers the plugin did not make leave napari's own label.

:func:`update_stack_axis_label` is connected to the layer list by
:func:`~napari_cryodiag.widgets.picks_layer.link_viewer` (readers, sample data and docks call it).
"""

from __future__ import annotations

from ._layers import kind, meta

__all__ = ["stack_axis_name", "update_stack_axis_label"]


def stack_axis_name(layer) -> str | None:
    """What the third-from-last axis of ``layer`` is, or None (not a 3D layer the plugin made)."""
    if getattr(layer, "ndim", 0) < 3:
        return None
    k = kind(layer)
    md = meta(layer)
    if k in ("micrographs", "placeholder", "picks"):
        return "micrograph"
    if k == "stack" or (k == "derived" and md.get("what") == "class averages"):
        classes = (md.get("role") == "class_averages" or md.get("what") == "class averages"
                   or "class" in str(getattr(layer, "name", "")).lower())
        return "class" if classes else "image"
    if k in ("map", "mask", "derived"):
        return "z"
    return None


def update_stack_axis_label(viewer) -> None:
    """Name the stacked axis's slider for the layers on it (see the module doc)."""
    dims = viewer.dims
    if dims.ndim < 3:
        return
    names: list[str] = []
    for layer in viewer.layers:
        name = stack_axis_name(layer)
        if name is not None and name not in names:
            names.append(name)
    if not names:
        return
    label = " / ".join(names)
    labels = list(dims.axis_labels)
    new = list(labels)
    new[dims.ndim - 3] = label
    if new[-2:] == ["-2", "-1"]:  # napari's defaults when no layer names its axes (class averages alone)
        new[-2:] = ["y", "x"]
    if new != labels:
        dims.axis_labels = tuple(new)
