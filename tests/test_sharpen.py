"""Sharpening filter and the validation session's caching ("what-if" mode)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.fourier import shell_index, shell_sums
from napari_cryodiag.compute.fourier import rfftn
from napari_cryodiag.compute.maps.masks import MaskParams
from napari_cryodiag.compute.maps.sharpen import SharpenParams, ValidationSession, fsc_weight, sharpen_map, shell_filter


def test_blur_then_sharpen_restores_the_map():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(32, 32, 32)).astype(np.float32)
    v = sharpen_map(v, 2.0, 0.0)  # band-limit to the Nyquist sphere (the filter zeroes the corners)
    back = sharpen_map(sharpen_map(v, 2.0, 100.0), 2.0, -100.0)
    np.testing.assert_allclose(back, v, atol=1e-4)


def test_fsc_weighting_zeroing_and_lowpass():
    n, apix = 40, 2.0
    fsc = np.linspace(1.0, -0.2, n // 2 + 1)
    w = shell_filter(n, apix, fsc, fsc_weighting=True, zero_below_fsc=1e-4)
    first_zero = int(np.nonzero(fsc[1:] <= 1e-4)[0][0]) + 1
    np.testing.assert_allclose(w[1:first_zero], np.sqrt(2 * fsc[1:first_zero] / (1 + fsc[1:first_zero])))
    assert np.all(w[first_zero:] == 0) and w[0] == 1.0
    assert fsc_weight(np.array([1.0, 0.0, -0.5]))[0] == 1.0
    # low-pass: 1 well below, 0 from the cut-off shell on (20 Å -> shell 4)
    lp = shell_filter(n, apix, None, lowpass_A=20.0, lowpass_edge_shells=2)
    assert lp[1] == 1.0 and lp[2] == 1.0 and 0 < lp[3] < 1 and np.all(lp[4:] == 0)
    rng = np.random.default_rng(1)
    v = rng.normal(size=(n, n, n)).astype(np.float32)
    out = sharpen_map(v, apix, 0.0, None, fsc_weighting=False, lowpass_A=20.0)
    idx = shell_index(v.shape)
    f = rfftn(out)
    p = shell_sums(np.abs(f) ** 2, idx, n)
    assert np.all(p[5:] < 1e-6 * p[1])


def _reference_sharpened(v, apix, b, fsc=None, **kw):
    """The module doc's formula in float64: F * exp(-B s^2/4) * w(s) per coefficient."""
    n = v.shape[0]
    f = np.fft.rfftn(v.astype(np.float64))
    kz, ky = (np.fft.fftfreq(n, d=apix) for _ in range(2))
    kx = np.fft.rfftfreq(n, d=apix)
    s2 = kz[:, None, None] ** 2 + ky[None, :, None] ** 2 + kx[None, None, :] ** 2
    w = shell_filter(n, apix, fsc, **kw)[shell_index(v.shape)]
    return np.fft.irfftn(f * np.exp(-b / 4.0 * s2) * w, s=v.shape)


