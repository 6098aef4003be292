"""Micrographs as the viewer shows them: a lazy, filtered view of a lazy stack.

:func:`display_stack` wraps a stack (dask or numpy, axis 0 = micrograph) in a dask array whose
chunk ``i`` is micrograph ``i`` binned and low-passed (:func:`napari_cryodiag.compute.display.display_image`).
Nothing is read or filtered until a micrograph is shown; the last few filtered micrographs are
kept (:class:`DisplayCache`), so going back and forth costs nothing. The raw stack stays what
scoring and picking read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..compute.display import auto_bin, display_contrast, display_image

__all__ = ["DisplaySettings", "DisplayCache", "display_stack", "display_geometry"]


@dataclass(frozen=True)
class DisplaySettings:
    """How micrographs are shown: low-passed at ``lowpass_A`` and binned by ``bin`` (0: automatic)."""

    lowpass_A: float | None = 20.0
    bin: int = 0
    enabled: bool = True

    def bin_for(self, shape, pixel_size_A) -> int:
        if not self.enabled:
            return 1
        return int(self.bin) if self.bin and self.bin > 0 else auto_bin(shape, pixel_size_A, self.lowpass_A)


class DisplayCache:
    """The last ``size`` filtered micrographs, by (stack id, index, settings)."""

    def __init__(self, size: int = 8):
        self.size = int(size)
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key, make):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = make()
        with self._lock:
            self.misses += 1
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_CACHE = DisplayCache()


def display_geometry(raw_shape, pixel_size_A, b: int) -> dict:
    """``scale`` and ``translate`` (Å) that put a ``b``-binned image on the raw pixel grid: binned
    pixel ``j`` covers raw pixels ``b·j .. b·j + b - 1``, centred at ``b·j + (b - 1) / 2``."""
    apix = float(pixel_size_A or 1.0)
    return {"scale": (apix * b, apix * b), "translate": ((b - 1) / 2 * apix, (b - 1) / 2 * apix),
            "shape": (int(raw_shape[-2]) // b, int(raw_shape[-1]) // b)}


def display_stack(raw, pixel_size_A: float | None, settings: DisplaySettings, *, cache: DisplayCache | None = None,
                  token: str | None = None):
    """The filtered lazy view of ``raw`` (3D: one chunk per micrograph; 2D: one micrograph).

    Returns ``(data, bin)``: a dask array (float32) and the binning used.
    """
    import dask.array as da

    cache = cache or _CACHE
    is_2d = np.ndim(raw) == 2
    stack = raw[None] if is_2d else raw
    if not isinstance(stack, da.Array):
        stack = da.from_array(np.asarray(stack), chunks=(1,) + tuple(np.shape(stack)[1:]))
    else:
        stack = stack.rechunk((1,) + tuple(stack.shape[1:]))
    b = settings.bin_for(stack.shape, pixel_size_A)
    lp = settings.lowpass_A if settings.enabled else None
    ny, nx = int(stack.shape[1]) // b, int(stack.shape[2]) // b
    tok = token or f"{id(raw)}"

    def block(x, block_info=None):
        i = block_info[0]["chunk-location"][0] if block_info else 0
        key = (tok, i, lp, b)
        return cache.get(key, lambda: display_image(np.asarray(x[0]), pixel_size_A, lowpass_A=lp, bin=b)[None])

    out = stack.map_blocks(block, dtype=np.float32, chunks=((1,) * stack.shape[0], (ny,), (nx,)),
                           name=f"cryodiag-display-{tok}-{lp}-{b}")
    return (out[0] if is_2d else out), b


def contrast_of(data, index: int = 0) -> tuple[float, float]:
    """Contrast limits of filtered micrograph ``index`` of ``data`` (computes that micrograph only)."""
    plane = data[index] if np.ndim(data) == 3 else data
    return display_contrast(np.asarray(plane))
