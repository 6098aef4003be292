"""Picker throughput per 4096² micrograph (issue 3).

Run: ``.venv/bin/python benchmarks/bench_picker.py [--quick]``.

One 4096² float32 micrograph (noise plus 400 dark disks of 150 px), measured in the same run:

1. ``pick_micrograph`` with a blob: the energy detector (the default since issue 10) and the
   disk-NCC map (``detector="ncc"``, the former default; scoring grid binned by a quarter of the
   shorter low-pass, here 9x), and with 10 templates x 36 in-plane angles;
2. baseline: the disk-NCC picker on the full-resolution grid (``bin_factor=1``: masked-NCC
   FFT correlation of the whole 4096² micrograph);
3. the time to read the micrograph from an MRC file (warm page cache), for scale;
4. recall of the planted particles (pick within 10 px) for method and baseline (flat disks
   without a CTF are the NCC detector's case: the energy detector, which looks for signal in a
   15 Å-to-half-a-diameter band, sees only their rims and finds few or none);
5. a simulated micrograph of the sample data's kind (``simulate_micrographs``: CTF, shot noise,
   carbon, aggregates; 2 Å/px, 100 particles per 1024²) of the same size: time, recall and
   precision within a quarter diameter, energy detector vs disk NCC (before/after issue 10);
6. ``pick_micrographs`` over ``--n`` such micrographs written as MRC files (a lazy
   ``MicrographStack``): 1 local thread, 2 local threads, and a ``dask.distributed``
   LocalCluster of 2 worker processes that read the files themselves (same picks checked).

Results: ``benchmarks/results/bench_picker.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_cryodiag.compute.picks.picker import pick_micrograph  # noqa: E402
from napari_cryodiag.io.mrc import read_image, write_mrc  # noqa: E402

N_PX = 4096
D = 150.0


def _time(fn, repeat=3):
    ts, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def _planted(rng, n=400):
    img = rng.normal(100.0, 10.0, (N_PX, N_PX)).astype(np.float32)
    r = int(D // 2)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    blob = (xx**2 + yy**2 <= r * r).astype(np.float32) * 3.0
    pts = []
    tries = 0
    while len(pts) < n and tries < 20000:
        tries += 1
        p = rng.uniform(D, N_PX - D, 2)
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 > (1.3 * D) ** 2 for q in pts):
            pts.append(p)
    for x, y in pts:
        xi, yi = int(round(x)), int(round(y))
        img[yi - r : yi + r + 1, xi - r : xi + r + 1] -= blob
    return img, np.rint(np.array(pts))


def _recall(picks, pts):
    from scipy.spatial import cKDTree

    if len(picks) == 0:
        return 0.0
    d, _ = cKDTree(picks[["x_px", "y_px"]].to_numpy()).query(pts)
    return float(np.mean(d < 10.0))


def _simulated(rep: int) -> dict:
    """Energy detector vs disk NCC on one simulated micrograph of the sample data's kind."""
    from scipy.spatial import cKDTree

    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    n_particles = int(100 * (N_PX / 1024) ** 2)
    sim = simulate_micrographs(1, (N_PX, N_PX), seed=3, particles_per_micrograph=n_particles, score=False)
    d = sim.particle_diameter_px
    truth = sim.truth[sim.truth["truth"] == "particle"][["x_px", "y_px"]].to_numpy()
    out = {"n_particles": int(len(truth)), "diameter_px": d}
    for name, kw in (("energy", {}), ("disk_ncc", {"detector": "ncc"})):
        t, picks = _time(lambda: pick_micrograph(sim.images[0], diameter_px=d, pixel_size_A=sim.pixel_size_A, **kw), rep)
        xy = picks[["x_px", "y_px"]].to_numpy()
        rec = float(np.mean(cKDTree(xy).query(truth)[0] < d / 4)) if len(xy) else 0.0
        prec = float(np.mean(cKDTree(truth).query(xy)[0] < d / 4)) if len(xy) else 0.0
        out[name] = {"seconds": t, "n_picks": int(len(xy)), "recall": rec, "precision": prec}
    return out


