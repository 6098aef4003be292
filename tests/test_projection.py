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


class _MapCoordinatesProjector:
    """The former FourierProjector (two ``map_coordinates`` calls per image on the centred
    complex128 -> float32 transform), kept as the reference of the vectorised one."""

    def __init__(self, volume, pad=2):
        from scipy import ndimage

        self._ndimage = ndimage
        vol = np.asarray(volume, dtype=np.float32)
        self.n = n = vol.shape[0]
        self.pad = pad
        big = pad * n
        padded = np.zeros((big, big, big), dtype=np.float32)
        o = big // 2 - n // 2
        padded[o : o + n, o : o + n, o : o + n] = vol
        ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(padded)))
        self._re = np.ascontiguousarray(ft.real.astype(np.float32))
        self._im = np.ascontiguousarray(ft.imag.astype(np.float32))
        self._centre = big // 2
        ky = np.fft.fftfreq(n, d=1.0 / n)
        kx = np.fft.rfftfreq(n, d=1.0 / n)
        self._kx, self._ky = np.meshgrid(kx, ky)
        self._inside = (self._kx**2 + self._ky**2) <= (n // 2) ** 2

    def project_ft(self, matrices, shifts_px=None):
        mats = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
        n = self.n
        kx = self._kx[self._inside]
        ky = self._ky[self._inside]
        out = np.zeros((len(mats), n, n // 2 + 1), dtype=np.complex64)
        for i, a in enumerate(mats):
            fx = a[0, 0] * kx + a[1, 0] * ky
            fy = a[0, 1] * kx + a[1, 1] * ky
            fz = a[0, 2] * kx + a[1, 2] * ky
            coords = np.stack([fz, fy, fx]) * self.pad + self._centre
            re = self._ndimage.map_coordinates(self._re, coords, order=1, mode="constant", prefilter=False)
            im = self._ndimage.map_coordinates(self._im, coords, order=1, mode="constant", prefilter=False)
            out[i][self._inside] = re + 1j * im
        if shifts_px is not None:
            sh = np.asarray(shifts_px, dtype=np.float64).reshape(-1, 2)
            phase = np.exp(
                -2j * np.pi * (sh[:, 0, None, None] * self._kx[None] + sh[:, 1, None, None] * self._ky[None]) / n
            )
            out *= phase.astype(np.complex64)
        return out


def _test_matrices():
    """Random rotations plus the special ones whose slices hit the grid edges exactly: identity,
    signed axis permutations (exact integers) and Euler multiples of 90° (with 1e-17 residues)."""
    perms = []
    for p in ([0, 1, 2], [1, 0, 2], [2, 0, 1], [0, 2, 1]):
        for s in ([1, 1, 1], [-1, -1, 1], [1, -1, -1], [-1, 1, -1]):
            m = np.eye(3)[p] * np.array(s, float)[:, None]
            perms.append(m if np.linalg.det(m) > 0 else -m)
    quarter = pj.euler_to_matrix([0, 90, 90, 180, 0, 270], [90, 90, 0, 180, 180, 90], [0, 90, 180, 0, 45, -90])
    rand = pj.euler_to_matrix(*Rotation.random(40, random_state=5).as_euler("ZYZ", degrees=True).T)
    return np.concatenate([np.array(perms), quarter, rand])


@pytest.mark.parametrize("n, pad", [(32, 2), (33, 2), (24, 1), (17, 3)])
def test_fourier_projector_matches_map_coordinates_reference(n, pad):
    v = gaussian_atoms_density(n, pixel_size_A=3.0, n_atoms=120, seed=6)
    mats = _test_matrices()
    shifts = np.random.default_rng(7).uniform(-4, 4, size=(len(mats), 2))
    ref = _MapCoordinatesProjector(v, pad=pad).project_ft(mats, shifts)
    fp = pj.FourierProjector(v, pad=pad)
    new = fp.project_ft(mats, shifts)
    assert new.dtype == np.complex64 and new.shape == ref.shape == (len(mats), n, n // 2 + 1)
    # the same coefficients are sampled (including the zeroed sliver at Nyquist) ...
    np.testing.assert_array_equal(new == 0, ref == 0)
    n_zero_edge = (ref == 0).sum() - (~fp._inside).sum() * len(mats)
    if n % 2 == 0:  # Nyquist +n/2 lands at pad n/2, past the last grid index: edge rule exercised
        assert n_zero_edge > 0
    else:  # odd n: Nyquist (n//2) pad stays on the grid, every in-Nyquist coefficient is sampled
        assert n_zero_edge == 0
    # ... with the same values to float32 rounding (observed ~2e-7 of the largest coefficient)
    scale = np.abs(ref).max()
    assert np.abs(new - ref).max() <= 2e-6 * scale
    # coefficient by coefficient, not only the large ones
    big = np.abs(ref) > 1e-3 * scale
    assert np.abs(new - ref)[big].max() <= 1e-4 * np.abs(ref)[big].min() + 2e-6 * scale
    imgs = fp.project(mats[:5], shifts[:5])
    ref_imgs = np.fft.fftshift(np.fft.irfft2(ref[:5], s=(n, n)), axes=(-2, -1))
    assert np.abs(imgs - ref_imgs).max() <= 1e-5 * np.abs(ref_imgs).max()


def test_fourier_projector_batches_do_not_change_results():
    v = gaussian_atoms_density(32, pixel_size_A=3.0, n_atoms=120, seed=8)
    fp = pj.FourierProjector(v)
    mats = _test_matrices()
    shifts = np.random.default_rng(9).uniform(-4, 4, size=(len(mats), 2))
    whole = fp.project_ft(mats, shifts)
    one_by_one = np.concatenate([fp.project_ft(m, s) for m, s in zip(mats, shifts)])
    fp._points_per_step = 1000  # several images per step, and steps that split the set unevenly
    stepped = fp.project_ft(mats, shifts)
    np.testing.assert_array_equal(whole, one_by_one)
    np.testing.assert_array_equal(whole, stepped)
    # one shift broadcast to every image equals the same shift given per image
    np.testing.assert_array_equal(fp.project_ft(mats[:3], [(1.5, -2.0)]), fp.project_ft(mats[:3], [(1.5, -2.0)] * 3))


def test_fourier_projector_memory_is_a_complex64_half_transform():
    import tracemalloc

    n, pad = 48, 2
    big = n * pad
    v = np.random.default_rng(0).standard_normal((n, n, n)).astype(np.float32)
    tracemalloc.start()
    try:
        fp = pj.FourierProjector(v, pad=pad)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    arrays = sum(a.nbytes for a in vars(fp).values() if isinstance(a, np.ndarray))
    # kept: the kx >= 0 half in complex64 (+2 planes/rows/columns), ~4.4 bytes per padded voxel
    # (the former two float32 copies of the full transform held 8; its build peaked at ~56)
    assert arrays < 5.0 * big**3
    assert held < 5.0 * big**3
    # build: the float32 padded map and the complex64 half transform at most, no complex128
    assert peak < 10.0 * big**3
