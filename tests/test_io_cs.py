"""cryoSPARC .cs reading and writing, crYOLO .cbox, micrograph keys and matching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io import cbox, cs
from napari_cryodiag.io import picks as pk
from napari_cryodiag.io import star


def test_refinement_cs(shared_data):
    p = shared_data / "cryosparc" / "cryosparc_P12_J24_001_particles.cs"
    t = pk.read_table(p)
    raw = np.load(p)
    assert len(t) == 2019
    assert t["image_path"].nunique() == 50  # 2,019 particles on 50 micrographs
    assert not t.attrs["has_locations"] and not pk.has_coordinates(t)
    r = t.iloc[0]
    assert r["pixel_size_A"] == pytest.approx(2.95)
    assert r["defocus_u_A"] == pytest.approx(45591.37) and r["defocus_v_A"] == pytest.approx(45309.793)
    assert r["defocus_angle_deg"] == pytest.approx(np.degrees(-1.3636448), rel=1e-6)
    assert r["voltage_kV"] == 200 and r["cs_mm"] == 2.0 and r["amplitude_contrast"] == pytest.approx(0.07)
    assert r["shift_x_A"] == pytest.approx(11.334375 * 2.95) and r["shift_y_A"] == pytest.approx(-1.828125 * 2.95)
    assert (t["class"] == 0).all() and np.bincount(t["split"]).tolist() == [1010, 1009]
    # the RELION Euler angles give back cryoSPARC's rotation
    eul = t[["rot_deg", "tilt_deg", "psi_deg"]].to_numpy()
    m1 = Rotation.from_euler("ZYZ", eul, degrees=True).as_matrix()
    m2 = Rotation.from_rotvec(raw["alignments3D/pose"].astype(float)).as_matrix()
    np.testing.assert_allclose(m1, m2, atol=1e-6)
    assert 0 <= t["tilt_deg"].min() and t["tilt_deg"].max() <= 180
    assert r["image_index"] == 0 and r["image_path"].startswith("J19/extract/")
    assert "alignments3D/error" in t.columns  # other numeric fields kept by name


def test_2d_classes_cs(shared_data):
    t = pk.read_table(shared_data / "cryosparc" / "cryosparc_J2_particles_exported.cs")
    assert t["class"].tolist() == [4, 1, 1, 0, 1, 3, 1, 1, 1, 4, 1, 4, 0, 0, 0, 3, 4, 2, 0, 0, 2, 3]
    assert t["class_ess"].iloc[:3].tolist() == pytest.approx([1.0, 1.2115469, 1.6271757])
    assert t["class_posterior"].iloc[0] == pytest.approx(1.0)
    assert t["psi_deg"].iloc[0] == pytest.approx(np.degrees(5.8985004))
    assert t["image_path"].iloc[0] == "J1/imported/000090334788266266069_18jam15b_0345_ali_DW.mrcs"


def test_zero_row_schema(shared_data):
    t = pk.read_table(shared_data / "cryosparc" / "4k_dataset.cs")
    assert len(t) == 0
    assert t.attrs["has_locations"]
    for c in ("x_px", "y_px", "ncc", "power", "micrograph", "pixel_size_A", "posterior_class_2",
              "pick_stats/template_idx", "pick_stats/angle_rad", "rot_deg"):
        assert c in t.columns, c


def test_cs_and_star_ctf_agree(shared_data):
    c = pk.read_table(shared_data / "empiar-10076" / "empiar_10076_7.cs")
    s = pk.read_table(shared_data / "empiar-10076" / "empiar_10076_7.star")
    assert len(c) == len(s) == 7
    for col in ("defocus_u_A", "defocus_v_A", "defocus_A", "voltage_kV", "cs_mm", "amplitude_contrast",
                "pixel_size_A", "image_index"):
        np.testing.assert_allclose(c[col].to_numpy(float), s[col].to_numpy(float), rtol=1e-5, err_msg=col)
    # STAR angle 5.28° vs .cs 0.092153385 rad
    np.testing.assert_allclose(c["defocus_angle_deg"], s["defocus_angle_deg"], atol=1e-4)


def _synthetic_picks_cs(path, n=300, flip=False):
    rng = np.random.default_rng(5)
    dt = [("uid", "<u8"), ("location/micrograph_uid", "<u8"), ("location/micrograph_path", "S100"),
          ("location/micrograph_shape", "<u4", (2,)), ("location/center_x_frac", "<f4"),
          ("location/center_y_frac", "<f4"), ("location/micrograph_psize_A", "<f4"),
          ("pick_stats/ncc_score", "<f4"), ("pick_stats/power", "<f4"), ("ctf/df1_A", "<f4"),
          ("ctf/df2_A", "<f4"), ("ctf/df_angle_rad", "<f4"), ("alignments3D/pose", "<f4", (3,)),
          ("alignments3D/error", "<f4")]
    a = np.zeros(n, dt)
    a["uid"] = np.arange(n) + 10
    mic = rng.integers(0, 4, n)
    a["location/micrograph_uid"] = 1000 + mic
    a["location/micrograph_path"] = [f"J3/motioncorrected/{123456789012345678 + m}_mic{m}_patch_aligned_doseweighted.mrc".encode()
                                     for m in mic]
    a["location/micrograph_shape"] = (3000, 4000)  # [ny, nx]
    a["location/center_x_frac"] = rng.uniform(0, 1, n)
    a["location/center_y_frac"] = rng.uniform(0, 1, n)
    a["location/micrograph_psize_A"] = 1.1
    a["pick_stats/ncc_score"] = rng.uniform(0, 1, n)
    a["pick_stats/power"] = rng.uniform(0, 100, n)
    a["ctf/df1_A"] = 15000 + mic * 1000
    a["ctf/df2_A"] = 14000 + mic * 1000
    a["alignments3D/error"] = rng.normal(size=n)
    if hasattr(path, "write"):
        np.save(path, a)
    else:
        with open(path, "wb") as f:  # np.save on a name would append .npy
            np.save(f, a)
    return a


def test_picks_cs_locations_and_flip(tmp_path):
    p = tmp_path / "picks.cs"
    _synthetic_picks_cs(p)
    a = np.load(p)
    t = pk.read_table(p)
    np.testing.assert_allclose(t["x_px"], a["location/center_x_frac"].astype(float) * 4000)
    np.testing.assert_allclose(t["y_px"], a["location/center_y_frac"].astype(float) * 3000)
    assert set(t["micrograph"]) == {"mic0", "mic1", "mic2", "mic3"}
    tf = pk.read_table(p, flip_y=True)
    np.testing.assert_allclose(tf["y_px"], 3000 - t["y_px"])
    assert "ny - y" in tf.attrs["convention"]
    np.testing.assert_allclose(t["ncc"], a["pick_stats/ncc_score"])
    # memory-mapped read of a few fields gives the same values
    tm = cs.read_cs(p, mmap=True, fields=["location/center_x_frac", "location/center_y_frac",
                                         "location/micrograph_shape", "pick_stats/power"])
    np.testing.assert_allclose(tm["x_px"], t["x_px"])
    assert "ncc" not in tm.columns and "power" in tm.columns
    # the sequential chunked reader (default for a field subset) agrees, with tiny chunks too
    fields = ["location/center_x_frac", "location/center_y_frac", "location/micrograph_shape",
              "location/micrograph_path", "location/micrograph_uid", "pick_stats/power"]
    tc = cs.read_cs(p, fields=fields)
    np.testing.assert_allclose(tc["y_px"], t["y_px"])
    assert list(tc["micrograph"]) == list(t["micrograph"])
    small = cs.read_cs_fields(p, fields, chunk_bytes=1000)
    np.testing.assert_array_equal(small["pick_stats/power"], a["pick_stats/power"])
    assert small.dtype.names == tuple(fields)


def test_write_cs_keeps_source_fields(tmp_path):
    src = tmp_path / "picks.cs"
    with open(src, "wb") as f:
        a = _synthetic_picks_cs(f)
    t = pk.read_table(src, flip_y=True)
    sel = t[t["ncc"] > 0.5].copy()
    sel.attrs = dict(t.attrs)
    sel["x_px"] += 1.0  # edited coordinates are written back
    out = cs.write_cs(tmp_path / "sel.cs", sel)
    b = np.load(out)
    assert b.dtype == a.dtype and len(b) == len(sel)
    rows = sel["source_row"].to_numpy()
    np.testing.assert_array_equal(b["uid"], a["uid"][rows])
    np.testing.assert_array_equal(b["alignments3D/error"], a["alignments3D/error"][rows])
    np.testing.assert_allclose(b["location/center_x_frac"], (a["location/center_x_frac"][rows] * 4000 + 1) / 4000, rtol=1e-6)
    np.testing.assert_allclose(b["location/center_y_frac"], a["location/center_y_frac"][rows], rtol=1e-6)
    with pytest.raises(CryodiagInputError, match="input"):
        cs.write_cs(src, sel, overwrite=True)
    with pytest.raises(CryodiagInputError, match="exists"):
        cs.write_cs(out, sel)


def test_write_cs_from_star_table(tmp_path):
    t = pd.DataFrame({"micrograph_name": ["m1.mrc", "m1.mrc", "m2.mrc"], "x_px": [100.0, 200.0, 300.0],
                      "y_px": [50.0, 60.0, 70.0], "defocus_u_A": [1e4, 1e4, 2e4]})
    with pytest.raises(CryodiagInputError, match="micrograph_shape"):
        cs.write_cs(tmp_path / "a.cs", t)
    out = cs.write_cs(tmp_path / "a.cs", t, micrograph_shape=(1000, 2000))
    back = pk.read_table(out)
    np.testing.assert_allclose(back["x_px"], t["x_px"], rtol=1e-6)
    np.testing.assert_allclose(back["y_px"], t["y_px"], rtol=1e-6)
    assert list(back["micrograph"]) == ["m1", "m1", "m2"]
    np.testing.assert_allclose(back["defocus_u_A"], t["defocus_u_A"])


def test_star_roundtrip_of_cs_particles(shared_data, tmp_path):
    t = pk.read_table(shared_data / "cryosparc" / "cryosparc_P12_J24_001_particles.cs")
    out = star.write_star(tmp_path / "p.star", t)
    back = pk.read_table(out)
    assert len(star.read_star(out)["optics"]) == 1
    for c in ("rot_deg", "tilt_deg", "psi_deg", "defocus_u_A", "shift_x_A", "pixel_size_A", "image_index"):
        np.testing.assert_allclose(back[c].to_numpy(float), t[c].to_numpy(float), rtol=1e-5, atol=1e-4, err_msg=c)
    assert (back["split"].to_numpy() == t["split"].to_numpy()).all()


def test_cbox(shared_data):
    t = pk.read_table(shared_data / "cryolo" / "TcdA1-0018_frames_sum.cbox")
    assert len(t) == 120
    r = t.iloc[0]  # 3700.3671875 3874.455551147461 <NA> 220 220 <NA> 232 222 0.6578449
    assert r["x_px"] == pytest.approx(3700.3671875 + 110) and r["y_px"] == pytest.approx(3874.455551147461 + 110)
    assert r["Confidence"] == pytest.approx(0.6578449010848999)
    assert r["diameter_px"] == pytest.approx((232 + 222) / 2)
    assert r["micrograph"] == "TcdA1-0018"
    both = pk.read_table(shared_data / "cryolo")
    assert both.groupby("micrograph").size().to_dict() == {"TcdA1-0018": 120, "TcdA1-0019": 129}
    r19 = both[both["micrograph"] == "TcdA1-0019"].iloc[0]
    assert r19["Confidence"] == pytest.approx(0.8090754151344299)
    assert cbox.read_cbox(shared_data / "cryolo" / "TcdA1-0018_frames_sum.cbox", min_confidence=0.5)["Confidence"].min() >= 0.5


@pytest.mark.parametrize("name, key", [
    ("Micrographs/Falcon_2012_06_12-14_33_35_0.mrc", "Falcon_2012_06_12-14_33_35_0"),
    ("Falcon_2012_06_12-14_33_35_0_autopick.star", "Falcon_2012_06_12-14_33_35_0"),
    ("TcdA1-0018_frames_sum.cbox", "TcdA1-0018"),
    ("J3/motioncorrected/012345678901234567890_mic_7_patch_aligned_doseweighted.mrc", "mic_7"),
    ("mic_7_DW.mrc", "mic_7"),
    ("Micrographs/Falcon_2012_06_12-14_33_35_0.ctf:mrc", "Falcon_2012_06_12-14_33_35_0"),
    ("000042@Particles/Micrographs/mic_particles.mrcs", "mic"),
    ("0003", "0003"),
])
def test_micrograph_key(name, key):
    assert pk.micrograph_key(name) == key


def test_match_to_micrographs_reports_both_sides():
    t = pd.DataFrame({"micrograph": ["a", "a", "b", "z", "z", "z"]})
    idx, rep = pk.match_to_micrographs(t, ["c_frames_sum.mrc", "b_DW.mrc", "a.mrc"])
    assert idx.tolist() == [2, 2, 1, -1, -1, -1]
    assert rep["n_matched"] == 3 and rep["n_unmatched"] == 3
    assert rep["unmatched_micrographs"] == {"z": 3}
    assert rep["micrographs_without_picks"] == ["c"]
    assert rep["picks_per_micrograph"] == [0, 1, 2]
    assert "3 picks on 1 micrographs that are not open (z)" in rep.summary()
    groups = pk.group_rows(idx, 3)
    assert [g.tolist() for g in groups] == [[], [2], [0, 1]]


def test_compressed_csdat_through_cryosparc_tools(shared_data, tmp_path):
    ds_mod = pytest.importorskip("cryosparc.dataset", reason="cryosparc-tools not installed")
    src = shared_data / "cryosparc" / "cryosparc_J2_particles_exported.cs"
    p = tmp_path / "compressed.cs"
    ds_mod.Dataset.load(str(src)).save(str(p), format=ds_mod.CSDAT_FORMAT)
    assert p.read_bytes()[:6] == b"\x95CSDAT"
    a, b = pk.read_table(src), pk.read_table(p)
    for c in ("class", "class_ess", "class_posterior", "psi_deg", "defocus_u_A", "image_index"):
        np.testing.assert_allclose(b[c].to_numpy(float), a[c].to_numpy(float), err_msg=c)
    assert list(b["image_path"]) == list(a["image_path"])


def test_alignments3d_multi_full_posteriors(tmp_path):
    """3D classification keeps every particle's posterior over K classes (N, K)."""
    post = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]], dtype=np.float32)
    a = np.zeros(2, dtype=[("uid", "<u8"), ("alignments3D_multi/class_posterior", "<f4", (3,)),
                           ("alignments3D/class", "<u4"), ("alignments3D/class_posterior", "<f4")])
    a["alignments3D_multi/class_posterior"] = post
    a["alignments3D/class"] = [0, 2]
    a["alignments3D/class_posterior"] = [0.7, 1.0]
    p = tmp_path / "multi.cs"
    with open(p, "wb") as f:
        np.save(f, a)
    t = pk.read_table(p)
    np.testing.assert_allclose(t[["posterior_class_0", "posterior_class_1", "posterior_class_2"]].to_numpy(), post)
    assert t["class"].tolist() == [0, 2] and t["class_posterior"].tolist() == pytest.approx([0.7, 1.0])
    assert not t.attrs["has_locations"]


