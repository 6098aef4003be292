"""Scores at picks: NCC (Pearson with a blob or templates) and power (cryoSPARC definition)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_cryodiag.compute.picks.scores import (
    annulus_weights,
    background_estimate,
    blob_template,
    score_micrograph,
)


def _disk(shape, cy, cx, radius, amp=1.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amp * ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2).astype(np.float32)


def _asym_template(t=41, seed=3):
    """An asymmetric, protein-bright 2D 'class average'."""
    rng = np.random.default_rng(seed)
    img = np.zeros((t, t), np.float32)
    c = t // 2
    for _ in range(12):
        y, x = rng.uniform(-9, 9, 2)
        img += _disk((t, t), c + y, c + x, rng.uniform(2, 5), rng.uniform(0.5, 1.5))
    img[c - 3 : c + 12, c + 2 : c + 5] += 1.0  # an arm, to break any symmetry
    return ndimage.gaussian_filter(img, 1.0)


def test_ncc_of_template_against_itself_is_one():
    tmpl = _asym_template()
    t = tmpl.shape[0]
    mic = np.zeros((200, 240), np.float32)
    cy, cx = 90, 130
    mic[cy - t // 2 : cy - t // 2 + t, cx - t // 2 : cx - t // 2 + t] = tmpl
    ncc, power = score_micrograph(
        mic, [cx], [cy], diameter_px=30, templates=tmpl[None], n_angles=36,
        particle_contrast="bright", background_sigma_px=0, lowpass_A=0,
    )
    assert ncc[0] == pytest.approx(1.0, abs=1e-5)
    assert power[0] > 0
    # dark-contrast micrograph (protein dark, the default) gives the same
    ncc_dark, _ = score_micrograph(
        -mic, [cx], [cy], diameter_px=30, templates=tmpl[None], background_sigma_px=0, lowpass_A=0
    )
    assert ncc_dark[0] == pytest.approx(1.0, abs=1e-5)
    # one pixel off is no longer a perfect match
    ncc_off, _ = score_micrograph(
        mic, [cx + 2], [cy], diameter_px=30, templates=tmpl[None], particle_contrast="bright",
        background_sigma_px=0, lowpass_A=0,
    )
    assert ncc_off[0] < 0.99


def test_blob_against_itself_is_one_and_rotated_template_is_found():
    blob = blob_template(24)
    b = blob.shape[0]
    mic = np.zeros((128, 128), np.float32)
    mic[40 : 40 + b, 50 : 50 + b] -= blob  # dark particle on a raw micrograph
    ncc, _ = score_micrograph(mic, [50 + b // 2], [40 + b // 2], diameter_px=24, background_sigma_px=0, lowpass_A=0)
    assert ncc[0] == pytest.approx(1.0, abs=1e-5)

    tmpl = _asym_template()
    t = tmpl.shape[0]
    rotated = ndimage.rotate(tmpl, 70, reshape=False, order=3)
    mic = np.zeros((160, 160), np.float32)
    mic[60 : 60 + t, 60 : 60 + t] = rotated
    kw = dict(diameter_px=30, templates=tmpl[None], particle_contrast="bright", background_sigma_px=0, lowpass_A=0)
    with_rot, _ = score_micrograph(mic, [60 + t // 2], [60 + t // 2], n_angles=36, **kw)
    no_rot, _ = score_micrograph(mic, [60 + t // 2], [60 + t // 2], n_angles=1, **kw)
    assert with_rot[0] > 0.97
    assert no_rot[0] < with_rot[0] - 0.2


def _noisy_micrograph(seed=0, shape=(256, 256), amp=1.0, noise=1.0, diameter=24):
    rng = np.random.default_rng(seed)
    mic = rng.normal(0, noise, shape).astype(np.float32)
    centres = [(60, 60), (60, 180), (180, 70), (190, 190), (128, 128)]
    for cy, cx in centres:
        mic -= ndimage.gaussian_filter(_disk(shape, cy, cx, diameter / 2, amp), 1.0)
    return mic, centres


def test_ncc_invariant_to_offset_and_scale_power_scales_with_square():
    mic, centres = _noisy_micrograph()
    # a slow gradient as well, which the background subtraction absorbs
    yy, xx = np.mgrid[:256, :256]
    mic = mic + 0.002 * xx
    ys = [c[0] for c in centres] + [100, 30]
    xs = [c[1] for c in centres] + [20, 230]
    ncc1, p1 = score_micrograph(mic, xs, ys, diameter_px=24, lowpass_A=8, pixel_size_A=2.0)
    ncc2, p2 = score_micrograph(3.7 * mic + 250.0, xs, ys, diameter_px=24, lowpass_A=8, pixel_size_A=2.0)
    assert np.all(np.isfinite(ncc1))
    np.testing.assert_allclose(ncc2, ncc1, atol=2e-4)
    np.testing.assert_allclose(p2, 3.7**2 * p1, rtol=1e-3)
    # particles score higher than empty positions
    assert ncc1[:5].min() > ncc1[5:].max()


def test_power_grows_with_contrast():
    powers = []
    for amp in (0.25, 0.5, 1.0, 2.0):
        mic, centres = _noisy_micrograph(seed=1, amp=amp)
        ys = [c[0] for c in centres]
        xs = [c[1] for c in centres]
        _, p = score_micrograph(mic, xs, ys, diameter_px=24)
        powers.append(np.median(p))
    assert np.all(np.diff(powers) > 0)


def test_power_aggregate_over_particle_over_empty_ice():
    rng = np.random.default_rng(5)
    shape = (384, 384)
    mic = rng.normal(0, 1.0, shape).astype(np.float32)
    particle = ndimage.gaussian_filter(_disk(shape, 100, 100, 12, 1.0), 1.0)
    aggregate = np.zeros(shape, np.float32)
    for _ in range(10):  # a dense clump of overlapping particles
        dy, dx = rng.uniform(-18, 18, 2)
        aggregate += _disk(shape, 270 + dy, 270 + dx, 12, 1.0)
    mic -= particle + ndimage.gaussian_filter(aggregate, 1.0)
    _, power = score_micrograph(mic, [270, 100, 100], [270, 100, 280], diameter_px=24)
    agg, part, empty = power
    assert agg > part > empty
    ncc, _ = score_micrograph(mic, [270, 100, 100], [270, 100, 280], diameter_px=24)
    assert ncc[1] > ncc[2]


def test_picks_outside_or_nan_give_nan_near_edge_get_scores():
    mic, _ = _noisy_micrograph()
    xs = [-5.0, 300.0, np.nan, 3.0, 128.0, 0.0, 255.0]
    ys = [50.0, 50.0, 20.0, 128.0, 128.0, 0.0, 255.0]
    ncc, power = score_micrograph(mic, xs, ys, diameter_px=24)
    # off the micrograph or NaN: no score, no error
    assert np.all(np.isnan(ncc[:3])) and np.all(np.isnan(power[:3]))
    # on the micrograph, box crossing the edge (3 px from it, and both corners): scored
    assert np.all(np.isfinite(ncc[3:])) and np.all(np.isfinite(power[3:]))
    ncc, power = score_micrograph(mic, [], [], diameter_px=24)
    assert ncc.shape == (0,) and power.shape == (0,)


def test_cut_mask_template_against_itself_is_one_and_full_mask_equals_fast_path():
    from napari_cryodiag.compute.picks.scores import prepare_micrograph

    tmpl = _asym_template()
    t = tmpl.shape[0]
    # the template centred 5 px above the bottom edge: rows below the edge are cut off
    mic = np.zeros((120, 160), np.float32)
    cy, cx = 120 - 5, 60 + t // 2
    mic[cy - t // 2 :, cx - t // 2 : cx - t // 2 + t] = tmpl[: 120 - (cy - t // 2)]
    kw = dict(diameter_px=30, templates=tmpl[None], n_angles=12, particle_contrast="bright",
              background_sigma_px=0, lowpass_A=0)
    ncc, power = score_micrograph(mic, [cx], [cy], **kw)
    assert ncc[0] == pytest.approx(1.0, abs=1e-5) and power[0] > 0
    prep = prepare_micrograph(mic, **kw)
    _, _, cov = prep.scores([cx], [cy], return_coverage=True)
    assert 0.5 < cov[0] < 0.8
    # a mask that lies wholly on the micrograph, pushed through the cut-mask formulas, gives the
    # fast path's NCC and power (the ring weights are then the plain weights)
    from napari_cryodiag.compute.picks.scores import _edge_patches, ncc_cut, power_cut, ring_weights

    noisy, centres = _noisy_micrograph(seed=4)
    prep = prepare_micrograph(noisy, diameter_px=24)
    x = np.array([c[1] for c in centres], float)
    y = np.array([c[0] for c in centres], float)
    fast_ncc, fast_power = prep.scores(x, y)
    xg, yg = prep.to_grid(x, y)
    vals, valid = _edge_patches(prep.ncc_image, yg, xg, prep.bank_oy, prep.bank_ox, prep.interpolate)
    assert valid.all()
    np.testing.assert_allclose(ncc_cut(vals, ring_weights(valid, prep.bank_oy, prep.bank_ox), prep.bank)[0], fast_ncc, atol=1e-5)
    wy, wx = np.nonzero(prep.weights > 0)
    oy, ox = wy - prep.weights_half, wx - prep.weights_half
    vals, valid = _edge_patches(prep.power_image, yg, xg, oy, ox, prep.interpolate)
    u = ring_weights(valid, oy, ox, prep.weights[wy, wx])
    np.testing.assert_allclose(prep.power_factor * power_cut(vals, u), fast_power, rtol=1e-4)


def test_cut_annulus_power_is_unbiased_on_white_noise():
    # no background, no low-pass: each pixel is independent with the same variance, so a cut
    # annulus must give the same expected power as a whole one (zero padding would give about
    # half at a centre on the edge)
    rng = np.random.default_rng(11)
    mic = rng.normal(0, 1, (400, 400)).astype(np.float32)
    y = rng.uniform(60, 340, 400)
    kw = dict(diameter_px=30, background_sigma_px=0, lowpass_A=0, bin_factor=1)
    _, inner = score_micrograph(mic, np.full(400, 200.0), y, **kw)
    for x_edge in (0.0, 6.0):
        _, cut = score_micrograph(mic[:, 200 - int(x_edge):], np.full(400, x_edge), y, **kw)
        assert np.all(np.isfinite(cut))
        assert np.mean(cut) / np.mean(inner) == pytest.approx(1.0, abs=0.04), x_edge
    # the same mean as the expectation of a whole annulus: sum of the weights (variance 1)
    w, _ = annulus_weights(0, 30)
    assert np.mean(inner) == pytest.approx(w.sum(), rel=0.03)


@pytest.fixture(scope="module")
def edge_sim():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    return simulate_micrographs(4, (512, 512), seed=3, particles_per_micrograph=25, score=False)


@pytest.mark.parametrize("frac", [0.0, 0.25])
def test_particles_at_the_edge_score_like_the_same_particle_away_from_it(edge_sim, frac):
    """Each true particle far from the edges, and the same micrograph cropped so that this particle
    sits ``frac`` diameters from the left edge, or from the top-left corner.

    Measured (4 micrographs, seed 3, 512 px, 80 particles): centre on the edge, median NCC +0.02
    (corner +0.06) and power x1.12 (corner x1.16): the background estimate and the low-pass have
    fewer pixels at the edge, which adds some noise power; a quarter diameter in, NCC +0.03
    (+0.06) and power x1.06 (x1.10). Against empty-ice picks, AUC NCC 0.86 / power 0.99 at the
    edge (0.87 / 1.00 away from it). Zero padding would halve the power at the edge; before
    padding these picks had no scores at all."""
    sim = edge_sim
    d = sim.particle_diameter_px
    kw = dict(diameter_px=d, pixel_size_A=sim.pixel_size_A)
    t = sim.truth
    rows = []
    for i, key in enumerate(sim.keys):
        img = sim.images[i]
        sel = t[(t["micrograph"] == key) & (t["truth"] == "particle")]
        for x, y in sel[["x_px", "y_px"]].to_numpy():
            if min(x, y) < 1.5 * d:
                continue
            n0, p0 = score_micrograph(img, [x], [y], **kw)
            x0, y0 = int(np.floor(x - frac * d)), int(np.floor(y - frac * d))
            n1, p1 = score_micrograph(img[:, x0:], [x - x0], [y], **kw)
            n2, p2 = score_micrograph(img[y0:, x0:], [x - x0], [y - y0], **kw)
            rows.append((n0[0], p0[0], n1[0], p1[0], n2[0], p2[0]))
    r = np.array(rows)
    assert len(r) >= 40
    assert np.all(np.isfinite(r))  # every particle on the micrograph is scored
    n0, p0, n_edge, p_edge, n_corner, p_corner = r.T
    assert abs(np.median(n_edge - n0)) < 0.08 and abs(np.median(n_corner - n0)) < 0.12
    assert 0.85 < np.median(p_edge / p0) < 1.3 and 0.75 < np.median(p_corner / p0) < 1.35
    # the scores still tell particles from empty ice: edge particles against empty-ice picks
    e = t[t["truth"] == "empty"]
    ne, pe = [], []
    for i, key in enumerate(sim.keys):
        sel = e[e["micrograph"] == key]
        if len(sel):
            a, b = score_micrograph(sim.images[i], sel["x_px"], sel["y_px"], **kw)
            ne += list(a)
            pe += list(b)
    ne, pe = np.array(ne), np.array(pe)
    assert float((n_edge[:, None] > ne[None, :]).mean()) > 0.8
    assert float((p_edge[:, None] > pe[None, :]).mean()) > 0.8


def test_score_image_binned_keeps_raw_coordinates():
    mic, centres = _noisy_micrograph(seed=2, noise=0.3)
    ys = np.array([c[0] for c in centres], float)
    xs = np.array([c[1] for c in centres], float)
    binned = mic.reshape(128, 2, 128, 2).mean(axis=(1, 3))
    ncc_raw, _ = score_micrograph(mic, xs, ys, diameter_px=24)
    ncc_bin, _ = score_micrograph(mic, xs, ys, diameter_px=24, score_image=binned)
    assert ncc_bin.min() > 0.8 and ncc_raw.min() > 0.8
    # on the binned image, empty spots stay low: coordinates were mapped, not used as they are
    ncc_empty, _ = score_micrograph(mic, [20.0, 230.0], [100.0, 30.0], diameter_px=24, score_image=binned)
    assert ncc_empty.max() < 0.5


def test_annulus_and_background_helpers():
    w, h = annulus_weights(10, 30, edge_px=2)
    assert w.shape == (2 * h + 1, 2 * h + 1)
    assert w[h, h] == 0.0  # centre is inside the hole
    assert w[h, h + 10] == pytest.approx(1.0)  # radius 10 between 5 and 15
    assert w[h, h + 16] == 0.0
    wd, hd = annulus_weights(0, 30, edge_px=2)
    assert wd[hd, hd] == 1.0
    # background of a smooth ramp is the ramp (away from the edges)
    yy, xx = np.mgrid[:200, :300].astype(np.float32)
    ramp = 0.5 * xx + 0.2 * yy
    bg = background_estimate(ramp, 20)
    np.testing.assert_allclose(bg[60:140, 60:240], ramp[60:140, 60:240], atol=0.6)


def test_default_lowpass_separates_particles_from_empty_ice_on_simulated_micrographs():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    sim = simulate_micrographs(6, (512, 512), seed=1, particles_per_micrograph=25, score=False)
    t = sim.truth
    part = t["truth"].to_numpy() == "particle"
    empty = t["truth"].to_numpy() == "empty"

    def auc(a, b):  # probability that a particle outscores an empty-ice pick
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        return float((a[:, None] > b[None, :]).mean())

    def score_all(**kw):
        ncc, power = np.full(len(t), np.nan), np.full(len(t), np.nan)
        for i, key in enumerate(sim.keys):
            rows = np.flatnonzero(t["micrograph"].to_numpy() == key)
            ncc[rows], power[rows] = score_micrograph(
                sim.images[i], t["x_px"].to_numpy()[rows], t["y_px"].to_numpy()[rows],
                diameter_px=sim.particle_diameter_px, **kw,
            )
        return ncc, power

    raw, raw_p = score_all(lowpass_A=0)
    default, default_p = score_all()
    # measured: NCC 0.90 (raw 0.75), power 0.88 (raw 0.85)
    assert auc(default[part], default[empty]) > 0.85
    assert auc(default[part], default[empty]) > auc(raw[part], raw[empty]) + 0.05
    assert auc(default_p[part], default_p[empty]) > auc(raw_p[part], raw_p[empty])
    junk = t["truth"].to_numpy() == "junk"
    assert auc(default_p[junk], default_p[part]) > 0.9  # junk (aggregates, carbon edge) has more power
