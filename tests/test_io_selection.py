"""The one selection writer (``io.selection``): RELION's own programs extract from what it
writes, cryosparc-tools reads every field back, and nothing is written over an input."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io.mrc import open_micrograph_stack, write_mrc
from napari_cryodiag.io.picks import read_table
from napari_cryodiag.io.selection import MicrographRefs, relion_coordinate_path, write_selection
from napari_cryodiag.io.star import read_star, write_star_blocks

RELION = shutil.which("relion_preprocess")
needs_relion = pytest.mark.skipif(RELION is None, reason="RELION (relion_preprocess) is not installed")
BOX = 32


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A RELION project folder: 3 simulated micrographs under MotionCorr/job002/Micrographs/, a
    micrographs STAR (with optics), and the picks as a picker that knows only file names has them."""
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    root = tmp_path_factory.mktemp("relion_project")
    sim = simulate_micrographs(3, (256, 256), seed=2, particles_per_micrograph=10, score=False)
    mdir = root / "MotionCorr" / "job002" / "Micrographs"
    mdir.mkdir(parents=True)
    for img, name in zip(sim.images, sim.names):
        write_mrc(mdir / name, img, sim.pixel_size_A)
    names = [f"MotionCorr/job002/Micrographs/{n}" for n in sim.names]
    optics = {"rlnOpticsGroupName": np.array(["opticsGroup1"], object), "rlnOpticsGroup": np.array([1]),
              "rlnMicrographPixelSize": np.array([sim.pixel_size_A]), "rlnVoltage": np.array([sim.voltage_kV]),
              "rlnSphericalAberration": np.array([sim.cs_mm]),
              "rlnAmplitudeContrast": np.array([sim.amplitude_contrast])}
    mics = {"rlnMicrographName": np.array(names, object), "rlnOpticsGroup": np.ones(3, dtype=int)}
    write_star_blocks(root / "micrographs.star", [("optics", optics), ("micrographs", mics)])
    picks = sim.truth[["micrograph", "x_px", "y_px", "defocus_u_A", "defocus_v_A", "defocus_angle_deg",
                       "voltage_kV", "cs_mm", "amplitude_contrast", "pixel_size_A", "truth"]].copy()
    picks.attrs = {"format": "points", "source": None}
    kept = np.arange(len(picks)) % 3 != 1
    return {"root": root, "sim": sim, "picks": picks, "kept": kept, "names": names}


def _relion(args, cwd):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def _extracted(root: Path, part_star: str) -> pd.DataFrame:
    return read_star(root / part_star)["particles"]


def _check_extracted_boxes(root: Path, parts: pd.DataFrame, sim, names):
    """Every extracted image is the micrograph's box at the particle's coordinates (x = column,
    y = row; RELION 3.1 starts the box at int(x) - BOX/2, truncating the coordinate)."""
    checked = 0
    for _, r in parts.iloc[::3].iterrows():
        i, stack = str(r["rlnImageName"]).split("@")
        with mrcfile.open(root / stack, permissive=True) as m:
            img = np.asarray(m.data[int(i) - 1], dtype=np.float64)
        mic = sim.images[names.index(str(r["rlnMicrographName"]))].astype(np.float64)
        x0, y0 = int(r["rlnCoordinateX"]) - BOX // 2, int(r["rlnCoordinateY"]) - BOX // 2
        if x0 < 0 or y0 < 0 or x0 + BOX > mic.shape[1] or y0 + BOX > mic.shape[0]:
            continue
        ref = mic[y0:y0 + BOX, x0:x0 + BOX]
        assert np.corrcoef(img.ravel(), ref.ravel())[0, 1] > 0.999
        checked += 1
    assert checked >= 3


