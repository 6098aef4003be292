"""MRC reading and writing: real EMDB maps, particle stacks, simulated micrograph folders."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io import mrc


def test_emd3197_voxel_size_and_origin(shared_data):
    m = mrc.read_map(shared_data / "emdb" / "EMD-3197.map")
    assert m.data.shape == (20, 20, 20)
    assert m.data.dtype == np.float32
    assert m.voxel_size_A == pytest.approx((11.4, 11.4, 11.4))
    # header origin field is 0; nxstart = -2 (EMDB convention) -> x origin -2 * 11.4 Å
    assert m.origin_A == pytest.approx((0.0, 0.0, -22.8))
    np.testing.assert_array_equal(m.data, mrcfile.read(shared_data / "emdb" / "EMD-3197.map"))


def test_emd3001_unequal_voxels_and_axis_order(shared_data):
    path = shared_data / "emdb" / "EMD-3001.map"
    m = mrc.read_map(path)
    # mapc, mapr, maps = 3, 1, 2: file columns run along Z, rows along X, sections along Y
    assert m.header.axis_order == (3, 1, 2)
    assert m.data.shape == (73, 25, 43)  # (Z, Y, X)
    # cell 17.93 x 4.71 x 33.03 Å sampled 40 x 12 x 72
    assert m.voxel_size_A == pytest.approx((33.03 / 72, 4.71 / 12, 17.93 / 40), rel=1e-5)
    # nxstart, nystart, nzstart = 0, -21, -12 belong to columns (Z), rows (X), sections (Y)
    assert m.origin_A == pytest.approx((0.0, -12 * 4.71 / 12, -21 * 17.93 / 40), rel=1e-5)
    raw = mrcfile.read(path)  # (sections=Y, rows=X, columns=Z)
    assert m.data[5, 7, 11] == raw[7, 11, 5]


def test_stack_with_unknown_pixel_size(shared_data):
    s = mrc.read_stack(shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_classes.mrcs")
    assert s.data.shape == (10, 100, 100)
    assert s.voxel_size_A is None and s.pixel_size_A is None
    s = mrc.read_stack(shared_data / "empiar-10076" / "empiar_10076_7.mrc", mmap=True)
    assert s.data.shape == (7, 320, 320)
    assert isinstance(s.data, np.memmap)


def test_write_read_roundtrip_with_origin(tmp_path):
    rng = np.random.default_rng(1)
    vol = rng.normal(size=(8, 10, 12)).astype(np.float32)
    p = mrc.write_mrc(tmp_path / "v.mrc", vol, (1.5, 2.0, 2.5), origin_A=(3.0, 4.0, 5.0))
    m = mrc.read_map(p)
    np.testing.assert_array_equal(m.data, vol)
    assert m.voxel_size_A == pytest.approx((1.5, 2.0, 2.5))
    assert m.origin_A == pytest.approx((3.0, 4.0, 5.0))
    with pytest.raises(CryodiagInputError, match="exists"):
        mrc.write_mrc(p, vol, 1.0)
    mrc.write_mrc(p, vol * 2, 1.0, overwrite=True)
    np.testing.assert_array_equal(mrc.read_map(p).data, vol * 2)


def test_float16_mode12_and_int8(tmp_path):
    img = (np.arange(64 * 48, dtype=np.float32).reshape(48, 64) / 100).astype(np.float16)
    p = mrc.write_mrc(tmp_path / "h.mrc", img, 0.8)
    assert mrc.read_header(p).mode == 12
    im = mrc.read_image(p)
    assert im.data.dtype == np.float32
    np.testing.assert_array_equal(im.data, img.astype(np.float32))
    assert im.pixel_size_A == pytest.approx(0.8)
    q = mrc.write_mrc(tmp_path / "b.mrc", np.arange(-8, 8, dtype=np.int8).reshape(4, 4), 1.0)
    assert mrc.read_header(q).mode == 0
    np.testing.assert_array_equal(mrc.read_image(q).data, np.arange(-8, 8).reshape(4, 4))


def test_big_endian_and_missing_map_id(tmp_path):
    """Old IMOD-style file: big-endian, no 'MAP ' id: read permissively."""
    from mrcfile.dtypes import HEADER_DTYPE

    h = np.zeros((), dtype=HEADER_DTYPE.newbyteorder(">"))
    h["nx"], h["ny"], h["nz"], h["mode"] = 5, 4, 1, 2
    h["mx"], h["my"], h["mz"] = 5, 4, 1
    h["cella"]["x"], h["cella"]["y"], h["cella"]["z"] = 10.0, 8.0, 2.0
    h["mapc"], h["mapr"], h["maps"] = 1, 2, 3
    data = np.arange(20, dtype=">f4").reshape(4, 5)
    p = tmp_path / "old.mrc"
    p.write_bytes(h.tobytes() + data.tobytes())
    im = mrc.read_image(p)
    np.testing.assert_array_equal(im.data, np.arange(20).reshape(4, 5))
    assert im.pixel_size_A == pytest.approx(2.0)
    assert any("MAP" in n for n in im.header.notes)


def _folder(tmp_path, n=6, shape=(64, 80), psize=1.5):
    rng = np.random.default_rng(0)
    d = tmp_path / "mics"
    d.mkdir()
    imgs = []
    for i in range(n):
        img = rng.normal(i, 1, shape).astype(np.float32)
        imgs.append(img)
        mrc.write_mrc(d / f"mic_{i + 1}_DW.mrc", img, psize)
    return d, imgs


def test_lazy_folder_reads_headers_only(tmp_path, monkeypatch):
    d, imgs = _folder(tmp_path, n=12)
    reads = []
    real = mrc._read_micrograph
    monkeypatch.setattr(mrc, "_read_micrograph", lambda h: reads.append(h.path) or real(h))
    st = mrc.open_micrograph_stack(d)
    assert reads == []  # opening touched headers only
    assert st.data.shape == (12, 64, 80) and st.data.chunks[0] == (1,) * 12
    assert st.pixel_size_A == pytest.approx(1.5)
    # natural sort: mic_2 before mic_10; keys drop the _DW suffix
    assert st.names[:3] == ["mic_1_DW.mrc", "mic_2_DW.mrc", "mic_3_DW.mrc"] and st.names[-1] == "mic_12_DW.mrc"
    assert st.keys[9] == "mic_10"
    sl = st.data[9].compute()
    assert reads == [str(d / "mic_10_DW.mrc")]  # one file read for one slice
    np.testing.assert_array_equal(sl, imgs[9])
    # same via a glob and a list
    st2 = mrc.open_micrograph_stack(str(d / "mic_1*_DW.mrc"))
    assert st2.names == ["mic_1_DW.mrc", "mic_10_DW.mrc", "mic_11_DW.mrc", "mic_12_DW.mrc"]
    st3 = mrc.open_micrograph_stack([d / "mic_3_DW.mrc", d / "mic_2_DW.mrc"])
    assert st3.names == ["mic_2_DW.mrc", "mic_3_DW.mrc"]


def test_contrast_limits_from_subsample():
    rng = np.random.default_rng(2)
    img = rng.normal(10, 2, (2048, 2048)).astype(np.float32)
    lo, hi = mrc.contrast_limits(img)
    assert lo == pytest.approx(10 - 2.576 * 2, abs=0.15)
    assert hi == pytest.approx(10 + 2.576 * 2, abs=0.15)


def test_duplicate_keys_noted_and_first_file_wins(tmp_path):
    from napari_cryodiag.io import picks as pk

    d = tmp_path / "mc"
    d.mkdir()
    for name in ("a.mrc", "a_DW.mrc", "b_DW.mrc"):
        mrc.write_mrc(d / name, np.zeros((8, 8), np.float32), 1.0)
    st = mrc.open_micrograph_stack(d)
    assert st.keys == ["a", "a", "b"] and "shared by several files" in st.notes[0]
    import pandas as pd

    idx, rep = pk.match_to_micrographs(pd.DataFrame({"micrograph": ["a", "b"]}), st.keys)
    assert idx.tolist() == [0, 2]


@pytest.mark.parametrize("dtype, mapped", [(np.float32, True), (np.float16, False), (np.int16, False)])
def test_mapped_stack_reads_float32_files_in_place(tmp_path, dtype, mapped):
    """``MicrographStack.mapped``: the same values as ``data``; a native float32 file's chunk is a
    read-only memory map of the file (no copy), other modes are read and converted."""
    rng = np.random.default_rng(1)
    imgs = [(rng.normal(size=(40, 56)) * 50).astype(dtype) for _ in range(3)]
    for i, img in enumerate(imgs):
        mrc.write_mrc(tmp_path / f"m_{i}.mrc", img, 1.2)
    st = mrc.open_micrograph_stack(tmp_path)
    assert st.mapped.shape == st.data.shape and st.mapped.dtype == np.float32
    for i in range(3):
        block = st.mapped.to_delayed().ravel()[i].compute(scheduler="sync")  # a task gets the chunk itself
        np.testing.assert_array_equal(block[0], imgs[i].astype(np.float32))
        assert isinstance(block, np.memmap) == mapped
        if mapped:
            assert not block.flags.writeable
    np.testing.assert_array_equal(st.mapped.compute(), st.data.compute())


def test_read_map_in_place_only_for_float32_maps_in_order(tmp_path):
    """``read_map(mmap=True)``: a float32 map in z, y, x order comes back as a read-only memory map
    of the file, equal to the copy ``read_map`` makes, and nothing can write to the file through
    it; a float16 map is converted as usual (a new, writable float32 array), and a NaN in a
    mapped map is still refused."""
    rng = np.random.default_rng(1)
    vol = rng.normal(size=(12, 12, 12)).astype(np.float32)
    p = mrc.write_mrc(tmp_path / "m.mrc", vol, 1.2)
    before = p.read_bytes()
    m = mrc.read_map(p, mmap=True)
    assert isinstance(m.data, np.memmap) and not m.data.flags.writeable
    np.testing.assert_array_equal(m.data, mrc.read_map(p).data)
    assert m.voxel_size_A == pytest.approx((1.2, 1.2, 1.2))
    with pytest.raises(ValueError, match="read-only"):
        m.data[0, 0, 0] = 5.0
    del m
    assert p.read_bytes() == before
    q = mrc.write_mrc(tmp_path / "h.mrc", vol.astype(np.float16), 1.2)
    h = mrc.read_map(q, mmap=True)
    assert not isinstance(h.data, np.memmap) and h.data.dtype == np.float32 and h.data.flags.writeable
    bad = vol.copy()
    bad[3, 4, 5] = np.nan
    r = mrc.write_mrc(tmp_path / "nan.mrc", bad, 1.2)
    with pytest.raises(CryodiagInputError, match="NaN"):
        mrc.read_map(r, mmap=True)


def test_half_maps_from_files_are_used_in_place(tmp_path):
    """The command line's half maps and mask are read-only memory maps of their files, and the FSC
    family computed from them equals the one computed from in-memory copies."""
    from napari_cryodiag.simulate.half_maps import simulate_half_maps
    from napari_cryodiag.workflows.maps import MapValidation, MapValidationOptions, load_half_maps

    sim = simulate_half_maps(box=40, pixel_size_A=2.0, with_mask=True, seed=4)
    paths = [mrc.write_mrc(tmp_path / f"{n}.mrc", a, 2.0) for n, a in
             (("h1", sim.half1), ("h2", sim.half2), ("mask", sim.mask))]
    inputs = load_half_maps(*paths)
    for a in (inputs.half1, inputs.half2, inputs.mask):  # views of the files' maps, not copies
        assert not a.flags.writeable and not a.flags.owndata
    from_files = MapValidation(inputs).compute(MapValidationOptions())
    copies = load_half_maps(np.array(sim.half1), np.array(sim.half2), np.array(sim.mask, np.float32),
                            voxel_sizes_A=(2.0, 2.0))
    in_memory = MapValidation(copies).compute(MapValidationOptions())
    for name, curve in in_memory.fsc.curves.items():
        np.testing.assert_array_equal(from_files.fsc.curves[name], curve, err_msg=name)
