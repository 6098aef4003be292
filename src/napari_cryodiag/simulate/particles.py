"""Simulated particle images with a known noise spectrum (for the noise model and classes).

Each image is ``scale * CTF * P(V)`` (Fourier-slice projection of a Gaussian-atom map at a
random uniform pose, displaced by ``-shift``: the table's shifts are RELION origins, the shift
that centres the particle) plus Gaussian noise whose power per Fourier coefficient depends only
on the coefficient's shell. The spectrum is given in the per-pixel convention of
:mod:`napari_cryodiag.compute.particles.noise_model`: ``E|N(k)|^2 / N^2`` for the unnormalised DFT of an
``N x N`` image, so white noise of real-space variance ``sigma**2`` has the value ``sigma**2``
in every shell.

Noise kinds:
- ``"white"``: i.i.d. Gaussian pixels of variance ``sigma**2``;
- ``"coloured"``: white noise filtered by ``sqrt(shape(shell))``; the shape rises towards
  Nyquist (like dose-weighted micrographs, the cryoSPARC guide's example) with a low-frequency
  bump, normalised so that its mean over the coefficients inside Nyquist is 1 (so the real-space
  variance is about ``sigma**2``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from ..compute.ctf import ctf_2d
from ..compute.fourier import n_shells, shell_counts, shell_index
from ..compute.projection import FourierProjector, euler_to_matrix
from ..io.atomic import atomic_write
from .density import gaussian_atoms_density

NOISE_KINDS = ("white", "coloured", "none")


@dataclass
class SimulatedParticles:
    images: np.ndarray  # (n, box, box) float32
    table: pd.DataFrame  # canonical particle table, image_index = row
    volume: np.ndarray  # (box, box, box) float32, the map that made the images
    pixel_size_A: float
    noise: str
    noise_spectrum: np.ndarray  # per shell 0..box//2, per-pixel convention (true value)
    signal_scale: float
    noise_sigma: float

    @property
    def box(self) -> int:
        return int(self.images.shape[-1])


def noise_spectrum(kind: str, box: int, sigma: float = 1.0) -> np.ndarray:
    """True per-shell noise power (per-pixel convention) for shells ``0 .. box//2``."""
    m = n_shells(box)
    if kind == "none":
        return np.zeros(m)
    if kind == "white":
        return np.full(m, float(sigma) ** 2)
    if kind != "coloured":
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {kind!r}")
    r = np.arange(m) / (box / 2.0)
    shape = 0.4 + 1.6 * r**2 + 0.8 * np.exp(-((r / 0.12) ** 2))
    counts = shell_counts(shell_index((box, box)), box)
    shape = shape / (np.sum(shape * counts) / np.sum(counts))
    return float(sigma) ** 2 * shape