@needs_relion
def test_relion_reextracts_every_kept_particle_of_the_merged_star(project, monkeypatch):
    root, sim, picks, kept = project["root"], project["sim"], project["picks"], project["kept"]
    monkeypatch.chdir(root)
    stack = open_micrograph_stack("MotionCorr/job002/Micrographs/*.mrc")
    res = write_selection("kept.star", picks, kept, rejected=True, micrographs=MicrographRefs.from_stack(stack),
                          settings={"thresholds": {"x_min": 0.5}}, left_out={"thresholds": int((~kept).sum())})
    blocks = read_star(root / "kept.star")
    assert set(blocks) == {"optics", "particles"}
    opt = blocks["optics"].iloc[0]
    assert (opt["rlnMicrographPixelSize"], opt["rlnVoltage"], opt["rlnSphericalAberration"],
            opt["rlnAmplitudeContrast"]) == (sim.pixel_size_A, sim.voltage_kV, sim.cs_mm, sim.amplitude_contrast)
    # the micrograph's name as the opened files have it, not the matching key
    assert set(blocks["particles"]["rlnMicrographName"]) == set(project["names"])
    out = _relion([RELION, "--i", "micrographs.star", "--reextract_data_star", "kept.star", "--part_star",
                   "Extract/particles.star", "--part_dir", "Extract/", "--extract", "--extract_size", str(BOX)], root)
    assert f"Written out STAR file with {int(kept.sum())} particles" in out
    parts = _extracted(root, "Extract/particles.star")
    assert len(parts) == kept.sum()
    np.testing.assert_allclose(np.sort(parts["rlnCoordinateX"].to_numpy(float)),
                               np.sort(picks.loc[kept, "x_px"].to_numpy()), rtol=0, atol=5e-7)  # RELION writes %.6f
    _check_extracted_boxes(root, parts, sim, project["names"])
    # the rejected picks, and the side JSON of settings
    assert len(read_table(root / "kept_rejected.star")) == (~kept).sum()
    side = json.loads((root / "kept.star.cryodiag.json").read_text())
    assert side["thresholds"] == {"x_min": 0.5}
    assert side["counts"] == {"total": len(picks), "kept": int(kept.sum()), "left_out": int((~kept).sum()),
                              "left_out_by": {"thresholds": int((~kept).sum())}, "rejected_written": int((~kept).sum())}
    assert side["files"] == [str(p) for p in res.files]
    assert side["export"]["micrograph_names"] == "opened micrographs"
    # read back by cryodiag: the same picks, with their defocus
    back = read_table(root / "kept.star")
    np.testing.assert_array_equal(back["x_px"].to_numpy(), picks.loc[kept, "x_px"].to_numpy())
    np.testing.assert_array_equal(back["defocus_u_A"].to_numpy(), picks.loc[kept, "defocus_u_A"].to_numpy())
    assert back["micrograph"].astype(str).tolist() == picks.loc[kept, "micrograph"].astype(str).tolist()


@needs_relion
def test_relion_extracts_from_the_coordinate_files(project, monkeypatch):
    root, picks, kept = project["root"], project["picks"], project["kept"]
    monkeypatch.chdir(root)
    (root / "AutoPick" / "job900").mkdir(parents=True)
    refs = MicrographRefs.from_stack(open_micrograph_stack("MotionCorr/job002/Micrographs/*.mrc"))
    res = write_selection("AutoPick/job900/autopick.star", picks, kept, kind="coordinates", micrographs=refs,
                          coord_suffix="cryodiag")
    # RELION's rule: <coord_dir>/<name after Job/jobNNN/ without extension>_<suffix>.star
    expected = {root / "AutoPick/job900/Micrographs" / f"{Path(n).stem}_cryodiag.star" for n in project["names"]}
    assert {Path(p) for p in res.coordinate_files} == expected
    out = _relion([RELION, "--i", "micrographs.star", "--coord_dir", "AutoPick/job900/", "--coord_suffix",
                   "_cryodiag.star", "--part_star", "Extract2/particles.star", "--part_dir", "Extract2/",
                   "--extract", "--extract_size", str(BOX)], root)
    assert f"Written out STAR file with {int(kept.sum())} particles" in out
    parts = _extracted(root, "Extract2/particles.star")
    assert len(parts) == kept.sum()
    _check_extracted_boxes(root, parts, project["sim"], project["names"])
    # the RELION 4/5 index: micrograph names and project-relative coordinate files; cryodiag reads it back
    index = read_star(root / "AutoPick/job900/autopick.star")["coordinate_files"]
    assert list(index.columns) == ["rlnMicrographName", "rlnMicrographCoordinates"]
    assert set(index["rlnMicrographName"]) == set(project["names"])
    assert all(str(c).startswith("AutoPick/job900/Micrographs/") for c in index["rlnMicrographCoordinates"])
    back = read_table(root / "AutoPick/job900/autopick.star")
    assert len(back) == kept.sum()
    assert back.groupby("micrograph").size().to_dict() == picks[kept].groupby("micrograph").size().to_dict()


