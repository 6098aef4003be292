"""Contrast transfer function of a 2D image (RELION / CTFFIND convention).

    CTF(s) = sin(chi(s)),
    chi(s) = pi * lambda * dz(theta) * s^2 - pi/2 * Cs * lambda^3 * s^4 + phase_shift + atan(Q0 / sqrt(1 - Q0^2))

(RELION's ``-sin(K1 * deltaf * s^2 + K2 * s^4 - K5 - K3)`` with ``deltaf = -dz``),
written so that underfocus (``defocus > 0``, Å) gives ``CTF(0) = +Q0`` with the first zero
at ``s ~ 1/sqrt(lambda * dz)``. ``dz(theta) = (dU + dV)/2 + (dU - dV)/2 * cos(2 (theta - angle))``
with ``theta`` the azimuth of the frequency vector measured from the x axis (columns) and
``angle`` the astigmatism angle (RELION ``rlnDefocusAngle``, degrees). An optional B-factor
envelope ``exp(-B s^2 / 4)`` multiplies the result.
"""

from __future__ import annotations

import numpy as np


def electron_wavelength_A(voltage_kV: float) -> float:
    """Relativistic electron wavelength in Å for an acceleration voltage in kV."""
    v = float(voltage_kV) * 1e3
    return 12.2642598 / np.sqrt(v * (1.0 + 0.97848e-6 * v))


def ctf_2d(
    shape,
    pixel_size_A: float,
    defocus_u_A: float,
    defocus_v_A: float,
    defocus_angle_deg: float = 0.0,
    voltage_kV: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    phase_shift_deg: float = 0.0,
    bfactor_A2: float = 0.0,
    rfft: bool = True,
) -> np.ndarray:
    """CTF on the ``rfft2`` (``rfft=True``) or ``fft2`` frequency grid of an image of ``shape`` (ny, nx).

    Returns float32 of shape ``(ny, nx//2+1)`` or ``(ny, nx)``.
    """
    ny, nx = int(shape[0]), int(shape[1])
    ky = np.fft.fftfreq(ny, d=pixel_size_A)[:, None]
    kx = (np.fft.rfftfreq(nx, d=pixel_size_A) if rfft else np.fft.fftfreq(nx, d=pixel_size_A))[None, :]
    s2 = kx**2 + ky**2
    theta = np.arctan2(ky, kx)
    lam = electron_wavelength_A(voltage_kV)
    cs_A = float(cs_mm) * 1e7
    mean = 0.5 * (defocus_u_A + defocus_v_A)
    half = 0.5 * (defocus_u_A - defocus_v_A)
    dz = mean + half * np.cos(2.0 * (theta - np.deg2rad(defocus_angle_deg)))
    q = float(amplitude_contrast)
    k3 = np.arctan2(q, np.sqrt(max(1.0 - q * q, 0.0)))
    chi = np.pi * lam * dz * s2 - 0.5 * np.pi * cs_A * lam**3 * s2**2 + np.deg2rad(phase_shift_deg) + k3
    ctf = np.sin(chi)
    if bfactor_A2:
        ctf = ctf * np.exp(-float(bfactor_A2) * s2 / 4.0)
    return ctf.astype(np.float32)
