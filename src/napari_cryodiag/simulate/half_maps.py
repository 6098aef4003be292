"""Simulated half maps with a known FSC, B-factor and (optionally) a known pathology.

Model: ``half_i = S * envelope + N_i`` in Fourier space, with ``S`` the Gaussian-atom density of
:func:`napari_cryodiag.simulate.density.gaussian_atoms_density`, the envelope ``exp(-B s^2 / 4)``
on amplitudes, and ``N_i`` independent Gaussian noise filling the box whose power per shell is
set so that the expected unmasked FSC is the logistic curve

    FSC(s) = 1 / (1 + exp((s - s0) / w)),   w = 0.08 / resolution_A,   s0 = (1 - 0.143) / resolution_A

that crosses 0.143 at ``resolution_A`` (``truth["fsc_unmasked"]`` holds it per shell).

Pathologies (each shows one of the FSC diagnoses):

- ``"nyquist"``: the curve is still high at Nyquist (the box was downsampled too much).
- ``"duplicates"``: the two halves' noise has correlation ``duplicate_fraction`` (0.1), so the FSC keeps a positive tail to Nyquist.
- ``"ctf_oscillation"``: the signal in half 2 is modulated by ``cos(chi(s))`` with ``chi`` growing
  as ``s^2`` (a defocus-like error), so the FSC oscillates (``ctf_cycles`` sign changes).
- ``"micelle"``: each half gets an independent, disordered belt around the particle whose power
  lies in a band centred at 7 Å (between ~9 and ~5 Å), so the FSC dips there.
- ``"tight_mask"``: the returned ``mask`` is a hard binary mask that cuts into the density.
- ``"offset_mask"``: the returned ``mask`` is shifted half a box off the particle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..compute.fourier import radial_frequency_invA, shell_index, shell_sums, shell_counts, n_shells
from ..compute.fourier import irfftn, rfftn
from ..compute.maps.masks import cosine_edge, distance_from_region_A, lowpass
from .density import gaussian_atoms_density

PATHOLOGIES = (None, "nyquist", "duplicates", "ctf_oscillation", "micelle", "tight_mask", "offset_mask")


@dataclass
class SimulatedHalfMaps:
    half1: np.ndarray
    half2: np.ndarray
    mask: np.ndarray
    pixel_size_A: float
    truth: dict = field(default_factory=dict)
    signal: np.ndarray | None = None  #: the noise-free map (with the envelope)


def target_fsc(s_invA: np.ndarray, resolution_A: float) -> np.ndarray:
    """The logistic FSC of the model, crossing 0.143 at ``resolution_A``."""
    s_res = 1.0 / resolution_A
    w = 0.08 * s_res
    s0 = s_res - np.log(1 / 0.143 - 1) * w
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp((np.asarray(s_invA, float) - s0) / w))


def particle_density(box: int, pixel_size_A: float, seed: int = 0, n_atoms: int | None = None, atom_sigma_A: float = 1.0):
    """A solid, protein-like particle: atoms placed uniformly inside the shape of the lead's
    Gaussian-atom density (:func:`gaussian_atoms_density` low-passed to 20 Å, above 15 % of max),
    about one atom per 12 Å^3, each a Gaussian of ``atom_sigma_A``. float32, max 1.
    """
    rng = np.random.default_rng(seed)
    shape = (box, box, box)
    envelope = lowpass(gaussian_atoms_density(box, pixel_size_A, n_atoms=300, seed=seed), pixel_size_A, 20.0)
    region = np.flatnonzero(envelope > 0.15 * envelope.max())
    if n_atoms is None:
        n_atoms = int(region.size * pixel_size_A**3 / 12.0)
    grid = np.zeros(box**3, dtype=np.float32)
    np.add.at(grid, rng.choice(region, size=n_atoms), rng.uniform(0.6, 1.4, size=n_atoms).astype(np.float32))
    s = radial_frequency_invA(shape, pixel_size_A)
    form = np.exp(-2 * np.pi**2 * atom_sigma_A**2 * s**2).astype(np.float32)
    vol = irfftn(rfftn(grid.reshape(shape)) * form, shape)
    return (vol / vol.max()).astype(np.float32)


def _shaped_noise(rng, shape, index, n, target_power_shell: np.ndarray, region: np.ndarray | None = None):
    """Gaussian noise (optionally confined to ``region``) whose shell power equals ``target_power_shell``."""
    white = rng.standard_normal(shape, dtype=np.float32)
    if region is not None:
        white *= region
    f = rfftn(white)
    p = shell_sums(f.real**2 + f.imag**2, index, n) / np.maximum(shell_counts(index, n), 1)
    scale = np.sqrt(np.where(p > 0, target_power_shell / np.where(p > 0, p, 1), 0.0))
    scale = np.append(scale, 0.0)  # corners beyond Nyquist: no noise
    return f * scale[index].astype(np.float32)


def simulate_half_maps(
    box: int = 96,
    pixel_size_A: float = 1.5,
    resolution_A: float = 4.5,
    bfactor_A2: float = 60.0,
    seed: int = 0,
    pathology: str | None = None,
    *,
    n_atoms: int | None = None,
    duplicate_fraction: float = 0.1,
    ctf_cycles: int = 3,
    micelle_strength: float = 4.0,
    with_mask: bool = True,
) -> SimulatedHalfMaps:
    """Two half maps of a Gaussian-atom particle, a soft mask, and the truth they were built from."""
    if pathology not in PATHOLOGIES:
        raise ValueError(f"unknown pathology {pathology!r}; choose from {PATHOLOGIES}")
    rng = np.random.default_rng(seed)
    shape = (box, box, box)
    n = box
    apix = float(pixel_size_A)
    index = shell_index(shape)
    s = radial_frequency_invA(shape, apix)
    density = particle_density(box, apix, seed=seed, n_atoms=n_atoms)
    env = np.exp(-bfactor_A2 * s**2 / 4).astype(np.float32)
    fs = rfftn(density) * env
    s_shell = np.arange(n_shells(n)) / (n * apix)
    counts = np.maximum(shell_counts(index, n), 1)
    p_sig = shell_sums(fs.real**2 + fs.imag**2, index, n) / counts

    nyq = 2 * apix
    res_eff = 0.7 * nyq if pathology == "nyquist" else float(resolution_A)
    fsc_t = target_fsc(s_shell, res_eff)
    fsc_t[0] = 1.0
    snr = fsc_t / np.maximum(1 - fsc_t, 1e-12)
    p_noise = np.where(snr > 0, p_sig / np.maximum(snr, 1e-30), 0.0)
    p_noise[0] = 0.0

    n1 = _shaped_noise(rng, shape, index, n, p_noise)
    n2 = _shaped_noise(rng, shape, index, n, p_noise)
    truth = {
        "resolution_A": float(res_eff),
        "nyquist_A": nyq,
        "bfactor_A2": float(bfactor_A2),
        "pathology": pathology,
        "frequency_invA": s_shell,
        "fsc_unmasked": fsc_t.copy(),
        "seed": seed,
    }
    fs2 = fs
    if pathology == "duplicates":
        c = float(duplicate_fraction)
        n2 = np.float32(np.sqrt(1 - c * c)) * n2 + np.float32(c) * n1  # noise correlation c
        # expected FSC: (P_s + c P_n) / (P_s + P_n)
        truth["fsc_unmasked"] = (fsc_t + c * (1 - fsc_t))
        truth["duplicate_fraction"] = c
    elif pathology == "ctf_oscillation":
        s_res = 1.0 / res_eff
        chi = (np.pi / 2 + (ctf_cycles - 0.5) * np.pi) * (s / s_res) ** 2  # ctf_cycles sign changes before s_res
        fs2 = fs * np.cos(chi).astype(np.float32)
        truth["fsc_unmasked"] = fsc_t * np.cos((np.pi / 2 + (ctf_cycles - 0.5) * np.pi) * (s_shell * res_eff) ** 2)
        truth["ctf_cycles"] = ctf_cycles
    elif pathology == "micelle":
        # a belt around the particle (0-12 Å from its surface), disordered independently in each half
        region = density > 0.1 * density.max()
        dist = distance_from_region_A(region, apix)
        zz = (np.arange(box) - box // 2)[:, None, None] * apix
        belt = ((dist > 0) & (dist < 12.0) & (np.abs(zz) < 0.2 * box * apix)).astype(np.float32)
        band = np.exp(-((s_shell - 1 / 7.0) ** 2) / (2 * 0.018**2))
        p_mic = micelle_strength * p_sig * band
        n1 = n1 + _shaped_noise(rng, shape, index, n, p_mic, belt)
        n2 = n2 + _shaped_noise(rng, shape, index, n, p_mic, belt)
        truth["dip_A"] = (9.0, 5.0)
        truth["fsc_unmasked"] = p_sig / (p_sig + p_noise + p_mic)
        truth["fsc_unmasked"][0] = 1.0

    half1 = irfftn(fs + n1, shape)
    half2 = irfftn(fs2 + n2, shape)
    signal = irfftn(fs, shape)

    # a sensible soft mask of the particle: 1 within 3 Å of the 15 Å-filtered map above 20 % of its max
    if with_mask or pathology in ("tight_mask", "offset_mask"):
        lp = lowpass(density, apix, 15.0)
        dist = distance_from_region_A(lp > 0.2 * lp.max(), apix, max_distance_A=9.0)
        mask = cosine_edge(dist, 3.0, 9.0)
    else:
        mask = np.ones(shape, np.float32)
    if pathology == "tight_mask":
        mask = (density > 0.35 * density.max()).astype(np.float32)
        truth["mask"] = "hard binary mask at 35 % of the noise-free map's maximum (too tight)"
    elif pathology == "offset_mask":
        mask = np.roll(mask, box // 2, axis=2)
        truth["mask"] = "particle mask shifted by half a box along x (misplaced)"
    else:
        truth["mask"] = "soft: 1 within 3 Å of the 15 Å-filtered map above 20 % of max, 0 from 9 Å"
    return SimulatedHalfMaps(half1, half2, mask.astype(np.float32), apix, truth, signal)


NOISE_COLOURS = ("white", "coloured")


def noisy_half_maps(volume, pixel_size_A: float, resolution_A: float, *, noise: str = "white",
                    bfactor_A2: float = 0.0, seed: int = 0) -> SimulatedHalfMaps:
    """Clean half maps of a given map: ``half_i = map * exp(-B s^2/4) + N_i``, independent Gaussian noise.

    ``noise="white"``: the same noise power in every shell; ``"coloured"``: noise power falling as
    ``exp(-s^2 * (10 Å)^2 / 2)`` towards high frequency and flattening at 1/20 of its low-frequency
    value (a smooth, dose-weighting-like colour). The noise level is set so that the expected FSC,
    ``S / (S + N)`` per shell with ``S`` the map's own shell power, is below 0.143 from
    ``resolution_A`` on (``truth["fsc_unmasked"]``; it may cross earlier where the map's spectrum dips). No pathology: every diagnosis flag should stay quiet.
    """
    if noise not in NOISE_COLOURS:
        raise ValueError(f"noise must be one of {NOISE_COLOURS}")
    rng = np.random.default_rng(seed)
    vol = np.asarray(volume, np.float32)
    shape = vol.shape
    n = shape[0]
    apix = float(pixel_size_A)
    index = shell_index(shape)
    s = radial_frequency_invA(shape, apix)
    fs = rfftn(vol) * np.exp(-bfactor_A2 * s**2 / 4).astype(np.float32)
    counts = np.maximum(shell_counts(index, n), 1)
    p_sig = shell_sums(fs.real**2 + fs.imag**2, index, n) / counts
    s_shell = np.arange(n_shells(n)) / (n * apix)
    colour = np.ones_like(s_shell) if noise == "white" else np.exp(-(s_shell * 10.0) ** 2 / 2) + 0.05
    # noise level: the FSC S / (S + N0 colour) is below 0.143 from the wanted shell on
    k = min(max(int(round(n * apix / resolution_A)), 1), n_shells(n) - 1)
    n0 = float(np.max(p_sig[k:] / colour[k:])) * (1 - 0.143) / 0.143
    p_noise = n0 * colour
    p_noise[0] = 0.0
    n1 = _shaped_noise(rng, shape, index, n, p_noise)
    n2 = _shaped_noise(rng, shape, index, n, p_noise)
    expected = p_sig / (p_sig + p_noise)
    expected[0] = 1.0
    truth = {"noise": noise, "resolution_A": float(resolution_A), "bfactor_A2": float(bfactor_A2),
             "frequency_invA": s_shell, "fsc_unmasked": expected, "seed": seed, "pathology": None}
    lp = lowpass(vol, apix, 15.0)
    dist = distance_from_region_A(lp > 0.2 * lp.max(), apix, max_distance_A=9.0)
    mask = cosine_edge(dist, 3.0, 9.0)
    return SimulatedHalfMaps(irfftn(fs + n1, shape), irfftn(fs + n2, shape), mask.astype(np.float32), apix, truth,
                             irfftn(fs, shape))
