"""Duplicate removal: planted pairs, the higher score kept, RELION's keep-the-first rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.picks.duplicates import find_duplicates
from napari_cryodiag.errors import CryodiagInputError


def _grid_picks(n_mics=3, step_px=40.0, n_side=10, apix=2.0):
    rows = []
    for m in range(n_mics):
        yy, xx = np.mgrid[:n_side, :n_side]
        rows.append(pd.DataFrame({
            "micrograph": f"mic_{m}", "x_px": 50 + step_px * xx.ravel(), "y_px": 50 + step_px * yy.ravel(),
            "pixel_size_A": apix,
        }))
    t = pd.concat(rows, ignore_index=True)
    t["ncc"] = np.random.default_rng(0).uniform(0.3, 0.6, len(t))
    return t


def test_planted_pairs_removed_and_higher_score_kept():
    t = _grid_picks()  # 80 Å apart: no duplicates among them
    rng = np.random.default_rng(1)
    base = rng.choice(len(t), 40, replace=False)
    dup = t.iloc[base].copy()
    ang = rng.uniform(0, 2 * np.pi, 40)
    r_px = rng.uniform(0.5, 9.0, 40)  # < 20 Å at 2 Å/px
    dup["x_px"] += r_px * np.cos(ang)
    dup["y_px"] += r_px * np.sin(ang)
    higher = rng.random(40) < 0.5  # half of the planted copies outscore their original
    dup["ncc"] = np.where(higher, t["ncc"].to_numpy()[base] + 0.1, t["ncc"].to_numpy()[base] - 0.1)
    full = pd.concat([t, dup], ignore_index=True)
    res = find_duplicates(full, 20.0, score="ncc")
    assert res.n_removed == 40
    assert res.keep.sum() == len(t)
    copy_rows = np.arange(len(t), len(full))
    # where the copy scored higher the copy is kept and the original removed, and vice versa
    assert np.array_equal(res.keep[copy_rows], higher)
    assert np.array_equal(res.keep[base], ~higher)
    assert np.all(res.kept_by[base[higher]] == copy_rows[higher])
    kept = full[res.keep]
    for _, g in kept.groupby("micrograph"):
        d = np.hypot(g["x_px"].to_numpy()[:, None] - g["x_px"].to_numpy()[None], g["y_px"].to_numpy()[:, None] - g["y_px"].to_numpy()[None])
        np.fill_diagonal(d, np.inf)
        assert d.min() * 2.0 >= 20.0
    assert sum(res.removed_per_micrograph.values()) == 40


def test_keep_first_rule_and_distance_threshold():
    t = pd.DataFrame({
        "micrograph": ["a", "a", "a", "b"],
        "x_px": [100.0, 105.0, 100.0, 100.0],
        "y_px": [100.0, 100.0, 115.0, 100.0],
        "ncc": [0.2, 0.9, 0.5, 0.1],
    })
    # 10 Å at 1 Å/px: (0,1) are 5 Å apart, (0,2) 15 Å, (1,2) 15.8 Å; b is another micrograph
    first = find_duplicates(t, 10.0, keep="first", pixel_size_A=1.0)
    assert first.keep.tolist() == [True, False, True, True]
    higher = find_duplicates(t, 10.0, pixel_size_A=1.0)
    assert higher.keep.tolist() == [False, True, True, True]
    assert higher.kept_by.tolist() == [1, -1, -1, -1]
    none = find_duplicates(t, 4.9, pixel_size_A=1.0)
    assert none.n_removed == 0
    px = find_duplicates(t, None, distance_px=10.0)
    assert px.keep.tolist() == higher.keep.tolist()


def test_chain_keeps_the_far_ends():
    # A(0.9) - B(0.8) - C(0.7), 8 px apart in a row, distance 10 px: B goes, A and C stay
    t = pd.DataFrame({"x_px": [0.0, 8.0, 16.0], "y_px": [0.0, 0.0, 0.0], "ncc": [0.9, 0.8, 0.7]})
    res = find_duplicates(t, None, distance_px=10.0)
    assert res.keep.tolist() == [True, False, True]


def test_nan_scores_lose_nan_coordinates_and_mask():
    t = pd.DataFrame({
        "micrograph": "m", "x_px": [10.0, 12.0, np.nan, 50.0, 52.0], "y_px": [10.0, 10.0, 10.0, 50.0, 50.0],
        "ncc": [np.nan, 0.1, 0.5, 0.4, 0.3],
    })
    res = find_duplicates(t, None, distance_px=5.0)
    assert res.keep.tolist() == [False, True, True, True, False]
    masked = find_duplicates(t, None, distance_px=5.0, mask=np.array([True, True, True, False, True]))
    assert masked.keep.tolist() == [False, True, True, False, True]
    assert masked.n_candidates == 4 and masked.n_removed == 1


def test_bad_input_messages():
    t = pd.DataFrame({"micrograph": "m", "x_px": [1.0, 2.0], "y_px": [1.0, 2.0], "ncc": [0.1, 0.2]})
    t.attrs["source"] = "picks.star"
    with pytest.raises(CryodiagInputError, match="picks.star.*pixel size"):
        find_duplicates(t, 20.0)
    with pytest.raises(CryodiagInputError, match="no 'power' column"):
        find_duplicates(t, 20.0, pixel_size_A=1.0, score="power")
    with pytest.raises(CryodiagInputError, match="coordinates"):
        find_duplicates(t.drop(columns=["x_px"]), 20.0, pixel_size_A=1.0)