def make_noise(n: int, box: int, spectrum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` real noise images whose coefficients have power ``spectrum[shell]`` (per pixel)."""
    white = rng.standard_normal((n, box, box))
    spec = np.asarray(spectrum, float)
    if np.allclose(spec, spec[0]):
        return (white * np.sqrt(spec[0])).astype(np.float32)
    idx = shell_index((box, box))
    ext = np.append(spec, spec[-1])  # beyond-Nyquist corners keep the last shell's power
    filt = np.sqrt(ext[idx])
    ft = np.fft.rfft2(white, axes=(-2, -1)) * filt
    return np.fft.irfft2(ft, s=(box, box), axes=(-2, -1)).astype(np.float32)


def simulate_particles(
    n: int = 200,
    box: int = 64,
    pixel_size_A: float = 2.0,
    noise: str = "white",
    seed: int = 0,
    *,
    snr: float = 0.1,
    noise_sigma: float | None = None,
    signal_scale: float = 1.0,
    defocus_range_A: tuple[float, float] = (8000.0, 25000.0),
    astigmatism_A: float = 400.0,
    max_shift_A: float = 6.0,
    voltage_kV: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    volume: np.ndarray | None = None,
    pad: int = 2,
    apply_ctf: bool = True,
    chunk_size: int = 256,
    out: np.ndarray | None = None,
    projector: FourierProjector | None = None,
) -> SimulatedParticles:
    """Simulate ``n`` particle images of a ``box`` map with a known noise spectrum.

    ``noise_sigma`` (real-space noise level) defaults to the value giving a real-space
    signal-to-noise ratio ``snr`` (signal variance over noise variance, over whole images; the
    signal variance of the first ``chunk_size`` images). Images are made ``chunk_size`` at a
    time into ``out`` when given (e.g. a memory map of an MRCS being written), else a new array.
    ``projector`` reuses a :class:`FourierProjector` of ``volume`` (saves its set-up).
    The table has the canonical columns (poses uniform on SO(3), RELION Eulers; shifts
    uniform in ``±max_shift_A``; per-particle defocus and astigmatism; ``image_index`` = row,
    ``image_path`` empty until :func:`write_particle_set`).
    """
    rng = np.random.default_rng(seed)
    vol = gaussian_atoms_density(box=box, pixel_size_A=pixel_size_A, seed=seed) if volume is None \
        else np.asarray(volume, np.float32)
    if vol.shape != (box, box, box):
        raise ValueError(f"volume shape {vol.shape} does not match box {box}")
    euler = Rotation.random(n, random_state=rng.integers(2**31)).as_euler("ZYZ", degrees=True)
    # values rounded to what a STAR file keeps (6 decimals), so written sets are exact
    euler = np.round(euler, 4)
    rot, tilt, psi = euler[:, 0], euler[:, 1], euler[:, 2]
    shifts_A = np.round(rng.uniform(-max_shift_A, max_shift_A, size=(n, 2)), 4)
    dmean = rng.uniform(*defocus_range_A, size=n)
    dastig = rng.uniform(-astigmatism_A, astigmatism_A, size=n) / 2
    du, dv = np.round(dmean + dastig, 2), np.round(dmean - dastig, 2)
    dmean = (du + dv) / 2
    dang = np.round(rng.uniform(0, 180, size=n), 4)

    proj = projector if projector is not None else FourierProjector(vol, pad=pad)
    mats = euler_to_matrix(rot, tilt, psi).reshape(-1, 3, 3)
    shifts_px = -shifts_A / pixel_size_A
    images = out if out is not None else np.empty((n, box, box), dtype=np.float32)
    if images.shape != (n, box, box):
        raise ValueError(f"out has shape {images.shape}, expected {(n, box, box)}")
    spectrum = None if noise_sigma is None else noise_spectrum(noise, box, noise_sigma)
    for start in range(0, n, chunk_size):  # bounded memory for large sets
        sl = slice(start, min(start + chunk_size, n))
        ft = proj.project_ft(mats[sl], shifts_px[sl])
        if apply_ctf:
            for j, i in enumerate(range(sl.start, sl.stop)):
                ft[j] *= ctf_2d((box, box), pixel_size_A, du[i], dv[i], dang[i], voltage_kV=voltage_kV,
                                cs_mm=cs_mm, amplitude_contrast=amplitude_contrast, rfft=True)
        signal = np.fft.fftshift(np.fft.irfft2(ft, s=(box, box), axes=(-2, -1)), axes=(-2, -1))
        signal = signal.astype(np.float32) * np.float32(signal_scale)
        if spectrum is None:  # level from the first chunk's signal variance
            noise_sigma = float(np.sqrt(signal.var() / snr)) if noise != "none" else 0.0
            spectrum = noise_spectrum(noise, box, noise_sigma)
        if noise != "none":
            signal += make_noise(len(signal), box, spectrum, rng)
        images[sl] = signal

    table = pd.DataFrame(
        {
            "micrograph_name": [f"sim_micrograph_{i // 50:03d}.mrc" for i in range(n)],
            "rot_deg": rot,
            "tilt_deg": tilt,
            "psi_deg": psi,
            "shift_x_A": shifts_A[:, 0],
            "shift_y_A": shifts_A[:, 1],
            "defocus_u_A": du,
            "defocus_v_A": dv,
            "defocus_angle_deg": dang,
            "defocus_A": dmean,
            "voltage_kV": float(voltage_kV),
            "cs_mm": float(cs_mm),
            "amplitude_contrast": float(amplitude_contrast),
            "pixel_size_A": float(pixel_size_A),
            "image_index": np.arange(n),
            "split": rng.integers(0, 2, size=n),
        }
    )
    table["micrograph"] = table["micrograph_name"].str.replace(".mrc", "", regex=False)
    table.attrs = {"source": None, "format": "simulated", "convention": "RELION origins (shift that centres)",
                   "optics": None}
    return SimulatedParticles(images, table, vol, float(pixel_size_A), noise,
                              spectrum, float(signal_scale), float(noise_sigma))


def write_particle_set(sim: SimulatedParticles, folder: str | os.PathLike, stem: str = "particles",
                       overwrite: bool = False) -> dict[str, Path]:
    """Write the images (MRCS), a RELION 3.1 particle STAR and the map (MRC) into ``folder``.

    Returns ``{"star", "stack", "map"}`` paths. Image names in the STAR are relative to the
    STAR's folder (``000001@particles.mrcs``).
    """
    import mrcfile
    import starfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stack = folder / f"{stem}.mrcs"
    vmap = folder / f"{stem}_map.mrc"
    star = folder / f"{stem}.star"

    def _mrc(data, voxel):
        def write(p):
            with mrcfile.new(p, overwrite=True) as m:
                m.set_data(np.ascontiguousarray(data, dtype=np.float32))
                m.voxel_size = voxel
        return write

    atomic_write(stack, _mrc(sim.images, sim.pixel_size_A), overwrite=overwrite)
    atomic_write(vmap, _mrc(sim.volume, sim.pixel_size_A), overwrite=overwrite)
    t = sim.table
    particles = pd.DataFrame(
        {
            "rlnImageName": [f"{i + 1:06d}@{stack.name}" for i in t["image_index"]],
            "rlnMicrographName": t["micrograph_name"],
            "rlnAngleRot": t["rot_deg"],
            "rlnAngleTilt": t["tilt_deg"],
            "rlnAnglePsi": t["psi_deg"],
            "rlnOriginXAngst": t["shift_x_A"],
            "rlnOriginYAngst": t["shift_y_A"],
            "rlnDefocusU": t["defocus_u_A"],
            "rlnDefocusV": t["defocus_v_A"],
            "rlnDefocusAngle": t["defocus_angle_deg"],
            "rlnOpticsGroup": 1,
            "rlnRandomSubset": t["split"] + 1,
        }
    )
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnVoltage": [float(t["voltage_kV"].iloc[0])],
            "rlnSphericalAberration": [float(t["cs_mm"].iloc[0])],
            "rlnAmplitudeContrast": [float(t["amplitude_contrast"].iloc[0])],
            "rlnImagePixelSize": [sim.pixel_size_A],
            "rlnImageSize": [sim.box],
            "rlnImageDimensionality": [2],
        }
    )
    atomic_write(star, lambda p: starfile.write({"optics": optics, "particles": particles}, p),
                 overwrite=overwrite)
    return {"star": star, "stack": stack, "map": vmap}