def test_relion_coordinate_path_rule():
    assert relion_coordinate_path("MotionCorr/job002/Movies/a.mrc", "AP", "autopick") == Path("AP/Movies/a_autopick.star")
    assert relion_coordinate_path("Micrographs/epu.mrc", "AP", "x") == Path("AP/Micrographs/epu_x.star")
    assert relion_coordinate_path("/data/p/MotionCorr/job012/m/b.tiff", "AP", "x") == Path("AP/m/b_x.star")
    assert relion_coordinate_path("/data/b.mrc", "AP", "x") == Path("AP/data/b_x.star")


def test_cs_export_read_by_cryosparc_tools(project, tmp_path):
    Dataset = pytest.importorskip("cryosparc.dataset").Dataset
    picks, kept, sim = project["picks"].copy(), project["kept"], project["sim"]
    picks["ncc"] = np.linspace(0, 1, len(picks))
    picks["power"] = np.linspace(10, 20, len(picks))
    # cryoSPARC's motion-corrected micrographs carry the exposure uid in their file names
    uids = [10**19 + 17 * i for i in range(3)]
    paths = [str(tmp_path / f"{u:021d}_{n[:-4]}_patch_aligned_doseweighted.mrc") for u, n in zip(uids, sim.names)]
    refs = MicrographRefs.from_paths(paths, shapes=(256, 256), pixel_size_A=sim.pixel_size_A)
    res = write_selection(tmp_path / "kept.cs", picks, kept, micrographs=refs)
    d = Dataset.load(str(res.kept))
    sub = picks[kept].reset_index(drop=True)
    assert len(d) == len(sub) and len(np.unique(d["uid"])) == len(sub)
    mic = [sim.names.index(k + ".mrc") for k in sub["micrograph"].astype(str)]
    assert list(d["location/micrograph_path"]) == [paths[i] for i in mic]
    np.testing.assert_array_equal(d["location/micrograph_uid"], np.array([uids[i] for i in mic], dtype=np.uint64))
    np.testing.assert_array_equal(d["location/micrograph_shape"], np.tile([256, 256], (len(sub), 1)))
    np.testing.assert_allclose(d["location/center_x_frac"] * 256, sub["x_px"], atol=1e-4)
    np.testing.assert_allclose(d["location/center_y_frac"] * 256, sub["y_px"], atol=1e-4)
    np.testing.assert_allclose(d["location/micrograph_psize_A"], sim.pixel_size_A)
    np.testing.assert_allclose(d["pick_stats/ncc_score"], sub["ncc"], rtol=1e-6)
    np.testing.assert_allclose(d["pick_stats/power"], sub["power"], rtol=1e-6)
    np.testing.assert_allclose(d["ctf/df1_A"], sub["defocus_u_A"], rtol=1e-6)
    np.testing.assert_allclose(d["ctf/df2_A"], sub["defocus_v_A"], rtol=1e-6)
    np.testing.assert_allclose(np.degrees(d["ctf/df_angle_rad"]), sub["defocus_angle_deg"], atol=1e-4)
    np.testing.assert_allclose(d["ctf/accel_kv"], sim.voltage_kV)
    np.testing.assert_allclose(d["ctf/cs_mm"], sim.cs_mm)
    np.testing.assert_allclose(d["ctf/amp_contrast"], sim.amplitude_contrast, rtol=1e-6)
    # and cryodiag reads the same picks back
    back = read_table(res.kept)
    np.testing.assert_allclose(back["x_px"], sub["x_px"], atol=1e-4)
    assert back["micrograph"].astype(str).tolist() == sub["micrograph"].astype(str).tolist()


