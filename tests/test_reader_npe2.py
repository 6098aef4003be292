"""The npe2 reader without a viewer: layer data, scale, translate, metadata, features."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag import _reader
from napari_cryodiag.io import mrc


def _read(path):
    reader = _reader.get_reader(str(path) if not isinstance(path, list) else [str(p) for p in path])
    assert reader is not None
    return reader(path)


def test_single_micrograph(tmp_path):
    from napari_cryodiag.compute.display import display_contrast, display_image

    img = np.random.default_rng(0).normal(5, 1, (300, 200)).astype(np.float32)
    p = mrc.write_mrc(tmp_path / "mic_001_frames_sum.mrc", img, 0.83)
    [(data, kw, kind)] = _read(p)
    md = kw["metadata"]["cryodiag"]
    assert kind == "image" and md["raw"].shape == (300, 200)
    np.testing.assert_array_equal(md["raw"], img)  # the raw micrograph stays what scoring reads
    # shown low-passed at 20 Å (issue 9), binned so that 20 Å keeps 3 pixels (0.83 Å/px: 4x would
    # leave fewer than 256 px here, so not binned), contrast from the filtered image
    b = md["display"]["bin_used"]
    assert md["display"]["enabled"] and md["display"]["lowpass_A"] == 20.0 and b == 1
    shown = np.asarray(data)
    np.testing.assert_allclose(shown, display_image(img, 0.83, lowpass_A=20.0, bin=b), rtol=1e-6)
    assert shown.std() < 0.2 * img.std()  # shot noise gone
    assert kw["scale"] == pytest.approx((0.83 * b, 0.83 * b))
    assert kw["contrast_limits"] == pytest.approx(display_contrast(shown))
    assert md["kind"] == "micrograph" and md["keys"] == ["mic_001"]


def test_folder_is_one_lazy_stack(tmp_path, monkeypatch):
    d = tmp_path / "mics"
    d.mkdir()
    for i in range(5):
        mrc.write_mrc(d / f"m{i}.mrc", np.full((64, 64), i, np.float32) + np.eye(64, dtype=np.float32), 1.2)
    reads = []
    real = mrc._read_micrograph
    monkeypatch.setattr(mrc, "_read_micrograph", lambda h: reads.append(h.path) or real(h))
    [(data, kw, kind)] = _read(d)
    assert kind == "image" and data.shape == (5, 64, 64)
    # only the first micrograph is read at opening (it is shown first; its filtered copy sets the
    # contrast and is cached for the display)
    assert reads == [str(d / "m0.mrc")]
    lo, hi = kw["contrast_limits"]
    assert -0.1 < lo < hi < 0.5  # a constant 0 with a faint low-passed diagonal
    assert type(data).__module__.startswith("dask")
    assert kw["scale"] == pytest.approx((1.0, 1.2, 1.2))
    md = kw["metadata"]["cryodiag"]
    assert md["kind"] == "micrographs" and type(md["raw"]).__module__.startswith("dask")
    assert md["keys"] == ["m0", "m1", "m2", "m3", "m4"]
    # a list of files works the same way
    [(data2, kw2, _)] = _read([d / "m3.mrc", d / "m1.mrc"])
    raw2 = kw2["metadata"]["cryodiag"]["raw"]
    assert data2.shape == raw2.shape == (2, 64, 64) and float(raw2[1].compute().min()) == 3.0
    # showing micrograph 1 reads that file only
    reads.clear()
    np.asarray(data[3])
    assert reads == [str(d / "m3.mrc")]


def test_map_scale_and_translate(shared_data):
    [(data, kw, kind)] = _read(shared_data / "emdb" / "EMD-3001.map")
    assert kind == "image" and data.shape == (73, 25, 43)
    assert kw["scale"] == pytest.approx((33.03 / 72, 4.71 / 12, 17.93 / 40), rel=1e-5)
    assert kw["translate"] == pytest.approx((0.0, -4.71, -21 * 17.93 / 40), rel=1e-5)
    assert kw["metadata"]["cryodiag"]["kind"] == "map"


def test_particle_stack(shared_data):
    [(data, kw, kind)] = _read(shared_data / "empiar-10076" / "empiar_10076_7.mrc")
    assert data.shape == (7, 320, 320) and kw["metadata"]["cryodiag"]["kind"] == "stack"
    [(data, kw, kind)] = _read(shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_classes.mrcs")
    assert data.shape == (10, 100, 100) and kw["scale"] == (1.0, 1.0, 1.0)


def test_star_picks_layer(shared_data):
    [(data, kw, kind)] = _read(shared_data / "relion13-tutorial" / "particles_autopick_sort_class2d_class3d.star")
    assert kind == "points"
    md = kw["metadata"]["cryodiag"]
    assert md["kind"] == "picks" and len(md["table"]) == 6496 and md["n_micrographs"] == 15
    # headless: the first micrograph's picks at index 0
    t = md["table"]
    first = t["micrograph"] == t["micrograph"].iloc[0]
    assert data.shape == (int(first.sum()), 3) == (417, 3)
    np.testing.assert_allclose(data[:3, 1:], t.loc[first, ["y_px", "x_px"]].to_numpy()[:3])
    feats = kw["features"]
    assert len(feats) == 417 and "rlnAutopickFigureOfMerit" in feats and "defocus_A" in feats
    assert "micrograph_name" not in feats  # numeric columns only
    assert kw["face_color"] == "transparent"
    assert kw["size"] == pytest.approx(100.0 / (14e4 / 39548))  # 100 Å default diameter


def test_cbox_sizes_are_diameters(shared_data):
    [(data, kw, kind)] = _read(shared_data / "cryolo" / "TcdA1-0018_frames_sum.cbox")
    assert data.shape == (120, 3)
    assert kw["size"][0] == pytest.approx(227.0)
    assert kw["features"]["Confidence"].iloc[0] == pytest.approx(0.6578449)


def test_particles_without_coordinates_are_a_table_not_a_layer(shared_data, monkeypatch):
    infos = []
    monkeypatch.setattr(_reader, "_notify", lambda level, msg: infos.append(msg))
    out = _read(shared_data / "cryosparc" / "cryosparc_P12_J24_001_particles.cs")
    assert out == _reader.NO_LAYER  # napari's "read, no layer" (issue 9: no empty Points layer)
    assert "2,019 particles without pick coordinates" in infos[0]


def test_postprocess_is_a_table_not_a_layer(shared_data, monkeypatch):
    infos = []
    monkeypatch.setattr(_reader, "_notify", lambda level, msg: infos.append(msg))
    assert _read(shared_data / "relion-postprocess" / "postprocess.star") == _reader.NO_LAYER
    assert "final resolution 16.36 Å" in infos[0] and "Map validation" in infos[0]


def test_npe2_manifest_reads(shared_data):
    npe2 = pytest.importorskip("npe2")
    npe2.PluginManager.instance().discover()
    layers = npe2.read([str(shared_data / "emdb" / "EMD-3197.map")], stack=False, plugin_name="napari-cryodiag")
    assert layers[0][0].shape == (20, 20, 20)
    assert layers[0][1]["translate"] == pytest.approx((0.0, 0.0, -22.8))


def test_model_star_is_not_a_particle_table(shared_data, monkeypatch):
    infos = []
    monkeypatch.setattr(_reader, "_notify", lambda level, msg: infos.append(msg))
    assert _read(shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_model.star") == _reader.NO_LAYER
    assert "model.star" in infos[0]


@pytest.mark.parametrize("rel, layer", [("relion13-tutorial/autopick/Falcon_2012_06_12-14_33_35_0_autopick.star", True),
                                        ("relion-postprocess/postprocess.star", False),
                                        ("relion13-tutorial/Class2D/manual_it025_model.star", False)])
def test_napari_reader_parses_a_star_file_once(shared_data, monkeypatch, rel, layer):
    """File > Open of a STAR: the bounded look says what it is, then one parse (issue 8.5)."""
    from napari_cryodiag.io import star_text

    path = shared_data / rel
    if not path.exists():
        pytest.skip(f"{rel} not in the shared data")
    parses = []
    real_read_all = star_text._read_all
    monkeypatch.setattr(star_text, "_read_all", lambda *a, **k: parses.append(1) or real_read_all(*a, **k))
    monkeypatch.setattr(_reader, "_notify", lambda level, msg: None)
    out = _read(path)
    assert parses == [1]
    assert (out is not _reader.NO_LAYER) == layer
    if layer:
        assert out[0][2] == "points" and len(out[0][0]) > 0
