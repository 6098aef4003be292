"""Threshold updates and histogram recomputes: pre-binned bincount vs np.histogram2d.

For 1e5, 1e6 and 1e7 picks (1,000 picks per micrograph) it times, in the same run:

- *build*: computing the bin codes once (``PickHistogram.from_values``) vs one
  ``np.histogram2d`` of all picks (what a plot without pre-binning pays on every redraw);
- *threshold update*: what a slider/line move costs: keep-mask + kept/total per micrograph +
  the histogram of the kept picks, with ``np.bincount(codes[mask])`` vs ``np.histogram2d`` of
  the kept picks (the mask and per-micrograph counts are the same code in both);
- *selection histogram*: the histogram of one micrograph's picks (shown micrograph) and of all
  picks, bincount vs histogram2d;
The widget end to end (threshold drags, micrograph changes, calibration) is measured by
``bench_inspect_picks.py`` in a real window.

Run: ``.venv/bin/python benchmarks/bench_pick_histogram.py [--sizes 1e5,1e6,1e7]``.
Prints a Markdown table (medians of ``--repeats`` runs) of times and ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs; medians of {args.repeats} runs\n")
    print_core(bench_core(sizes, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
