"""What the dock widgets know about napari layers: the plugin's metadata, pixel sizes, and the
filters of the layer choosers.

Every layer the plugin makes (readers, sample data, widgets) carries ``metadata["cryodiag"]`` with
at least ``kind`` (docs/ARCHITECTURE.md, "The napari face"):

============== ===========================================================================
kind           what the layer is
============== ===========================================================================
micrographs    a lazy stack of micrographs (axis 0 = micrograph), ``paths``, ``keys``
micrograph     one micrograph
placeholder    an empty stack standing in for micrographs that are not open
map            a 3D map (``voxel_size_A``, ``origin_A``; ``value_range`` when known)
mask           a mask (read from a file whose values lie in [0, 1], or made by Map validation)
derived        a layer a widget computed (sharpened map, Fourier volume, projections)
stack          an image stack (``.mrcs``: class averages, particles)
picks          a pick set: ``table`` (the canonical table), shown one micrograph at a time
============== ===========================================================================

The chooser filters take the magicgui ComboBox (as magicgui passes it) and return the layers to
offer, in the order to offer them; :func:`layer_choices` turns one into the ``choices`` callable
of a layer-typed magicgui widget, so that the chooser follows layers added, removed and renamed.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

import numpy as np

__all__ = [
    "text_overlay", "fit_view_to",
    "meta", "kind", "pixel_size_A", "is_volume", "is_mask", "is_half_map",
    "is_micrographs", "is_template_stack", "is_picks", "half_map_choices", "mask_choices",
    "template_choices", "micrograph_choices", "picks_choices", "volume_choices", "layer_choices",
    "chooser", "pair_of_half_maps", "micrograph_refs",
]


def text_overlay(viewer):
    """The canvas's text overlay: ``viewer.canvas.overlays.text`` (napari ≥ 0.9), else the former
    ``viewer.text_overlay`` (deprecated in 0.9)."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    ov = getattr(overlays, "text", None) if overlays is not None else None
    return ov if ov is not None else viewer.text_overlay


def fit_view_to(viewer, layer) -> bool:
    """Zoom and centre the canvas on ``layer`` alone (``viewer.fit_to_view(layers=...)``, napari
    ≥ 0.6), e.g. class averages a hundred pixels wide opened beside 4k micrographs; False (the view
    unchanged) on a napari without it."""
    fit = getattr(viewer, "fit_to_view", None)
    if fit is None:
        return False
    try:
        fit(layers=[layer])
    except TypeError:  # pragma: no cover - a napari whose fit_to_view takes no layers
        return False
    return True


def meta(layer) -> dict:
    """``layer.metadata["cryodiag"]`` (an empty dict for layers the plugin did not make)."""
    md = getattr(layer, "metadata", None)
    cd = md.get("cryodiag") if isinstance(md, dict) else None
    return cd if isinstance(cd, dict) else {}


def kind(layer) -> str | None:
    return meta(layer).get("kind")


def pixel_size_A(layer) -> float | None:
    """Pixel (voxel) size of ``layer`` in Å: the plugin's metadata, else the layer's scale when it
    is not napari's default 1, else None (unknown: the caller asks the user)."""
    v = meta(layer).get("pixel_size_A")
    try:
        v = float(v) if v is not None else None
    except (TypeError, ValueError):
        v = None
    if v is not None and np.isfinite(v) and v > 0:
        return v
    scale = getattr(layer, "scale", None)
    if scale is not None and len(scale):
        s = float(scale[-1])
        if np.isfinite(s) and s > 0 and s != 1.0:
            return s
    return None


def micrograph_refs(layer) -> list:
    """The micrographs of a micrographs layer as the selection writer names them
    (:class:`napari_cryodiag.io.selection.MicrographRefs`: file names, keys, shape, pixel size);
    ``[]`` for a stand-in (placeholder) or a layer the plugin did not open."""
    from ..io.selection import MicrographRefs

    md = meta(layer)
    paths = [str(p) for p in md.get("paths") or []]
    if layer is None or md.get("kind") not in ("micrographs", "micrograph") or not paths:
        return []
    keys = [str(k) for k in md.get("keys") or []]
    shape = md.get("raw_shape") or np.shape(layer.data)[-2:]
    refs = MicrographRefs.from_paths(paths, shapes=tuple(int(v) for v in shape[-2:]),
                                     pixel_size_A=pixel_size_A(layer))
    if len(keys) == len(paths):
        refs.keys = keys
    return [refs]


def _image(layer) -> bool:
    return type(layer).__name__ == "Image"


def _stack_shaped(shape) -> bool:
    """Few sections compared with the image size: a stack of 2D images (class averages,
    particles), not a map (the reader's rule for MRC files without a space group)."""
    return len(shape) == 3 and shape[0] * 4 <= min(shape[1], shape[2])


def is_volume(layer) -> bool:
    """A 3D scalar image that is a map (not a micrograph stack, image stack or placeholder, nor
    shaped as a stack of 2D images when the plugin did not say what it is)."""
    if not _image(layer) or getattr(layer, "rgb", False) or getattr(layer.data, "ndim", 0) != 3:
        return False
    k = kind(layer)
    if k in ("micrographs", "stack", "placeholder"):
        return False
    return k in ("map", "mask") or not _stack_shaped(tuple(layer.data.shape))


