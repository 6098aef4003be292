"""Blob and template picker: a detection map over the whole micrograph, then peaks, then a selection.

1. The micrograph is prepared exactly as for scoring (:func:`~.scores.prepare_micrograph`:
   binned grid, background subtracted, low-passed, protein bright), so a pick's NCC and power
   from the picker and from :func:`~.scores.score_micrograph` are the same quantities.
2. **Detection map.**

   - Blob (default, ``detector="energy"``): the *local energy* of a band-passed image, i.e. a
     power map (:func:`energy_map`). The image is low-passed at ``pick_lowpass_A`` (default
     15 Å, or a sixth of the diameter without a pixel size), binned by a third of that length,
     background subtracted, high-passed by subtracting a Gaussian of sigma half a diameter,
     squared, and smoothed with a Gaussian of sigma a quarter diameter. A particle is where the
     micrograph carries more signal than noise, whatever the CTF makes of it: at 0.8-3 µm
     defocus the particle's contrast lies between ~80 and ~15 Å, where a disk template (mass)
     sees little of it. On the sample data 96 % of the particles have a peak of this map within
     a quarter diameter; the disk-NCC picker found 46 % (its peaks wander by ~10 px in the
     noise). Flat disks without a CTF (mass contrast: negative stain) are the NCC detector's
     case: this one sees only their rims. The map is divided by its white-noise gain
     (:func:`white_noise_gain`: how much the filters amplify white noise at each position), so
     that the edge rows and columns, where the reflecting filters average fewer pixels, are not
     brighter and peaks near the edges are picked like the others.
   - Templates (``detector="ncc"``, the default with ``templates``): the masked NCC of every grid
     position against each template x in-plane angle (FFT, :mod:`scipy.fft`; three correlations,
     ``I*T``, ``I*M`` and ``I²*M``, give numerator and local variance), the best kept; positions
     whose mask leaves the micrograph are NaN.
3. **Peaks**: local maxima over a square of half-width ``min_distance_px/2``, refined to sub-pixel
   by a parabola through the neighbours, then greedy non-maximum suppression (KD-tree) so that no
   two picks are closer than ``min_distance_px``.
4. **Selection** (``select=True``, default; ``False`` keeps every peak for thresholds set later):

   - energy: the noise floor of the map is the mode of its log values (histogram of the lower
     60 %), its spread ``(mode - 5th percentile) / 1.645``; peaks below ``mode + energy_sigmas x
     spread`` (default 2.75) are noise (on pure noise about 5 % of the peaks pass); then picks
     with ``ncc < ncc_min`` (default -0.1: not even a faint blob at the right size) go; then,
     with 10 picks or more, those whose log energy exceeds the median of the rest by more than
     ``junk_mads`` (default 3) robust standard deviations (aggregates, carbon edges, ice: far
     more power than a particle). Each pick's ``energy`` is its peak's value over the noise
     floor.
   - ncc: peaks with map NCC below ``ncc_min`` (default 0.1) go.

   On the sample data (:func:`napari_cryodiag.simulate.micrographs.simulate_micrographs`, 8
   micrographs of 1024², seeds 0-4, true diameter) the blob picker finds 92-96 % of the true
   particles within a quarter diameter at 88-90 % precision (tests/test_picker.py); against
   RELION's LoG picker on simulated micrographs, it finds 93 % of RELION's picks that lie on
   particles.
5. Each pick gets ``ncc`` and ``power`` from :meth:`~.scores.PreparedMicrograph.scores` at its
   refined position (picks near the edge are scored over the part of their box on the
   micrograph), plus ``template_index`` and ``angle_deg`` of the best template.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage

from .duplicates import _nms
from .scores import PreparedMicrograph, ScoreOptions, prepare_micrograph

__all__ = ["correlation_map", "energy_map", "white_noise_gain", "noise_floor", "find_peaks", "pick_micrograph",
           "PICK_COLUMNS", "DETECTORS"]

PICK_COLUMNS = ["x_px", "y_px", "ncc", "power", "template_index", "angle_deg", "energy"]
DETECTORS = ("energy", "ncc")

#: default band and smoothing of the energy detector (fractions of the particle diameter; Å)
PICK_LOWPASS_A = 15.0
HIGHPASS_DIAMETERS = 0.5
SMOOTH_DIAMETERS = 0.25


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


def _operator_rows(n: int, positions: np.ndarray, sigmas) -> np.ndarray:
    """Rows ``positions`` of the 1D operator "Gaussian filters of ``sigmas`` in turn, reflecting
    at the ends" on ``n`` samples (the operator is symmetric: a row is the filtered impulse)."""
    imp = np.zeros((len(positions), n))
    imp[np.arange(len(positions)), positions] = 1.0
    for sg in sigmas:
        if sg and sg > 0:
            imp = ndimage.gaussian_filter1d(imp, sg, axis=1, mode="reflect")
    return imp


