"""Rotations and projections of a 3D map.

Conventions (REFERENCE.md "Poses and orientations"):

- RELION Euler angles (rot, tilt, psi), degrees, ZYZ. RELION's matrix ``A`` maps map
  coordinates to the projection (image) frame; with scipy,
  ``A = Rotation.from_euler("ZYZ", [rot, tilt, psi], degrees=True).as_matrix().T``.
- cryoSPARC poses are axis-angle vectors (radians):
  ``(rot, tilt, psi) = Rotation.from_rotvec(pose).as_euler("ZYZ")`` in degrees.
- The viewing direction (projection axis in map coordinates) is the third row of ``A``:
  ``(cos rot sin tilt, sin rot sin tilt, cos tilt)``.
- Vectors are (x, y, z); arrays are indexed [z, y, x]; the box centre is at index ``n // 2``.
- A projection image ``P(x, y) = sum_z V(A^T (x, y, z))``; its 2D transform is the central slice
  ``F_P(kx, ky) = F_V(A^T (kx, ky, 0))`` (Fourier-slice theorem), which
  :class:`FourierProjector` samples by trilinear interpolation of a zero-padded transform.
- Shifts are in pixels (x, y), applied as ``image(r - shift)``: a particle displaced by ``+shift``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from scipy import ndimage
from scipy.spatial.transform import Rotation


def euler_to_matrix(rot, tilt, psi) -> np.ndarray:
    """RELION's rotation matrices ``A`` for Euler angles in degrees; shape (3, 3) or (m, 3, 3)."""
    angles = np.stack(np.broadcast_arrays(np.asarray(rot, float), np.asarray(tilt, float), np.asarray(psi, float)), axis=-1)
    r = Rotation.from_euler("ZYZ", angles.reshape(-1, 3), degrees=True).as_matrix()
    a = np.transpose(r, (0, 2, 1))
    return a[0] if angles.ndim == 1 else a.reshape(angles.shape[:-1] + (3, 3))


def matrix_to_euler(a: np.ndarray) -> np.ndarray:
    """Inverse of :func:`euler_to_matrix`: RELION (rot, tilt, psi) in degrees, shape (..., 3)."""
    a = np.asarray(a, float)
    flat = a.reshape(-1, 3, 3)
    e = Rotation.from_matrix(np.transpose(flat, (0, 2, 1))).as_euler("ZYZ", degrees=True)
    return e[0] if a.ndim == 2 else e.reshape(a.shape[:-2] + (3,))


def pose_to_euler_deg(rotvec) -> np.ndarray:
    """cryoSPARC axis-angle pose(s) (radians) -> RELION (rot, tilt, psi) in degrees, shape (..., 3)."""
    rv = np.asarray(rotvec, float)
    e = Rotation.from_rotvec(rv.reshape(-1, 3)).as_euler("ZYZ", degrees=True)
    return e[0] if rv.ndim == 1 else e.reshape(rv.shape[:-1] + (3,))


def euler_to_pose(rot, tilt, psi) -> np.ndarray:
    """RELION Euler angles (degrees) -> cryoSPARC axis-angle pose (radians), shape (..., 3)."""
    angles = np.stack(np.broadcast_arrays(np.asarray(rot, float), np.asarray(tilt, float), np.asarray(psi, float)), axis=-1)
    rv = Rotation.from_euler("ZYZ", angles.reshape(-1, 3), degrees=True).as_rotvec()
    return rv[0] if angles.ndim == 1 else rv.reshape(angles.shape)


def viewing_direction(rot, tilt) -> np.ndarray:
    """Unit viewing direction(s) (x, y, z) for RELION rot and tilt in degrees; shape (..., 3)."""
    r = np.deg2rad(np.asarray(rot, float))
    t = np.deg2rad(np.asarray(tilt, float))
    return np.stack([np.cos(r) * np.sin(t), np.sin(r) * np.sin(t), np.cos(t)], axis=-1)


