"""Particle poses -> viewing directions, their equal-area histogram and a direction binning.

Conventions (REFERENCE.md "Poses and orientations", :mod:`.projection`):

- RELION Euler angles (rot, tilt, psi) in degrees, ZYZ; cryoSPARC poses are axis-angle vectors
  (radians) with ``(rot, tilt, psi) = Rotation.from_rotvec(pose).as_euler("ZYZ")``.
- The viewing direction is the third row of RELION's matrix ``A``:
  ``v = (cos rot sin tilt, sin rot sin tilt, cos tilt)``; for a cryoSPARC pose it is
  ``R e_z`` with ``R = Rotation.from_rotvec(pose)`` (computed here with Rodrigues' formula,
  without going through Euler angles, so that 1e7 poses take well under a second).
- Azimuth = ``atan2(v_y, v_x)`` in (-180°, 180°] (= rot), elevation = ``asin(v_z)`` = 90° - tilt.
  At the poles (``|v_z| = 1``, where rot is undefined) the azimuth is set to 0°, so that all
  poses looking down z fall into one bin.

Histogram binning (:func:`viewing_direction_histogram`): azimuth bins are uniform in angle and
elevation bins are **uniform in sin(elevation)**, so every bin covers the same solid angle
``4π / (n_azimuth · n_elevation)`` sr (Archimedes: the area of a zone is proportional to its
height in z). Counts per bin are therefore proportional to the density of viewing directions
per steradian; a uniform set of orientations gives a flat histogram. The full sphere is shown
(``v`` and ``-v`` are different views, mirror images of each other); no antipodal folding.

Direction binning for the Fourier-sampling computations (:class:`DirectionGrid`,
:func:`bin_directions`): an "igloo" grid on the upper hemisphere (rings of equal polar width,
each ring cut into cells of about the same width), to which ``v`` and ``-v`` are folded (a
projection and its antipode fill the same central plane). Per cell it keeps the count, a summed
weight, the first and second moments of the directions, which is all the sampling computations
need (see :mod:`.fourier_sampling`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import CryodiagInputError

__all__ = [
    "rotvec_to_euler_deg",
    "viewing_directions",
    "viewing_directions_from_rotvec",
    "viewing_directions_from_table",
    "azimuth_elevation_deg",
    "ViewingHistogram",
    "viewing_direction_histogram",
    "equal_area_elevation_edges_deg",
    "fibonacci_sphere",
    "fibonacci_hemisphere",
    "DirectionGrid",
    "BinnedDirections",
    "bin_directions",
]

_CHUNK = 1_000_000


# --------------------------------------------------------------------------------------------
# poses -> viewing directions
# --------------------------------------------------------------------------------------------
def rotvec_to_euler_deg(rotvec) -> np.ndarray:
    """cryoSPARC axis-angle poses (radians, (n, 3)) -> RELION (rot, tilt, psi) degrees (n, 3)."""
    from ..projection import pose_to_euler_deg

    return pose_to_euler_deg(rotvec)


def viewing_directions(rot_deg, tilt_deg, dtype=np.float64) -> np.ndarray:
    """Unit viewing directions (n, 3) (x, y, z) from RELION rot and tilt in degrees."""
    rot = np.deg2rad(np.asarray(rot_deg, dtype=np.float64).ravel())
    tilt = np.deg2rad(np.asarray(tilt_deg, dtype=np.float64).ravel())
    if rot.shape != tilt.shape:
        raise ValueError("rot and tilt must have the same length")
    st = np.sin(tilt)
    out = np.empty((rot.size, 3), dtype=dtype)
    out[:, 0] = np.cos(rot) * st
    out[:, 1] = np.sin(rot) * st
    out[:, 2] = np.cos(tilt)
    return out


def viewing_directions_from_rotvec(rotvec, dtype=np.float64) -> np.ndarray:
    """Viewing directions ``R e_z`` (n, 3) of cryoSPARC axis-angle poses (radians), Rodrigues.

    ``R e_z = e_z cos θ + (k × e_z) sin θ + k (k · e_z)(1 - cos θ)`` with ``θ = |pose|``,
    ``k = pose / θ``; equal to the third row of RELION's ``A`` for the converted Euler angles.
    """
    p = np.asarray(rotvec, dtype=np.float64).reshape(-1, 3)
    out = np.empty((len(p), 3), dtype=dtype)
    for s in range(0, len(p), _CHUNK):
        q = p[s : s + _CHUNK]
        theta = np.sqrt(np.einsum("ij,ij->i", q, q))
        small = theta < 1e-12
        safe = np.where(small, 1.0, theta)
        k = q / safe[:, None]
        c = np.cos(theta)
        sn = np.sin(theta)
        kz = k[:, 2]
        one_c = 1.0 - c
        # k x e_z = (k_y, -k_x, 0)
        vx = k[:, 1] * sn + k[:, 0] * kz * one_c
        vy = -k[:, 0] * sn + k[:, 1] * kz * one_c
        vz = c + kz * kz * one_c
        vx[small] = 0.0
        vy[small] = 0.0
        vz[small] = 1.0
        out[s : s + _CHUNK, 0] = vx
        out[s : s + _CHUNK, 1] = vy
        out[s : s + _CHUNK, 2] = vz
    return out


def viewing_directions_from_table(table, dtype=np.float64) -> np.ndarray:
    """Viewing directions of a canonical particle table (``rot_deg``, ``tilt_deg``).

    Falls back to a raw cryoSPARC ``alignments3D/pose`` column (axis-angle) when the Euler
    columns are absent. Rows with non-finite angles are an input error.
    """
    source = getattr(table, "attrs", {}).get("source") if hasattr(table, "attrs") else None
    cols = set(getattr(table, "columns", []))
    if {"rot_deg", "tilt_deg"} <= cols:
        rot = np.asarray(table["rot_deg"], dtype=np.float64)
        tilt = np.asarray(table["tilt_deg"], dtype=np.float64)
        bad = ~(np.isfinite(rot) & np.isfinite(tilt))
        if bad.any():
            raise CryodiagInputError(
                f"{int(bad.sum())} of {len(rot)} particles have no finite rot/tilt angle", source
            )
        return viewing_directions(rot, tilt, dtype=dtype)
    for name in ("alignments3D/pose", "pose"):
        if name in cols:
            pose = np.stack(np.asarray(table[name]))
            return viewing_directions_from_rotvec(pose, dtype=dtype)
    raise CryodiagInputError(
        "the particle table has no orientations (rot_deg/tilt_deg or alignments3D/pose): "
        "use a 3D refinement's particles",
        source,
    )


def azimuth_elevation_deg(vectors) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in (-180, 180] and elevation in [-90, 90] (degrees) of unit vectors (n, 3).

    At the poles the azimuth is 0 (rot is undefined there).
    """
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    z = np.clip(v[:, 2], -1.0, 1.0)
    rxy = np.hypot(v[:, 0], v[:, 1])
    pole = rxy < 1e-9
    az = np.degrees(np.arctan2(np.where(pole, 0.0, v[:, 1]), np.where(pole, 1.0, v[:, 0])))
    el = np.degrees(np.arcsin(z))
    return az, el


