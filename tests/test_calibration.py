"""Calibration of pick scores against defocus: planted trends, real RELION picks, threshold transfer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.picks.calibration import fit_calibration, per_micrograph_medians, robust_line
from napari_cryodiag.errors import CryodiagInputError


def _planted(n_mics=12, n_picks=200, slope=1.5e-5, intercept=0.1, seed=0, nan_fraction=0.05):
    rng = np.random.default_rng(seed)
    df = np.linspace(5000, 35000, n_mics)
    rows = []
    for i, d in enumerate(df):
        base = intercept + slope * d
        s = base * rng.lognormal(0.0, 0.3, n_picks)
        s[rng.random(n_picks) < nan_fraction] = np.nan
        rows.append(pd.DataFrame({"micrograph": f"mic_{i:03d}", "defocus_A": d, "ncc": s}))
    t = pd.concat(rows, ignore_index=True)
    t.attrs["source"] = "planted.star"
    return t


def test_medians_ignore_nan():
    t = _planted()
    per = per_micrograph_medians(t, "ncc")
    for key, grp in t.groupby("micrograph"):
        row = per[per["micrograph"] == key].iloc[0]
        assert row["median"] == pytest.approx(np.nanmedian(grp["ncc"]))
        assert row["n_scored"] == np.isfinite(grp["ncc"]).sum()
        assert row["n_picks"] == len(grp)


@pytest.mark.parametrize("method", ["theil-sen", "huber", "siegel", "ols"])
@pytest.mark.parametrize("mode", ["ratio", "difference"])
def test_calibration_removes_planted_linear_trend(method, mode):
    t = _planted()
    cal = fit_calibration(t, "ncc", method=method, mode=mode)
    # the lognormal noise has median 1: the medians lie on the planted line
    assert cal.slope == pytest.approx(1.5e-5, rel=0.1)
    assert cal.intercept == pytest.approx(0.1, abs=0.03)
    calibrated = cal.apply(t)
    # NaN scores stay NaN, the others are calibrated
    assert np.array_equal(np.isnan(calibrated.to_numpy()), np.isnan(t["ncc"].to_numpy()))
    med = calibrated.groupby(t["micrograph"]).median()
    dfm = t.groupby("micrograph")["defocus_A"].first()
    before_slope, _ = robust_line(dfm, t.groupby("micrograph")["ncc"].median())
    after_slope, _ = robust_line(dfm.loc[med.index], med)
    span = 30000.0
    # before: the median rises by ~ +150 % of its value over the defocus span; after: flat
    assert before_slope * span / np.nanmedian(t["ncc"]) > 0.8
    level = 1.0 if mode == "ratio" else np.nanmedian(t["ncc"])
    assert abs(after_slope * span) / level < 0.05
    assert abs(cal.residual_slope * span) / level < 0.05
    d = cal.to_dict()
    assert d["method"] == method and d["mode"] == mode
    assert d["slope_per_A"] == cal.slope and len(d["per_micrograph"]["micrograph"]) == 12


def test_robust_fit_resists_an_outlying_micrograph():
    t = _planted()
    bad = t["micrograph"] == "mic_011"  # highest defocus: a micrograph full of aggregates
    t.loc[bad, "ncc"] *= 6.0
    ts = fit_calibration(t, "ncc", method="theil-sen")
    ols = fit_calibration(t, "ncc", method="ols")
    assert ts.slope == pytest.approx(1.5e-5, rel=0.15)
    assert abs(ols.slope - 1.5e-5) > 3 * abs(ts.slope - 1.5e-5)


def test_no_defocus_disables_calibration_with_a_message():
    t = _planted().drop(columns=["defocus_A"])
    with pytest.raises(CryodiagInputError, match="planted.star: calibration disabled: no defocus"):
        fit_calibration(t, "ncc")
    t["defocus_A"] = np.nan
    with pytest.raises(CryodiagInputError, match="calibration disabled: no defocus"):
        fit_calibration(t, "ncc")
    # no micrograph names: nothing to group by
    with pytest.raises(CryodiagInputError, match="calibration disabled: .* no 'micrograph' column"):
        fit_calibration(_planted().drop(columns=["micrograph"]), "ncc")
    # one defocus value for all micrographs: no line can be fitted
    t["defocus_A"] = 20000.0
    with pytest.raises(CryodiagInputError, match="calibration disabled"):
        fit_calibration(t, "ncc")


def test_micrograph_without_defocus_stays_uncalibrated():
    t = _planted()
    t.loc[t["micrograph"] == "mic_004", "defocus_A"] = np.nan
    cal = fit_calibration(t, "ncc")
    out = cal.apply(t)
    assert out[t["micrograph"] == "mic_004"].isna().all()
    assert out[t["micrograph"] != "mic_004"].notna().sum() == t.loc[t["micrograph"] != "mic_004", "ncc"].notna().sum()
    assert any("no defocus" in w for w in cal.warnings)


def test_defocus_from_a_ctf_table_and_a_mapping():
    t = _planted()
    ctf = t.groupby("micrograph", as_index=False)["defocus_A"].first()
    bare = t.drop(columns=["defocus_A"])
    a = fit_calibration(bare, "ncc", defocus=ctf)
    b = fit_calibration(bare, "ncc", defocus=dict(zip(ctf["micrograph"], ctf["defocus_A"])))
    c = fit_calibration(t, "ncc")
    assert a.slope == pytest.approx(c.slope) and b.slope == pytest.approx(c.slope)
    np.testing.assert_allclose(a.apply(bare).to_numpy(), c.apply(t).to_numpy(), equal_nan=True)


def _relion_tutorial(shared_data):
    import starfile

    from napari_cryodiag.io.picks import micrograph_key

    folder = shared_data / "relion13-tutorial"
    parts = []
    for f in sorted((folder / "autopick").glob("*_autopick.star")):
        df = starfile.read(f)
        df = df if isinstance(df, pd.DataFrame) else next(iter(df.values()))
        parts.append(df.assign(micrograph=micrograph_key(f.name)))
    picks = pd.concat(parts, ignore_index=True)
    picks.attrs["source"] = str(folder / "autopick")
    ctf = starfile.read(folder / "all_micrographs_ctf.star")
    ctf = ctf if isinstance(ctf, pd.DataFrame) else next(iter(ctf.values()))
    ctf = pd.DataFrame(
        {
            "micrograph": [micrograph_key(n) for n in ctf["rlnMicrographName"]],
            "defocus_A": 0.5 * (ctf["rlnDefocusU"] + ctf["rlnDefocusV"]),
        }
    )
    return picks, ctf


def test_calibration_on_real_relion_tutorial_picks(shared_data):
    picks, ctf = _relion_tutorial(shared_data)
    assert len(picks) == 9470 and picks["micrograph"].nunique() == 15
    fom = "rlnAutopickFigureOfMerit"
    cal = fit_calibration(picks, fom, defocus=ctf)
    per = cal.per_micrograph
    assert per["defocus_A"].notna().all() and len(per) == 15
    span = per["defocus_A"].max() - per["defocus_A"].min()  # 19-34 kÅ
    assert 14000 < span < 15500
    # the real FOM medians rise with defocus (~ +7 % over the span) ...
    assert cal.slope > 0 and cal.slope * span / per["median"].median() > 0.04
    # ... and no longer after calibration
    calibrated = cal.apply(picks)
    med = calibrated.groupby(picks["micrograph"]).median()
    after, _ = robust_line(per.set_index("micrograph")["defocus_A"].loc[med.index], med)
    assert abs(after * span) < 0.01
    assert abs(cal.residual_slope * span) < 0.01
    assert np.nanmedian(calibrated) == pytest.approx(1.0, abs=0.03)
    # the difference mode too
    diff = fit_calibration(picks, fom, defocus=ctf, mode="difference")
    assert abs(diff.residual_slope * span) < 1e-3


def test_threshold_from_one_micrograph_transfers_after_calibration():
    """Simulated micrographs with truth labels (8 x 512², defocus 0.8-3 µm, seed 4).

    For each micrograph in turn, a power threshold is set to keep 90 % of its true particles;
    applied to micrographs > 1 µm away in defocus it keeps (measured) 60 % of their particles
    on raw power and 84 % on calibrated power, while rejecting 74 % of empty-ice picks either way.
    """
    from napari_cryodiag.compute.picks.scores import score_micrograph
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    sim = simulate_micrographs(8, (512, 512), seed=4, particles_per_micrograph=30, score=False)
    t = sim.truth.copy()
    for i, key in enumerate(sim.keys):
        rows = np.flatnonzero(t["micrograph"].to_numpy() == key)
        n, p = score_micrograph(
            sim.images[i], t["x_px"].to_numpy()[rows], t["y_px"].to_numpy()[rows],
            diameter_px=sim.particle_diameter_px,
        )
        t.loc[rows, "ncc"] = n
        t.loc[rows, "power"] = p
    cal = fit_calibration(t, "power")
    assert cal.slope * 22000 / cal.per_micrograph["median"].median() > 0.5  # strong planted-by-physics trend
    t["power_cal"] = cal.apply(t)
    truth = t["truth"].to_numpy()
    good, empty = truth == "particle", truth == "empty"
    mics, df = t["micrograph"].to_numpy(), t["defocus_A"].to_numpy()
    kept = {"power": [], "power_cal": []}
    rejected_empty = {"power": [], "power_cal": []}
    for key in sim.keys:
        src = mics == key
        far = np.abs(df - df[src][0]) > 10000
        if not far.any():
            continue
        for col in kept:
            s = t[col].to_numpy()
            thr = np.nanquantile(s[src & good], 0.1)
            kept[col].append(np.mean(s[far & good] >= thr))
            if (far & empty).any():
                rejected_empty[col].append(np.mean(s[far & empty] < thr))
    raw_kept, cal_kept = np.mean(kept["power"]), np.mean(kept["power_cal"])
    assert cal_kept > 0.8 and raw_kept < 0.7
    assert abs(cal_kept - 0.9) < abs(raw_kept - 0.9) / 2
    # the calibrated threshold does not buy its recall by keeping empty ice
    assert np.mean(rejected_empty["power_cal"]) > 0.7


def test_log_scale_fit_of_a_multiplicative_trend_stays_positive():
    rng = np.random.default_rng(3)
    rows = []
    for i, d in enumerate(np.linspace(6000, 32000, 10)):
        level = 800.0 * np.exp(6e-5 * d)  # power ~ contrast²: grows ~ 5x over the range
        rows.append(pd.DataFrame({"micrograph": f"m{i}", "defocus_A": d, "power": level * rng.lognormal(0, 0.4, 150)}))
    t = pd.concat(rows, ignore_index=True)
    cal = fit_calibration(t, "power", scale="log")
    assert cal.slope == pytest.approx(6e-5, rel=0.1)
    assert np.all(cal.line(np.linspace(0, 50000, 11)) > 0)
    c = cal.apply(t)
    assert np.isfinite(c).all()
    med = c.groupby(t["micrograph"]).median()
    s, _ = robust_line(t.groupby("micrograph")["defocus_A"].first().loc[med.index], med)
    assert abs(s * 26000) < 0.05
    assert cal.to_dict()["scale"] == "log"
    t.loc[0, "power"] = -1.0  # one negative value does not spoil a positive median
    fit_calibration(t, "power", scale="log")
    t["power"] = -t["power"]
    with pytest.raises(CryodiagInputError, match="positive medians"):
        fit_calibration(t, "power", scale="log")


def test_calibration_plot_shows_medians_and_fitted_lines():
    from napari_cryodiag.plots.calibration import plot_calibration

    t = _planted()
    t["power"] = 1000.0 * (1 + 5e-5 * t["defocus_A"]) * np.random.default_rng(2).lognormal(0, 0.2, len(t))
    cals = [fit_calibration(t, "ncc"), fit_calibration(t, "power", mode="difference")]
    fig = plot_calibration(cals)
    axes = fig.axes
    assert len(axes) == 4  # before/after x NCC/power
    top_ncc, top_power = axes[0], axes[1]
    pts = top_ncc.collections[0].get_offsets()
    per = cals[0].per_micrograph
    np.testing.assert_allclose(np.asarray(pts)[:, 0], per["defocus_A"] / 1e4)
    np.testing.assert_allclose(np.asarray(pts)[:, 1], per["median"])
    xs, ys = top_power.lines[0].get_data()
    np.testing.assert_allclose(ys, cals[1].line(np.asarray(xs) * 1e4))
    after = np.asarray(axes[3].collections[0].get_offsets())[:, 1]
    np.testing.assert_allclose(after, cals[1].per_micrograph["median_calibrated"])
    assert "difference" in axes[3].get_title()
    fig1 = plot_calibration(cals[0], show_after=False)
    assert len(fig1.axes) == 1


def test_calibration_plot_draws_one_column_per_distinct_score():
    from napari_cryodiag.plots.calibration import plot_calibration

    rng = np.random.default_rng(2)
    mic = np.repeat(np.arange(6), 30)
    defocus = 10000 + 3000 * mic
    table = pd.DataFrame({"micrograph": mic.astype(str), "defocus_A": defocus,
                          "fom": 0.5 + 2e-5 * defocus + rng.normal(0, 0.01, len(mic))})
    cal = fit_calibration(table, "fom")
    again = fit_calibration(table, "fom")  # the same score on the other histogram axis
    assert len(plot_calibration([cal, again]).axes) == 2  # one column: before and after
    other = fit_calibration(table.assign(fom2=table["fom"] * 2), "fom2")
    assert len(plot_calibration([cal, other]).axes) == 4