def test_runs_of_matches_factorize_on_rows():
    """The run-based codes (only runs hashed) equal pd.factorize of every row, first rows included."""
    rng = np.random.default_rng(3)
    for uid in (np.repeat(rng.integers(0, 50, 40), rng.integers(1, 9, 40)).astype(np.uint64),  # runs, values recur
                rng.integers(0, 7, 500).astype(np.uint64),  # no structure
                np.sort(rng.integers(0, 30, 300)).astype(np.uint64),  # each value in one run
                np.array([5], dtype=np.uint64), np.zeros(0, dtype=np.uint64)):
        codes, first = cs._codes_of(uid)
        want, uniq = pd.factorize(uid, use_na_sentinel=False)
        np.testing.assert_array_equal(codes, want)
        np.testing.assert_array_equal(uid[first], uniq)
        assert all(int(np.flatnonzero(uid == u)[0]) == f for u, f in zip(uniq, first))


def test_cs_micrograph_uid_in_several_runs(tmp_path):
    """A micrograph whose picks come back in several runs (files joined, sorted by score) keeps one
    name per row, decoded from its uid's first row; names left empty fall back to the uids."""
    n = 64
    dt = [("uid", "<u8"), ("location/micrograph_uid", "<u8"), ("location/micrograph_path", "S40"),
          ("location/micrograph_shape", "<u4", (2,)), ("location/center_x_frac", "<f4"),
          ("location/center_y_frac", "<f4"), ("pick_stats/ncc_score", "<f4")]
    a = np.zeros(n, dt)
    mic = np.array([2, 2, 0, 0, 0, 1, 2, 2, 1, 0] * 6 + [1, 1, 2, 0])
    a["uid"] = np.arange(n) + 1
    a["location/micrograph_uid"] = 7000 + mic
    a["location/micrograph_path"] = [f">/data/J9/mic_{m:03d}_doseweighted.mrc".encode() for m in mic]
    a["location/micrograph_shape"] = (100, 200)
    a["location/center_x_frac"] = np.linspace(0, 1, n)
    a["location/center_y_frac"] = 0.5
    a["pick_stats/ncc_score"] = np.arange(n)
    p = tmp_path / "runs.cs"
    with open(p, "wb") as f:
        np.save(f, a)
    for kw in ({}, {"fields": cs.PICK_FIELDS, "keep_other_fields": False}):
        t = cs.read_cs(p, **kw)
        assert list(t["micrograph_name"]) == [f"/data/J9/mic_{m:03d}_doseweighted.mrc" for m in mic]
        assert list(t["micrograph"]) == [f"mic_{m:03d}" for m in mic]
        assert list(t["micrograph_name"].cat.categories) == sorted(set(t["micrograph_name"]))
        assert t["micrograph_name"].cat.codes.dtype.itemsize <= 2  # small codes, as pandas keeps them
        np.testing.assert_array_equal(t["micrograph_uid"], 7000 + mic)
    a["location/micrograph_path"] = b""
    with open(p, "wb") as f:
        np.save(f, a)
    t = cs.read_cs(p)
    assert list(t["micrograph_name"]) == [str(7000 + m) for m in mic]
    assert list(t["micrograph_name"].cat.categories) == ["7000", "7001", "7002"]


