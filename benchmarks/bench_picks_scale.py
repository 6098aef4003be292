"""Picks at 1e7 (issue 12): the STAR pipeline's peak memory against the file's size, read+write
against starfile, and the ``.cs`` pick fields against cryosparc-tools and ``np.load``.

Run: ``.venv/bin/python benchmarks/bench_picks_scale.py [--rows N] [--quick] [--keep] [--only star,cs]``
(default 1e7 rows: a 1.1 GB STAR, a 1.6 GB ``.cs``; ``--quick``: 1e5 rows, to check that it runs).

Every method runs in a fresh child process; memory is that process's VmHWM (peak resident set,
file-backed pages included), reported with the file's size. Files are written under
``benchmarks/.data/picks_scale/`` (git-ignored) and removed at the end unless ``--keep``; the page
cache is warm before each run (parsing is measured, not the disk).

STAR (a RELION 3.1 pick STAR: optics block, micrograph name, coordinates and CTF written as
RELION writes them, %.6f, FOM, class, psi, optics group; ~110 B per row):

- ``star_pipeline``: ``cryodiag picks FILE --x-min 0 --dedupe-A 0 --export-star OUT`` in process:
  read -> calibrate (FOM against defocus) -> threshold -> export of the kept picks. Goal: peak
  <= 4x the STAR's size.
- ``star_ours_rw`` / ``starfile_rw``: read the whole file and write it back (``read_star_table`` +
  ``write_star`` against ``starfile.read`` + ``starfile.write``). Goal: ours no slower. The
  round trip is checked: the written file read back gives the same values.

``.cs`` (cryoSPARC's pick schema, 160 B per row):

- ``cs_pick_fields``: ``read_cs(fields=cs.PICK_FIELDS, keep_other_fields=False)`` (what a pick
  view needs) against ``cs_tools`` (cryosparc-tools ``Dataset.load``). Goal: >= 5x faster.
- ``cs_full``: the full canonical table against ``cs_npload`` (``np.load``). Goal: <= 2x.

A fresh process per method also pays the first touch of the memory it allocates, which on a
virtual machine (host pages handed back while free) can cost more than the reading itself and
varies from run to run (``np.load``'s 1.6 GB: 0.3 to 4 s of system time). ``--in-process``
(``.cs`` only) measures the four methods in one process instead, alternating, ``--repeats``
times after one call each, and reports wall, user and system CPU time and the ratios of the same
run; ``--baseline REF`` adds ``read_cs`` as ``src/napari_cryodiag/io/cs.py`` is at the git ref
``REF`` and first checks that both give the same tables on the file. ``--data DIR`` writes the
files in DIR/cryodiag_picks_scale instead.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / ".data" / "picks_scale"
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("CRYODIAG_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# --------------------------------------------------------------------------- data


def make_star(n: int) -> Path:
    """A RELION 3.1 pick STAR of ``n`` rows on n/300 micrographs, numbers as RELION writes them."""
    import pandas as pd

    from napari_cryodiag.io.star import write_star_blocks

    p = DATA / f"picks_{n}.star"
    if p.exists():
        return p
    rng = np.random.default_rng(2)
    n_mic = max(1, n // 300)
    mic = np.sort(rng.integers(0, n_mic, n))
    names = pd.Categorical.from_codes(mic, categories=[f"MotionCorr/job002/Movies/mic_{m:05d}.mrc"
                                                       for m in range(n_mic)])
    du = rng.uniform(8000, 30000, n_mic).round(6)
    optics = {"rlnOpticsGroupName": np.array(["opticsGroup1"], dtype=object), "rlnOpticsGroup": np.array([1]),
              "rlnMicrographPixelSize": np.array([0.83]), "rlnVoltage": np.array([300.0]),
              "rlnSphericalAberration": np.array([2.7]), "rlnAmplitudeContrast": np.array([0.1])}
    fom = rng.normal(1 + du[mic] / 60000, 0.3).round(6)
    parts = {"rlnMicrographName": names, "rlnCoordinateX": rng.uniform(0, 4096, n).round(6),
             "rlnCoordinateY": rng.uniform(0, 4096, n).round(6), "rlnAutopickFigureOfMerit": fom,
             "rlnClassNumber": rng.integers(1, 9, n), "rlnAnglePsi": rng.uniform(-180, 180, n).round(6),
             "rlnDefocusU": du[mic], "rlnDefocusV": (du[mic] - 300).round(6),
             "rlnDefocusAngle": np.full(n, 45.123456), "rlnOpticsGroup": np.ones(n, dtype=np.int32)}
    DATA.mkdir(parents=True, exist_ok=True)
    write_star_blocks(p, [("optics", optics), ("particles", parts)])
    return p


def make_cs(n: int) -> Path:
    """cryoSPARC's pick schema, ``n`` rows (the generator of ``bench_io.py``, written here)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_io

    bench_io.DATA = DATA
    DATA.mkdir(parents=True, exist_ok=True)
    return bench_io.make_picks_cs(n)


