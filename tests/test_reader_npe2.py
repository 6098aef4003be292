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
    img = np.random.default_rng(0).normal(5, 1, (300, 200)).astype(np.float32)
    p = mrc.write_mrc(tmp_path / "mic_001_frames_sum.mrc", img, 0.83)
    [(data, kw, kind)] = _read(p)
    assert kind == "image" and data.shape == (300, 200)
    assert kw["scale"] == pytest.approx((0.83, 0.83))
    lo, hi = kw["contrast_limits"]
    assert 1.5 < lo < 3.0 and 7.0 < hi < 8.5
    md = kw["metadata"]["cryodiag"]
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
    assert reads == []  # no micrograph read in full: contrast from a memory-mapped subsample of the first
    assert kw["contrast_limits"] == pytest.approx((0.0, 1.0))
    assert type(data).__module__.startswith("dask")
    assert kw["scale"] == pytest.approx((1.0, 1.2, 1.2))
    assert kw["metadata"]["cryodiag"]["kind"] == "micrographs"
    assert kw["metadata"]["cryodiag"]["keys"] == ["m0", "m1", "m2", "m3", "m4"]
    # a list of files works the same way
    [(data2, _, _)] = _read([d / "m3.mrc", d / "m1.mrc"])
    assert data2.shape == (2, 64, 64) and float(data2[1].compute().min()) == 3.0


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


def test_particles_without_coordinates(shared_data, monkeypatch):
    infos = []
    monkeypatch.setattr(_reader, "_notify_info", infos.append)
    [(data, kw, kind)] = _read(shared_data / "cryosparc" / "cryosparc_P12_J24_001_particles.cs")
    assert kind == "points" and len(data) == 0
    md = kw["metadata"]["cryodiag"]
    assert md["kind"] == "particles" and len(md["table"]) == 2019
    assert "nothing to place on micrographs" in infos[0]


def test_postprocess_layer(shared_data):
    [(data, kw, kind)] = _read(shared_data / "relion-postprocess" / "postprocess.star")
    md = kw["metadata"]["cryodiag"]
    assert md["kind"] == "postprocess" and len(md["fsc"]) == 49 and len(md["guinier"]) > 0
    assert md["general"]["rlnFinalResolution"] == pytest.approx(16.363636)


def test_npe2_manifest_reads(shared_data):
    npe2 = pytest.importorskip("npe2")
    npe2.PluginManager.instance().discover()
    layers = npe2.read([str(shared_data / "emdb" / "EMD-3197.map")], stack=False, plugin_name="napari-cryodiag")
    assert layers[0][0].shape == (20, 20, 20)
    assert layers[0][1]["translate"] == pytest.approx((0.0, 0.0, -22.8))


def test_model_star_is_not_a_particle_table(shared_data, monkeypatch):
    infos = []
    monkeypatch.setattr(_reader, "_notify_info", infos.append)
    [(data, kw, kind)] = _read(shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_model.star")
    assert kw["metadata"]["cryodiag"]["kind"] == "relion_model" and len(data) == 0
    assert "model.star" in infos[0]
