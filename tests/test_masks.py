"""Masks: spherical preset geometry, loose/tight distances from a known region, user-mask checks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.masks import MaskParams, auto_masks, check_user_mask, cosine_edge, spherical_mask
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

    from napari_cryodiag.compute.masks import distance_from_region_A

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
