"""RELION STAR reading (1.3/3.0 without optics, 3.1 with optics, 5), postprocess, writing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.io import picks as pk
from napari_cryodiag.io import star

LINE_110 = [287.0, 402.0]  # line 110 of the 15_53_09 file = 101st pick

AUTOPICK_COUNTS = {  # data lines per RELION autopick file (counted with grep)
    "Falcon_2012_06_12-14_33_35_0": 607, "Falcon_2012_06_12-14_57_34_0": 671,
    "Falcon_2012_06_12-15_14_01_0": 621, "Falcon_2012_06_12-15_41_22_0": 649,
    "Falcon_2012_06_12-15_53_09_0": 769, "Falcon_2012_06_12-15_56_10_0": 567,
    "Falcon_2012_06_12-16_26_22_0": 598, "Falcon_2012_06_12-16_44_07_0": 604,
    "Falcon_2012_06_12-16_55_40_0": 607, "Falcon_2012_06_12-16_59_12_0": 583,
    "Falcon_2012_06_12-17_02_43_0": 553, "Falcon_2012_06_12-17_14_17_0": 676,
    "Falcon_2012_06_12-17_17_05_0": 659, "Falcon_2012_06_12-17_23_32_0": 629,
    "Falcon_2012_06_12-17_26_54_0": 677,
}


def test_autopick_folder_one_table(shared_data):
    t = pk.read_table(shared_data / "relion13-tutorial" / "autopick")
    assert len(t) == sum(AUTOPICK_COUNTS.values()) == 9470
    counts = t.groupby("micrograph").size().to_dict()
    assert counts == AUTOPICK_COUNTS
    # first data line of the 15_53_09 file (line 10): 935 69 20 5 1.269163
    rows = t[t["micrograph"] == "Falcon_2012_06_12-15_53_09_0"]
    row = rows.iloc[0]
    assert (row["x_px"], row["y_px"], row["psi_deg"], row["class"]) == (935.0, 69.0, 20.0, 5)
    assert row["rlnAutopickFigureOfMerit"] == pytest.approx(1.269163)
    assert row["source_row"] == 0
    assert rows.iloc[100][["x_px", "y_px"]].tolist() == LINE_110
    assert t.attrs["format"] == "star" and "rlnCoordinateX" in t.attrs["convention"]


def test_relion13_particles_no_optics(shared_data):
    t = pk.read_table(shared_data / "relion13-tutorial" / "particles_autopick_sort_class2d_class3d.star")
    assert len(t) == 6496
    assert t["micrograph"].nunique() == 15
    counts = t.groupby("micrograph").size()
    assert counts["Falcon_2012_06_12-14_33_35_0"] == 417 and counts["Falcon_2012_06_12-14_57_34_0"] == 428
    assert (t["class"] == 3).all()
    r = t.iloc[99]  # 100th particle, checked with awk
    assert (r["x_px"], r["y_px"]) == (663.0, 742.0)
    assert r["defocus_u_A"] == pytest.approx(30046.980469) and r["defocus_v_A"] == pytest.approx(30498.880859)
    assert r["defocus_A"] == pytest.approx((30046.980469 + 30498.880859) / 2)
    assert r["image_index"] == 521 and r["image_path"].endswith("15_53_09_0_particles_autopick.mrcs")
    # RELION < 3.1: pixel size = detector pixel (14 µm) / magnification (39548)
    assert r["pixel_size_A"] == pytest.approx(14e4 / 39548)
    assert r["shift_x_A"] == pytest.approx(-2.696698 * 14e4 / 39548)
    assert r["rot_deg"] == pytest.approx(-121.802490) and r["tilt_deg"] == pytest.approx(60.736855)
    assert t.attrs["optics"] is None


def test_relion31_six_optics_groups(shared_data):
    t = pk.read_table(shared_data / "relion31" / "relion31.6opticsgroups.star")
    assert len(t) == 139
    opt = t.attrs["optics"]
    assert len(opt) == 6
    # coordinates are in micrograph pixels: rlnMicrographPixelSize per optics group
    expected = {1: 1.25, 2: 1.24, 3: 1.25, 4: 1.25, 5: 1.24, 6: 1.035}
    got = t.groupby("rlnOpticsGroup")["pixel_size_A"].unique().to_dict()
    assert {k: list(v) for k, v in got.items()} == {k: [v] for k, v in expected.items()}
    assert set(t.loc[t["rlnOpticsGroup"] == 4, "cs_mm"]) == {2.6}
    assert (t["voltage_kV"] == 200).all()
    r = t.iloc[0]
    assert r["micrograph_name"] == "MotionCorr/job002/Micrographs/0003.mrc" and r["micrograph"] == "0003"
    assert r["x_px"] == pytest.approx(2417.658855) and r["y_px"] == pytest.approx(1078.795983)
    assert r["rlnOpticsGroup"] == 6 and r["pixel_size_A"] == pytest.approx(1.035)
    assert r["rlnImagePixelSize"] == pytest.approx(1.25)
    assert r["shift_x_A"] == pytest.approx(13.284554)
    assert r["split"] == 1  # rlnRandomSubset 2


def test_relion5(shared_data):
    t = pk.read_table(shared_data / "relion31" / "relion5.star")
    assert len(t) > 0
    r = t.iloc[1]
    assert (r["x_px"], r["y_px"]) == (1381.0, 283.0)
    assert r["rlnAutopickFigureOfMerit"] == pytest.approx(38.500599)
    assert r["micrograph"] == "FoilHole_353510_Data_342200_1_20250401_174947_EER"
    assert r["pixel_size_A"] == pytest.approx(0.89) and r["voltage_kV"] == 100
    assert r["image_index"] == 1 and r["image_path"] == "toy_images_b.mrcs"


def test_numeric_looking_micrograph_names_stay_strings(shared_data):
    t = pk.read_table(shared_data / "empiar-10076" / "empiar_10076_7.star")
    assert list(t["micrograph_name"]) == ["1", "2", "3", "4", "5", "6", "7"]
    assert t["pixel_size_A"].iloc[0] == pytest.approx(5e4 / 38168)


def test_postprocess(shared_data):
    pp = star.read_postprocess(shared_data / "relion-postprocess" / "postprocess.star")
    assert pp["general"]["rlnFinalResolution"] == pytest.approx(16.363636)
    assert pp["general"]["rlnMaskName"] == "mask.mrc"
    fsc = pp["fsc"]
    assert len(fsc) == 49
    assert fsc["rlnAngstromResolution"].iloc[2] == pytest.approx(360.0)
    assert fsc["rlnFourierShellCorrelationCorrected"].iloc[1] == pytest.approx(0.999943)
    assert list(pp["guinier"].columns)[:2] == ["rlnResolutionSquared", "rlnLogAmplitudesOriginal"]
    assert len(pp["guinier"]) > 0


def test_ctf_star_has_no_coordinates(shared_data):
    p = shared_data / "relion13-tutorial" / "all_micrographs_ctf.star"
    t = pk.read_table(p)  # fine as a particle/micrograph table
    assert len(t) == 15 and not pk.has_coordinates(t)
    assert t["defocus_u_A"].iloc[0] == pytest.approx(33135.128906)
    assert t["pixel_size_A"].iloc[0] == pytest.approx(3.5)


def test_write_star_roundtrip_optics(shared_data, tmp_path):
    src = shared_data / "relion31" / "relion31.6opticsgroups.star"
    t = pk.read_table(src)
    kept = t.iloc[::2].copy()
    kept.attrs = dict(t.attrs)
    out = star.write_star(tmp_path / "kept.star", kept)
    blocks = star.read_star(out)
    assert set(blocks) == {"optics", "particles"} and len(blocks["optics"]) == 6
    back = pk.read_table(out)
    assert len(back) == len(kept)
    for c in ("x_px", "y_px", "defocus_u_A", "pixel_size_A", "rot_deg", "shift_x_A", "class", "split"):
        np.testing.assert_allclose(back[c].to_numpy(float), kept[c].to_numpy(float), rtol=1e-6, err_msg=c)
    assert list(back["micrograph_name"]) == list(kept["micrograph_name"])
    assert list(back["rlnImageName"]) == list(kept["rlnImageName"])
    with pytest.raises(Exception, match="input"):
        star.write_star(src, kept, overwrite=True)


def test_write_star_without_optics_keeps_extra_columns(tmp_path):
    t = pd.DataFrame({"micrograph_name": ["a.mrc", "b.mrc"], "x_px": [1.5, 2.5], "y_px": [3.0, 4.0],
                      "ncc": [0.25, 0.5], "truth": [True, False]})
    out = star.write_star(tmp_path / "p.star", t)
    text = out.read_text()
    assert "data_\n" in text and "data_optics" not in text and "_rlnCoordinateX" in text
    back = pk.read_table(out)
    np.testing.assert_allclose(back["ncc"], [0.25, 0.5])
    np.testing.assert_array_equal(back["truth"], [1, 0])
    assert list(back["micrograph"]) == ["a", "b"]


def test_relion_coordinate_index(tmp_path):
    """RELION >= 3.1 autopick.star lists each micrograph's coordinate file (project-relative)."""
    job = tmp_path / "AutoPick" / "job006"
    (job / "Movies").mkdir(parents=True)
    for i, n in ((1, 3), (2, 2)):
        rows = "\n".join(f"{10 * k + i}.0 {20 * k}.0 0.{k}" for k in range(n))
        (job / "Movies" / f"mic{i}_autopick.star").write_text(
            "\n# version 30001\n\ndata_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n"
            f"_rlnAutopickFigureOfMerit #3\n{rows}\n\n")
    (job / "autopick.star").write_text(
        "\n# version 30001\n\ndata_coordinate_files\n\nloop_\n_rlnMicrographName #1\n"
        "_rlnMicrographCoordinates #2\n"
        "MotionCorr/job002/Movies/mic1.mrc AutoPick/job006/Movies/mic1_autopick.star\n"
        "MotionCorr/job002/Movies/mic2.mrc AutoPick/job006/Movies/mic2_autopick.star\n"
        "MotionCorr/job002/Movies/mic3.mrc AutoPick/job006/Movies/mic3_autopick.star\n\n")
    t = pk.read_table(job / "autopick.star")
    assert t.groupby("micrograph").size().to_dict() == {"mic1": 3, "mic2": 2}
    assert t["x_px"].tolist() == [1.0, 11.0, 21.0, 2.0, 12.0]
    assert "1 coordinate files" in t.attrs["note"]