def project_real(volume: np.ndarray, matrix: np.ndarray, order: int = 1) -> np.ndarray:
    """Slow reference projection: rotate the map by ``A`` in real space and sum along z."""
    n = volume.shape[0]
    c = n // 2
    g = np.arange(n) - c
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    img_xyz = np.stack([x.ravel(), y.ravel(), z.ravel()])  # coordinates in the image frame
    map_xyz = np.asarray(matrix, float).T @ img_xyz  # A^T r
    coords = np.stack([map_xyz[2], map_xyz[1], map_xyz[0]]) + c  # -> [z, y, x] indices
    vals = ndimage.map_coordinates(volume.astype(np.float64), coords, order=order, mode="constant")
    return vals.reshape(n, n, n).sum(axis=0).astype(np.float32)


class FourierProjector:
    """Fast projections of one map by central slices of its zero-padded Fourier transform.

    Parameters
    ----------
    volume
        Cubic map [z, y, x] of side ``n``.
    pad
        Zero-padding factor of the 3D transform (2 keeps interpolation errors small).

    The padded map's transform is computed in single precision with a real-to-complex FFT and
    only its half ``kx >= 0`` is kept (complex64, about ``(pad n)^3 / 2`` coefficients: 0.5 GiB
    for a 256³ map with pad 2); coefficients at ``kx < 0`` follow from Friedel symmetry
    ``F(-k) = conj(F(k))``. Slices are sampled by trilinear interpolation, vectorised over a batch
    of images. Sampling points off the centred padded grid (on an axis, ``pad k`` beyond
    ``pad n - 1 - (pad n) // 2``: a sliver at Nyquist) are zero, as with
    ``scipy.ndimage.map_coordinates(mode="constant")`` on the centred transform, the former
    implementation, which this one reproduces to float32 rounding (``tests/test_projection.py``).
    """

    # sampling points per vectorised step: bounds the temporaries (~100 bytes a point)
    _points_per_step = 1 << 14

    def __init__(self, volume: np.ndarray, pad: int = 2):
        vol = np.asarray(volume, dtype=np.float32)
        if vol.ndim != 3 or len(set(vol.shape)) != 1:
            raise ValueError(f"FourierProjector needs a cubic map, got shape {vol.shape}")
        self.n = n = vol.shape[0]
        self.pad = pad = int(pad)
        self._big = big = pad * n
        self._centre = c = big // 2
        # zero-padded map with its centre (index n//2) moved to index 0 (= ifftshift of the
        # centred padded map), in float32 so that the FFT stays in single precision
        shifted = np.zeros((big, big, big), dtype=np.float32)
        idx = (np.arange(n) - n // 2) % big
        shifted[np.ix_(idx, idx, idx)] = vol
        half = sfft.rfftn(shifted, workers=-1)  # complex64 (big, big, big//2 + 1)
        del shifted
        # Centred along z and y (index j <-> frequency j - c) with two wrapped planes/rows
        # (j = big, big + 1 <-> j - big) so that both neighbours of any sample exist; along x
        # the rfft half (index = frequency 0..c) plus one zero column (reached with weight 0).
        ext = np.zeros((big + 2, big + 2, c + 2), dtype=np.complex64)
        rows = (np.arange(big + 2) - c) % big
        for j, src in enumerate(rows):
            ext[j, :, : c + 1] = half[src][rows]
        del half
        self._ext = ext
        ky = np.fft.fftfreq(n, d=1.0 / n)
        kx = np.fft.rfftfreq(n, d=1.0 / n)
        self._kx, self._ky = np.meshgrid(kx, ky)  # (n, n//2+1), integer frequencies
        # Only coefficients within Nyquist are sampled; the rest are set to zero.
        self._inside = (self._kx**2 + self._ky**2) <= (n // 2) ** 2
        self._kx_in = self._kx[self._inside]
        self._ky_in = self._ky[self._inside]

    def _pairs(self) -> np.ndarray:
        """1D view of the extended half-transform whose element ``i`` is the complex64 pair
        (``i``, ``i + 1``) read as one 16-byte item: one gather fetches both x neighbours."""
        flat = self._ext.reshape(-1)
        return np.ndarray(shape=(flat.size - 1,), dtype=np.complex128, buffer=flat, strides=(8,))

    def _sample(self, mats: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """Interpolated coefficients at the in-Nyquist points of each matrix: complex64 (m, p)."""
        big, c, pad = self._big, self._centre, self.pad
        kx, ky = self._kx_in, self._ky_in
        # frequency in map coordinates A^T (kx, ky, 0), in padded-grid units, and its position
        # on the centred padded grid; a point is sampled when it lies on the grid on all axes
        # (same arithmetic as the map_coordinates reference, so the same points are kept)
        dx = (mats[:, 0, 0, None] * kx + mats[:, 1, 0, None] * ky) * pad
        dy = (mats[:, 0, 1, None] * kx + mats[:, 1, 1, None] * ky) * pad
        dz = (mats[:, 0, 2, None] * kx + mats[:, 1, 2, None] * ky) * pad
        valid = (dx + c >= 0) & (dx + c <= big - 1)
        valid &= (dy + c >= 0) & (dy + c <= big - 1)
        valid &= (dz + c >= 0) & (dz + c <= big - 1)
        # Friedel: a point with kx < 0 is sampled at -k and conjugated
        sign = np.where(dx < 0, -1.0, 1.0)
        ux = dx * sign  # in [0, c]
        uy = dy * sign + c  # in [0, big]
        uz = dz * sign + c
        ix = ux.astype(np.int64)  # non-negative: truncation is floor
        iy = uy.astype(np.int64)
        iz = uz.astype(np.int64)
        wx = (ux - ix).astype(np.float32)
        wy = (uy - iy).astype(np.float32)
        wz = (uz - iz).astype(np.float32)
        ny, nx = self._ext.shape[1:]
        start = (iz * ny + iy) * nx + ix
        start[~valid] = 0  # any in-range index; zeroed below
        # corners (z0,y0) (z0,y1) (z1,y0) (z1,y1), each fetching its pair (x0, x1)
        offs = np.array([0, nx, ny * nx, ny * nx + nx], dtype=np.int64)
        g = pairs[offs.reshape((4,) + (1,) * start.ndim) + start]  # (4, ...) complex128 items
        g = g.view(np.complex64).reshape(g.shape + (2,))  # (4 corners, ..., x0/x1)
        v = g[..., 1] - g[..., 0]  # along x: (4 corners, ...)
        v *= wx
        v += g[..., 0]
        w = v[1::2] - v[0::2]  # along y: (z0/z1, ...)
        w *= wy
        w += v[0::2]
        out = w[1] - w[0]  # along z
        out *= wz
        out += w[0]
        out.imag *= sign.astype(np.float32)
        out[~valid] = 0
        return out

    def project_ft(self, matrices, shifts_px=None) -> np.ndarray:
        """rfft2 of the centred projections (``rfft2(ifftshift(image))``), complex64 (m, n, n//2+1)."""
        mats = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
        n = self.n
        out = np.zeros((len(mats), n, n // 2 + 1), dtype=np.complex64)
        pairs = self._pairs()
        step = max(1, self._points_per_step // max(1, self._kx_in.size))
        for i in range(0, len(mats), step):
            out[i : i + step, self._inside] = self._sample(mats[i : i + step], pairs)
        if shifts_px is not None:
            sh = np.asarray(shifts_px, dtype=np.float64).reshape(-1, 2)
            # exp(-2 pi i (sx kx + sy ky) / n), separable in kx and ky
            px = np.exp(-2j * np.pi * sh[:, 0, None] * self._kx[0] / n).astype(np.complex64)
            py = np.exp(-2j * np.pi * sh[:, 1, None] * self._ky[:, 0] / n).astype(np.complex64)
            out *= py[:, :, None]
            out *= px[:, None, :]
        return out

    def project(self, matrices, shifts_px=None) -> np.ndarray:
        """Real-space projection images (m, n, n) float32, centre at ``n // 2``."""
        ft = self.project_ft(matrices, shifts_px)
        imgs = np.fft.irfft2(ft, s=(self.n, self.n), axes=(-2, -1))
        return np.fft.fftshift(imgs, axes=(-2, -1)).astype(np.float32)
