"""Conical FSCs and cFAR on simulated half maps with known (an)isotropy."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.particles.cfar import CFAR_GUIDE, conical_fsc, fsc_area
from napari_cryodiag.compute.fourier import shell_index, shell_sums
from napari_cryodiag.compute.particles.orientations import azimuth_elevation_deg
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.simulate.orientations import anisotropic_half_maps


@pytest.fixture(scope="module")
def isotropic():
    return anisotropic_half_maps(48, 2.0, extra_bfactor_A2=0.0, noise=1.0, seed=1)


@pytest.fixture(scope="module")
def anisotropic():
    return anisotropic_half_maps(48, 2.0, weak_axis=(0, 0, 1), extra_bfactor_A2=2000.0, noise=1.0, seed=1)


def test_fsc_area_of_known_curves():
    f = np.linspace(0, 0.5, 11)  # step 0.05
    # a step: 1 up to 0.2, then 0: crossing interpolated where the line 1 -> 0 hits 0.143
    fsc = np.where(f <= 0.2, 1.0, 0.0)
    area, fc, crossed = fsc_area(fsc, f)
    assert crossed
    assert fc == pytest.approx(0.2 + (1 - 0.143) / 1 * 0.05)
    assert area == pytest.approx(0.2 + 0.5 * (1 + 0.143) * (fc - 0.2))
    # never crosses: area to Nyquist
    area, fc, crossed = fsc_area(np.ones_like(f), f)
    assert not crossed and fc == 0.5 and area == pytest.approx(0.5)


def test_global_fsc_matches_shell_sums(isotropic):
    h1, h2 = isotropic
    r = conical_fsc(h1, h2, 2.0, n_cones=32)
    f1, f2 = np.fft.rfftn(h1), np.fft.rfftn(h2)
    idx = shell_index(h1.shape)
    num = shell_sums((f1 * np.conj(f2)).real, idx, 48)
    den = np.sqrt(shell_sums(np.abs(f1) ** 2, idx, 48) * shell_sums(np.abs(f2) ** 2, idx, 48))
    ref = num / den
    np.testing.assert_allclose(r.global_fsc[1:], ref[1:], atol=1e-5)
    assert r.global_fsc[0] == 1.0


def test_isotropic_maps_have_a_high_cfar(isotropic):
    r = conical_fsc(*isotropic, 2.0)
    assert len(r.axes) == 256 and r.fsc.shape == (256, 25)
    # noise and the particle's own shape make cones differ a little; far from the 0.5 guide
    assert r.cfar > 0.7 and not r.anisotropic


def test_anisotropic_maps_have_a_low_cfar_and_the_worst_cone_on_the_weak_axis(anisotropic, isotropic):
    r = conical_fsc(*anisotropic, 2.0)
    assert r.cfar < CFAR_GUIDE and r.anisotropic
    _, el = azimuth_elevation_deg(r.axes[[r.worst]])
    assert abs(el[0]) > 60  # the weak axis is z: elevation near ±90
    _, el_best = azimuth_elevation_deg(r.axes[[r.best]])
    assert abs(el_best[0]) < 30  # best cones lie near the equator
    assert r.cfar < conical_fsc(*isotropic, 2.0).cfar


def test_binned_cones_agree_with_exact(anisotropic):
    rb = conical_fsc(*anisotropic, 2.0, n_cones=64, method="binned")
    re = conical_fsc(*anisotropic, 2.0, n_cones=64, method="exact")
    assert rb.cfar == pytest.approx(re.cfar, abs=0.03)
    rel = np.abs(rb.areas - re.areas) / re.areas
    # edge cells and the 20-coefficient rule can flip a shell of a cone: a few % on one cone
    assert np.median(rel) < 0.02 and rel.max() < 0.1
    assert np.median(np.abs(rb.fsc - re.fsc)) < 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_white_signal_never_crosses_and_is_isotropic(seed):
    # FSC = 0.9 at every frequency in every direction: no cone crosses 0.143 and every area
    # runs to Nyquist, so cFAR is 1 up to the noise of the cone FSCs
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(48, 48, 48))
    h1 = s + rng.normal(scale=1 / 3, size=s.shape)
    h2 = s + rng.normal(scale=1 / 3, size=s.shape)
    r = conical_fsc(h1, h2, 1.0)
    assert not r.crossed.any()
    assert r.cfar > 0.95
    assert np.abs(r.global_fsc[3:] - 0.9).max() < 0.05


def test_bad_half_maps_are_input_errors():
    with pytest.raises(CryodiagInputError, match="cubic"):
        conical_fsc(np.zeros((8, 8, 8)), np.zeros((8, 8, 9)))
    with pytest.raises(CryodiagInputError):
        conical_fsc(np.zeros((8, 8)), np.zeros((8, 8)))
