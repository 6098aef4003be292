"""Guinier fit: a known applied B-factor comes back; conventions and windows."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.fourier import radial_frequency_invA
from napari_cryodiag.compute.fourier import irfftn, rfftn
from napari_cryodiag.compute.maps.guinier import fit_guinier, guinier_curve, guinier_curve_of_map, guinier_window
from napari_cryodiag.compute.maps.sharpen import sharpen_map
from napari_cryodiag.errors import CryodiagInputError


def flat_spectrum_map(n=64, seed=0):
    """A real map whose Fourier amplitudes are all 1 (random phases): ln <|F|^2> is flat."""
    rng = np.random.default_rng(seed)
    f = rfftn(rng.normal(size=(n, n, n)).astype(np.float32))
    f /= np.abs(f)
    return irfftn(f, (n, n, n))


@pytest.mark.parametrize("quantity", ["amplitude2", "amplitude"])
@pytest.mark.parametrize("bfactor", [50.0, 150.0])
def test_applied_bfactor_is_recovered(quantity, bfactor):
    n, apix = 64, 1.5
    v = flat_spectrum_map(n)
    s = radial_frequency_invA(v.shape, apix)
    blurred = irfftn(rfftn(v) * np.exp(-bfactor * s**2 / 4).astype(np.float32), v.shape)
    fit = fit_guinier(guinier_curve_of_map(blurred, apix, quantity), 10.0, 3.5)
    assert fit.bfactor_A2 == pytest.approx(bfactor, rel=0.02)
    assert fit.sharpening_bfactor_A2 == pytest.approx(-fit.bfactor_A2)
    assert fit.correlation < -0.99


def test_bfactor_difference_on_a_protein_like_map():
    """Blurring a simulated particle by B = 80 moves its fitted B by 80 (within a few %)."""
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=64, bfactor_A2=20.0)
    base = fit_guinier(guinier_curve_of_map(sim.signal, 1.5), 10.0, 3.5).bfactor_A2
    blurred = sharpen_map(sim.signal, 1.5, 80.0)  # positive B blurs
    after = fit_guinier(guinier_curve_of_map(blurred, 1.5), 10.0, 3.5).bfactor_A2
    assert after - base == pytest.approx(80.0, rel=0.03)


def test_curve_definitions():
    n, apix = 32, 2.0
    v = flat_spectrum_map(n, 1) * 3.0
    f = rfftn(v)
    g2 = guinier_curve(f, v.shape, apix, "amplitude2")
    g1 = guinier_curve(f, v.shape, apix, "amplitude")
    np.testing.assert_allclose(g2.x_invA2, (np.arange(n // 2 + 1) / (n * apix)) ** 2)
    # all amplitudes are 3 (the DC term too, up to rounding): ln 9 and ln 3
    np.testing.assert_allclose(g2.y[1:], np.log(9.0), atol=1e-4)
    np.testing.assert_allclose(g1.y[1:], np.log(3.0), atol=1e-4)


def test_windows():
    n, apix = 100, 1.0
    f = np.arange(n // 2 + 1)
    curve = 1 / (1 + np.exp((f - 30) / 2.0))
    lo, hi, rule = guinier_window("fsc143", curve, apix, n)
    assert lo == 10.0 and rule == "fsc143" and 100 / 34 < hi < 100 / 33
    curve2 = curve.copy()
    curve2[40:] = 0.0
    lo, hi, rule = guinier_window("relion", curve2, apix, n)
    assert hi == pytest.approx(100 / 39)
    assert guinier_window((4.0, 12.0))[:2] == (12.0, 4.0)
    with pytest.raises(ValueError):
        guinier_window("sideways", curve, apix, n)


def test_window_too_small_is_an_input_error():
    v = flat_spectrum_map(16)
    with pytest.raises(CryodiagInputError, match="shells"):
        fit_guinier(guinier_curve_of_map(v, 5.0), 10.0, 9.0)


@pytest.mark.parametrize("quantity", ["amplitude2", "amplitude"])
def test_curve_of_a_masked_map_is_the_shell_mean_of_its_transform(quantity):
    """The curve of map × mask (the sharpened curve of the Map validation dock) is ln of the shell
    mean of |F|² or |F| of the masked map's transform, with or without the caller's shell index
    and counts."""
    from napari_cryodiag.compute.fourier import shell_counts, shell_index, shell_sums

    rng = np.random.default_rng(5)
    n, apix = 40, 1.3
    v = rng.normal(size=(n, n, n)).astype(np.float32)
    zz, yy, xx = np.mgrid[:n, :n, :n] - n / 2
    mask = (np.sqrt(zz**2 + yy**2 + xx**2) < n / 3).astype(np.float32)
    f = np.fft.rfftn((v * mask).astype(np.float64))
    idx = shell_index(v.shape)
    counts = shell_counts(idx, n)
    a = np.abs(f) ** 2 if quantity == "amplitude2" else np.abs(f)
    want = np.log(shell_sums(a, idx, n) / counts)
    for kw in ({}, {"index": idx, "counts": counts}):
        c = guinier_curve_of_map(v, apix, quantity, mask=mask, **kw)
        np.testing.assert_allclose(c.y, want, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(c.x_invA2, (np.arange(n // 2 + 1) / (n * apix)) ** 2)
        np.testing.assert_array_equal(c.counts, counts)


def _filtered_reference(ft, n, apix, weights, bfactor, quantity):
    """Per-shell means of |h F|^q with h = weights[shell] exp(-B s^2/4), coefficient by coefficient
    in float64 (the definition the series must equal)."""
    from napari_cryodiag.compute.fourier import shell_counts, shell_index, shell_sums

    idx = shell_index((n, n, n))
    kz = np.fft.fftfreq(n, apix) ** 2
    s2 = kz[:, None, None] + kz[None, :, None] + np.fft.rfftfreq(n, apix)[None, None, :] ** 2
    with np.errstate(over="ignore", invalid="ignore"):
        h = np.where(weights[idx] > 0, weights[idx] * np.exp(-bfactor * s2 / 4), 0.0)
    p = np.abs(ft.astype(np.complex128)) * h
    if quantity == "amplitude2":
        p = p * p
    return shell_sums(p, idx, n) / np.maximum(shell_counts(idx, n), 1)


@pytest.mark.parametrize("n, apix", [(64, 1.3), (65, 1.1), (48, 0.5)])
@pytest.mark.parametrize("quantity", ["amplitude2", "amplitude"])
def test_filtered_guinier_is_the_curve_of_the_filtered_transform(n, apix, quantity):
    """The sharpened curve from per-shell moments equals the curve of the filtered transform,
    coefficient by coefficient, for sharpening and blurring B, with FSC weighting, zeroing and a
    low-pass; on the 48³ box at 0.5 Å the larger |B| are beyond the series (the direct sum)."""
    from napari_cryodiag.compute.maps.filtered_guinier import MAX_ARGUMENT, FilteredGuinier, series_error_bound
    from napari_cryodiag.compute.maps.sharpen import shell_filter
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=n, pixel_size_A=apix, resolution_A=3.4 * apix, with_mask=False)
    ft = rfftn((sim.half1 + sim.half2) * np.float32(0.5))
    fsc = np.linspace(1.0, -0.1, n // 2 + 1)  # zeroed from where it falls below 1e-4
    weights = shell_filter(n, apix, fsc, lowpass_A=4.0 * apix)
    calls = []

    def source():
        calls.append(1)
        return ft

    fg = FilteredGuinier(source, (n, n, n), apix, quantity)
    assert series_error_bound(MAX_ARGUMENT) < 1e-8
    q = 2 if quantity == "amplitude2" else 1
    beyond = 0
    for b in (0.0, -80.0, -400.0, 150.0, -1000.0):
        ref = _filtered_reference(ft, n, apix, weights, b, quantity)
        got = fg.means(weights, b)
        assert np.isfinite(got).all()
        ok = ref > 0
        assert ok.sum() > n // 8 and np.all(got[~ok] == 0)
        np.testing.assert_allclose(got[ok], ref[ok], rtol=2e-6)
        beyond += abs(q * b / 4) * (n // 2) / (n * apix) ** 2 > MAX_ARGUMENT
        curve = fg.curve(weights, b)
        np.testing.assert_allclose(curve.y[ok], np.log(ref[ok]), atol=2e-6)
        assert np.isnan(curve.y[~ok]).all() and curve.quantity == quantity
    # the transform is read once for the moments, and again only for a B beyond the series
    assert len(calls) == 1 + 2 * beyond  # means() and curve() each
    if (n, apix) == (48, 0.5):
        assert beyond >= 2
