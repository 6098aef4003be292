"""Class diagnostics benchmarks (issue 5, Classes): histograms and per-class statistics at
1e5, 1e6, 1e7 particles, and half-set class averages, each against a naive baseline and a peer
in the same run.

Run: ``.venv/bin/python benchmarks/bench_classes.py [--quick]``.

1. Histograms + per-class statistics (K = 200 classes; float32 best-class probability and ESS,
   as a memory-mapped ``.cs`` column would give them):
   - method: ``posterior_histograms`` (two 50-bin histograms, NaN/out-of-range counted apart)
     + ``class_statistics`` (count, median ESS, mean best probability: one radix sort of 16-bit
     class codes, O(N));
   - naive baseline: ``np.histogram(..., bins=50)`` (range from the data) for both columns and a
     per-class boolean-mask loop (``median(ess[cls == k])``...), O(N K);
   - peer: pandas ``groupby("class").agg(count, median, mean)`` + ``np.histogram``.
   The three must agree (counts and medians checked).
2. ESS from full posteriors (N, K=20, float32): ``ess_from_posteriors`` vs ``1/(p**2).sum(1)``
   (1e5 and 1e6 rows; 1e7 x 20 would be 800 MB).
3. Half-set class averages, 2,000 particles of 100 px (phase flip, in-plane pose and shift):
   ``compute_class_averages`` (batched Fourier shift + one ``map_coordinates`` per batch) vs a
   per-particle loop with ``scipy.ndimage.shift`` and ``scipy.ndimage.rotate`` (same CTF
   correction), both including the FRC.
4. The same half-set averages with the images in an MRCS file read by batch: 1 and 2 local
   threads, and a ``dask.distributed`` LocalCluster of 2 worker processes that read the stack
   themselves (same averages checked).

Times are medians of repeated runs (wall clock); results go to ``benchmarks/results/bench_classes.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_cryodiag.compute.particles.class_averages import compute_class_averages  # noqa: E402
from napari_cryodiag.compute.particles.classes import (  # noqa: E402
    PosteriorColumns,
    class_statistics,
    ess_from_posteriors,
    posterior_histograms,
)


def _time(fn, repeat=3):
    ts, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def _data(n, k=200, seed=0):
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, k, n).astype(np.uint32)  # cryoSPARC stores class as uint32
    best = rng.beta(8, 1, n).astype(np.float32)
    ess = (1 + rng.gamma(1.0, 0.6, n)).astype(np.float32)
    return cls, best, ess


def method(cls, best, ess, k):
    cols = PosteriorColumns(best, ess, "cryosparc", "best", "ess", n_classes=k)
    h = posterior_histograms(cols, bins=50)
    s = class_statistics(cls, ess, best)
    return h, s


def naive(cls, best, ess, k):
    hb = np.histogram(best, bins=50)
    he = np.histogram(ess, bins=50)
    rows = []
    for c in np.unique(cls):
        sel = cls == c
        rows.append((c, int(sel.sum()), float(np.median(ess[sel])), float(best[sel].mean())))
    return hb, he, rows


def peer_pandas(cls, best, ess, k):
    df = pd.DataFrame({"class": cls, "best": best, "ess": ess})
    g = df.groupby("class").agg(count=("ess", "size"), median_ess=("ess", "median"), mean_best=("best", "mean"))
    hb = np.histogram(best, bins=np.linspace(0, 1, 51))
    he = np.histogram(ess, bins=np.linspace(1, max(float(k), float(ess.max())), 51))
    return g, hb, he


def bench_histograms(sizes, k=200):
    out = []
    for n in sizes:
        cls, best, ess = _data(n, k)
        rep = 3 if n <= 1_000_000 else 2
        tm, (h, s) = _time(lambda: method(cls, best, ess, k), rep)
        tn, (hb, he, rows) = _time(lambda: naive(cls, best, ess, k), 1 if n >= 10_000_000 else rep)
        tp, (g, _, _) = _time(lambda: peer_pandas(cls, best, ess, k), rep)
        # agreement
        assert s["count"].tolist() == [r[1] for r in rows] == g["count"].tolist()
        np.testing.assert_allclose(s["median_ess"], [r[2] for r in rows], rtol=1e-6)
        np.testing.assert_allclose(s["median_ess"], g["median_ess"], rtol=1e-6)
        assert h["best_prob"].counts.sum() == n
        row = {"n": n, "k": k, "method_s": tm, "naive_s": tn, "pandas_s": tp,
               "speedup_vs_naive": tn / tm, "speedup_vs_pandas": tp / tm}
        print(f"hist+stats N={n:>9,}: method {tm:7.3f} s | naive {tn:7.3f} s ({tn / tm:5.1f}x) | "
              f"pandas {tp:7.3f} s ({tp / tm:4.1f}x)", flush=True)
        out.append(row)
    return out


def bench_ess(sizes, k=20):
    out = []
    rng = np.random.default_rng(1)
    for n in sizes:
        p = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
        tm, a = _time(lambda: ess_from_posteriors(p))
        tn, b = _time(lambda: 1.0 / (p.astype(np.float64) ** 2).sum(1))
        np.testing.assert_allclose(a, b, rtol=1e-5)
        print(f"ESS from (N, {k}) posteriors N={n:>9,}: method {tm:7.3f} s | naive {tn:7.3f} s ({tn / tm:4.1f}x)",
              flush=True)
        out.append({"n": n, "k": k, "method_s": tm, "naive_s": tn, "ratio": tn / tm})
    return out


def _naive_averages(table, images, apix, labels):
    from scipy import ndimage

    from napari_cryodiag.compute.ctf import ctf_2d

    n = images.shape[-1]
    k = len(labels)
    acc = np.zeros((k, 2, n, n))
    cnt = np.zeros((k, 2))
    lut = {c: i for i, c in enumerate(labels)}
    rank = table.groupby("class").cumcount().to_numpy() % 2
    cols = {c: table[c].to_numpy() for c in ("class", "defocus_u_A", "defocus_v_A", "defocus_angle_deg",
                                              "shift_x_A", "shift_y_A", "psi_deg")}
    for i in range(len(table)):
        c = ctf_2d((n, n), apix, cols["defocus_u_A"][i], cols["defocus_v_A"][i], cols["defocus_angle_deg"][i])
        img = np.fft.fftshift(np.fft.irfft2(np.fft.rfft2(np.fft.ifftshift(images[i])) * np.sign(c), s=(n, n)))
        img = ndimage.shift(img, (cols["shift_y_A"][i] / apix, cols["shift_x_A"][i] / apix), order=1)
        img = ndimage.rotate(img, cols["psi_deg"][i], reshape=False, order=1)
        j = lut[int(cols["class"][i])]
        acc[j, rank[i]] += img
        cnt[j, rank[i]] += 1
    from napari_cryodiag.compute.particles.frc import frc, soft_circular_mask

    h = acc / np.maximum(cnt, 1)[..., None, None]
    return frc(h[:, 0], h[:, 1], mask=soft_circular_mask(n))


def bench_averages(n_particles=2000, box=100):
    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=0, n_particles=n_particles, n_classes=10, n_junk=2, box=box)
    t = sim.table
    labels = np.arange(1, 11)
    tm, ca = _time(lambda: compute_class_averages(t, images=sim.images, labels=labels), 3)
    tn, curves = _time(lambda: _naive_averages(t, sim.images, sim.pixel_size_A, labels), 1)
    print(f"class averages {n_particles} x {box}^2: method {tm:6.2f} s ({n_particles / tm:,.0f} particles/s) | "
          f"naive loop {tn:6.2f} s ({tn / tm:4.1f}x)", flush=True)
    return {"n_particles": n_particles, "box": box, "method_s": tm, "naive_s": tn, "ratio": tn / tm,
            "particles_per_s": n_particles / tm}


def bench_averages_cluster(n_particles=2000, box=100):
    import tempfile

    import mrcfile

    from napari_cryodiag.io.particle_images import locate_particle_stacks
    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=0, n_particles=n_particles, n_classes=10, n_junk=2, box=box)
    with tempfile.TemporaryDirectory(prefix="bench_classes_") as tmp:
        stack = Path(tmp) / "particles.mrcs"
        with mrcfile.new(stack) as m:
            m.set_data(sim.images)
            m.voxel_size = sim.pixel_size_A
        t = sim.table.copy()
        t["image_path"] = "particles.mrcs"
        src, _ = locate_particle_stacks(t, stacks=[stack])
        kw = dict(source=src, labels=np.arange(1, 11), batch_size=128)
        t1, ref = _time(lambda: compute_class_averages(t, num_workers=1, **kw), 2)
        t2, _ = _time(lambda: compute_class_averages(t, num_workers=2, **kw), 2)
        out = {"threads_1_s": t1, "threads_2_s": t2}
        try:
            import distributed
        except ImportError:
            return out
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cl, distributed.Client(cl) as client:
            compute_class_averages(t.iloc[:128], client=client, **kw)  # warm the workers
            tc, got = _time(lambda: compute_class_averages(t, client=client, **kw), 2)
        assert np.array_equal(got.averages, ref.averages)
        out.update(cluster_2_workers_s=tc)
    print(f"class averages from an MRCS, {n_particles} x {box}^2: 1 thread {t1:.2f} s, 2 threads {t2:.2f} s "
          f"({t1 / t2:.2f}x), 2 worker processes {out.get('cluster_2_workers_s', float('nan')):.2f} s", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1e5 and 1e6 only, small averages")
    args = ap.parse_args()
    sizes = [100_000, 1_000_000] if args.quick else [100_000, 1_000_000, 10_000_000]
    res = {
        "histograms_and_class_stats": bench_histograms(sizes),
        "ess_full_posteriors": bench_ess([100_000, 1_000_000]),
        "class_averages": bench_averages(500 if args.quick else 2000),
        "class_averages_threads_vs_cluster": bench_averages_cluster(500 if args.quick else 2000),
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True, parents=True)
    (out / "bench_classes.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {out / 'bench_classes.json'}")


if __name__ == "__main__":
    main()
