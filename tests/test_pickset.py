"""PickSet: the pick table, the hand edits and what is kept (no viewer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.picks.pickset import PickSet
from napari_cryodiag.compute.picks.thresholds import Thresholds


def _table(n_mic=4, per=50, seed=0):
    rng = np.random.default_rng(seed)
    mic = np.repeat([f"m{i}" for i in range(n_mic)], per)
    t = pd.DataFrame({
        "micrograph": pd.Categorical(mic), "micrograph_name": pd.Categorical([m + ".mrc" for m in mic]),
        "x_px": rng.uniform(0, 500, mic.size), "y_px": rng.uniform(0, 500, mic.size),
        "defocus_A": np.repeat(np.linspace(10000, 25000, n_mic), per), "pixel_size_A": 2.0,
        "ncc": rng.normal(0.3, 0.1, mic.size), "power": rng.lognormal(2, 0.3, mic.size),
        "source_row": np.arange(mic.size),
    })
    t.attrs["source"] = "/nonexistent/p.star"
    return t


def test_edits_and_what_is_kept():
    t = _table()
    ps = PickSet(t, thresholds=Thresholds(x_min=0.3))
    ncc = t["ncc"].to_numpy()
    sel = ps.evaluate()
    assert sel.n_kept == (ncc >= 0.3).sum() and sel.n_rejected_by_thresholds == (ncc < 0.3).sum()
    np.testing.assert_array_equal(sel.kept_per_micrograph, pd.Series(ncc >= 0.3).groupby(np.repeat(range(4), 50)).sum())
    # delete three kept picks and one rejected pick
    kept_rows = np.flatnonzero(ncc >= 0.3)[:3]
    rej_row = np.flatnonzero(ncc < 0.3)[0]
    assert ps.remove(np.r_[kept_rows, rej_row]) == 4 and ps.remove(kept_rows) == 0  # twice: once
    sel = ps.evaluate()
    assert sel.n_rows == 196 and sel.n_removed_by_hand == 4 and sel.n_kept == (ncc >= 0.3).sum() - 3
    assert not sel.kept[kept_rows].any()
    # add two picks on m2 (one per call and a pair), kept whatever their (missing) scores
    rows = ps.add("m2", [10.0, 20.0], [30.0, 40.0])
    assert list(rows) == [200, 201] and len(ps) == 202
    tab = ps.table
    assert list(tab["manual"].astype(str).iloc[rows]) == ["added", "added"]
    assert np.allclose(tab["defocus_A"].iloc[rows], 20000.0) and tab["micrograph_name"].iloc[200] == "m2.mrc"
    assert np.isnan(tab["ncc"].iloc[200]) and ps.evaluate().kept[rows].all()
    assert ps.evaluate().n_added_by_hand == 2
    # move one pick (read -> moved) and an added one (stays added)
    ps.move([5, 201], [1.0, 2.0], [3.0, 4.0])
    assert tab["manual"].astype(str).iloc[5] == "moved" and tab["manual"].astype(str).iloc[201] == "added"
    assert (tab["x_px"].iloc[5], tab["y_px"].iloc[5]) == (1.0, 3.0)
    # the explanation says what is left out and why
    text = ps.evaluate().explain()
    assert "4 deleted by hand" in text and "2 added and 1 moved by hand" in text and "outside the thresholds" in text
    # the written rows: kept without the deleted; rejected without the deleted either
    kept = ps.rows("kept")
    rejected = ps.rows("rejected")
    assert len(kept) + len(rejected) == 202 - 4 and "manual" in kept.columns


def test_picks_that_arrive_join_the_set_as_read_picks_under_the_current_thresholds():
    t = _table(n_mic=2)
    ps = PickSet(t, thresholds=Thresholds(x_min=0.3, y_min=None, y_max=None))
    edges = ps.inspection.hist.x_edges.copy()
    more = _table(n_mic=4, seed=1)
    more = more[more["micrograph"].isin(["m2", "m3"])].reset_index(drop=True)
    more["micrograph"] = more["micrograph"].astype(str)  # as a live session's table has them
    more["source_file"] = "/nonexistent/m2_autopick.star"  # a column the set lacks
    rows = ps.extend(more)
    assert list(rows) == list(range(100, 200)) and len(ps) == 200
    tab = ps.table
    assert (tab["manual"].astype(str).iloc[rows] == "read").all() and isinstance(tab["manual"].dtype, pd.CategoricalDtype)
    assert isinstance(tab["micrograph"].dtype, pd.CategoricalDtype)  # names stay categorical
    assert list(tab["micrograph"].astype(str).iloc[rows].unique()) == ["m2", "m3"]
    assert list(ps.names) == ["m0", "m1", "m2", "m3"] and tab["source_file"].isna().sum() == 100
    np.testing.assert_array_equal(ps.inspection.hist.x_edges, edges)  # binned on the same edges
    sel = ps.evaluate()
    np.testing.assert_array_equal(sel.kept[rows], more["ncc"].to_numpy() >= 0.3)  # the thresholds decide
    assert sel.n_added_by_hand == 0 and list(sel.total_per_micrograph) == [50, 50, 50, 50]
    assert ps.extend(more.iloc[:0]).size == 0 and len(ps) == 200


def test_rescored_picks_rebin_in_place_and_thresholds_apply():
    t = _table()
    ps = PickSet(t, thresholds=Thresholds(x_min=0.3))
    row = int(np.flatnonzero(t["ncc"].to_numpy() < 0.3)[0])
    assert not ps.evaluate().kept[row]
    ps.update_values([row], {"ncc": [0.9]})
    assert ps.evaluate().kept[row] and ps.inspection.x[row] == pytest.approx(0.9)
    # its histogram bin follows (the rest untouched)
    fresh = ps.inspection.hist.__class__.from_values(ps.inspection.x, ps.inspection.y, x_edges=ps.inspection.hist.x_edges,
                                                     y_edges=ps.inspection.hist.y_edges, log_y=ps.inspection.hist.log_y)
    np.testing.assert_array_equal(ps.inspection.hist.codes, fresh.codes)


def test_duplicates_among_the_kept_and_given_masks():
    t = _table(n_mic=1, per=3)
    t["x_px"] = [100.0, 104.0, 300.0]
    t["y_px"] = [100.0, 100.0, 300.0]
    t["ncc"] = [0.5, 0.6, 0.4]
    ps = PickSet(t, thresholds=Thresholds())
    sel = ps.selection(dedupe_A=20.0)  # 4 px = 8 Å apart: the lower NCC goes
    assert list(sel.kept) == [False, True, True] and sel.n_duplicates == 1
    sel = ps.selection(kept=np.array([True, False, True]), dedupe_A=20.0)  # its partner not kept: no duplicate
    assert list(sel.kept) == [True, False, True] and sel.n_duplicates == 0


def test_session_edits_replay_on_a_fresh_read():
    t = _table()
    ps = PickSet(t.copy())
    ps.remove([3, 4])
    ps.move([7], [11.0], [12.0])
    ps.add("m1", [50.0], [60.0])
    edits = ps.edits()
    again = PickSet(t.copy())
    applied = again.apply_edits(edits)
    assert applied == {"removed": 2, "moved": 1, "added": 1, "not_found": 0}
    for col in ("x_px", "y_px"):
        np.testing.assert_allclose(again.table[col].to_numpy(), ps.table[col].to_numpy())
    np.testing.assert_array_equal(again.removed, ps.removed)
    assert list(again.table["manual"].astype(str)) == list(ps.table["manual"].astype(str))


def test_a_set_without_scores_keeps_everything_until_edited():
    t = _table()[["micrograph", "x_px", "y_px", "source_row"]]
    ps = PickSet(t)
    assert ps.inspection is None and "no numeric score" in ps.no_scores
    assert ps.evaluate().n_kept == 200
    ps.remove([0])
    ps.add("m0", [1.0], [2.0])
    sel = ps.evaluate()
    assert sel.n_kept == 200 and sel.n_removed_by_hand == 1 and len(ps) == 201


def test_calibration_off_and_on_again_reuses_the_view_until_rows_change(monkeypatch):
    from napari_cryodiag.compute.picks import calibration

    t = _table(n_mic=6)
    t["ncc"] *= 1 + t["defocus_A"] / 20000  # a defocus trend to calibrate away
    ps = PickSet(t, thresholds=Thresholds(x_min=0.2))
    insp = ps.inspection
    fits = []
    real = calibration.fit_calibration
    monkeypatch.setattr(calibration, "fit_calibration", lambda *a, **k: fits.append(a[1]) or real(*a, **k))
    insp.configure(calibrate_x=True)
    on = insp.x.copy()
    assert insp.x_units.startswith("calibrated") and fits == ["ncc"]
    insp.configure(calibrate_x=False)
    np.testing.assert_array_equal(insp.x, t["ncc"].to_numpy())
    insp.configure(calibrate_x=True)  # seen before: taken back, no new fit
    assert fits == ["ncc"] and insp.x_units.startswith("calibrated") and "x" in insp.calibrations
    np.testing.assert_array_equal(insp.x, on)
    # rescored picks: the cached views are forgotten, the new values are used
    ps.update_values([0, 1], {"ncc": [5.0, 5.0]})
    insp.configure(calibrate_x=False)
    assert insp.x[0] == 5.0 and insp.x[1] == 5.0
    insp.configure(calibrate_x=True)
    assert fits == ["ncc", "ncc"]  # fitted again on the new values


def test_selection_counts_follow_a_reassigned_mask():
    """``Selection.n_kept`` is counted once per mask, and counted again when the mask is
    replaced, also by ``sel.kept &= m`` (how the duplicate search and exposures narrow it)."""
    from napari_cryodiag.compute.picks.pickset import Selection

    kept = np.array([True, True, False, True])
    sel = Selection(kept=kept, n_rows=4, n_removed_by_hand=0, n_rejected_by_thresholds=1)
    assert sel.n_kept == 3 and sel.n_left_out == 1
    sel.kept &= np.array([True, False, True, True])
    assert sel.n_kept == 2 and sel.n_left_out == 2
    sel.kept = np.zeros(4, dtype=bool)
    assert sel.n_kept == 0


def test_a_pick_rescored_from_no_value_leaves_the_count_of_picks_without_one():
    """A pick without a score (a pick added by hand before its micrograph was scored) that gets
    one is re-binned in place: the histogram's count of picks without a value follows."""
    t = _table()
    t.loc[[3, 8], "ncc"] = np.nan
    ps = PickSet(t, thresholds=Thresholds(x_min=0.3))
    assert ps.inspection.hist.n_missing == 2
    ps.update_values([3], {"ncc": [0.9]})
    assert ps.inspection.hist.n_missing == 1 and ps.evaluate().kept[3]


