"""Real-space masks for FSC: spherical, loose and tight (cryoSPARC presets), and user masks.

Presets (REFERENCE.md "Fourier shells and FSC", distances in Å converted with the voxel size):

- spherical: soft sphere centred at ``box // 2``; 1 inside ``inner = 0.85 * outer``, cosine
  fall-off to 0 at ``outer = box / 2`` (pixels).
- loose: the half-map average, low-passed, thresholded at 50 % of its maximum; 1 within 25 Å of
  the thresholded region, cosine fall-off to 0 at 40 Å.
- tight: the same region; 1 within 6 Å, 0 from 12 Å.

Distances come from one Euclidean distance transform of the thresholded region (the ``edt``
package when installed, else :func:`scipy.ndimage.distance_transform_edt`), on the region's
bounding box grown by the widest fall-off, shared by the loose and tight masks.

Speed (same output, bit for bit, as the straightforward full-grid version kept in
``tests/test_masks.py``): the spherical mask is a lookup table over the integer squared radius;
the low-pass is a pruned inverse transform of the non-zero low-frequency corner of the spectrum;
cosine edges are evaluated only inside the boxes where they can be non-zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ...errors import CryodiagInputError


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


def spherical_mask(shape, outer_radius_px: float | None = None, inner_fraction: float = 0.85,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Soft sphere centred at ``n // 2``: 1 within ``inner_fraction * outer``, cosine to 0 at ``outer``.

    ``outer_radius_px`` defaults to half the box.

    The squared radius of a voxel is an integer, so the mask is a lookup table over ``r²``
    (one cosine per distinct radius), gathered plane by plane inside each plane's bounding box
    of non-zero values; no full-volume radius grid or float temporaries. ``out`` (float32 of
    ``shape``): the mask is written there (a work array reused from mask to mask).
    """
    shape = tuple(int(s) for s in shape)
    outer = float(min(shape)) / 2 if outer_radius_px is None else float(outer_radius_px)
    sq = [(np.arange(s, dtype=np.int64) - s // 2) ** 2 for s in shape]
    r2_max = sum(int(q.max()) for q in sq)
    # float32 sqrt of an exact integer: the same radii as a float32 radius grid
    table = cosine_edge(np.sqrt(np.arange(r2_max + 1, dtype=np.float32)), inner_fraction * outer, outer)
    out = _zeros(shape, out)
    nonzero = np.flatnonzero(table)
    if nonzero.size == 0:
        return out
    last = int(nonzero[-1])  # table is non-increasing in r²: zero beyond ``last``
    if len(shape) == 1:
        keep = sq[0] <= last
        out[keep] = table[sq[0][keep]]
        return out
    rest = sq[1]
    for q in sq[2:]:
        rest = rest[..., None] + q
    rest = rest.astype(np.int32 if r2_max < 2**31 else np.int64)
    for i, q0 in enumerate(sq[0]):
        q0 = int(q0)
        if q0 > last:
            continue
        box = []
        for q in sq[1:]:
            inside = np.flatnonzero(q0 + q <= last)
            box.append(slice(int(inside[0]), int(inside[-1]) + 1))
        box = tuple(box)
        out[(i, *box)] = table[rest[box] + q0]
    return out


#: elements per slab of :meth:`AutoMasks.make`'s cosine edge
CHUNK_PLANES_ELEMENTS = 1 << 21


def _zeros(shape, out=None) -> np.ndarray:
    """Float32 zeros of ``shape``: ``out`` cleared when it fits, else a new array."""
    if out is None or out.shape != tuple(shape) or out.dtype != np.float32:
        return np.zeros(shape, dtype=np.float32)
    out.fill(0)
    return out


def lowpass(volume: np.ndarray, pixel_size_A: float, resolution_A: float, edge_shells: float = 2.0, ft=None,
            half_fts=None, out: np.ndarray | None = None) -> np.ndarray:
    """Low-pass filter with a raised-cosine edge (``edge_shells`` wide, ending at ``resolution_A``).

    ``ft`` may pass the volume's rfftn when it is already known (saves a transform); ``half_fts``
    the rfftn of two half maps whose average is ``volume`` (only the low-frequency block of
    ``(f1 + f2) / 2`` is formed then); without either, a cubic volume's block comes from a pruned
    forward transform (:func:`_rfftn_corner`). ``out``: a float32 array of the volume's shape the
    result of the pruned transform is written to (it may be ``volume`` itself, which is read
    first); other paths ignore it.
    """
    from ..fourier import n_shells, shell_index
    from ..fourier import irfftn, rfftn

    vol = np.asarray(volume, dtype=np.float32)
    if not resolution_A or resolution_A <= 2 * pixel_size_A:
        return vol
    n = min(vol.shape)
    k_cut = n * pixel_size_A / resolution_A
    # filter per shell (round |k|), looked up through the cached shell index
    table = cosine_edge(np.arange(n_shells(n) + 1, dtype=np.float32), max(k_cut - edge_shells, 0.0), k_cut)
    table[-1] = 0.0
    average_of = half_fts if ft is None else None
    src = ft
    index = shell_index(vol.shape)
    nonzero = np.flatnonzero(table)
    k_max = int(nonzero[-1]) if nonzero.size else -1
    if vol.ndim != 3 or len(set(vol.shape)) != 1 or 2 * k_max + 1 >= n:
        if src is None:
            src = rfftn(vol) if average_of is None else (average_of[0] + average_of[1]) * np.float32(0.5)
        return irfftn(src * table[index], vol.shape)
    # the filter is 0 beyond shell k_max, and round(|k|) <= k_max implies |k_i| <= k_max on every
    # axis: filter only that corner block of the half transform, the rest of the spectrum is 0
    if k_max < 0:
        return np.zeros(vol.shape, dtype=np.float32)
    both = np.r_[0 : k_max + 1, n - k_max : n]
    block = np.ix_(both, both, np.arange(k_max + 1))
    if src is not None:
        block_ft = src[block]
    elif average_of is not None:
        block_ft = (average_of[0][block] + average_of[1][block]) * np.float32(0.5)
    else:
        block_ft = _rfftn_corner(vol, k_max)
    return _irfftn_corner(block_ft * table[index[block]], n, k_max, out=out)


def _rfftn_corner(vol: np.ndarray, k_max: int, chunk: int = 8) -> np.ndarray:
    """The ``|k_i| <= k_max`` corner block of ``rfftn(vol)`` (n³ float32), without the full transform.

    Pruned forward transform: the r2c along the last axis in slabs of ``chunk`` planes, keeping
    its ``k+1`` lowest columns, then the transforms along axis 0 and axis 1 (pocketfft's order),
    each keeping the ``2k+1`` rows of the block. The 1-D transforms see the same numbers as in the
    full ``rfftn``, so the block equals its block bit for bit (tested), for ~1/3 of the arithmetic
    and an ``n² (k+1)`` complex work array instead of a full transform.
    """
    import scipy.fft

    from ..fourier import FFT_WORKERS

    n, k = vol.shape[0], k_max
    both = np.r_[0 : k + 1, n - k : n]
    a = np.empty((n, n, k + 1), dtype=np.complex64)
    for z0 in range(0, n, chunk):
        a[z0 : z0 + chunk] = scipy.fft.rfft(vol[z0 : z0 + chunk], axis=2, workers=FFT_WORKERS)[..., : k + 1]
    a = scipy.fft.fft(a, axis=0, overwrite_x=True, workers=FFT_WORKERS)[both]
    return scipy.fft.fft(a, axis=1, overwrite_x=True, workers=FFT_WORKERS)[:, both]


def _irfftn_corner(block: np.ndarray, n: int, k_max: int, chunk: int = 8, out: np.ndarray | None = None) -> np.ndarray:
    """``irfftn`` of an n³ half spectrum that is 0 outside its ``|k_i| <= k_max`` corner ``block``.

    ``block`` has shape ``(2k+1, 2k+1, k+1)`` (rows ``0..k`` then ``n-k..n-1`` on the first two
    axes). Pruned transform: the inverse along axis 0 runs only on the block's columns, along axis 1
    only on the ``k+1`` non-zero last-axis planes, and the final c2r along axis 2 in slabs of
    ``chunk`` planes, unscaled, then one multiply by 1/n³ (float32, as pocketfft's own
    normalisation). The 1-D transforms see the same numbers as in the full ``irfftn`` (zeros elsewhere
    stay zeros), so the result equals it (tested bit for bit), with ~1/3 of the arithmetic and no
    full-size complex temporaries. ``out`` (float32 n³, any strides, e.g. the padded real view of
    a complex work array): written there, slab by slab (no new map-sized array; the same numbers).
    """
    import scipy.fft

    from ..fourier import FFT_WORKERS

    k, m = k_max, 2 * k_max + 1
    a = np.zeros((n, m, k + 1), dtype=np.complex64)
    a[: k + 1] = block[: k + 1]
    a[n - k :] = block[k + 1 :]
    a = scipy.fft.ifft(a, axis=0, norm="forward", workers=FFT_WORKERS)
    b = np.zeros((n, n, k + 1), dtype=np.complex64)
    b[:, : k + 1] = a[:, : k + 1]
    b[:, n - k :] = a[:, k + 1 :]
    del a
    b = scipy.fft.ifft(b, axis=1, norm="forward", overwrite_x=True, workers=FFT_WORKERS)
    from ..fourier import _pocketfft, _usable_out

    if not _usable_out(out, (n, n, n), np.float32, contiguous=False):
        out = np.empty((n, n, n), dtype=np.float32)
    pf = _pocketfft()
    buf = np.zeros((chunk, n, n // 2 + 1), dtype=np.complex64)
    scale = np.float32(1 / np.longdouble(n) ** 3)
    for z0 in range(0, n, chunk):
        z1 = min(z0 + chunk, n)
        buf[: z1 - z0, :, : k + 1] = b[z0:z1]
        if pf is not None:  # the c2r of scipy.fft.irfft(norm="forward"), written in place
            pfft, norm = pf
            dest = out[z0:z1]
            pfft.c2r(buf[: z1 - z0], (2,), n, False, norm("forward", False), dest, FFT_WORKERS)
            dest *= scale
        else:  # pragma: no cover - another scipy layout
            slab = scipy.fft.irfft(buf[: z1 - z0], n=n, axis=2, norm="forward", workers=FFT_WORKERS)
            np.multiply(slab, scale, out=out[z0:z1])
    return out


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
        from scipy import ndimage  # imported here: the command line need not load scipy.ndimage

        return ndimage.distance_transform_edt(mask, sampling=float(pixel_size_A)).astype(np.float32)


def _bounding_box(region: np.ndarray) -> list[tuple[int, int]]:
    """Per-axis ``(first, last)`` index of the True voxels of a non-empty boolean array."""
    if region.ndim == 3:  # two passes instead of three
        zy_x = region.any(axis=0)
        axes = [region.any(axis=(1, 2)), zy_x.any(axis=1), zy_x.any(axis=0)]
    else:
        axes = [region.any(axis=tuple(i for i in range(region.ndim) if i != ax)) for ax in range(region.ndim)]
    out = []
    for a in axes:
        nz = np.flatnonzero(a)
        out.append((int(nz[0]), int(nz[-1])))
    return out


def _grown(box, shape, pad: int) -> tuple[slice, ...]:
    return tuple(slice(max(lo - pad, 0), min(hi + pad + 1, s)) for (lo, hi), s in zip(box, shape))


def _pad_px(distance_A: float, pixel_size_A: float) -> int:
    return int(np.ceil(distance_A / pixel_size_A)) + 1


def _cropped_distance(region: np.ndarray, pixel_size_A: float, max_distance_A: float):
    """EDT (Å) of ``region``'s bounding box grown by ``max_distance_A``: ``(distance, crop, box)``."""
    if not region.any():
        raise CryodiagInputError("the thresholded map is empty; cannot build a mask (lower the threshold)")
    box = _bounding_box(region)
    crop = _grown(box, region.shape, _pad_px(max_distance_A, pixel_size_A))
    return _edt(~region[crop], pixel_size_A), crop, box


def distance_from_region_A(region: np.ndarray, pixel_size_A: float, max_distance_A: float | None = None) -> np.ndarray:
    """Euclidean distance (Å) of every voxel to the nearest voxel of the boolean ``region`` (0 inside).

    With ``max_distance_A`` the transform runs only on the region's bounding box grown by that
    distance; voxels outside it get ``inf`` (they are farther than ``max_distance_A``).
    """
    region = np.asarray(region, dtype=bool)
    if max_distance_A is None:
        if not region.any():
            raise CryodiagInputError("the thresholded map is empty; cannot build a mask (lower the threshold)")
        return _edt(~region, pixel_size_A)
    dist, crop, _ = _cropped_distance(region, pixel_size_A, max_distance_A)
    out = np.full(region.shape, np.inf, dtype=np.float32)
    out[crop] = dist
    return out


def threshold_region(average: np.ndarray, pixel_size_A: float, params: MaskParams = MaskParams(), average_ft=None,
                     half_fts=None, scratch: bool = False) -> np.ndarray:
    """Boolean region of the low-passed average above ``threshold_fraction`` of its maximum.

    ``scratch=True``: ``average`` (float32) may be overwritten by its low-pass."""
    if params.lowpass_A:
        lp = lowpass(average, pixel_size_A, params.lowpass_A, ft=average_ft, half_fts=half_fts,
                     out=average if scratch else None)
    else:
        lp = np.asarray(average, np.float32)
    return lp >= np.float32(params.threshold_fraction) * lp.max()


class AutoMasks:
    """The preset masks of a half-map average, made one at a time (:meth:`make`).

    The threshold region, its distance transform (one EDT, on the region's bounding box grown by
    the widest fall-off, shared by the loose and the tight mask) are computed here, so the inputs
    (``average``, ``average_ft``, ``half_fts``) are no longer needed afterwards and each mask can be
    dropped as soon as it has been used. Same masks as :func:`auto_masks`.
    """

    def __init__(self, average: np.ndarray, pixel_size_A: float, params: MaskParams = MaskParams(),
                 which=("spherical", "loose", "tight"), average_ft: np.ndarray | None = None,
                 half_fts: tuple[np.ndarray, np.ndarray] | None = None, scratch: bool = False):
        """``scratch=True``: ``average`` is a work array that may be overwritten (by its low-pass)."""
        avg = np.asarray(average, dtype=np.float32)
        self.shape = avg.shape
        self.pixel_size_A = float(pixel_size_A)
        self.params = params
        self.which = tuple(w for w in ("spherical", "loose", "tight") if w in which)
        presets = {"loose": (params.loose_dilate_A, params.loose_soft_A), "tight": (params.tight_dilate_A, params.tight_soft_A)}
        self.edges = {name: presets[name] for name in ("loose", "tight") if name in which}
        self._dist = None
        if self.edges:
            reach = max(d_zero for _, d_zero in self.edges.values())
            region = threshold_region(avg, pixel_size_A, params, average_ft, half_fts,
                                      scratch=scratch and avg is average)
            self._dist, self._crop, self._box = _cropped_distance(region, pixel_size_A, reach)
            del region

    def make(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        """One mask (float32 on the map's grid), in ``out`` when given (a work array: the same values)."""
        p = self.params
        if name == "spherical":
            return spherical_mask(self.shape, p.sphere_outer_fraction * min(self.shape) / 2, p.sphere_inner_fraction,
                                  out=out)
        d_one, d_zero = self.edges[name]
        # voxels outside the box grown by d_zero lie farther than d_zero from the region: 0
        crop, box = self._crop, self._box
        sub = _grown(box, self.shape, _pad_px(max(d_zero, d_one), self.pixel_size_A))
        sub = tuple(slice(max(s.start, c.start), min(s.stop, c.stop)) for s, c in zip(sub, crop))
        inner = tuple(slice(s.start - c.start, s.stop - c.start) for s, c in zip(sub, crop))
        m = _zeros(self.shape, out)
        # slab by slab along z (the edge is per voxel: the same values), so that its temporaries stay
        # a few planes big while the FSC's transforms are in memory
        step = max(1, CHUNK_PLANES_ELEMENTS // max(1, int(np.prod([t.stop - t.start for t in sub[1:]]))))
        for z0 in range(sub[0].start, sub[0].stop, step):
            z1 = min(z0 + step, sub[0].stop)
            zi = slice(z0 - crop[0].start, z1 - crop[0].start)
            m[(slice(z0, z1), *sub[1:])] = cosine_edge(self._dist[(zi, *inner[1:])], d_one, d_zero)
        return m


def auto_masks(
    average: np.ndarray,
    pixel_size_A: float,
    params: MaskParams = MaskParams(),
    which=("spherical", "loose", "tight"),
    average_ft: np.ndarray | None = None,
    half_fts: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The preset masks of the half-map average, float32 on the map's grid, keyed by name.

    One distance transform, on the thresholded region's bounding box grown by the widest fall-off,
    serves both the loose and the tight mask; each cosine edge is evaluated only inside the box
    grown by its own fall-off distance (outside it the mask is 0). ``average_ft`` (the average's
    rfftn, when known) saves the low-pass transform; ``half_fts`` (the two half maps' rfftn, whose
    average is ``average``) too, without forming the whole averaged transform.
    """
    maker = AutoMasks(average, pixel_size_A, params, which, average_ft, half_fts)
    return {name: maker.make(name) for name in maker.which}


def check_user_mask(mask: np.ndarray, shape, path=None, *, tolerance: float = 1e-3, voxel_size_A=None,
                    expected_voxel_size_A: float | None = None, rtol: float = 1e-3) -> np.ndarray:
    """Validate a user mask (same grid and voxel size as the maps, values in [0, 1]); return it as float32.

    ``voxel_size_A`` (the mask's, a number or one per axis; None/0 = unknown, not checked) must
    equal ``expected_voxel_size_A`` (the maps') within ``rtol``.
    """
    from ..arrays import count_nonfinite

    m = np.asarray(mask)
    if tuple(m.shape) != tuple(shape):
        raise CryodiagInputError(f"mask grid {tuple(m.shape)} differs from the half maps' grid {tuple(shape)}", path)
    if voxel_size_A is not None and expected_voxel_size_A:
        v = np.atleast_1d(np.asarray(voxel_size_A, float))
        v = v[v > 0]
        if v.size and np.any(np.abs(v - expected_voxel_size_A) > rtol * expected_voxel_size_A):
            raise CryodiagInputError(
                f"mask voxel size {', '.join(f'{x:.4g}' for x in np.unique(v))} Å differs from the half maps' "
                f"{expected_voxel_size_A:.4g} Å: the mask was made for another map (or rescale it)", path)
    if count_nonfinite(m):
        raise CryodiagInputError("mask contains NaN or infinite values", path)
    lo, hi = float(m.min()), float(m.max())
    if lo < -tolerance or hi > 1 + tolerance:
        raise CryodiagInputError(f"mask values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]", path)
    if hi <= 0:
        raise CryodiagInputError("mask is empty (all zero)", path)
    if lo >= 0 and hi <= 1:  # no copy of a mask that is right as it is
        return m.astype(np.float32, copy=False)
    return np.clip(m, 0, 1).astype(np.float32, copy=False)
