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