def test_a_set_shown_in_a_dock_sorts_its_scores_before_the_first_cut():
    """A pick set marked interactive (a dock steps through it) sorts both scores in the
    background at once, and again for the view a calibration toggle builds; a one-shot set (the
    command line) sorts nothing until a threshold step needs it. The first slider step after
    opening a large set is then incremental, and equal to a full evaluation."""
    t = _table(n_mic=40, per=6000)  # 240,000 picks: above the evaluator's incremental minimum
    one_shot = PickSet(t.copy())
    assert one_shot.inspection.evaluator._sorted == {}
    ps = PickSet(t, thresholds=Thresholds())
    ps.set_interactive()
    ev = ps.inspection.evaluator
    assert list(ev._sorted) == ["x", "y"]
    assert all(f.wait(30) for f in ev._sorted.values())
    ps.inspection.thresholds = Thresholds(x_min=0.3)
    ps.evaluate()
    ps.inspection.thresholds = Thresholds(x_min=0.31)
    step = ev._step
    took = []
    ev._step = lambda *a: took.append(step(*a)) or took[-1]
    sel = ps.evaluate()
    assert took and took[0] is not None  # the incremental path, not a full pass
    np.testing.assert_array_equal(sel.kept, ps.inspection.x >= 0.31)
    ps.inspection.configure(calibrate_x=True)  # a new view: sorted again, at once
    assert set(ps.inspection.evaluator._sorted) == {"x", "y"}
