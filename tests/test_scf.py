"""SCF and SCF* (Baldwin & Lyumkis 2020) on sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.particles.orientations import fibonacci_hemisphere, viewing_directions_from_table
from napari_cryodiag.compute.particles.scf import SCF_STAR_GUIDE, default_n_points, sampling_compensation_factor, scf_from_sampling
from napari_cryodiag.simulate.orientations import cone_poses, preferred_orientation_poses, single_view_poses, uniform_poses


def _published(vectors, radius_px, n_points):
    """The published definition, written out with plain loops on a small set."""
    pts = fibonacci_hemisphere(n_points)
    eps = 0.5 / radius_px
    S = []
    for d in pts:
        S.append(sum(1 for v in vectors if abs(float(np.dot(d, v))) <= eps))
    S = np.array(S, dtype=float)
    sampled = S[S > 0]
    P, Q = len(sampled), len(S) - len(sampled)
    scf = 1.0 / (np.mean(1.0 / sampled) * np.mean(sampled))
    return scf, scf / (1 + (Q / P) * np.mean(sampled) * scf / 2)


def test_formula_on_known_sampling_values():
    r = scf_from_sampling([1, 2, 4])
    assert r.scf == pytest.approx(1 / ((1 + 0.5 + 0.25) / 3 * 7 / 3))
    assert r.scf_star == pytest.approx(r.scf) and r.n_unsampled == 0
    # one unsampled point of four: Q/P = 1/3
    r = scf_from_sampling([0, 2, 2, 2])
    assert r.scf == pytest.approx(1.0) and r.n_sampled == 3 and r.n_unsampled == 1
    assert r.scf_star == pytest.approx(1 / (1 + (1 / 3) * 2 * 1 / 2))
    assert scf_from_sampling([0, 0]).scf_star == 0.0


@pytest.mark.parametrize(
    "make",
    [lambda: uniform_poses(300, seed=1), lambda: cone_poses(300, 40, seed=2), lambda: preferred_orientation_poses(300, 0.5, 10, seed=3)],
    ids=["uniform", "cone40", "preferred"],
)
def test_direct_method_equals_the_published_definition(make):
    v = viewing_directions_from_table(make())
    scf, scf_star = _published(v, 6.0, 400)
    r = sampling_compensation_factor(v, 6.0, 400, method="direct")
    assert r.scf == pytest.approx(scf, rel=1e-12)
    assert r.scf_star == pytest.approx(scf_star, rel=1e-12)


def test_uniform_orientations_give_scf_star_close_to_one():
    v = viewing_directions_from_table(uniform_poses(10_000, seed=4))
    for method in ("direct", "binned"):
        r = sampling_compensation_factor(v, 16.0, method=method)
        # finite N: Poisson counts of mean N*eps = 312 lower SCF by about 1/625
        assert r.scf_star > 0.99 and r.n_unsampled == 0 and not r.preferred_orientation, method


def test_single_view_and_narrow_cone_give_low_scf_star():
    v = viewing_directions_from_table(single_view_poses(2000))
    r = sampling_compensation_factor(v, 16.0, method="binned")
    # sampled points (the equatorial band) are all sampled N times: SCF = 1, but the rest are not
    assert r.scf == pytest.approx(1.0) and r.scf_star < 0.01 and r.preferred_orientation
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