# --------------------------------------------------------------------------------------------
# equal-area histogram of viewing directions
# --------------------------------------------------------------------------------------------
def equal_area_elevation_edges_deg(n_elevation: int) -> np.ndarray:
    """Elevation bin edges (degrees) uniform in sin(elevation): every zone has the same area."""
    return np.degrees(np.arcsin(np.linspace(-1.0, 1.0, int(n_elevation) + 1)))


@dataclass
class ViewingHistogram:
    """2D histogram of viewing directions, ``counts[i_elevation, i_azimuth]``."""

    counts: np.ndarray
    azimuth_edges_deg: np.ndarray
    elevation_edges_deg: np.ndarray
    n_particles: int
    binning: str = "equal-area: azimuth uniform, elevation uniform in sin(elevation)"

    @property
    def bin_solid_angle_sr(self) -> float:
        return 4.0 * np.pi / self.counts.size

    @property
    def density_per_sr(self) -> np.ndarray:
        """Counts divided by the (equal) bin solid angle: particles per steradian."""
        return self.counts / self.bin_solid_angle_sr

    def to_dict(self) -> dict:
        c = self.counts
        nz = c[c > 0]
        return {
            "binning": self.binning,
            "n_particles": int(self.n_particles),
            "azimuth_edges_deg": self.azimuth_edges_deg,
            "elevation_edges_deg": self.elevation_edges_deg,
            "bin_solid_angle_sr": self.bin_solid_angle_sr,
            "counts": c,
            "fraction_of_bins_occupied": float((c > 0).mean()),
            "max_over_mean_count": float(c.max() / c.mean()) if c.sum() else None,
            "n_occupied_bins": int(nz.size),
        }


