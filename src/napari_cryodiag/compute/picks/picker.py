"""Blob and template picker: a normalised correlation map over the whole micrograph, then peaks.

1. The micrograph is prepared exactly as for scoring (:func:`~.scores.prepare_micrograph`:
   binned grid, background subtracted, low-passed, protein bright), so a pick's NCC from the
   picker and from :func:`~.scores.score_micrograph` are the same quantity.
2. **Correlation map** (FFT, :mod:`scipy.fft`): for every grid position the Pearson correlation
   between the micrograph under the circular mask and each template x in-plane angle
   (masked normalised cross-correlation: three correlations, ``I*T``, ``I*M`` and ``I²*M``,
   give numerator and local variance), the best over templates and angles kept. Positions
   whose mask leaves the micrograph are NaN.
3. **Peaks**: local maxima over a square of half-width ``min_distance_px/2`` above ``ncc_min``, refined
   to sub-pixel by a parabola through the neighbours, then greedy non-maximum suppression
   (KD-tree) so that no two picks are closer than ``min_distance_px``.
4. Each pick gets ``ncc`` and ``power`` from :meth:`~.scores.PreparedMicrograph.scores` at its
   refined position (picks whose scores cannot be computed are dropped), plus
   ``template_index`` and ``angle_deg`` of the best template.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage

from .duplicates import _nms
from .scores import PreparedMicrograph, prepare_micrograph

__all__ = ["correlation_map", "find_peaks", "pick_micrograph", "PICK_COLUMNS"]

PICK_COLUMNS = ["x_px", "y_px", "ncc", "power", "template_index", "angle_deg"]


def _kernel(shape, oy, ox, values) -> np.ndarray:
    k = np.zeros(shape, dtype=np.float64)
    k[oy % shape[0], ox % shape[1]] = values
    return k


def correlation_map(prep: PreparedMicrograph, *, workers: int = 1):
    """Masked NCC of every grid position against the prepared template bank.

    Returns ``(ncc_map, best_row)`` on the grid of ``prep`` (``best_row`` indexes
    ``prep.bank_info``); NaN where the mask does not fit or the patch is constant.
    """
    img = prep.ncc_image.astype(np.float64)
    ny, nx = img.shape
    h = prep.bank_half
    oy, ox = prep.bank_oy, prep.bank_ox
    m = len(oy)
    shape = img.shape
    fi = sfft.rfft2(img, workers=workers)
    fm = np.conj(sfft.rfft2(_kernel(shape, oy, ox, 1.0), workers=workers))
    s1 = sfft.irfft2(fi * fm, s=shape, workers=workers)
    s2 = sfft.irfft2(sfft.rfft2(img * img, workers=workers) * fm, s=shape, workers=workers)
    var = s2 - s1 * s1 / m
    scale = max(float(np.max(np.abs(s2))), 1e-300)
    den = np.sqrt(np.clip(var, 0, None))
    bad = var <= 1e-10 * scale
    best = np.full(shape, -np.inf, dtype=np.float32)
    best_row = np.zeros(shape, dtype=np.int32)
    if len(prep.bank) == 1:
        num = sfft.irfft2(fi * np.conj(sfft.rfft2(_kernel(shape, oy, ox, prep.bank[0]), workers=workers)),
                          s=shape, workers=workers)
        best = num.astype(np.float32)
    else:
        # many templates x angles: single precision, batched FFTs (the numerator only; the
        # local variance above stays in double precision)
        fi32 = fi.astype(np.complex64)
        batch = int(max(1, min(32, (1 << 25) // (ny * nx))))
        ky, kx = oy % ny, ox % nx
        for r0 in range(0, len(prep.bank), batch):
            rows = prep.bank[r0 : r0 + batch]
            k = np.zeros((len(rows), ny, nx), dtype=np.float32)
            k[:, ky, kx] = rows
            num = sfft.irfft2(fi32[None] * np.conj(sfft.rfft2(k, workers=workers)), s=shape, workers=workers)
            j = np.argmax(num, axis=0)
            top = np.take_along_axis(num, j[None], axis=0)[0]
            better = top > best
            best[better] = top[better]
            best_row[better] = r0 + j[better]
    with np.errstate(invalid="ignore", divide="ignore"):
        ncc = np.where(bad, np.nan, best / np.where(bad, 1.0, den))
    ncc = np.clip(ncc, -1.0, 1.0)
    edge = np.ones(shape, bool)
    edge[h : ny - h, h : nx - h] = False
    ncc[edge] = np.nan
    return ncc.astype(np.float32), best_row


def find_peaks(score_map, min_distance: float, threshold: float = -np.inf, max_peaks: int | None = None):
    """Local maxima of ``score_map`` at least ``min_distance`` apart (grid pixels), above ``threshold``.

    Returns ``(y, x, value)`` sorted by decreasing value; positions are refined to sub-pixel
    with a parabola through each peak's neighbours (shift clipped to ±0.5).
    """
    a = np.asarray(score_map, dtype=np.float64)
    filled = np.where(np.isfinite(a), a, -np.inf)
    # candidates: maxima over a square of half-width min_distance/2 (separable, so the cost does
    # not grow with the distance); the exact spacing comes from the KD-tree suppression below
    half = max(1, int(np.floor(0.5 * min_distance)))
    mx = ndimage.maximum_filter(filled, size=2 * half + 1, mode="constant", cval=-np.inf)
    peak = (filled == mx) & np.isfinite(filled) & (filled >= threshold)
    py, px = np.nonzero(peak)
    vals = filled[py, px]
    order = np.argsort(-vals, kind="stable")
    py, px, vals = py[order], px[order], vals[order]
    ny, nx = a.shape

    def _refine(c, lo, hi):
        with np.errstate(invalid="ignore", divide="ignore"):
            den = lo - 2 * c + hi
            d = np.where(np.isfinite(lo) & np.isfinite(hi) & (den < 0), 0.5 * (lo - hi) / den, 0.0)
        return np.clip(np.nan_to_num(d), -0.5, 0.5)

    yl = filled[np.maximum(py - 1, 0), px]
    yh = filled[np.minimum(py + 1, ny - 1), px]
    xl = filled[py, np.maximum(px - 1, 0)]
    xh = filled[py, np.minimum(px + 1, nx - 1)]
    yf = py + _refine(vals, yl, yh)
    xf = px + _refine(vals, xl, xh)
    if len(vals) > 1 and min_distance > 0:
        removed, _ = _nms(np.column_stack([xf, yf]), float(min_distance) * (1 - 1e-9), np.arange(len(vals)))
        yf, xf, vals = yf[~removed], xf[~removed], vals[~removed]
    if max_peaks is not None:
        yf, xf, vals = yf[:max_peaks], xf[:max_peaks], vals[:max_peaks]
    return yf, xf, vals


def pick_micrograph(
    image,
    *,
    diameter_px: float,
    templates=None,
    n_angles: int = 36,
    min_distance_px: float | None = None,
    ncc_min: float = 0.1,
    max_picks: int | None = None,
    min_diameter_px: float | None = None,
    max_diameter_px: float | None = None,
    score_image=None,
    pixel_size_A: float | None = None,
    lowpass_A: float | None = None,
    power_lowpass_A: float | None = None,
    background_sigma_px: float | None = None,
    particle_contrast: str = "dark",
    template_pixel_size_A: float | None = None,
    bin_factor: int | None = None,
    workers: int = 1,
    path=None,
) -> pd.DataFrame:
    """Pick particles on one micrograph with a blob (``templates=None``) or 2D templates.

    Parameters are those of :func:`~.scores.score_micrograph`, plus:

    min_distance_px
        Minimum distance between picks (default: ``diameter_px``), raw-micrograph pixels.
    ncc_min
        Keep peaks whose map NCC is at least this (thresholds are refined later, on the NCC x
        power histogram).
    max_picks
        Keep at most this many (best first).
    workers
        Threads for the FFTs (1 by default: parallelism comes from one task per micrograph).

    Returns
    -------
    DataFrame with columns ``x_px, y_px, ncc, power, template_index, angle_deg`` (canonical
    pick coordinates of ``image``), best NCC first.
    """
    prep = prepare_micrograph(
        image, diameter_px=diameter_px, templates=templates, n_angles=n_angles,
        min_diameter_px=min_diameter_px, max_diameter_px=max_diameter_px, score_image=score_image,
        pixel_size_A=pixel_size_A, lowpass_A=lowpass_A, power_lowpass_A=power_lowpass_A,
        background_sigma_px=background_sigma_px, particle_contrast=particle_contrast,
        template_pixel_size_A=template_pixel_size_A, bin_factor=bin_factor, path=path,
    )
    ncc_map, best_row = correlation_map(prep, workers=workers)
    min_d = float(diameter_px if min_distance_px is None else min_distance_px)
    yg, xg, _ = find_peaks(ncc_map, min_d * prep.scale, ncc_min)
    x, y = prep.from_grid(xg, yg)
    ncc, power = prep.scores(x, y)
    rows = best_row[np.rint(yg).astype(int), np.rint(xg).astype(int)] if len(yg) else np.zeros(0, int)
    info = prep.bank_info
    out = pd.DataFrame(
        {
            "x_px": x,
            "y_px": y,
            "ncc": ncc,
            "power": power,
            "template_index": np.array([info[r][0] for r in rows], dtype=np.int64) if templates is not None
            else np.full(len(rows), -1, dtype=np.int64),
            "angle_deg": np.array([info[r][1] for r in rows], dtype=np.float64),
        },
        columns=PICK_COLUMNS,
    )
    out = out[np.isfinite(out["ncc"]) & np.isfinite(out["power"])]
    out = out.sort_values("ncc", ascending=False, kind="stable")
    if max_picks is not None:
        out = out.iloc[: int(max_picks)]
    out = out.reset_index(drop=True)
    out.attrs["picker"] = {
        "kind": "blob" if templates is None else "template",
        "diameter_px": float(diameter_px),
        "min_distance_px": min_d,
        "ncc_min": float(ncc_min),
        "bin_factor": prep.bin_factor,
        "n_angles": int(n_angles) if templates is not None else 1,
    }
    return out
