"""Bad input: every problem gets a CryodiagInputError naming the file and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag import _reader
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io import cs, mrc, star
from napari_cryodiag.io import picks as pk


@pytest.fixture
def good_mrc(tmp_path):
    return mrc.write_mrc(tmp_path / "good.mrc", np.ones((32, 40), np.float32), 1.0)


def _raises(fn, path, match):
    with pytest.raises(CryodiagInputError, match=match) as info:
        fn(path)
    assert str(path) in str(info.value)  # the message names the file
    return info.value


def test_truncated_mrc(good_mrc):
    data = good_mrc.read_bytes()
    good_mrc.write_bytes(data[: len(data) - 100])
    err = _raises(mrc.read_image, good_mrc, "truncated")
    assert "40x32x1" in err.problem


def test_wrong_mode(good_mrc):
    b = bytearray(good_mrc.read_bytes())
    b[12:16] = np.int32(5).tobytes()
    good_mrc.write_bytes(bytes(b))
    _raises(mrc.read_map, good_mrc, "mode 5")


def test_not_an_mrc(tmp_path):
    p = tmp_path / "notes.mrc"
    p.write_text("these are my notes, not a micrograph\n" * 100)
    _raises(mrc.read_image, p, "not an MRC file")
    q = tmp_path / "short.mrc"
    q.write_bytes(b"\x00" * 100)
    _raises(mrc.read_header, q, "shorter than the 1024-byte")
    _raises(mrc.read_header, tmp_path / "missing.mrc", "not found")


def test_mixed_shapes_in_folder(tmp_path):
    d = tmp_path / "mics"
    d.mkdir()
    for i in range(4):
        mrc.write_mrc(d / f"m{i}.mrc", np.zeros((32, 32), np.float32), 1.0)
    mrc.write_mrc(d / "odd.mrc", np.zeros((16, 32), np.float32), 1.0)
    mrc.write_mrc(d / "half.mrc", np.zeros((32, 32), np.float16), 1.0)
    (d / "junk.mrc").write_text("x" * 2000)
    err = _raises(mrc.open_micrograph_stack, d, "3 of 7 micrographs cannot join")
    assert "odd.mrc: shape 32x16" in err.problem and "half.mrc" in err.problem and "junk.mrc" in err.problem
    st = mrc.open_micrograph_stack(d, skip_mismatched=True)
    assert st.names == ["m0.mrc", "m1.mrc", "m2.mrc", "m3.mrc"] and len(st.skipped) == 3


def test_star_without_coordinates(shared_data):
    p = shared_data / "relion13-tutorial" / "all_micrographs_ctf.star"
    _raises(lambda x: star.read_star_table(x, require_coordinates=True), p, "no rlnCoordinateX")
    assert len(star.read_star_table(p)) == 15  # fine as a table


def test_bad_star(tmp_path):
    p = tmp_path / "x.star"
    p.write_text("hello\n")
    _raises(pk.read_table, p, "no 'data_' block")
    p.write_text("data_\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n1 2\n3 4 5 6\n")
    _raises(pk.read_table, p, "cannot parse")
    pp = tmp_path / "pp.star"
    pp.write_text("data_general\n_rlnFinalResolution 3.0\n\ndata_fsc\nloop_\n_rlnResolution #1\n0.1\n")
    _raises(pk.read_table, pp, "postprocess")


def test_unknown_cs_schema(tmp_path):
    p = tmp_path / "other.cs"
    with open(p, "wb") as f:
        np.save(f, np.zeros(3, dtype=[("foo", "<f4"), ("bar", "<i4")]))
    _raises(pk.read_table, p, "unknown .cs schema")
    with open(p, "wb") as f:
        np.save(f, np.zeros((3, 3)))
    _raises(pk.read_table, p, "unknown .cs schema")
    p.write_bytes(b"PK\x03\x04 zip file")
    _raises(pk.read_table, p, "not a cryoSPARC .cs file")


def test_compressed_cs_needs_cryosparc_tools(tmp_path):
    p = tmp_path / "new.cs"
    p.write_bytes(b"\x95CSDAT" + b"\x00" * 64)
    try:
        import cryosparc.dataset  # noqa: F401
    except ImportError:
        _raises(cs.read_cs_array, p, "pip install cryosparc-tools")
    else:
        _raises(cs.read_cs_array, p, "cryosparc-tools could not read")


def test_picks_whose_micrographs_are_missing(shared_data):
    t = pk.read_table(shared_data / "relion13-tutorial" / "autopick")
    keys = ["Falcon_2012_06_12-14_33_35_0.mrc", "Falcon_2012_06_12-14_57_34_0.mrc", "not_picked.mrc"]
    idx, rep = pk.match_to_micrographs(t, keys)
    assert rep["n_matched"] == 607 + 671
    assert rep["n_unmatched"] == 9470 - 607 - 671
    assert len(rep["unmatched_micrographs"]) == 13
    assert rep["micrographs_without_picks"] == ["not_picked"]
    assert "13 micrographs that are not open" in rep.summary()


def test_reader_shows_error_and_returns_none(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(_reader, "_notify_error", shown.append)
    p = tmp_path / "broken.mrc"
    p.write_text("not an mrc" * 200)
    reader = _reader.get_reader(str(p))
    assert reader is not None
    assert reader(str(p)) is None
    assert len(shown) == 1 and str(p) in shown[0] and "not an MRC file" in shown[0]
    assert _reader.get_reader(str(tmp_path / "picture.png")) is None


def test_cli_info_reports_errors(tmp_path, capsys, shared_data):
    from napari_cryodiag.cli import main

    p = tmp_path / "broken.mrc"
    p.write_text("nope" * 400)
    rc = main(["info", str(p), str(shared_data / "emdb" / "EMD-3197.map")])
    out = capsys.readouterr().out
    assert rc == 2
    assert "not an MRC file" in out and "voxel_size_A_zyx: 11.4, 11.4, 11.4" in out
