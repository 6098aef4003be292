"""Orientation diagnostics at 1e5, 1e6, 1e7 particles vs. naive baselines, same run.

Run: ``.venv/bin/python benchmarks/bench_orientations.py [--sizes 1e5,1e6,1e7] [--radius 32]``

For each N (viewing directions of a preferred-orientation mixture: 60 % top views in a 15° cone,
40 % uniform; CTF weights drawn per particle):

- histogram: :func:`viewing_direction_histogram` (arithmetic codes + one bincount) vs.
  ``np.histogram2d`` of azimuth/elevation on the same equal-area edges (full N, same run);
- directional distributions: binning (O(N)) + Fourier sampling and posterior precision maps on
  72 × 36 bins + SCF/SCF* from the bins, vs. the naive per-particle evaluation of the definition
  (``sampling_direct``: every particle against every evaluation point), timed on a subsample of
  ``--baseline-n`` particles and **extrapolated linearly** to N (its cost is exactly linear in N);
- at the smallest N the direct SCF* on all particles is also computed, to report the binned
  method's error.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_cryodiag.compute.particles.fourier_sampling import (
    _plot_subpoints,
    ctf2_ring_mean,
    directional_distributions,
    sampling_direct,
)
from napari_cryodiag.compute.particles.orientations import (
    azimuth_elevation_deg,
    bin_directions,
    fibonacci_hemisphere,
    viewing_direction_histogram,
    viewing_directions,
)
from napari_cryodiag.compute.particles.scf import default_n_points, sampling_compensation_factor


def make_set(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_top = int(0.6 * n)
    ca = np.cos(np.radians(15))
    z = np.concatenate([rng.uniform(ca, 1, n_top), rng.uniform(-1, 1, n - n_top)])
    phi = rng.uniform(-np.pi, np.pi, n)
    tilt = np.degrees(np.arccos(z))
    rot = np.degrees(phi)
    du = rng.uniform(8000, 30000, n)
    w = ctf2_ring_mean(0.1, du, du - rng.uniform(0, 500, n), 300.0, 2.7, 0.1)
    return rot, tilt, w


def timed(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--radius", type=float, default=32.0)
    ap.add_argument("--baseline-n", type=int, default=20_000)
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    R = args.radius
    n_pts = default_n_points(R)
    sub_pts = _plot_subpoints(72, 36, 4)
    scf_pts = fibonacci_hemisphere(n_pts)
    print(f"radius {R} voxels; {n_pts} SCF points; {len(sub_pts)} plot sub-points (direct maps)")
    rows = []
    for i, n in enumerate(sizes):
        rot, tilt, w = make_set(n)
        v, t_dirs = timed(viewing_directions, rot, tilt)
        h, t_hist = timed(viewing_direction_histogram, v, 72, 36)
        az, el = azimuth_elevation_deg(v)
        (ref, _, _), t_h2d = timed(np.histogram2d, el, az, bins=[h.elevation_edges_deg, h.azimuth_edges_deg])
        assert abs(ref - h.counts).sum() <= 1e-6 * n + 4
        del az, el, ref
        b, t_bin = timed(bin_directions, v, w)
        maps, t_maps = timed(directional_distributions, None, w, R, 72, 36, binned=b)
        scf_b, t_scf = timed(sampling_compensation_factor, None, R, binned=b)
        t_method = t_bin + t_maps + t_scf
        # naive per-particle baseline on a subsample, extrapolated linearly to n
        m = min(n, args.baseline_n)
        sub = v[:m]
        _, t_dm = timed(sampling_direct, sub, sub_pts, R, w[:m])
        _, t_ds = timed(sampling_direct, sub, scf_pts, R)
        t_naive = (t_dm + t_ds) * n / m
        err = ""
        if i == 0:
            scf_d, _ = timed(sampling_compensation_factor, v, R, method="direct")
            err = f"SCF* binned {scf_b.scf_star:.4f} vs direct {scf_d.scf_star:.4f}"
        rows.append((n, t_dirs, t_hist, t_h2d, t_bin, t_maps, t_scf, t_method, t_naive, m, b.n_bins, scf_b.scf_star, err))
        print(
            f"N={n:>9,}: directions {t_dirs:.2f}s | histogram {t_hist:.2f}s vs histogram2d {t_h2d:.2f}s "
            f"({t_h2d / t_hist:.1f}x) | bin {t_bin:.2f}s + maps {t_maps:.2f}s + SCF {t_scf:.2f}s = {t_method:.2f}s "
            f"vs naive {t_naive:.1f}s (extrapolated from {m:,}) = {t_naive / t_method:.0f}x | "
            f"{b.n_bins} cells, SCF* {scf_b.scf_star:.3f} {err}",
            flush=True,
        )
        del v, w, b
    print("\n| N | histogram (s) | np.histogram2d (s) | ratio | bin + maps + SCF* (s) | naive per-particle (s, extrapolated) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for n, _, th, t2, tb, tm, ts, tmeth, tn, m, _nb, _s, _ in rows:
        print(f"| {n:.0e} | {th:.3f} | {t2:.3f} | {t2 / th:.1f}× | {tmeth:.2f} ({tb:.2f} + {tm:.2f} + {ts:.2f}) | {tn:.0f} (from {m:,}) | {tn / tmeth:.0f}× |")


if __name__ == "__main__":
    main()