# --------------------------------------------------------------------------- one measurement


def child(method: str, arg: str, out_dir: str) -> dict:
    out: dict = {"method": method}
    cap = float(os.environ.get("BENCH_MAX_MEMORY_GB", "0"))
    if cap > 0:  # a shared machine: a run that would blow up fails alone (MemoryError) instead
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(cap * 2**30), int(cap * 2**30)))
    import pandas  # noqa: F401  (imports outside the timing, for every method)

    from napari_cryodiag.io import cs, star

    base = _peak_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    if method == "star_pipeline":
        from napari_cryodiag.cli import main

        dest = Path(out_dir) / "kept.star"
        code = main(["picks", arg, "--x-min", "0", "--export-star", str(dest), "-o", str(Path(out_dir) / "out"),
                     "--overwrite", "--format", "png"])
        out["exit"] = code
        out["kept_bytes"] = dest.stat().st_size if dest.exists() else 0
    elif method == "star_ours_rw":
        t = star.read_star_table(arg)
        out["read_s"] = time.perf_counter() - t0
        star.write_star(Path(out_dir) / "ours.star", t, overwrite=True)
        out["rows"] = len(t)
    elif method == "starfile_rw":
        import starfile

        d = starfile.read(arg, always_dict=True)
        out["read_s"] = time.perf_counter() - t0
        starfile.write(d, Path(out_dir) / "starfile.star", overwrite=True)
        out["rows"] = len(d["particles"])
    elif method == "cs_pick_fields":
        t = cs.read_cs(arg, fields=cs.PICK_FIELDS, keep_other_fields=False)
        out["rows"], out["columns"] = len(t), len(t.columns)
    elif method == "cs_full":
        t = cs.read_cs(arg)
        out["rows"], out["columns"] = len(t), len(t.columns)
    elif method == "cs_npload":
        out["rows"] = len(np.load(arg, max_header_size=2**30))
    elif method == "cs_tools":
        from cryosparc.dataset import Dataset

        out["rows"] = len(Dataset.load(arg))
    else:
        raise SystemExit(f"unknown method {method}")
    out["time_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0  # user + system CPU of this process: less sensitive to a shared machine
    out["peak_rss_mb"] = _peak_mb()
    out["peak_rss_start_mb"] = base
    return out


def _warm(p: Path) -> None:
    with open(p, "rb") as f:
        while f.read(64 << 20):
            pass


def run(method: str, arg: Path, out_dir: Path, repeats: int = 1) -> dict:
    res = []
    for _ in range(repeats):
        _warm(arg)
        proc = subprocess.run([sys.executable, __file__, "--child", method, str(arg), str(out_dir)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{method} failed:\n{proc.stderr[-3000:]}")
        res.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(res, key=lambda r: r["time_s"])
    best["runs"] = repeats
    size_mb = arg.stat().st_size / 2**20
    print(f"  {method:16s} {best['time_s']:8.2f} s (CPU {best['cpu_s']:.2f} s)  peak {best['peak_rss_mb']:8.0f} MB "
          f"({best['peak_rss_mb'] / size_mb:.2f}x the file's {size_mb:.0f} MB)", flush=True)
    return best


def _cs_at(ref: str):
    """``io/cs.py`` as it is at the git ref ``ref``, loaded beside the current one."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:src/napari_cryodiag/io/cs.py"],
                         capture_output=True, text=True, check=True).stdout
    tmp = Path(tempfile.mkdtemp(prefix="cs_baseline_")) / "cs_baseline.py"
    tmp.write_text(src)
    name = "napari_cryodiag.io._cs_baseline"
    spec = importlib.util.spec_from_file_location(name, tmp)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    shutil.rmtree(tmp.parent, ignore_errors=True)
    return mod


def frame_difference(a, b) -> str | None:
    """The first difference between two canonical tables (columns, dtypes, values, categories,
    attrs), or None when they are the same."""
    import pandas as pd

    if list(a.columns) != list(b.columns):
        return f"columns {list(a.columns)} != {list(b.columns)}"
    if len(a) != len(b):
        return f"{len(a)} != {len(b)} rows"
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype != y.dtype:
            return f"{c}: dtype {x.dtype} != {y.dtype}"
        if isinstance(x.dtype, pd.CategoricalDtype):
            if list(x.cat.categories) != list(y.cat.categories):
                return f"{c}: categories differ"
            if not np.array_equal(x.cat.codes.to_numpy(), y.cat.codes.to_numpy()):
                return f"{c}: codes differ"
        elif not np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=x.dtype.kind == "f"):
            return f"{c}: values differ"
    if a.attrs != b.attrs:
        return f"attrs {a.attrs} != {b.attrs}"
    return None


def _rusage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def in_process(p: Path, repeats: int, baseline: str | None = None) -> dict:
    """The ``.cs`` methods in one process, alternating (see the module docstring)."""
    from cryosparc.dataset import Dataset

    from napari_cryodiag.io import cs

    path = str(p)
    methods = {
        "cs_pick_fields": lambda: cs.read_cs(path, fields=cs.PICK_FIELDS, keep_other_fields=False),
        "cs_tools": lambda: Dataset.load(path),
        "cs_full": lambda: cs.read_cs(path),
        "cs_npload": lambda: np.load(path, max_header_size=2**30),
    }
    out: dict = {"load_average_before": os.getloadavg()}
    if baseline:
        base = _cs_at(baseline)
        methods["base_pick_fields"] = lambda: base.read_cs(path, fields=base.PICK_FIELDS, keep_other_fields=False)
        methods["base_full"] = lambda: base.read_cs(path)
        same = {}
        for ours, theirs in (("cs_pick_fields", "base_pick_fields"), ("cs_full", "base_full")):
            diff = frame_difference(methods[ours](), methods[theirs]())
            gc.collect()
            same[ours] = diff is None
            print(f"  {ours} same table as at {baseline}: {diff is None}" + (f" ({diff})" if diff else ""), flush=True)
        out["same_as_baseline"] = same
    for f in methods.values():  # imports, first touches
        f()
        gc.collect()
    runs: dict = {k: [] for k in methods}
    for r in range(repeats):
        for k in (list(methods) if r % 2 == 0 else list(methods)[::-1]):
            gc.collect()
            u0, s0 = _rusage()
            t0 = time.perf_counter()
            res = methods[k]()
            t = time.perf_counter() - t0
            u1, s1 = _rusage()
            del res
            runs[k].append({"time_s": t, "user_s": u1 - u0, "sys_s": s1 - s0, "cpu_s": u1 - u0 + s1 - s0})
    out["load_average_after"] = os.getloadavg()
    best = {}
    for k, v in runs.items():
        b = {q: min(x[q] for x in v) for q in ("time_s", "cpu_s", "user_s", "sys_s")}
        b["median_time_s"] = float(np.median([x["time_s"] for x in v]))
        b["median_cpu_s"] = float(np.median([x["cpu_s"] for x in v]))
        b["runs"] = v
        best[k] = out[k] = b
        print(f"  {k:16s} wall min {b['time_s']:.3f} s (median {b['median_time_s']:.3f})  CPU min {b['cpu_s']:.3f} s "
              f"(median {b['median_cpu_s']:.3f}; user {b['user_s']:.3f}, system {b['sys_s']:.3f})", flush=True)
    for q, label in (("time_s", "wall min"), ("cpu_s", "CPU min"), ("median_cpu_s", "CPU median")):
        r = {"pick_fields_speedup_over_cs_tools": best["cs_tools"][q] / best["cs_pick_fields"][q],
             "full_over_npload": best["cs_full"][q] / best["cs_npload"][q]}
        line = (f"  [{label}] pick fields vs cryosparc-tools: {r['pick_fields_speedup_over_cs_tools']:.2f}x faster "
                f"(goal >= 5); full table / np.load: {r['full_over_npload']:.2f} (goal <= 2)")
        if baseline:
            r["pick_fields_baseline_over_ours"] = best["base_pick_fields"][q] / best["cs_pick_fields"][q]
            r["full_baseline_over_ours"] = best["base_full"][q] / best["cs_full"][q]
            line += (f"; {baseline} / ours: pick fields {r['pick_fields_baseline_over_ours']:.2f}, "
                     f"full {r['full_baseline_over_ours']:.2f}")
        out[f"ratios_{q}"] = r
        print(line, flush=True)
    print(f"  load average {out['load_average_before']} -> {out['load_average_after']}", flush=True)
    return out


def _same_values(a: Path, b: Path) -> bool:
    from napari_cryodiag.io.star import read_star_table

    x, y = read_star_table(a), read_star_table(b)
    cols = ["x_px", "y_px", "rlnAutopickFigureOfMerit", "defocus_u_A", "psi_deg", "class"]
    return len(x) == len(y) and all(np.array_equal(x[c].to_numpy(), y[c].to_numpy()) for c in cols) and \
        list(x["micrograph_name"].astype(str)) == list(y["micrograph_name"].astype(str))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=3)
    ap.add_argument("--rows", type=float, default=1e7)
    ap.add_argument("--quick", action="store_true", help="1e5 rows (check that the script runs)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", default="star,cs")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--in-process", action="store_true",
                    help=".cs only: the methods alternating in one process (same-run ratios, CPU times)")
    ap.add_argument("--baseline", default=None, help="with --in-process: also read_cs as it is at this git ref")
    ap.add_argument("--data", default=None, help="folder for the generated files (default benchmarks/.data/...)")
    ap.add_argument("--max-memory-gb", type=float, default=0,
                    help="address-space cap of each measured process (0: none), for a shared machine")
    args = ap.parse_args()
    if args.max_memory_gb:
        os.environ["BENCH_MAX_MEMORY_GB"] = str(args.max_memory_gb)
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    global DATA
    if args.data:
        DATA = Path(args.data) / "cryodiag_picks_scale"  # a folder of its own: it is removed at the end
    n = 100_000 if args.quick else int(args.rows)
    only = set(args.only.split(","))
    if args.in_process:
        try:
            p = make_cs(n)
            print(f".cs, {n:,} picks, {p.stat().st_size / 2**20:.0f} MB, in one process, {args.repeats} repeats",
                  flush=True)
            res = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "rows": n, "bytes": p.stat().st_size,
                   "cs_in_process": in_process(p, args.repeats, args.baseline)}
        finally:
            if not args.keep:
                shutil.rmtree(DATA, ignore_errors=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"bench_picks_scale_in_process{'_quick' if args.quick else ''}.json"
        out.write_text(json.dumps(res, indent=2))
        print(f"wrote {out}")
        return
    work = DATA / "out"
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "rows": n,
                 "load_average": os.getloadavg()}
    try:
        if "star" in only:
            p = make_star(n)
            res["star"] = {"bytes": p.stat().st_size}
            print(f"STAR, {n:,} picks, {p.stat().st_size / 2**20:.0f} MB", flush=True)
            for m in ("star_pipeline", "star_ours_rw", "starfile_rw"):
                res["star"][m] = run(m, p, work, repeats=1 if m == "star_pipeline" else args.repeats)
            res["star"]["round_trip_same_values"] = _same_values(p, work / "ours.star")
            r = res["star"]
            r["pipeline_peak_over_size"] = r["star_pipeline"]["peak_rss_mb"] * 2**20 / r["bytes"]
            r["rw_time_ours_over_starfile"] = r["star_ours_rw"]["time_s"] / r["starfile_rw"]["time_s"]
            print(f"  pipeline peak / STAR size: {r['pipeline_peak_over_size']:.2f} (goal <= 4); read+write, ours / "
                  f"starfile: {r['rw_time_ours_over_starfile']:.2f} (goal <= 1); round trip same values: "
                  f"{r['round_trip_same_values']}")
        if "cs" in only:
            p = make_cs(n)
            res["cs"] = {"bytes": p.stat().st_size}
            print(f".cs, {n:,} picks, {p.stat().st_size / 2**20:.0f} MB", flush=True)
            for m in ("cs_pick_fields", "cs_tools", "cs_full", "cs_npload"):
                res["cs"][m] = run(m, p, work, repeats=args.repeats)
            r = res["cs"]
            r["pick_fields_speedup_over_cs_tools"] = r["cs_tools"]["time_s"] / r["cs_pick_fields"]["time_s"]
            r["full_over_npload"] = r["cs_full"]["time_s"] / r["cs_npload"]["time_s"]
            print(f"  pick fields vs cryosparc-tools: {r['pick_fields_speedup_over_cs_tools']:.1f}x faster (goal >= 5); "
                  f"full table / np.load: {r['full_over_npload']:.2f} (goal <= 2)")
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("bench_picks_scale_quick.json" if args.quick else "bench_picks_scale.json")
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
