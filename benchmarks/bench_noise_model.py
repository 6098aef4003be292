"""Benchmark: noise model on 10,000 particles of 128² against the projections alone.

    .venv/bin/python benchmarks/bench_noise_model.py [--n 10000] [--box 128] [--workers 2]

A simulated particle set (coloured noise of known spectrum) is written to an MRCS in a
temporary folder by a child process (so its memory does not count), then in this process:

- ``projections, serial``: ``FourierProjector.project_ft`` of every particle's pose and shift,
  chunk by chunk in one thread: the work any noise model must do at least;
- ``projections, dask threads``: the same chunks as dask tasks on ``--workers`` threads;
- ``noise model, dask threads``: ``estimate_noise_model`` reading the stack by chunks (memory
  map), FFT, CTF, projections and the per-coefficient sums, same threads and chunk size;
- unless ``--no-cluster``: the same noise model on a ``dask.distributed`` LocalCluster of
  ``--workers`` worker processes (one thread each) that read the stack themselves (same numbers
  checked): local threads vs worker processes;
- unless ``--no-reference``: in a child process (its memory is its own), the same serial
  projections by the former ``map_coordinates`` projector (``bench_projection.MapCoordinatesProjector``),
  the before/after of the vectorised projector.

Reports wall times, the ratio noise model / projections (same run), the accuracy against the
true spectrum (worst shell in statistical standard errors) and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def prepare(folder: Path, n: int, box: int, apix: float) -> None:
    import mrcfile

    from napari_cryodiag.simulate.particles import simulate_particles

    with mrcfile.new_mmap(folder / "particles.mrcs", shape=(n, box, box), mrc_mode=2, overwrite=True) as m:
        m.set_image_stack()
        m.voxel_size = apix
        sim = simulate_particles(n=n, box=box, pixel_size_A=apix, noise="coloured", seed=0, out=m.data)
    table = sim.table.copy()
    table["image_path"] = str(folder / "particles.mrcs")
    table.to_pickle(folder / "table.pkl")
    np.save(folder / "volume.npy", sim.volume)
    np.save(folder / "truth.npy", sim.noise_spectrum)


def reference_projections(folder: Path, n: int, apix: float, chunk: int) -> None:
    """Serial projections of the prepared set by the former map_coordinates projector."""
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_projection import MapCoordinatesProjector

    from napari_cryodiag.compute.projection import euler_to_matrix

    table = pd.read_pickle(folder / "table.pkl")
    t0 = time.perf_counter()
    proj = MapCoordinatesProjector(np.load(folder / "volume.npy"), pad=2)
    t_build = time.perf_counter() - t0
    mats = euler_to_matrix(table.rot_deg, table.tilt_deg, table.psi_deg)
    shifts = -table[["shift_x_A", "shift_y_A"]].to_numpy() / apix
    t0 = time.perf_counter()
    for i in range(0, n, chunk):
        proj.project_ft(mats[i:i + chunk], shifts[i:i + chunk])
    t_proj = time.perf_counter() - t0
    print(f"former projector (map_coordinates), build: {t_build:.2f} s")
    print(f"former projector, serial projections: {t_proj:8.2f} s  ({t_proj / n * 1e3:.2f} ms/particle)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--box", type=int, default=128)
    ap.add_argument("--apix", type=float, default=1.5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--no-reference", action="store_true", help="skip the former projector's run")
    ap.add_argument("--no-cluster", action="store_true", help="skip the LocalCluster run")
    ap.add_argument("--prepare", help=argparse.SUPPRESS)
    ap.add_argument("--reference-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.prepare:
        prepare(Path(args.prepare), args.n, args.box, args.apix)
        return
    if args.reference_child:
        reference_projections(Path(args.reference_child), args.n, args.apix, args.chunk)
        return

    import dask
    import pandas as pd

    from napari_cryodiag.workflows.noise import estimate_noise_model  # reads the stacks by chunk
    from napari_cryodiag.compute.projection import FourierProjector, euler_to_matrix

    with tempfile.TemporaryDirectory(prefix="bench_noise_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--prepare", tmp, "--n", str(args.n), "--box", str(args.box),
                        "--apix", str(args.apix)], check=True)
        t_prep = time.perf_counter() - t0
        table = pd.read_pickle(folder / "table.pkl")
        volume = np.load(folder / "volume.npy")
        truth = np.load(folder / "truth.npy")
        print(f"prepared {args.n:,} particles of {args.box}² in {t_prep:.1f} s (child process)")

        t0 = time.perf_counter()
        proj = FourierProjector(volume, pad=2)
        t_build = time.perf_counter() - t0
        mats = euler_to_matrix(table.rot_deg, table.tilt_deg, table.psi_deg)
        shifts = -table[["shift_x_A", "shift_y_A"]].to_numpy() / args.apix
        chunks = [slice(i, min(i + args.chunk, args.n)) for i in range(0, args.n, args.chunk)]

        t0 = time.perf_counter()
        for sl in chunks:
            proj.project_ft(mats[sl], shifts[sl])
        t_proj_serial = time.perf_counter() - t0

        def _one(sl):
            proj.project_ft(mats[sl], shifts[sl])
            return sl.stop - sl.start

        t0 = time.perf_counter()
        dask.compute(*[dask.delayed(_one)(sl) for sl in chunks], scheduler="threads", num_workers=args.workers)
        t_proj_threads = time.perf_counter() - t0

        t0 = time.perf_counter()
        nm = estimate_noise_model(table, volume, pixel_size_A=args.apix, chunk_size=args.chunk,
                                  num_workers=args.workers, scheduler="threads")
        t_noise = time.perf_counter() - t0  # includes its own projector build
        z = (nm.noise_variance / truth - 1) / nm.relative_standard_error()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t_cluster = None
        if not args.no_cluster:
            import distributed

            with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                          dashboard_address=None) as cl, distributed.Client(cl) as client:
                estimate_noise_model(table.iloc[: args.chunk], volume, pixel_size_A=args.apix, client=client)  # warm-up
                t0 = time.perf_counter()
                nm_c = estimate_noise_model(table, volume, pixel_size_A=args.apix, chunk_size=args.chunk, client=client)
                t_cluster = time.perf_counter() - t0
            assert np.array_equal(nm_c.noise_variance, nm.noise_variance), "cluster and threads differ"
        if not args.no_reference:
            subprocess.run([sys.executable, __file__, "--reference-child", tmp, "--n", str(args.n),
                            "--apix", str(args.apix), "--chunk", str(args.chunk)], check=True)

    print(f"projector build (pad 2, {2 * args.box}³ FFT): {t_build:.2f} s")
    print(f"projections alone, serial:            {t_proj_serial:8.2f} s  ({t_proj_serial / args.n * 1e3:.2f} ms/particle)")
    print(f"projections alone, dask {args.workers} threads:    {t_proj_threads:8.2f} s")
    print(f"noise model (read+FFT+CTF+proj+sums): {t_noise:8.2f} s  ({args.n / t_noise:,.0f} particles/s)")
    if t_cluster is not None:
        print(f"noise model, LocalCluster of {args.workers} worker processes: {t_cluster:8.2f} s "
              f"({t_noise / t_cluster:.2f}x the {args.workers} local threads; same numbers)")
    print(f"ratio noise model / projections (same threads): {t_noise / (t_proj_threads + t_build):.2f}")
    print(f"ratio noise model / projections (serial):       {t_noise / (t_proj_serial + t_build):.2f}")
    print(f"accuracy: worst shell {np.abs(z).max():.2f} s.e., rms {np.sqrt(np.mean(z**2)):.2f} s.e. "
          f"over {len(z)} shells; scale {nm.scale:.4f}")
    print(f"peak RSS of this process: {rss_mb:.0f} MiB")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
