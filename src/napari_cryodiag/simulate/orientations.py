"""Simulated particle orientations (and anisotropic half maps) with known answers.

Pose sets return the canonical particle table (docs/ARCHITECTURE.md): ``rot_deg``,
``tilt_deg``, ``psi_deg`` (RELION ZYZ, degrees) and, with ``ctf=True``, CTF columns
(``defocus_u_A``, ``defocus_v_A``, ``defocus_angle_deg``, ``voltage_kV``, ``cs_mm``,
``amplitude_contrast``, ``pixel_size_A``). Viewing directions of the generated poses follow
the requested distribution exactly (up to the random draw); psi is uniform.

- :func:`uniform_poses` — uniformly random rotations (Haar measure).
- :func:`single_view_poses` — every particle seen along one direction (default: down z).
- :func:`cone_poses` — viewing directions uniform within a cone of a given half-angle.
- :func:`preferred_orientation_poses` — a mixture: a fraction of top views (a cone around z)
  plus uniformly oriented particles.
- :func:`anisotropic_half_maps` — two half maps whose resolution depends on direction
  (for cFAR).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

__all__ = [
    "uniform_poses",
    "single_view_poses",
    "cone_poses",
    "preferred_orientation_poses",
    "poses_from_directions",
    "table_to_rotvec",
    "anisotropic_half_maps",
]


def _table(rot, tilt, psi, rng, ctf: bool, pixel_size_A: float, label: str) -> pd.DataFrame:
    df = pd.DataFrame({"rot_deg": rot, "tilt_deg": tilt, "psi_deg": psi})
    if ctf:
        n = len(df)
        du = rng.uniform(8000.0, 30000.0, n)
        df["defocus_u_A"] = du
        df["defocus_v_A"] = du - rng.uniform(0.0, 500.0, n)
        df["defocus_angle_deg"] = rng.uniform(-90.0, 90.0, n)
        df["defocus_A"] = 0.5 * (df["defocus_u_A"] + df["defocus_v_A"])
        df["voltage_kV"] = 300.0
        df["cs_mm"] = 2.7
        df["amplitude_contrast"] = 0.1
        df["pixel_size_A"] = float(pixel_size_A)
    df.attrs = {"source": f"simulated: {label}", "format": "simulated", "convention": "RELION ZYZ degrees", "optics": None}
    return df


def poses_from_directions(vectors, rng=None, psi_deg=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RELION (rot, tilt, psi) degrees whose viewing directions are ``vectors`` (n, 3)."""
    rng = np.random.default_rng(rng)
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    tilt = np.degrees(np.arccos(np.clip(v[:, 2], -1, 1)))
    rot = np.degrees(np.arctan2(v[:, 1], v[:, 0]))
    psi = rng.uniform(-180.0, 180.0, len(v)) if psi_deg is None else np.broadcast_to(psi_deg, len(v)).astype(float)
    return rot, tilt, psi


def uniform_poses(n: int, seed: int = 0, ctf: bool = False, pixel_size_A: float = 1.5) -> pd.DataFrame:
    """``n`` uniformly random orientations."""
    rng = np.random.default_rng(seed)
    e = Rotation.random(int(n), random_state=rng).as_euler("ZYZ", degrees=True)
    return _table(e[:, 0], e[:, 1], e[:, 2], rng, ctf, pixel_size_A, f"{n} uniform poses")


def _cone_directions(n: int, half_angle_deg: float, axis, rng) -> np.ndarray:
    ca = np.cos(np.radians(half_angle_deg))
    z = rng.uniform(ca, 1.0, n)  # uniform on the spherical cap
    phi = rng.uniform(0, 2 * np.pi, n)
    r = np.sqrt(np.clip(1 - z * z, 0, None))
    local = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    # rotation taking e_z to the axis
    rot, _ = Rotation.align_vectors([a], [[0.0, 0.0, 1.0]])
    return rot.apply(local)


def single_view_poses(n: int, direction=(0.0, 0.0, 1.0), seed: int = 0, ctf: bool = False, pixel_size_A: float = 1.5) -> pd.DataFrame:
    """``n`` particles all seen along ``direction`` (default: down z, tilt 0), random psi."""
    rng = np.random.default_rng(seed)
    v = np.repeat(np.asarray(direction, dtype=np.float64)[None, :], int(n), axis=0)
    rot, tilt, psi = poses_from_directions(v, rng)
    return _table(rot, tilt, psi, rng, ctf, pixel_size_A, f"{n} single-view poses")


