"""Micrographs for the eye: binned and low-passed so that particles are visible.

A raw micrograph at 0.5-1.5 Å/px is dominated by shot noise at full resolution; particles show at
10-30 Å. :func:`display_image` bins by block means (``bin`` × ``bin`` pixels) and then applies a
Gaussian low-pass whose amplitude falls to one half at ``lowpass_A``:
``H(f) = exp(-f² / (2 σ_f²))`` with ``σ_f = (1 / lowpass_A) / sqrt(2 ln 2)``, i.e. a real-space
Gaussian of ``σ = 1 / (2π σ_f)`` Å. Edges are reflected so that the border does not ring.

:func:`auto_bin` chooses a display binning that keeps the low-pass well sampled (at least 3
binned pixels per ``lowpass_A``) and the shown image at most ``max_px`` on a side.
:func:`display_contrast` gives contrast limits from percentiles of the filtered image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["display_image", "auto_bin", "display_contrast", "lowpass_sigma_px", "bin_image"]


def lowpass_sigma_px(lowpass_A: float, pixel_size_A: float) -> float:
    """Real-space Gaussian sigma (pixels of size ``pixel_size_A``) whose transfer is 1/2 at ``lowpass_A``."""
    sigma_f = (1.0 / float(lowpass_A)) / np.sqrt(2.0 * np.log(2.0))
    return float(1.0 / (2.0 * np.pi * sigma_f) / float(pixel_size_A))


def bin_image(image: np.ndarray, b: int) -> np.ndarray:
    """Block means of ``b`` × ``b`` pixels (float32; the ragged border rows/columns are dropped)."""
    a = np.asarray(image, dtype=np.float32)
    b = int(b)
    if b <= 1:
        return a
    ny, nx = (a.shape[0] // b) * b, (a.shape[1] // b) * b
    return a[:ny, :nx].reshape(ny // b, b, nx // b, b).mean(axis=(1, 3), dtype=np.float32)


def auto_bin(shape, pixel_size_A: float | None, lowpass_A: float | None, *, max_px: int = 2048) -> int:
    """Display binning: the largest power of two that keeps 3 binned pixels per ``lowpass_A``, and
    at least what brings the image under ``max_px`` on its longer side."""
    n = max(int(s) for s in shape[-2:])
    need = 1
    while n / need > max_px:
        need *= 2
    if not pixel_size_A or not lowpass_A:
        return need
    allowed = 1
    while pixel_size_A * allowed * 2 * 3 <= lowpass_A:
        allowed *= 2
    return max(need, allowed if n / allowed >= 256 else need)


def display_image(image: np.ndarray, pixel_size_A: float | None, *, lowpass_A: float | None = 20.0,
                  bin: int = 1) -> np.ndarray:
    """Binned, low-passed float32 copy of a 2D ``image`` (see the module docstring).

    ``lowpass_A`` None (or no pixel size) skips the low-pass; ``bin`` 1 skips binning.
    """
    out = bin_image(image, bin)
    if lowpass_A and pixel_size_A:
        sigma = lowpass_sigma_px(lowpass_A, float(pixel_size_A) * max(int(bin), 1))
        if sigma > 0.3:
            out = ndimage.gaussian_filter(out, sigma, mode="reflect", truncate=3.0)
    return out.astype(np.float32, copy=False)


def display_contrast(image: np.ndarray, percentiles=(0.5, 99.5), max_samples: int = 500_000) -> tuple[float, float]:
    """Contrast limits from percentiles of a (filtered) image, on a strided subsample."""
    a = np.asarray(image)
    step = max(1, int(np.sqrt(a.size / max_samples)))
    v = a[::step, ::step].astype(np.float64).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = np.percentile(v, percentiles)
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)
