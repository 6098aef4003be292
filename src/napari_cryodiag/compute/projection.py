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
    """

    def __init__(self, volume: np.ndarray, pad: int = 2):
        vol = np.asarray(volume, dtype=np.float32)
        if vol.ndim != 3 or len(set(vol.shape)) != 1:
            raise ValueError(f"FourierProjector needs a cubic map, got shape {vol.shape}")
        self.n = n = vol.shape[0]
        self.pad = pad = int(pad)
        big = pad * n
        padded = np.zeros((big, big, big), dtype=np.float32)
        o = big // 2 - n // 2
        padded[o : o + n, o : o + n, o : o + n] = vol
        # centred transform: origin of real space at big//2, DC at index big//2
        ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(padded)))
        self._re = np.ascontiguousarray(ft.real.astype(np.float32))
        self._im = np.ascontiguousarray(ft.imag.astype(np.float32))
        self._centre = big // 2
        ky = np.fft.fftfreq(n, d=1.0 / n)
        kx = np.fft.rfftfreq(n, d=1.0 / n)
        self._kx, self._ky = np.meshgrid(kx, ky)  # (n, n//2+1), integer frequencies
        # Only coefficients within Nyquist are sampled; the rest are set to zero.
        self._inside = (self._kx**2 + self._ky**2) <= (n // 2) ** 2

    def project_ft(self, matrices, shifts_px=None) -> np.ndarray:
        """rfft2 of the centred projections (``rfft2(ifftshift(image))``), complex64 (m, n, n//2+1)."""
        mats = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
        n = self.n
        kx = self._kx[self._inside]
        ky = self._ky[self._inside]
        out = np.zeros((len(mats), n, n // 2 + 1), dtype=np.complex64)
        for i, a in enumerate(mats):
            # frequency in map coordinates: A^T (kx, ky, 0)
            fx = a[0, 0] * kx + a[1, 0] * ky
            fy = a[0, 1] * kx + a[1, 1] * ky
            fz = a[0, 2] * kx + a[1, 2] * ky
            coords = np.stack([fz, fy, fx]) * self.pad + self._centre
            re = ndimage.map_coordinates(self._re, coords, order=1, mode="constant", prefilter=False)
            im = ndimage.map_coordinates(self._im, coords, order=1, mode="constant", prefilter=False)
            out[i][self._inside] = re + 1j * im
        if shifts_px is not None:
            sh = np.asarray(shifts_px, dtype=np.float64).reshape(-1, 2)
            phase = np.exp(
                -2j * np.pi * (sh[:, 0, None, None] * self._kx[None] + sh[:, 1, None, None] * self._ky[None]) / n
            )
            out *= phase.astype(np.complex64)
        return out

    def project(self, matrices, shifts_px=None) -> np.ndarray:
        """Real-space projection images (m, n, n) float32, centre at ``n // 2``."""
        ft = self.project_ft(matrices, shifts_px)
        imgs = np.fft.irfft2(ft, s=(self.n, self.n), axes=(-2, -1))
        return np.fft.fftshift(imgs, axes=(-2, -1)).astype(np.float32)
