"""Simulated micrographs: the truth is where the table says, determinism, scores vs defocus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr, theilslopes

from napari_cryodiag.compute.ctf import ctf_2d
from napari_cryodiag.compute.projection import euler_to_matrix, project_real
from napari_cryodiag.simulate.micrographs import (
    PICK_COLUMNS,
    TRUTH_LABELS,
    SimulatedMicrographs,
    simulate_micrographs,
)

SMALL = dict(n_micrographs=4, shape=(512, 512), seed=3, particles_per_micrograph=30, carbon_fraction=0.5)


@pytest.fixture(scope="module")
def small() -> SimulatedMicrographs:
    return simulate_micrographs(**SMALL, keep_clean=True, score=False)


@pytest.fixture(scope="module")
def full() -> SimulatedMicrographs:
    # the default sample (8 x 1024^2, 100 particles each), scored by compute.scores
    return simulate_micrographs(seed=0)


def _disc_mean_sq(img, x, y, r):
    yy, xx = np.ogrid[: img.shape[0], : img.shape[1]]
    m = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
    return float(np.mean(img[m] ** 2))


def test_shapes_dtypes_names_and_columns(small):
    s = small
    n, ny, nx = s.images.shape
    assert (n, ny, nx) == (4, 512, 512)
    assert s.images.dtype == np.float32 and s.clean.dtype == np.float32 and s.clean.shape == s.images.shape
    assert s.names == ["sim_0001.mrc", "sim_0002.mrc", "sim_0003.mrc", "sim_0004.mrc"]
    assert s.keys == ["sim_0001", "sim_0002", "sim_0003", "sim_0004"]
    assert s.volume.dtype == np.float32 and s.volume.ndim == 3
    t = s.truth
    assert list(t.columns) == PICK_COLUMNS
    assert set(t["truth"]) <= set(TRUTH_LABELS) and set(t["truth"]) == set(TRUTH_LABELS)
    assert set(t["micrograph"]) == set(s.keys)
    assert (t["micrograph_name"] == t["micrograph"] + ".mrc").all()
    # per-micrograph CTF is the micrograph's, mean defocus = (dU + dV) / 2, mild astigmatism
    for i, k in enumerate(s.keys):
        rows = t[t["micrograph"] == k]
        assert np.allclose(rows["defocus_u_A"], s.defocus_u_A[i])
        assert np.allclose(rows["defocus_A"], (s.defocus_u_A[i] + s.defocus_v_A[i]) / 2)
    astig = s.defocus_u_A - s.defocus_v_A
    assert np.all(astig > 0) and np.all(astig <= 400)
    # particles carry poses, false picks none
    part = t["truth"] == "particle"
    assert t.loc[part, ["rot_deg", "tilt_deg", "psi_deg"]].notna().all().all()
    assert t.loc[~part, ["rot_deg", "tilt_deg", "psi_deg"]].isna().all().all()
    # raw micrographs are electron counts around the dose per pixel (30 e/A^2 * 4 A^2)
    assert 100 < float(np.median(s.images)) < 130
    assert np.all(s.images >= 0) and np.all(s.images == np.round(s.images))


def test_defocus_spread_over_range():
    s = simulate_micrographs(n_micrographs=8, shape=(256, 256), seed=1, particles_per_micrograph=3, score=False)
    d = np.sort(s.defocus_A)
    assert d[0] < 9000 and d[-1] > 29000
    assert np.all(np.diff(d) > 2000)  # spread evenly, not clumped
    assert not np.all(np.diff(s.defocus_A) > 0)  # shuffled over the micrographs


def test_clean_image_holds_the_projection_at_each_true_pick(small):
    """Independent check with the slow real-space projector: at each true pick (sub-pixel), the
    noise-free micrograph is the CTF-filtered projection of the density at the true pose, and
    not the particle at a wrong pose or a few pixels away."""
    s = small
    t = s.truth
    rng = np.random.default_rng(0)
    b = s.volume.shape[0]
    win = 2 * b  # room for the CTF's delocalisation
    i = 0
    parts = t[(t["micrograph"] == s.keys[i]) & (t["truth"] == "particle")]
    parts = parts[
        (parts["x_px"] > win / 2 + 4) & (parts["x_px"] < s.images.shape[2] - win / 2 - 4)
        & (parts["y_px"] > win / 2 + 4) & (parts["y_px"] < s.images.shape[1] - win / 2 - 4)
    ].iloc[:6]
    assert len(parts) >= 4
    ctf = ctf_2d((win, win), s.pixel_size_A, s.defocus_u_A[i], s.defocus_v_A[i], s.defocus_angle_deg[i],
                 voltage_kV=s.voltage_kV, cs_mm=s.cs_mm, amplitude_contrast=s.amplitude_contrast,
                 bfactor_A2=s.bfactor_A2)
    ky = np.fft.fftfreq(win)[:, None]
    kx = np.fft.rfftfreq(win)[None, :]

    def expected(rot, tilt, psi, fx, fy):
        proj = project_real(s.volume, euler_to_matrix(rot, tilt, psi))
        canvas = np.zeros((win, win), np.float32)
        o = win // 2 - b // 2
        canvas[o:o + b, o:o + b] = proj
        f = np.fft.rfft2(np.fft.ifftshift(canvas)) * ctf * np.exp(-2j * np.pi * (kx * fx + ky * fy))
        return np.fft.fftshift(np.fft.irfft2(f, s=(win, win)))

    yy, xx = np.mgrid[:win, :win] - win // 2
    disc = xx**2 + yy**2 <= (0.5 * s.particle_diameter_px) ** 2  # the particle, little of its neighbours

    def corr(patch, model):
        return np.corrcoef(patch[disc], model[disc])[0, 1]

    good, wrong_pose, moved = [], [], []
    for r in parts.itertuples():
        cx, cy = int(round(r.x_px)), int(round(r.y_px))
        patch = s.clean[i, cy - win // 2: cy + win // 2, cx - win // 2: cx + win // 2]
        fx, fy = r.x_px - cx, r.y_px - cy
        good.append(corr(patch, expected(r.rot_deg, r.tilt_deg, r.psi_deg, fx, fy)))
        rr, tt, pp = rng.uniform(-180, 180), np.degrees(np.arccos(rng.uniform(-1, 1))), rng.uniform(-180, 180)
        wrong_pose.append(corr(patch, expected(rr, tt, pp, fx, fy)))
        moved.append(corr(patch, expected(r.rot_deg, r.tilt_deg, r.psi_deg, fx + 3, fy - 3)))
    good, wrong_pose, moved = map(np.array, (good, wrong_pose, moved))
    assert np.all(good > 0.95), good
    assert np.all(wrong_pose < good - 0.1), (good, wrong_pose)
    assert np.all(moved < good - 0.1), (good, moved)


def test_junk_and_empty_are_where_labelled(small):
    s = small
    t = s.truth
    d = s.particle_diameter_px
    r = 0.5 * d
    checked = {"edge": 0, "aggregate": 0, "empty": 0}
    for i, k in enumerate(s.keys):
        rows = t[t["micrograph"] == k]
        part = rows[rows["truth"] == "particle"]
        carbon = s.region_mask(i, "carbon")
        agg = s.region_mask(i, "aggregate")
        empty = s.region_mask(i, "empty")
        px, py = part["x_px"].to_numpy(), part["y_px"].to_numpy()
        iy, ix = np.rint(py).astype(int), np.rint(px).astype(int)
        # no true particle in carbon, aggregate or empty areas
        assert not (carbon[iy, ix] | agg[iy, ix] | empty[iy, ix]).any()
        part_energy = np.median([_disc_mean_sq(s.clean[i], x, y, r) for x, y in zip(px, py)])
        for p in rows[rows["truth"] != "particle"].itertuples():
            jx, jy = int(round(p.x_px)), int(round(p.y_px))
            dist = np.sqrt((px - p.x_px) ** 2 + (py - p.y_px) ** 2).min() if len(px) else np.inf
            e = _disc_mean_sq(s.clean[i], p.x_px, p.y_px, r)
            if p.truth_detail == "empty":
                assert p.truth == "empty" and empty[jy, jx]
                assert dist > d  # no particle under an empty pick
                assert e < 0.2 * part_energy  # nothing there but ice
            elif p.truth_detail == "aggregate":
                assert p.truth == "junk" and agg[jy, jx]
                assert e > part_energy  # dense clump: more signal than a particle
            else:
                assert p.truth_detail == "edge" and p.truth == "junk"
                reg = s.regions[(s.regions["micrograph"] == k) & (s.regions["kind"] == "carbon")].iloc[0]
                off = np.hypot(p.x_px - reg.x_px, p.y_px - reg.y_px) - reg.radius_px
                assert abs(off) <= 0.3 * d + 1e-6  # on the carbon edge
            checked[p.truth_detail] += 1
        if carbon.any():
            # carbon is a strong step: darker than the hole on the raw micrograph
            assert s.images[i][carbon].mean() < 0.85 * s.images[i][~carbon].mean()
    assert all(v > 0 for v in checked.values()), checked


def test_deterministic_from_seed():
    kw = dict(n_micrographs=2, shape=(256, 256), particles_per_micrograph=5, score=False)
    a = simulate_micrographs(seed=7, **kw)
    b = simulate_micrographs(seed=7, **kw)
    c = simulate_micrographs(seed=8, **kw)
    assert np.array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.regions, b.regions)
    assert not np.array_equal(a.images, c.images)
    assert not np.allclose(a.defocus_A, c.defocus_A)


def test_scores_trend_with_defocus_and_separate_junk(full):
    """The default sample: NCC and power medians of true particles rise with defocus (what
    calibration corrects), and power tells junk (high) and empty picks (low) from particles."""
    t = full.truth
    assert t["ncc"].notna().all() and t["power"].notna().all()
    part = t[t["truth"] == "particle"]
    g = part.groupby("micrograph").agg(df=("defocus_A", "first"), ncc=("ncc", "median"), power=("power", "median"))
    span = g["df"].max() - g["df"].min()
    for col, min_rho, min_rel in (("ncc", 0.6, 0.1), ("power", 0.9, 0.4)):
        rho = spearmanr(g["df"], g[col])[0]
        rel = theilslopes(g[col], g["df"])[0] * span / g[col].median()  # relative change over the range
        assert rho > min_rho and rel > min_rel, (col, rho, rel)
    med = t.groupby("truth_detail")["power"].median()
    assert med["empty"] < 0.7 * med["particle"]
    assert med["aggregate"] > 2 * med["particle"] and med["edge"] > 2 * med["particle"]
    # NCC: particles above empty picks
    nm = t.groupby("truth")["ncc"].median()
    assert nm["particle"] > nm["empty"] + 0.1


def test_small_and_odd_shapes_work():
    s = simulate_micrographs(n_micrographs=1, shape=(200, 300), seed=0, particles_per_micrograph=4, score=False)
    assert s.images.shape == (1, 200, 300)
    t = s.truth
    assert ((t["x_px"] >= 0) & (t["x_px"] < 300) & (t["y_px"] >= 0) & (t["y_px"] < 200)).all()
