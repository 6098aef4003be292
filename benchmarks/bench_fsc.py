"""Benchmark: all five FSC curves of 256³ / 384³ / 512³ half maps against the FFT floor and servalcat.

    .venv/bin/python benchmarks/bench_fsc.py [--sizes 256,512] [--no-servalcat] [--repeat 1]

Peak memory (``rss_MB``, ru_maxrss of each fresh child process or command) is also given in
"maps": multiples of one float32 half map (512 MiB at 512³; the issue's goal is <= 8).

For each box size, simulated half maps (and our tight mask, written as the "user" mask for the
masked runs) go to a temporary folder; every measurement then runs in its own child process so
that its wall time and peak RSS are its own:

- ``FFT floor``: the transforms the five curves need, timed alone on arrays of the same size:
  10 r2c (2 unmasked, 2 x 3 masked, 2 phase-randomised masked) and 3 c2r (the low-passed
  average for the mask threshold, 2 phase-randomised maps);
- ``cryodiag, 5 curves``: :func:`napari_cryodiag.compute.maps.fsc.fsc_family` in memory (no mask,
  spherical, loose and tight masks built from the average, phase randomisation, corrected);
- ``cryodiag fsc`` (CLI, end to end: read MRC, 5 curves + Guinier, figures, CSV/XML/STAR/JSON),
  without and with ``--mask``;
- ``servalcat fsc --halfmaps H1 H2 [--mask M] --csv`` (the peer; end to end), without and with
  the same mask;
- ``cli_fixed_32``: ``cryodiag fsc`` on 32³ half maps, the fixed cost of a process (interpreter,
  imports, figures, exports) that a 256³ run pays besides its numerics.

Commands also report their CPU time (user + system of all threads), steadier than the wall time on
a shared machine.

- ``masks``: the automatic masks step alone (spherical, loose, tight from the half-map average,
  as in ``fsc_family``), current :func:`auto_masks` vs the code before the speed-up (``masks.py``
  at commit ``MASKS_BASELINE``, read with ``git show``), each in its own fresh process: first
  (cold) call and best of ``--repeat`` further calls, and a fingerprint to check equal output.

Ratios are printed and written to ``benchmarks/results/bench_fsc.json``. emda is not measured:
it does not install on NumPy 2 (it needs numpy.distutils and a Fortran compiler).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MASKS_BASELINE = "d4d0eed"  # last masks.py before the same-output speed-up
PY = sys.executable
BIN = Path(PY).parent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_prepare(folder: str, n: int, apix: float) -> None:
    import numpy as np

    from napari_cryodiag.compute.maps.masks import auto_masks
    from napari_cryodiag.io.mrc import write_mrc
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=n, pixel_size_A=apix, resolution_A=3.2 * apix, bfactor_A2=60.0, with_mask=False)
    d = Path(folder)
    np.save(d / "h1.npy", sim.half1)
    np.save(d / "h2.npy", sim.half2)
    write_mrc(d / "h1.mrc", sim.half1, apix, overwrite=True)
    write_mrc(d / "h2.mrc", sim.half2, apix, overwrite=True)
    tight = auto_masks((sim.half1 + sim.half2) / 2, apix, which=("tight",))["tight"]
    write_mrc(d / "mask.mrc", tight, apix, overwrite=True)
    print(json.dumps({"ok": True}))


def child_floor(folder: str, repeat: int) -> None:
    import numpy as np

    from napari_cryodiag.compute.fourier import irfftn, rfftn

    a = np.load(Path(folder) / "h1.npy")
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f = None
        for _ in range(10):
            f = rfftn(a)
        for _ in range(3):
            irfftn(f, a.shape)
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"seconds": best, "rss_MB": _rss_mb()}))


def child_method(folder: str, repeat: int, apix: float) -> None:
    import numpy as np

    from napari_cryodiag.compute.maps.fsc import HalfMaps, fsc_family

    d = Path(folder)
    best, steps = float("inf"), {}
    for _ in range(repeat):
        # as the command line runs it: lean (the half maps are freed once only transforms are needed)
        hm = HalfMaps(np.load(d / "h1.npy"), np.load(d / "h2.npy"), apix, lean=True)
        last = [time.perf_counter()]
        marks = []

        def progress(done, total):
            now = time.perf_counter()
            marks.append(now - last[0])
            last[0] = now

        t = time.perf_counter()
        r = fsc_family(None, None, apix, halfmaps=hm, keep_masks=(), progress=progress)
        del hm
        dt = time.perf_counter() - t
        if dt < best:
            best = dt
            # steps (iter_fsc_family's order): start, masks, spherical, loose, tight, no mask, randomised+corrected
            names = ["setup", "masks", "spherical", "loose", "tight", "no_mask", "randomised+corrected"]
            steps = dict(zip(names, marks))
    print(json.dumps({"seconds": best, "rss_MB": _rss_mb(), "steps": steps,
                      "resolution_A": r.resolution_A, "randomise_shell": r.randomise_shell}))


def child_randomise(folder: str, repeat: int) -> None:
    """Phase randomisation of one half transform: ours vs a naive complex128 version."""
    import numpy as np

    from napari_cryodiag.compute.fourier import shell_index
    from napari_cryodiag.compute.fourier import rfftn
    from napari_cryodiag.compute.maps.phase_randomisation import randomise_phases

    a = np.load(Path(folder) / "h1.npy")
    f = rfftn(a)
    idx = shell_index(a.shape)
    start = a.shape[0] // 4

    def naive():
        rng = np.random.default_rng(0)
        sel = idx >= start
        phi = rng.uniform(0, 2 * np.pi, size=int(sel.sum()))  # float64
        out = f.astype(np.complex128)
        out[sel] = np.abs(out[sel]) * np.exp(1j * phi)
        return out

    res = {}
    for name, fn in (("ours", lambda: randomise_phases(f, a.shape, start, 0, idx)), ("naive", naive)):
        best = float("inf")
        for _ in range(max(repeat, 2)):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        res[name] = best
    print(json.dumps(res))


def child_masks(folder: str, repeat: int, apix: float, impl: str) -> None:
    """The mask step of ``fsc_family``: ``impl`` = ``current`` or ``baseline`` (old masks.py)."""
    import hashlib
    import importlib.util

    import numpy as np

    from napari_cryodiag.compute.maps.fsc import HalfMaps

    d = Path(folder)
    hm = HalfMaps(np.load(d / "h1.npy"), np.load(d / "h2.npy"), apix)
    hm.transforms  # computed before, as in fsc_family
    if impl == "current":
        from napari_cryodiag.compute.maps.masks import auto_masks

        def step():
            return auto_masks(hm.average(), apix, half_fts=hm.transforms)
    else:
        src = subprocess.run(["git", "show", f"{MASKS_BASELINE}:src/napari_cryodiag/compute/masks.py"],
                             capture_output=True, text=True, cwd=ROOT, check=True).stdout
        # the FFT helpers moved from compute.fsc to compute.fourier since that commit
        src = src.replace("from .fsc import irfftn, rfftn", "from ..compute.fourier import irfftn, rfftn")
        path = d / "_masks_baseline.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("napari_cryodiag.compute._masks_baseline", path)
        old = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = old
        spec.loader.exec_module(old)

        def step():
            return old.auto_masks(hm.average(), apix, average_ft=hm.average_ft())

    times = []
    for _ in range(1 + max(repeat, 2)):
        t = time.perf_counter()
        m = step()
        times.append(time.perf_counter() - t)
        digest = hashlib.sha1(b"".join(m[k].tobytes() for k in ("spherical", "loose", "tight"))).hexdigest()
        del m
    print(json.dumps({"cold": times[0], "best": min(times[1:]), "rss_MB": _rss_mb(), "sha1": digest}))


def _run_child(args: list[str]) -> dict:
    out = subprocess.run([PY, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _timed_command(cmd: list[str], cwd: Path) -> dict:
    """Wall time, peak RSS (MB) and CPU time (user + system, all threads: less sensitive to a shared
    machine than the wall time) of a command, via a tiny wrapper that reads RUSAGE_CHILDREN."""
    code = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'seconds': dt, 'rss_MB': ru.ru_maxrss / 1024, 'cpu_s': ru.ru_utime + ru.ru_stime,\n"
        "                  'rc': p.returncode, 'err': p.stderr[-800:]}))\n"
    )
    out = subprocess.run([PY, "-c", code, *cmd], capture_output=True, text=True, cwd=cwd)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        print(f"  command failed ({' '.join(cmd[:3])} ...): {res['err']}", file=sys.stderr)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,384")
    ap.add_argument("--apix", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-servalcat", action="store_true")
    ap.add_argument("--servalcat-max", type=int, default=512, help="largest box given to servalcat (~13 GB at 512³)")
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "prepare":
            child_prepare(rest[0], int(rest[1]), float(rest[2]))
        elif kind == "floor":
            child_floor(rest[0], int(rest[1]))
        elif kind == "randomise":
            child_randomise(rest[0], int(rest[1]))
        elif kind == "method":
            child_method(rest[0], int(rest[1]), float(rest[2]))
        elif kind == "masks":
            child_masks(rest[0], int(rest[1]), float(rest[2]), rest[3])
        return

    servalcat = shutil.which("servalcat", path=str(BIN)) or shutil.which("servalcat")
    results = {"machine": f"{os.cpu_count()} cores", "apix": a.apix, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench_fsc_fixed_") as tmp:
        # the fixed cost of a whole process (interpreter, imports, figures, exports) at a box where the
        # numerics cost nothing: what a 256³ run pays besides its transforms
        _run_child(["prepare", tmp, "32", str(a.apix)])
        cmd = [str(BIN / "cryodiag"), "fsc", "h1.mrc", "h2.mrc", "-o", "out", "--overwrite"]
        fixed = min((_timed_command(cmd, Path(tmp)) for _ in range(max(a.repeat, 2))), key=lambda r: r["seconds"])
        results["cli_fixed_32"] = fixed
        print(f"cryodiag fsc at 32³ (fixed cost of a process): {fixed['seconds']:.2f} s, CPU {fixed['cpu_s']:.2f} s",
              flush=True)
    for n in [int(s) for s in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix=f"bench_fsc_{n}_") as tmp:
            tmpd = Path(tmp)
            t = time.perf_counter()
            _run_child(["prepare", tmp, str(n), str(a.apix)])
            print(f"\n{n}^3: simulated half maps in {time.perf_counter() - t:.1f} s", flush=True)
            row = {}
            row["fft_floor"] = _run_child(["floor", tmp, str(a.repeat)])
            print(f"  FFT floor (10 r2c + 3 c2r): {row['fft_floor']['seconds']:.2f} s", flush=True)
            row["method"] = _run_child(["method", tmp, str(a.repeat), str(a.apix)])
            print(f"  cryodiag 5 curves in memory: {row['method']['seconds']:.2f} s, peak {row['method']['rss_MB']:.0f} MB; "
                  f"steps {', '.join(f'{k} {v:.2f}' for k, v in row['method']['steps'].items())}", flush=True)
            row["masks"] = {impl: _run_child(["masks", tmp, str(a.repeat), str(a.apix), impl])
                            for impl in ("baseline", "current")}
            mb, mc = row["masks"]["baseline"], row["masks"]["current"]
            print(f"  mask step: before {mb['cold']:.2f} s cold / {mb['best']:.2f} s warm, now {mc['cold']:.2f} s / "
                  f"{mc['best']:.2f} s; same output: {mb['sha1'] == mc['sha1']}", flush=True)
            row["randomise"] = _run_child(["randomise", tmp, str(a.repeat)])
            print(f"  phase randomisation of one half: {row['randomise']['ours']:.2f} s "
                  f"(naive complex128: {row['randomise']['naive']:.2f} s)", flush=True)
            cli = [str(BIN / "cryodiag"), "fsc", "h1.mrc", "h2.mrc", "-o", "out_nomask", "--overwrite"]
            row["cli_nomask"] = _timed_command(cli, tmpd)
            row["cli_mask"] = _timed_command(cli[:4] + ["--mask", "mask.mrc", "-o", "out_mask", "--overwrite"], tmpd)
            print(f"  cryodiag fsc CLI: {row['cli_nomask']['seconds']:.2f} s, CPU {row['cli_nomask']['cpu_s']:.2f} s "
                  f"({row['cli_nomask']['rss_MB']:.0f} MB); with --mask {row['cli_mask']['seconds']:.2f} s, "
                  f"CPU {row['cli_mask']['cpu_s']:.2f} s ({row['cli_mask']['rss_MB']:.0f} MB)", flush=True)
            if not servalcat and not a.no_servalcat:
                print("  servalcat not found (pip install servalcat in another environment, put it on PATH): "
                      "no peer timings", flush=True)
            if servalcat and not a.no_servalcat and n <= a.servalcat_max:
                sv = [servalcat, "fsc", "--halfmaps", "h1.mrc", "h2.mrc", "--csv"]
                row["servalcat_nomask"] = _timed_command(sv + ["-o", "sv_nomask"], tmpd)
                row["servalcat_mask"] = _timed_command(sv + ["--mask", "mask.mrc", "-o", "sv_mask"], tmpd)
                print(f"  servalcat fsc: {row['servalcat_nomask']['seconds']:.2f} s, CPU {row['servalcat_nomask']['cpu_s']:.2f} s "
                      f"({row['servalcat_nomask']['rss_MB']:.0f} MB); with --mask {row['servalcat_mask']['seconds']:.2f} s, "
                      f"CPU {row['servalcat_mask']['cpu_s']:.2f} s ({row['servalcat_mask']['rss_MB']:.0f} MB)", flush=True)
            fl = row["fft_floor"]["seconds"]
            one_map_MB = n**3 * 4 / 2**20
            row["peak_in_maps"] = {k: row[k]["rss_MB"] / one_map_MB for k in ("method", "cli_nomask", "cli_mask")}
            print("  peak memory in maps of " + f"{one_map_MB:.0f} MB: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in row["peak_in_maps"].items()), flush=True)
            ratios = {"method/fft_floor": row["method"]["seconds"] / fl,
                      "masks cold now/before": mc["cold"] / mb["cold"], "masks warm now/before": mc["best"] / mb["best"],
                      "randomise/naive": row["randomise"]["ours"] / row["randomise"]["naive"]}
            if "servalcat_nomask" in row:
                ratios["cli_nomask/servalcat_nomask"] = row["cli_nomask"]["seconds"] / row["servalcat_nomask"]["seconds"]
                ratios["cli_mask/servalcat_mask"] = row["cli_mask"]["seconds"] / row["servalcat_mask"]["seconds"]
            row["ratios"] = ratios
            print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()), flush=True)
            results["sizes"][str(n)] = row
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_fsc.json").write_text(json.dumps(results, indent=2))
    print(f"\nwritten {out / 'bench_fsc.json'}")


if __name__ == "__main__":
    main()
