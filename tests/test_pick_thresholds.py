"""Thresholds on pick features: masks, polygon, counts per micrograph, suggested defaults.

The suggested thresholds are judged on picks with truth labels (particle / junk / empty):
a simulated score table with a planted defocus trend (fast, always run), and the sample-data
simulator's micrographs scored by the real scoring code.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.picks.thresholds import (
    PickInspection,
    default_features,
    ThresholdEvaluator,
    Thresholds,
    micrograph_codes,
    micrograph_summary,
    otsu_threshold,
    points_in_polygon,
    robust_band,
    suggest_thresholds,
    two_modes,
    valley_threshold,
)
from napari_cryodiag.errors import CryodiagInputError


def score_table(n_mics=30, seed=0, trend=True):
    """Picks with truth labels; scores scale with defocus like template-matching scores do.

    Per micrograph a gain g(d) = 0.45 + d / 27,000 (0.75 at 8,000 Å to 1.56 at 30,000 Å)
    multiplies NCC and power, the kind of trend calibration removes. Particles: NCC ~ 0.35,
    power ~ 20; empty ice: NCC ~ 0.12, power ~ 6; aggregates: NCC ~ 0.3, power ~ 120; carbon
    edge: NCC ~ 0.22, power ~ 60 (before the gain).
    """
    rng = np.random.default_rng(seed)
    defocus = rng.permutation(np.linspace(8000, 30000, n_mics))
    rows = []
    spec = {  # label: (n per micrograph, ncc mean, ncc sd, log power mean, log power sd)
        "particle": (120, 0.35, 0.035, np.log(20), 0.25),
        "empty": (10, 0.12, 0.035, np.log(6), 0.3),
        "aggregate": (6, 0.30, 0.05, np.log(120), 0.3),
        "edge": (8, 0.22, 0.05, np.log(60), 0.3),
    }
    for i, d in enumerate(defocus):
        g = 0.45 + d / 27000.0 if trend else 1.0
        for label, (k, m, s, lm, ls) in spec.items():
            rows.append(
                pd.DataFrame(
                    {
                        "micrograph": f"mic_{i:03d}",
                        "defocus_A": d,
                        "ncc": g * rng.normal(m, s, k),
                        "power": g * rng.lognormal(lm, ls, k),
                        "truth": "junk" if label in ("aggregate", "edge") else label,
                        "truth_detail": label,
                    }
                )
            )
    t = pd.concat(rows, ignore_index=True)
    return t.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def separation(table, mask):
    """Fractions: particles kept, junk rejected, empty rejected."""
    truth = table["truth"].to_numpy()
    return {
        "particle_kept": float(mask[truth == "particle"].mean()),
        "junk_rejected": float((~mask[truth == "junk"]).mean()),
        "empty_rejected": float((~mask[truth == "empty"]).mean()),
    }


# ------------------------------------------------------------------------------ masks


def test_mask_is_the_conjunction_of_bounds_and_rejects_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.1, 5000)
    y = rng.lognormal(3, 0.5, 5000)
    x[:7] = np.nan
    y[7:9] = np.nan
    t = Thresholds(x_min=0.25, x_max=0.5, y_min=12.0, y_max=40.0)
    m = t.mask_xy(x, y)
    with np.errstate(invalid="ignore"):
        ref = (x >= 0.25) & (x <= 0.5) & (y >= 12.0) & (y <= 40.0)
    np.testing.assert_array_equal(m, ref)
    assert not m[:9].any()
    # unset bounds do not cut, and NaN in an uncut feature does not reject
    m2 = Thresholds(x_min=0.25).mask_xy(x, y)
    np.testing.assert_array_equal(m2[7:], x[7:] >= 0.25)
    assert m2[7] == (x[7] >= 0.25)
    # table form reads the named columns
    tab = pd.DataFrame({"rlnAutopickFigureOfMerit": x, "power": y})
    t3 = Thresholds(x_feature="rlnAutopickFigureOfMerit", x_min=0.25, y_min=12.0)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(t3.mask(tab), (x >= 0.25) & (y >= 12.0))
    with pytest.raises(CryodiagInputError, match="Confidence"):
        Thresholds(x_feature="Confidence").mask(tab)


def test_polygon_selection_linear_and_log_axes():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 20_000)
    y = 10 ** rng.uniform(0, 3, 20_000)
    # axis-aligned square = box test
    sq = [(0.2, 10.0), (0.6, 10.0), (0.6, 200.0), (0.2, 200.0)]
    m = points_in_polygon(x, y, sq)
    np.testing.assert_array_equal(m, (x > 0.2) & (x < 0.6) & (y > 10) & (y < 200))
    # a triangle whose hypotenuse is straight on a log-y plot: inside iff log10(y) - 1 < 2 (x - 0.2) / 0.4
    tri = [(0.2, 10.0), (0.6, 10.0), (0.6, 1000.0)]
    m = points_in_polygon(x, y, tri, log_y=True)
    ly = np.log10(y)
    ref = (x < 0.6) & (ly > 1.0) & (ly - 1.0 < (x - 0.2) * 2.0 / 0.4)
    edge = np.abs((ly - 1.0) - (x - 0.2) * 5.0) < 1e-6
    np.testing.assert_array_equal(m[~edge], ref[~edge])
    assert m.sum() > 1000
    # the same triangle on a linear axis selects something else
    assert (points_in_polygon(x, y, tri) != m).sum() > 100
    # thresholds combine polygon and bounds
    t = Thresholds(x_min=0.4, polygon=tri, polygon_log_y=True)
    np.testing.assert_array_equal(t.mask_xy(x, y), m & (x >= 0.4))
    # NaN points are outside
    assert not points_in_polygon(np.array([np.nan]), np.array([50.0]), sq)[0]
    with pytest.raises(CryodiagInputError, match="polygon"):
        points_in_polygon(x, y, [(0.1, -1.0), (0.2, 5.0), (0.3, 5.0)], log_y=True)


def test_thresholds_round_trip_through_json():
    t = Thresholds(
        x_feature="ncc", y_feature="power", x_min=np.float64(0.3), y_min=5.0, y_max=None,
        polygon=[(0.1, 2.0), (0.5, 2.0), (0.5, 9.0)], polygon_log_y=True, x_units="calibrated (ratio)",
    )
    d = json.loads(t.to_json())
    assert d["x_min"] == 0.3 and d["y_max"] is None and d["polygon"][2] == [0.5, 9.0]
    back = Thresholds.from_dict(d)
    assert back == Thresholds(**{**t.__dict__, "x_min": 0.3})
    assert "ncc in [0.3, inf]" in t.describe() and "3-vertex polygon" in t.describe()


def test_evaluator_counts_overall_and_per_micrograph_match_pandas():
    tab = score_table(n_mics=12, seed=4)
    codes, names = micrograph_codes(tab)
    assert len(names) == 12 and names[codes[0]] == tab["micrograph"].iloc[0]
    ev = ThresholdEvaluator(tab["ncc"].to_numpy(), tab["power"].to_numpy(), codes, len(names))
    t = Thresholds(x_min=0.3, y_min=10.0, y_max=60.0)
    t.polygon = [(0.2, 5.0), (0.9, 5.0), (0.9, 80.0), (0.2, 80.0)]
    r = ev.evaluate(t)
    ref_mask = (
        (tab.ncc >= 0.3) & (tab.power >= 10) & (tab.power <= 60)
        & (tab.ncc > 0.2) & (tab.ncc < 0.9) & (tab.power > 5) & (tab.power < 80)
    ).to_numpy()
    np.testing.assert_array_equal(r.mask, ref_mask)
    assert r.n_kept == ref_mask.sum() and r.n_total == len(tab)
    by = pd.Series(ref_mask).groupby(tab["micrograph"]).agg(["sum", "size"])
    for i, name in enumerate(names):
        assert r.kept_per_micrograph[i] == by.loc[name, "sum"]
        assert r.total_per_micrograph[i] == by.loc[name, "size"]
    # moving a line re-uses the cached polygon mask and still counts exactly
    t.x_min = 0.4
    r2 = ev.evaluate(t)
    assert r2.n_kept == (ref_mask & (tab.ncc >= 0.4).to_numpy()).sum()
    # per-micrograph summary
    s = micrograph_summary(tab, tab["ncc"], tab["power"], r.mask, codes=codes, names=names)
    assert list(s.columns) == ["micrograph", "defocus_A", "picks", "kept", "median_x", "median_y"]
    row = s.set_index("micrograph").loc["mic_005"]
    sub = tab[tab.micrograph == "mic_005"]
    assert row.picks == len(sub) and row.kept == by.loc["mic_005", "sum"]
    assert row.median_x == pytest.approx(sub.ncc.median())
    assert row.defocus_A == pytest.approx(sub.defocus_A.iloc[0])


def test_micrograph_codes_without_micrograph_column():
    codes, names = micrograph_codes(pd.DataFrame({"ncc": [1.0, 2.0]}))
    assert codes.tolist() == [0, 0] and len(names) == 1


# ------------------------------------------------------------------------- suggestions


def test_otsu_and_valley_split_two_modes():
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(0.1, 0.03, 3000), rng.normal(0.4, 0.04, 7000), [np.nan] * 5])
    for thr in (otsu_threshold(v), valley_threshold(v)):
        assert 0.17 < thr < 0.32
        assert ((v[:3000] < thr).mean() > 0.97) and ((v[3000:10000] >= thr).mean() > 0.97)
    lo, hi = robust_band(rng.lognormal(3, 0.2, 5000))
    assert lo == pytest.approx(np.exp(3 - 0.6), rel=0.1) and hi == pytest.approx(np.exp(3 + 0.6), rel=0.1)
    lo, hi = robust_band(rng.normal(0, 1, 5000) - 0.5)  # negative values -> linear band
    assert lo == pytest.approx(-3.5, abs=0.3) and hi == pytest.approx(2.5, abs=0.3)
    with pytest.raises(CryodiagInputError):
        otsu_threshold([np.nan])


def test_suggested_thresholds_separate_particles_from_junk_and_empty():
    """Without a defocus trend the suggestion keeps >= 95 % of particles and rejects >= 90 %
    of junk and >= 95 % of empty picks (measured 99.3 / 98.3 / 100 %)."""
    tab = score_table(trend=False)
    t = suggest_thresholds(tab["ncc"], tab["power"])
    s = separation(tab, t.mask(tab))
    assert s["particle_kept"] >= 0.95, s
    assert s["junk_rejected"] >= 0.90, s
    assert s["empty_rejected"] >= 0.95, s
    assert t.method.startswith("suggested") and t.x_max is None


def _balanced(s):
    return (s["particle_kept"] + s["junk_rejected"] + s["empty_rejected"]) / 3.0


@pytest.mark.parametrize("mode", ["ratio", "difference"])
def test_calibration_improves_the_suggested_separation(mode):
    """With a planted defocus gain, the raw suggestion keeps 99 % of particles but the
    gain-widened power band lets 31 % of junk in (balanced accuracy 0.86; Otsu on NCC, the
    earlier rule, kept only ~59 % of particles); after calibrating both scores to defocus
    (compute.calibration, Theil-Sen) the suggestion keeps 98.9 % (ratio) / 96.2 % (difference)
    of particles, rejects 95.7 / 98.8 % of junk and all empty picks (balanced accuracy 0.98)."""
    from napari_cryodiag.compute.picks.calibration import fit_calibration

    tab = score_table(trend=True)
    raw = separation(tab, suggest_thresholds(tab["ncc"], tab["power"]).mask(tab))
    cx = fit_calibration(tab, "ncc", mode=mode).apply(tab).to_numpy()
    cy = fit_calibration(tab, "power", mode=mode).apply(tab).to_numpy()
    t = suggest_thresholds(cx, cy, x_units=f"calibrated ({mode})", y_units=f"calibrated ({mode})")
    cal = separation(tab, t.mask_xy(cx, cy))
    # the trend really hurts without calibration: it widens the power band, junk gets in
    assert raw["junk_rejected"] < 0.75, raw
    # ... while the raw suggestion no longer throws particles away (Otsu on NCC kept < 75 %)
    assert raw["particle_kept"] >= 0.95, raw
    assert separation(tab, tab["ncc"].to_numpy() >= otsu_threshold(tab["ncc"]))["particle_kept"] < 0.75
    assert cal["particle_kept"] >= 0.95, cal
    assert cal["junk_rejected"] >= 0.95 and cal["empty_rejected"] >= 0.98, cal
    assert _balanced(cal) > _balanced(raw) + 0.08


def test_threshold_set_on_one_micrograph_transfers_to_another_defocus_after_calibration():
    """Thresholds suggested on the lowest-defocus micrograph alone, applied to the
    highest-defocus one: raw they keep 50 % of the far micrograph's particles and let half
    of its empty picks in; calibrated they keep 98.3 % of its particles and reject all of
    its junk and empty picks."""
    from napari_cryodiag.compute.picks.calibration import fit_calibration

    tab = score_table(trend=True, n_mics=30, seed=2)
    per = tab.groupby("micrograph")["defocus_A"].first()
    near, far = per.idxmin(), per.idxmax()
    on_near = (tab["micrograph"] == near).to_numpy()
    on_far = (tab["micrograph"] == far).to_numpy()
    sub_far = tab[on_far]

    t_raw = suggest_thresholds(tab["ncc"][on_near], tab["power"][on_near])
    raw = separation(sub_far, t_raw.mask(sub_far))
    cx = fit_calibration(tab, "ncc").apply(tab).to_numpy()
    cy = fit_calibration(tab, "power").apply(tab).to_numpy()
    t_cal = suggest_thresholds(cx[on_near], cy[on_near])
    cal = separation(sub_far, t_cal.mask_xy(cx[on_far], cy[on_far]))
    assert cal["particle_kept"] >= 0.90 and cal["empty_rejected"] >= 0.9, cal
    assert _balanced(cal) > _balanced(raw) + 0.1, (raw, cal)


def test_calibration_fits_are_kept_when_views_are_too_large_to_keep(monkeypatch):
    """Above the size whose views are kept (1e7 picks), calibration off and on again does not fit
    the lines again (2.6 s at 1e7): the same calibrated values from the kept fit; new rows fit
    again; a missing defocus keeps its message."""
    from napari_cryodiag.compute.picks import calibration, thresholds
    from napari_cryodiag.compute.picks.thresholds import PickInspection

    monkeypatch.setattr(thresholds, "_MAX_CACHED_VIEW_ROWS", 0)  # no view is kept, as at 1e7
    fits = []
    real = calibration.fit_calibration
    monkeypatch.setattr(calibration, "fit_calibration", lambda *a, **k: fits.append(a[1]) or real(*a, **k))
    tab = score_table(n_mics=10, seed=3)
    insp = PickInspection(tab)
    insp.configure(calibrate_x=True, calibrate_y=True)
    first = insp.x.copy(), insp.y.copy()
    assert fits == ["ncc", "power"]
    insp.configure(calibrate_x=False, calibrate_y=False)
    np.testing.assert_array_equal(insp.x, tab["ncc"].to_numpy(float))
    insp.configure(calibrate_x=True, calibrate_y=True)
    assert fits == ["ncc", "power"]  # taken back, not fitted again
    np.testing.assert_array_equal(insp.x, first[0])
    np.testing.assert_array_equal(insp.y, first[1])
    assert insp.x_units == insp.y_units == "calibrated (ratio)" and set(insp.calibrations) == {"x", "y"}
    insp.rows_changed()  # e.g. picks rescored: the fits are of other rows now
    insp.configure(calibrate_x=False)
    insp.configure(calibrate_x=True)
    assert len(fits) == 4 and sorted(fits[2:]) == ["ncc", "power"]
    nodf = PickInspection(tab.drop(columns=["defocus_A"]), calibrate_x=True)
    nodf.configure(calibrate_x=False)
    nodf.configure(calibrate_x=True)
    assert nodf.x_units == "raw" and "no defocus" in nodf.calibration_errors["x"]


def test_pick_inspection_state_units_features_and_missing_defocus():
    from napari_cryodiag.compute.picks.thresholds import PickInspection, default_features, numeric_features

    tab = score_table(n_mics=10, seed=3)
    insp = PickInspection(tab)
    assert (insp.x_feature, insp.y_feature) == ("ncc", "power") and insp.log_y
    assert insp.x_units == "raw" and insp.calibrations == {}
    r = insp.evaluate()
    np.testing.assert_array_equal(r.mask, insp.thresholds.mask(tab))
    raw_range = insp.hist.x_edges[[0, -1]]
    insp.configure(calibrate_x=True, calibrate_y=True)
    assert insp.x_units == insp.y_units == "calibrated (ratio)"
    assert insp.thresholds.x_units == "calibrated (ratio)"
    # ratio-calibrated NCC of typical picks is ~1: the histogram range moved accordingly
    assert insp.hist.x_edges[0] < 1.0 < insp.hist.x_edges[-1] and raw_range[-1] < 1.0
    rep = insp.report()
    assert set(rep["calibration"]) == {"x", "y"} and rep["calibration"]["x"]["mode"] == "ratio"
    assert rep["n_kept"] + rep["n_rejected"] == len(tab)
    assert sum(rep["per_micrograph"]["kept"]) == rep["n_kept"]
    json.dumps(rep)  # plain numbers
    # no defocus: calibration is disabled with a message, the raw view still works
    nodf = tab.drop(columns=["defocus_A"])
    insp2 = PickInspection(nodf, calibrate_x=True)
    assert insp2.x_units == "raw" and "no defocus" in insp2.calibration_errors["x"]
    # any numeric column can be a feature; a lone score is a 1D view (issue 9: no diagonal 2D histogram)
    fom = pd.DataFrame({"micrograph": ["a"] * 5, "x_px": np.arange(5.0), "rlnAutopickFigureOfMerit": np.arange(5.0)})
    assert numeric_features(fom) == ["rlnAutopickFigureOfMerit"]
    assert default_features(fom) == ("rlnAutopickFigureOfMerit", None)
    one = PickInspection(fom)
    assert one.one_d and one.hist.n_y == 1 and one.thresholds.y_min is None and one.thresholds.y_max is None
    with pytest.raises(CryodiagInputError, match="no numeric score"):
        PickInspection(pd.DataFrame({"micrograph": ["a"], "x_px": [1.0]}))


@pytest.fixture(scope="module")
def simulated_pick_tables():
    """Sample-data simulator picks with truth labels, five seeds (768 px micrographs with the
    default particle density, 6 per seed: ~1.3 s each)."""
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    return [
        simulate_micrographs(n_micrographs=6, shape=(768, 768), particles_per_micrograph=56, seed=seed).truth
        for seed in range(5)
    ]


def test_suggested_thresholds_on_simulated_micrographs(simulated_pick_tables):
    """Picks on the sample-data simulator's micrographs, scored by compute.scores, seeds 0-4,
    raw and ratio-calibrated (both scores). The suggestion (power band first, then an NCC
    outlier bound: particle NCC has no separate low mode here) measured per seed:

    - raw: particles kept 0.908-0.932 (pooled 0.925), junk rejected 0.943-1.0, empty
      rejected 0.846-0.957;
    - calibrated: particles kept 0.893-0.917 (pooled 0.907), junk rejected 1.0 on every
      seed, empty rejected 0.846-1.0; balanced accuracy never below the raw one of the seed.

    The earlier rule (Otsu on NCC first) kept 65-80 % of particles: the particles' NCC is broad
    and overlaps empty ice (~0.45x particle power, the better separator)."""
    pooled = {"raw": [], "calibrated": []}
    otsu_kept = []
    for tab in simulated_pick_tables:
        assert {"particle", "junk", "empty"} <= set(tab["truth"])
        res = {}
        for name, cal in (("raw", False), ("calibrated", True)):
            insp = PickInspection(tab, "ncc", "power", calibrate_x=cal, calibrate_y=cal)
            assert insp.x_units == ("calibrated (ratio)" if cal else "raw")
            t = insp.thresholds
            assert t.method.startswith("suggested: log10 power") and "no separate low mode" in t.method
            mask = insp.evaluate().mask
            s = res[name] = separation(tab, mask)
            assert s["particle_kept"] >= 0.89, (name, s)
            assert s["junk_rejected"] >= 0.94, (name, s)
            assert s["empty_rejected"] >= 0.84, (name, s)
            pooled[name].append(mask[(tab["truth"] == "particle").to_numpy()])
        assert res["calibrated"]["junk_rejected"] == 1.0
        # calibration does not make the suggestion worse
        assert _balanced(res["calibrated"]) >= _balanced(res["raw"]) - 1e-9, res
        otsu_kept.append(separation(tab, tab["ncc"].to_numpy() >= otsu_threshold(tab["ncc"]))["particle_kept"])
    for name, kept in pooled.items():
        assert np.concatenate(kept).mean() >= 0.90, name
    assert max(otsu_kept) < 0.85 and np.mean(otsu_kept) < 0.8, otsu_kept


def test_a_real_low_ncc_mode_is_cut_between_the_modes():
    """When NCC does show a separate low mode inside the power band (here 30 % of picks at
    NCC 0.1 with the particles' power), the cut is the crossing of the two fitted modes."""
    rng = np.random.default_rng(5)
    n_p, n_e = 7000, 3000
    x = np.concatenate([rng.normal(0.4, 0.05, n_p), rng.normal(0.1, 0.04, n_e)])
    y = rng.lognormal(np.log(20), 0.25, n_p + n_e)
    t = suggest_thresholds(x, y)
    assert "a low mode" in t.method
    assert 0.2 < t.x_min < 0.3
    kept = t.mask_xy(x, y)
    assert kept[:n_p].mean() >= 0.95 and (~kept[n_p:]).mean() >= 0.99
    m = two_modes(x)
    assert m.separated() and m.weights[0] == pytest.approx(0.3, abs=0.02)
    assert m.means == pytest.approx((0.1, 0.4), abs=0.01) and m.ashman_d == pytest.approx(6.6, abs=0.4)
    # a single skewed mode (the shape of particle NCC) is not two modes
    skewed = 0.6 - rng.gamma(2.0, 0.1, 10_000)
    assert not two_modes(skewed).separated()
    with pytest.raises(CryodiagInputError, match="method"):
        suggest_thresholds(x, y, x_method="kmeans")


def test_single_score_real_relion_autopicks_is_a_1d_view_and_keeps_all(shared_data):
    """RELION 1.3 tutorial autopicks: one score (the figure of merit), a 1D view. RELION already
    cut them at its autopick threshold and the FOM is unimodal (Ashman's D 1.5): no thresholds by
    default (not NCC x power: the suggestion is a proposal), and the proposal keeps all 9,470 too
    (the earlier rule kept 39 %); there is no band on a single score (a high FOM is not junk)."""
    from napari_cryodiag.io.picks import read_table

    tab = read_table(str(shared_data / "relion13-tutorial" / "autopick" / "*.star"))
    insp = PickInspection(tab)
    assert insp.x_feature == "rlnAutopickFigureOfMerit" and insp.y_feature is None and insp.one_d
    t = insp.thresholds
    assert t.x_min is None and t.x_max is None and t.method.startswith("none")
    assert insp.evaluate().n_kept == 9470
    t = insp.suggest()
    assert t.y_min is None and t.y_max is None and "same score on both axes" in t.method
    fom = tab["rlnAutopickFigureOfMerit"].to_numpy()
    assert t.x_min == pytest.approx(fom.min())
    r = insp.evaluate(t)
    assert r.n_kept == r.n_total == 9470


def test_default_features_put_a_single_score_on_a_1d_axis():
    # RELION autopick columns: an angle and a class number must not become the y axis
    table = pd.DataFrame({
        "micrograph": ["a", "a", "b"], "x_px": [1.0, 2.0, 3.0], "y_px": [1.0, 2.0, 3.0],
        "psi_deg": [10.0, 20.0, 30.0], "class": [1, 2, 1], "rlnAutopickFigureOfMerit": [0.5, 0.7, 0.9],
    })
    assert default_features(table) == ("rlnAutopickFigureOfMerit", None)
    table["power"] = [1.0, 2.0, 3.0]
    assert default_features(table) == ("rlnAutopickFigureOfMerit", "power")


def test_log_scale_calibration_is_passed_to_the_fit():
    rng = np.random.default_rng(0)
    n_mic, per = 8, 50
    defocus = np.repeat(np.linspace(8000, 30000, n_mic), per)
    ncc = 0.2 * np.exp(defocus / 20000) * rng.lognormal(0, 0.05, n_mic * per)
    table = pd.DataFrame({"micrograph": np.repeat([f"m{i}" for i in range(n_mic)], per),
                          "defocus_A": defocus, "ncc": ncc, "power": rng.uniform(1, 2, n_mic * per)})
    lin = PickInspection(table, "ncc", "power", calibrate_x=True)
    log = PickInspection(table, "ncc", "power", calibrate_x=True, scale="log")
    assert lin.calibrations["x"].scale == "linear" and log.calibrations["x"].scale == "log"
    # an exponential trend is a straight line in log: its calibrated medians are flatter
    med = lambda insp: pd.Series(insp.x).groupby(table["micrograph"]).median().to_numpy()  # noqa: E731
    assert np.ptp(med(log)) < np.ptp(med(lin))
    log.configure(scale="linear", keep_thresholds=True)
    assert log.calibrations["x"].scale == "linear"


def test_group_counter_counts_like_bincount():
    """Kept picks per micrograph from the kept picks' positions (grouped picks) or a precomputed order (ungrouped),
    with micrographs that have no pick, first, inside and last."""
    from napari_cryodiag.compute.picks.thresholds import GroupCounter

    rng = np.random.default_rng(5)
    for grouped in (True, False):
        for _ in range(10):
            codes = rng.integers(1, 40, 2000)
            codes[codes == 17] = 18
            if grouped:
                codes = np.sort(codes)
            mask = rng.random(codes.size) < rng.uniform(0.05, 0.95)
            gc = GroupCounter(codes, 45)
            np.testing.assert_array_equal(gc.count(mask), np.bincount(codes[mask], minlength=45))
            np.testing.assert_array_equal(gc.totals, np.bincount(codes, minlength=45))
            assert (gc.order is None) == grouped


def _count_incremental_steps(ev) -> list:
    """Count the evaluator's steps done incrementally (not as a full pass): ``[count]``."""
    count = [0]
    step_of = ev._step

    def counted(*args):
        out = step_of(*args)
        count[0] += out is not None
        return out

    ev._step = counted
    return count


def test_incremental_threshold_steps_equal_full_evaluation():
    """A slider or a dragged line moves one bound: the evaluator updates the mask and the counts
    from the picks between the old and the new bound only. Every step must equal a full
    evaluation (mask, kept, per micrograph), with NaN scores, tied values, a polygon, bounds moved
    both ways, to and from "no cut", and several bounds at once; earlier results stay unchanged."""
    rng = np.random.default_rng(11)
    n, n_mics = 30_000, 37
    codes = rng.integers(0, n_mics, n)
    x = np.round(rng.normal(0.3, 0.1, n), 3)  # rounded: many picks share a value (ties at a bound)
    y = rng.lognormal(3.0, 0.6, n)
    x[rng.random(n) < 0.01] = np.nan
    y[rng.random(n) < 0.01] = np.nan
    inc = ThresholdEvaluator(x, y, codes, n_mics, incremental_min=0)
    full = ThresholdEvaluator(x, y, codes, n_mics, incremental_min=10**12)  # never incremental
    t = Thresholds(x_min=0.2, y_min=10.0)
    inc.evaluate(t)
    for f in inc._sorted.values():  # the sorts run in the background: wait for them here
        assert f.wait(30)
    incremental = _count_incremental_steps(inc)
    kept_before = []
    for _ in range(300):
        r = rng.random()
        if r < 0.55:  # a slider step: one bound moves a little (sometimes onto a tied value)
            name = ("x_min", "x_max", "y_min", "y_max")[rng.integers(4)]
            cur = getattr(t, name)
            base = x if name[0] == "x" else y
            if cur is None or rng.random() < 0.3:
                cur = float(np.nanquantile(base, rng.uniform(0.05, 0.95)))
            else:
                cur = cur + rng.normal(0, 0.02 if name[0] == "x" else 2.0)
            setattr(t, name, cur)
        elif r < 0.65:  # a handle at an end of its slider: no cut
            setattr(t, ("x_min", "x_max", "y_min", "y_max")[rng.integers(4)], None)
        elif r < 0.75:  # two bounds at once (suggested thresholds applied)
            t.x_min, t.y_max = float(rng.uniform(0.1, 0.4)), float(rng.uniform(30, 80))
        elif r < 0.85:  # a polygon drawn or cleared
            if t.polygon is None:
                cx, cy = rng.uniform(0.2, 0.4), rng.uniform(10, 40)
                t.polygon = [(cx - 0.2, cy / 3), (cx + 0.2, cy / 3), (cx + 0.2, cy * 3), (cx - 0.2, cy * 3)]
            else:
                t.polygon = None
        if t.x_min is not None and t.x_max is not None and t.x_min > t.x_max:
            t.x_min, t.x_max = t.x_max, t.x_min
        if t.y_min is not None and t.y_max is not None and t.y_min > t.y_max:
            t.y_min, t.y_max = t.y_max, t.y_min
        a, b = inc.evaluate(t), full.evaluate(t)
        np.testing.assert_array_equal(a.mask, t.mask_xy(x, y))
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.n_kept == b.n_kept == int(a.mask.sum())
        np.testing.assert_array_equal(a.kept_per_micrograph, np.bincount(codes[a.mask], minlength=n_mics))
        kept_before.append((a.mask, a.mask.copy()))
    for held, copy_ in kept_before:  # no result was changed by a later step
        np.testing.assert_array_equal(held, copy_)
    assert incremental[0] > 60  # the small single-bound moves (about a third of the steps) were incremental


@pytest.mark.parametrize("grouped", [True, False])
def test_group_counter_counts_equal_bincount_across_chunks(grouped):
    """Per-micrograph counts of kept picks, chunked over the mask (chunks far smaller than the
    set, groups straddling chunk ends, micrographs without picks at the start, middle and end),
    equal a weighted bincount."""
    from napari_cryodiag.compute.picks.thresholds import GroupCounter

    rng = np.random.default_rng(7)
    n_groups = 60
    sizes = rng.integers(0, 400, n_groups)
    sizes[[0, 17, 18, n_groups - 1]] = 0
    codes = np.repeat(np.arange(n_groups), sizes)
    if not grouped:
        codes = rng.permutation(codes)
    counter = GroupCounter(codes, n_groups)
    counter.chunk = 1000
    assert (counter.order is None) == grouped
    for p in (0.0, 0.03, 0.5, 1.0):
        mask = rng.random(codes.size) < p
        want = np.bincount(codes[mask], minlength=n_groups)
        got = counter.count(mask)
        assert got.dtype == np.int64 and np.array_equal(got, want)


def test_threshold_steps_before_the_sorted_gathers_are_there():
    """A feature is ready for incremental steps as soon as it is sorted; the other feature and the
    micrograph codes in its order come after. A step taken in between gathers them from the
    full-length arrays: every such step (tightening and loosening, on either feature) equals a
    full evaluation."""
    rng = np.random.default_rng(5)
    n, n_mics = 20_000, 23
    codes = np.sort(rng.integers(0, n_mics, n))
    x, y = rng.normal(0.3, 0.1, n), rng.lognormal(3.0, 0.6, n)
    inc = ThresholdEvaluator(x, y, codes, n_mics, incremental_min=0)
    t = Thresholds(x_min=0.25, x_max=0.5, y_min=12.0, y_max=60.0)
    inc.evaluate(t)
    assert all(f.wait(30) for f in inc._sorted.values())
    for f in inc._sorted.values():  # as if the gathers had not run yet
        f.other = f.codes = None
    incremental = _count_incremental_steps(inc)
    for name, delta in [("x_min", 0.01), ("x_min", -0.02), ("x_max", -0.03), ("x_max", 0.01),
                        ("y_min", 1.0), ("y_min", -1.5), ("y_max", -3.0), ("y_max", 1.0)] * 3:
        setattr(t, name, getattr(t, name) + delta)
        r = inc.evaluate(t)
        m = t.mask_xy(x, y)
        np.testing.assert_array_equal(r.mask, m)
        np.testing.assert_array_equal(r.kept_per_micrograph, np.bincount(codes[m], minlength=n_mics))
        assert r.n_kept == int(m.sum())
    assert incremental[0] == 24  # every one of them incremental