def viewing_direction_histogram(
    vectors, n_azimuth: int = 72, n_elevation: int = 36, weights=None
) -> ViewingHistogram:
    """Equal-area 2D histogram of viewing directions (azimuth × elevation).

    Bin codes are computed arithmetically (azimuth from ``atan2``, elevation zone from ``v_z``
    directly, since zones are uniform in ``sin(elevation) = v_z``) and counted with one
    ``np.bincount``: O(N), chunked, so 1e7 directions fit in memory and take about a second.
    """
    n_az, n_el = int(n_azimuth), int(n_elevation)
    if n_az < 1 or n_el < 1:
        raise ValueError("n_azimuth and n_elevation must be positive")
    v = np.asarray(vectors).reshape(-1, 3)
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    counts = np.zeros(n_az * n_el, dtype=np.float64 if w is not None else np.int64)
    for s in range(0, len(v), _CHUNK):
        codes = _histogram_codes(v[s : s + _CHUNK], n_az, n_el)
        if w is None:
            counts += np.bincount(codes, minlength=n_az * n_el)
        else:
            counts += np.bincount(codes, weights=w[s : s + _CHUNK], minlength=n_az * n_el)
    return ViewingHistogram(
        counts=counts.reshape(n_el, n_az),
        azimuth_edges_deg=np.linspace(-180.0, 180.0, n_az + 1),
        elevation_edges_deg=equal_area_elevation_edges_deg(n_el),
        n_particles=len(v),
    )


def _histogram_codes(v: np.ndarray, n_az: int, n_el: int) -> np.ndarray:
    vx = v[:, 0].astype(np.float64, copy=False)
    vy = v[:, 1].astype(np.float64, copy=False)
    vz = np.clip(v[:, 2].astype(np.float64, copy=False), -1.0, 1.0)
    pole = (np.abs(vx) < 1e-9) & (np.abs(vy) < 1e-9)
    az = np.arctan2(np.where(pole, 0.0, vy), np.where(pole, 1.0, vx))  # (-pi, pi]
    ia = np.floor((az + np.pi) * (n_az / (2.0 * np.pi))).astype(np.int64)
    ia %= n_az  # az = +pi wraps to the first bin (-180°)
    ie = np.floor((vz + 1.0) * (0.5 * n_el)).astype(np.int64)
    np.clip(ie, 0, n_el - 1, out=ie)
    return ie * n_az + ia


