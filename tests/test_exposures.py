"""Curating exposures (issue 13): per-micrograph statistics, thresholds that drop whole
micrographs with their picks, the micrograph subset written beside the picks.

Checked on a simulated RELION 3.1 and cryoSPARC project whose truth is known per micrograph
(``SampleProject.exposures``: CTF fit resolution, figure of merit, defocus, pick count): a
threshold on the CTF fit resolution drops exactly the micrographs whose simulated
``rlnCtfMaxResolution`` / ``ctf_stats/ctf_fit_to_A`` exceeds it, their picks leave the kept count
and every export, RELION 3.1 reads the micrograph STAR written, cryosparc-tools the exposure .cs.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.cli import main
from napari_cryodiag.compute.picks.exposures import (
    ExposureThresholds, micrograph_statistics, parse_exposure_threshold,
)
from napari_cryodiag.errors import CryodiagInputError

RELION_PRINT = shutil.which("relion_star_printtable")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    from napari_cryodiag.simulate.project import write_sample_project

    base = tmp_path_factory.mktemp("exposure_projects")
    kw = dict(n_micrographs=6, shape=(512, 512), classes=False, refinement=False, postprocess=False)
    return {"relion": write_sample_project(base / "relion", "relion", relion_version="3.1", **kw),
            "cryosparc": write_sample_project(base / "cryosparc", "cryosparc", **kw)}


def _pickset(sp):
    from napari_cryodiag.workflows.picks import open_pick_set
    from napari_cryodiag.workflows.project import open_project, pick_source, read_pick_source

    data = read_pick_source(pick_source(open_project(sp.folder)))
    ps = open_pick_set(data.table, suggest=False)
    ps.set_exposures(data.exposures)
    return ps, data


def _threshold_between(values) -> float:
    """A threshold between the two middle values (so that it drops the upper half exactly)."""
    v = np.sort(np.asarray(values, dtype=float))
    k = len(v) // 2
    return float(0.5 * (v[k - 1] + v[k]))


# --------------------------------------------------------------------------- compute


def test_threshold_syntax_and_refusals():
    assert parse_exposure_threshold("ctf_max_resolution_A<=6") == ("ctf_max_resolution_A", None, 6.0)
    assert parse_exposure_threshold(" ctf_figure_of_merit >= 0.05 ") == ("ctf_figure_of_merit", 0.05, None)
    assert parse_exposure_threshold("defocus_A:5000..30000") == ("defocus_A", 5000.0, 30000.0)
    assert parse_exposure_threshold("defocus_A:..3e4") == ("defocus_A", None, 30000.0)
    t = ExposureThresholds.parse(["defocus_A>=5000", "defocus_A<=30000"])
    assert t.bounds == {"defocus_A": (5000.0, 30000.0)}
    for bad, words in (("defocus_A<6", "NAME<=MAX"), ("defocus_A:..", "a minimum, a maximum"),
                       ("defocus_A<=six", "'six' is not a number"), ("defocus_A:9..3", "above its max"),
                       ("defocus_A<=nan", "not a finite number"), ("defocus_A>=inf", "not a finite number")):
        with pytest.raises(CryodiagInputError, match=words):
            ExposureThresholds.parse([bad])
    t = ExposureThresholds()
    t.set("defocus_A", 1.0, 2.0)
    with pytest.raises(CryodiagInputError, match="above its max"):
        t.set("defocus_A", 3.0, 2.0)
    assert t.bounds["defocus_A"] == (1.0, 2.0)  # the refused bounds did not replace the old ones
    with pytest.raises(CryodiagInputError, match="not a finite number"):
        t.set("defocus_A", float("nan"), None)


def test_statistics_and_nan_not_judged():
    # 3 micrographs with picks (codes 0..2) + one of the micrograph table without picks
    codes = np.array([0, 0, 0, 1, 1, 2])
    ncc = np.array([0.1, 0.3, 0.2, 0.5, 0.7, np.nan])
    ex = pd.DataFrame({"defocus_A": [1e4, 2e4, np.nan, 3e4], "ctf_max_resolution_A": [4.0, 8.0, np.nan, 5.0]},
                      index=["a", "b", "c", "d"])
    kept = np.array([True, False, True, True, True, True])
    st = micrograph_statistics(codes, ["a", "b", "c"], scores={"median_ncc": ncc}, kept=kept, exposures=ex)
    assert st["micrograph"].tolist() == ["a", "b", "c", "d"]
    assert st["n_picks"].tolist() == [3, 2, 1, 0]
    np.testing.assert_allclose(st["median_ncc"], [0.2, 0.6, np.nan, np.nan])
    np.testing.assert_allclose(st["kept_fraction"], [2 / 3, 1.0, 1.0, np.nan])
    sel = ExposureThresholds.parse(["ctf_max_resolution_A<=6"]).evaluate(st)
    assert sel.keep.tolist() == [True, False, True, True]  # c has no value: not judged, kept
    assert sel.not_judged == {"ctf_max_resolution_A": 1}
    assert sel.reasons[1] == "ctf_max_resolution_A 8 > 6"
    with pytest.raises(CryodiagInputError, match="no micrograph statistic 'ice'.*n_picks"):
        ExposureThresholds.parse(["ice<=1"]).evaluate(st)


# --------------------------------------------------------------------------- the pick set


@pytest.mark.parametrize("layout", ["relion", "cryosparc"])
def test_ctf_resolution_threshold_drops_exactly_the_worse_micrographs(projects, layout, tmp_path):
    from napari_cryodiag.compute.picks.thresholds import Thresholds
    from napari_cryodiag.workflows.picks import write_selection

    sp = projects[layout]
    truth = sp.exposures.set_index("micrograph")
    ps, data = _pickset(sp)
    stats = ps.micrograph_statistics()
    np.testing.assert_allclose(stats.set_index("micrograph").loc[truth.index, "ctf_max_resolution_A"],
                               truth["max_resolution_A"], rtol=1e-6)
    np.testing.assert_allclose(stats.set_index("micrograph").loc[truth.index, "astigmatism_A"],
                               truth["astigmatism_A"], rtol=1e-5)
    limit = _threshold_between(truth["max_resolution_A"])
    worse = sorted(truth.index[truth["max_resolution_A"] > limit])
    assert 0 < len(worse) < len(truth)
    ps.set_exposure_thresholds(ExposureThresholds.parse([f"ctf_max_resolution_A<={limit}"]))
    # a pick threshold too, so that both reasons are counted apart
    x = ps.inspection.x_raw
    ps.inspection.thresholds = Thresholds(x_feature=ps.inspection.x_feature, y_feature=ps.inspection.y_feature,
                                          x_min=float(np.quantile(x, 0.2)))
    sel = ps.evaluate()
    mic = ps.table["micrograph"].astype(str).to_numpy()
    on_worse = np.isin(mic, worse)
    assert sel.n_dropped_with_micrograph == int(on_worse.sum()) == int(truth.loc[worse, "n_picks"].sum())
    assert not sel.kept[on_worse].any()
    by_thr = x >= float(np.quantile(x, 0.2))
    assert sel.n_kept == int((by_thr & ~on_worse).sum())
    assert sel.n_rejected_by_thresholds == int((~by_thr & ~on_worse).sum())
    assert sel.n_kept + sel.n_rejected_by_thresholds + sel.n_dropped_with_micrograph == sel.n_rows == len(mic)
    assert sorted(sel.exposures.names[~sel.exposures.keep]) == worse
    assert "dropped with their" in sel.explain()
    # a pick added by hand on a dropped micrograph stays out with it
    ps.add(worse[0], [100.0], [100.0])
    sel2 = ps.evaluate()
    assert not sel2.kept[-1] and sel2.n_dropped_with_micrograph == sel.n_dropped_with_micrograph + 1
    ps.remove([len(ps.table) - 1])

    # the export: picks and the kept micrographs' rows of the micrograph table
    dest = tmp_path / ("kept.star" if layout == "relion" else "kept.cs")
    files, wsel = write_selection(ps, dest, micrograph_subset=True, micrograph_shape=(512, 512))
    side = json.loads(files.side_json.read_text())
    assert side["counts"]["left_out_by"]["dropped_with_micrograph"] == sel.n_dropped_with_micrograph
    assert side["selection"]["exposures"]["n_dropped"] == len(worse)
    from napari_cryodiag.io.picks import read_table

    back = read_table(str(dest))
    assert len(back) == sel.n_kept and not back["micrograph"].astype(str).isin(worse).any()
    subset = dest.with_name(dest.stem + ("_micrographs.star" if layout == "relion" else "_exposures.cs"))
    assert subset in files.files and side["micrograph_subset"]["file"] == str(subset)
    from napari_cryodiag.io.exposures import read_exposures

    sub = read_exposures(subset)
    assert sorted(sub["micrograph"].astype(str)) == sorted(set(truth.index) - set(worse))
    np.testing.assert_allclose(sub.set_index("micrograph")["ctf_max_resolution_A"].loc[sorted(sub["micrograph"])],
                               truth.loc[sorted(sub["micrograph"]), "max_resolution_A"], rtol=1e-6)
    if layout == "relion":
        src_text = data.exposures.attrs["source"]
        from napari_cryodiag.io.star import read_star

        a, b = read_star(src_text), read_star(subset)
        pd.testing.assert_frame_equal(a["optics"], b["optics"], check_dtype=False)  # optics kept ("2" for "2.000000")
        assert list(a["micrographs"].columns) == list(b["micrographs"].columns)
    else:
        from napari_cryodiag.io.cs import read_cs_array

        src = read_cs_array(data.exposures.attrs["source"])
        got = read_cs_array(subset)
        assert got.dtype == src.dtype  # every field of the exposures kept
        np.testing.assert_array_equal(got, src[np.isin(src["uid"], got["uid"])])
    with pytest.raises(CryodiagInputError, match="file exists"):  # an earlier export is not replaced
        write_selection(ps, dest, micrograph_subset=True, micrograph_shape=(512, 512))


def test_kept_fraction_follows_the_pick_thresholds(projects):
    from napari_cryodiag.compute.picks.thresholds import Thresholds

    ps, _ = _pickset(projects["relion"])
    insp = ps.inspection
    x = insp.x_raw
    mic = ps.table["micrograph"].astype(str).to_numpy()
    cut = float(np.median(x))
    insp.thresholds = Thresholds(x_feature=insp.x_feature, y_feature=insp.y_feature, x_min=cut)
    frac = pd.Series(x >= cut).groupby(mic).mean()
    limit = _threshold_between(frac.to_numpy())
    ps.set_exposure_thresholds(ExposureThresholds.parse([f"kept_fraction>={limit}"]))
    sel = ps.evaluate()
    assert sorted(sel.exposures.names[~sel.exposures.keep]) == sorted(frac.index[frac < limit])
    insp.thresholds = Thresholds(x_feature=insp.x_feature, y_feature=insp.y_feature)  # all kept: fraction 1
    assert ps.evaluate().exposures.n_dropped == 0
    with pytest.raises(CryodiagInputError, match="no micrograph statistic 'ice_A'"):
        ps.set_exposure_thresholds(ExposureThresholds.parse(["ice_A<=3"]))


# --------------------------------------------------------------------------- other programs read the files


@pytest.mark.skipif(RELION_PRINT is None, reason="RELION (relion_star_printtable) is not on PATH")
def test_relion_reads_the_micrograph_subset(projects, tmp_path):
    from napari_cryodiag.workflows.picks import write_selection

    sp = projects["relion"]
    truth = sp.exposures.set_index("micrograph")
    ps, _ = _pickset(sp)
    ps.set_exposure_thresholds(ExposureThresholds.parse(["ctf_max_resolution_A<=6"]))
    write_selection(ps, tmp_path / "kept.star", micrograph_subset=True)
    out = subprocess.run([RELION_PRINT, str(tmp_path / "kept_micrographs.star"), "data_micrographs",
                          "rlnMicrographName", "rlnCtfMaxResolution"], capture_output=True, text=True, check=True)
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    good = truth.index[truth["max_resolution_A"] <= 6]
    assert [r[0].rsplit("/", 1)[-1][:-4] for r in rows] == list(good)
    np.testing.assert_allclose([float(r[1]) for r in rows], truth.loc[good, "max_resolution_A"], rtol=1e-6)


def test_cryosparc_tools_read_the_exposure_subset(projects, tmp_path):
    Dataset = pytest.importorskip("cryosparc.dataset").Dataset
    from napari_cryodiag.workflows.picks import write_selection

    sp = projects["cryosparc"]
    truth = sp.exposures.set_index("micrograph")
    ps, data = _pickset(sp)
    ps.set_exposure_thresholds(ExposureThresholds.parse(["ctf_max_resolution_A<=6", "ctf_figure_of_merit>=0.05"]))
    write_selection(ps, tmp_path / "kept.cs", micrograph_subset=True)
    d = Dataset.load(str(tmp_path / "kept_exposures.cs"))
    good = truth[(truth["max_resolution_A"] <= 6) & (truth["figure_of_merit"] >= 0.05)]
    assert len(d) == len(good)
    np.testing.assert_allclose(np.sort(d["ctf_stats/ctf_fit_to_A"]), np.sort(good["max_resolution_A"]), rtol=1e-6)
    ex = data.exposures.set_index("micrograph_uid")
    assert set(int(u) for u in d["uid"]) == {int(u) for u, k in zip(ex.index, ex["micrograph"]) if k in good.index}


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("layout", ["relion", "cryosparc"])
def test_cli_exposure_thresholds(projects, layout, tmp_path, capsys):
    sp = projects[layout]
    truth = sp.exposures.set_index("micrograph")
    if layout == "relion":
        picks, ctf, dest = sp.folder / "AutoPick/job004/Movies", sp.folder / "CtfFind/job002/micrographs_ctf.star", \
            tmp_path / "kept.star"
        flags = ["--export-star", str(dest)]
    else:
        picks, ctf, dest = sp.files["picks"], sp.files["ctf"], tmp_path / "kept.cs"
        flags = ["--export-cs", str(dest)]
    limit = _threshold_between(truth["max_resolution_A"])
    lo, hi = float(truth["defocus_A"].min()) - 1, float(truth["defocus_A"].max()) + 1
    code = main(["picks", str(picks), "--ctf", str(ctf), "--no-suggest", "--out", str(tmp_path / "out"),
                 "--exposure", f"ctf_max_resolution_A<={limit}", "--exposure", f"defocus_A:{lo}..{hi}", *flags])
    assert code == 0, capsys.readouterr().err
    info = json.loads((tmp_path / "out" / "picks.json").read_text())
    worse = sorted(truth.index[truth["max_resolution_A"] > limit])
    n_worse = int(truth.loc[worse, "n_picks"].sum())
    assert info["exposures"]["n_dropped"] == len(worse) and info["exposures"]["dropped_by"] == {
        "ctf_max_resolution_A": len(worse), "defocus_A": 0}
    assert sorted(d["micrograph"] for d in info["exposures"]["dropped"]) == worse
    assert info["counts"]["dropped_with_micrograph"] == n_worse
    assert info["counts"]["kept"] == int(truth["n_picks"].sum()) - n_worse
    assert (tmp_path / "out" / "exposures.png").stat().st_size > 1000
    stats = pd.DataFrame(info["micrograph_statistics"]).set_index("micrograph")
    assert stats.loc[truth.index, "n_picks"].tolist() == truth["n_picks"].tolist()
    subset = dest.with_name(dest.stem + ("_micrographs.star" if layout == "relion" else "_exposures.cs"))
    assert [e["file"] for e in info["exposure_exports"]] == [str(subset)]
    from napari_cryodiag.io.exposures import read_exposures

    assert sorted(read_exposures(subset)["micrograph"].astype(str)) == sorted(set(truth.index) - set(worse))
    err = capsys.readouterr().err
    assert "dropped with their" in err and f"wrote the {len(truth) - len(worse)} kept micrographs" in err
    # a bad threshold: one line naming the problem, nothing written
    out2 = tmp_path / "out2"
    code = main(["picks", str(picks), "--ctf", str(ctf), "--out", str(out2), "--exposure", "defocus_A:9..3"])
    assert code == 2 and "above its max" in capsys.readouterr().err
    assert not (out2 / "picks.json").exists()