def test_what_if_steps_equal_the_formula_for_each_b_and_filter():
    """A session's sharpener caches the shell-weighted transform (and a work array) between
    steps: every B, a new FSC weighting and a low-pass give the formula's map, like the one-shot
    sharpen_map, and the cached transform is left intact."""
    from napari_cryodiag.compute.maps.sharpen import Sharpener

    rng = np.random.default_rng(4)
    n, apix = 48, 1.5
    v = sharpen_map(rng.normal(size=(n, n, n)).astype(np.float32), apix, 0.0)
    fsc = np.clip(np.linspace(1.1, -0.3, n // 2 + 1), -1, 1)
    sh = Sharpener(rfftn(v), v.shape, apix, shell_index(v.shape), cache=True)
    ft0 = sh.ft.copy()
    scale = np.abs(v).max()
    for b, f, kw in ((-80.0, fsc, {}), (-120.0, fsc, {}), (60.0, fsc, {}), (-80.0, None, {"lowpass_A": 6.0}),
                     (-80.0, fsc, {"fsc_weighting": False}), (-100.0, fsc, {})):
        got = sh.apply(b, f, **kw)
        ref = _reference_sharpened(v, apix, b, f, **kw)
        assert got.dtype == np.float32 and got.shape == v.shape
        np.testing.assert_allclose(got, ref, atol=2e-5 * max(scale, np.abs(ref).max()))
        np.testing.assert_allclose(sharpen_map(v, apix, b, f, **kw), got, atol=2e-5 * np.abs(ref).max())
    np.testing.assert_array_equal(sh.ft, ft0)


@pytest.fixture(scope="module")
def session():
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=64, seed=2)
    s = ValidationSession(sim.half1, sim.half2, sim.pixel_size_A)
    s.compute()
    return s, sim


def test_session_what_if_recomputes_only_what_changed(session):
    s, sim = session
    f1 = s.halfmaps.transforms[0]
    fsc_before = s.fsc
    s.recomputed = []
    # B changes: only the filter
    s.sharpen(SharpenParams(bfactor_A2=-50))
    assert s.recomputed == ["sharpen"]
    a = s.sharpened.copy()
    s.recomputed = []
    s.sharpen(SharpenParams(bfactor_A2=-120))
    assert s.recomputed == ["sharpen"] and not np.allclose(a, s.sharpened)
    # same settings: nothing recomputed
    s.compute()
    assert s.recomputed == [] and s.fsc is fsc_before
    # a mask parameter changes: masks, FSC and Guinier again, but not the half maps' transforms
    s.compute(mask_params=MaskParams(tight_dilate_A=8.0, tight_soft_A=16.0))
    assert s.recomputed == ["masks", "fsc", "guinier"]
    assert s.halfmaps.transforms[0] is f1
    assert s.fsc is not fsc_before
    # a user mask: FSC with it, masks untouched
    s.compute(mask_params=MaskParams(tight_dilate_A=8.0, tight_soft_A=16.0), mask=sim.mask)
    assert s.recomputed == ["fsc", "guinier"] and s.fsc.corrected_mask == "user"


def test_default_sharpening_uses_the_fitted_bfactor(session):
    s, _ = session
    s.compute()
    out = s.sharpen(SharpenParams(fsc_weighting=False))
    assert s.sharpen_used.bfactor_A2 == pytest.approx(-s.guinier.bfactor_A2)
    assert s.sharpen_used.bfactor_A2 < 0
    # sharpening flattens the Guinier curve inside the fit window
    from napari_cryodiag.compute.maps.guinier import fit_guinier, guinier_curve_of_map

    m = s.fsc.masks["tight"]
    fit = fit_guinier(guinier_curve_of_map(out, s.halfmaps.pixel_size_A, mask=m), s.guinier.low_A, s.guinier.high_A)
    assert abs(fit.bfactor_A2) < 0.1 * s.guinier.bfactor_A2  # ~100 Å² -> ~6 Å²
    masked = s.sharpen(SharpenParams(apply_mask=True))
    assert np.all(masked[m == 0] == 0)


@pytest.mark.parametrize("n", [32, 33])
def test_a_plane_is_the_plane_of_the_whole_map(n):
    """Sharpener.plane (a matrix-vector product over the shell-weighted transform and a 2D inverse
    FFT) gives apply's plane along each axis, even and odd boxes, for sharpening and blurring B,
    with FSC weighting, a low-pass or neither; planes() stacks several along the axis."""
    from napari_cryodiag.compute.maps.sharpen import Sharpener

    rng = np.random.default_rng(7)
    apix = 1.3
    v = rng.normal(size=(n, n, n)).astype(np.float32)
    sh = Sharpener(rfftn(v), v.shape, apix, shell_index(v.shape), cache=True)
    fsc = np.clip(np.linspace(1.1, -0.3, n // 2 + 1), -1, 1)
    for b, f, kw in ((-80.0, fsc, {}), (40.0, None, {"lowpass_A": 6.0}), (-150.0, fsc, {"fsc_weighting": False}),
                     (0.0, None, {})):
        full = sh.apply(b, f, **kw)
        tol = 1e-5 * np.abs(full).max()
        for axis in range(3):
            for j in (0, 1, n // 2, n - 1, -2):
                got = sh.plane(b, f, axis, j, **kw)
                assert got.dtype == np.float32 and got.shape == tuple(np.delete(v.shape, axis))
                np.testing.assert_allclose(got, np.take(full, j, axis=axis), atol=tol)
            idx = [3, 0, n - 1]
            np.testing.assert_allclose(sh.planes(b, f, axis, idx, **kw), np.take(full, idx, axis=axis), atol=tol)
    with pytest.raises(IndexError):
        sh.plane(-80.0, fsc, 0, n)


def test_sharpened_map_computes_planes_until_the_whole_map_is_asked_for():
    """ValidationSession.sharpen(lazy=True): indexing that fixes one axis (or a few planes) gives
    the whole map's values without computing it; np.asarray and session.sharpened give the very map
    the eager sharpen gives (masked with apply_mask), computed once, and read-only through the
    array protocol."""
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=40, seed=3)
    s = ValidationSession(sim.half1, sim.half2, sim.pixel_size_A)
    s.compute()
    for params in (SharpenParams(bfactor_A2=-60.0), SharpenParams(bfactor_A2=-90.0, lowpass_A=8.0),
                   SharpenParams(apply_mask=True)):
        eager = s.sharpen(params).copy()
        m = s.sharpen(params, lazy=True)
        assert not m.computed and m.shape == eager.shape and m.dtype == np.float32 and m.ndim == 3
        tol = 1e-5 * np.abs(eager).max()
        for key in (5, -1, (slice(None), 7), (Ellipsis, 3), (slice(10, 13),), (slice(None), slice(2, 4), 9),
                    (20, slice(5, 30, 2), 3), (np.int64(4), slice(None), slice(None))):
            np.testing.assert_allclose(m[key], eager[key], atol=tol, err_msg=str(key))
        assert not m.computed
        if params.apply_mask:
            mask = s.fsc.masks[s.fsc.corrected_mask]
            assert np.all(m[:, 20][mask[:, 20] == 0] == 0)
        arr = np.asarray(m)
        assert m.computed and not arr.flags.writeable
        np.testing.assert_array_equal(arr, eager)  # the same computation: identical
        assert s.sharpened is m.full() and s.sharpened is m.full()  # computed once
        np.testing.assert_array_equal(m[::2, 3], eager[::2, 3])
        assert s.sharpen_used.bfactor_A2 == pytest.approx(
            params.bfactor_A2 if params.bfactor_A2 is not None else s.guinier.sharpening_bfactor_A2)


def test_sharpened_map_planes_while_another_thread_computes_maps():
    """A plane read on one thread while another computes whole maps of other B (the widget's GUI
    thread and its worker) is still the right plane, and each whole map is right."""
    import threading

    from napari_cryodiag.compute.maps.sharpen import SharpenedMap, Sharpener

    rng = np.random.default_rng(9)
    n, apix = 48, 1.2
    v = rng.normal(size=(n, n, n)).astype(np.float32)
    sh = Sharpener(rfftn(v), v.shape, apix, shell_index(v.shape), cache=True)
    refs = {b: sharpen_map(v, apix, b) for b in (-20.0, -40.0, -60.0, -80.0)}
    maps = {b: SharpenedMap(sh, b) for b in refs}
    errors = []

    def whole():
        for b in (-20.0, -40.0):
            if not np.allclose(maps[b].full(), refs[b], atol=1e-5 * np.abs(refs[b]).max()):
                errors.append(b)

    t = threading.Thread(target=whole)
    t.start()
    for _ in range(5):
        for b in (-60.0, -80.0):
            for axis in range(3):
                np.testing.assert_allclose(maps[b].plane(axis, 11), np.take(refs[b], 11, axis=axis),
                                           atol=1e-5 * np.abs(refs[b]).max())
    t.join()
    assert errors == [] and not maps[-60.0].computed