# --------------------------------------------------------------------------------------------
# point sets on the sphere
# --------------------------------------------------------------------------------------------
_GOLDEN = np.pi * (3.0 - np.sqrt(5.0))


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` quasi-uniform unit vectors on the sphere (Fibonacci lattice), (n, 3)."""
    i = np.arange(int(n), dtype=np.float64)
    z = 1.0 - (2.0 * i + 1.0) / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = i * _GOLDEN
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def fibonacci_hemisphere(n: int) -> np.ndarray:
    """``n`` quasi-uniform unit vectors on the upper hemisphere (z > 0), (n, 3).

    Each stands for itself and its antipode (sampling is antipodally symmetric).
    """
    i = np.arange(int(n), dtype=np.float64)
    z = 1.0 - (i + 0.5) / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = i * _GOLDEN
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


# --------------------------------------------------------------------------------------------
# direction binning (igloo grid on the upper hemisphere, antipodes folded)
# --------------------------------------------------------------------------------------------
@dataclass
class DirectionGrid:
    """Rings of equal polar width ``ring_width_deg`` on the upper hemisphere, each cut into
    ``max(1, round(2π sin θ_mid / Δθ))`` equal cells: nearly square cells of about
    ``ring_width_deg`` on a side (≈ 5,000 cells for 2°)."""

    ring_width_deg: float = 2.0
    n_rings: int = field(init=False)
    cells_per_ring: np.ndarray = field(init=False, repr=False)
    offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        dtheta = np.radians(float(self.ring_width_deg))
        self.n_rings = max(1, int(round((np.pi / 2) / dtheta)))
        dtheta = (np.pi / 2) / self.n_rings
        self._dtheta = dtheta
        mid = (np.arange(self.n_rings) + 0.5) * dtheta
        self.cells_per_ring = np.maximum(1, np.rint(2 * np.pi * np.sin(mid) / dtheta)).astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.cells_per_ring)]).astype(np.int64)

    @property
    def n_cells(self) -> int:
        return int(self.offsets[-1])

    def cell_index(self, vectors) -> np.ndarray:
        """Cell of each direction after folding ``-v`` onto ``v`` (upper hemisphere)."""
        v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
        sign = np.where(v[:, 2] < 0, -1.0, 1.0)
        x, y, z = v[:, 0] * sign, v[:, 1] * sign, np.abs(v[:, 2])
        theta = np.arccos(np.clip(z, -1.0, 1.0))
        ring = np.minimum((theta / self._dtheta).astype(np.int64), self.n_rings - 1)
        phi = np.arctan2(y, x) + np.pi  # [0, 2pi]
        ncell = self.cells_per_ring[ring]
        j = np.floor(phi * ncell / (2 * np.pi)).astype(np.int64)
        j = np.minimum(j, ncell - 1)
        return self.offsets[ring] + j

    def cell_centres(self) -> np.ndarray:
        """Geometric centre direction of every cell, (n_cells, 3)."""
        out = np.empty((self.n_cells, 3))
        for r in range(self.n_rings):
            n = self.cells_per_ring[r]
            th = (r + 0.5) * self._dtheta
            phi = (np.arange(n) + 0.5) * 2 * np.pi / n - np.pi
            sl = slice(self.offsets[r], self.offsets[r + 1])
            out[sl, 0] = np.sin(th) * np.cos(phi)
            out[sl, 1] = np.sin(th) * np.sin(phi)
            out[sl, 2] = np.cos(th)
        return out


#: index order of the 6 independent components of a symmetric 3x3 second-moment matrix
SYM6 = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


@dataclass
class BinnedDirections:
    """Viewing directions summarised per occupied cell of a :class:`DirectionGrid`.

    ``mean`` is the mean folded direction of the cell (not normalised), ``second`` the six
    components (xx, yy, zz, xy, xz, yz) of the mean of ``v vᵀ``; ``count`` and ``weight`` the
    number and summed weight of the particles. Only occupied cells are kept.
    """

    count: np.ndarray
    weight: np.ndarray
    mean: np.ndarray
    second: np.ndarray
    n_particles: int
    grid: DirectionGrid

    @property
    def n_bins(self) -> int:
        return len(self.count)


def bin_directions(vectors, weights=None, grid: DirectionGrid | None = None) -> BinnedDirections:
    """Bin viewing directions into the cells of ``grid`` (default 2° igloo) in O(N), chunked."""
    grid = grid or DirectionGrid()
    v_all = np.asarray(vectors).reshape(-1, 3)
    w_all = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w_all is not None and len(w_all) != len(v_all):
        raise ValueError("weights must have one value per direction")
    m = grid.n_cells
    count = np.zeros(m)
    wsum = np.zeros(m)
    s1 = np.zeros((3, m))
    s2 = np.zeros((6, m))
    for s in range(0, len(v_all), _CHUNK):
        v = v_all[s : s + _CHUNK].astype(np.float64, copy=False)
        sign = np.where(v[:, 2] < 0, -1.0, 1.0)[:, None]
        v = v * sign
        idx = grid.cell_index(v)
        count += np.bincount(idx, minlength=m)
        if w_all is not None:
            wsum += np.bincount(idx, weights=w_all[s : s + _CHUNK], minlength=m)
        for a in range(3):
            s1[a] += np.bincount(idx, weights=v[:, a], minlength=m)
        for c, (a, b) in enumerate(SYM6):
            s2[c] += np.bincount(idx, weights=v[:, a] * v[:, b], minlength=m)
    if w_all is None:
        wsum = count.copy()
    keep = count > 0
    cnt = count[keep]
    return BinnedDirections(
        count=cnt,
        weight=wsum[keep],
        mean=(s1[:, keep] / cnt).T.copy(),
        second=(s2[:, keep] / cnt).T.copy(),
        n_particles=len(v_all),
        grid=grid,
    )


# --------------------------------------------------------------------------------------------
# the whole diagnostic, as used by the widget and the command line
# --------------------------------------------------------------------------------------------


def table_box_px(table) -> int | None:
    """Particle box size (px) when the table records it (``box_px``, ``rlnImageSize``, cryoSPARC
    ``blob/shape``, the optics table's ``rlnImageSize``); ``None`` otherwise (the files behind the
    table may still tell: :func:`napari_cryodiag.workflows.orientations.particle_box_px`)."""
    cols = set(table.columns)
    for name in ("box_px", "box_size_px", "rlnImageSize"):
        if name in cols:
            v = np.asarray(table[name], dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size:
                return int(np.median(v))
    if "blob/shape" in cols:
        shp = np.asarray(table["blob/shape"].iloc[0]).ravel()
        if shp.size:
            return int(shp[-1])
    attrs = table.attrs if hasattr(table, "attrs") else {}
    optics = attrs.get("optics")
    if optics is not None and hasattr(optics, "columns") and "rlnImageSize" in optics.columns:
        return int(np.median(np.asarray(optics["rlnImageSize"], dtype=np.float64)))
    return None


def table_pixel_size_A(table) -> float | None:
    """Median ``pixel_size_A`` of the table (None when absent or non-positive)."""
    if "pixel_size_A" not in table.columns:
        return None
    v = np.asarray(table["pixel_size_A"], dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.median(v)) if v.size else None
