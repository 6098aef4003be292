"""Inspect Picks in a real napari window (Xvfb): what a user waits for, at 1e6 (and 1e7) picks.

Each measurement runs in a fresh process, for the current code ("after") and, side by side, for the
widget before its magicgui rebuild ("before": the package as it was at ``--before`` (default
141f820), taken from git history into a temporary folder):

- open: docking the widget on a viewer with the picks and a micrograph stack, until its histogram is
  drawn (seconds) and the process's peak memory (VmHWM);
- slider step: one step of the NCC threshold slider (``SLIDER_STEP`` in NCC, about 11 of the
  slider's own steps) from the NCC median on (each step moves
  picks of the shown micrograph between kept and rejected; the count is reported), until the
  window has painted; measured right after opening and again once the dock has been idle for 3 s
  (the current code sorts each score in a background thread after opening; once sorted, a step
  re-judges only the picks it crosses);
- line drag step: one mouse-move while dragging the NCC line on the histogram;
- next micrograph: the viewer's slider moved by one, until painted; beside it, the peer: napari
  alone (no plugin) with the same picks as one 3D Points layer (micrograph, y, x) that napari
  slices itself, the same slider moves, measured first in the same window;
- calibration on / off: ticking "Calibrate Pick Score to CTF", and unticking it;
- the window's floor: one label's text changed and the window painted (under Xvfb every paint
  composites the whole window, OpenGL canvas included, in software); the viewer canvas's floor:
  the micrograph layer's opacity changed (one repaint of the OpenGL canvas, nothing sliced: the
  least a new micrograph costs); and for each step the time of the call alone (the plugin's
  Python, before the window paints).

Medians of ``--repeats`` steps. Run with nothing else on the machine:

    xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/bench_inspect_picks.py [--n 1e6] [--n-big 1e7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: one measured step, in NCC, whatever ``--repeats`` (until stop 20 the steps were 0.1 / (repeats - 1),
#: so the 1e7 runs, with fewer repeats, took steps 3.5 times the 1e6 runs'): about 11 steps of the
#: slider (1/1000 of its range each) for the slider, half that for the line drag
SLIDER_STEP = 0.1 / 14
DRAG_STEP = 0.05 / 14
#: the napari-alone peer (one 3D Points layer) runs up to this many picks
NATIVE_MAX = 2_000_000


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _table(n: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_mics = max(1, n // 1000)
    codes = np.repeat(np.arange(n_mics), int(np.ceil(n / n_mics)))[:n]
    keys = np.array([f"mic_{i:05d}" for i in range(n_mics)], dtype=object)
    defocus = np.linspace(8000, 30000, n_mics)[codes]
    gain = 0.6 + defocus / 40000
    x = gain * rng.normal(0.3, 0.1, n)
    y = gain * rng.lognormal(3.0, 0.6, n)
    t = pd.DataFrame({"micrograph": pd.Categorical(keys[codes]), "micrograph_name": pd.Categorical(keys[codes] + ".mrc"),
                      "x_px": rng.uniform(0, 4000, n), "y_px": rng.uniform(0, 4000, n), "defocus_A": defocus,
                      "pixel_size_A": 1.0, "ncc": x, "power": y})
    t.attrs["source"] = "bench.star"
    return t, list(keys)


class Before:
    """The widget at the old commit (Qt controls)."""

    def __init__(self, w):
        self.w = w

    def slider_step(self, v):
        self.w.x_slider.setValue(v)

    def x_min(self):
        return self.w.thresholds.x_min

    def canvas(self):
        return self.w.hist_canvas.canvas, self.w._plot.ax

    def calibrate(self, on):
        self.w.cal_x_check.setChecked(on)

    def n_kept(self):
        return self.w.result.n_kept


class After(Before):
    """The magicgui widget."""

    def slider_step(self, v):
        r = self.w.thresholds.x_range
        r.value = (v, r.max)

    def x_min(self):
        return self.w.inspection.thresholds.x_min

    def canvas(self):
        return self.w.thresholds.canvas.canvas, self.w.thresholds._plot.ax

    def calibrate(self, on):
        self.w.calibration.form.calibrate_x.value = on
        cal = self.w.calibration
        if getattr(cal, "fitting", False):  # large tables: the lines are fitted in a thread
            cal.wait()


def measure(n: int, repeats: int) -> dict:
    """Run in the child process: open, then the interactions; returns the numbers."""
    import numpy as np
    import napari
    from matplotlib.backend_bases import MouseEvent
    from qtpy.QtWidgets import QApplication

    import napari_cryodiag

    new = Path(napari_cryodiag.__file__).parent.joinpath("widgets", "inspect_picks").is_dir()
    table, keys = _table(n)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1800, 1100)
    import dask.array as da

    img = viewer.add_image(da.zeros((len(keys), 64, 64), chunks=(1, 64, 64), dtype=np.float32), name="micrographs",
                     scale=(1, 62.5, 62.5), contrast_limits=(0, 1),
                     metadata={"cryodiag": {"kind": "micrographs", "paths": [], "keys": keys, "pixel_size_A": 1.0}})

    def settle():
        for _ in range(3):
            QApplication.processEvents()

    # the peer: napari alone, without the plugin, showing the same picks the way napari itself
    # would, as one 3D Points layer (micrograph, y, x) sliced by napari; its next-micrograph step
    # is the floor of ours (the canvas, the layer list's thumbnails, the window's composites)
    t_native = [float("nan")]
    if n <= NATIVE_MAX:  # (at 1e7 napari's own layer would add ~1 GB to the peak memory reported)
        kept_colour = np.where((table["ncc"].to_numpy() >= np.median(table["ncc"]))[:, None],
                               np.array([[0.2, 0.9, 0.4, 1.0]]), np.array([[0.9, 0.3, 0.3, 0.35]]))
        native = viewer.add_points(np.column_stack([table["micrograph"].cat.codes.to_numpy(), table["y_px"].to_numpy(),
                                                    table["x_px"].to_numpy()]), size=90, face_color="transparent",
                                   border_color=kept_colour, border_width=0.05, name="napari points")
        del kept_colour
        settle()
        start = viewer.dims.current_step  # napari's own start (the middle micrograph), restored below
        t_native = []
        for k in range(repeats):
            t = time.perf_counter()
            viewer.dims.set_current_step(0, 1 + (k % (len(keys) - 1)))
            settle()
            t_native.append(time.perf_counter() - t)
        viewer.layers.remove(native)
        del native
        viewer.dims.current_step = start
        settle()
    if new:
        from napari.layers import Layer

        from napari_cryodiag.widgets.layer_data import picks_layer_data
        from napari_cryodiag.widgets.picks_layer import link_viewer
    else:
        from napari.layers import Layer

        from napari_cryodiag._reader import picks_layer_data
        from napari_cryodiag.picks_layer import link_viewer
    viewer.add_layer(Layer.create(*picks_layer_data(table, "bench.star", name="picks")))
    link_viewer(viewer)
    settle()
    t0 = time.perf_counter()
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

    w = InspectPicksWidget(viewer)
    viewer.window.add_dock_widget(w, name="Inspect Picks", area="right")
    settle()
    t_open = time.perf_counter() - t0
    a = After(w) if new else Before(w)

    calls = {}  # median time of the call alone (the plugin's Python), by label

    def timed(fn, values, label=None):
        ts, cs = [], []
        for v in values:
            t = time.perf_counter()
            fn(v)
            c = time.perf_counter()
            settle()
            ts.append(time.perf_counter() - t)
            cs.append(c - t)
        if label:
            calls[label] = 1e3 * statistics.median(cs)
        return statistics.median(ts)

    # the floor of this window: one label's text changed and the window painted (under Xvfb the
    # whole window, with the viewer's OpenGL canvas, is composited in software on every paint)
    from qtpy.QtWidgets import QLabel

    probe = QLabel("0", w)
    probe.show()
    t_floor = timed(lambda i: probe.setText(str(i)), range(repeats))
    # the viewer canvas's floor: the micrograph layer's opacity changed, nothing sliced (under Xvfb
    # the OpenGL canvas is read back and the window composited in software): no step that shows
    # other picks can be faster
    t_canvas = timed(lambda v: setattr(img, "opacity", v), [0.9 if k % 2 else 1.0 for k in range(repeats)])

    # the threshold steps start at the NCC median, where each step moves picks of the shown
    # micrograph between kept and rejected (from the lowest NCC, as before stop 18, a step changed
    # no pick on screen, and the canvas did not repaint); each step's count of shown picks that
    # changed colour is reported beside its time
    picks = viewer.layers["picks"]
    x_mid = float(np.median(table["ncc"]))
    changed = []

    def watched(step):
        def run(v):
            before = np.array(picks.border_color, copy=True)
            step(v)
            after = np.asarray(picks.border_color)
            changed.append(int(np.any(before != after, axis=1).sum()) if before.shape == after.shape else len(after))
        return run

    steps = list(x_mid + SLIDER_STEP * np.arange(repeats))
    t_slider = timed(watched(a.slider_step), steps, "slider")
    changed_slider = statistics.median(changed)
    canvas, ax = a.canvas()
    y_mid = float(np.mean(ax.get_ylim()))
    if ax.get_yscale() == "log":
        y_mid = float(np.sqrt(np.prod(ax.get_ylim())))

    def mouse(name, xd):
        px, py = ax.transData.transform((xd, y_mid))
        canvas.callbacks.process(name, MouseEvent(name, canvas, px, py, button=1))

    x1 = a.x_min()
    mouse("button_press_event", x1)
    changed.clear()
    t_drag = timed(watched(lambda v: mouse("motion_notify_event", v)), list(x1 - DRAG_STEP * np.arange(repeats)),
                   "drag")
    changed_drag = statistics.median(changed)
    mouse("button_release_event", x1 - DRAG_STEP * (repeats - 1))
    t_next = timed(lambda i: viewer.dims.set_current_step(0, int(i)), [1 + (k % (len(keys) - 1)) for k in range(repeats)],
                   "next")
    ts_on, ts_off = [], []
    for _ in range(max(3, repeats // 5)):
        t = time.perf_counter()
        a.calibrate(True)
        settle()
        ts_on.append(time.perf_counter() - t)
        t = time.perf_counter()
        a.calibrate(False)
        settle()
        ts_off.append(time.perf_counter() - t)
    # the slider again once the dock has been idle for 3 s: the incremental threshold steps sort
    # each feature in a background thread after opening; until that sort is done a step
    # re-judges every pick (the first measurement above), afterwards only the picks it crosses
    t_idle = time.perf_counter() + 3.0
    while time.perf_counter() < t_idle:
        settle()
        time.sleep(0.02)
    changed.clear()
    t_slider_idle = timed(watched(a.slider_step), list(x_mid - 0.1 + SLIDER_STEP * np.arange(repeats)), "slider_idle")
    changed_idle = statistics.median(changed)
    out = dict(n=n, n_micrographs=len(keys), open_s=t_open, vmhwm_mb=_vmhwm_mb(), slider_ms=1e3 * t_slider,
               slider_idle_ms=1e3 * t_slider_idle,
               drag_ms=1e3 * t_drag, next_micrograph_ms=1e3 * t_next,
               napari_next_ms=1e3 * statistics.median(t_native), calibration_on_ms=1e3 * statistics.median(ts_on),
               calibration_off_ms=1e3 * statistics.median(ts_off), kept=int(a.n_kept()),
               shown_changed_slider=changed_slider, shown_changed_drag=changed_drag, shown_changed_idle=changed_idle,
               paint_floor_ms=1e3 * t_floor, canvas_floor_ms=1e3 * t_canvas, **{f"{k}_call_ms": v for k, v in calls.items()})
    viewer.close()
    return out


def _tree_at(commit: str, dest: Path) -> Path:
    """The package's source at ``commit`` (git archive), for the "before" runs."""
    tar = dest / "src.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], stdout=f, check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest / "src"