def _set(data: Path, n: int, rep: int) -> dict:
    """pick_micrographs on n simulated micrographs from MRC files: threads vs 2 worker processes."""
    import pandas as pd

    from napari_cryodiag.compute.picks.jobs import pick_micrographs
    from napari_cryodiag.io.mrc import open_micrograph_stack
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    sim = simulate_micrographs(n, (N_PX, N_PX), seed=5, particles_per_micrograph=int(100 * (N_PX / 1024) ** 2),
                               score=False)
    folder = data / "set"
    folder.mkdir(exist_ok=True)
    for img, name in zip(sim.images, sim.names):
        write_mrc(folder / name, img, sim.pixel_size_A, overwrite=True)
    stack = open_micrograph_stack(folder)
    d = sim.particle_diameter_px
    out = {"n_micrographs": n}
    t1, ref = _time(lambda: pick_micrographs(stack, diameter_px=d, num_workers=1), rep)
    t2, _ = _time(lambda: pick_micrographs(stack, diameter_px=d, num_workers=2), rep)
    out.update(threads_1_s_per_micrograph=t1 / n, threads_2_s_per_micrograph=t2 / n, speedup_2_threads=t1 / t2)
    try:
        import distributed
    except ImportError:
        out["cluster"] = "distributed not installed"
        return out
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        pick_micrographs(stack, diameter_px=d, client=client)  # warm the workers (imports)
        tc, picks = _time(lambda: pick_micrographs(stack, diameter_px=d, client=client), rep)
    pd.testing.assert_frame_equal(picks, ref)
    out.update(cluster_2_workers_s_per_micrograph=tc / n, speedup_cluster_vs_1_thread=t1 / tc)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repeat, 1024² instead of 4096² (checks the script runs)")
    ap.add_argument("--n", type=int, default=6, help="micrographs for the threads / cluster comparison")
    args = ap.parse_args()
    rep = 1 if args.quick else args.repeat
    global N_PX, D
    if args.quick:
        N_PX, D = 1024, 60.0
    rng = np.random.default_rng(1)
    img, pts = _planted(rng)
    data = ROOT / "benchmarks" / ".data" / "picker"
    data.mkdir(parents=True, exist_ok=True)
    res = {"shape": [N_PX, N_PX], "diameter_px": D, "n_planted": int(len(pts))}
    try:
        path = write_mrc(data / "mic.mrc", img, 1.0, overwrite=True)
        read_image(path)
        t_read, _ = _time(lambda: read_image(path), rep)
        t_blob, p_blob = _time(lambda: pick_micrograph(img, diameter_px=D, ncc_min=0.3, detector="ncc"), rep)
        t_energy, p_energy = _time(lambda: pick_micrograph(img, diameter_px=D), rep)
        h = int(round(0.6 * D))  # 90 px for D = 150
        tmpl = np.zeros((10, 2 * h + 1, 2 * h + 1), np.float32)
        yy, xx = np.mgrid[-h : h + 1, -h : h + 1] * (150.0 / D)  # the 150 px design, scaled to D
        for k in range(10):  # disks with an off-centre lump: not round, so angles matter
            tmpl[k] = (xx**2 + yy**2 <= 75**2) + 0.5 * ((xx - 30) ** 2 + (yy - 10 * k + 45) ** 2 <= 20**2)
        t_tmpl, p_tmpl = _time(lambda: pick_micrograph(img, diameter_px=D, templates=tmpl, ncc_min=0.3), 1)
        t_full, p_full = _time(lambda: pick_micrograph(img, diameter_px=D, ncc_min=0.3, bin_factor=1, detector="ncc"), 1)
        res.update(
            read_s=t_read, blob_s=t_blob, blob_energy_s=t_energy, templates_10x36_s=t_tmpl, blob_full_resolution_s=t_full,
            recall={"blob": _recall(p_blob, pts), "blob_energy": _recall(p_energy, pts), "templates": _recall(p_tmpl, pts),
                    "blob_full_resolution": _recall(p_full, pts)},
            n_picks={"blob": len(p_blob), "blob_energy": len(p_energy), "templates": len(p_tmpl),
                     "blob_full_resolution": len(p_full)},
            bin_factor=p_blob.attrs["picker"]["bin_factor"],
        )
        print(f"read (warm) {t_read * 1e3:.0f} ms; blob (disk NCC) picker {t_blob * 1e3:.0f} ms "
              f"(grid binned {res['bin_factor']}x); blob (energy) {t_energy * 1e3:.0f} ms; "
              f"10 templates x 36 angles {t_tmpl * 1e3:.0f} ms; "
              f"disk NCC at full resolution {t_full * 1e3:.0f} ms ({t_full / t_blob:.0f}x slower)")
        print("planted disks, recall:", res["recall"], "picks:", res["n_picks"])
        res["simulated"] = _simulated(rep)
        print("simulated sample-like micrograph:", res["simulated"])
        res["set"] = _set(data, 2 if args.quick else args.n, rep)
        print("micrograph set, pick_micrographs:", res["set"])
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        (out / "bench_picker.json").write_text(json.dumps(res, indent=2) + "\n")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
