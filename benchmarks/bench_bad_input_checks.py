"""Cost of the bad-input checks added to the STAR reader and the map commands (follow-up f3).

* ``io.star._type_loop``: words in number columns are refused (naming the row) and number
  columns made compact (float32/int32 when exact); the short-row test of ``io.star_text`` scans
  the last column when it is text. Timed on a 1,000,000-row particle STAR whose last column is a
  string (``rlnImageName``: the worst case) and one whose last column is numeric: read with and
  without ``_type_loop``.
* ``workflows.maps.load_half_maps``'s constant-map test (``min == max``) against the FFT of the same map.

Run: ``.venv/bin/python benchmarks/bench_bad_input_checks.py`` (writes its STAR files to a temporary folder).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from napari_cryodiag.io import star


def best(f, k=3):
    t = 1e9
    for _ in range(k):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t


def write_star(path: Path, n: int, string_last: bool) -> None:
    rng = np.random.default_rng(0)
    x, y, a = rng.random(n) * 4000, rng.random(n) * 4000, rng.random(n) * 360
    names = [f"{i + 1:06d}@Extract/job012/mic_{i // 300:05d}.mrcs" for i in range(n)]
    if string_last:
        head = ["_rlnCoordinateX #1", "_rlnCoordinateY #2", "_rlnAnglePsi #3", "_rlnImageName #4"]
        rows = (f"{x[i]:.2f} {y[i]:.2f} {a[i]:.2f} {names[i]}" for i in range(n))
    else:
        head = ["_rlnImageName #1", "_rlnCoordinateX #2", "_rlnCoordinateY #3", "_rlnAnglePsi #4"]
        rows = (f"{names[i]} {x[i]:.2f} {y[i]:.2f} {a[i]:.2f}" for i in range(n))
    path.write_text("data_particles\n\nloop_\n" + "\n".join(head) + "\n" + "\n".join(rows) + "\n")


def main() -> None:
    n = 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        for string_last in (True, False):
            p = Path(tmp) / f"p_{string_last}.star"
            write_star(p, n, string_last)
            check = star._type_loop
            with_check = best(lambda: star.read_star(p))
            star._type_loop = lambda df, blk, path, **k: df
            try:
                without = best(lambda: star.read_star(p))
                blk = star.read_star_blocks(p)[0]
            finally:
                star._type_loop = check
            alone = best(lambda: check(blk.loop, blk, str(p)))
            last = "string" if string_last else "numeric"
            print(f"read_star {n:,} rows, last column {last}: {with_check:.3f} s with the check, {without:.3f} s "
                  f"without; check {alone * 1e3:.1f} ms = {alone / without:.1%} of the read")
    vol = np.random.default_rng(0).standard_normal((256, 256, 256), dtype=np.float32)
    t_const = best(lambda: vol.min() == vol.max())
    t_fft = best(lambda: np.fft.rfftn(vol), k=2)
    print(f"constant-map test on 256^3: {t_const * 1e3:.1f} ms = {t_const / t_fft:.1%} of one rfftn ({t_fft:.3f} s)")


if __name__ == "__main__":
    main()
