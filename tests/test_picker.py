"""Blob and template picker: planted particles are found, picks are spaced, scores agree with scoring."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_cryodiag.compute.picks.picker import correlation_map, find_peaks, pick_micrograph
from napari_cryodiag.compute.picks.scores import prepare_micrograph


def _planted(shape=(512, 512), n=40, diameter=24, amp=1.0, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:
        p = rng.uniform(diameter, np.array(shape[::-1]) - diameter)
        if all(np.hypot(*(p - q)) > 1.6 * diameter for q in pts):
            pts.append(p)
    pts = np.array(pts)  # (x, y)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = np.zeros(shape, np.float32)
    for x, y in pts:
        clean += ((xx - x) ** 2 + (yy - y) ** 2 <= (diameter / 2) ** 2)
    clean = ndimage.gaussian_filter(clean, 1.0)
    mic = 50.0 - amp * clean + rng.normal(0, noise, shape).astype(np.float32)
    return mic.astype(np.float32), pts


def test_correlation_map_equals_scores_at_grid_positions():
    mic, pts = _planted(n=10)
    for bin_factor in (1, 2):
        prep = prepare_micrograph(mic, diameter_px=24, bin_factor=bin_factor)
        ncc_map, _ = correlation_map(prep)
        rng = np.random.default_rng(1)
        gy = rng.integers(0, ncc_map.shape[0], 50)
        gx = rng.integers(0, ncc_map.shape[1], 50)
        x, y = prep.from_grid(gx.astype(float), gy.astype(float))
        ncc, _ = prep.scores(x, y)
        ok = np.isfinite(ncc) & np.isfinite(ncc_map[gy, gx])
        assert ok.sum() > 20
        np.testing.assert_allclose(ncc_map[gy, gx][ok], ncc[ok], atol=2e-4)
        # NaN in the map where the mask leaves the grid, exactly where scoring says NaN
        assert np.array_equal(np.isnan(ncc_map[gy, gx]), np.isnan(ncc))


def test_blob_picker_finds_planted_particles():
    mic, pts = _planted(n=40, noise=1.5)
    picks = pick_micrograph(mic, diameter_px=24, ncc_min=0.3)
    assert list(picks.columns[:4]) == ["x_px", "y_px", "ncc", "power"]
    d, j = cKDTree(np.column_stack([picks["x_px"], picks["y_px"]])).query(pts)
    recall = np.mean(d < 4.0)
    assert recall >= 0.95
    assert np.median(d[d < 4.0]) < 1.5  # sub-pixel refinement, not the grid step
    # the picker over-picks on purpose (thresholds come later); its scores separate the true
    # picks from the rest: measured AUC ~1 for power and > 0.95 for NCC here
    dp, _ = cKDTree(pts).query(np.column_stack([picks["x_px"], picks["y_px"]]))
    true = dp < 4.0
    assert 0 < (~true).sum()

    def auc(a, b):
        return float((a[:, None] > b[None, :]).mean())

    assert auc(picks["power"].to_numpy()[true], picks["power"].to_numpy()[~true]) > 0.95
    assert auc(picks["ncc"].to_numpy()[true], picks["ncc"].to_numpy()[~true]) > 0.9
    # spacing and ordering
    xy = picks[["x_px", "y_px"]].to_numpy()
    assert len(cKDTree(xy).query_pairs(24 * (1 - 1e-6))) == 0
    assert np.all(np.diff(picks["ncc"].to_numpy()) <= 0)
    assert np.all(np.isfinite(picks[["ncc", "power"]].to_numpy()))


def test_template_picker_recovers_template_and_angle():
    rng = np.random.default_rng(2)
    t = 33
    tmpl = np.zeros((t, t), np.float32)
    tmpl[8:25, 14:19] = 1.0  # a bar ...
    tmpl[8:12, 14:26] = 1.0  # ... with a foot: no rotational symmetry
    tmpl = ndimage.gaussian_filter(tmpl, 0.7)
    mic = rng.normal(0, 0.15, (300, 300)).astype(np.float32)  # NCC ~ 0.9 at this noise
    truth = [(80, 80, 0.0), (200, 90, 90.0), (150, 210, 200.0)]
    from napari_cryodiag.compute.picks.scores import _rotate_about

    for x, y, ang in truth:
        rot = _rotate_about(tmpl, ang, (t // 2, t // 2))
        mic[y - t // 2 : y - t // 2 + t, x - t // 2 : x - t // 2 + t] -= rot
    picks = pick_micrograph(
        mic, diameter_px=24, templates=tmpl[None], n_angles=36, ncc_min=0.5, bin_factor=1, lowpass_A=0,
        background_sigma_px=0,
    )
    assert len(picks) == 3
    for x, y, ang in truth:
        i = np.argmin(np.hypot(picks["x_px"] - x, picks["y_px"] - y))
        assert np.hypot(picks["x_px"][i] - x, picks["y_px"][i] - y) < 1.0
        assert picks["template_index"][i] == 0
        assert min(abs(picks["angle_deg"][i] - ang) % 360, 360 - abs(picks["angle_deg"][i] - ang) % 360) <= 10
        assert picks["ncc"][i] > 0.8


def test_find_peaks_spacing_threshold_and_plateaus():
    a = np.zeros((50, 50))
    a[10, 10] = 1.0
    a[10, 13] = 0.9  # too close to the first
    a[30, 30:33] = 0.8  # a plateau: one peak only
    a[40, 5] = 0.05  # below threshold
    y, x, v = find_peaks(a, 6.0, threshold=0.1)
    assert len(v) == 2
    assert (round(y[0]), round(x[0])) == (10, 10) and v[1] == pytest.approx(0.8)


def test_picker_on_simulated_micrographs_with_truth():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    sim = simulate_micrographs(
        2, (512, 512), seed=6, particles_per_micrograph=30, score=False, defocus_range_A=(15000, 30000)
    )
    t = sim.truth
    recalls = []
    for i, key in enumerate(sim.keys):
        picks = pick_micrograph(sim.images[i], diameter_px=sim.particle_diameter_px)
        truth = t[(t["micrograph"] == key) & (t["truth"] == "particle")]
        d, _ = cKDTree(picks[["x_px", "y_px"]].to_numpy()).query(truth[["x_px", "y_px"]].to_numpy())
        recalls.append(np.mean(d < 0.5 * sim.particle_diameter_px))
    # measured 0.80-0.96 at 1.5-3 µm defocus (and only ~0.7 at 0.8 µm, where a blob localises poorly)
    assert np.mean(recalls) > 0.75
