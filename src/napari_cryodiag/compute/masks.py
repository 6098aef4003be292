"""Real-space masks for FSC: spherical, loose and tight (cryoSPARC presets), and user masks.

Presets (REFERENCE.md "Fourier shells and FSC", distances in Å converted with the voxel size):

- spherical: soft sphere centred at ``box // 2``; 1 inside ``inner = 0.85 * outer``, cosine
  fall-off to 0 at ``outer = box / 2`` (pixels).
- loose: the half-map average, low-passed, thresholded at 50 % of its maximum; 1 within 25 Å of
  the thresholded region, cosine fall-off to 0 at 40 Å.
- tight: the same region; 1 within 6 Å, 0 from 12 Å.

Distances come from one Euclidean distance transform of the thresholded region
(:func:`scipy.ndimage.distance_transform_edt`), shared by the loose and tight masks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ..errors import CryodiagInputError


@dataclass(frozen=True)
class MaskParams:
    """Adjustable mask parameters (defaults: cryoSPARC presets)."""

    sphere_outer_fraction: float = 1.0  #: outer radius as a fraction of box/2
    sphere_inner_fraction: float = 0.85  #: inner radius (mask = 1) as a fraction of the outer radius
    threshold_fraction: float = 0.5  #: threshold of the low-passed average, fraction of its maximum
    lowpass_A: float = 15.0  #: low-pass of the average before thresholding (Å); 0 = none
    loose_dilate_A: float = 25.0  #: loose mask is 1 within this distance of the region
    loose_soft_A: float = 40.0  #: ... and falls to 0 at this distance (cosine)
    tight_dilate_A: float = 6.0
    tight_soft_A: float = 12.0

    def to_dict(self) -> dict:
        return asdict(self)


def cosine_edge(distance, d_one: float, d_zero: float) -> np.ndarray:
    """1 for ``distance <= d_one``, 0 for ``distance >= d_zero``, raised cosine in between (float32).

    The cosine is evaluated only on the voxels of the edge band.
    """
    d = np.asarray(distance, dtype=np.float32)
    out = (d <= np.float32(d_one)).astype(np.float32)
    if d_zero <= d_one:
        return out
    band = (d > np.float32(d_one)) & (d < np.float32(d_zero))
    t = (d[band] - np.float32(d_one)) / np.float32(d_zero - d_one)
    out[band] = np.float32(0.5) * (np.float32(1.0) + np.cos(np.float32(np.pi) * t))
    return out


@lru_cache(maxsize=4)
def _radius_px_cached(shape) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    r2 = sum((g.astype(np.float32) - np.float32(s // 2)) ** 2 for g, s in zip(grids, shape))
    r = np.sqrt(r2, dtype=np.float32)
    r.setflags(write=False)
    return r


def _radius_px(shape) -> np.ndarray:
    return _radius_px_cached(tuple(int(s) for s in shape))


def spherical_mask(shape, outer_radius_px: float | None = None, inner_fraction: float = 0.85) -> np.ndarray:
    """Soft sphere centred at ``n // 2``: 1 within ``inner_fraction * outer``, cosine to 0 at ``outer``.

    ``outer_radius_px`` defaults to half the box.
    """
    shape = tuple(int(s) for s in shape)
    outer = float(min(shape)) / 2 if outer_radius_px is None else float(outer_radius_px)
    return cosine_edge(_radius_px(shape), inner_fraction * outer, outer)


def lowpass(volume: np.ndarray, pixel_size_A: float, resolution_A: float, edge_shells: float = 2.0, ft=None) -> np.ndarray:
    """Low-pass filter with a raised-cosine edge (``edge_shells`` wide, ending at ``resolution_A``).

    ``ft`` may pass the volume's rfftn when it is already known (saves a transform).
    """
    from ..compute.fourier import n_shells, shell_index
    from .fsc import irfftn, rfftn

    vol = np.asarray(volume, dtype=np.float32)
    if not resolution_A or resolution_A <= 2 * pixel_size_A:
        return vol
    n = min(vol.shape)
    k_cut = n * pixel_size_A / resolution_A
    # filter per shell (round |k|), looked up through the cached shell index
    table = cosine_edge(np.arange(n_shells(n) + 1, dtype=np.float32), max(k_cut - edge_shells, 0.0), k_cut)
    table[-1] = 0.0
    filt = table[shell_index(vol.shape)]
    return irfftn((rfftn(vol) if ft is None else ft) * filt, vol.shape)


def _edt(mask: np.ndarray, pixel_size_A: float) -> np.ndarray:
    """Exact Euclidean distance (Å) of each True voxel to the nearest False voxel.

    Uses the multi-threaded ``edt`` package when it is installed (same exact result, several
    times faster), else :func:`scipy.ndimage.distance_transform_edt`.
    """
    try:
        import edt  # optional accelerator

        return edt.edt(mask, anisotropy=(float(pixel_size_A),) * mask.ndim, black_border=False,
                       parallel=0).astype(np.float32, copy=False)
    except ImportError:
        return ndimage.distance_transform_edt(mask, sampling=float(pixel_size_A)).astype(np.float32)


def distance_from_region_A(region: np.ndarray, pixel_size_A: float, max_distance_A: float | None = None) -> np.ndarray:
    """Euclidean distance (Å) of every voxel to the nearest voxel of the boolean ``region`` (0 inside).

    With ``max_distance_A`` the transform runs only on the region's bounding box grown by that
    distance; voxels outside it get ``inf`` (they are farther than ``max_distance_A``).
    """
    region = np.asarray(region, dtype=bool)
    if not region.any():
        raise CryodiagInputError("the thresholded map is empty; cannot build a mask (lower the threshold)")
    if max_distance_A is None:
        return _edt(~region, pixel_size_A)
    pad = int(np.ceil(max_distance_A / pixel_size_A)) + 1
    sl = []
    for ax in range(region.ndim):
        other = tuple(i for i in range(region.ndim) if i != ax)
        nz = np.flatnonzero(region.any(axis=other))
        sl.append(slice(max(nz[0] - pad, 0), min(nz[-1] + pad + 1, region.shape[ax])))
    sl = tuple(sl)
    out = np.full(region.shape, np.inf, dtype=np.float32)
    out[sl] = _edt(~region[sl], pixel_size_A)
    return out


def threshold_region(average: np.ndarray, pixel_size_A: float, params: MaskParams = MaskParams(), average_ft=None) -> np.ndarray:
    """Boolean region of the low-passed average above ``threshold_fraction`` of its maximum."""
    if params.lowpass_A:
        lp = lowpass(average, pixel_size_A, params.lowpass_A, ft=average_ft)
    else:
        lp = np.asarray(average, np.float32)
    return lp >= np.float32(params.threshold_fraction) * lp.max()


def auto_masks(
    average: np.ndarray,
    pixel_size_A: float,
    params: MaskParams = MaskParams(),
    which=("spherical", "loose", "tight"),
    average_ft: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The preset masks of the half-map average, float32 on the map's grid, keyed by name.

    One distance transform serves both the loose and the tight mask. ``average_ft`` (the
    average's rfftn, when known) saves the low-pass transform.
    """
    avg = np.asarray(average, dtype=np.float32)
    out: dict[str, np.ndarray] = {}
    if "spherical" in which:
        out["spherical"] = spherical_mask(
            avg.shape, params.sphere_outer_fraction * min(avg.shape) / 2, params.sphere_inner_fraction
        )
    if "loose" in which or "tight" in which:
        reach = max(params.loose_soft_A if "loose" in which else 0.0, params.tight_soft_A if "tight" in which else 0.0)
        region = threshold_region(avg, pixel_size_A, params, average_ft)
        dist = distance_from_region_A(region, pixel_size_A, max_distance_A=reach)
        if "loose" in which:
            out["loose"] = cosine_edge(dist, params.loose_dilate_A, params.loose_soft_A)
        if "tight" in which:
            out["tight"] = cosine_edge(dist, params.tight_dilate_A, params.tight_soft_A)
    return out


def check_user_mask(mask: np.ndarray, shape, path=None, *, tolerance: float = 1e-3) -> np.ndarray:
    """Validate a user mask (same grid as the maps, values in [0, 1]); return it as float32."""
    m = np.asarray(mask)
    if tuple(m.shape) != tuple(shape):
        raise CryodiagInputError(f"mask grid {tuple(m.shape)} differs from the half maps' grid {tuple(shape)}", path)
    if not np.all(np.isfinite(m)):
        raise CryodiagInputError("mask contains NaN or infinite values", path)
    lo, hi = float(m.min()), float(m.max())
    if lo < -tolerance or hi > 1 + tolerance:
        raise CryodiagInputError(f"mask values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]", path)
    if hi <= 0:
        raise CryodiagInputError("mask is empty (all zero)", path)
    return np.clip(m, 0, 1).astype(np.float32, copy=False)
