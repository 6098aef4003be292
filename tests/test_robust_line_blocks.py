"""Theil-Sen and Siegel fits of many micrographs run in blocks of pairs (scipy builds all N^2
pairs: 8 GB for the 33,000 micrographs of 1e7 picks), Theil-Sen's two blocks at a time in
threads, and give scipy's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from napari_cryodiag.compute.picks import calibration


@pytest.mark.parametrize("method", ["theil-sen", "siegel"])
def test_blocked_fits_equal_scipy(method, monkeypatch):
    rng = np.random.default_rng(3)
    n = 900
    x = rng.uniform(1e4, 3e4, n).round(0)  # rounded: ties at the same defocus, as on real data
    y = 1 + 2e-5 * x + rng.normal(0, 0.1, n)
    y[:40] += 4  # outliers
    want = stats.theilslopes(y, x) if method == "theil-sen" else stats.siegelslopes(y, x)
    monkeypatch.setattr(calibration, "PAIRWISE_MAX_POINTS", 100)  # force the blocked path
    monkeypatch.setattr(calibration, "_BLOCK_PAIRS", 5000)  # many small blocks
    blocks = []
    real = calibration._block_slopes

    def counted(*a, **k):
        blocks.append(1)  # from two threads: list.append is atomic
        return real(*a, **k)

    monkeypatch.setattr(calibration, "_block_slopes", counted)
    slope, intercept = calibration.robust_line(x, y, method)
    if method == "theil-sen":
        assert len(blocks) > 100  # the blocked path ran, in blocks of about 5,000 pairs
    assert slope == pytest.approx(want[0], rel=1e-12) and intercept == pytest.approx(want[1], rel=1e-12)