def _child(src: Path, n: int, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, __file__, "--child", "--n", str(n), "--repeats", str(repeats)], env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=1e6, help="picks for the side-by-side runs")
    ap.add_argument("--n-big", type=float, default=1e7, help="picks for the current code alone (0: skip)")
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--before", default="141f820", help="commit of the widget before the magicgui rebuild")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(int(args.n), args.repeats)))
        return 0
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} steps")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before_src = _tree_at(args.before, Path(tmp))
        for label, src in (("before", before_src), ("after", ROOT / "src")):
            r = _child(src, int(args.n), args.repeats)
            r["code"] = label
            rows.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    if args.n_big:
        r = _child(ROOT / "src", int(args.n_big), max(5, args.repeats // 3))
        r["code"] = "after"
        rows.append(r)
    keys = ["open_s", "vmhwm_mb", "slider_ms", "slider_idle_ms", "drag_ms", "next_micrograph_ms", "napari_next_ms",
            "calibration_on_ms",
            "calibration_off_ms", "paint_floor_ms", "canvas_floor_ms"]
    print("| code | picks | open (s) | peak memory (MB) | slider step (ms) | slider step, dock idle 3 s (ms) "
          "| line drag step (ms) | next micrograph (ms) | napari alone: next micrograph (ms) | calibration on (ms) | calibration off (ms) "
          "| one label repainted (ms) | viewer canvas repainted (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['code']} | {r['n']:.0e} | " + " | ".join(f"{r[k]:.3g}" for k in keys) + " |")
    print("\ntime in the call alone (before the window paints), ms: " + "; ".join(
        f"{r['code']} {r['n']:.0e}: " + ", ".join(f"{k[:-8]} {r[k]:.3g}" for k in r if k.endswith("_call_ms"))
        for r in rows))
    print("\nshown picks that changed colour per step (median): " + "; ".join(
        f"{r['code']} {r['n']:.0e}: slider {r['shown_changed_slider']:g}, drag {r['shown_changed_drag']:g}, "
        f"idle slider {r['shown_changed_idle']:g}" for r in rows))
    b, a = rows[0], rows[1]
    print("\nratios after / before at {:.0e} picks: ".format(args.n) + ", ".join(
        f"{k} {a[k] / b[k]:.2f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
