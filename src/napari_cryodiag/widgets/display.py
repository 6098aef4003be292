"""Micrograph display: micrograph layers shown binned and low-passed so particles are visible.

The readers open micrographs with the filter on (20 Å, automatic binning); this dock changes it
per layer: ``filtered`` (one click turns it off and back on), ``lowpass_A``, ``bin`` (0 =
automatic), and contrast limits from the shown (filtered) micrograph. Only the shown micrograph is
filtered, when it is shown, and the last few are cached
(:mod:`napari_cryodiag.workflows.micrographs`). The layer keeps its raw data in
``metadata["cryodiag"]["raw"]``: scoring and picking read that, never the display.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, PushButton, SpinBox

from ..workflows.micrographs import DisplaySettings, contrast_of, display_geometry, display_stack
from ._forms import show_special
from ._dock import Dock
from ._layers import is_micrographs, layer_choices, meta, micrograph_choices, pixel_size_A

__all__ = ["MicrographDisplayWidget", "apply_display", "raw_data", "display_settings"]


def raw_data(layer):
    """The raw micrographs of a micrograph layer (what scoring reads), whatever is displayed."""
    raw = meta(layer).get("raw")
    return raw if raw is not None else layer.data


def display_settings(layer) -> DisplaySettings:
    d = meta(layer).get("display") or {}
    return DisplaySettings(lowpass_A=d.get("lowpass_A", 20.0), bin=int(d.get("bin", 0) or 0),
                           enabled=bool(d.get("enabled", False)))


def display_layer_kwargs(raw, pixel_size_A, settings: DisplaySettings, *, token: str, index: int = 0) -> dict:
    """Data, scale, translate and contrast limits of a micrograph layer shown with ``settings``
    (for the readers, before the layer exists)."""
    data, b = display_stack(raw, pixel_size_A, settings, token=token)
    geo = display_geometry(np.shape(raw), pixel_size_A, b)
    nd = np.ndim(raw)
    scale = geo["scale"] if nd == 2 else (1.0,) + geo["scale"]
    translate = geo["translate"] if nd == 2 else (0.0,) + geo["translate"]
    return {"data": data, "scale": scale, "translate": translate, "contrast_limits": contrast_of(data, index),
            "display": {"lowpass_A": settings.lowpass_A, "bin": settings.bin, "enabled": settings.enabled,
                        "bin_used": b}}


def apply_display(layer, settings: DisplaySettings, viewer=None) -> None:
    """Show micrograph ``layer`` with ``settings`` (its raw data stays in the metadata)."""
    md = layer.metadata.setdefault("cryodiag", {})
    raw = md.get("raw")
    if raw is None:
        raw = md["raw"] = layer.data
    md["raw_shape"] = tuple(int(s) for s in np.shape(raw)[-2:])
    apix = pixel_size_A(layer) or md.get("pixel_size_A")
    index = 0
    if viewer is not None and np.ndim(raw) == 3 and viewer.dims.ndim >= 3:
        sc = float(layer.scale[-3]) if len(layer.scale) >= 3 else 1.0
        index = int(np.clip(round((float(viewer.dims.point[-3]) - float(layer.translate[-3])) / sc), 0, np.shape(raw)[0] - 1))
    kw = display_layer_kwargs(raw, apix, settings, token=f"{id(raw)}", index=index)
    md["display"] = kw["display"]
    md["pixel_size_A"] = apix
    layer.data = kw["data"]
    layer.scale = kw["scale"]
    layer.translate = kw["translate"]
    layer.contrast_limits_range = kw["contrast_limits"]
    layer.contrast_limits = kw["contrast_limits"]


class MicrographDisplayWidget(Dock):
    """The Micrograph display dock (see the module docstring)."""

    title = "Micrograph display"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.micrographs = ComboBox(label="micrographs", choices=layer_choices(napari_viewer, micrograph_choices))
        self.filtered = CheckBox(text="low-pass and bin for display", value=True)
        self.lowpass_A = FloatSpinBox(label="low-pass (Å)", value=20.0, min=2.0, max=500.0, step=1.0)
        self.bin = SpinBox(label="display binning", value=0, min=0, max=64,
                           tooltip="block-mean binning of the shown image; 0 = automatic")
        show_special(self.bin, "auto")
        self.contrast_button = PushButton(text="Contrast from the shown micrograph")
        self.form = Container(widgets=[self.micrographs, self.filtered, self.lowpass_A, self.bin, self.contrast_button])
        self.add(self.form)
        self.add(self.status)
        self.body_layout.addStretch(1)
        self.micrographs.changed.connect(self._load)
        for w in (self.filtered, self.lowpass_A, self.bin):
            w.changed.connect(self._apply)
        self.contrast_button.changed.connect(self.contrast_from_shown)
        self._loading = False
        self._load()

    def _load(self, *_):
        layer = self.micrographs.value
        if layer is None:
            return
        s = display_settings(layer)
        self._loading = True
        try:
            self.filtered.value = s.enabled
            self.lowpass_A.value = float(s.lowpass_A or 20.0)
            self.bin.value = int(s.bin)
        finally:
            self._loading = False
        self._say(layer)

    @property
    def settings(self) -> DisplaySettings:
        return DisplaySettings(lowpass_A=float(self.lowpass_A.value), bin=int(self.bin.value),
                               enabled=bool(self.filtered.value))

    def _apply(self, *_):
        if self._loading:
            return
        layer = self.micrographs.value
        if layer is None or not is_micrographs(layer):
            return
        apply_display(layer, self.settings, self.viewer)
        self._say(layer)

    def _say(self, layer):
        d = meta(layer).get("display") or {}
        if d.get("enabled"):
            self.status.value = (f"{layer.name}: shown low-passed at {d.get('lowpass_A'):g} Å, binned "
                                 f"{d.get('bin_used', 1)}× (scoring and picking use the raw micrographs)")
        else:
            self.status.value = f"{layer.name}: shown raw"

    def contrast_from_shown(self, *_):
        layer = self.micrographs.value
        if layer is None:
            return
        from ..compute.display import display_contrast

        data = layer.data
        if np.ndim(data) == 3:
            sc = float(layer.scale[-3])
            i = int(np.clip(round((float(self.viewer.dims.point[-3]) - float(layer.translate[-3])) / sc),
                            0, data.shape[0] - 1))
            plane = np.asarray(data[i])
        else:
            plane = np.asarray(data)
        lim = display_contrast(plane)
        layer.contrast_limits_range = lim
        layer.contrast_limits = lim
