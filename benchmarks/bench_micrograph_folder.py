"""Benchmark (issue 12, "Micrographs at 10,000"): a folder of N micrographs of 4096² to first display.

    .venv/bin/python benchmarks/bench_micrograph_folder.py [--counts 200,1000,10000] [--size 4096] [--repeat 3]

The folders hold float32 MRC files of ``size``² written as *sparse* files (a real 1 KB header, the
data a hole: 64 MiB each on paper, no disk used), so that 10,000 micrographs (640 GiB) fit on any
disk. Each measurement runs in its own fresh process (wall time; peak memory = its VmHWM):

- ``folder``: the napari reader on the folder (``_reader.get_reader(folder)``: headers of every
  file, one lazy dask stack, contrast limits from a memory-mapped subsample of the first file) and
  the slice napari draws first (``data[0].compute()``): "time to first display";
- ``one`` (the floor, same run): the reader on one micrograph of the folder and its display;
- ``mrcfile`` (what a script without cryodiag does, same run): ``mrcfile.mmap(permissive=True)`` on
  every file of the folder to get its shape and voxel size, then the first micrograph's data.

Also counted: files whose data were read before the first display (must be 1). Timings are only
meaningful on an idle machine; the memory figures hold under load. Results go to
``benchmarks/results/bench_micrograph_folder.json``; the folders are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def make_folder(folder: Path, n: int, size: int) -> None:
    """``n`` sparse float32 micrographs of ``size``²: one real header, then a hole."""
    import mrcfile

    folder.mkdir(parents=True, exist_ok=True)
    proto = folder / "_proto.mrc"
    with mrcfile.new(proto, overwrite=True) as m:
        m.set_data(np.zeros((8, 8), np.float32))
        m.voxel_size = 1.0
        m.header.nx, m.header.ny = size, size
        m.header.mx, m.header.my = size, size
        m.header.cella.x, m.header.cella.y = 0.83 * size, 0.83 * size
    header = proto.read_bytes()[:1024]
    proto.unlink()
    nbytes = 1024 + 4 * size * size
    for i in range(n):
        with open(folder / f"mic_{i:05d}.mrc", "wb") as f:
            f.write(header)
            f.truncate(nbytes)


def child(method: str, folder: str) -> dict:
    import dask.array

    dask.array.zeros(2).compute()  # the scheduler's first-use imports, which a napari session has paid

    from napari_cryodiag import _reader
    from napari_cryodiag.io import mrc

    reads = []
    real = mrc._read_micrograph
    mrc._read_micrograph = lambda h: reads.append(h.path) or real(h)
    first = sorted(Path(folder).glob("*.mrc"))[0]
    out = {"method": method}
    t0 = time.perf_counter()
    if method == "folder":
        data, kw, _ = _reader.get_reader(str(folder))(str(folder))[0]
        out["open_s"] = time.perf_counter() - t0
        shown = data[0].compute()
        out["n"] = int(data.shape[0])
    elif method == "one":
        data, kw, _ = _reader.get_reader(str(first))(str(first))[0]
        shown = np.asarray(data)
    else:  # a plain mrcfile script
        import mrcfile

        shapes = []
        for p in sorted(Path(folder).glob("*.mrc")):
            with mrcfile.mmap(p, permissive=True) as m:
                shapes.append((m.data.shape, float(m.voxel_size.x)))
        with mrcfile.mmap(first, permissive=True) as m:
            shown = np.array(m.data)
        out["n"] = len(shapes)
    out["time_s"] = time.perf_counter() - t0
    out["data_reads_before_display"] = len(reads)
    out["shape"] = list(np.shape(shown))
    out["peak_MB"] = _vmhwm_mb()
    return out


def run_child(method: str, folder: Path, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        p = subprocess.run([sys.executable, __file__, "--child", method, str(folder)], capture_output=True, text=True,
                           cwd=ROOT)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
        r = json.loads(p.stdout.strip().splitlines()[-1])
        best = r if best is None or r["time_s"] < best["time_s"] else best
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="200,1000,10000")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-mrcfile", action="store_true", help="skip the plain mrcfile script (slow at 10,000)")
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(*a.child)))
        return
    results = {"size": a.size, "counts": {}}
    with tempfile.TemporaryDirectory(prefix="bench_micrographs_", dir=ROOT / "benchmarks") as tmp:
        for n in [int(c) for c in a.counts.split(",")]:
            folder = Path(tmp) / f"n{n}"
            t = time.perf_counter()
            make_folder(folder, n, a.size)
            print(f"\n{n} sparse micrographs of {a.size}² written in {time.perf_counter() - t:.1f} s", flush=True)
            row = {"folder": run_child("folder", folder, a.repeat), "one": run_child("one", folder, a.repeat)}
            if not a.no_mrcfile:
                row["mrcfile"] = run_child("mrcfile", folder, 1)
            f, o = row["folder"], row["one"]
            print(f"  folder: first display {f['time_s']:.2f} s (open {f['open_s']:.2f} s), peak {f['peak_MB']:.0f} MB, "
                  f"data files read before display {f['data_reads_before_display']}", flush=True)
            print(f"  one micrograph: {o['time_s']:.2f} s, peak {o['peak_MB']:.0f} MB", flush=True)
            if "mrcfile" in row:
                m = row["mrcfile"]
                print(f"  mrcfile.mmap over the folder: {m['time_s']:.2f} s, peak {m['peak_MB']:.0f} MB", flush=True)
            row["ratios"] = {"folder/one time": f["time_s"] / o["time_s"], "folder-one peak MB": f["peak_MB"] - o["peak_MB"]}
            results["counts"][str(n)] = row
            shutil.rmtree(folder)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_micrograph_folder.json").write_text(json.dumps(results, indent=2))
    print(f"\nwritten {out / 'bench_micrograph_folder.json'}")


if __name__ == "__main__":
    main()
