"""Conical FSCs and cFAR (conical FSC area ratio) from two half maps.

Definition (REFERENCE.md "Poses and orientations"): the FSC of the half maps restricted to a
cone of half-angle 20° around an axis, for ~256 axes; for each cone the area under its FSC
curve up to its 0.143 crossing; cFAR = min(area) / max(area). cFAR < 0.5 signals anisotropy.

Choices made here (reported in :class:`ConicalFSC`):

- Shells follow :mod:`.fourier` (r2c transform, ``round(|k|)``, shells ``0 .. n//2``, the DC
  shell FSC is 1). A cone contains the coefficients whose direction is within the half-angle of
  the axis **or of its antipode** (a real map's transform is Hermitian, so the two nappes carry
  the same information); the axes are therefore spread over a hemisphere
  (:func:`.orientations.fibonacci_hemisphere`, 256 by default: 512 cone directions on the
  sphere).
- Area: trapezoid integral of the cone's FSC over spatial frequency (1/Å) from 0 to its 0.143
  crossing, interpolated linearly between the two shells around the first drop below 0.143;
  to Nyquist when it never drops. Cone shells with fewer than ``min_coefficients`` (10)
  coefficients — the lowest shells, which a 20° cone cannot resolve (a cone holds about
  0.38 i² coefficients of shell i, so shells below ~5) — take the FSC of the full shell, so
  that the noise of a handful of coefficients cannot fake an early 0.143 crossing. The
  crossing is the first drop (no smoothing): a cone whose FSC hovers near 0.143 over many
  shells (low SNR at every frequency) can cross early by chance.
- ``method="binned"`` (default): the per-coefficient products ``Re(F1 F2*)``, ``|F1|²``,
  ``|F2|²`` are summed once per (direction cell, shell) on a ~2° direction grid (O(n³)), then
  each cone sums the cells whose centre lies inside it (a small matrix product). Coefficients
  within about a cell of a cone's edge may be assigned to the wrong side; ``method="exact"``
  tests every coefficient against every cone (reference; O(n³ × cones)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import CryodiagInputError
from ..fourier import n_shells, shell_frequencies_invA, shell_index
from .orientations import DirectionGrid, azimuth_elevation_deg, fibonacci_hemisphere

__all__ = ["ConicalFSC", "conical_fsc", "fsc_area", "CFAR_GUIDE"]

#: Guide value: cFAR below it signals anisotropic resolution.
CFAR_GUIDE = 0.5
FSC_THRESHOLD = 0.143


@dataclass
class ConicalFSC:
    axes: np.ndarray  # (n_cones, 3) unit vectors, upper hemisphere
    fsc: np.ndarray  # (n_cones, n_shells)
    global_fsc: np.ndarray  # (n_shells,)
    frequencies_invA: np.ndarray  # (n_shells,)
    areas: np.ndarray  # (n_cones,) in 1/Å
    crossing_invA: np.ndarray  # (n_cones,) frequency of the 0.143 crossing (Nyquist if none)
    crossed: np.ndarray  # (n_cones,) bool
    half_angle_deg: float
    pixel_size_A: float
    box: int
    method: str

    @property
    def cfar(self) -> float:
        mx = float(self.areas.max())
        return float(self.areas.min()) / mx if mx > 0 else float("nan")

    @property
    def anisotropic(self) -> bool:
        return bool(self.cfar < CFAR_GUIDE)

    @property
    def worst(self) -> int:
        return int(np.argmin(self.areas))

    @property
    def best(self) -> int:
        return int(np.argmax(self.areas))

    def to_dict(self) -> dict:
        az, el = azimuth_elevation_deg(self.axes)
        with np.errstate(divide="ignore"):
            res = np.where(self.crossing_invA > 0, 1.0 / self.crossing_invA, np.inf)
        return {
            "cfar": self.cfar,
            "guide_cfar": CFAR_GUIDE,
            "anisotropic": self.anisotropic,
            "n_cones": int(len(self.axes)),
            "half_angle_deg": float(self.half_angle_deg),
            "threshold": FSC_THRESHOLD,
            "pixel_size_A": float(self.pixel_size_A),
            "box": int(self.box),
            "method": self.method,
            "area_definition": "integral of the cone FSC over frequency (1/Å) from 0 to its 0.143 crossing",
            "min_area_invA": float(self.areas.min()),
            "max_area_invA": float(self.areas.max()),
            "worst_axis_azimuth_elevation_deg": [float(az[self.worst]), float(el[self.worst])],
            "best_axis_azimuth_elevation_deg": [float(az[self.best]), float(el[self.best])],
            "worst_resolution_A": float(res[self.worst]),
            "best_resolution_A": float(res[self.best]),
            "axes_azimuth_deg": az,
            "axes_elevation_deg": el,
            "areas_invA": self.areas,
            "resolution_0143_A": res,
            "frequencies_invA": self.frequencies_invA,
            "global_fsc": self.global_fsc,
            "fsc": self.fsc,
        }


def fsc_area(fsc: np.ndarray, freq: np.ndarray, threshold: float = FSC_THRESHOLD) -> tuple[float, float, bool]:
    """Area under ``fsc`` (from shell 0) up to its first drop below ``threshold``.

    Returns ``(area, crossing_frequency, crossed)``; linear interpolation at the crossing.
    """
    fsc = np.asarray(fsc, dtype=np.float64)
    below = np.nonzero(fsc[1:] < threshold)[0]
    if below.size == 0:
        return float(np.trapezoid(fsc, freq)), float(freq[-1]), False
    i = int(below[0]) + 1  # first shell below; i - 1 is at or above
    f0, f1, y0, y1 = freq[i - 1], freq[i], fsc[i - 1], fsc[i]
    fc = f0 + (y0 - threshold) / (y0 - y1) * (f1 - f0) if y0 != y1 else f0
    area = float(np.trapezoid(fsc[:i], freq[:i])) + 0.5 * (y0 + threshold) * (fc - f0)
    return area, float(fc), True


def _check_halves(half1, half2):
    h1 = np.asarray(half1)
    h2 = np.asarray(half2)
    if h1.ndim != 3 or h1.shape != h2.shape or len(set(h1.shape)) != 1:
        raise CryodiagInputError(
            f"cFAR needs two cubic half maps of the same shape, got {h1.shape} and {h2.shape}"
        )
    return h1, h2


def conical_fsc(
    half1,
    half2,
    pixel_size_A: float = 1.0,
    n_cones: int = 256,
    half_angle_deg: float = 20.0,
    *,
    method: str = "binned",
    ring_width_deg: float = 2.0,
    min_coefficients: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> ConicalFSC:
    """Conical FSCs of two half maps and their cFAR (see module docstring)."""
    h1, h2 = _check_halves(half1, half2)
    n = h1.shape[0]
    nsh = n_shells(n)
    f1 = np.fft.rfftn(h1.astype(np.float32))
    f2 = np.fft.rfftn(h2.astype(np.float32))
    shells = shell_index(h1.shape)
    axes = fibonacci_hemisphere(int(n_cones))
    cos_half = np.cos(np.radians(float(half_angle_deg)))
    kz = np.fft.fftfreq(n, d=1.0 / n)
    ky = np.fft.fftfreq(n, d=1.0 / n)
    kx = np.fft.rfftfreq(n, d=1.0 / n)
    KY, KX = np.meshgrid(ky, kx, indexing="ij")

    # global FSC
    num_g = np.zeros(nsh)
    d1_g = np.zeros(nsh)
    d2_g = np.zeros(nsh)
    if method == "binned":
        grid = DirectionGrid(ring_width_deg)
        ncell = grid.n_cells
        num = np.zeros(ncell * nsh)
        d1 = np.zeros(ncell * nsh)
        d2 = np.zeros(ncell * nsh)
        cnt = np.zeros(ncell * nsh)
    elif method == "exact":
        num = np.zeros((len(axes), nsh))
        d1 = np.zeros((len(axes), nsh))
        d2 = np.zeros((len(axes), nsh))
        cnt = np.zeros((len(axes), nsh))
    else:
        raise ValueError(f"unknown method {method!r}")

    step = max(1, 2**20 // (n * (n // 2 + 1)))  # ~1M coefficients per slab of z planes
    for z0 in range(0, n, step):
        z1 = min(n, z0 + step)
        sh = shells[z0:z1].ravel()
        a = f1[z0:z1].ravel()
        b = f2[z0:z1].ravel()
        prod = (a.real * b.real + a.imag * b.imag).astype(np.float64)
        p1 = (a.real**2 + a.imag**2).astype(np.float64)
        p2 = (b.real**2 + b.imag**2).astype(np.float64)
        keep = (sh > 0) & (sh < nsh)
        num_g += np.bincount(sh[keep], prod[keep], minlength=nsh)[:nsh]
        d1_g += np.bincount(sh[keep], p1[keep], minlength=nsh)[:nsh]
        d2_g += np.bincount(sh[keep], p2[keep], minlength=nsh)[:nsh]
        vz = np.broadcast_to(kz[z0:z1, None, None], (z1 - z0,) + KX.shape).ravel()[keep]
        vy = np.broadcast_to(KY[None], (z1 - z0,) + KX.shape).ravel()[keep]
        vx = np.broadcast_to(KX[None], (z1 - z0,) + KX.shape).ravel()[keep]
        u = np.stack([vx, vy, vz], axis=1)
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        sk, pk, p1k, p2k = sh[keep], prod[keep], p1[keep], p2[keep]
        if method == "binned":
            idx = grid.cell_index(u) * nsh + sk
            num += np.bincount(idx, pk, minlength=ncell * nsh)
            d1 += np.bincount(idx, p1k, minlength=ncell * nsh)
            d2 += np.bincount(idx, p2k, minlength=ncell * nsh)
            cnt += np.bincount(idx, minlength=ncell * nsh)
        else:
            inside = np.abs(u @ axes.T) >= cos_half  # (k, n_cones)
            for c in range(len(axes)):
                m = inside[:, c]
                num[c] += np.bincount(sk[m], pk[m], minlength=nsh)[:nsh]
                d1[c] += np.bincount(sk[m], p1k[m], minlength=nsh)[:nsh]
                d2[c] += np.bincount(sk[m], p2k[m], minlength=nsh)[:nsh]
                cnt[c] += np.bincount(sk[m], minlength=nsh)[:nsh]
        if progress is not None:
            progress(z1, n)

    if method == "binned":
        centres = grid.cell_centres()
        member = (np.abs(axes @ centres.T) >= cos_half).astype(np.float64)  # (n_cones, ncell)
        num = member @ num.reshape(ncell, nsh)
        d1 = member @ d1.reshape(ncell, nsh)
        d2 = member @ d2.reshape(ncell, nsh)
        cnt = member @ cnt.reshape(ncell, nsh)

    with np.errstate(invalid="ignore", divide="ignore"):
        glob = num_g / np.sqrt(d1_g * d2_g)
        fsc = num / np.sqrt(d1 * d2)
    glob[0] = 1.0
    glob = np.where(np.isfinite(glob), glob, 0.0)
    fsc = np.where(np.isfinite(fsc) & (cnt >= min_coefficients), fsc, glob[None, :])
    fsc[:, 0] = 1.0
    freq = shell_frequencies_invA(n, pixel_size_A)
    areas = np.empty(len(axes))
    cross = np.empty(len(axes))
    crossed = np.empty(len(axes), dtype=bool)
    for c in range(len(axes)):
        areas[c], cross[c], crossed[c] = fsc_area(fsc[c], freq)
    return ConicalFSC(
        axes=axes,
        fsc=fsc,
        global_fsc=glob,
        frequencies_invA=freq,
        areas=areas,
        crossing_invA=cross,
        crossed=crossed,
        half_angle_deg=float(half_angle_deg),
        pixel_size_A=float(pixel_size_A),
        box=n,
        method=method,
    )
