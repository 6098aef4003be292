"""The written sample dataset reads back with the project's readers; npe2 sample data layers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io import mrc
from napari_cryodiag.io.picks import match_to_micrographs, read_table
from napari_cryodiag.simulate.dataset import picks_cs_records, write_sample_dataset

KW = dict(seed=2, n_micrographs=3, shape=(512, 512), particles_per_micrograph=25)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_sample_dataset(tmp_path_factory.mktemp("sample") / "ds", **KW)


def test_files_and_manifest(dataset):
    ds = dataset
    sim = ds.simulation
    assert [p.name for p in ds.micrographs] == sim.names
    for p in [ds.picks_star, ds.picks_cs, ds.truth_csv, ds.regions_csv, ds.density, ds.manifest, *ds.micrographs]:
        assert p.is_file() and p.stat().st_size > 0
    man = json.loads(ds.manifest.read_text())
    assert man["seed"] == 2 and man["picks"]["total"] == len(sim.truth)
    assert man["picks"]["particle"] == int((sim.truth["truth"] == "particle").sum())
    assert man["skipped"] == {}
    assert set(man["files"]["half_maps"]) == {"half1", "half2", "mask"}
    assert man["files"]["classes"]["averages"] == "classes/class_averages.mrcs"


def test_micrograph_folder_reads_back(dataset):
    sim = dataset.simulation
    st = mrc.open_micrograph_stack(dataset.folder / "micrographs")
    assert st.keys == sim.keys
    assert st.pixel_size_A == pytest.approx(sim.pixel_size_A)
    assert st.data.shape == sim.images.shape
    np.testing.assert_array_equal(np.asarray(st.data[1]), sim.images[1])


@pytest.mark.parametrize("which", ["picks_star", "picks_cs"])
def test_picks_read_back_with_project_readers(dataset, which):
    sim = dataset.simulation
    truth = sim.truth
    t = read_table(getattr(dataset, which))
    assert len(t) == len(truth)
    # same rows in the same order, on the same micrographs
    assert list(t["micrograph"]) == list(truth["micrograph"])
    assert t["micrograph_name"].iloc[0] == "micrographs/" + truth["micrograph_name"].iloc[0]
    tol = 1e-4 if which == "picks_star" else 2e-3  # .cs stores float32 fractions
    np.testing.assert_allclose(t["x_px"], truth["x_px"], atol=tol)
    np.testing.assert_allclose(t["y_px"], truth["y_px"], atol=tol)
    np.testing.assert_allclose(t["defocus_A"], truth["defocus_A"], rtol=1e-6)
    np.testing.assert_allclose(t["defocus_angle_deg"], truth["defocus_angle_deg"], atol=1e-4)
    np.testing.assert_allclose(t["pixel_size_A"], 2.0)
    np.testing.assert_allclose(t["ncc"], truth["ncc"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t["power"], truth["power"], rtol=1e-5)
    assert np.allclose(t["amplitude_contrast"], sim.amplitude_contrast)
    # every pick matches a micrograph of the folder
    idx, report = match_to_micrographs(t, sim.keys)
    assert report["n_unmatched"] == 0 and (idx >= 0).all()
    counts = pd.Series(idx).value_counts().sort_index().to_numpy()
    assert counts.tolist() == truth.groupby("micrograph").size().loc[sim.keys].tolist()
    # picker files carry no truth
    assert not any("truth" in c for c in t.columns)


def test_truth_and_regions_csv(dataset):
    sim = dataset.simulation
    truth = pd.read_csv(dataset.truth_csv)
    assert list(truth["truth"]) == list(sim.truth["truth"])
    np.testing.assert_allclose(truth["x_px"], sim.truth["x_px"], rtol=1e-5)
    regions = pd.read_csv(dataset.regions_csv)
    assert list(regions["kind"]) == list(sim.regions["kind"])


def test_density_half_maps_and_classes_read_back(dataset):
    sim = dataset.simulation
    vol = mrc.read_map(dataset.density)
    np.testing.assert_array_equal(vol.data, sim.volume)
    assert vol.pixel_size_A == pytest.approx(sim.pixel_size_A)
    h1 = mrc.read_map(dataset.half_maps["half1"])
    h2 = mrc.read_map(dataset.half_maps["half2"])
    m = mrc.read_map(dataset.half_maps["mask"])
    assert h1.data.shape == h2.data.shape == m.data.shape and h1.data.ndim == 3
    assert h1.pixel_size_A and h1.pixel_size_A > 0
    assert not np.array_equal(h1.data, h2.data)  # independent noise
    assert np.corrcoef(h1.data.ravel(), h2.data.ravel())[0, 1] > 0.3  # same particle
    assert m.data.min() >= 0 and m.data.max() <= 1
    avg = mrc.read_stack(dataset.classes["averages"])
    parts = read_table(dataset.classes["particles_star"])
    assert "class" in parts.columns and avg.data.ndim == 3
    assert set(parts["class"].astype(int)) <= set(range(1, avg.data.shape[0] + 1))
    stack = mrc.read_stack(dataset.classes["particles_stack"])
    assert stack.data.shape[0] == len(parts)


def test_cs_schema_matches_real_cryosparc_picks(shared_data):
    """Our pick fields have the names and dtypes of a real cryoSPARC particle schema."""
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    real = np.load(shared_data / "cryosparc" / "4k_dataset.cs", max_header_size=2**30)
    sim = simulate_micrographs(n_micrographs=1, shape=(256, 256), seed=0, particles_per_micrograph=3)
    ours = picks_cs_records(sim)
    wanted = [f for f in real.dtype.names if f.startswith(("location/", "pick_stats/")) or f == "uid"]
    assert set(wanted) <= set(ours.dtype.names)
    for f in wanted:
        if f == "location/micrograph_path":
            assert ours.dtype[f].kind == real.dtype[f].kind == "S"
        else:
            assert ours.dtype[f] == real.dtype[f], f
    # and the CTF fields of a real cryoSPARC export
    exp = np.load(shared_data / "cryosparc" / "cryosparc_J2_particles_exported.cs", max_header_size=2**30)
    for f in [n for n in exp.dtype.names if n.startswith("ctf/")]:
        assert f in ours.dtype.names and ours.dtype[f].base == exp.dtype[f].base, f
    assert len(np.unique(ours["uid"])) == len(ours)
    np.testing.assert_array_equal(ours["location/micrograph_shape"], [[256, 256]] * len(ours))


def test_existing_dataset_is_not_overwritten(tmp_path):
    kw = dict(n_micrographs=1, shape=(256, 256), particles_per_micrograph=3, half_maps=False, classes=False)
    ds = write_sample_dataset(tmp_path / "d", **kw)
    assert ds.skipped == {"half_maps": "not requested", "classes": "not requested"}
    before = ds.micrographs[0].read_bytes()
    with pytest.raises(CryodiagInputError, match="already there"):
        write_sample_dataset(tmp_path / "d", seed=5, **kw)
    assert ds.micrographs[0].read_bytes() == before
    ds2 = write_sample_dataset(tmp_path / "d", seed=5, overwrite=True, **kw)
    assert ds2.micrographs[0].read_bytes() != before
    # deterministic: the same seed writes the same bytes, .cs uids included
    ds3 = write_sample_dataset(tmp_path / "e", seed=5, **kw)
    np.testing.assert_array_equal(mrc.read_image(ds3.micrographs[0]).data, mrc.read_image(ds2.micrographs[0]).data)
    assert ds3.picks_cs.read_bytes() == ds2.picks_cs.read_bytes()
    assert ds3.picks_star.read_bytes() == ds2.picks_star.read_bytes()
    (tmp_path / "f").write_text("x")
    with pytest.raises(CryodiagInputError, match="not a folder"):
        write_sample_dataset(tmp_path / "f", **kw)


# ------------------------------------------------------------------------------ napari layers


def _check_layer_data(layers):
    from napari.layers import Layer

    out = []
    for item in layers:
        assert isinstance(item, tuple) and len(item) == 3
        data, kwargs, layer_type = item
        assert isinstance(kwargs, dict) and layer_type in ("image", "points")
        out.append(Layer.create(data, kwargs, layer_type))
    return out


def test_sample_micrographs_layer_data():
    from napari_cryodiag._sample_data import sample_micrographs_with_picks

    layers = sample_micrographs_with_picks(n_micrographs=2, shape=(384, 384), seed=1)
    image, points = _check_layer_data(layers)
    assert image.data.shape == (2, 384, 384) and image.data.dtype == np.float32
    assert tuple(image.scale) == (1.0, 2.0, 2.0)
    meta = image.metadata["cryodiag"]
    assert meta["kind"] == "micrographs" and meta["keys"] == ["sim_0001", "sim_0002"]
    assert meta["names"] == ["sim_0001.mrc", "sim_0002.mrc"] and meta["pixel_size_A"] == 2.0
    lo, hi = image.contrast_limits
    assert lo < float(np.median(np.asarray(image.data[0]))) < hi
    assert meta["raw"].shape == (2, 384, 384) and meta["display"]["enabled"]  # shown low-passed
    pm = points.metadata["cryodiag"]
    assert pm["kind"] == "picks"
    table = pm["table"]
    assert {"truth", "ncc", "power", "x_px", "y_px", "micrograph"} <= set(table.columns)
    # the layer starts on the first micrograph, its picks at (0, y, x), sized by the diameter
    first = table[table["micrograph"] == "sim_0001"]
    assert len(points.data) == len(first)
    np.testing.assert_allclose(points.data[:, 0], 0)
    np.testing.assert_allclose(np.sort(points.data[:, 2]), np.sort(first["x_px"]))
    np.testing.assert_allclose(points.size, first["diameter_px"].iloc[0])
    assert {"ncc", "power", "defocus_A"} <= set(points.features.columns)


def test_sample_half_maps_and_classes_layer_data():
    from napari_cryodiag._sample_data import sample_class_averages, sample_half_maps

    h1, h2, mask = _check_layer_data(sample_half_maps())
    assert [layer.metadata["cryodiag"]["role"] for layer in (h1, h2, mask)] == ["half1", "half2", "mask"]
    assert h1.data.ndim == 3 and h1.data.shape == mask.data.shape
    assert h1.metadata["cryodiag"]["kind"] == "map" and h1.scale[0] == h1.metadata["cryodiag"]["pixel_size_A"]
    assert 0 <= mask.data.min() and mask.data.max() <= 1
    [avg] = _check_layer_data(sample_class_averages())  # the particle set is a table, not a layer
    meta = avg.metadata["cryodiag"]
    assert meta["kind"] == "stack" and meta["n_images"] == avg.data.shape[0]
    assert "class" in meta["table"].columns


@pytest.mark.viewer
def test_open_sample_in_viewer(make_napari_viewer, monkeypatch):
    """napari's Open Sample route (npe2 manifest): picks follow the slider and sit on particles."""
    from scipy import ndimage

    from napari_cryodiag import _sample_data
    from napari_cryodiag.widgets import picks_layer

    monkeypatch.setattr(_sample_data, "SAMPLE_N_MICROGRAPHS", 3)
    monkeypatch.setattr(_sample_data, "SAMPLE_SHAPE", (512, 512))
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryodiag", "micrographs")
    assert len(viewer.layers) == 2
    img, pts = viewer.layers
    assert img.metadata["cryodiag"]["raw"].shape == (3, 512, 512)
    ctrl = picks_layer.get_picks_controller(pts)
    assert ctrl is not None and ctrl.image_layer is img
    table = pts.metadata["cryodiag"]["table"]
    assert ctrl.report["n_unmatched"] == 0
    rng = np.random.default_rng(0)
    on, off = [], []
    for i in (2, 0, 1):
        ctrl.show_micrograph(i)
        assert viewer.dims.current_step[0] == i
        rows = table[table["micrograph"] == f"sim_{i + 1:04d}"]
        assert len(pts.data) == len(rows)
        np.testing.assert_allclose(pts.data[:, 0], i)
        np.testing.assert_allclose(np.sort(pts.data[:, 1]), np.sort(rows["y_px"]))
        # the shown points are particles: dark on the band-passed micrograph, darker than
        # the same points moved by one particle diameter
        mic = np.asarray(img.metadata["cryodiag"]["raw"][i], dtype=np.float32)
        bp = ndimage.gaussian_filter(mic, 3.0) - ndimage.gaussian_filter(mic, 25.0)
        shown = pd.DataFrame(pts.data[:, 1:], columns=["y", "x"]).merge(
            rows[["y_px", "x_px", "truth"]], left_on=["y", "x"], right_on=["y_px", "x_px"])
        part = shown[shown["truth"] == "particle"]
        assert len(part) > 0
        y, x = part["y"].to_numpy(), part["x"].to_numpy()
        on.append(bp[np.rint(y).astype(int), np.rint(x).astype(int)])
        ang = rng.uniform(0, 2 * np.pi, len(part))
        d = table["diameter_px"].iloc[0]
        yo = np.clip(np.rint(y + d * np.sin(ang)), 0, mic.shape[0] - 1).astype(int)
        xo = np.clip(np.rint(x + d * np.cos(ang)), 0, mic.shape[1] - 1).astype(int)
        off.append(bp[yo, xo])
    on, off = np.concatenate(on), np.concatenate(off)
    assert np.median(on) < np.median(off) - 1.0, (np.median(on), np.median(off))
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5
    from imageio import imwrite  # napari dependency

    imwrite("/tmp/cryodiag_sample_screenshot.png", shot)