def cone_poses(
    n: int, half_angle_deg: float = 10.0, axis=(0.0, 0.0, 1.0), seed: int = 0, ctf: bool = False, pixel_size_A: float = 1.5
) -> pd.DataFrame:
    """``n`` viewing directions uniform within a cone of ``half_angle_deg`` around ``axis``."""
    rng = np.random.default_rng(seed)
    v = _cone_directions(int(n), half_angle_deg, axis, rng)
    rot, tilt, psi = poses_from_directions(v, rng)
    return _table(rot, tilt, psi, rng, ctf, pixel_size_A, f"{n} poses in a {half_angle_deg}° cone")


def preferred_orientation_poses(
    n: int, top_fraction: float = 0.8, spread_deg: float = 10.0, seed: int = 0, ctf: bool = False, pixel_size_A: float = 1.5
) -> pd.DataFrame:
    """A mixture: ``top_fraction`` of top views (a ``spread_deg`` cone around z), the rest uniform."""
    rng = np.random.default_rng(seed)
    n = int(n)
    n_top = int(round(top_fraction * n))
    top = _cone_directions(n_top, spread_deg, (0, 0, 1), rng)
    uni = Rotation.random(n - n_top, random_state=rng).apply([0.0, 0.0, 1.0]) if n - n_top else np.zeros((0, 3))
    v = np.concatenate([top, uni.reshape(-1, 3)])
    v = v[rng.permutation(n)]
    rot, tilt, psi = poses_from_directions(v, rng)
    return _table(rot, tilt, psi, rng, ctf, pixel_size_A, f"{n} poses, {top_fraction:.0%} top views")


def table_to_rotvec(table) -> np.ndarray:
    """cryoSPARC axis-angle poses (radians, (n, 3)) of a table's RELION Euler angles."""
    e = np.stack([np.asarray(table[c], float) for c in ("rot_deg", "tilt_deg", "psi_deg")], axis=1)
    return Rotation.from_euler("ZYZ", e, degrees=True).as_rotvec()


def anisotropic_half_maps(
    box: int = 48,
    pixel_size_A: float = 2.0,
    weak_axis=(0.0, 0.0, 1.0),
    bfactor_A2: float = 50.0,
    extra_bfactor_A2: float = 0.0,
    noise: float = 1.0,
    seed: int = 0,
):
    """Two half maps of a Gaussian-atom density with independent white noise.

    The signal is attenuated by ``exp(-(B + B_extra (k̂·a)²) s² / 4)`` on amplitudes, with
    ``a = weak_axis``: with ``extra_bfactor_A2 = 0`` the resolution is isotropic; a large
    ``extra_bfactor_A2`` makes the resolution along ``a`` much worse (a missing-cone-like
    anisotropy), so the cone FSCs around ``a`` cross 0.143 earlier. ``noise`` scales the noise
    relative to the signal's RMS. Returns ``(half1, half2)`` float32 [z, y, x].
    """
    from .density import gaussian_atoms_density

    rng = np.random.default_rng(seed)
    vol = gaussian_atoms_density(box=box, pixel_size_A=pixel_size_A, n_atoms=max(200, box * 5), seed=seed)
    ft = np.fft.rfftn(vol.astype(np.float64))
    kz = np.fft.fftfreq(box, d=pixel_size_A)[:, None, None]
    ky = np.fft.fftfreq(box, d=pixel_size_A)[None, :, None]
    kx = np.fft.rfftfreq(box, d=pixel_size_A)[None, None, :]
    s2 = kx**2 + ky**2 + kz**2
    a = np.asarray(weak_axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos2 = np.where(s2 > 0, (kx * a[0] + ky * a[1] + kz * a[2]) ** 2 / np.where(s2 > 0, s2, 1), 0.0)
    env = np.exp(-(bfactor_A2 + extra_bfactor_A2 * cos2) * s2 / 4.0)
    signal = np.fft.irfftn(ft * env, s=vol.shape)
    sigma = float(noise) * float(signal.std())
    h1 = signal + rng.normal(scale=sigma, size=signal.shape)
    h2 = signal + rng.normal(scale=sigma, size=signal.shape)
    return h1.astype(np.float32), h2.astype(np.float32)
