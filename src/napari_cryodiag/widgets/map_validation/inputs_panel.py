"""Map validation, inputs: the two half maps, the mask, the voxel size, and map files to open.

magicgui: ``half1``/``half2`` (3D maps that are not masks nor layers a widget computed; half-map
names first), ``mask`` (masks only; empty = the automatic masks only), ``voxel_size_A`` (0 = from
the layers), ``open_maps`` (files opened as napari's File > Open does). The two half-map
choosers default to two different layers (a pair named as halves 1 and 2 when there is one) and
keep the user's choice while it stays valid.
"""

from __future__ import annotations

from magicgui.widgets import Container, FileEdit, FloatSpinBox

from .._layers import chooser, half_map_choices, is_mask, layer_choices, mask_choices, pair_of_half_maps

__all__ = ["InputsPanel"]


class InputsPanel:
    def __init__(self, dock):
        self.dock = dock
        v = dock.viewer
        self.half1 = chooser(layer_choices(v, half_map_choices), label="half map 1")
        self.half2 = chooser(layer_choices(v, half_map_choices), label="half map 2")
        self.mask = chooser(layer_choices(v, mask_choices), label="mask", none="automatic masks only",
                            tooltip="a mask of yours for the corrected FSC (the automatic spherical, loose and "
                                    "tight masks are always computed)")
        self.voxel_size_A = FloatSpinBox(label="voxel size (Å)", value=0.0, min=0.0, max=100.0, step=0.01,
                                         tooltip="0: from the layers (their file header or scale)")
        self.voxel_size_A.native.setDecimals(4)
        self.voxel_size_A.native.setSpecialValueText("from the layers")
        self.open_maps = FileEdit(label="open maps", mode="rm", filter="Maps (*.mrc *.map *.rec *.mrc.gz)",
                                  tooltip="half maps (and a mask) to open as layers")
        self.choosers = Container(widgets=[self.half1, self.half2, self.mask])
        self.files = Container(widgets=[self.voxel_size_A, self.open_maps])
        dock.track(self.choosers)
        self.open_maps.changed.connect(self._on_open)
        self._picking = False
        self.choose_defaults()

    # ------------------------------------------------------------------ defaults
    def choose_defaults(self, force: bool = False) -> None:
        """Two different half maps: keep a valid choice of two layers, else the best pair."""
        a, b = self.half1.value, self.half2.value
        if not force and a is not None and b is not None and a is not b:
            return
        one, two = pair_of_half_maps(list(self.dock.viewer.layers))
        self._picking = True
        try:
            if one is not None:
                self.half1.value = one
            if two is not None:
                self.half2.value = two
        finally:
            self._picking = False

    def _on_open(self, paths):
        new = self.dock.open_layers(paths or ())
        if not new:
            return
        halves = [ly for ly in new if ly in (self.half1.choices or ())]
        masks = [ly for ly in new if is_mask(ly)]
        if len(halves) >= 2:
            self.half1.value, self.half2.value = halves[0], halves[1]
        elif halves:
            self.choose_defaults(force=True)
        if masks:
            self.mask.reset_choices()
            self.mask.value = masks[0]
        self.dock.report(f"opened {', '.join(ly.name for ly in new) or 'nothing'}")
