import numpy as np
import pytest

from napari_cryodiag.compute.ctf import ctf_2d, electron_wavelength_A


def test_wavelength_300kv():
    assert electron_wavelength_A(300) == pytest.approx(0.019687, abs=2e-6)


def test_ctf_dc_is_amplitude_contrast_and_first_zero_matches_theory():
    n, apix, df = 512, 1.0, 20000.0
    c = ctf_2d((n, n), apix, df, df, 0, voltage_kV=300, cs_mm=0.0, amplitude_contrast=0.1)
    assert c.shape == (n, n // 2 + 1)
    assert c[0, 0] == pytest.approx(0.1, abs=1e-6)
    # along x, with Cs = 0: chi = pi*lam*df*s^2 + asin(0.1); first zero at chi = pi
    lam = electron_wavelength_A(300)
    s_zero = np.sqrt((np.pi - np.arcsin(0.1)) / (np.pi * lam * df))
    row = c[0]
    s = np.fft.rfftfreq(n, apix)
    first = np.argmax(np.sign(row[:-1]) != np.sign(row[1:]))
    assert s[first] <= s_zero <= s[first + 1]


def test_astigmatism_axis():
    n = 256
    # dU along x (angle 0): larger defocus along x -> faster oscillation along x than y
    c = ctf_2d((n, n), 1.0, 30000, 10000, 0.0, rfft=False)
    along_x = np.sum(np.abs(np.diff(np.sign(c[0, : n // 2]))) > 0)
    along_y = np.sum(np.abs(np.diff(np.sign(c[: n // 2, 0]))) > 0)
    assert along_x > along_y
    c90 = ctf_2d((n, n), 1.0, 30000, 10000, 90.0, rfft=False)
    np.testing.assert_allclose(c90[0, : n // 2], c[: n // 2, 0], atol=1e-5)


def test_ctf_stack_matches_one_image_at_a_time():
    from napari_cryodiag.compute.ctf import ctf_2d_stack

    rng = np.random.default_rng(0)
    m = 5
    du = rng.uniform(8000, 30000, m)
    dv = du - rng.uniform(0, 800, m)
    ang = rng.uniform(0, 180, m)
    kv = np.array([300, 300, 200, 300, 120.0])
    q0 = rng.uniform(0.05, 0.1, m)
    ph = np.array([0, 0, 30, 0, 90.0])
    stack = ctf_2d_stack((64, 64), 1.3, du, dv, ang, kv, 2.7, q0, ph, bfactor_A2=20.0)
    assert stack.shape == (m, 64, 33) and stack.dtype == np.float32
    for i in range(m):
        one = ctf_2d((64, 64), 1.3, du[i], dv[i], ang[i], kv[i], 2.7, q0[i], ph[i], bfactor_A2=20.0)
        np.testing.assert_allclose(stack[i], one, atol=1e-6)
    # scalars broadcast to one image
    assert ctf_2d_stack((8, 8), 1.0, 10000, 10000).shape == (1, 8, 5)
