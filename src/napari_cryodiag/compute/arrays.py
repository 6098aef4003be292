"""Checks over large arrays, slab by slab, without full-size temporaries (a 512³ float32 map is 512 MiB:
``np.isfinite(a).all()`` alone would allocate another 128 MiB)."""

from __future__ import annotations

import numpy as np

#: elements per slab
CHUNK_ELEMENTS = 1 << 22


def _flat(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.reshape(-1) if a.flags.c_contiguous else np.ravel(a)


def count_nonfinite(data: np.ndarray, chunk_elements: int = CHUNK_ELEMENTS) -> int:
    """Number of NaN/inf values (a slab whose float64 sum is finite holds none: fast path)."""
    flat = _flat(data)
    if flat.dtype.kind not in "fc":
        return 0
    bad = 0
    for i in range(0, flat.size, chunk_elements):
        part = flat[i : i + chunk_elements]
        with np.errstate(over="ignore", invalid="ignore"):
            finite_sum = np.isfinite(part.sum(dtype=np.float64))
        if not finite_sum:
            bad += int(np.count_nonzero(~np.isfinite(part)))
    return bad


def arrays_equal(a: np.ndarray, b: np.ndarray, chunk_elements: int = CHUNK_ELEMENTS) -> bool:
    """``np.array_equal`` slab by slab (stops at the first slab that differs)."""
    if np.shape(a) != np.shape(b):
        return False
    fa, fb = _flat(a), _flat(b)
    return all(np.array_equal(fa[i : i + chunk_elements], fb[i : i + chunk_elements])
               for i in range(0, fa.size, chunk_elements))