@pytest.mark.parametrize("order", ["<", ">"])
def test_cs_pixel_coordinates_from_the_chunks(tmp_path, order):
    """x_px/y_px computed while each chunk of rows is read (the fractions never copied out) equal
    frac * n in double precision over several chunks, in either byte order, with flip_y, and the
    picks off their micrograph (NaN, outside [0, 1], shape [0, 0]) left out as before."""
    n = 60_000  # ~5 MB of rows: two chunks of 4 MB
    dt = np.dtype([("uid", order + "u8"), ("location/micrograph_uid", order + "u8"),
                   ("location/micrograph_path", "S40"), ("location/micrograph_shape", order + "u4", (2,)),
                   ("location/center_x_frac", order + "f4"), ("location/center_y_frac", order + "f4"),
                   ("pick_stats/ncc_score", order + "f4")])
    rng = np.random.default_rng(11)
    a = np.zeros(n, dt)
    mic = np.sort(rng.integers(0, 40, n))
    a["uid"] = np.arange(n)
    a["location/micrograph_uid"] = 500 + mic
    a["location/micrograph_path"] = [f"mic_{m}.mrc".encode() for m in mic]
    a["location/micrograph_shape"] = np.column_stack([3000 + mic, 4000 + 2 * mic])
    fx = rng.uniform(0, 1, n).astype(np.float32)
    fy = rng.uniform(0, 1, n).astype(np.float32)
    fx[[5, 70_00, 59_999]] = [np.nan, 1.5, -0.1]
    fy[123] = np.inf
    a["location/center_x_frac"], a["location/center_y_frac"] = fx, fy
    a["location/micrograph_shape"][[9, 41_000]] = 0
    p = tmp_path / "chunks.cs"
    with open(p, "wb") as f:
        np.save(f, a)
    assert p.stat().st_size > cs.CHUNK_BYTES
    bad = np.zeros(n, bool)
    bad[[5, 7000, 59_999, 123, 9, 41_000]] = True
    ny = a["location/micrograph_shape"][:, 0].astype(np.float64)
    nx = a["location/micrograph_shape"][:, 1].astype(np.float64)
    for flip in (False, True):
        for kw in ({}, {"fields": cs.PICK_FIELDS, "keep_other_fields": False}):
            t = cs.read_cs(p, flip_y=flip, **kw)
            assert len(t) == n - 6
            assert "2 of 60000 picks are on micrographs of shape [0, 0]" in t.attrs["note"]
            assert "4 of 60000 picks have fractions that are NaN" in t.attrs["note"]
            np.testing.assert_array_equal(t["source_row"], np.flatnonzero(~bad))
            x = fx.astype(np.float64) * nx
            y = fy.astype(np.float64) * ny
            y = ny - y if flip else y
            np.testing.assert_array_equal(t["x_px"], x[~bad])
            np.testing.assert_array_equal(t["y_px"], y[~bad])
            assert t["x_px"].dtype == t["y_px"].dtype == np.float64
            assert "location/center_x_frac" not in t.columns