def is_mask(layer) -> bool:
    """A volume that is a mask: made as one, named as one, or read with values in [0, 1]."""
    if not is_volume(layer):
        return False
    m = meta(layer)
    if m.get("kind") == "mask" or "mask" in str(getattr(layer, "name", "")).lower():
        return True
    rng = m.get("value_range")
    return bool(rng is not None and len(rng) == 2 and rng[0] >= -1e-6 and rng[1] <= 1 + 1e-6 and rng[1] > rng[0])


def is_half_map(layer) -> bool:
    """A volume that can be a half map: not a mask, not a layer a widget computed."""
    return is_volume(layer) and not is_mask(layer) and kind(layer) != "derived"


def is_micrographs(layer) -> bool:
    return _image(layer) and kind(layer) in ("micrographs", "micrograph")


def is_template_stack(layer) -> bool:
    """2D templates: an image stack (class averages) or a single small 2D image, not micrographs."""
    if not _image(layer) or getattr(layer, "rgb", False):
        return False
    k = kind(layer)
    if k in ("micrographs", "micrograph", "placeholder", "map", "mask", "derived", "picks"):
        return False
    shape = getattr(layer.data, "shape", ())
    if k == "stack":
        return len(shape) == 3
    return len(shape) == 2 and max(shape) <= 1024


def is_picks(layer) -> bool:
    return type(layer).__name__ == "Points" and kind(layer) == "picks" and "table" in meta(layer)


def half_map_choices(layers: Iterable) -> list:
    """Volumes that can be half maps, half-map-like names first (``half1``, ``_A`` …)."""
    vols = [ly for ly in layers if is_half_map(ly)]
    return sorted(vols, key=lambda ly: 0 if _half_rank(ly.name) is not None else 1)


def mask_choices(layers: Iterable) -> list:
    """Masks only (made as, named as, or valued as masks)."""
    return [ly for ly in layers if is_mask(ly)]


def volume_choices(layers: Iterable) -> list:
    """Every map-like volume that is not a mask (a reference map for the noise model)."""
    return [ly for ly in layers if is_volume(ly) and not is_mask(ly)]


def template_choices(layers: Iterable) -> list:
    return [ly for ly in layers if is_template_stack(ly)]


def micrograph_choices(layers: Iterable) -> list:
    return [ly for ly in layers if is_micrographs(ly)]


def picks_choices(layers: Iterable) -> list:
    return [ly for ly in layers if is_picks(ly)]


def layer_choices(viewer, filter_: Callable[[Iterable], list]) -> Callable:
    """The ``choices`` callable of a magicgui layer chooser: the layers of ``viewer`` that
    ``filter_`` offers, evaluated each time the chooser resets (layers added, removed, renamed)."""

    def choices(_widget=None):
        return filter_(list(viewer.layers)) if viewer is not None else []

    choices.__name__ = getattr(filter_, "__name__", "choices")
    return choices


def chooser(choices: Callable, *, label: str, none: str | None = None, **kwargs):
    """A magicgui ComboBox over ``choices`` (a :func:`layer_choices` or ``table_choices``
    callable); ``none``: the chooser may be empty (optional input) and shows this text then."""
    from magicgui.widgets import ComboBox

    if none is None:
        w = ComboBox(label=label, choices=choices, **kwargs)
    else:
        w = ComboBox(label=label, choices=(), nullable=True, **kwargs)
        w.null_string = none  # before the first choices: the empty choice stays first
        w.choices = choices
    _narrow(w)
    return w


def _narrow(combo) -> None:
    """A long layer or file name does not widen the dock (the chooser elides it)."""
    q = combo.native
    if hasattr(q, "setSizeAdjustPolicy"):
        q.setSizeAdjustPolicy(type(q).SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        q.setMinimumContentsLength(12)


_HALF_RE = re.compile(r"half[_\- ]?(?:map)?[_\- ]?([12ab])(?![a-z0-9])|[_\-]([ab12])(?=\.\w+$|$)", re.IGNORECASE)


def _half_rank(name: str) -> int | None:
    """1 or 2 for names that say which half they are (``half1``, ``half_map_2``, ``_A``, ``_B``)."""
    m = _HALF_RE.search(str(name))
    if not m:
        return None
    return 1 if (m.group(1) or m.group(2)).lower() in ("1", "a") else 2


def pair_of_half_maps(layers: Iterable) -> tuple[object | None, object | None]:
    """Two different half maps to preselect: a pair named as halves 1 and 2 when there is one
    (the most recently added pair), else the first two volumes that can be half maps."""
    vols = [ly for ly in layers if is_half_map(ly)]
    ones = [ly for ly in vols if _half_rank(ly.name) == 1]
    twos = [ly for ly in vols if _half_rank(ly.name) == 2]
    for one in reversed(ones):
        stem = _strip_half(one.name)
        match = next((t for t in reversed(twos) if _strip_half(t.name) == stem), None)
        if match is not None:
            return one, match
    if ones and twos:
        return ones[-1], twos[-1]
    if len(vols) >= 2:
        return vols[0], vols[1]
    return (vols[0] if vols else None), None


def _strip_half(name: str) -> str:
    return _HALF_RE.sub("", str(name).lower())
