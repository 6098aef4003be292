"""Pre-binned 2D histogram of pick features: counts match np.histogram2d, NaN handling, log axis."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.picks.histogram import PickHistogram, robust_edges
from napari_cryodiag.errors import CryodiagInputError


def _scores(n=20_000, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.1, n)
    y = rng.lognormal(3.0, 0.6, n)
    return x, y


def test_counts_equal_histogram2d_for_any_selection():
    x, y = _scores()
    xe = np.linspace(x.min() - 1e-9, x.max() + 1e-9, 41)  # all values inside: no clipping involved
    ye = np.linspace(y.min() - 1e-9, y.max() + 1e-9, 31)
    h = PickHistogram.from_values(x, y, x_edges=xe, y_edges=ye)
    assert h.shape == (30, 40)
    ref, _, _ = np.histogram2d(y, x, bins=[ye, xe])
    np.testing.assert_array_equal(h.counts(), ref.astype(np.int64))
    rng = np.random.default_rng(5)
    for mask in (x > 0.35, (y < 20) & (x < 0.2), rng.random(x.size) < 0.1):
        ref, _, _ = np.histogram2d(y[mask], x[mask], bins=[ye, xe])
        np.testing.assert_array_equal(h.counts(mask), ref.astype(np.int64))
    idx = np.flatnonzero(x > 0.4)  # an index array works as a selection too
    ref, _, _ = np.histogram2d(y[idx], x[idx], bins=[ye, xe])
    np.testing.assert_array_equal(h.counts(idx), ref.astype(np.int64))


def test_nan_scores_fall_in_no_bin_and_are_counted():
    x, y = _scores(5000)
    x[:17] = np.nan
    y[10:30] = np.nan  # overlaps the x NaNs on rows 10..16
    y[40] = np.inf
    h = PickHistogram.from_values(x, y)
    assert h.n_missing == 30 + 1  # rows 0..29 and 40
    counts, unbinned = h.counts_and_unbinned()
    assert counts.sum() == 5000 - 31
    assert unbinned == 31
    # a selection of NaN rows only gives an empty histogram
    assert h.counts(np.arange(17)).sum() == 0
    assert h.summary()["n_missing"] == 31


def test_values_outside_robust_edges_are_clipped_or_dropped_and_counted():
    x, y = _scores(10_000)
    x[0], y[1] = 50.0, -1e6  # far outliers
    h = PickHistogram.from_values(x, y, bins=50)  # default: 0.5 - 99.5 % range
    lo, hi = np.percentile(x, [0.5, 99.5])
    assert h.x_edges[0] == pytest.approx(lo) and h.x_edges[-1] == pytest.approx(hi)
    outside = (x < h.x_edges[0]) | (x > h.x_edges[-1]) | (y < h.y_edges[0]) | (y > h.y_edges[-1])
    assert h.n_outside == outside.sum() > 0
    assert h.counts().sum() == 10_000  # clipped into the edge bins
    assert h.counts()[:, -1].sum() >= 1 and h.counts()[h.codes[0] // 50, -1] >= 1  # x=50 in last column
    h2 = PickHistogram.from_values(x, y, bins=50, clip=False)
    assert h2.counts().sum() == 10_000 - outside.sum()
    inside = ~outside
    ref, _, _ = np.histogram2d(y[inside], x[inside], bins=[h2.y_edges, h2.x_edges])
    np.testing.assert_array_equal(h2.counts(), ref.astype(np.int64))


def test_log_axis_bins_are_uniform_in_log_and_skip_non_positive():
    x, y = _scores(8000)
    y[:5] = 0.0
    y[5:9] = -3.0
    h = PickHistogram.from_values(x, y, bins=(20, 25), log_y=True, clip=False)
    assert h.n_missing == 9
    r = np.diff(np.log10(h.y_edges))
    np.testing.assert_allclose(r, r[0], rtol=1e-9)
    ok = (y > 0) & (y >= h.y_edges[0]) & (y <= h.y_edges[-1]) & (x >= h.x_edges[0]) & (x <= h.x_edges[-1])
    ref, _, _ = np.histogram2d(np.log10(y[ok]), x[ok], bins=[np.log10(h.y_edges), h.x_edges])
    np.testing.assert_array_equal(h.counts(), ref.astype(np.int64))


def test_robust_edges_degenerate_and_empty_inputs():
    e = robust_edges(np.full(100, 2.0), 10)
    assert e[0] < 2.0 < e[-1] and e.size == 11
    e = robust_edges(np.array([np.nan, np.nan]), 4)
    assert np.all(np.diff(e) > 0)
    e = robust_edges(np.full(10, 5.0), 4, log=True)
    assert e[0] < 5.0 < e[-1] and e[0] > 0


def test_bad_input_is_reported():
    with pytest.raises(CryodiagInputError, match="differ in length"):
        PickHistogram.from_values(np.zeros(3), np.zeros(4))
    with pytest.raises(CryodiagInputError, match="increase"):
        PickHistogram.from_values(np.zeros(3), np.zeros(3), x_edges=[1.0, 1.0, 2.0])
    with pytest.raises(CryodiagInputError, match="positive"):
        PickHistogram.from_values(np.ones(3), np.ones(3), y_edges=[-1.0, 1.0], log_y=True)


def test_histogram_figure_updates_in_place():
    from matplotlib.figure import Figure

    from napari_cryodiag.compute.picks.thresholds import Thresholds
    from napari_cryodiag.plots.pick_histogram import plot_pick_histogram

    x, y = _scores(4000)
    h = PickHistogram.from_values(x, y, bins=30, log_y=True)
    t = Thresholds(x_min=0.3, y_min=15.0, y_max=40.0)
    m = t.mask_xy(x, y)
    fig = Figure()
    p = plot_pick_histogram(fig, h, thresholds=t, n_kept=int(m.sum()), n_total=x.size)
    assert p.ax.get_yscale() == "log"
    assert p.lines["x_min"].get_visible() and not p.lines["x_max"].get_visible()
    assert p.lines["x_min"].get_xdata()[0] == pytest.approx(0.3)
    assert p.lines["y_max"].get_ydata()[0] == pytest.approx(40.0)
    assert f"kept {int(m.sum()):,} / 4,000" in p.ax.get_title()
    kept_counts = h.counts(m)
    p.set_counts(kept_counts)
    shown = p.mesh.get_array()
    assert np.ma.count_masked(shown) == np.count_nonzero(kept_counts == 0)  # empty bins blank
    np.testing.assert_array_equal(np.ma.filled(shown, 0).reshape(h.shape), kept_counts)
    t2 = Thresholds(x_min=0.1, polygon=[(0.2, 10.0), (0.5, 10.0), (0.5, 60.0)], polygon_log_y=True)
    p.set_thresholds(t2)
    assert not p.lines["y_min"].get_visible()
    assert p.polygon is not None and p.polygon.get_visible()
    np.testing.assert_allclose(p.polygon.get_xy()[:3], np.asarray(t2.polygon))
    fig.canvas.draw()  # renders without error


def test_the_view_widens_to_a_threshold_outside_the_picks():
    """A suggested minimum below every pick is drawn inside the view, so the user can drag it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from napari_cryodiag.compute.picks.histogram import PickHistogram
    from napari_cryodiag.compute.picks.thresholds import Thresholds
    from napari_cryodiag.plots.pick_histogram import plot_pick_histogram

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.1, 0.6, 5000), rng.lognormal(8, 0.5, 5000)
    hist = PickHistogram.from_values(x, y, bins=40, log_y=True)
    t = Thresholds(x_feature="ncc", y_feature="power", x_min=-0.1, y_max=float(y.max()) * 10)
    plot = plot_pick_histogram(Figure(), hist, thresholds=t, x_label="ncc", y_label="power")
    lo, hi = plot.ax.get_xlim()
    assert lo < -0.1 < hi and hi >= hist.x_edges[-1]
    ylo, yhi = plot.ax.get_ylim()
    assert yhi > float(y.max()) * 10 and ylo <= hist.y_edges[0]
