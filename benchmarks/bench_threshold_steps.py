"""One threshold step (a slider or a dragged line) at 1e6 and 1e7 picks: the evaluator alone.

What a step costs in ``ThresholdEvaluator.evaluate``, without the window: the NCC minimum moved by
``bench_inspect_picks.SLIDER_STEP`` from the median, up (tightening: picks only leave) and down
(loosening: the crossed picks are judged again against the power bound), once the background sorts
are done. Side by side in the same process:

- *full*: a full evaluation of every pick (what a step costs without the sorted features);
- *gather*: the incremental step as it was until stop 22, reading the crossed picks' power and
  micrograph codes by a gather from the full-length arrays (``y[rows]``, ``codes[rows]``);
- *current*: the evaluator, which keeps both in each feature's sorted order and reads slices.

Every step's mask and per-micrograph counts are checked against the full evaluation. The window's
part of a step (painting) is measured by ``bench_inspect_picks.py``.

Run: ``.venv/bin/python benchmarks/bench_threshold_steps.py [--sizes 1e6,1e7] [--repeats 21]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _gather_step(ev, t, last, old: float, new: float):
    """The x_min step of the evaluator before stop 22: the other feature and the codes gathered."""
    feat = ev._sorted["x"]
    i, j = feat.span(old, new)
    rows, vals = feat.order[i:j], feat.sorted[i:j]
    before = last.mask[rows]
    if new > old:
        now = before & (vals >= new)
    else:
        now = vals >= new
        if t.x_max is not None:
            now &= vals <= t.x_max
        ov = ev.y[rows]
        if t.y_min is not None:
            now &= ov >= t.y_min
        if t.y_max is not None:
            now &= ov <= t.y_max
    m = last.mask.copy()
    m[rows] = now
    gained, lost = now & ~before, before & ~now
    kept = last.kept_per_micrograph.copy()
    if gained.any():
        kept += np.bincount(ev.micrograph_codes[rows[gained]], minlength=ev.n_micrographs)
    if lost.any():
        kept -= np.bincount(ev.micrograph_codes[rows[lost]], minlength=ev.n_micrographs)
    return m, kept


def run(n: int, repeats: int) -> dict:
    import bench_inspect_picks as bip

    from napari_cryodiag.compute.picks.thresholds import ThresholdEvaluator, Thresholds, micrograph_codes

    table, _ = bip._table(n)
    codes, names = micrograph_codes(table)
    ev = ThresholdEvaluator(table["ncc"].to_numpy(), table["power"].to_numpy(), codes, len(names), sort_at_start=True)
    assert all(f.wait(600) for f in ev._sorted.values())
    x0 = float(np.median(table["ncc"]))
    y_min = float(np.percentile(table["power"], 20))
    values = [x0 + bip.SLIDER_STEP * k for k in range(repeats)]
    out = {"n": n, "crossed_per_step": int(np.subtract(*ev._sorted["x"].span(values[1], values[0])[::-1]))}
    for direction, seq in (("tighten", values), ("loosen", values[::-1])):
        t = Thresholds(x_min=seq[0], y_min=y_min)
        last = ev.evaluate(t)
        cur, gat, full = [], [], []
        for old, new in zip(seq[:-1], seq[1:]):
            t = Thresholds(x_min=new, y_min=y_min)
            s = time.perf_counter()
            m, kept = _gather_step(ev, t, last, old, new)
            gat.append(time.perf_counter() - s)
            s = time.perf_counter()
            res = ev.evaluate(t)
            cur.append(time.perf_counter() - s)
            s = time.perf_counter()
            ref = ev._full(t, None)
            full.append(time.perf_counter() - s)
            assert np.array_equal(res.mask, ref.mask) and np.array_equal(m, ref.mask)
            assert np.array_equal(res.kept_per_micrograph, ref.kept_per_micrograph)
            assert np.array_equal(kept, ref.kept_per_micrograph)
            last = res
        out[direction] = {k: 1e3 * statistics.median(v) for k, v in (("full", full), ("gather", gat), ("current", cur))}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args(argv)
    print("| picks | crossed per step | step | full (ms) | gather (ms) | current (ms) | current / gather |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        r = run(int(float(size)), args.repeats)
        for d in ("tighten", "loosen"):
            v = r[d]
            print(f"| {r['n']:.0e} | {r['crossed_per_step']:,} | {d} | {v['full']:.1f} | {v['gather']:.1f} | "
                  f"{v['current']:.1f} | {v['current'] / v['gather']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
