"""Bad-input corpus for MRC files and the map commands (issue 11).

Every malformed map goes through the readers (:func:`read_header`, :func:`read_map`) and the
``fsc``, ``guinier``, ``sharpen``, ``views`` and ``info`` subcommands: each gives a clean error
naming the file (exit 2, one line) or a right reading (exit 0, a warning naming the file when it
was usable only in part), and no input file changes (``tests/badinput.py``). The files are built
here from a small simulated pair of half maps and from the real EMDB maps of ``../shared/data``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from badinput import check_reader_case, run_cli_case
from napari_cryodiag.io import mrc

BOX, APIX = 32, 2.0
#: header byte offsets (MRC2014)
NX, NY, NZ, MODE, MX, CELLA, MAPC, NSYMBT, ORIGIN = 0, 4, 8, 12, 28, 40, 64, 92, 196


def _patch(src: Path, dst: Path, edits: dict[int, bytes], cut: int | None = None, extra: bytes = b"") -> Path:
    b = bytearray(src.read_bytes())
    for off, val in edits.items():
        b[off : off + len(val)] = val
    if cut is not None:
        b = b[:cut]
    dst.write_bytes(bytes(b) + extra)
    return dst


def _i32(*v) -> bytes:
    return struct.pack("<" + "i" * len(v), *v)


def _f32(*v) -> bytes:
    return struct.pack("<" + "f" * len(v), *v)


def _write(path: Path, data, voxel=APIX, **kw) -> Path:
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.ascontiguousarray(data))
        if voxel is not None:
            m.voxel_size = voxel
        for k, v in kw.items():
            setattr(m.header, k, v)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    root = tmp_path_factory.mktemp("bad_maps")
    good = root / "good"
    bad = root / "bad"
    good.mkdir()
    bad.mkdir()
    sim = simulate_half_maps(box=BOX, pixel_size_A=APIX, resolution_A=6.0, seed=2)
    h1 = _write(good / "half1.mrc", sim.half1)
    h2 = _write(good / "half2.mrc", sim.half2)
    mask = _write(good / "mask.mrc", sim.mask)
    vol = sim.half1
    n = vol.size
    f: dict[str, Path] = {}

    # --- not an MRC file, or a broken header
    (bad / "empty.mrc").write_bytes(b"")
    f["empty"] = bad / "empty.mrc"
    f["short_header"] = _patch(h1, bad / "short_header.mrc", {}, cut=500)
    (bad / "text.mrc").write_text("a text file, not a map\n" * 80)
    f["text"] = bad / "text.mrc"
    f["truncated_half"] = _patch(h1, bad / "truncated_half.mrc", {}, cut=1024 + 2 * n)
    f["truncated_1byte"] = _patch(h1, bad / "truncated_1byte.mrc", {}, cut=1024 + 4 * n - 1)
    f["mode5"] = _patch(h1, bad / "mode5.mrc", {MODE: _i32(5)})
    f["mode_negative"] = _patch(h1, bad / "mode_negative.mrc", {MODE: _i32(-2)})
    f["nx0"] = _patch(h1, bad / "nx0.mrc", {NX: _i32(0)})
    f["nx_negative"] = _patch(h1, bad / "nx_negative.mrc", {NX: _i32(-32)})
    f["nz_huge_claim"] = _patch(h1, bad / "nz_huge_claim.mrc", {NZ: _i32(100_000)})
    f["claims_32GiB"] = _patch(h1, bad / "claims_32GiB.mrc", {NX: _i32(2048, 2048, 2048)})
    f["nsymbt_negative"] = _patch(h1, bad / "nsymbt_negative.mrc", {NSYMBT: _i32(-4)})
    f["nsymbt_beyond_file"] = _patch(h1, bad / "nsymbt_beyond_file.mrc", {NSYMBT: _i32(10**9)})
    # a real 32 GiB map (sparse file: no disk used): the header is fine, the data cannot fit
    big = bad / "sparse_32GiB.mrc"
    _patch(h1, big, {NX: _i32(2048, 2048, 2048), MX: _i32(2048, 2048, 2048), CELLA: _f32(4096.0, 4096.0, 4096.0)},
           cut=1024)
    with open(big, "r+b") as fh:
        fh.truncate(1024 + 4 * 2048**3)
    f["sparse_32GiB"] = big
    # --- complex data
    f["mode3_complex_int16"] = _patch(h1, bad / "mode3_complex_int16.mrc", {MODE: _i32(3)})
    c8 = np.zeros(vol.shape, np.complex64)
    c8.real = vol
    f["mode4_complex_float"] = _write(bad / "mode4_complex_float.mrc", c8)
    # --- values
    v = vol.copy()
    v[3, 4, 5] = np.nan
    f["one_nan"] = _write(bad / "one_nan.mrc", v)
    f["all_nan"] = _write(bad / "all_nan.mrc", np.full(vol.shape, np.nan, np.float32))
    v = vol.copy()
    v[0, 0, 0] = np.inf
    f["plus_inf"] = _write(bad / "plus_inf.mrc", v)
    v = vol.copy()
    v[-1, -1, -1] = -np.inf
    f["minus_inf"] = _write(bad / "minus_inf.mrc", v)
    f["constant"] = _write(bad / "constant.mrc", np.zeros(vol.shape, np.float32))
    # --- voxel sizes
    f["voxel_inf"] = _patch(h1, bad / "voxel_inf.mrc", {CELLA: _f32(np.inf, np.inf, np.inf)})
    f["voxel_1e30"] = _patch(h1, bad / "voxel_1e30.mrc", {CELLA: _f32(1e30, 1e30, 1e30)})
    f["voxel_nan"] = _patch(h1, bad / "voxel_nan.mrc", {CELLA: _f32(np.nan, np.nan, np.nan)})
    f["voxel_negative"] = _patch(h1, bad / "voxel_negative.mrc", {CELLA: _f32(-64.0, -64.0, -64.0)})
    f["voxel_zero"] = _write(bad / "voxel_zero.mrc", vol, voxel=0.0)
    f["voxel_anisotropic"] = _write(bad / "voxel_anisotropic.mrc", vol, voxel=(APIX, APIX, 1.5 * APIX))
    f["voxel_z_unknown"] = _patch(h1, bad / "voxel_z_unknown.mrc", {CELLA + 8: _f32(0.0)})
    f["voxel_other"] = _write(bad / "voxel_other.mrc", sim.half2, voxel=1.5 * APIX)
    # --- shapes and kinds
    f["image_2d"] = _write(bad / "image_2d.mrc", vol[BOX // 2].copy())
    f["not_cubic"] = _write(bad / "not_cubic.mrc", vol[:, :, : BOX - 4].copy())
    f["smaller_box"] = _write(bad / "smaller_box.mrc", sim.half2[4:-4, 4:-4, 4:-4].copy())
    f["stack_mrcs"] = _write(bad / "stack.mrcs", vol)
    os.mkdir(bad / "folder.mrc")
    f["folder"] = bad / "folder.mrc"
    f["missing"] = bad / "missing.mrc"
    f["identical_copy"] = _write(bad / "identical_copy.mrc", sim.half1)
    # --- masks
    f["mask_range"] = _write(bad / "mask_range.mrc", sim.mask * 3.0)
    f["mask_negative"] = _write(bad / "mask_negative.mrc", sim.mask - 0.5)
    f["mask_empty"] = _write(bad / "mask_empty.mrc", np.zeros(vol.shape, np.float32))
    f["mask_grid"] = _write(bad / "mask_grid.mrc", sim.mask[4:-4, 4:-4, 4:-4].copy())
    f["mask_voxel"] = _write(bad / "mask_voxel.mrc", sim.mask, voxel=1.5 * APIX)
    m = sim.mask.copy()
    m[1, 1, 1] = np.nan
    f["mask_nan"] = _write(bad / "mask_nan.mrc", m)
    # --- unusual but readable right
    f["big_endian"] = bad / "big_endian.mrc"
    raw = bytearray(h1.read_bytes())
    hdr = np.frombuffer(bytes(raw[:1024]), dtype=mrcfile.dtypes.HEADER_DTYPE).copy()
    be = hdr.astype(mrcfile.dtypes.HEADER_DTYPE.newbyteorder(">"))
    be["machst"] = np.frombuffer(b"\x11\x11\x00\x00", dtype="u1")
    data_be = np.frombuffer(bytes(raw[1024:]), "<f4").astype(">f4")
    f["big_endian"].write_bytes(be.tobytes() + data_be.tobytes())
    f["no_map_id"] = _patch(h1, bad / "no_map_id.mrc", {208: b"\x00\x00\x00\x00"})
    f["axis_order_invalid"] = _patch(h1, bad / "axis_order_invalid.mrc", {MAPC: _i32(5, 2, 3)})
    f["trailing_bytes"] = _patch(h1, bad / "trailing_bytes.mrc", {}, extra=b"\x00" * 300)
    f["origin_nan"] = _patch(h1, bad / "origin_nan.mrc", {ORIGIN: _f32(np.nan, 0.0, 0.0)})
    f["float16"] = _write(bad / "float16.mrc", sim.half1.astype(np.float16))
    f["int8"] = _write(bad / "int8.mrc", np.clip(sim.half1 * 40, -127, 127).astype(np.int8))
    f["spacegroup0_cubic"] = _write(bad / "spacegroup0_cubic.mrc", sim.half1, ispg=0)
    return {"good": {"half1": h1, "half2": h2, "mask": mask}, "bad": f, "root": root}


#: files that read right as a map (possibly with a note); every other one is refused by read_map
READ_OK = {"voxel_zero", "voxel_anisotropic", "voxel_z_unknown", "voxel_other", "not_cubic", "smaller_box",
           "identical_copy", "mask_range", "mask_negative", "mask_empty", "mask_grid", "mask_voxel", "constant",
           "big_endian", "no_map_id", "axis_order_invalid", "trailing_bytes", "origin_nan", "float16", "int8",
           "spacegroup0_cubic"}
#: files whose header reads (``info`` describes them without touching the data)
HEADER_OK = READ_OK | {"sparse_32GiB", "mode3_complex_int16", "mode4_complex_float", "one_nan", "all_nan",
                       "plus_inf", "minus_inf", "mask_nan", "stack_mrcs", "image_2d"}
MASK_CASES = {"mask_range", "mask_negative", "mask_empty", "mask_grid", "mask_voxel", "mask_nan"}
#: readable files that are still no usable half map (fsc / sharpen refuse them, naming the file)
HALF_MAP_BAD = {"voxel_anisotropic", "voxel_z_unknown", "voxel_other", "not_cubic", "smaller_box",
                "identical_copy", "constant", "mask_empty"}
#: readable right: FSC against the good half 2 works
HALF_MAP_OK = READ_OK - HALF_MAP_BAD - MASK_CASES
CASES = ["empty", "short_header", "text", "truncated_half", "truncated_1byte", "mode5", "mode_negative", "nx0",
         "nx_negative", "nz_huge_claim", "claims_32GiB", "nsymbt_negative", "nsymbt_beyond_file", "sparse_32GiB",
         "mode3_complex_int16", "mode4_complex_float", "one_nan", "all_nan", "plus_inf", "minus_inf", "constant",
         "voxel_inf", "voxel_1e30", "voxel_nan", "voxel_negative", "voxel_zero", "voxel_anisotropic",
         "voxel_z_unknown", "voxel_other", "image_2d", "not_cubic", "smaller_box", "stack_mrcs", "folder", "missing",
         "identical_copy", "mask_range", "mask_negative", "mask_empty", "mask_grid", "mask_voxel", "mask_nan",
         "big_endian", "no_map_id", "axis_order_invalid", "trailing_bytes", "origin_nan", "float16", "int8",
         "spacegroup0_cubic"]


def test_corpus_is_large_enough():
    assert len(CASES) >= 40 and len(set(CASES)) == len(CASES)


@pytest.mark.parametrize("case", CASES)
def test_readers(corpus, case):
    from napari_cryodiag.errors import CryodiagInputError

    path = corpus["bad"][case]
    if not path.is_file():  # nothing to fingerprint: a folder, or no file at all
        for read in (mrc.read_header, mrc.read_map):
            with pytest.raises(CryodiagInputError, match=path.name):
                read(path)
        return
    check_reader_case(mrc.read_header, path, "ok" if case in HEADER_OK else "error")
    out = check_reader_case(mrc.read_map, path, "ok" if case in READ_OK else "error")
    if case in READ_OK:
        assert np.isfinite(out.data).all()
        if out.voxel_size_A is not None:
            assert all(np.isfinite(out.voxel_size_A))
        assert all(np.isfinite(out.origin_A))


def _inputs(corpus):
    return [corpus["bad"][c].parent for c in ("empty",)] + [corpus["good"]["half1"].parent]


@pytest.mark.parametrize("case", CASES)
def test_fsc_and_sharpen(corpus, case, capsys, tmp_path):
    path, good = corpus["bad"][case], corpus["good"]
    if case in MASK_CASES:
        argv = ["fsc", good["half1"], good["half2"], "--mask", path, "-o", tmp_path / "fsc"]
        run_cli_case(capsys, argv, "error", [path], inputs=_inputs(corpus))
        return
    expect = "ok" if case in HALF_MAP_OK else "error"
    names = [path] if expect == "error" else []
    if case == "identical_copy":  # the same map twice: refused, naming both
        names = [path, good["half1"]]
        argv = ["fsc", good["half1"], path, "-o", tmp_path / "fsc"]
    else:
        argv = ["fsc", path, good["half2"], "-o", tmp_path / "fsc", "--guinier-window", "12,5"]
    run_cli_case(capsys, argv, expect, names, inputs=_inputs(corpus))
    if expect == "ok":
        import json

        d = json.loads((tmp_path / "fsc" / "fsc.json").read_text())
        assert np.isfinite(d["resolutions"]["corrected"]["0.143"]["interpolated_A"])
    argv = ["sharpen", path, good["half2"], "--bfactor", "-40", "-o", tmp_path / "sharpen"]
    if case == "identical_copy":
        argv = ["sharpen", good["half1"], path, "--bfactor", "-40", "-o", tmp_path / "sharpen"]
    run_cli_case(capsys, argv, expect, names, inputs=_inputs(corpus))


#: guinier needs a cubic, non-empty map with a known, isotropic voxel size
GUINIER_BAD = {"voxel_zero", "voxel_anisotropic", "voxel_z_unknown", "not_cubic", "constant", "mask_empty"}


@pytest.mark.parametrize("case", CASES)
def test_guinier_views_info(corpus, case, capsys, tmp_path):
    path = corpus["bad"][case]
    readable = case in READ_OK
    g = "ok" if readable and case not in GUINIER_BAD else "error"
    run_cli_case(capsys, ["guinier", path, "--guinier-window", "12,5", "-o", tmp_path / "g"], g,
                 [path] if g == "error" else [], inputs=_inputs(corpus))
    v = "warn" if case == "voxel_z_unknown" else ("ok" if readable else "error")
    run_cli_case(capsys, ["views", path, "-o", tmp_path / "v"], v, [path] if v != "ok" else [],
                 inputs=_inputs(corpus))
    i = "ok" if case in HEADER_OK else "error"
    run_cli_case(capsys, ["info", path], i, [path] if i == "error" else [], inputs=_inputs(corpus))


def test_messages_say_what(corpus, capsys, tmp_path):
    """A few messages in full: they name the problem, not only the file."""
    from napari_cryodiag.errors import CryodiagInputError

    f = corpus["bad"]
    expect = {
        "mode3_complex_int16": "mode 3 (complex int16) holds a Fourier transform",
        "mode4_complex_float": "mode 4 (complex float32)",
        "one_nan": "1 of 32768 voxels are NaN or infinite",
        "voxel_inf": "implausible voxel size",
        "voxel_1e30": "implausible voxel size",
        "sparse_32GiB": "needs 32 GiB of memory",
        "claims_32GiB": "truncated MRC file",
        "stack_mrcs": "image stack",
    }
    for case, text in expect.items():
        with pytest.raises(CryodiagInputError) as err:
            mrc.read_map(f[case])
        assert text in str(err.value) and f[case].name in str(err.value), (case, str(err.value))
    good = corpus["good"]
    _, err = run_cli_case(capsys, ["fsc", good["half1"], good["half2"], "--mask", f["mask_voxel"],
                                   "-o", tmp_path / "m"], "error", [f["mask_voxel"]])
    assert "mask voxel size 3 Å differs from the half maps' 2 Å" in err
    code = run_cli_case(capsys, ["guinier", f["voxel_anisotropic"], "--guinier-window", "12,5", "-o", tmp_path / "a"],
                        "error", [f["voxel_anisotropic"]])
    assert code[0] == 2 and "differs between axes" in code[1]


def test_info_reads_headers_only(corpus, capsys, monkeypatch):
    """``info`` describes a 32 GiB map and complex files from their headers; no data read at all."""
    from napari_cryodiag.cli import main

    def no_data(*a, **k):
        raise AssertionError("info read map data")

    monkeypatch.setattr(mrc, "read_data", no_data)
    monkeypatch.setattr(mrc, "read_map", no_data)
    f = corpus["bad"]
    assert main(["info", str(f["sparse_32GiB"]), str(f["mode4_complex_float"]), str(f["spacegroup0_cubic"])]) == 0
    out = capsys.readouterr().out
    assert "2048, 2048, 2048" in out and "complex" in out
    assert out.count("kind: 3D map") == 3


def test_cubic_space_group_0_is_a_volume(corpus, tmp_path):
    f = corpus["bad"]
    assert mrc.read_header(f["spacegroup0_cubic"]).kind == "volume"
    s = _write(tmp_path / "cubic.mrcs", np.zeros((8, 8, 8), np.float32))
    assert mrc.read_header(s).kind == "stack"
    st = _write(tmp_path / "seven.mrc", np.zeros((7, 40, 40), np.float32), ispg=1)
    assert mrc.read_header(st).kind == "stack"
    t = _write(tmp_path / "slab.mrc", np.zeros((20, 40, 40), np.float32), ispg=0)
    assert mrc.read_header(t).kind == "stack"
    t = _write(tmp_path / "slab1.mrc", np.zeros((20, 40, 40), np.float32), ispg=1)
    assert mrc.read_header(t).kind == "volume"


def test_postprocess_star_with_nan_or_too_few_shells(shared_data, tmp_path, capsys):
    src = (shared_data / "relion-postprocess" / "postprocess.star").read_text().splitlines()
    # a NaN in the corrected column of one shell of the fsc loop
    out, in_fsc, done = [], False, False
    for line in src:
        if line.startswith("data_fsc"):
            in_fsc = True
        parts = line.split()
        if in_fsc and not done and len(parts) > 5 and parts[0] == "10":
            parts[3] = "nan"
            line = " ".join(parts)
            done = True
        out.append(line)
    assert done
    nan = tmp_path / "nan_postprocess.star"
    nan.write_text("\n".join(out) + "\n")
    run_cli_case(capsys, ["fsc", "--postprocess", nan, "-o", tmp_path / "o1"], "error", [nan], inputs=[tmp_path])
