"""The state of Map validation, held once: the validation of the chosen half maps
(:class:`napari_cryodiag.workflows.maps.MapValidation`, which keeps the compute session and its
caches), the layers it came from, and a RELION ``postprocess.star`` being shown.

The validation is kept while the same two layers (the same objects with the same data) and
voxel size are chosen, so a new mask parameter recomputes only the masks and the FSC, and a new
B-factor only re-filters the cached transform. Layers are held as objects: renaming one changes
nothing but the names written in the exports.

Signals (psygnal): ``computed()`` (new curves), ``sharpened()`` (a new sharpened map),
``postprocess_changed()``.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from ...errors import CryodiagInputError
from ...workflows.maps import MapValidation, fsc_from_postprocess, load_half_maps
from .._layers import meta, pixel_size_A

__all__ = ["MapSession"]


class MapSession:
    """What Map validation validates (see the module docstring)."""

    computed = Signal()
    sharpened = Signal()
    postprocess_changed = Signal()

    def __init__(self):
        self.validation: MapValidation | None = None
        self.layers: tuple = (None, None)
        self._key = None
        #: ``(FSCResult, flags, name)`` of a postprocess.star, or None
        self.postprocess = None

    # ------------------------------------------------------------------ state
    @property
    def session(self):
        """The compute session (:class:`~napari_cryodiag.compute.maps.sharpen.ValidationSession`)."""
        return None if self.validation is None else self.validation.session

    @property
    def fsc(self):
        s = self.session
        return None if s is None else s.fsc

    @property
    def ready(self) -> bool:
        """Curves are computed (sharpening and the map views can run)."""
        return self.fsc is not None

    # ------------------------------------------------------------------ inputs
    def prepare(self, layer1, layer2, mask_layer=None, voxel_size_A: float | None = None) -> MapValidation:
        """The validation of these layers: the kept one when the half maps and voxel size are the
        same, else a new one. Bad inputs raise :class:`CryodiagInputError` naming the layers."""
        if layer1 is None or layer2 is None:
            raise CryodiagInputError("choose two half maps (3D image layers)")
        if layer1 is layer2:
            raise CryodiagInputError(f"half map 1 and half map 2 are the same layer ({layer1.name})")
        mask = None if mask_layer is None else np.asarray(mask_layer.data)
        mask_name = None if mask_layer is None else mask_layer.name
        key = (id(layer1), id(layer1.data), id(layer2), id(layer2.data), voxel_size_A or None)
        v = self.validation
        if v is not None and key == self._key:
            v.use_mask(mask, mask_name)  # checked against the grid
        else:
            inputs = load_half_maps(np.asarray(layer1.data), np.asarray(layer2.data), mask,
                                    pixel_size_A=voxel_size_A or None,
                                    voxel_sizes_A=(pixel_size_A(layer1), pixel_size_A(layer2)),
                                    names=(layer1.name, layer2.name), mask_name=mask_name)
            v = MapValidation(inputs)
            self.validation, self._key = v, key
        # the names in messages and exports are the layers' names now (layers can be renamed)
        v.inputs.half1_name, v.inputs.half2_name = layer1.name, layer2.name
        v.inputs.files = [str(p) for ly in (layer1, layer2, mask_layer) if ly is not None
                          for p in meta(ly).get("paths", []) if p]
        self.layers = (layer1, layer2)
        return v

    def forget(self) -> None:
        """The half maps went away: drop the validation."""
        self.validation, self._key, self.layers = None, None, (None, None)

    # ------------------------------------------------------------------ postprocess
    def load_postprocess(self, item) -> None:
        """Show a RELION postprocess.star (an open table of kind ``postprocess``)."""
        if item is None:
            self.postprocess = None
        else:
            if not item.path:
                raise CryodiagInputError("this postprocess table has no file to read")
            fsc, flags = fsc_from_postprocess(item.path)
            self.postprocess = (fsc, flags, item.name)
        self.postprocess_changed.emit()