def test_cs_export_keeps_the_input_cs_uids_and_paths(tmp_path):
    from napari_cryodiag.simulate.dataset import write_sample_dataset

    Dataset = pytest.importorskip("cryosparc.dataset").Dataset
    ds = write_sample_dataset(tmp_path / "data", seed=3, n_micrographs=2, shape=(256, 256), half_maps=False,
                              classes=False, refinement=False, particles_per_micrograph=8)
    t = read_table(ds.picks_cs)
    kept = t["ncc"].to_numpy() > np.median(t["ncc"])
    res = write_selection(tmp_path / "kept.cs", t, kept, rejected=True)
    src = np.load(ds.picks_cs)
    d = Dataset.load(str(res.kept))
    for f in ("uid", "location/micrograph_uid", "location/micrograph_path", "location/micrograph_shape",
              "location/center_x_frac", "pick_stats/ncc_score"):
        want = src[f][kept]
        got = np.asarray(d[f])
        if want.dtype.kind == "S":
            want = np.char.decode(want)
        np.testing.assert_array_equal(got, want, err_msg=f)
    assert len(np.load(res.rejected)) == (~kept).sum()


def test_values_with_blanks_are_quoted_and_read_back(tmp_path):
    t = pd.DataFrame({"micrograph_name": ["my mics/a b.mrc", "c.mrc", ""], "x_px": [1.0, 2.5, 3.0],
                      "y_px": [4.0, 5.0, 6.0], "note": ["it's", 'say "hi"', "x y"]})
    res = write_selection(tmp_path / "q.star", t, optics={"voltage_kV": 300, "cs_mm": 2.7, "amplitude_contrast": 0.1,
                                                          "pixel_size_A": 1.0})
    text = res.kept.read_text()
    assert '"my mics/a b.mrc"' in text and '"x y"' in text and "'say \"hi\"'" in text
    back = read_table(res.kept)
    assert back["micrograph_name"].astype(str).tolist() == ["my mics/a b.mrc", "c.mrc", ""]
    assert back["note"].tolist() == ["it's", 'say "hi"', "x y"]


def test_every_destination_is_checked_before_anything_is_written(project, tmp_path):
    picks, kept = project["picks"], project["kept"]
    # a refused _rejected file (it is an input) refuses before the kept file is written
    inp = tmp_path / "sel_rejected.star"
    inp.write_text("data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 2\n")
    before = inp.read_bytes()
    with pytest.raises(CryodiagInputError, match="input"):
        write_selection(tmp_path / "sel.star", picks, kept, rejected=True, protect=[inp], overwrite=True)
    assert not (tmp_path / "sel.star").exists() and inp.read_bytes() == before
    assert not (tmp_path / "sel.star.cryodiag.json").exists()
    # an existing output is replaced only with overwrite; the side JSON counts as an output
    (tmp_path / "k.star.cryodiag.json").write_text("{}")
    with pytest.raises(CryodiagInputError, match="exists"):
        write_selection(tmp_path / "k.star", picks, kept)
    assert not (tmp_path / "k.star").exists()
    res = write_selection(tmp_path / "k.star", picks, kept, overwrite=True)
    assert json.loads(res.side_json.read_text())["counts"]["kept"] == kept.sum()
    # a table's own source is never replaced, even with overwrite
    t = read_table(res.kept)
    with pytest.raises(CryodiagInputError, match="input"):
        write_selection(res.kept, t, overwrite=True)
    # a coordinate file that would land on an input: nothing written, the index neither
    (tmp_path / "c" / "Micrographs").mkdir(parents=True)
    clash = tmp_path / "c" / "Micrographs" / f"{project['sim'].names[0][:-4]}_autopick.star"
    clash.write_text("data_\n")
    refs = MicrographRefs(names=project["names"])
    with pytest.raises(CryodiagInputError, match="input"):
        write_selection(tmp_path / "c" / "index.star", picks, kept, kind="coordinates", micrographs=refs,
                        protect=[clash], overwrite=True)
    assert not (tmp_path / "c" / "index.star").exists() and clash.read_text() == "data_\n"
    assert len(list((tmp_path / "c").rglob("*.star"))) == 1


def test_names_without_a_match_are_said_in_the_notes(project, tmp_path):
    res = write_selection(tmp_path / "keys.star", project["picks"])
    assert any("matching key" in n for n in res.notes)
    side = json.loads(res.side_json.read_text())
    assert side["export"]["micrograph_names"] == "matching keys"
    assert any("matching key" in n for n in side["export"]["notes"])
