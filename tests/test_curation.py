"""Curating picks by hand with napari's own tools (issue 9): what the user does, what the user sees.

A simulated micrograph stack with scored picks is opened as the reader opens it; Inspect Picks is
docked from the Plugins menu. The user deletes picks (select + Delete), adds some (the add tool),
moves one (a drag in select mode), changes the point size, and moves the slider away and back;
the counts, the histogram, the micrograph table and every export follow.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_user import click, delete_selected, drag

pytestmark = pytest.mark.viewer


@pytest.fixture(scope="module")
def sim():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    return simulate_micrographs(n_micrographs=3, shape=(384, 384), particles_per_micrograph=25, seed=7)


@pytest.fixture
def viewer_with_picks(make_napari_viewer, sim, tmp_path):
    from napari_cryodiag.io.mrc import write_mrc
    from napari_cryodiag.io.star import write_star

    mics = tmp_path / "mics"
    mics.mkdir()
    for img, name in zip(sim.images, sim.names):
        write_mrc(mics / name, img, sim.pixel_size_A)
    star = tmp_path / "picks.star"
    write_star(star, sim.truth.drop(columns=["truth"]))
    viewer = make_napari_viewer()
    viewer.open(str(mics), plugin="napari-cryodiag")
    viewer.open(str(star), plugin="napari-cryodiag")
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodiag", "Inspect Picks")
    layer = viewer.layers["picks.star"]
    return viewer, w, layer, star, mics


def _on(table, key):
    return (table["micrograph"].astype(str) == key).to_numpy()


def test_delete_add_move_persist_and_are_exported(viewer_with_picks, sim, qtbot, tmp_path):
    from napari_cryodiag.io.picks import read_table

    viewer, w, layer, star, mics = viewer_with_picks
    ctrl = w.controller
    assert w.layer is layer and ctrl.image_layer is viewer.layers["mics"]
    w.thresholds.keep_all_button.clicked.emit()  # all picks kept: every edit shows in the counts
    n0 = len(read_table(star))
    viewer.dims.set_current_step(0, 1)
    key = ctrl.key_of_index(1)
    assert w.result.n_kept == n0 and len(layer.data) == _on(read_table(star), key).sum()
    shown_before = len(layer.data)
    total_counts_before = int(w.inspection.hist.counts(~w.pickset.removed).sum())

    # ---- delete three picks with napari's select + Delete
    gone_xy = np.asarray(layer.data)[[0, 2, 5], 1:].copy()
    delete_selected(layer, [0, 2, 5])
    assert len(layer.data) == shown_before - 3
    assert w.result.n_rows == n0 - 3 and w.result.n_removed_by_hand == 3 and w.result.n_kept == n0 - 3
    assert "3 deleted by hand" in w.thresholds.counts.value
    assert int(w.thresholds._base_counts().sum()) == total_counts_before - 3  # the histogram follows
    w.tabs.setCurrentIndex(1)  # the micrograph table follows
    qtbot.waitUntil(lambda: w.table.model.rowCount() == 3, timeout=2000)
    assert int(w.table.model.values[1][list(w.table.model.names).index(key)]) == shown_before - 3
    w.tabs.setCurrentIndex(0)
    # away and back: they stay deleted
    viewer.dims.set_current_step(0, 2)
    viewer.dims.set_current_step(0, 1)
    assert len(layer.data) == shown_before - 3
    remaining = np.asarray(layer.data)[:, 1:]
    for yx in gone_xy:
        assert not np.any(np.all(np.isclose(remaining, yx), axis=1))

    # ---- add a pick with the add tool, on a spot of this micrograph
    layer.mode = "add"
    new_yx = (100.0, 150.0)
    click(viewer, layer, (1, *new_yx))
    assert len(layer.data) == shown_before - 2
    t = w.pickset.table
    added = np.flatnonzero(t["manual"].astype(str).to_numpy() == "added")
    assert len(added) == 1 and t["micrograph"].astype(str).iloc[added[0]] == key
    assert (t["y_px"].iloc[added[0]], t["x_px"].iloc[added[0]]) == pytest.approx(new_yx)
    # it carries the micrograph's defocus, and is kept whatever its scores (a pick the user placed)
    assert t["defocus_A"].iloc[added[0]] == pytest.approx(float(np.median(t["defocus_A"].to_numpy()[_on(t, key)])))
    w.set_threshold("x_min", 0.99)  # a threshold that rejects nearly everything
    assert w.result.kept[added[0]]
    w.thresholds.keep_all_button.clicked.emit()
    # its scores are computed on the open micrograph (the set has NCC and power)
    w.jobs.scoring.diameter_A.value = sim.particle_diameter_A
    viewer.dims.set_current_step(0, 0)
    viewer.dims.set_current_step(0, 1)
    layer.mode = "add"
    click(viewer, layer, (1, 200.0, 220.0))
    second = len(w.pickset.table) - 1
    qtbot.waitUntil(lambda: np.isfinite(w.pickset.table["ncc"].iloc[second]), timeout=20000)
    from napari_cryodiag.compute.picks.scores import score_micrograph

    ncc, power = score_micrograph(sim.images[1], [220.0], [200.0],
                                  diameter_px=w.jobs.scoring.diameter_A.value / sim.pixel_size_A,
                                  pixel_size_A=sim.pixel_size_A)
    assert w.pickset.table["ncc"].iloc[second] == pytest.approx(float(ncc[0]), rel=1e-5)
    assert w.pickset.table["power"].iloc[second] == pytest.approx(float(power[0]), rel=1e-5)

    # ---- move a pick: a drag in select mode
    layer.mode = "select"
    i = 3
    row = ctrl.rows_shown()[i]
    start = np.asarray(layer.data[i])
    end = start + np.array([0.0, 12.0, -9.0])
    layer.selected_data = {i}
    drag(viewer, layer, start, end)
    assert (w.pickset.table["y_px"].iloc[row], w.pickset.table["x_px"].iloc[row]) == pytest.approx(tuple(end[1:]))
    assert w.pickset.table["manual"].astype(str).iloc[row] == "moved"
    viewer.dims.set_current_step(0, 0)
    viewer.dims.set_current_step(0, 1)
    np.testing.assert_allclose(layer.data[list(ctrl.rows_shown()).index(row), 1:], end[1:])

    # ---- every export writes the set as edited: the widget's Export ...
    paths = w.export(tmp_path / "curated.star")
    back = read_table(paths[0])
    assert len(back) == n0 - 3 + 2
    assert sorted(back["manual"].astype(str).unique()) == ["added", "moved", "read"]
    for yx in gone_xy:
        on = back[back["micrograph"] == key]
        assert not np.any(np.isclose(on["y_px"], yx[0]) & np.isclose(on["x_px"], yx[1]))
    side = json.loads(paths[-1].read_text())  # the side JSON is written last
    assert side["selection"]["n_removed_by_hand"] == 3 and side["selection"]["n_added_by_hand"] == 2
    # ... napari's File > Save (the npe2 writer) ...
    viewer.layers.selection = {layer}
    saved = viewer.layers.save(str(tmp_path / "saved.star"), selected=True, plugin="napari-cryodiag")
    assert saved and read_table(saved[0]).shape[0] == len(back)
    np.testing.assert_allclose(np.sort(read_table(saved[0])["x_px"]), np.sort(back["x_px"]), atol=1e-4)
    # ... and the command line from the saved session
    from napari_cryodiag.cli import main

    session = w.export_panel.save_session(tmp_path / "session.json")
    assert session is not None
    code = main(["picks", "--session", str(session), "-o", str(tmp_path / "out"), "--no-suggest",
                 "--export-star", str(tmp_path / "cli.star")])
    assert code == 0
    cli = read_table(tmp_path / "cli.star")
    assert len(cli) == len(back)
    np.testing.assert_allclose(np.sort(cli["x_px"]), np.sort(back["x_px"]), atol=1e-4)
    np.testing.assert_allclose(np.sort(cli["y_px"]), np.sort(back["y_px"]), atol=1e-4)


def test_point_style_set_by_the_user_persists_across_micrographs(viewer_with_picks):
    viewer, w, layer, star, mics = viewer_with_picks
    ctrl = w.controller
    w.thresholds.keep_all_button.clicked.emit()  # every pick drawn in the kept colour
    viewer.dims.set_current_step(0, 0)
    # picks are thin circles of the particle diameter
    d = w.pickset.table["diameter_px"].to_numpy()
    np.testing.assert_allclose(layer.size, d[ctrl.rows_shown()])
    assert np.all(np.asarray(layer.border_width) <= 0.06) and np.allclose(np.asarray(layer.face_color)[:, 3], 0)
    # the user selects all points and sets size, symbol, border width and colours in the layer controls
    layer.selected_data = set(range(len(layer.data)))
    layer.current_size = 40.0
    layer.current_symbol = "square"
    layer.current_border_width = 0.2
    layer.current_border_color = "magenta"
    layer.current_face_color = [1.0, 1.0, 0.0, 0.25]
    layer.selected_data = set()
    viewer.dims.set_current_step(0, 2)  # next micrograph
    assert len(layer.data) > 0
    np.testing.assert_allclose(layer.size, 40.0)
    assert {str(s) for s in np.atleast_1d(layer.symbol)} == {"square"}
    np.testing.assert_allclose(layer.border_width, 0.2)
    np.testing.assert_allclose(np.asarray(layer.border_color)[:, :3], np.tile([1.0, 0.0, 1.0], (len(layer.data), 1)))
    np.testing.assert_allclose(np.asarray(layer.face_color), np.tile([1.0, 1.0, 0.0, 0.25], (len(layer.data), 1)))
    # a threshold change recolours with the user's colour for kept picks
    w.set_threshold("x_min", float(np.nanmedian(w.inspection.x)))
    kept = w.result.kept[ctrl.rows_shown()]
    np.testing.assert_allclose(np.asarray(layer.border_color)[kept, :3], np.tile([1.0, 0.0, 1.0], (kept.sum(), 1)))
    # the circle size can follow the box instead, or be fixed from the dock
    w.circles.value = "fixed size"
    w.circle_px.value = 30.0
    np.testing.assert_allclose(layer.size, 30.0)


def test_a_pick_added_with_the_add_tool_looks_like_the_others(viewer_with_picks):
    """napari's add tool draws a new point at the layer's current size: it must be the particle's
    size the other picks are drawn at (it was napari's default, 10 px, a dot among circles), the
    layer controls show that size, and the pick keeps it in the table and across micrographs."""
    viewer, w, layer, star, mics = viewer_with_picks
    viewer.dims.set_current_step(0, 1)
    drawn = np.asarray(layer.size, dtype=float)
    assert drawn.size and np.allclose(drawn, np.median(drawn))  # one particle diameter here
    assert float(layer.current_size) == pytest.approx(float(np.median(drawn)))
    layer.mode = "add"
    click(viewer, layer, (1, 120.0, 140.0))
    assert len(layer.size) == drawn.size + 1
    assert float(layer.size[-1]) == pytest.approx(float(np.median(drawn)))
    t = w.pickset.table
    added = np.flatnonzero(t["manual"].astype(str).to_numpy() == "added")
    key = w.controller.key_of_index(1)
    on = _on(t, key) & (t["manual"].astype(str).to_numpy() == "read")
    assert t["diameter_px"].iloc[added[0]] == pytest.approx(float(np.median(t["diameter_px"].to_numpy()[on])))
    viewer.dims.set_current_step(0, 2)
    viewer.dims.set_current_step(0, 1)
    shown = w.controller.rows_shown()
    j = int(np.flatnonzero(shown == added[0])[0])
    assert float(layer.size[j]) == pytest.approx(float(np.median(drawn)))