def test_read_cs_fields_on_chunk_sees_transient_fields(tmp_path):
    p = tmp_path / "t.cs"
    _synthetic_picks_cs(p, n=300)
    a = np.load(p)
    seen = np.zeros(300, np.float64)
    calls = []

    def on_chunk(records, lo, hi, arrays):
        calls.append((lo, hi))
        seen[lo:hi] = records["location/center_x_frac"]
        np.testing.assert_array_equal(arrays["pick_stats/power"][lo:hi], a["pick_stats/power"][lo:hi])

    t = cs.read_cs_fields(p, ["pick_stats/power"], chunk_bytes=1000, transient=["location/center_x_frac"],
                          on_chunk=on_chunk)
    assert list(t) == ["pick_stats/power"] and len(calls) > 5 and calls[-1][1] == 300
    np.testing.assert_array_equal(seen, a["location/center_x_frac"])


def test_cs_pick_on_a_zero_shape_and_off_its_micrograph_counted_once(tmp_path):
    """A pick on a micrograph of shape 0 whose fraction is also NaN is counted with the shape-0
    picks only; a negative shape in a signed field counts as shape 0 too."""
    n = 50
    dt = np.dtype([("uid", "<u8"), ("location/micrograph_uid", "<u8"), ("location/micrograph_path", "S20"),
                   ("location/micrograph_shape", "<i4", (2,)), ("location/center_x_frac", "<f4"),
                   ("location/center_y_frac", "<f4")])
    a = np.zeros(n, dt)
    a["uid"] = np.arange(n)
    a["location/micrograph_uid"] = 7
    a["location/micrograph_path"] = b"mic_7.mrc"
    a["location/micrograph_shape"] = (100, 200)
    a["location/center_x_frac"] = 0.5
    a["location/center_y_frac"] = 0.25
    a["location/micrograph_shape"][[3, 4]] = 0
    a["location/micrograph_shape"][5] = (-1, 200)
    a["location/center_x_frac"][[4, 10]] = np.nan  # row 4: shape 0 and NaN; row 10: NaN only
    a["location/center_y_frac"][11] = 1.25
    p = tmp_path / "z.cs"
    with open(p, "wb") as f:
        np.save(f, a)
    t = cs.read_cs(p)
    assert t.attrs["notes"] == [f"3 of {n} picks are on micrographs of shape [0, 0] (position unknown): left out",
                                f"2 of {n} picks have fractions that are NaN, ±inf or outside [0, 1] (off the "
                                "micrograph): left out"]
    np.testing.assert_array_equal(t["source_row"], [i for i in range(n) if i not in (3, 4, 5, 10, 11)])
    assert (t["x_px"] == 100.0).all() and (t["y_px"] == 25.0).all()


def test_read_cs_fields_refuses_rows_the_file_no_longer_holds(tmp_path):
    """Rows are read with readinto until the header's count: a file shorter than its (already
    checked) header says, e.g. cut while it was read, is refused naming the row where it ends."""
    p = tmp_path / "t.cs"
    _synthetic_picks_cs(p, n=300)
    hdr = cs.read_cs_header(p)
    longer = cs.CsHeader(path=hdr.path, dtype=hdr.dtype, n=310, offset=hdr.offset)
    with pytest.raises(CryodiagInputError, match="rows end at row 301 of 310"):
        cs.read_cs_fields(p, ["pick_stats/power"], header=longer, chunk_bytes=1000)
