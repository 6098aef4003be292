"""Views of a 3D map: central slices, projections (sums) and log-amplitude Fourier slices.

Planes follow the cryoSPARC guide's triptychs, for a map indexed ``[z, y, x]``:

- ``"z-y"``: the plane at the central x (``vol[:, :, cx]``), rows z, columns y;
- ``"z-x"``: the plane at the central y (``vol[:, cy, :]``), rows z, columns x;
- ``"y-x"``: the plane at the central z (``vol[cz, :, :]``), rows y, columns x.

Centres are at ``n // 2``. Projections sum along the normal of each plane. The Fourier volume
is ``log(|F| + eps)`` of the full 3D transform of the map (origin at the box centre,
``fftshift(fftn(ifftshift(map)))``), float32, so that napari can slice it as a 3D layer; its
central planes are the Fourier triptych.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

PLANES = ("z-y", "z-x", "y-x")


def central_slices(volume: np.ndarray) -> dict[str, np.ndarray]:
    v = np.asarray(volume)
    cz, cy, cx = (s // 2 for s in v.shape)
    return {"z-y": v[:, :, cx], "z-x": v[:, cy, :], "y-x": v[cz, :, :]}


def projections(volume: np.ndarray) -> dict[str, np.ndarray]:
    v = np.asarray(volume, dtype=np.float32)
    return {"z-y": v.sum(axis=2), "z-x": v.sum(axis=1), "y-x": v.sum(axis=0)}


def fourier_log_amplitude(volume: np.ndarray, eps: float | None = None) -> np.ndarray:
    """``log(|F| + eps)`` of the centred full 3D transform (float32, same shape as the map).

    ``eps`` defaults to 1e-6 of the largest amplitude, so empty regions stay finite.
    """
    v = np.asarray(volume, dtype=np.float32)
    f = scipy.fft.fftn(scipy.fft.ifftshift(v), workers=-1)
    amp = np.abs(scipy.fft.fftshift(f)).astype(np.float32)
    del f
    if eps is None:
        eps = float(amp.max()) * 1e-6 or 1e-30
    return np.log(amp + np.float32(eps))


def fourier_slices(volume: np.ndarray, log_amplitude: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Central planes of the log-amplitude Fourier volume (the DC term sits at ``n // 2``)."""
    la = fourier_log_amplitude(volume) if log_amplitude is None else log_amplitude
    return central_slices(la)


def all_views(volume: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    la = fourier_log_amplitude(volume)
    return {"slices": central_slices(volume), "projections": projections(volume), "fourier": central_slices(la)}
