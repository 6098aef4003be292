"""Simulated 2D classification: particle images with known classes, poses, CTF and noise.

Good classes are views (rot, tilt) of one protein-like Gaussian-atom density
(:func:`napari_cryodiag.simulate.density.gaussian_atoms_density`), projected by
:class:`napari_cryodiag.compute.projection.FourierProjector` at the class view with each
particle's in-plane angle ``psi`` and origin shift, multiplied by the particle's CTF
(:func:`napari_cryodiag.compute.ctf.ctf_2d`) and given white Gaussian noise. Junk classes hold
what a real 2D classification sweeps together:

- ``"mixed views"``: random views of the particle, off-centre (heterogeneous: the average is a
  blur and the half-set FRC falls early);
- ``"empty"``: noise with a faint random blob (ice, carbon edge): nothing in common between
  the images, the FRC is ~0.

``averages`` are computed from the particles (phase flip, alignment) and low-passed by their
own half-set FRC (``sqrt(2F/(1+F))`` per ring), as real class averages are regularised; the
unfiltered ones are in ``truth["class_averages"].averages``.

Posteriors are full ``(N, K)`` vectors: sharp on the true class for good particles, spread for
junk; the table carries the best-class probability (``class_posterior``) and ESS
(``class_ess`` = 1/Σp²) as cryoSPARC does. Classes are numbered from 1 (RELION style;
``table.attrs["class_base"] = 1``); ``averages[i]`` is class ``i + 1``.

The particle model is RELION's: ``image(r) = CTF * ref(R(psi) (r + shift))`` with ``shift``
the origin (``shift_x_A``, ``shift_y_A``: the shift that centres the particle), so
:mod:`napari_cryodiag.compute.particles.class_averages` recovers the class views.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..compute.particles.class_averages import compute_class_averages
from ..compute.particles.classes import ess_from_posteriors
from ..compute.ctf import ctf_2d
from ..compute.projection import FourierProjector, euler_to_matrix
from .density import gaussian_atoms_density

__all__ = ["SimulatedClasses", "simulate_classes"]


@dataclass
class SimulatedClasses:
    averages: np.ndarray  # (K, n, n) float32 class averages from the particles, FRC-weighted
    table: pd.DataFrame  # canonical particle table
    images: np.ndarray  # (N, n, n) float32 particle images
    pixel_size_A: float
    posteriors: np.ndarray  # (N, K) full class posteriors
    truth: dict = field(default_factory=dict)


def _views(n_good: int, rng) -> np.ndarray:
    """Well-separated (rot, tilt) views: spread on the sphere (Fibonacci) and shuffled."""
    i = np.arange(n_good) + 0.5
    tilt = np.rad2deg(np.arccos(1 - i / n_good))  # upper hemisphere: z and -z are mirror views
    rot = (np.rad2deg(np.pi * (1 + 5**0.5) * i)) % 360
    return np.stack([rot, tilt], axis=1)


def simulate_classes(
    seed: int = 0,
    n_classes: int = 6,
    n_particles: int = 600,
    box: int = 64,
    pixel_size_A: float = 3.0,
    n_junk: int = 2,
    snr: float = 0.05,
    defocus_range_A: tuple[float, float] = (10000.0, 25000.0),
    shift_sd_A: float = 3.0,
    ctf_mode: str = "phase_flip",
    density: np.ndarray | None = None,
) -> SimulatedClasses:
    """Simulate a 2D classification result (see the module docstring).

    ``snr`` is the ratio of signal variance (inside the box, after the CTF) to noise variance
    per pixel. Class sizes are unequal (Dirichlet); junk classes come last. Defaults take about
    a second.
    """
    if n_junk >= n_classes:
        raise ValueError("n_junk must be smaller than n_classes")
    rng = np.random.default_rng(seed)
    n = int(box)
    vol = density if density is not None else gaussian_atoms_density(box=n, pixel_size_A=pixel_size_A, seed=seed)
    proj = FourierProjector(vol, pad=2)
    n_good = n_classes - n_junk
    views = _views(n_good, rng)
    junk_kinds = [("mixed views", "empty")[j % 2] for j in range(n_junk)]

    # class sizes: unequal, none tiny
    w = rng.dirichlet(np.full(n_classes, 4.0))
    sizes = np.maximum((w * n_particles).astype(int), 8)
    sizes[0] += n_particles - sizes.sum()
    if sizes[0] < 8:
        raise ValueError("too few particles for the number of classes")
    true_class = np.repeat(np.arange(n_classes), sizes)
    rng.shuffle(true_class)
    N = len(true_class)

    psi = rng.uniform(0, 360, N)
    shift_A = rng.normal(0, shift_sd_A, (N, 2))
    du = rng.uniform(*defocus_range_A, N)
    dv = du - rng.uniform(0, 600, N)
    ang = rng.uniform(0, 180, N)
    rot = np.zeros(N)
    tilt = np.zeros(N)
    good = true_class < n_good
    rot[good] = views[true_class[good], 0]
    tilt[good] = views[true_class[good], 1]
    junk_mixed = np.zeros(N, dtype=bool)
    junk_empty = np.zeros(N, dtype=bool)
    for j, kind in enumerate(junk_kinds):
        sel = true_class == n_good + j
        if kind == "mixed views":
            junk_mixed |= sel
            rot[sel] = rng.uniform(0, 360, sel.sum())
            tilt[sel] = np.rad2deg(np.arccos(rng.uniform(-1, 1, sel.sum())))
            shift_A[sel] += rng.normal(0, 4 * pixel_size_A, (sel.sum(), 2))  # off-centre
        else:
            junk_empty |= sel

    mats = euler_to_matrix(rot, tilt, psi)
    shifts_px = -shift_A / pixel_size_A  # particle displaced by -origin (RELION)
    ft = proj.project_ft(mats, shifts_px)
    ft[junk_empty] = 0
    ctfs = np.stack([ctf_2d((n, n), pixel_size_A, du[i], dv[i], ang[i]) for i in range(N)])
    ft *= ctfs
    clean = np.fft.fftshift(np.fft.irfft2(ft, s=(n, n)), axes=(-2, -1)).astype(np.float32)
    ref_var = float(clean[good].var())
    g = np.arange(n) - n // 2
    yy, xx = np.meshgrid(g, g, indexing="ij")
    for i in np.nonzero(junk_empty)[0]:  # a faint, wide random blob (ice / carbon)
        cx, cy = rng.uniform(-n / 3, n / 3, 2)
        s = rng.uniform(n / 10, n / 5)
        clean[i] = 0.5 * np.sqrt(ref_var) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    noise_sd = np.sqrt(ref_var / snr)
    images = (clean + rng.normal(0, noise_sd, clean.shape)).astype(np.float32)

    # full posteriors: sharp for good particles, spread over several classes for junk
    logits = rng.normal(0, 1.0, (N, n_classes))
    beta = np.where(good, rng.gamma(4.0, 1.5, N), rng.uniform(0.0, 1.5, N))
    logits[np.arange(N), true_class] = logits.max(axis=1) + beta
    post = np.exp(logits - logits.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    best = post.max(axis=1)
    ess = ess_from_posteriors(post)

    table = pd.DataFrame(
        {
            "class": true_class + 1,
            "class_posterior": best,
            "class_ess": ess,
            "rot_deg": np.zeros(N),
            "tilt_deg": np.zeros(N),
            "psi_deg": psi,
            "shift_x_A": shift_A[:, 0],
            "shift_y_A": shift_A[:, 1],
            "defocus_u_A": du,
            "defocus_v_A": dv,
            "defocus_angle_deg": ang,
            "defocus_A": 0.5 * (du + dv),
            "voltage_kV": 300.0,
            "cs_mm": 2.7,
            "amplitude_contrast": 0.1,
            "pixel_size_A": float(pixel_size_A),
            "image_index": np.arange(N),
            "micrograph_name": [f"sim_mic_{i // 100:03d}.mrc" for i in range(N)],
            "micrograph": [f"sim_mic_{i // 100:03d}" for i in range(N)],
            "source_row": np.arange(N),
        }
    )
    table.attrs = {
        "source": "simulate_classes",
        "format": "simulated",
        "convention": "RELION: image(r) = CTF * ref(R(psi)(r + shift)); classes numbered from 1",
        "optics": None,
        "class_base": 1,
    }
    labels = np.arange(1, n_classes + 1)
    ca = compute_class_averages(table, images=images, labels=labels, ctf=ctf_mode, pixel_size_A=pixel_size_A)
    truth_views = proj.project(euler_to_matrix(views[:, 0], views[:, 1], np.zeros(n_good)))
    return SimulatedClasses(
        averages=ca.weighted_averages(),
        table=table,
        images=images,
        pixel_size_A=float(pixel_size_A),
        posteriors=post,
        truth={
            "true_class": true_class + 1,
            "junk_classes": [n_good + 1 + j for j in range(n_junk)],
            "junk_kinds": dict(zip([n_good + 1 + j for j in range(n_junk)], junk_kinds)),
            "good_classes": list(range(1, n_good + 1)),
            "views_rot_tilt_deg": views,
            "clean_views": truth_views,  # noise-free, CTF-free class views (K_good, n, n)
            "noise_sd": float(noise_sd),
            "class_averages": ca,
        },
    )
