"""Threshold updates and histogram recomputes: pre-binned bincount vs np.histogram2d.

For 1e5, 1e6 and 1e7 picks (1,000 picks per micrograph) it times, in the same run:

- *build*: computing the bin codes once (``PickHistogram.from_values``) vs one
  ``np.histogram2d`` of all picks (what a plot without pre-binning pays on every redraw);
- *threshold update*: what a slider/line move costs: keep-mask + kept/total per micrograph +
  the histogram of the kept picks, with ``np.bincount(codes[mask])`` vs ``np.histogram2d`` of
  the kept picks (the mask and per-micrograph counts are the same code in both);
- *selection histogram*: the histogram of one micrograph's picks (shown micrograph) and of all
  picks, bincount vs histogram2d;
- *widget update* at 1e6 picks (``--widget``, needs a display; run under ``xvfb-run`` when
  there is none): ``InspectPicksWidget.set_threshold`` end to end (mask, counts, the shown
  micrograph's points via the controller's ``set_kept``, the label, the histogram artists),
  plus a synchronous Agg redraw of the histogram canvas, timed separately.

Run: ``.venv/bin/python benchmarks/bench_pick_histogram.py [--sizes 1e5,1e6,1e7] [--no-widget]``.
Prints a Markdown table (medians of ``--repeats`` runs) of times and ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_mics = max(1, n // 1000)
    x = rng.normal(0.3, 0.1, n)
    y = rng.lognormal(3.0, 0.6, n)
    x[rng.random(n) < 1e-4] = np.nan
    codes = np.repeat(np.arange(n_mics), int(np.ceil(n / n_mics)))[:n]
    return x, y, codes, n_mics


def bench_core(sizes, repeats: int, bins: int = 100):
    from napari_cryodiag.compute.picks.histogram import PickHistogram
    from napari_cryodiag.compute.picks.thresholds import ThresholdEvaluator, Thresholds

    rows = []
    for n in sizes:
        x, y, codes, n_mics = _data(n)
        r = max(3, repeats if n <= 1_000_000 else max(3, repeats // 2))
        t_build = _median_time(lambda: PickHistogram.from_values(x, y, bins=bins, log_y=True), max(3, r // 2))
        h = PickHistogram.from_values(x, y, bins=bins, log_y=True)
        ly_edges = np.log10(h.y_edges)
        ok = np.isfinite(x) & np.isfinite(y) & (y > 0)

        def h2d_all():
            np.histogram2d(np.log10(y[ok]), x[ok], bins=[ly_edges, h.x_edges])

        t_h2d_all = _median_time(h2d_all, max(3, r // 2))
        ev = ThresholdEvaluator(x, y, codes, n_mics)
        rng = np.random.default_rng(1)
        ths = [Thresholds(x_min=float(v), y_min=10.0, y_max=60.0) for v in rng.uniform(0.2, 0.4, 64)]
        it = iter(ths * 100)

        def update_bincount():
            res = ev.evaluate(next(it))
            h.counts(res.mask)

        def update_h2d():
            res = ev.evaluate(next(it))
            m = res.mask
            np.histogram2d(np.log10(y[m]), x[m], bins=[ly_edges, h.x_edges])

        def mask_only():
            ev.evaluate(next(it))

        t_upd_b = _median_time(update_bincount, r)
        t_upd_h = _median_time(update_h2d, r)
        t_mask = _median_time(mask_only, r)
        shown = np.flatnonzero(codes == n_mics // 2)
        t_sel_b = _median_time(lambda: h.counts(shown), r)
        t_sel_h = _median_time(
            lambda: np.histogram2d(np.log10(y[shown]), x[shown], bins=[ly_edges, h.x_edges]), r
        )
        t_all_b = _median_time(lambda: h.counts(), r)
        # same numbers from both routes
        res = ev.evaluate(ths[0])
        m = res.mask & ok & (x >= h.x_edges[0]) & (x <= h.x_edges[-1]) & (y >= h.y_edges[0]) & (y <= h.y_edges[-1])
        h_ref, _, _ = np.histogram2d(np.log10(y[m]), x[m], bins=[ly_edges, h.x_edges])
        hb = PickHistogram.from_values(x, y, x_edges=h.x_edges, y_edges=h.y_edges, log_y=True, clip=False)
        same = bool(np.array_equal(hb.counts(res.mask), h_ref.astype(np.int64)))
        rows.append(dict(
            n=n, n_mics=n_mics, build=t_build, h2d_all=t_h2d_all, upd_b=t_upd_b, upd_h=t_upd_h,
            mask=t_mask, sel_b=t_sel_b, sel_h=t_sel_h, all_b=t_all_b, same=same,
        ))
        print(f"  n={n:.0e}: update {t_upd_b * 1e3:.1f} ms (bincount) vs {t_upd_h * 1e3:.1f} ms (histogram2d)",
              file=sys.stderr, flush=True)
        del x, y, codes, h, hb, ev
    return rows


def print_core(rows):
    print("| picks | bin codes once | histogram2d, all picks | threshold update, bincount | "
          "threshold update, histogram2d | ratio | of which mask + per-micrograph counts | "
          "one micrograph's histogram, bincount / histogram2d | all picks, bincount | bincount = histogram2d |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']:.0e} | {r['build'] * 1e3:.0f} ms | {r['h2d_all'] * 1e3:.0f} ms | "
            f"{r['upd_b'] * 1e3:.1f} ms | {r['upd_h'] * 1e3:.1f} ms | {r['upd_h'] / r['upd_b']:.1f}x | "
            f"{r['mask'] * 1e3:.1f} ms | {r['sel_b'] * 1e6:.0f} µs / {r['sel_h'] * 1e6:.0f} µs "
            f"({r['sel_h'] / r['sel_b']:.1f}x) | {r['all_b'] * 1e3:.1f} ms "
            f"({r['h2d_all'] / r['all_b']:.0f}x faster than histogram2d) | {r['same']} |"
        )


def bench_widget(n: int, repeats: int):
    """End-to-end widget update at ``n`` picks (1,000 per micrograph), needs a display."""
    import napari
    import pandas as pd
    from qtpy.QtWidgets import QApplication

    from napari_cryodiag._reader import picks_layer_data
    from napari_cryodiag.picks_layer import link_viewer
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

    x, y, codes, n_mics = _data(n)
    rng = np.random.default_rng(2)
    keys = np.array([f"mic_{i:05d}" for i in range(n_mics)], dtype=object)
    table = pd.DataFrame({
        "micrograph": keys[codes], "x_px": rng.uniform(0, 4000, n), "y_px": rng.uniform(0, 4000, n),
        "defocus_A": np.linspace(8000, 30000, n_mics)[codes], "pixel_size_A": 1.0, "ncc": x, "power": y,
    })
    table["micrograph"] = table["micrograph"].astype(str)
    table.attrs["source"] = "bench.star"
    viewer = napari.Viewer(show=True)
    # small stand-in images (64² drawn at 62.5x so that picks over 4000 px land on them); the
    # pixel size in the metadata equals the picks' so that the layers share one scale
    viewer.add_image(
        np.zeros((n_mics, 64, 64), np.float32), name="micrographs", scale=(1, 62.5, 62.5),
        metadata={"cryodiag": {"kind": "micrographs", "paths": list(keys), "keys": list(keys), "pixel_size_A": 1.0}},
    )
    data, kwargs, _ = picks_layer_data(table, "bench.star", name="picks")
    viewer.add_points(data, **kwargs)
    link_viewer(viewer)
    t = time.perf_counter()
    w = InspectPicksWidget(viewer)
    viewer.window.add_dock_widget(w, name="Inspect Picks")
    QApplication.processEvents()
    t_open = time.perf_counter() - t
    vals = iter(np.tile(np.linspace(0.2, 0.4, 50), 100))
    QApplication.processEvents()

    def update():
        w.set_threshold("x_min", float(next(vals)))

    def update_and_draw():
        w.set_threshold("x_min", float(next(vals)))
        w.hist_canvas.canvas.draw()  # synchronous Agg render of the histogram

    for _ in range(3):
        update_and_draw()
    t_upd = _median_time(update, repeats)
    t_upd_draw = _median_time(update_and_draw, repeats)
    t_draw = _median_time(lambda: w.hist_canvas.canvas.draw(), repeats)
    # a drag of the NCC line on the histogram: mouse events through matplotlib, blitted redraws
    from matplotlib.backend_bases import MouseEvent

    canvas, ax = w.hist_canvas.canvas, w._plot.ax
    t0 = w.thresholds
    ymid = float(np.sqrt(t0.y_min * t0.y_max)) if w.inspection.log_y else 0.5 * (t0.y_min + t0.y_max)

    def mouse(name, xd):
        px, py = ax.transData.transform((xd, ymid))
        canvas.callbacks.process(name, MouseEvent(name, canvas, px, py, button=1))

    mouse("button_press_event", t0.x_min)
    drag_x = iter(np.tile(np.linspace(t0.x_min, t0.x_min + 0.1, 40), 100))
    t_drag = _median_time(lambda: mouse("motion_notify_event", float(next(drag_x))), repeats)
    mouse("button_release_event", t0.x_min)
    w.hist_of_combo.setCurrentText("kept picks")
    mouse("button_press_event", w.thresholds.x_min)
    t_drag_kept = _median_time(lambda: mouse("motion_notify_event", float(next(drag_x))), repeats)
    mouse("button_release_event", w.thresholds.x_min)
    t_upd_kept = _median_time(update, repeats)
    n_shown = len(w.controller.rows_shown())
    # the parts: evaluation (mask + counts) and the controller's redraw of the shown points
    t_eval = _median_time(lambda: w.inspection.evaluate(), repeats)
    mask = w.result.mask
    t_set_kept = _median_time(lambda: w.controller.set_kept(mask), repeats)
    viewer.close()
    return dict(n=n, n_mics=n_mics, open=t_open, update=t_upd, update_draw=t_upd_draw, draw=t_draw,
                update_kept=t_upd_kept, n_shown=n_shown, drag=t_drag, drag_kept=t_drag_kept,
                eval=t_eval, set_kept=t_set_kept)


def print_widget(r):
    print()
    print(f"Widget, {r['n']:.0e} picks on {r['n_mics']:,} micrographs ({r['n_shown']} picks on the shown one): "
          f"opening the widget {r['open']:.2f} s; one threshold change (mask, counts overall and per micrograph, "
          f"shown micrograph's points via set_kept, label, histogram artists) {r['update'] * 1e3:.0f} ms; "
          f"with the histogram of kept picks re-counted {r['update_kept'] * 1e3:.0f} ms; plus a synchronous "
          f"canvas redraw {r['update_draw'] * 1e3:.0f} ms (redraw alone {r['draw'] * 1e3:.0f} ms; in the GUI it "
          f"is coalesced by draw_idle). Dragging the NCC line (one mouse-move event, everything above plus "
          f"the blitted redraw of lines and title): {r['drag'] * 1e3:.0f} ms; with the kept-picks histogram "
          f"re-counted and redrawn on every move: {r['drag_kept'] * 1e3:.0f} ms. Parts: mask + counts "
          f"{r['eval'] * 1e3:.0f} ms; the controller's set_kept (napari Points data, features, sizes, colours "
          f"of the shown micrograph) {r['set_kept'] * 1e3:.0f} ms.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--no-widget", action="store_true")
    ap.add_argument("--widget-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--widget-n", type=float, default=1e6)
    args = ap.parse_args(argv)
    if args.widget_only:
        print_widget(bench_widget(int(args.widget_n), args.repeats))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs; medians of {args.repeats} runs\n")
    print_core(bench_core(sizes, args.repeats))
    sys.stdout.flush()
    if not args.no_widget:
        cmd = [sys.executable, __file__, "--widget-only", "--repeats", str(args.repeats),
               "--widget-n", str(args.widget_n)]
        if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            cmd = ["xvfb-run", "-a"] + cmd
        subprocess.run(cmd, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
