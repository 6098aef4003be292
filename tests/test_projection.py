import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_cryodiag.compute import projection as pj
from napari_cryodiag.simulate.density import gaussian_atoms_density


def test_matrix_third_row_is_viewing_direction():
    rot, tilt, psi = 40.0, 70.0, -20.0
    a = pj.euler_to_matrix(rot, tilt, psi)
    np.testing.assert_allclose(a[2], pj.viewing_direction(rot, tilt), atol=1e-12)
    np.testing.assert_allclose(a @ a.T, np.eye(3), atol=1e-12)


def test_euler_round_trips_and_pose_conversion():
    rng = np.random.default_rng(1)
    rotvec = Rotation.random(50, random_state=2).as_rotvec()
    e = pj.pose_to_euler_deg(rotvec)
    np.testing.assert_allclose(
        Rotation.from_euler("ZYZ", e, degrees=True).as_matrix(), Rotation.from_rotvec(rotvec).as_matrix(), atol=1e-10
    )
    np.testing.assert_allclose(pj.matrix_to_euler(pj.euler_to_matrix(*e.T)), e, atol=1e-8)
    np.testing.assert_allclose(
        Rotation.from_rotvec(pj.euler_to_pose(*e.T)).as_matrix(), Rotation.from_rotvec(rotvec).as_matrix(), atol=1e-10
    )
    assert rng is not None


def test_fourier_projection_matches_real_space_projection():
    v = gaussian_atoms_density(32, pixel_size_A=3.0, n_atoms=200, seed=3)
    fp = pj.FourierProjector(v)
    for angles in [(0, 0, 0), (30, 60, 10), (120, 100, -45)]:
        a = pj.euler_to_matrix(*angles)
        p_f = fp.project(a)[0]
        p_r = pj.project_real(v, a)
        assert np.corrcoef(p_f.ravel(), p_r.ravel())[0, 1] > 0.99
        assert p_f.sum() == pytest.approx(p_r.sum(), rel=0.02)


def test_identity_projection_is_sum_along_z_and_shift_moves_image():
    v = gaussian_atoms_density(32, pixel_size_A=3.0, n_atoms=150, seed=4)
    fp = pj.FourierProjector(v)
    p = fp.project(np.eye(3))[0]
    assert np.corrcoef(p.ravel(), v.sum(axis=0).ravel())[0, 1] > 0.99
    shifted = fp.project(np.eye(3), shifts_px=[(3, -2)])[0]
    # integer shifts: the image moves by +3 columns and -2 rows
    np.testing.assert_allclose(shifted, np.roll(np.roll(p, 3, axis=1), -2, axis=0), atol=1e-3 * np.abs(p).max())
