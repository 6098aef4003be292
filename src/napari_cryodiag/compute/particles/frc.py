"""Fourier ring correlation of 2D images (e.g. two half-set class averages) and its crossings.

Shells are those of :mod:`napari_cryodiag.compute.fourier` (``round(|k|)`` on the ``rfft2``
layout, shells ``0 .. n//2``; shell ``i`` at ``i / (n * pixel_size_A)`` 1/Å)::

    FRC(i) = sum Re(F1 conj F2) / sqrt(sum |F1|^2 * sum |F2|^2)     (over shell i)

The DC shell is 1 by convention. A shell where either image has no power gets 0.

Resolution at a threshold (default 0.5 for class averages, REFERENCE.md "Classes"): the first
shell ``i >= 1`` where the curve drops below the threshold; ``interpolate=True`` (default)
interpolates linearly in frequency between shells ``i-1`` and ``i``, ``interpolate=False``
reports shell ``i-1`` (RELION's "last shell above"). A curve that never drops below the
threshold is *Nyquist-limited*: the resolution reported is Nyquist (``2 * pixel_size_A``) and
the flag says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fourier import n_shells, shell_frequencies_invA, shell_index

__all__ = ["frc", "FRCResult", "frc_result", "threshold_crossing", "resolutions_at", "soft_circular_mask"]


def soft_circular_mask(n: int, radius_px: float | None = None, edge_px: float = 4.0) -> np.ndarray:
    """A float32 disc of radius ``radius_px`` (default ``0.45 n - edge``) centred at ``n // 2``,
    with a raised-cosine edge of ``edge_px`` pixels."""
    if radius_px is None:
        radius_px = 0.45 * n - edge_px
    g = np.arange(n) - n // 2
    r = np.hypot(g[:, None], g[None, :])
    m = np.ones((n, n), dtype=np.float64)
    if edge_px > 0:
        t = np.clip((r - radius_px) / edge_px, 0.0, 1.0)
        m = 0.5 * (1.0 + np.cos(np.pi * t))
    else:
        m[r > radius_px] = 0.0
    return m.astype(np.float32)


def frc(a: np.ndarray, b: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
    """FRC of two images or two stacks ``(..., n, n)``; returns ``(..., n//2+1)`` float64.

    ``mask`` (``(n, n)``, values in [0, 1]) multiplies both images first.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"FRC needs images of the same shape, got {a.shape} and {b.shape}")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"FRC needs square images, got shape {a.shape}")
    n = a.shape[-1]
    lead = a.shape[:-2]
    a = a.reshape((-1, n, n))
    b = b.reshape((-1, n, n))
    if mask is not None:
        a = a * mask
        b = b * mask
    fa = np.fft.rfft2(a)
    fb = np.fft.rfft2(b)
    idx = shell_index((n, n))
    m = n_shells(n)
    k = a.shape[0]
    # one bincount for the whole stack: shell index offset by (m + 1) per image
    offs = (np.arange(k) * (m + 1))[:, None, None] + idx[None]
    flat = offs.ravel()
    size = k * (m + 1)

    def sums(v):
        return np.bincount(flat, weights=v.ravel(), minlength=size).reshape(k, m + 1)[:, :m]

    cross = sums((fa * np.conj(fb)).real)
    pa = sums(fa.real**2 + fa.imag**2)
    pb = sums(fb.real**2 + fb.imag**2)
    den = np.sqrt(pa * pb)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, cross / np.where(den > 0, den, 1.0), 0.0)
    out[:, 0] = 1.0
    return out.reshape(lead + (m,))


@dataclass
class FRCResult:
    """An FRC curve with its frequencies and the resolution at ``threshold``."""

    frc: np.ndarray
    frequency_invA: np.ndarray
    threshold: float
    resolution_A: float
    crossing_shell: float  # fractional shell of the crossing (nan if Nyquist-limited)
    nyquist_limited: bool
    interpolated: bool


def threshold_crossing(
    curve: np.ndarray, threshold: float = 0.5, *, interpolate: bool = True
) -> tuple[float, bool]:
    """Fractional shell where ``curve`` first drops below ``threshold`` (shells >= 1).

    Returns ``(shell, nyquist_limited)``; ``shell`` is ``len(curve) - 1`` (Nyquist) with
    ``nyquist_limited=True`` when the curve never drops below. Without interpolation, the last
    shell at or above the threshold is returned (0 when already shell 1 is below).
    """
    c = np.asarray(curve, dtype=np.float64)
    below = np.nonzero(c[1:] < threshold)[0]
    if below.size == 0:
        return float(len(c) - 1), True
    i = int(below[0]) + 1
    if not interpolate:
        return float(i - 1), False
    c0, c1 = c[i - 1], c[i]
    frac = (c0 - threshold) / (c0 - c1) if c0 != c1 else 0.0
    return float(i - 1 + np.clip(frac, 0.0, 1.0)), False


def _shell_to_resolution_A(shell: float, n: int, pixel_size_A: float) -> float:
    return float(n * pixel_size_A / shell) if shell > 0 else float("inf")


def frc_result(
    a: np.ndarray,
    b: np.ndarray,
    pixel_size_A: float,
    *,
    threshold: float = 0.5,
    interpolate: bool = True,
    mask: np.ndarray | None = None,
) -> FRCResult:
    """FRC of two images and its resolution (Å) at ``threshold``."""
    curve = frc(a, b, mask=mask)
    n = np.asarray(a).shape[-1]
    shell, nyq = threshold_crossing(curve, threshold, interpolate=interpolate)
    return FRCResult(
        frc=curve,
        frequency_invA=shell_frequencies_invA(n, pixel_size_A),
        threshold=threshold,
        resolution_A=_shell_to_resolution_A(shell, n, pixel_size_A),
        crossing_shell=float("nan") if nyq else shell,
        nyquist_limited=nyq,
        interpolated=interpolate,
    )


def resolutions_at(
    curves: np.ndarray, n: int, pixel_size_A: float, threshold: float = 0.5, *, interpolate: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Resolution (Å) and Nyquist-limited flag for each curve of a ``(k, n//2+1)`` array."""
    curves = np.atleast_2d(curves)
    res = np.empty(len(curves))
    nyq = np.zeros(len(curves), dtype=bool)
    for j, c in enumerate(curves):
        s, nyq[j] = threshold_crossing(c, threshold, interpolate=interpolate)
        res[j] = _shell_to_resolution_A(s, n, pixel_size_A)
    return res, nyq
