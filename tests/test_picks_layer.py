"""Viewer tests: a lazy micrograph folder and picks that follow the micrograph slider."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.io import mrc, star

pytestmark = pytest.mark.viewer

N_MIC = 6
BOX = 256
PSIZE = 2.0


def _make_folder(tmp_path, rng):
    """6 micrographs of 256² with bright discs at known positions; picks on them as STAR."""
    folder = tmp_path / "mics"
    folder.mkdir()
    rows = []
    yy, xx = np.mgrid[:BOX, :BOX]
    for i in range(N_MIC):
        img = rng.normal(0, 1, (BOX, BOX)).astype(np.float32)
        n = 3 + i  # a different number of picks per micrograph
        for _ in range(n):
            x, y = rng.uniform(30, BOX - 30, 2)
            img += 8 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 5.0**2))
            rows.append((f"Micrographs/mic_{i:03d}.mrc", x, y, float(i)))
        mrc.write_mrc(folder / f"mic_{i:03d}_frames_sum.mrc", img, PSIZE)
    table = pd.DataFrame(rows, columns=["micrograph_name", "x_px", "y_px", "rlnAutopickFigureOfMerit"])
    star_path = tmp_path / "picks.star"
    star.write_star(star_path, table)
    return folder, star_path, table


def test_picks_follow_slider(make_napari_viewer, tmp_path):
    from napari_cryodiag.widgets import picks_layer

    rng = np.random.default_rng(0)
    folder, star_path, table = _make_folder(tmp_path, rng)
    viewer = make_napari_viewer(show=True)
    img_layers = viewer.open(str(folder), plugin="napari-cryodiag")
    assert len(img_layers) == 1
    img = img_layers[0]
    assert img.data.shape == (N_MIC, BOX, BOX)
    assert img.metadata["cryodiag"]["kind"] == "micrographs"
    assert tuple(img.scale) == (1.0, PSIZE, PSIZE)
    pts = viewer.open(str(star_path), plugin="napari-cryodiag")[0]
    ctrl = picks_layer.get_picks_controller(pts)
    assert ctrl is not None and ctrl.image_layer is img
    assert ctrl.report["n_matched"] == len(table)
    for i in (0, 3, 5, 2):
        ctrl.show_micrograph(i)
        assert ctrl.current_index() == i
        assert viewer.dims.current_step[0] == i
        expected = np.flatnonzero(table["micrograph_name"].str.contains(f"mic_{i:03d}"))
        np.testing.assert_array_equal(np.sort(ctrl.rows_shown()), expected)
        assert len(pts.data) == 3 + i
        np.testing.assert_allclose(pts.data[:, 0], i)
        np.testing.assert_allclose(np.sort(pts.data[:, 2]), np.sort(table["x_px"].to_numpy()[expected]), rtol=1e-5)
        np.testing.assert_allclose(pts.features["rlnAutopickFigureOfMerit"], i)
        # each pick sits on a bright disc of the shown micrograph
        mic = np.asarray(img.data[i])
        vals = [mic[int(round(y)), int(round(x))] for _, y, x in pts.data]
        assert np.min(vals) > 4.0
    # kept / rejected
    kept = np.ones(len(table), bool)
    kept[ctrl.rows_of(2)[:2]] = False
    ctrl.rejected_mode = "hide"
    ctrl.set_kept(kept)
    assert len(pts.data) == 3 + 2 - 2
    ctrl.rejected_mode = "dim"
    ctrl.set_kept(kept)
    assert len(pts.data) == 5
    assert (pts.border_color[:, 3] < 0.5).sum() == 2
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5
    from imageio import imwrite  # napari dependency

    imwrite("/tmp/cryodiag_picks_screenshot.png", shot)


class _CountingArray(np.ndarray):
    """An ndarray that records how many rows each fancy-index read touches."""

    touched: list

    def __getitem__(self, idx):
        if isinstance(idx, np.ndarray) and idx.dtype.kind in "iu":
            self.touched.append(len(idx))
        return np.asarray(super().__getitem__(idx))


def _micrograph_layer(keys, shape=(64, 64)):
    import dask.array as da
    from napari.layers import Image

    return Image(da.zeros((len(keys),) + shape, chunks=(1,) + shape, dtype=np.float32), name="mics",
                 metadata={"cryodiag": {"kind": "micrographs", "keys": list(keys), "pixel_size_A": 1.0}},
                 contrast_limits=(0, 1))


def test_million_picks_slider_touches_one_micrograph(make_napari_viewer):
    from napari.layers import Layer

    from napari_cryodiag import _reader
    from napari_cryodiag.widgets import picks_layer

    n_mic, n = 200, 1_000_000
    rng = np.random.default_rng(3)
    mic = rng.integers(0, n_mic, n)
    table = pd.DataFrame({"micrograph": np.array([f"mic{i:04d}" for i in range(n_mic)], dtype=object)[mic],
                          "x_px": rng.uniform(0, 64, n), "y_px": rng.uniform(0, 64, n),
                          "ncc": rng.uniform(0, 1, n)})
    viewer = make_napari_viewer()
    viewer.add_layer(_micrograph_layer([f"mic{i:04d}_DW.mrc" for i in range(n_mic)]))
    pts = viewer.add_layer(Layer.create(*_reader.picks_layer_data(table, "synthetic")))
    picks_layer.link_viewer(viewer)
    picks_layer.link_viewer(viewer)  # idempotent
    ctrl = picks_layer.get_picks_controller(pts)
    assert ctrl.report["n_matched"] == n
    counting = ctrl._xy.view(_CountingArray)
    counting.touched = []
    ctrl._xy = counting
    seen = []
    ctrl.on_micrograph_changed.append(seen.append)
    for i in (17, 150, 199):
        viewer.dims.set_point(0, i)  # move the slider
        expected = np.flatnonzero(mic == i)
        assert ctrl.current_index() == i and seen[-1] == i
        assert len(pts.data) == len(expected) == ctrl.last_swap_rows
        assert counting.touched[-1] == len(expected)  # only this micrograph's rows were read
        np.testing.assert_array_equal(np.sort(ctrl.rows_shown()), expected)
        np.testing.assert_allclose(np.sort(pts.features["ncc"]), np.sort(table["ncc"].to_numpy()[expected]))
    assert max(counting.touched) < 10_000  # never the whole table
    kept = table["ncc"].to_numpy() > 0.5
    counting.touched.clear()
    ctrl.rejected_mode = "hide"
    ctrl.set_kept(kept)
    expected = np.flatnonzero((mic == 199) & kept)
    assert len(pts.data) == len(expected) and counting.touched == [len(expected)]
    assert pts.metadata["cryodiag"]["kept"] is not None


def test_picks_before_micrographs_and_unmatched_report(make_napari_viewer, monkeypatch):
    from napari.layers import Layer

    from napari_cryodiag import _reader
    from napari_cryodiag.widgets import picks_layer

    warnings = []
    monkeypatch.setattr(picks_layer, "_warn", warnings.append)
    table = pd.DataFrame({"micrograph": ["a", "a", "b", "gone", "gone"], "x_px": [10.0, 20, 30, 40, 50],
                          "y_px": [5.0, 6, 7, 8, 9]})
    viewer = make_napari_viewer()
    picks_layer.link_viewer(viewer)
    pts = viewer.add_layer(Layer.create(*_reader.picks_layer_data(table, "t.star")))
    ctrl = picks_layer.get_picks_controller(pts)
    assert ctrl.image_layer is None and ctrl.keys == ["a", "b", "gone"]
    img = viewer.add_layer(_micrograph_layer(["a.mrc", "b.mrc", "c.mrc"]))
    assert ctrl.image_layer is img
    assert ctrl.micrograph_of_row.tolist() == [0, 0, 1, -1, -1]
    assert any("2 picks on 1 micrographs that are not open (gone)" in w and "no picks (c)" in w for w in warnings)
    ctrl.show_micrograph(1)
    assert pts.data.tolist() == [[1.0, 7.0, 30.0]]
    viewer.layers.remove(img)
    assert ctrl.image_layer is None


def _small_picks(n_mic=4, per=(5, 3, 7, 2), seed=0):
    rng = np.random.default_rng(seed)
    mic = np.repeat(np.arange(n_mic), per)
    return mic, pd.DataFrame({"micrograph": np.array([f"m{i}" for i in range(n_mic)], dtype=object)[mic],
                              "x_px": rng.uniform(0, 64, len(mic)), "y_px": rng.uniform(0, 64, len(mic)),
                              "ncc": rng.uniform(0, 1, len(mic))})


def _viewer_with_small_picks(make_napari_viewer):
    """A viewer with a 4-micrograph stack and linked picks: (viewer, points, controller, mic, table)."""
    from napari.layers import Layer

    from napari_cryodiag import _reader
    from napari_cryodiag.widgets import picks_layer

    mic, table = _small_picks()
    viewer = make_napari_viewer()
    viewer.add_layer(_micrograph_layer([f"m{i}" for i in range(4)]))
    pts = viewer.add_layer(Layer.create(*_reader.picks_layer_data(table, "synthetic")))
    picks_layer.link_viewer(viewer)
    return viewer, pts, picks_layer.get_picks_controller(pts), mic, table


def test_hidden_layer_follows_the_slider_when_shown_again(make_napari_viewer):
    viewer, pts, ctrl, mic, table = _viewer_with_small_picks(make_napari_viewer)
    pts.visible = False
    for i in (2, 1, 3):  # fewer and more points while hidden (napari failed here before)
        viewer.dims.set_point(0, i)
        assert ctrl.current_index() == i
        np.testing.assert_array_equal(np.sort(ctrl.rows_shown()), np.flatnonzero(mic == i))
    ctrl.set_kept(table["ncc"].to_numpy() > 0.5)
    pts.visible = True
    assert len(pts.data) == (mic == 3).sum() and np.all(pts.data[:, 0] == 3)
    np.testing.assert_allclose(np.sort(pts.data[:, 2]), np.sort(table["x_px"].to_numpy()[mic == 3]))


def test_set_kept_on_the_same_micrograph_only_recolours(make_napari_viewer):
    viewer, pts, ctrl, mic, table = _viewer_with_small_picks(make_napari_viewer)
    viewer.dims.set_point(0, 2)
    data_before = pts.data.copy()
    data_events = []
    pts.events.data.connect(data_events.append)
    kept = table["ncc"].to_numpy() > 0.5
    ctrl.set_kept(kept)  # "dim" mode: same points, new colours
    assert data_events == []
    np.testing.assert_array_equal(pts.data, data_before)
    rows = ctrl.rows_shown()
    from napari_cryodiag.widgets.picks_layer import KEPT_COLOR, REJECTED_COLOR

    np.testing.assert_allclose(pts.border_color[kept[rows]], np.tile(KEPT_COLOR, (kept[rows].sum(), 1)))
    np.testing.assert_allclose(pts.border_color[~kept[rows]],
                               np.tile(REJECTED_COLOR, ((~kept[rows]).sum(), 1)))


def test_a_recolour_reaches_the_drawn_canvas(make_napari_viewer):
    """set_kept recolours through napari's colour manager alone (the layer's border_color event is
    held back, so the layer list does not repaint): what is drawn must still change colour."""
    viewer, pts, ctrl, mic, table = _viewer_with_small_picks(make_napari_viewer)
    viewer.dims.set_point(0, 2)
    pts.size = 40.0
    pts.border_width = 0.3
    viewer.window.show()
    viewer.reset_view()

    def greens_and_reds():
        shot = viewer.screenshot(canvas_only=True, flash=False).astype(int)
        r, g = shot[..., 0], shot[..., 1]

        return int(((g > 150) & (r < 80)).sum()), int(((r > 60) & (r > g + 30)).sum())

    ctrl.set_kept(np.ones(len(table), bool))
    g_kept, r_kept = greens_and_reds()
    ctrl.set_kept(np.zeros(len(table), bool))  # same points: only the colours change
    g_rej, r_rej = greens_and_reds()
    assert g_kept > 100 and r_kept == 0
    assert g_rej == 0 and r_rej > 100


def test_set_table_replaces_the_picks(make_napari_viewer):
    viewer, pts, ctrl, mic, table = _viewer_with_small_picks(make_napari_viewer)
    ctrl.set_kept(np.ones(len(table), bool))
    viewer.dims.set_point(0, 2)
    fewer = table[table["ncc"] > 0.5].reset_index(drop=True)
    ctrl.set_table(fewer)
    assert ctrl.kept is None and pts.metadata["cryodiag"]["table"] is fewer
    assert len(pts.data) == (fewer["micrograph"] == "m2").sum()


def test_binding_an_image_of_another_pixel_size_rescales_the_picks(make_napari_viewer):
    from napari.layers import Layer

    from napari_cryodiag import _reader
    from napari_cryodiag.widgets import picks_layer

    mic, table = _small_picks()
    viewer = make_napari_viewer()
    pts = viewer.add_layer(Layer.create(*_reader.picks_layer_data(table, "synthetic")))
    picks_layer.link_viewer(viewer)
    image = _micrograph_layer([f"m{i}" for i in range(4)])
    image.metadata["cryodiag"]["pixel_size_A"] = 3.0
    image.scale = (1.0, 3.0, 3.0)
    viewer.add_layer(image)  # re-binds the picks: scale changes after the groups exist
    ctrl = picks_layer.get_picks_controller(pts)
    assert ctrl.image_layer is image and tuple(pts.scale[-2:]) == (3.0, 3.0)
    viewer.dims.set_point(0, 2)  # the micrograph axis keeps scale 1
    assert ctrl.current_index() == 2 and len(pts.data) == (mic == 2).sum()


def test_each_swap_shows_exactly_that_micrographs_picks_in_the_users_style(make_napari_viewer):
    """Micrographs with more and fewer picks in turn: the layer holds that micrograph's picks (data,
    features, kept/rejected colours), napari's slice shows them (a pick is found under each
    position), and the style the user set stays on every point, also on points napari adds when
    the data grows while a different colour is current for new points."""
    from napari.utils.colormaps.standardize_color import transform_color

    from napari_cryodiag.widgets.picks_layer import KEPT_COLOR, REJECTED_COLOR

    viewer, pts, ctrl, mic, table = _viewer_with_small_picks(make_napari_viewer)
    kept = table["ncc"].to_numpy() > 0.5
    ctrl.set_kept(kept)
    viewer.dims.set_point(0, 0)
    pts.selected_data = set(range(len(pts.data)))  # the user's style, in the layer controls
    pts.current_size = 12.0
    pts.current_symbol = "square"
    pts.current_border_width = 0.2
    pts.current_face_color = [1.0, 1.0, 0.0, 0.25]
    pts.selected_data = set()
    for i in (2, 3, 1, 2, 0):  # 7, 2, 3, 7, 5 picks
        if i == 3:  # nothing selected: the colour of the next point added by hand
            pts.current_face_color = "blue"
        viewer.dims.set_point(0, i)
        rows = np.flatnonzero(mic == i)
        assert ctrl.current_index() == i and len(pts.data) == len(rows)
        np.testing.assert_array_equal(ctrl.rows_shown(), rows)
        np.testing.assert_allclose(pts.data, np.column_stack([np.full(len(rows), i), table["y_px"].to_numpy()[rows],
                                                              table["x_px"].to_numpy()[rows]]))
        np.testing.assert_allclose(pts.features["ncc"], table["ncc"].to_numpy()[rows])
        np.testing.assert_allclose(pts.size, 12.0)
        assert {str(s) for s in np.atleast_1d(pts.symbol)} == {"square"}
        np.testing.assert_allclose(pts.border_width, 0.2)
        np.testing.assert_allclose(pts.face_color, np.tile([1.0, 1.0, 0.0, 0.25], (len(rows), 1)))
        want = np.where(kept[rows][:, None], KEPT_COLOR, REJECTED_COLOR)
        np.testing.assert_allclose(pts.border_color, want, atol=1e-6)
        for z, y, x in pts.data:  # napari's slice is this micrograph's: a point under each pick
            k = pts.get_value((z, y, x), world=True)
            assert k is not None and np.hypot(*(pts.data[k, 1:] - (y, x))) <= 6.0
    np.testing.assert_allclose(transform_color(pts.current_face_color)[0], transform_color("blue")[0])


def test_micrograph_without_picks_swaps_quietly_and_keeps_style(make_napari_viewer, tmp_path):
    """A micrograph with no picks shows an empty layer without napari's 'illegal values' colour
    warning, and the next micrograph's picks come back with the user's style and kept colours."""
    import warnings

    from napari_cryodiag.widgets import picks_layer

    folder, _, table = _make_folder(tmp_path, np.random.default_rng(3))
    table = table[~table["micrograph_name"].str.contains("mic_004")].reset_index(drop=True)
    star_path = tmp_path / "picks_no4.star"
    star.write_star(star_path, table)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(folder), plugin="napari-cryodiag")
    pts = viewer.open(str(star_path), plugin="napari-cryodiag")[0]
    ctrl = picks_layer.get_picks_controller(pts)
    ctrl.show_micrograph(3)
    kept = np.ones(len(table), bool)
    kept[ctrl.rows_of(1)[:2]] = False
    ctrl.set_kept(kept)
    pts.border_width = 0.25  # the user's edge width
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctrl.show_micrograph(4)
        assert len(pts.data) == 0 and len(pts.border_color) == 0
        ctrl.set_kept(kept)  # a threshold step while the empty micrograph is shown
        ctrl.show_micrograph(1)
    illegal = [str(w.message) for w in caught if "illegal values" in str(w.message)]
    assert illegal == []
    assert len(pts.data) == 4
    np.testing.assert_allclose(pts.border_width, 0.25)
    rejected = pts.border_color[:, 3] < 0.5
    assert rejected.sum() == 2
    np.testing.assert_array_equal(np.flatnonzero(~kept[ctrl.rows_shown()]), np.flatnonzero(rejected))
