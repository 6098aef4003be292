"""Benchmark: Fourier-slice projections, vectorised gather against the former map_coordinates projector.

    .venv/bin/python benchmarks/bench_projection.py [--boxes 64,128] [--n 2000] [--build 256] [--no-ref-build]

For each box (a Gaussian-atom map, pad 2), ``--n`` random poses with random shifts, by chunks of
256 as the noise model and the simulators call it, in this process and one thread:

- ``reference``: the former ``FourierProjector.project_ft`` (two ``scipy.ndimage.map_coordinates``
  calls per image, order 1, on float32 real and imaginary parts of the centred full transform),
  kept below as :class:`MapCoordinatesProjector`;
- ``vectorised``: :class:`napari_cryodiag.compute.projection.FourierProjector` (one trilinear
  gather over a batch of images from the complex64 half transform).

Both run alternately (best of ``--repeat``); prints projections per second (wall clock), the
CPU time per projection (less sensitive to other processes on a shared machine), the ratios and
the largest difference relative to the largest coefficient. Then the construction of a projector of
a ``--build``³ map (pad 2) is timed in child processes, one per implementation, with their peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np
from scipy import ndimage


class MapCoordinatesProjector:
    """The former ``FourierProjector`` (before the vectorised gather), verbatim in substance."""

    def __init__(self, volume, pad=2):
        vol = np.asarray(volume, dtype=np.float32)
        self.n = n = vol.shape[0]
        self.pad = pad
        big = pad * n
        padded = np.zeros((big, big, big), dtype=np.float32)
        o = big // 2 - n // 2
        padded[o : o + n, o : o + n, o : o + n] = vol
        ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(padded)))
        self._re = np.ascontiguousarray(ft.real.astype(np.float32))
        self._im = np.ascontiguousarray(ft.imag.astype(np.float32))
        self._centre = big // 2
        ky = np.fft.fftfreq(n, d=1.0 / n)
        kx = np.fft.rfftfreq(n, d=1.0 / n)
        self._kx, self._ky = np.meshgrid(kx, ky)
        self._inside = (self._kx**2 + self._ky**2) <= (n // 2) ** 2

    def project_ft(self, matrices, shifts_px=None):
        mats = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
        n = self.n
        kx = self._kx[self._inside]
        ky = self._ky[self._inside]
        out = np.zeros((len(mats), n, n // 2 + 1), dtype=np.complex64)
        for i, a in enumerate(mats):
            fx = a[0, 0] * kx + a[1, 0] * ky
            fy = a[0, 1] * kx + a[1, 1] * ky
            fz = a[0, 2] * kx + a[1, 2] * ky
            coords = np.stack([fz, fy, fx]) * self.pad + self._centre
            re = ndimage.map_coordinates(self._re, coords, order=1, mode="constant", prefilter=False)
            im = ndimage.map_coordinates(self._im, coords, order=1, mode="constant", prefilter=False)
            out[i][self._inside] = re + 1j * im
        if shifts_px is not None:
            sh = np.asarray(shifts_px, dtype=np.float64).reshape(-1, 2)
            phase = np.exp(
                -2j * np.pi * (sh[:, 0, None, None] * self._kx[None] + sh[:, 1, None, None] * self._ky[None]) / n
            )
            out *= phase.astype(np.complex64)
        return out


def peak_rss_gib() -> float:
    """Peak resident memory of this process (VmHWM: reset by exec, unlike ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def build_child(which: str, box: int) -> None:
    from napari_cryodiag.compute.projection import FourierProjector

    vol = np.random.default_rng(0).standard_normal((box, box, box)).astype(np.float32)
    before = peak_rss_gib()
    cls = MapCoordinatesProjector if which == "reference" else FourierProjector
    t0 = time.perf_counter()
    p = cls(vol, pad=2)
    dt = time.perf_counter() - t0
    held = sum(a.nbytes for a in vars(p).values() if isinstance(a, np.ndarray))
    peak = peak_rss_gib()
    print(f"build {which:10s} {box}³ pad 2: {dt:6.2f} s, peak RSS {peak:.2f} GiB "
          f"(process before the build {before:.2f} GiB), arrays kept {held / 2**30:.2f} GiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boxes", default="64,128")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--build", type=int, default=256, help="map side for the build time and memory (0: skip)")
    ap.add_argument("--no-ref-build", action="store_true", help="skip the reference build (~6 GiB at 256³)")
    ap.add_argument("--build-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_child:
        build_child(args.build_child[0], int(args.build_child[1]))
        return

    from scipy.spatial.transform import Rotation

    from napari_cryodiag.compute.projection import FourierProjector, euler_to_matrix
    from napari_cryodiag.simulate.density import gaussian_atoms_density

    for box in [int(b) for b in args.boxes.split(",")]:
        vol = gaussian_atoms_density(box, pixel_size_A=1.5, n_atoms=300, seed=0)
        mats = euler_to_matrix(*Rotation.random(args.n, random_state=1).as_euler("ZYZ", degrees=True).T)
        shifts = np.random.default_rng(2).uniform(-5, 5, size=(args.n, 2))
        chunks = [slice(i, min(i + args.chunk, args.n)) for i in range(0, args.n, args.chunk)]
        ref, new = MapCoordinatesProjector(vol), FourierProjector(vol)
        best = {"reference": np.inf, "vectorised": np.inf}
        cpu = dict(best)
        for _ in range(args.repeat):
            for name, p in (("reference", ref), ("vectorised", new)):
                t0, c0 = time.perf_counter(), time.process_time()
                for sl in chunks:
                    p.project_ft(mats[sl], shifts[sl])
                best[name] = min(best[name], time.perf_counter() - t0)
                cpu[name] = min(cpu[name], time.process_time() - c0)
        a, b = ref.project_ft(mats[:256], shifts[:256]), new.project_ft(mats[:256], shifts[:256])
        err = np.abs(a - b).max() / np.abs(a).max()
        rate = {k: args.n / t for k, t in best.items()}
        print(f"{box}²: reference {rate['reference']:8.0f} proj/s ({best['reference'] / args.n * 1e3:.3f} ms), "
              f"vectorised {rate['vectorised']:8.0f} proj/s ({best['vectorised'] / args.n * 1e3:.3f} ms); "
              f"speed-up {best['reference'] / best['vectorised']:.1f}x; max |diff| / max |F| = {err:.1e}")
        print(f"      CPU time per projection (less sensitive to other load): reference "
              f"{cpu['reference'] / args.n * 1e3:.3f} ms, vectorised {cpu['vectorised'] / args.n * 1e3:.3f} ms; "
              f"ratio {cpu['reference'] / cpu['vectorised']:.1f}x")

    if args.build:
        for which in (("vectorised",) if args.no_ref_build else ("vectorised", "reference")):
            subprocess.run([sys.executable, __file__, "--build-child", which, str(args.build)], check=True)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
