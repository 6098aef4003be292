"""Picker throughput per 4096² micrograph (issue 3).

Run: ``.venv/bin/python benchmarks/bench_picker.py [--quick]``.

One 4096² float32 micrograph (noise plus 400 dark disks of 150 px), measured in the same run:

1. ``pick_micrograph`` with a blob (default scoring grid: binned by a quarter of the shorter
   low-pass, here 9x), and with 10 templates x 36 in-plane angles;
2. baseline: the same blob picker on the full-resolution grid (``bin_factor=1``: masked-NCC
   FFT correlation of the whole 4096² micrograph);
3. the time to read the micrograph from an MRC file (warm page cache), for scale;
4. recall of the planted particles (pick within 10 px) for method and baseline.

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rep = 1 if args.quick else args.repeat
    rng = np.random.default_rng(1)
    img, pts = _planted(rng)
    data = ROOT / "benchmarks" / ".data" / "picker"
    data.mkdir(parents=True, exist_ok=True)
    res = {"shape": [N_PX, N_PX], "diameter_px": D, "n_planted": int(len(pts))}
    try:
        path = write_mrc(data / "mic.mrc", img, 1.0, overwrite=True)
        read_image(path)
        t_read, _ = _time(lambda: read_image(path), rep)
        t_blob, p_blob = _time(lambda: pick_micrograph(img, diameter_px=D, ncc_min=0.3), rep)
        tmpl = np.zeros((10, 181, 181), np.float32)
        yy, xx = np.mgrid[-90:91, -90:91]
        for k in range(10):  # disks with an off-centre lump: not round, so angles matter
            tmpl[k] = (xx**2 + yy**2 <= 75**2) + 0.5 * ((xx - 30) ** 2 + (yy - 10 * k + 45) ** 2 <= 20**2)
        t_tmpl, p_tmpl = _time(lambda: pick_micrograph(img, diameter_px=D, templates=tmpl, ncc_min=0.3), 1)
        t_full, p_full = _time(lambda: pick_micrograph(img, diameter_px=D, ncc_min=0.3, bin_factor=1), 1)
        res.update(
            read_s=t_read, blob_s=t_blob, templates_10x36_s=t_tmpl, blob_full_resolution_s=t_full,
            recall={"blob": _recall(p_blob, pts), "templates": _recall(p_tmpl, pts), "blob_full_resolution": _recall(p_full, pts)},
            n_picks={"blob": len(p_blob), "templates": len(p_tmpl), "blob_full_resolution": len(p_full)},
            bin_factor=p_blob.attrs["picker"]["bin_factor"],
        )
        print(f"read (warm) {t_read * 1e3:.0f} ms; blob picker {t_blob * 1e3:.0f} ms "
              f"(grid binned {res['bin_factor']}x); 10 templates x 36 angles {t_tmpl * 1e3:.0f} ms; "
              f"blob at full resolution {t_full * 1e3:.0f} ms ({t_full / t_blob:.0f}x slower)")
        print("recall:", res["recall"], "picks:", res["n_picks"])
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        (out / "bench_picker.json").write_text(json.dumps(res, indent=2) + "\n")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
