"""Pose conversions, viewing-direction histogram, direction binning, simulated pose sets,
and the whole orientation diagnostic on the real RELION and cryoSPARC particle files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from napari_cryodiag.compute.particles.orientations import (
    DirectionGrid,
    azimuth_elevation_deg,
    bin_directions,
    fibonacci_hemisphere,
    fibonacci_sphere,
    rotvec_to_euler_deg,
    viewing_direction_histogram,
    viewing_directions,
    viewing_directions_from_rotvec,
    viewing_directions_from_table,
)
from napari_cryodiag.workflows.orientations import orientation_diagnostics
from napari_cryodiag.compute.projection import euler_to_matrix
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.simulate.orientations import (
    cone_poses,
    preferred_orientation_poses,
    single_view_poses,
    table_to_rotvec,
    uniform_poses,
)

CS = "cryosparc/cryosparc_P12_J24_001_particles.cs"
STAR = "relion13-tutorial/particles_autopick_sort_class2d_class3d.star"


# ----------------------------------------------------------------------------- conversions
def test_rotvec_euler_matrix_round_trip_matches_scipy():
    rv = Rotation.random(500, random_state=1).as_rotvec()
    e = rotvec_to_euler_deg(rv)
    np.testing.assert_allclose(e, Rotation.from_rotvec(rv).as_euler("ZYZ", degrees=True), atol=1e-9)
    # Euler -> RELION matrix A = R^T, and back to the same rotation
    a = euler_to_matrix(e[:, 0], e[:, 1], e[:, 2])
    np.testing.assert_allclose(a, np.transpose(Rotation.from_rotvec(rv).as_matrix(), (0, 2, 1)), atol=1e-9)
    back = Rotation.from_matrix(np.transpose(a, (0, 2, 1))).as_rotvec()
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), Rotation.from_rotvec(rv).as_matrix(), atol=1e-9)


def test_viewing_direction_is_third_row_of_A_from_euler_and_from_rotvec():
    rv = Rotation.random(400, random_state=2).as_rotvec()
    e = rotvec_to_euler_deg(rv)
    a = euler_to_matrix(e[:, 0], e[:, 1], e[:, 2])
    third_row = a[:, 2, :]
    np.testing.assert_allclose(viewing_directions(e[:, 0], e[:, 1]), third_row, atol=1e-9)
    # Rodrigues shortcut, straight from the axis-angle vectors
    np.testing.assert_allclose(viewing_directions_from_rotvec(rv), third_row, atol=1e-9)
    np.testing.assert_allclose(viewing_directions_from_rotvec(rv), Rotation.from_rotvec(rv).apply([0, 0, 1.0]), atol=1e-12)


def test_cryosparc_pose_convention_matches_the_pyem_csparc2star_route():
    # pyem (csparc2star) takes RELION's A = expmap(pose), an exponential map written with the
    # transposed cross-product matrix, i.e. A = R(pose)^T. Written out independently here.
    rng = np.random.default_rng(11)
    for pose in rng.normal(size=(50, 3)):
        theta = np.linalg.norm(pose)
        w = pose / theta
        k = -np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        a = np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * k @ k
        np.testing.assert_allclose(viewing_directions_from_rotvec(pose[None]), a[2][None], atol=1e-12)
        rot, tilt, psi = rotvec_to_euler_deg(pose)
        np.testing.assert_allclose(euler_to_matrix(rot, tilt, psi), a, atol=1e-9)


def test_zero_rotvec_looks_down_z():
    v = viewing_directions_from_rotvec(np.zeros((3, 3)))
    np.testing.assert_array_equal(v, np.tile([0.0, 0.0, 1.0], (3, 1)))


def test_azimuth_is_rot_and_elevation_is_90_minus_tilt():
    rng = np.random.default_rng(3)
    rot = rng.uniform(-179, 179, 300)
    tilt = rng.uniform(1, 179, 300)
    az, el = azimuth_elevation_deg(viewing_directions(rot, tilt))
    np.testing.assert_allclose(az, rot, atol=1e-9)
    np.testing.assert_allclose(el, 90 - tilt, atol=1e-9)


def test_table_without_poses_is_an_input_error():
    t = pd.DataFrame({"x_px": [1.0, 2.0]})
    t.attrs["source"] = "picks.star"
    with pytest.raises(CryodiagInputError, match="picks.star"):
        viewing_directions_from_table(t)
    t2 = pd.DataFrame({"rot_deg": [1.0, np.nan], "tilt_deg": [3.0, 4.0]})
    with pytest.raises(CryodiagInputError, match="finite"):
        viewing_directions_from_table(t2)


# ----------------------------------------------------------------------------- histogram
def test_poses_looking_down_z_fill_a_single_bin_at_elevation_90():
    t = single_view_poses(1000, seed=4)  # tilt 0, random psi
    rng = np.random.default_rng(0)
    t["rot_deg"] = rng.uniform(-180, 180, len(t))  # rot is undefined at the pole: any value
    for v in (viewing_directions_from_table(t), viewing_directions_from_rotvec(table_to_rotvec(t))):
        h = viewing_direction_histogram(v, 72, 36)
        nz = np.argwhere(h.counts > 0)
        assert len(nz) == 1
        i_el, i_az = nz[0]
        assert h.counts[i_el, i_az] == 1000
        assert i_el == 35 and h.elevation_edges_deg[-1] == 90.0
        assert h.azimuth_edges_deg[i_az] <= 0.0 < h.azimuth_edges_deg[i_az + 1]


def test_equal_area_bins_make_a_uniform_set_flat():
    v = viewing_directions_from_table(uniform_poses(200_000, seed=5))
    h = viewing_direction_histogram(v, 36, 18)
    assert h.counts.sum() == 200_000
    expected = 200_000 / h.counts.size
    # Poisson: chi-square per bin ~ 1; equal-area bins, so the polar rows are not depleted
    chi2 = ((h.counts - expected) ** 2 / expected).mean()
    assert 0.7 < chi2 < 1.3
    assert abs(h.counts[0].mean() / expected - 1) < 0.05 and abs(h.counts[-1].mean() / expected - 1) < 0.05
    assert np.allclose(np.diff(np.sin(np.radians(h.elevation_edges_deg))), 2 / 18)
    # whereas bins uniform in elevation angle deplete the polar rows by their smaller area
    az, el = azimuth_elevation_deg(v)
    naive, _, _ = np.histogram2d(el, az, bins=[np.linspace(-90, 90, 19), np.linspace(-180, 180, 37)])
    polar_area_ratio = (1 - np.sin(np.radians(80))) / (2 / 18)
    assert naive[-1].mean() / expected == pytest.approx(polar_area_ratio, rel=0.1)
    assert h.bin_solid_angle_sr == pytest.approx(4 * np.pi / (36 * 18))


def test_histogram_matches_np_histogram2d_on_the_same_edges():
    v = viewing_directions_from_table(preferred_orientation_poses(20_000, 0.5, 20, seed=6))
    h = viewing_direction_histogram(v, 24, 12)
    az, el = azimuth_elevation_deg(v)
    ref, _, _ = np.histogram2d(el, az, bins=[h.elevation_edges_deg, h.azimuth_edges_deg])
    # arcsin edges vs. z-codes can disagree only for points within rounding of an edge
    assert np.abs(h.counts - ref).sum() <= 4


# ----------------------------------------------------------------------------- grids, binning
def test_fibonacci_points_are_unit_and_uniform():
    p = fibonacci_sphere(4000)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1, atol=1e-12)
    assert abs(p.mean(axis=0)).max() < 1e-3
    hp = fibonacci_hemisphere(2000)
    assert (hp[:, 2] > 0).all() and abs(hp[:, 2].mean() - 0.5) < 1e-3


def test_direction_grid_cells_are_small_and_fold_antipodes():
    g = DirectionGrid(2.0)
    assert 4500 < g.n_cells < 5700
    v = fibonacci_sphere(20000)
    idx = g.cell_index(v)
    assert idx.min() >= 0 and idx.max() < g.n_cells
    np.testing.assert_array_equal(g.cell_index(-v), idx)
    centres = g.cell_centres()
    folded = v * np.where(v[:, 2] < 0, -1, 1)[:, None]
    ang = np.degrees(np.arccos(np.clip((centres[idx] * folded).sum(axis=1), -1, 1)))
    assert ang.max() < 2.0 * 1.5  # within about a cell (polar cap cells are the widest)


def test_bin_directions_keeps_counts_weights_and_moments():
    t = cone_poses(5000, 25, seed=7)
    v = viewing_directions_from_table(t)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(v))
    b = bin_directions(v, w)
    assert b.count.sum() == 5000 and b.weight.sum() == pytest.approx(w.sum())
    # moments reproduce the global first moment (all directions are on the upper hemisphere here)
    np.testing.assert_allclose((b.mean * b.count[:, None]).sum(axis=0), v.sum(axis=0), rtol=1e-10)
    # second moments are consistent: E[vv^T] - m m^T is positive semi-definite per cell
    var = b.second[:, :3].sum(axis=1) - (b.mean**2).sum(axis=1)
    assert var.min() > -1e-12


# ----------------------------------------------------------------------------- simulations
def test_simulated_sets_have_the_requested_directions():
    v = viewing_directions_from_table(cone_poses(3000, 15, axis=(1, 0, 0), seed=8))
    ang = np.degrees(np.arccos(np.clip(v[:, 0], -1, 1)))
    assert ang.max() <= 15 + 1e-6 and ang.max() > 14
    v = viewing_directions_from_table(single_view_poses(100, direction=(0, 1, 0)))
    np.testing.assert_allclose(v, np.tile([0, 1, 0], (100, 1)), atol=1e-12)
    v = viewing_directions_from_table(preferred_orientation_poses(10000, 0.8, 10, seed=9))
    top = np.degrees(np.arccos(np.clip(v[:, 2], -1, 1))) <= 10
    assert 0.8 <= top.mean() < 0.82  # 80 % top views plus the few uniform ones inside the cone


# ----------------------------------------------------------------------------- real files
def test_real_cryosparc_refinement(shared_data):
    from napari_cryodiag.io.picks import read_table

    t = read_table(shared_data / CS)
    assert len(t) == 2019
    raw = np.load(shared_data / CS)
    # the reader's Euler angles give the same viewing directions as the raw axis-angle poses
    np.testing.assert_allclose(
        viewing_directions_from_table(t), viewing_directions_from_rotvec(raw["alignments3D/pose"]), atol=1e-5
    )
    r = orientation_diagnostics(t)
    assert r.box_px == 180 and r.radius_px == 45.0 and r.pixel_size_A == pytest.approx(2.95)
    assert r.histogram.counts.sum() == 2019
    # two antipodal clusters of views: about a third of the equal-area bins are occupied
    assert 0.25 < (r.histogram.counts > 0).mean() < 0.5
    # values measured on this file (direct SCF): SCF 0.512, SCF* 0.507 -> preferred orientation
    assert r.scf.method == "direct"
    assert 0.45 < r.scf.scf_star < 0.56 and r.scf.preferred_orientation
    assert r.maps.posterior_precision is not None
    # every radial direction is sampled at least once at R = 45
    assert r.maps.fourier_sampling.min() > 0.5


def test_real_relion_particles(shared_data):
    from napari_cryodiag.io.picks import read_table

    t = read_table(shared_data / STAR)
    assert len(t) == 6496
    r = orientation_diagnostics(t)
    assert r.box_px is None and r.radius_px == 32.0  # the STAR does not tell the box
    assert r.histogram.counts.sum() == 6496
    # RELION 1.3 refined on a HEALPix grid: few distinct directions, many particles per bin
    assert r.histogram.counts.max() > 50
    # measured: SCF 0.545, SCF* 0.471 (36 of 6434 points unsampled at R = 32)
    assert 0.40 < r.scf.scf_star < 0.55 and r.scf.n_unsampled > 0
    assert r.scf.scf_star < r.scf.scf
    # lower radius -> thicker slabs -> every point sampled and a higher SCF
    r16 = orientation_diagnostics(t, radius_px=16)
    assert r16.scf.n_unsampled == 0 and r16.scf.scf_star > r.scf.scf_star


def test_box_size_from_the_particle_stack_header(shared_data):
    from napari_cryodiag.workflows.orientations import particle_box_px as table_box_px
    from napari_cryodiag.io.picks import read_table

    t = read_table(shared_data / "empiar-10076" / "empiar_10076_7.star")  # stack next to the STAR
    assert table_box_px(t) == 320
