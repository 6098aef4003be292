"""Masks: spherical preset geometry, loose/tight distances from a known region, user-mask checks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.maps.masks import MaskParams, auto_masks, check_user_mask, cosine_edge, spherical_mask
from napari_cryodiag.errors import CryodiagInputError


def test_cosine_edge_values():
    d = np.array([0.0, 6.0, 9.0, 12.0, 20.0])
    np.testing.assert_allclose(cosine_edge(d, 6.0, 12.0), [1, 1, 0.5, 0, 0], atol=1e-6)


def test_spherical_mask_geometry():
    n = 40
    m = spherical_mask((n, n, n))
    c = n // 2
    outer = n / 2
    assert m[c, c, c] == 1.0
    assert m[c, c, c + int(0.85 * outer) - 1] == 1.0  # inside the inner radius
    assert m[c, c, 0] == pytest.approx(0.0, abs=1e-6)  # at the outer radius (20 px)
    assert m[0, 0, 0] == 0.0
    r_mid = 0.5 * (0.85 * outer + outer)  # 18.5 px -> cosine midpoint
    mid = spherical_mask((n, n, n), outer_radius_px=outer)[c, c, c + 18]
    assert mid == pytest.approx(0.5 * (1 + np.cos(np.pi * (18 - 17) / 3)), abs=1e-5)
    assert r_mid == 18.5
    assert m.dtype == np.float32


def test_loose_and_tight_follow_distance_from_threshold_region():
    n, apix, radius_A = 64, 2.0, 20.0
    z, y, x = np.indices((n, n, n)) - n // 2
    r_A = np.sqrt(x**2 + y**2 + z**2) * apix
    ball = (r_A <= radius_A).astype(np.float32)  # threshold at 50 % gives the ball itself
    masks = auto_masks(ball, apix, MaskParams(lowpass_A=0))
    tight, loose = masks["tight"], masks["loose"]
    c = n // 2
    # along +x: voxel at distance d (Å) beyond the ball surface
    def at(mask, d_A):
        return mask[c, c, c + int(round((radius_A + d_A) / apix))]

    assert at(tight, 0) == 1.0 and at(tight, 6) == 1.0
    assert at(tight, 8) == pytest.approx(0.5 * (1 + np.cos(np.pi * 2 / 6)), abs=1e-5)
    assert at(tight, 12) == 0.0
    assert at(loose, 24) == 1.0
    assert at(loose, 32) == pytest.approx(0.5 * (1 + np.cos(np.pi * 7 / 15)), abs=1e-5)
    assert at(loose, 40) == 0.0
    assert loose.sum() > tight.sum() > ball.sum()
    # parameters are adjustable
    wider = auto_masks(ball, apix, MaskParams(lowpass_A=0, tight_dilate_A=10, tight_soft_A=16), which=("tight",))["tight"]
    assert at(wider, 10) == 1.0 and wider.sum() > tight.sum()


def test_user_mask_checks():
    shape = (8, 8, 8)
    good = np.full(shape, 0.5, np.float32)
    assert check_user_mask(good, shape, "m.mrc").dtype == np.float32
    with pytest.raises(CryodiagInputError, match=r"m\.mrc.*\[0, 1\]"):
        check_user_mask(good * 3, shape, "m.mrc")
    with pytest.raises(CryodiagInputError, match=r"m\.mrc.*grid"):
        check_user_mask(np.ones((8, 8, 9)), shape, "m.mrc")
    with pytest.raises(CryodiagInputError, match="empty"):
        check_user_mask(np.zeros(shape), shape, "m.mrc")


def test_distance_transform_backends_and_crop_agree():
    from scipy import ndimage

    from napari_cryodiag.compute.maps.masks import distance_from_region_A

    rng = np.random.default_rng(0)
    region = np.zeros((40, 40, 40), bool)
    region[12:20, 15:30, 10:18] = True
    region[rng.integers(10, 30, 30), rng.integers(10, 30, 30), rng.integers(10, 30, 30)] = True
    ref = ndimage.distance_transform_edt(~region, sampling=1.3)
    full = distance_from_region_A(region, 1.3)  # edt package if installed, else scipy
    np.testing.assert_allclose(full, ref, atol=1e-4)
    cropped = distance_from_region_A(region, 1.3, max_distance_A=8.0)
    near = ref <= 8.0
    np.testing.assert_allclose(cropped[near], ref[near], atol=1e-4)
    assert np.all(cropped[~near] > 8.0)


# --------------------------------------------------------------------------- reference (pre-speed-up)
# A verbatim copy of the mask code before the speed-up (full-grid radius, full-spectrum low-pass,
# full-grid distance and cosine edges). The fast masks must equal it bit for bit.


def _ref_cosine_edge(distance, d_one, d_zero):
    d = np.asarray(distance, dtype=np.float32)
    out = (d <= np.float32(d_one)).astype(np.float32)
    if d_zero <= d_one:
        return out
    band = (d > np.float32(d_one)) & (d < np.float32(d_zero))
    t = (d[band] - np.float32(d_one)) / np.float32(d_zero - d_one)
    out[band] = np.float32(0.5) * (np.float32(1.0) + np.cos(np.float32(np.pi) * t))
    return out


def _ref_spherical_mask(shape, outer_radius_px=None, inner_fraction=0.85):
    shape = tuple(int(s) for s in shape)
    outer = float(min(shape)) / 2 if outer_radius_px is None else float(outer_radius_px)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    r2 = sum((g.astype(np.float32) - np.float32(s // 2)) ** 2 for g, s in zip(grids, shape))
    return _ref_cosine_edge(np.sqrt(r2, dtype=np.float32), inner_fraction * outer, outer)


def _ref_lowpass(volume, pixel_size_A, resolution_A, edge_shells=2.0, ft=None):
    from napari_cryodiag.compute.fourier import n_shells, shell_index
    from napari_cryodiag.compute.fourier import irfftn, rfftn

    vol = np.asarray(volume, dtype=np.float32)
    if not resolution_A or resolution_A <= 2 * pixel_size_A:
        return vol
    n = min(vol.shape)
    k_cut = n * pixel_size_A / resolution_A
    table = _ref_cosine_edge(np.arange(n_shells(n) + 1, dtype=np.float32), max(k_cut - edge_shells, 0.0), k_cut)
    table[-1] = 0.0
    filt = table[shell_index(vol.shape)]
    return irfftn((rfftn(vol) if ft is None else ft) * filt, vol.shape)


def _ref_auto_masks(average, pixel_size_A, params=MaskParams(), which=("spherical", "loose", "tight"), average_ft=None):
    from scipy import ndimage

    avg = np.asarray(average, dtype=np.float32)
    out = {}
    if "spherical" in which:
        out["spherical"] = _ref_spherical_mask(
            avg.shape, params.sphere_outer_fraction * min(avg.shape) / 2, params.sphere_inner_fraction
        )
    if "loose" in which or "tight" in which:
        reach = max(params.loose_soft_A if "loose" in which else 0.0, params.tight_soft_A if "tight" in which else 0.0)
        lp = _ref_lowpass(avg, pixel_size_A, params.lowpass_A, ft=average_ft) if params.lowpass_A else avg
        region = lp >= np.float32(params.threshold_fraction) * lp.max()
        pad = int(np.ceil(reach / pixel_size_A)) + 1
        sl = []
        for ax in range(region.ndim):
            other = tuple(i for i in range(region.ndim) if i != ax)
            nz = np.flatnonzero(region.any(axis=other))
            sl.append(slice(max(nz[0] - pad, 0), min(nz[-1] + pad + 1, region.shape[ax])))
        sl = tuple(sl)
        dist = np.full(region.shape, np.inf, dtype=np.float32)
        dist[sl] = ndimage.distance_transform_edt(~region[sl], sampling=float(pixel_size_A)).astype(np.float32)
        if "loose" in which:
            out["loose"] = _ref_cosine_edge(dist, params.loose_dilate_A, params.loose_soft_A)
        if "tight" in which:
            out["tight"] = _ref_cosine_edge(dist, params.tight_dilate_A, params.tight_soft_A)
    return out


def _assert_same_masks(fast, ref):
    assert set(fast) == set(ref)
    for name in ref:
        assert fast[name].dtype == np.float32 and fast[name].shape == ref[name].shape
        # the EDT backend may be the edt package here and scipy in the reference (1e-4 Å apart)
        np.testing.assert_allclose(fast[name], ref[name], rtol=0, atol=2e-5, err_msg=name)


@pytest.mark.parametrize("box, apix", [(64, 1.5), (45, 2.1)])
def test_auto_masks_equal_the_reference_implementation(box, apix):
    from napari_cryodiag.compute.maps.fsc import HalfMaps
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=box, pixel_size_A=apix, resolution_A=3.2 * apix, with_mask=False)
    hm = HalfMaps(sim.half1, sim.half2, apix)
    avg, aft = hm.average(), hm.average_ft()
    for params, compact in ((MaskParams(), True),
                            (MaskParams(lowpass_A=0, threshold_fraction=0.3), False),  # noisy, scattered region
                            (MaskParams(sphere_outer_fraction=0.7, sphere_inner_fraction=0.5, lowpass_A=3.0 * apix,
                                        loose_dilate_A=8, loose_soft_A=20, tight_dilate_A=3, tight_soft_A=5), True)):
        ref = _ref_auto_masks(avg, apix, params, average_ft=aft)
        tight = ref["tight"]  # 1 inside, a cosine band, and (compact region) 0 far away
        assert tight.max() == 1.0 and np.any((tight > 0) & (tight < 1))
        assert tight.min() == 0.0 or not compact
        _assert_same_masks(auto_masks(avg, apix, params, average_ft=aft), ref)
        _assert_same_masks(auto_masks(avg, apix, params, half_fts=hm.transforms), ref)  # FSC's path
        _assert_same_masks(auto_masks(avg, apix, params), ref)  # own transform
        only_tight = auto_masks(avg, apix, params, which=("tight",), half_fts=hm.transforms)
        _assert_same_masks(only_tight, _ref_auto_masks(avg, apix, params, which=("tight",), average_ft=aft))


def test_fast_lowpass_equals_full_spectrum_lowpass_bit_for_bit():
    from napari_cryodiag.compute.fourier import rfftn
    from napari_cryodiag.compute.maps.masks import lowpass

    rng = np.random.default_rng(3)
    # (33, 1.0, 2.03): the pass band reaches the corner block's size -> full-spectrum path
    for n, apix, res in ((48, 1.0, 9.0), (33, 1.7, 6.0), (40, 1.0, 2.5), (32, 1.0, 40.0), (33, 1.0, 2.03)):
        vol = rng.standard_normal((n, n, n)).astype(np.float32)
        ref = _ref_lowpass(vol, apix, res)
        # pruned corner transform (or the full one when the pass band is wide): the same numbers
        np.testing.assert_array_equal(lowpass(vol, apix, res), ref)
        np.testing.assert_array_equal(lowpass(vol, apix, res, ft=rfftn(vol)), ref)
        np.testing.assert_array_equal(lowpass(vol, apix, res, half_fts=(rfftn(vol), rfftn(vol))), ref)


def test_region_at_the_box_edge_and_odd_shapes_match_reference():
    n, apix = 50, 1.2
    z, y, x = np.indices((n, n, n))
    blob = np.exp(-((x - 3.0) ** 2 + (y - 40.0) ** 2 + (z - 25.0) ** 2) / 30.0).astype(np.float32)  # touches x = 0
    for params in (MaskParams(), MaskParams(lowpass_A=0)):
        _assert_same_masks(auto_masks(blob, apix, params), _ref_auto_masks(blob, apix, params))
    for shape, outer in (((40, 40, 40), None), ((33, 33, 33), 9.5), ((20, 24, 30), None), ((31, 32), 40.0), ((17,), 5.0)):
        np.testing.assert_array_equal(spherical_mask(shape, outer), _ref_spherical_mask(shape, outer))


def test_masks_from_a_scratch_average_are_the_same():
    """AutoMasks(scratch=True) low-passes the average over itself (no new map): the same masks,
    bit for bit, as from an average it must keep."""
    from napari_cryodiag.compute.maps.masks import AutoMasks
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=48, pixel_size_A=1.5, resolution_A=5.0)
    avg = (sim.half1 + sim.half2) * np.float32(0.5)
    ref = AutoMasks(avg.copy(), 1.5)
    scratch = avg.copy()
    new = AutoMasks(scratch, 1.5, scratch=True)
    assert not np.array_equal(scratch, avg)  # overwritten by its low-pass
    for name in ("spherical", "loose", "tight"):
        assert np.array_equal(ref.make(name), new.make(name))