def _gain_profiles(n: int, lowpass_sigma: float, highpass_sigma: float, reach: float):
    """Per-position terms ``(|A|², <A, B>, |B|²)`` of ``o = (I - H) L n`` on one axis, with
    ``A = L`` (low-pass) and ``B = H L``: rows differ from the interior only within ``reach``
    samples of an end, so only those (and one interior row) are computed."""
    w = int(np.ceil(reach))
    if 2 * w + 1 >= n:
        pos = np.arange(n)
    else:
        pos = np.concatenate([np.arange(w), [n // 2], np.arange(n - w, n)])
    a = _operator_rows(n, pos, [lowpass_sigma])
    b = _operator_rows(n, pos, [lowpass_sigma, highpass_sigma]) if highpass_sigma else np.zeros_like(a)
    terms = [np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", a, b), np.einsum("ij,ij->i", b, b)]
    if len(pos) == n:
        return terms
    out = []
    for t in terms:
        full = np.full(n, t[w])
        full[:w] = t[:w]
        full[n - w :] = t[w + 1 :]
        out.append(full)
    return out


def white_noise_gain(shape, lowpass_sigma: float, highpass_sigma: float, smooth_sigma: float) -> np.ndarray:
    """Expected energy map of unit white noise through the energy detector's filters.

    The band-pass ``o = (I - H) L n`` (Gaussians with reflecting ends) has variance
    ``|A|²_y |A|²_x - 2 <A,B>_y <A,B>_x + |B|²_y |B|²_x`` at each pixel (every term separable),
    and the smoothing ``S`` of ``o²`` is separable too, so the map is three outer products of 1D
    profiles. It is flat in the interior and rises near the edges (fewer independent pixels
    under the filters). The wide background subtraction is left out (its weight per pixel is
    ~1/(2π sigma²), negligible).
    """
    ny, nx = (int(v) for v in shape)
    reach = 4.0 * (lowpass_sigma + highpass_sigma) + 1
    gy = _gain_profiles(ny, lowpass_sigma, highpass_sigma, reach)
    gx = _gain_profiles(nx, lowpass_sigma, highpass_sigma, reach)
    sm = lambda v: ndimage.gaussian_filter1d(v, smooth_sigma, mode="reflect") if smooth_sigma else v  # noqa: E731
    gain = np.zeros((ny, nx))
    for sign, ty, tx in ((1.0, gy[0], gx[0]), (-2.0, gy[1], gx[1]), (1.0, gy[2], gx[2])):
        gain += sign * np.outer(sm(ty), sm(tx))
    return gain


def energy_map(
    prep: PreparedMicrograph,
    *,
    lowpass_A: float | None = None,
    highpass_diameters: float = HIGHPASS_DIAMETERS,
    smooth_diameters: float = SMOOTH_DIAMETERS,
):
    """Local energy of the band-passed micrograph, over its white-noise gain, on its own grid.

    Band: low-pass at ``lowpass_A`` (default :data:`PICK_LOWPASS_A`; a sixth of the diameter when
    the pixel size is unknown; never below 2 pixels) on the full-resolution image, which is then
    binned by a third of that length (so noise beyond the band does not fold back into it);
    background subtracted as for scoring; high-pass by subtracting a Gaussian of sigma
    ``highpass_diameters`` diameters; squared and smoothed by a Gaussian of sigma
    ``smooth_diameters`` diameters. In noise-only areas the map's value is the noise variance in
    the band, also along the edges.

    Returns ``(map, scale)``: float64 on a grid with ``g = (raw + 0.5) * scale - 0.5``.
    """
    from .scores import _bin_mean, background_estimate, lowpass_sigma_px

    src = prep.source_image
    if src is None:
        raise ValueError("this PreparedMicrograph keeps no source image (prepare it with prepare_micrograph)")
    d_src = prep.diameter_grid * prep.bin_factor  # diameter in source pixels
    if lowpass_A is None:
        lowpass_A = PICK_LOWPASS_A if prep.source_pixel_size_A else None
    apix = prep.source_pixel_size_A
    lp = float(lowpass_A) / float(apix) if lowpass_A and apix else d_src / 6.0
    lp = max(lp, 2.0)
    f = max(1, int(lp // 3))
    img = ndimage.gaussian_filter(np.asarray(src, dtype=np.float32), lowpass_sigma_px(lp, 1.0), mode="reflect")
    g = _bin_mean(img, f).astype(np.float64)
    if prep.background_sigma_source:
        g -= background_estimate(g, prep.background_sigma_source / f)
    else:
        g -= g.mean()
    d = d_src / f
    hp = float(highpass_diameters) * d
    if hp > 0:
        g -= ndimage.gaussian_filter(g, hp, mode="reflect")
    sm = float(smooth_diameters) * d
    e = ndimage.gaussian_filter(g * g, sm, mode="reflect")
    gain = white_noise_gain(e.shape, lowpass_sigma_px(lp, 1.0) / f, hp, sm)
    return e / (gain / gain[e.shape[0] // 2, e.shape[1] // 2]), prep.source_scale / f


def noise_floor(values, *, max_samples: int = 1 << 20) -> tuple[float, float]:
    """``(mode, spread)`` of the log of a detection map's noise: the mode of the histogram of the
    lower 60 % of the log values, and ``(mode - 5th percentile) / 1.645``. ``(nan, nan)`` when
    the map has no positive finite value."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size > max_samples:
        v = v[:: int(np.ceil(v.size / max_samples))]
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 16:
        return float("nan"), float("nan")
    lv = np.log(v)
    q05, q60 = np.percentile(lv, [5, 60])
    if not q60 > q05:
        return float(q05), 0.0
    cnt, edges = np.histogram(lv[lv <= q60], bins=200, range=(float(lv.min()), float(q60)))
    cnt = ndimage.gaussian_filter1d(cnt.astype(np.float64), 3.0)
    j = int(np.argmax(cnt))
    mode = 0.5 * (edges[j] + edges[j + 1])
    return float(mode), float(max(mode - q05, 0.0) / 1.645)


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
    options: ScoreOptions | None = None,
    *,
    score_image=None,
    detector: str | None = None,
    min_distance_px: float | None = None,
    select: bool = True,
    ncc_min: float | None = None,
    energy_sigmas: float = 2.75,
    junk_mads: float | None = 3.0,
    pick_lowpass_A: float | None = None,
    max_picks: int | None = None,
    workers: int = 1,
    path=None,
    **kwargs,
) -> pd.DataFrame:
    """Pick particles on one micrograph with a blob (``templates=None``) or 2D templates.

    ``options`` (:class:`~.scores.ScoreOptions`, or its fields as keywords: ``diameter_px``,
    ``templates``, ``pixel_size_A``, ...) and ``score_image`` as in
    :func:`~.scores.score_micrograph`, plus:

    detector
        ``"energy"`` (default without templates) or ``"ncc"`` (default with templates; also a
        blob NCC map): module docstring, step 2.
    min_distance_px
        Minimum distance between picks (default: ``diameter_px``), raw-micrograph pixels.
    select
        Apply the selection of step 4 (default); ``False`` returns every peak (energy) or every
        peak with NCC >= ``ncc_min`` (ncc), for thresholds set later on the NCC x power histogram.
    ncc_min
        Lowest NCC kept: default -0.1 (energy detector: only picks with no blob at all go) or
        0.1 (NCC map peaks).
    energy_sigmas, junk_mads
        Energy detector: noise threshold in noise spreads above the noise floor, and the upper
        bound in robust standard deviations of log energy above the picks' median (``None``: none).
    pick_lowpass_A
        Low-pass of the energy detector's band (default 15 Å; a sixth of the diameter without a
        pixel size).
    max_picks
        Keep at most this many (best first: highest energy, or highest NCC).
    workers
        Threads for the FFTs (1 by default: parallelism comes from one task per micrograph).

    Returns
    -------
    DataFrame with columns ``x_px, y_px, ncc, power, template_index, angle_deg, energy`` (canonical
    pick coordinates of ``image``; ``energy`` NaN for the NCC detector), best first;
    ``attrs["picker"]`` records the detector, thresholds and counts.
    """
    o = ScoreOptions.build(options, **kwargs)
    detector = detector or ("energy" if o.templates is None else "ncc")
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
    prep = prepare_micrograph(image, o, score_image=score_image, path=path)
    min_d = float(o.diameter_px if min_distance_px is None else min_distance_px)
    record = {
        "kind": "blob" if o.templates is None else "template",
        "detector": detector,
        "diameter_px": float(o.diameter_px),
        "min_distance_px": min_d,
        "bin_factor": prep.bin_factor,
        "n_angles": int(o.n_angles) if o.templates is not None else 1,
        "select": bool(select),
    }
    if detector == "energy":
        emap, escale = energy_map(prep, lowpass_A=pick_lowpass_A)
        mode, spread = noise_floor(emap)
        if select and not (np.isfinite(mode) and spread > 0):
            emap = np.full_like(emap, np.nan)  # a flat map: no noise model, nothing stands out
        yg, xg, val = find_peaks(emap, min_d * escale)
        yg, xg = (yg + 0.5) / escale * prep.scale - 0.5, (xg + 0.5) / escale * prep.scale - 0.5  # to the scoring grid
        energy = np.exp(np.log(np.maximum(val, 1e-300)) - mode) if np.isfinite(mode) else np.full(len(val), np.nan)
        rows = np.zeros(len(yg), dtype=np.int64)
        ncc_min = -0.1 if ncc_min is None else float(ncc_min)
        record.update(noise_floor_log=mode, noise_spread_log=spread, energy_sigmas=float(energy_sigmas),
                      junk_mads=None if junk_mads is None else float(junk_mads), n_peaks=int(len(yg)))
    else:
        ncc_map, best_row = correlation_map(prep, workers=workers)
        ncc_min = 0.1 if ncc_min is None else float(ncc_min)
        yg, xg, val = find_peaks(ncc_map, min_d * prep.scale, ncc_min)
        energy = np.full(len(yg), np.nan)
        rows = best_row[np.rint(yg).astype(int), np.rint(xg).astype(int)] if len(yg) else np.zeros(0, int)
    record["ncc_min"] = ncc_min
    x, y = prep.from_grid(xg, yg)
    ncc, power, best = prep.scores(x, y, return_best=True)
    if detector == "energy":
        rows = np.maximum(best, 0)
    info = prep.bank_info
    out = pd.DataFrame(
        {
            "x_px": x,
            "y_px": y,
            "ncc": ncc,
            "power": power,
            "template_index": np.array([info[r][0] for r in rows], dtype=np.int64) if o.templates is not None
            else np.full(len(rows), -1, dtype=np.int64),
            "angle_deg": np.array([info[r][1] for r in rows], dtype=np.float64),
            "energy": energy,
        },
        columns=PICK_COLUMNS,
    )
    out = out[np.isfinite(out["ncc"]) & np.isfinite(out["power"])]
    if detector == "energy" and select:
        n0 = len(out)
        if np.isfinite(mode) and spread > 0:
            out = out[np.log(out["energy"]) >= float(energy_sigmas) * spread]
        else:  # a flat map: no noise model, nothing stands out
            out = out.iloc[:0]
        n_noise = n0 - len(out)
        out = out[out["ncc"] >= ncc_min]
        n_ncc = n0 - n_noise - len(out)
        upper = None
        if junk_mads is not None and len(out) >= 10:
            le = np.log(out["energy"].to_numpy())
            med = float(np.median(le))
            mad = 1.4826 * float(np.median(np.abs(le - med)))
            upper = med + float(junk_mads) * mad
            out = out[le <= upper]
        record.update(n_below_noise=int(n_noise), n_below_ncc=int(n_ncc),
                      n_above_junk_bound=int(n0 - n_noise - n_ncc - len(out)),
                      energy_threshold=float(np.exp(energy_sigmas * spread)) if spread == spread else None,
                      energy_upper=None if upper is None else float(np.exp(upper)))
    key = "energy" if detector == "energy" else "ncc"
    out = out.sort_values(key, ascending=False, kind="stable")
    if max_picks is not None:
        out = out.iloc[: int(max_picks)]
    out = out.reset_index(drop=True)
    out.attrs["picker"] = record
    return out
