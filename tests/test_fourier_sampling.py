"""Fourier sampling and posterior precision: definition, binned fast path vs. direct, CTF² ring mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.ctf import ctf_2d
from napari_cryodiag.compute.particles.fourier_sampling import (
    ctf2_ring_mean,
    directional_distributions,
    posterior_precision_weights,
    sampling_binned,
    sampling_direct,
    slab_tolerance,
)
from napari_cryodiag.compute.particles.orientations import bin_directions, fibonacci_hemisphere, viewing_directions_from_table
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.simulate.orientations import (
    cone_poses,
    preferred_orientation_poses,
    single_view_poses,
    uniform_poses,
)


def _by_hand(vectors, points, radius_px, weights=None):
    """The definition written as plainly as possible: loop over points and particles."""
    eps = 0.5 / radius_px
    w = np.ones(len(vectors)) if weights is None else weights
    S = np.zeros(len(points))
    W = np.zeros(len(points))
    for k, d in enumerate(points):
        for i, v in enumerate(vectors):
            if abs(d[0] * v[0] + d[1] * v[1] + d[2] * v[2]) <= eps:
                S[k] += 1
                W[k] += w[i]
    return S, W


def test_direct_sampling_equals_the_definition_by_hand():
    v = viewing_directions_from_table(uniform_poses(150, seed=1))
    pts = fibonacci_hemisphere(300)
    w = np.random.default_rng(1).uniform(0.1, 1.0, 150)
    S, W = sampling_direct(v, pts, 8.0, w, chunk=37)
    S0, W0 = _by_hand(v, pts, 8.0, w)
    np.testing.assert_array_equal(S, S0)
    np.testing.assert_allclose(W, W0)


def test_single_view_samples_exactly_the_equatorial_band():
    v = viewing_directions_from_table(single_view_poses(500))
    pts = fibonacci_hemisphere(5000)
    R = 20.0
    band = np.abs(pts[:, 2]) <= slab_tolerance(R)
    S, _ = sampling_direct(v, pts, R)
    np.testing.assert_array_equal(S, np.where(band, 500, 0))
    # binned: all particles share one direction, so the cell has no spread and it is exact too
    Sb, _ = sampling_binned(bin_directions(v), pts, None, R)
    np.testing.assert_allclose(Sb, S, atol=1e-9)


@pytest.mark.parametrize(
    "make",
    [
        lambda: uniform_poses(4000, seed=2),
        lambda: preferred_orientation_poses(4000, 0.7, 12, seed=3),
        lambda: cone_poses(4000, 30, axis=(1, 1, 0), seed=4),
    ],
    ids=["uniform", "preferred", "cone30"],
)
def test_binned_sampling_agrees_with_direct(make):
    v = viewing_directions_from_table(make())
    pts = fibonacci_hemisphere(3000)
    R = 24.0
    S, _ = sampling_direct(v, pts, R)
    Sb, _ = sampling_binned(bin_directions(v), pts, None, R)
    # same total (each projection samples the same fraction of the shell)
    assert Sb.sum() == pytest.approx(S.sum(), rel=0.02)
    # per point: Poisson-level agreement (the binned value is an expectation over each cell)
    big = S > 20
    rel = np.abs(Sb[big] - S[big]) / S[big]
    assert np.median(rel) < 0.15
    assert np.corrcoef(S, Sb)[0, 1] > 0.9


def test_directional_maps_binned_vs_direct_and_band_of_a_single_view():
    v = viewing_directions_from_table(preferred_orientation_poses(3000, 0.6, 15, seed=5))
    mb = directional_distributions(v, None, 20.0, 36, 18)
    md = directional_distributions(v, None, 20.0, 36, 18, method="direct")
    assert mb.fourier_sampling.shape == (18, 36)
    assert mb.posterior_precision is None
    rel = np.abs(mb.fourier_sampling - md.fourier_sampling) / md.fourier_sampling.mean()
    assert np.median(rel) < 0.1 and np.corrcoef(mb.fourier_sampling.ravel(), md.fourier_sampling.ravel())[0, 1] > 0.95
    # a single view down z at a large radius: only the two equatorial rows are sampled, each bin
    # averaging eps / (bin height in z) of the N projections
    R = 64.0
    vs = viewing_directions_from_table(single_view_poses(1000))
    m = directional_distributions(vs, None, R, 36, 18).fourier_sampling
    rows = np.nonzero(m.max(axis=1) > 0)[0]
    np.testing.assert_array_equal(rows, [8, 9])
    expected = 1000 * slab_tolerance(R) / (2.0 / 18)
    np.testing.assert_allclose(m[8:10], expected, rtol=1e-6)


def test_uniform_set_samples_every_direction_evenly():
    v = viewing_directions_from_table(uniform_poses(200_000, seed=6))
    R = 32.0
    m = directional_distributions(v, None, R, 36, 18).fourier_sampling
    expected = 200_000 * slab_tolerance(R)  # fraction of uniform v with |d.v| <= eps is eps
    assert m.mean() == pytest.approx(expected, rel=0.02)
    assert m.min() > 0.85 * expected and m.max() < 1.15 * expected


def test_ctf2_ring_mean_matches_a_ring_average_of_ctf_2d():
    # fine frequency spacing (n * apix = 2048 Å) so the CTF barely changes across a pixel ring
    n, apix = 1024, 2.0
    ky = np.fft.fftfreq(n)[:, None] * n
    kx = np.fft.fftfreq(n)[None, :] * n
    r = np.hypot(kx, ky)
    for du, dv, ang in [(15000.0, 15000.0, 0.0), (20000.0, 17000.0, 30.0), (9000.0, 8000.0, -60.0)]:
        ctf = ctf_2d((n, n), apix, du, dv, ang, 300.0, 2.7, 0.07, rfft=False).astype(np.float64)
        for radius in (50, 150, 300):
            ring = np.abs(r - radius) < 0.5
            got = ctf2_ring_mean(radius / (n * apix), du, dv, 300.0, 2.7, 0.07)
            assert got == pytest.approx(float((ctf[ring] ** 2).mean()), abs=0.02), (du, dv, radius)
    # at s -> 0, CTF = Q0: CTF² = Q0²
    assert ctf2_ring_mean(1e-6, 10000, 10000, 300, 2.7, 0.1) == pytest.approx(0.01, rel=1e-3)


def test_ctf2_ring_mean_equals_angular_average_exactly():
    # independent formula: CTF(θ) = sin(chi(θ)) averaged over 20,000 angles
    s, lam = 0.12, 0.0196869
    du, dv, ang, cs, q = 21000.0, 18500.0, 25.0, 2.7e7, 0.1
    th = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    dz = (du + dv) / 2 + (du - dv) / 2 * np.cos(2 * (th - np.radians(ang)))
    chi = np.pi * lam * dz * s**2 - np.pi / 2 * cs * lam**3 * s**4 + np.arctan2(q, np.sqrt(1 - q * q))
    ref = np.mean(np.sin(chi) ** 2)
    assert ctf2_ring_mean(s, du, dv, 300.0, 2.7, q) == pytest.approx(ref, abs=2e-4)


def test_posterior_precision_weights_from_table_and_errors():
    t = uniform_poses(100, seed=7, ctf=True)
    w = posterior_precision_weights(t, 0.1, noise_variance=2.0)
    ref = ctf2_ring_mean(0.1, t["defocus_u_A"], t["defocus_v_A"], 300, 2.7, 0.1) / 2.0
    np.testing.assert_allclose(w, ref)
    assert (w >= 0).all() and (w <= 0.5 + 1e-12).all()
    t2 = pd.DataFrame({"rot_deg": [0.0], "tilt_deg": [0.0]})
    t2.attrs["source"] = "x.star"
    with pytest.raises(CryodiagInputError, match="x.star"):
        posterior_precision_weights(t2, 0.1)


def test_posterior_precision_map_weights_projections():
    # half the particles at weight 1 seen down z, half at weight 3 seen down x
    v = np.concatenate([np.tile([0, 0, 1.0], (500, 1)), np.tile([1.0, 0, 0], (500, 1))])
    w = np.concatenate([np.ones(500), 3 * np.ones(500)])
    pts = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    S, W = sampling_binned(bin_directions(v, w), pts, None, 10.0)
    # d = x: only the z views sample it; d = y: both; d = z: only the x views
    np.testing.assert_allclose(S, [500, 1000, 500])
    np.testing.assert_allclose(W, [500, 2000, 1500])
