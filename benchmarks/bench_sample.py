"""Simulated sample data: how long generating it takes, and the choices that keep it fast.

In the same run it times (medians of ``--repeats``):

- *CTF of a micrograph*: the simulator's way, one mirror-padded ``rfft2`` x CTF x ``irfft2`` of
  the whole micrograph after the particles' projections were added in, against filtering each
  particle in its own ``2 x box`` window and pasting the results (the per-particle baseline);
  both on the same 1024² micrograph with 100 particles (their outputs agree to the printed
  correlation; the per-window way cuts the CTF's delocalisation at the window edge);
- *projections*: 100 particle images by Fourier slices (``FourierProjector``) against the
  real-space reference projector (``project_real``; timed on 5 images and scaled to 100);
- *end to end*: one 1024² micrograph with 100 particles (no scores), scoring its picks with
  ``compute.scores`` (the real-pick code), the default sample (8 micrographs, scored; what
  napari's Open Sample runs) and ``write_sample_dataset`` (the default sample plus half maps,
  classes, STAR, .cs, truth: what ``cryodiag sample`` runs).

Run: ``.venv/bin/python benchmarks/bench_sample.py [--repeats 3]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

import numpy as np
from scipy import fft as sfft

from napari_cryodiag.compute.ctf import ctf_2d
from napari_cryodiag.compute.projection import FourierProjector, euler_to_matrix, project_real
from napari_cryodiag.simulate.dataset import write_sample_dataset
from napari_cryodiag.simulate.density import gaussian_atoms_density
from napari_cryodiag.simulate.micrographs import (
    _add_images,
    random_rotations,
    score_simulated_picks,
    simulate_micrographs,
)


def _median_time(fn, repeats: int):
    ts, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    r = args.repeats
    rows = []

    # ---------------------------------------------------------------- CTF: whole vs per particle
    n, box, apix, df = 1024, 64, 2.0, 20000.0
    rng = np.random.default_rng(0)
    vol = gaussian_atoms_density(box, apix)
    proj = FourierProjector(vol)
    eul = random_rotations(rng, 100)
    imgs = proj.project(euler_to_matrix(*eul.T))
    pos = rng.uniform(box, n - box, (100, 2)).round()

    def whole():
        phase = np.zeros((n, n), np.float32)
        _add_images(phase, imgs, pos[:, 0], pos[:, 1])
        pad = box
        padded = np.pad(phase, pad, mode="reflect")
        ctf = ctf_2d(padded.shape, apix, df + 100, df - 100, 30.0, bfactor_A2=80.0)
        return sfft.irfft2(sfft.rfft2(padded) * ctf, s=padded.shape)[pad:pad + n, pad:pad + n]

    def per_particle():
        w = 2 * box
        ctf = ctf_2d((w, w), apix, df + 100, df - 100, 30.0, bfactor_A2=80.0)
        out = np.zeros((n, n), np.float32)
        o = w // 2 - box // 2
        win = np.zeros((len(imgs), w, w), np.float32)
        win[:, o:o + box, o:o + box] = imgs
        filt = sfft.irfft2(sfft.rfft2(win, axes=(-2, -1)) * ctf, s=(w, w), axes=(-2, -1)).astype(np.float32)
        _add_images(out, filt, pos[:, 0], pos[:, 1])
        return out

    t_whole, a = _median_time(whole, r)
    t_pp, b = _median_time(per_particle, r)
    agree = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    rows.append(("CTF on a 1024² micrograph, 100 particles", f"whole micrograph {t_whole*1e3:.0f} ms",
                 f"per-particle 128² windows {t_pp*1e3:.0f} ms", f"{t_pp / t_whole:.2f}x",
                 f"outputs correlate {agree:.3f}"))

    # ---------------------------------------------------------------- projections
    mats = euler_to_matrix(*eul.T)
    t_fp, _ = _median_time(lambda: proj.project(mats), r)
    t_rs5, _ = _median_time(lambda: [project_real(vol, m) for m in mats[:5]], 1)
    t_rs = t_rs5 * 20
    rows.append(("100 projections of a 64³ map", f"Fourier slices {t_fp*1e3:.0f} ms",
                 f"real space {t_rs*1e3:.0f} ms (5 timed, x20)", f"{t_rs / t_fp:.0f}x", ""))

    # ---------------------------------------------------------------- end to end
    t_one, sim1 = _median_time(lambda: simulate_micrographs(1, (1024, 1024), seed=0, score=False), r)
    t_score, _ = _median_time(
        lambda: score_simulated_picks(sim1.images, sim1.truth, sim1.names, sim1.particle_diameter_px,
                                      pixel_size_A=sim1.pixel_size_A), r)
    rows.append(("one 1024² micrograph, 100 particles + junk", f"simulate {t_one:.2f} s",
                 f"score its {len(sim1.truth)} picks {t_score:.2f} s", "", ""))
    t_def, sim8 = _median_time(lambda: simulate_micrographs(seed=0), r)
    rows.append(("default sample (Open Sample)", f"8 x 1024², {len(sim8.truth)} picks, scored: {t_def:.2f} s",
                 "", "", f"{t_def / 8:.2f} s per micrograph"))
    tmp = tempfile.mkdtemp(prefix="bench_sample_")
    try:
        t_ds, _ = _median_time(lambda: write_sample_dataset(tmp, seed=0, overwrite=True), max(1, r - 1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows.append(("write_sample_dataset (cryodiag sample)", f"{t_ds:.2f} s", "", "",
                 "micrographs, picks STAR/.cs, truth, half maps, classes"))

    print("| what | method | baseline | baseline / method | note |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
