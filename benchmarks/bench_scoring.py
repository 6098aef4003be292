"""Scoring throughput on 4096² micrographs with 500 picks each (issue 3).

Run: ``.venv/bin/python benchmarks/bench_scoring.py [--n 6] [--quick]``.

Writes ``n`` real float32 MRC files of 4096² (64 MiB each; noise plus dark blobs) under
``benchmarks/.data/`` (git-ignored; deleted at the end), opens them as a lazy
``MicrographStack`` and measures, in the same run:

1. **I/O floor**: reading every micrograph through the same dask path, no scoring
   (files were just written, so they are in the page cache: this is the floor of a warm read);
2. ``score_picks`` (blob NCC + power, default scoring grid) with 1 thread, 2 threads, a
   ``dask.distributed`` LocalCluster of 1 and 2 worker processes; and with 10 templates x 36
   in-plane angles (1 thread);
3. baselines for the NCC at picks on one micrograph: the same scores on the full-resolution grid
   (``bin_factor=1``), and the FFT route that correlates the whole micrograph
   (``correlation_map`` at full resolution, then the map read at the picks).

Times are wall-clock medians of ``repeat`` runs. Results: ``benchmarks/results/bench_scoring.json``.
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
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_cryodiag.compute.picks.jobs import score_picks  # noqa: E402
from napari_cryodiag.compute.picks.picker import correlation_map  # noqa: E402
from napari_cryodiag.compute.picks.scores import prepare_micrograph, score_micrograph  # noqa: E402
from napari_cryodiag.io.mrc import open_micrograph_stack, write_mrc  # noqa: E402

N_PX = 4096
DIAMETER_PX = 150.0  # e.g. a 150 Å particle at 1 Å/px
APIX = 1.0


def _time(fn, repeat=3):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def _micrograph(rng, picks_xy):
    img = rng.normal(100.0, 10.0, (N_PX, N_PX)).astype(np.float32)
    r = int(DIAMETER_PX // 2)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    blob = (xx**2 + yy**2 <= r * r).astype(np.float32) * 3.0
    for x, y in picks_xy[::2]:  # half the picks on a particle
        xi, yi = int(x), int(y)
        if r <= xi < N_PX - r - 1 and r <= yi < N_PX - r - 1:
            img[yi - r : yi + r + 1, xi - r : xi + r + 1] -= blob
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6, help="micrographs (64 MiB each)")
    ap.add_argument("--picks", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="n=2, repeat=1")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeat = 2, 1
    rng = np.random.default_rng(0)
    data = ROOT / "benchmarks" / ".data" / "scoring"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    rows = []
    try:
        for i in range(args.n):
            xy = rng.uniform(0, N_PX, (args.picks, 2))
            write_mrc(data / f"mic_{i:03d}.mrc", _micrograph(rng, xy), APIX)
            rows.append(pd.DataFrame({"micrograph": f"mic_{i:03d}", "x_px": xy[:, 0], "y_px": xy[:, 1]}))
        table = pd.concat(rows, ignore_index=True)
        stack = open_micrograph_stack(data)
        results = {"n_micrographs": args.n, "picks_per_micrograph": args.picks, "shape": [N_PX, N_PX],
                   "diameter_px": DIAMETER_PX, "repeat": args.repeat}

        def _first(block):
            return float(block.ravel()[0])  # read it, keep nothing: memory is reused as when scoring

        def read_all(workers):
            import dask

            tasks = [dask.delayed(_first)(d) for d in stack.data.to_delayed().ravel()]
            return dask.compute(*tasks, scheduler="threads", num_workers=workers)

        read_all(2)  # warm-up (imports, page cache)
        t_read1, _ = _time(lambda: read_all(1), args.repeat)
        t_read2, _ = _time(lambda: read_all(2), args.repeat)
        results["read_s"] = {"1_thread": t_read1, "2_threads": t_read2}
        print(f"I/O floor (warm): {t_read1 / args.n * 1e3:.0f} ms per micrograph (1 thread), "
              f"{t_read2 / args.n * 1e3:.0f} ms (2 threads)")

        kw = dict(diameter_px=DIAMETER_PX)
        t1, ref = _time(lambda: score_picks(stack, table, num_workers=1, **kw), args.repeat)
        t2, out2 = _time(lambda: score_picks(stack, table, num_workers=2, **kw), args.repeat)
        assert np.array_equal(ref["ncc"].to_numpy(), out2["ncc"].to_numpy(), equal_nan=True)
        results["score_threads_s"] = {"1": t1, "2": t2}
        print(f"score_picks threads: 1 -> {t1 / args.n * 1e3:.0f} ms/micrograph "
              f"({t1 / t_read1:.2f}x the read floor), 2 -> {t2 / args.n * 1e3:.0f} ms ({t1 / t2:.2f}x speed-up)")

        tmpl = rng.normal(size=(10, 180, 180)).astype(np.float32)
        tt, _ = _time(lambda: score_picks(stack, table, num_workers=1, templates=tmpl, **kw), max(1, args.repeat - 1))
        results["score_templates_1thread_s"] = tt
        print(f"score_picks, 10 templates x 36 angles, 1 thread: {tt / args.n * 1e3:.0f} ms/micrograph")

        import distributed

        dist = {}
        for n_workers in (1, 2):
            with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                          dashboard_address=None, silence_logs=40) as cluster, \
                    distributed.Client(cluster) as client:
                score_picks(stack, table.iloc[:10], client=client, **kw)  # warm the workers
                td, outd = _time(lambda: score_picks(stack, table, client=client, **kw), args.repeat)
                assert np.array_equal(ref["ncc"].to_numpy(), outd["ncc"].to_numpy(), equal_nan=True)
                dist[str(n_workers)] = td
        results["score_distributed_s"] = dist
        print(f"distributed LocalCluster (processes): 1 worker {dist['1'] / args.n * 1e3:.0f} ms/micrograph, "
              f"2 workers {dist['2'] / args.n * 1e3:.0f} ms ({dist['1'] / dist['2']:.2f}x speed-up)")

        # baselines on one micrograph
        img = stack.read(0)
        sub = table[table["micrograph"] == "mic_000"]
        x, y = sub["x_px"].to_numpy(), sub["y_px"].to_numpy()
        tm, (n_m, _) = _time(lambda: score_micrograph(img, x, y, **kw), args.repeat)
        tf, (n_f, _) = _time(lambda: score_micrograph(img, x, y, bin_factor=1, **kw), 1)

        def fft_route():
            prep = prepare_micrograph(img, bin_factor=1, **kw)
            m, _ = correlation_map(prep)
            xi, yi = np.rint(x).astype(int), np.rint(y).astype(int)
            return m[yi, xi]

        tfft, n_fft = _time(fft_route, 1)
        ok = np.isfinite(n_f) & np.isfinite(n_fft)
        results["one_micrograph_s"] = {"method_default_grid": tm, "patches_full_resolution": tf,
                                       "fft_map_full_resolution": tfft}
        results["agreement"] = {
            "full_res_patches_vs_fft_max_abs_diff": float(np.max(np.abs(n_f[ok] - n_fft[ok]))),
            "default_grid_vs_full_res_median_abs_diff": float(np.nanmedian(np.abs(n_m - n_f))),
        }
        print(f"one micrograph, 500 picks: default grid {tm * 1e3:.0f} ms; full-res patches {tf * 1e3:.0f} ms "
              f"({tf / tm:.1f}x slower); full-res FFT map {tfft * 1e3:.0f} ms ({tfft / tm:.1f}x slower)")
        print("agreement:", results["agreement"])
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        (out / "bench_scoring.json").write_text(json.dumps(results, indent=2) + "\n")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
