"""Benchmark: one what-if sharpening step (a new B-factor) in the Map validation dock, end to end,
the current dock side by side with the widget before the magicgui rebuild, in the same run.

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python benchmarks/bench_sharpen_widget.py \\
        [--size 256] [--steps 12] [--baseline f2c7b1a]

Simulated half maps of ``--size``³ go to a temporary folder once; each widget then runs in its
own child process (napari shown under Xvfb, the two half maps as layers, the dock docked, the FSC
computed, the sharpened map added as a layer, B unticked from "fitted"). The baseline is the whole
package at commit ``--baseline`` (``git archive``), so the old widget runs on its own code.

One step: set B (the spin box a user steps; -5 Å² each step) and wait until the sharpened layer
shows the map for that B, the widget is idle and the Qt event queue is empty (the napari canvas
and the matplotlib canvas have drawn what changed). Measured in three settings: the layer in 2D
with the FSC view shown (the current dock computes the shown plane only), in 2D with the Guinier
view shown (the sharpened curve follows, in a thread: the current dock takes per-shell moments
once, when the view is first drawn, then a series per B; the old widget the whole map and its
transform per B), and in 3D with the FSC view (the whole map). Per setting: the median and the worst step, the median time
until the layer showed the new B ("shown"; before the curve in the Guinier view), and the ratio
of the current dock's median to the old one's; a fingerprint of the last sharpened map (both
widgets must agree).

Results are printed and written to ``benchmarks/results/bench_sharpen_widget.json``. Run it on an
idle machine: timings under load mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BASELINE = "f2c7b1a"  # main before the magicgui rebuild of the docks (QWidget Map validation)


def _settings(steps: int):
    """(name, plot view, napari ndisplay, steps) of the measured settings."""
    return [("2D, FSC view", "FSC", 2, steps), ("2D, Guinier view", "Guinier", 2, steps),
            ("3D, FSC view", "FSC", 3, max(3, steps // 3))]


# --------------------------------------------------------------------------- children


def child_prepare(folder: str, n: int) -> None:
    import numpy as np

    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    apix = 1.2
    sim = simulate_half_maps(box=n, pixel_size_A=apix, resolution_A=3.4 * apix, with_mask=False)
    np.save(Path(folder) / "h1.npy", sim.half1)
    np.save(Path(folder) / "h2.npy", sim.half2)
    print(json.dumps({"ok": True, "pixel_size_A": apix}))


def _drain(app, until, timeout_s: float = 60.0) -> None:
    """Process events until ``until()`` holds and no event is pending."""
    t_end = time.perf_counter() + timeout_s
    while time.perf_counter() < t_end:
        app.sendPostedEvents()
        app.processEvents()
        if until():
            break
        time.sleep(0.0005)
    for _ in range(3):
        app.sendPostedEvents()
        app.processEvents()


def child_widget(folder: str, which: str, steps: int, apix: float) -> None:
    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    h1 = np.load(Path(folder) / "h1.npy")
    h2 = np.load(Path(folder) / "h2.npy")
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    meta = {"cryodiag": {"kind": "map", "pixel_size_A": apix}}
    viewer.add_image(h1, name="half1", scale=(apix,) * 3, metadata=meta)
    viewer.add_image(h2, name="half2", scale=(apix,) * 3, metadata=meta)
    from napari_cryodiag.widgets.map_validation import MapValidationWidget

    w = MapValidationWidget(viewer)
    viewer.window.add_dock_widget(w, name="Map validation", area="right")
    _drain(app, lambda: True)
    new = hasattr(w, "sharpen")  # the magicgui dock has a sharpening panel
    if new:
        w.compute()
        w.wait(600_000)
        layer = w.sharpen.add_sharpened_layer()
        w.sharpen.form.use_fitted_bfactor.value = False
        w.sharpen.wait()
        session = w.session

        def set_b(b):
            w.sharpen.form.bfactor_A2.value = b

        def set_view(v):
            w.plots.view.value = v

        def shown(b):
            return w.sharpen.shown_bfactor_A2 == b

        def done(b):
            return w.sharpen.idle and w.sharpen.shown_bfactor_A2 == b
    else:
        worker = w.compute()
        _drain(app, lambda: not worker.is_running and w.session is not None and w.session.fsc is not None, 600)
        layer = w.add_sharpened_layer()
        w.fitted_check.setChecked(False)
        session = w.session

        def set_b(b):
            w.b_spin.setValue(b)

        def set_view(v):
            w.view_combo.setCurrentText(v)

        def done(b):
            return session.sharpen_used.bfactor_A2 == b and layer.data is session.sharpened

        shown = done
    _drain(app, lambda: True)
    b0 = round(float(session.sharpen_used.bfactor_A2))
    out = {"widget": which}
    k = 0
    for name, view, ndisplay, n_steps in _settings(steps):
        set_view(view)
        viewer.dims.ndisplay = ndisplay
        _drain(app, lambda: True)
        times, first = [], []
        for _ in range(n_steps):
            k += 1
            b = float(b0 - 5 * k)
            seen = []
            t = time.perf_counter()
            set_b(b)

            def until(b=b, seen=seen, t=t):
                if not seen and shown(b):
                    seen.append(time.perf_counter() - t)
                return done(b)

            _drain(app, until)
            times.append(time.perf_counter() - t)
            first.append(seen[0] if seen else times[-1])
            if not done(b):
                raise RuntimeError(f"{which}: B = {b} was not applied")
        out[name] = {"median_ms": 1000 * float(np.median(times)), "max_ms": 1000 * float(np.max(times)),
                     "shown_median_ms": 1000 * float(np.median(first)), "steps": n_steps}
    vol = np.asarray(layer.data, dtype=np.float64)
    out["fingerprint"] = [float(vol.mean()), float(vol.std()), float(session.sharpen_used.bfactor_A2)]
    viewer.close()
    print(json.dumps(out))


# --------------------------------------------------------------------------- parent


def _run(args, env=None) -> dict:
    p = subprocess.run([PY, __file__, "--child", *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"child {args[0]} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return json.loads(lines[-1])


def _baseline_tree(commit: str, dest: Path) -> Path:
    """The package at ``commit`` (``git archive`` of ``src``) under ``dest``; returns its ``src``."""
    dest.mkdir(parents=True, exist_ok=True)
    tar = dest / "baseline.tar"
    with open(tar, "wb") as fh:
        subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, stdout=fh, check=True)
    with tarfile.open(tar) as tf:
        tf.extractall(dest, filter="data")
    return dest / "src"


def _load() -> str:
    """The 1, 5 and 15 minute load averages (timings under load mean little; ratios a bit more)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--baseline", default=BASELINE, help="commit of the widget to compare with")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, *rest = a.child
        if kind == "prepare":
            child_prepare(rest[0], int(rest[1]))
        else:
            child_widget(rest[0], kind, int(rest[1]), float(rest[2]))
        return
    results = {"size": a.size, "steps": a.steps, "baseline": a.baseline, "machine": os.uname().nodename,
               "cpus": os.cpu_count(), "load_before": _load()}
    with tempfile.TemporaryDirectory(prefix="bench_sharpen_widget_") as tmp:
        tmp = Path(tmp)
        prep = _run(["prepare", tmp, a.size])
        apix = prep["pixel_size_A"]
        src_now = os.environ.get("PYTHONPATH", str(ROOT / "src"))
        base_src = _baseline_tree(a.baseline, tmp / "baseline")
        for which, src in (("current", src_now), (f"before ({a.baseline})", str(base_src))):
            env = dict(os.environ, PYTHONPATH=src)
            results[which] = _run([which.split()[0], tmp, a.steps, apix], env=env)
    fp = [results[k]["fingerprint"] for k in results if isinstance(results[k], dict) and "fingerprint" in results[k]]
    results["same_map"] = bool(len(fp) == 2 and all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(*fp)))
    old = f"before ({a.baseline})"
    print(f"sharpening one B step at {a.size}³, end to end in the widget (load before: {results['load_before']})")
    for name, *_rest in _settings(a.steps):
        print(f"  {name} ({results['current'][name]['steps']} steps):")
        for which in ("current", old):
            r = results[which][name]
            print(f"    {which:>20}: median {r['median_ms']:.0f} ms (max {r['max_ms']:.0f}; "
                  f"layer shows the B after {r['shown_median_ms']:.0f} ms)")
        ratio = results["current"][name]["median_ms"] / results[old][name]["median_ms"]
        shown = results["current"][name]["shown_median_ms"] / results[old][name]["shown_median_ms"]
        results.setdefault("ratios", {})[name] = {"median": ratio, "shown": shown}
        print(f"    current / old: {ratio:.2f} (until shown: {shown:.2f})")
    print(f"  same sharpened map: {results['same_map']}; load after: {_load()}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_sharpen_widget.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
