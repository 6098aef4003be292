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

from functools import lru_cache

import numpy as np


def electron_wavelength_A(voltage_kV):
    """Relativistic electron wavelength in Å for an acceleration voltage in kV (scalar or array)."""
    v = np.asarray(voltage_kV, dtype=np.float64) * 1e3
    return 12.2642598 / np.sqrt(v * (1.0 + 0.97848e-6 * v))


@lru_cache(maxsize=8)
def _frequency_grid(shape, pixel_size_A: float, rfft: bool):
    """|s|^2, |s|^4 (1/Å) and cos/sin of twice the azimuth of each coefficient of the (r)fft2
    grid of ``shape`` (cached, read-only)."""
    ny, nx = int(shape[0]), int(shape[1])
    ky = np.fft.fftfreq(ny, d=pixel_size_A)[:, None]
    kx = (np.fft.rfftfreq(nx, d=pixel_size_A) if rfft else np.fft.fftfreq(nx, d=pixel_size_A))[None, :]
    s2 = kx**2 + ky**2
    theta = np.arctan2(ky, kx)
    grid = (s2, s2 * s2, np.cos(2.0 * theta), np.sin(2.0 * theta))
    for g in grid:
        g.setflags(write=False)
    return grid


def ctf_2d_stack(
    shape,
    pixel_size_A: float,
    defocus_u_A,
    defocus_v_A,
    defocus_angle_deg=0.0,
    voltage_kV=300.0,
    cs_mm=2.7,
    amplitude_contrast=0.1,
    phase_shift_deg=0.0,
    bfactor_A2=0.0,
    rfft: bool = True,
) -> np.ndarray:
    """CTFs of ``m`` images at once: every parameter is a scalar or an array of length ``m``.

    Returns float32 ``(m, ny, nx//2+1)`` (or ``(m, ny, nx)``); the frequency grid and its
    azimuth terms are built once for the stack.
    """
    s2, s4, cos2t, sin2t = _frequency_grid((int(shape[0]), int(shape[1])), float(pixel_size_A), bool(rfft))
    params = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (
        defocus_u_A, defocus_v_A, defocus_angle_deg, voltage_kV, cs_mm, amplitude_contrast, phase_shift_deg,
        bfactor_A2)))
    out = np.empty((len(params[0]),) + s2.shape, dtype=np.float32)
    # one image at a time on the shared grid: cache-sized temporaries beat one huge broadcast
    for i, (du, dv, ang, kv, cs, q, ph, bf) in enumerate(zip(*params)):
        lam = float(electron_wavelength_A(kv))
        a = np.deg2rad(ang)
        # cos(2(theta - a)) = cos 2theta cos 2a + sin 2theta sin 2a
        dz = 0.5 * (du + dv) + 0.5 * (du - dv) * (cos2t * np.cos(2 * a) + sin2t * np.sin(2 * a))
        k3 = np.arctan2(q, np.sqrt(max(1.0 - q * q, 0.0)))
        chi = (np.pi * lam) * dz * s2 - (0.5 * np.pi * cs * 1e7 * lam**3) * s4 + (np.deg2rad(ph) + k3)
        c = np.sin(chi)
        if bf:
            c *= np.exp(-bf * s2 / 4.0)
        out[i] = c
    return out


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
    return ctf_2d_stack(shape, pixel_size_A, defocus_u_A, defocus_v_A, defocus_angle_deg, voltage_kV, cs_mm,
                        amplitude_contrast, phase_shift_deg, bfactor_A2, rfft)[0]
