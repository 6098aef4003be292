"""File I/O benchmarks (issue 2): lazy micrograph folders, .cs and STAR loading, slider swaps.

Run: ``.venv/bin/python benchmarks/bench_io.py [--quick] [--keep]``.

Every measurement runs in a fresh child process (so peak RSS is that method's own), methods and
baselines in the same run. Big synthetic inputs are written under ``benchmarks/.data/``
(git-ignored) and deleted at the end unless ``--keep``.

1. Micrographs: 200 float32 micrographs of 4096² (13.4 GB of real files, page cache dropped
   with ``posix_fadvise(DONTNEED)`` before each run, so reads come from disk): time to first
   display (open + contrast limits + compute the shown slice) and peak RSS of the napari
   reader on the folder vs on one micrograph; then moving the slider (compute another slice).
2. Picks ``.cs`` (page cache warm before each run, so parsing is measured, not the disk; NumPy format; cryoSPARC's pick schema: uid, location/*, pick_stats/*, 160 B
   per row) with 1e6 and 1e7 rows: our reader (full canonical table; picks fields memory-mapped)
   vs ``np.load`` vs cryosparc-tools ``Dataset.load``; also the full 485-byte particle schema
   of ``4k_dataset.cs`` at 1e6 rows.
3. STAR with 1e6 particles (15 columns, warm cache): our reader vs ``starfile.read``.
4. Slider swap with 1e6 picks on 200 micrographs: PicksOnMicrographs swap (one micrograph's
   ~5,000 picks) vs setting all 1e6 points on one Points layer (napari model only, no drawing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / ".data" / "io"  # only this benchmark's files (others share .data)
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("CRYODIAG_SHARED_DATA", ROOT.parent / "shared" / "data"))


# --------------------------------------------------------------------------- helpers


def _drop_cache(paths):
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def _peak_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(method: str, arg: str) -> dict:
    """Run one measurement in this (fresh) process."""
    out: dict = {"method": method}
    base_mb = _peak_mb()
    if method == "import_only":
        t0 = time.perf_counter()
        import napari_cryodiag.io.cs  # noqa: F401
        import napari_cryodiag.io.mrc  # noqa: F401
        import napari_cryodiag.io.star  # noqa: F401

        out["time_s"] = time.perf_counter() - t0
    elif method in ("mic_one", "mic_folder"):
        import dask.array  # noqa: F401  (napari has it loaded already)

        from napari_cryodiag import _reader
        from napari_cryodiag.io import mrc

        reads = []
        real = mrc._read_micrograph
        mrc._read_micrograph = lambda h: reads.append(h.path) or real(h)
        t0 = time.perf_counter()
        if method == "mic_one":
            data, kw, _ = _reader.get_reader(arg)(arg)[0]
            shown = np.asarray(data)
            out["files_read"] = 1
        else:
            data, kw, _ = _reader.get_reader(arg)(arg)[0]
            t_open = time.perf_counter() - t0
            shown = data[0].compute()  # what napari draws first
            out["open_s"] = t_open
        out["time_s"] = time.perf_counter() - t0
        out["shape"] = list(data.shape)
        if method == "mic_folder":
            out["full_reads_to_first_display"] = len(reads)  # includes the slice napari computes
            t1 = time.perf_counter()
            data[len(data) // 2].compute()  # move the slider
            out["next_slice_s"] = time.perf_counter() - t1
        out["checksum"] = float(shown[::512, ::512].sum())
    elif method.startswith("cs_"):
        import pandas  # noqa: F401  (imports outside the timing, for every method)
        import scipy.spatial.transform  # noqa: F401
        from cryosparc.dataset import Dataset

        from napari_cryodiag.io import cs

        t0 = time.perf_counter()
        if method == "cs_ours":
            t = cs.read_cs(arg)
            out["rows"] = len(t)
            out["columns"] = len(t.columns)
        elif method == "cs_ours_picks":
            t = cs.read_cs(arg, keep_other_fields=False, fields=[
                "location/micrograph_uid", "location/micrograph_path", "location/micrograph_shape",
                "location/center_x_frac", "location/center_y_frac", "location/micrograph_psize_A",
                "pick_stats/ncc_score", "pick_stats/power"])
            out["rows"] = len(t)
            out["columns"] = len(t.columns)
        elif method == "cs_npload":
            a = np.load(arg, max_header_size=2**30)
            out["rows"] = len(a)
        elif method == "cs_npload_mmap_xy":
            a = np.load(arg, mmap_mode="r", max_header_size=2**30)
            x = np.array(a["location/center_x_frac"])
            y = np.array(a["location/center_y_frac"])
            out["rows"] = len(x) + 0 * len(y)
        elif method == "cs_tools":
            d = Dataset.load(arg)
            out["rows"] = len(d)
        out["time_s"] = time.perf_counter() - t0
    elif method.startswith("star_"):
        import starfile

        from napari_cryodiag.io import star

        t0 = time.perf_counter()
        if method == "star_ours":
            t = star.read_star_table(arg)
        else:
            t = starfile.read(arg, always_dict=True)
            t = t["particles"]
        out["time_s"] = time.perf_counter() - t0
        out["rows"] = len(t)
    elif method.startswith("swap_"):
        import pandas as pd
        from napari.layers import Layer, Points

        from napari_cryodiag import _reader, picks_layer

        n_mic, n = 200, int(arg)
        rng = np.random.default_rng(3)
        mic = rng.integers(0, n_mic, n)
        table = pd.DataFrame({"micrograph": np.array([f"mic{i:04d}" for i in range(n_mic)], dtype=object)[mic],
                              "x_px": rng.uniform(0, 4096, n), "y_px": rng.uniform(0, 4096, n),
                              "ncc": rng.uniform(0, 1, n), "power": rng.uniform(0, 1, n),
                              "defocus_A": rng.uniform(1e4, 3e4, n)})
        import dask.array as da
        import napari
        from napari.layers import Image

        viewer = napari.Viewer(show=False)
        keys = [f"mic{i:04d}.mrc" for i in range(n_mic)]
        viewer.add_layer(Image(da.zeros((n_mic, 512, 512), chunks=(1, 512, 512), dtype=np.float32),
                               contrast_limits=(0, 1), scale=(1, 8, 8),
                               metadata={"cryodiag": {"kind": "micrographs", "keys": keys, "pixel_size_A": 8.0}}))
        times = []
        t0 = time.perf_counter()
        if method == "swap_controller":
            layer = viewer.add_layer(Layer.create(*_reader.picks_layer_data(table, "bench")))
            picks_layer.link_viewer(viewer)
            ctrl = picks_layer.get_picks_controller(layer)
            layer.scale = (1, 1, 1)
        else:  # all picks in one layer; napari slices out the shown micrograph's points
            data = np.column_stack([mic, table["y_px"], table["x_px"]]).astype(float)
            layer = viewer.add_layer(Points(data, features=table[["ncc", "power", "defocus_A"]], size=50,
                                            face_color="transparent", border_color="lime", out_of_slice_display=False))
        napari.qt.get_qapp().processEvents()
        out["setup_s"] = time.perf_counter() - t0
        for i in range(1, 21):
            t1 = time.perf_counter()
            viewer.dims.set_point(0, i)
            napari.qt.get_qapp().processEvents()
            times.append(time.perf_counter() - t1)
        out["points_in_layer"] = len(layer.data)
        out["points_shown"] = int(np.sum(layer._indices_view >= 0)) if hasattr(layer, "_indices_view") else None
        if method == "swap_controller":
            kept = table["ncc"].to_numpy() > 0.5
            t1 = time.perf_counter()
            ctrl.set_kept(kept)
            out["set_kept_s"] = time.perf_counter() - t1
        viewer.close()
        out["time_s"] = statistics.median(times)
    out["peak_rss_mb"] = _peak_mb()
    out["peak_rss_start_mb"] = base_mb
    return out


def _warm(paths):
    for p in paths:
        with open(p, "rb") as f:
            while f.read(64 << 20):
                pass


def run_child(method: str, arg: str, repeats: int = 1, cold=None, warm=None) -> dict:
    """Median of ``repeats`` fresh-process runs; ``cold`` files are dropped from the page cache
    before each run (reads then come from disk), ``warm`` files are read through first (reads
    then come from memory: the parsing cost alone, reproducible on a shared machine)."""
    results = []
    for _ in range(repeats):
        if cold:
            _drop_cache(cold)
        if warm:
            _warm(warm)
        cmd = [sys.executable, __file__, "--child", method, arg]
        if method.startswith("swap_") and not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            cmd = ["xvfb-run", "-a"] + cmd
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{method} failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = dict(results[0])
    best["time_s"] = statistics.median(r["time_s"] for r in results)
    best["runs"] = len(results)
    print(f"  {method:22s} {best['time_s']:8.3f} s  peak RSS {best['peak_rss_mb']:8.0f} MB", flush=True)
    return best


# --------------------------------------------------------------------------- data


def make_micrographs(n: int, size: int) -> list[Path]:
    from napari_cryodiag.io.mrc import write_mrc

    d = DATA / f"mics_{n}x{size}"
    d.mkdir(parents=True, exist_ok=True)
    paths = [d / f"mic_{i:04d}.mrc" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (size, size)).astype(np.float32)
    for i, p in enumerate(paths):
        if not p.exists():
            write_mrc(p, base + np.float32(i), 0.83)
            _drop_cache([p])
    return paths


def make_picks_cs(n: int, full_schema: bool = False) -> Path:
    p = DATA / f"picks_{n}{'_full' if full_schema else ''}.cs"
    if p.exists():
        return p
    schema = np.load(SHARED / "cryosparc" / "4k_dataset.cs").dtype
    names = [f for f in schema.names if full_schema or f == "uid" or f.startswith(("location/", "pick_stats/"))]
    dt = [(f, schema[f].base.str, schema[f].shape) if schema[f].shape else (f, schema[f].str) for f in names]
    dt = [("location/micrograph_path", "S100") if d[0] == "location/micrograph_path" else d for d in dt]
    dtype = np.dtype(dt)
    rng = np.random.default_rng(1)
    n_mic = max(1, n // 1000)
    paths = np.array([f"J12/motioncorrected/{10**20 + i}_grid3_square{i // 40:03d}_hole{i % 40:02d}_patch_aligned_doseweighted.mrc".encode()
                      for i in range(n_mic)])
    chunk = 1_000_000
    with open(p, "wb") as f:
        from numpy.lib import format as npf

        npf.write_array_header_1_0(f, {"descr": npf.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)})
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            a = np.zeros(m, dtype)
            mic = np.sort(rng.integers(0, n_mic, m))
            a["uid"] = rng.integers(1, 2**63, m, dtype=np.uint64)
            a["location/micrograph_uid"] = mic + 1000
            a["location/micrograph_path"] = paths[mic]
            a["location/micrograph_shape"] = (4092, 5760)
            a["location/center_x_frac"] = rng.uniform(0, 1, m)
            a["location/center_y_frac"] = rng.uniform(0, 1, m)
            a["location/micrograph_psize_A"] = 0.83
            a["pick_stats/ncc_score"] = rng.uniform(0, 1, m)
            a["pick_stats/power"] = rng.uniform(0, 500, m)
            if full_schema:
                a["alignments3D/pose"] = rng.normal(size=(m, 3))
            f.write(a.tobytes())
    _drop_cache([p])
    return p


def make_star(n: int) -> Path:
    import pandas as pd

    from napari_cryodiag.io.star import write_star

    p = DATA / f"particles_{n}.star"
    if p.exists():
        return p
    rng = np.random.default_rng(2)
    mic = rng.integers(0, max(1, n // 300), n)
    t = pd.DataFrame({
        "micrograph_name": [f"MotionCorr/job002/Movies/mic_{m:05d}.mrc" for m in mic],
        "x_px": rng.uniform(0, 4096, n).round(1), "y_px": rng.uniform(0, 4096, n).round(1),
        "defocus_u_A": rng.uniform(1e4, 3e4, n), "defocus_v_A": rng.uniform(1e4, 3e4, n),
        "defocus_angle_deg": rng.uniform(-90, 90, n), "rot_deg": rng.uniform(-180, 180, n),
        "tilt_deg": rng.uniform(0, 180, n), "psi_deg": rng.uniform(-180, 180, n),
        "shift_x_A": rng.normal(size=n), "shift_y_A": rng.normal(size=n), "class": rng.integers(1, 5, n),
        "pixel_size_A": 0.83, "voltage_kV": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1,
        "image_index": np.arange(n) % 300, "image_path": [f"Extract/job010/Movies/mic_{m:05d}.mrcs" for m in mic],
    })
    write_star(p, t)
    _drop_cache([p])
    return p


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--quick", action="store_true", help="small sizes (check the script runs)")
    ap.add_argument("--keep", action="store_true", help="keep benchmarks/.data")
    ap.add_argument("--only", default="mics,cs,star,swap")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    DATA.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    res: dict = {"machine": os.uname().nodename, "cpus": os.cpu_count()}
    n_mic, size = (20, 1024) if args.quick else (200, 4096)
    cs_sizes = [100_000] if args.quick else [1_000_000, 10_000_000]
    star_n = 100_000 if args.quick else 1_000_000
    try:
        res["import_only"] = run_child("import_only", "-")
        if "mics" in only:
            print(f"micrographs: {n_mic} x {size}^2 float32", flush=True)
            paths = make_micrographs(n_mic, size)
            res["mic_one"] = run_child("mic_one", str(paths[0]), repeats=3, cold=paths)
            res["mic_folder"] = run_child("mic_folder", str(paths[0].parent), repeats=3, cold=paths)
            if not args.keep:
                shutil.rmtree(paths[0].parent)
        if "cs" in only:
            for n in cs_sizes:
                print(f".cs picks, {n} rows", flush=True)
                p = make_picks_cs(n)
                res[f"cs_{n}"] = {"bytes": p.stat().st_size, "row_bytes": np.load(p, mmap_mode="r").dtype.itemsize}
                for m in ("cs_ours", "cs_ours_picks", "cs_npload", "cs_npload_mmap_xy", "cs_tools"):
                    res[f"cs_{n}"][m] = run_child(m, str(p), repeats=3 if n <= 1_000_000 else 2, warm=[p])
                if not args.keep:
                    p.unlink()
            n = cs_sizes[0]
            print(f".cs full 485-byte schema, {n} rows", flush=True)
            p = make_picks_cs(n, full_schema=True)
            res[f"cs_full_{n}"] = {"bytes": p.stat().st_size, "row_bytes": np.load(p, mmap_mode="r").dtype.itemsize}
            for m in ("cs_ours", "cs_ours_picks", "cs_npload", "cs_tools"):
                res[f"cs_full_{n}"][m] = run_child(m, str(p), repeats=3, warm=[p])
            if not args.keep:
                p.unlink()
        if "star" in only:
            print(f"STAR, {star_n} particles", flush=True)
            p = make_star(star_n)
            res["star"] = {"rows": star_n, "bytes": p.stat().st_size}
            for m in ("star_ours", "star_starfile"):
                res["star"][m] = run_child(m, str(p), repeats=3, warm=[p])
            if not args.keep:
                p.unlink()
        if "swap" in only:
            print("slider swap, 1e6 picks on 200 micrographs", flush=True)
            res["swap"] = {m: run_child(m, "1000000", repeats=2) for m in ("swap_controller", "swap_all_points")}
    finally:
        if not args.keep and DATA.exists():
            shutil.rmtree(DATA, ignore_errors=True)
    out = RESULTS / ("bench_io_quick.json" if args.quick else "bench_io.json")
    if only != {"mics", "cs", "star", "swap"} and out.exists():  # partial run: update the others
        old = json.loads(out.read_text())
        old.update(res)
        res = old
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
