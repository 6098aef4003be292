"""SCF and SCF* (Baldwin & Lyumkis 2020) on sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.particles.orientations import fibonacci_hemisphere, viewing_directions_from_table
from napari_cryodiag.compute.particles.scf import SCF_STAR_GUIDE, default_n_points, sampling_compensation_factor, scf_from_sampling
from napari_cryodiag.simulate.orientations import cone_poses, preferred_orientation_poses, single_view_poses, uniform_poses


def _published(vectors, radius_px, n_points):
    """The authors' definition (CommandLineSCF ``PlotSamp``), written out with plain loops.

    <1/S> over the sampled points, <S> ("N/2k") over all points, zeros included.
    """
    pts = fibonacci_hemisphere(n_points)
    eps = 0.5 / radius_px
    S = []
    for d in pts:
        S.append(sum(1 for v in vectors if abs(float(np.dot(d, v))) <= eps))
    inv_sum, n_sampled, total = 0.0, 0, 0
    for s in S:
        total += s
        if s > 0:
            inv_sum += 1.0 / s
            n_sampled += 1
    n_over_2k = total / len(S)
    scf = 1.0 / ((inv_sum / n_sampled) * n_over_2k)
    q_over_p = (len(S) - n_sampled) / n_sampled
    return scf, scf / (1 + q_over_p * n_over_2k * scf / 2), len(S) - n_sampled


def test_formula_on_known_sampling_values():
    r = scf_from_sampling([1, 2, 4])
    assert r.scf == pytest.approx(1 / ((1 + 0.5 + 0.25) / 3 * 7 / 3))
    assert r.scf_star == pytest.approx(r.scf) and r.n_unsampled == 0
    # one unsampled point of four: Q/P = 1/3, <1/S>_sampled = 1/2, <S>_all = 6/4 (zero included)
    r = scf_from_sampling([0, 2, 2, 2])
    assert r.scf == pytest.approx(1 / (0.5 * 1.5)) and r.n_sampled == 3 and r.n_unsampled == 1
    assert r.mean_sampling == pytest.approx(1.5)
    assert r.scf_star == pytest.approx(r.scf / (1 + (1 / 3) * 1.5 * r.scf / 2))
    # S = [0, 1, 3]: SCF = 1 / ((1 + 1/3)/2 * 4/3) = 9/8; SCF* = 9/8 / (1 + 1/2 * 4/3 * 9/8 / 2)
    r = scf_from_sampling([0, 1, 3])
    assert r.scf == pytest.approx(9 / 8) and r.scf_star == pytest.approx((9 / 8) / (1 + 0.5 * (4 / 3) * (9 / 8) / 2))
    assert scf_from_sampling([0, 0]).scf_star == 0.0


@pytest.mark.parametrize(
    "make",
    [lambda: uniform_poses(300, seed=1), lambda: cone_poses(300, 40, seed=2), lambda: preferred_orientation_poses(300, 0.5, 10, seed=3)],
    ids=["uniform", "cone40", "preferred"],
)
def test_direct_method_equals_the_published_definition(make):
    v = viewing_directions_from_table(make())
    scf, scf_star, _ = _published(v, 6.0, 400)
    r = sampling_compensation_factor(v, 6.0, 400, method="direct")
    assert r.scf == pytest.approx(scf, rel=1e-12)
    assert r.scf_star == pytest.approx(scf_star, rel=1e-12)


def _without_tilts(poses, lo=60.0, hi=120.0):
    """The set with tilts in [lo, hi] degrees removed: a missing band of views, unsampled points."""
    return poses[(poses["tilt_deg"] < lo) | (poses["tilt_deg"] > hi)]


@pytest.mark.parametrize("method", ["direct", "binned"])
def test_missing_tilts_follow_the_definition_with_zeros_in_the_mean(method):
    # a uniform set without tilts 60-120 deg: many shell points unsampled at R = 12
    v = viewing_directions_from_table(_without_tilts(uniform_poses(1500, seed=12)))
    scf, scf_star, q = _published(v, 12.0, 600)
    assert q > 60  # the case where the two means differ
    r = sampling_compensation_factor(v, 12.0, 600, method=method)
    assert r.n_unsampled == pytest.approx(q, abs=0 if method == "direct" else max(3, 0.03 * q))
    rel = 1e-12 if method == "direct" else 0.03
    assert r.scf == pytest.approx(scf, rel=rel) and r.scf_star == pytest.approx(scf_star, rel=rel)
    # the former reading (<S> over sampled points only) is measurably lower (0.094 vs 0.111 in issue 10)
    assert r.scf_star > 1.05 * _sampled_only_scf_star(v, 12.0, 600)


def _sampled_only_scf_star(v, radius_px, n_points):
    from napari_cryodiag.compute.particles.fourier_sampling import sampling_direct

    S, _ = sampling_direct(v, fibonacci_hemisphere(n_points), radius_px)
    s = S[S > 0]
    scf = 1 / (np.mean(1 / s) * np.mean(s))
    return scf / (1 + ((S.size - s.size) / s.size) * np.mean(s) * scf / 2)


def test_real_relion_set_with_missing_tilts(shared_data):
    from napari_cryodiag.io.picks import read_table

    t = read_table(shared_data / "relion13-tutorial" / "particles_autopick_sort_class2d_class3d.star")
    cut = _without_tilts(t)
    assert len(cut) == 3525
    v = viewing_directions_from_table(cut)
    r = sampling_compensation_factor(v, 32.0, method="direct")
    # measured with the authors' definition: SCF 0.507, SCF* 0.129, 1,113 of 6,434 points unsampled
    # (the former reading gave 0.419 and 0.107)
    assert r.n_points == 6434 and r.n_unsampled == 1113
    assert r.scf == pytest.approx(0.5067, abs=2e-3) and r.scf_star == pytest.approx(0.1292, abs=2e-3)
    assert r.preferred_orientation


def test_uniform_orientations_give_scf_star_close_to_one():
    v = viewing_directions_from_table(uniform_poses(10_000, seed=4))
    for method in ("direct", "binned"):
        r = sampling_compensation_factor(v, 16.0, method=method)
        # finite N: Poisson counts of mean N*eps = 312 lower SCF by about 1/625
        assert r.scf_star > 0.99 and r.n_unsampled == 0 and not r.preferred_orientation, method


def test_single_view_and_narrow_cone_give_low_scf_star():
    v = viewing_directions_from_table(single_view_poses(2000))
    r = sampling_compensation_factor(v, 16.0, method="binned")
    # sampled points (the equatorial band) are all sampled N times, the rest not at all:
    # <1/S>_sampled = 1/N, <S>_all = N P / (P + Q), so SCF = (P + Q) / P and SCF* = (P + Q) / (P + Q N / 2)
    P, Q = r.n_sampled, r.n_unsampled
    assert r.scf == pytest.approx((P + Q) / P) and r.scf_star == pytest.approx((P + Q) / (P + Q * 2000 / 2))
    assert r.scf_star < 0.01 and r.preferred_orientation
    v = viewing_directions_from_table(cone_poses(5000, 10, seed=5))
    for method in ("direct", "binned"):
        r = sampling_compensation_factor(v, 16.0, method=method)
        assert r.scf_star < 0.05 and r.n_unsampled > 0, method


def test_preferred_orientation_mixture_crosses_the_guide():
    # mostly top views: well below 0.81; a 30 % top-view excess: close to the guide
    strong = viewing_directions_from_table(preferred_orientation_poses(5000, 0.8, 10, seed=6))
    mild = viewing_directions_from_table(preferred_orientation_poses(5000, 0.1, 10, seed=7))
    rs = sampling_compensation_factor(strong, 16.0)
    rm = sampling_compensation_factor(mild, 16.0)
    assert rs.scf_star < 0.4 < SCF_STAR_GUIDE < rm.scf_star
    assert rm.scf_star < 0.99  # a mild excess is still visible


@pytest.mark.parametrize(
    "make",
    [
        lambda: uniform_poses(3000, seed=8),
        lambda: preferred_orientation_poses(3000, 0.6, 15, seed=9),
        lambda: preferred_orientation_poses(3000, 0.3, 10, seed=10),
        lambda: cone_poses(3000, 30, axis=(0, 1, 1), seed=11),
    ],
    ids=["uniform", "pref60", "pref30", "cone30"],
)
def test_binned_agrees_with_direct(make):
    v = viewing_directions_from_table(make())
    b = sampling_compensation_factor(v, 20.0, method="binned")
    d = sampling_compensation_factor(v, 20.0, method="direct")
    assert b.n_points == d.n_points == default_n_points(20.0)
    assert b.scf_star == pytest.approx(d.scf_star, rel=0.03, abs=0.005)
    assert abs(b.n_unsampled - d.n_unsampled) <= max(3, 0.02 * d.n_unsampled)
