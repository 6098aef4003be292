"""Suggested pick thresholds: time of the current rule vs the earlier one, same run.

The current rule (``compute.pick_thresholds.suggest_thresholds``): a band on the main mode of
log power (shortest half, clipped median/MAD on at most 200k values), then a two-Gaussian fit
of NCC inside the band (EM on a 512-bin histogram) deciding between a cut between the modes
and an outlier bound. The earlier rule (baseline, re-implemented here as it was): Otsu's
threshold of NCC, then a median ± 3 MAD band (iteratively clipped) of log power among the
picks passing it. Picks: 90 % particles (NCC 0.35 ± 0.1, power lognormal(3, 0.3)), 10 %
empty ice (NCC 0.1 ± 0.1, power 0.45×).

Run: ``.venv/bin/python benchmarks/bench_pick_suggest.py [--sizes 1e5,1e6,1e7] [--repeats 3]``.
Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from napari_cryodiag.compute.picks.thresholds import otsu_threshold, suggest_thresholds


def earlier_rule(x, y, k=3.0, iterations=5):
    x_min = otsu_threshold(x)
    t = np.log10(y[(x >= x_min) & np.isfinite(y) & (y > 0)])
    sel = t
    lo = hi = 0.0
    for _ in range(iterations):
        med = np.median(sel)
        mad = 1.4826 * np.median(np.abs(sel - med))
        lo, hi = med - k * mad, med + k * mad
        new = t[(t >= lo) & (t <= hi)]
        if new.size == sel.size or new.size < 3:
            break
        sel = new
    return x_min, 10**lo, 10**hi


def _median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    suggest_thresholds(np.arange(10.0), np.arange(1.0, 11.0))  # imports (scipy.stats) outside the timing
    print("| picks | current rule | earlier rule (Otsu on NCC first) | ratio | particles kept, current / earlier |")
    print("|---|---|---|---|---|")
    for n in (int(float(s)) for s in args.sizes.split(",")):
        n_e = n // 10
        x = np.concatenate([rng.normal(0.35, 0.1, n - n_e), rng.normal(0.1, 0.1, n_e)])
        y = np.concatenate([rng.lognormal(3, 0.3, n - n_e), 0.45 * rng.lognormal(3, 0.3, n_e)])
        t_new = _median_time(lambda: suggest_thresholds(x, y), args.repeats)
        t_old = _median_time(lambda: earlier_rule(x, y), args.repeats)
        t = suggest_thresholds(x, y)
        kept_new = t.mask_xy(x, y)[: n - n_e].mean()
        xm, lo, hi = earlier_rule(x, y)
        kept_old = ((x >= xm) & (y >= lo) & (y <= hi))[: n - n_e].mean()
        print(f"| {n:.0e} | {1e3 * t_new:.0f} ms | {1e3 * t_old:.0f} ms | {t_new / t_old:.2f}× "
              f"| {100 * kept_new:.1f} % / {100 * kept_old:.1f} % |")


if __name__ == "__main__":
    main()
