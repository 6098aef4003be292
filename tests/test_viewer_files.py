"""Files as users open them in napari (issue 9): File > Open with several pick files, picks
without their micrographs, picks whose names match no open micrograph, tables without
coordinates, micrographs shown low-passed, defaults that never drop particles silently.

Files are opened through ``viewer.open`` (what File > Open and drag-and-drop call) and widgets are
docked from the Plugins menu.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.viewer


def text_overlay(viewer):
    from napari_cryodiag.widgets._layers import text_overlay as overlay

    return overlay(viewer)


def shown(widget) -> bool:
    """The widget is meant to be seen (not hidden by the plugin), whatever the window manager does."""
    return not widget.native.isHidden()


def _dock(viewer, name="Inspect Picks"):
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodiag", name)
    return w


def test_several_pick_files_opened_together_are_one_pick_set(make_napari_viewer, shared_data, qtbot):
    from napari_cryodiag.io.picks import read_table

    files = sorted((shared_data / "relion13-tutorial" / "autopick").glob("*.star"))
    viewer = make_napari_viewer(show=True)
    viewer.open([str(f) for f in files], plugin="napari-cryodiag")  # File > Open, 15 files selected
    qtbot.waitUntil(lambda: sum(1 for ly in viewer.layers if type(ly).__name__ == "Points") == 1, timeout=60000)
    [pts] = [ly for ly in viewer.layers if type(ly).__name__ == "Points"]
    table = pts.metadata["cryodiag"]["table"]
    assert len(table) == len(read_table(shared_data / "relion13-tutorial" / "autopick")) == 9470
    assert table["micrograph"].nunique() == 15 and "15 star files" in pts.name
    # no micrographs open: one empty canvas per micrograph of the picks, saying so
    [stand_in] = [ly for ly in viewer.layers if ly.metadata.get("cryodiag", {}).get("kind") == "placeholder"]
    assert stand_in.data.shape[0] == 15 and "not open" in stand_in.name
    assert text_overlay(viewer).visible and "micrographs not open" in text_overlay(viewer).text
    assert viewer.dims.axis_labels[0] == "micrograph"
    w = _dock(viewer)
    assert w.layer is pts and w.result.n_rows == 9470
    # every micrograph is reachable with the slider, its picks shown
    ctrl = w.controller
    seen = set()
    for i in range(15):
        viewer.dims.set_current_step(0, i)
        key = ctrl.key_of_index(ctrl.current_index())
        assert len(pts.data) == (table["micrograph"].astype(str) == key).sum() > 0
        seen.add(key)
    assert len(seen) == 15
    # calibration works across the files ("found 1" micrograph before)
    viewer.open(str(shared_data / "relion13-tutorial" / "all_micrographs_ctf.star"), plugin="napari-cryodiag")
    w.tabs.setCurrentIndex(2)
    w.calibration.form.calibrate_x.value = True
    assert w.inspection.x_units == "calibrated (ratio)" and len(w.inspection.calibrations["x"].per_micrograph) == 15
    # duplicates take the pixel size from the open CTF table (no field to fill)
    w.tabs.setCurrentIndex(4)
    w.export_panel.dedupe.distance_A.value = 30.0
    assert not shown(w.export_panel.pixel_size_A)
    w.export_panel.count_button.clicked.emit()
    assert "picks kept" in w.export_panel.summary.value and "pixel size" not in w.export_panel.summary.value
    # opening the micrographs later replaces the stand-in (removed once nothing shows on it)


def test_cs_export_without_micrograph_size_asks_for_it(make_napari_viewer, shared_data, tmp_path, qtbot):
    from napari_cryodiag.io.picks import read_table

    viewer = make_napari_viewer(show=True)
    viewer.open(str(shared_data / "cryolo" / "TcdA1-0018_frames_sum.cbox"), plugin="napari-cryodiag")
    w = _dock(viewer)
    ex = w.export_panel
    w.tabs.setCurrentIndex(4)
    ex.path.value = str(tmp_path / "picks.cs")
    assert shown(ex.micrograph_ny) and shown(ex.micrograph_nx)  # nothing open gives the size
    assert w.export(tmp_path / "picks.cs") == []
    assert "micrograph size" in w.status.value and "micrograph_shape" not in w.status.value
    ex.micrograph_ny.value, ex.micrograph_nx.value = 4096, 4096
    paths = w.export(tmp_path / "picks.cs")
    back = read_table(paths[0])
    src = read_table(shared_data / "cryolo" / "TcdA1-0018_frames_sum.cbox")
    assert len(back) == w.result.n_kept == len(src)  # crYOLO confidence alone: nothing dropped silently
    np.testing.assert_allclose(np.sort(back["x_px"]), np.sort(src["x_px"]), atol=1e-3)


def test_picks_on_an_unmatched_micrograph_can_be_assigned(make_napari_viewer, shared_data, tmp_path, qtbot):
    from napari_cryodiag.io.mrc import write_mrc

    rng = np.random.default_rng(0)
    mics = tmp_path / "EPU"
    mics.mkdir()
    for k in range(2):  # EPU names that match nothing crYOLO wrote
        write_mrc(mics / f"FoilHole_1234_Data_{k}_Fractions.mrc", rng.normal(size=(512, 512)).astype(np.float32), 1.0)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(mics), plugin="napari-cryodiag")
    viewer.open(str(shared_data / "cryolo" / "TcdA1-0018_frames_sum.cbox"), plugin="napari-cryodiag")
    w = _dock(viewer)
    qtbot.waitUntil(lambda: w.controller is not None and w.controller.image_layer is not None, timeout=3000)
    ctrl = w.controller
    assert ctrl.report["n_matched"] == 0
    w.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: shown(w.table.assign_box), timeout=3000)
    assert w.table.assign_key.value == "TcdA1-0018"
    w.table.assign_to.value = 1
    w.table.assign_button.clicked.emit()
    assert ctrl.current_index() == 1 and len(viewer.layers["TcdA1-0018_frames_sum.cbox"].data) == 120
    assert not shown(w.table.assign_box)


def test_tables_without_coordinates_are_not_layers_and_deleting_picks_is_safe(make_napari_viewer, shared_data, qtbot):
    from napari_cryodiag.widgets._tables import tables_of

    viewer = make_napari_viewer(show=True)
    viewer.open(str(shared_data / "relion13-tutorial" / "autopick"), plugin="napari-cryodiag")
    n = len(viewer.layers)
    for f in ("relion13-tutorial/all_micrographs_ctf.star", "cryosparc/cryosparc_P12_J24_001_particles.cs",
              "relion13-tutorial/Class2D/manual_it025_model.star", "relion-postprocess/postprocess.star"):
        viewer.open(str(shared_data / f), plugin="napari-cryodiag")
    assert len(viewer.layers) == n  # no empty Points layers
    kinds = sorted(t.kind for t in tables_of(viewer))
    assert kinds == ["ctf", "particles", "postprocess", "relion_model"]
    w = _dock(viewer)
    picks = next(ly for ly in viewer.layers if type(ly).__name__ == "Points")
    viewer.layers.remove(picks)  # segfaulted in the draw before (4 of 4 tries)
    qtbot.wait(200)
    viewer.screenshot(canvas_only=False, flash=False)
    assert w.layer is None and "no picks layer" in w.thresholds.counts.value
    assert w.thresholds.x_feature.choices == ()  # stale feature names go with the layer


def test_defaults_never_drop_particles_silently(make_napari_viewer, shared_data, qtbot):
    viewer = make_napari_viewer(show=True)
    # RELION refined particles: FOM only (no NCC/power) -> a 1D view of the FOM, never defocus
    viewer.open(str(shared_data / "relion13-tutorial" / "particles_autopick_sort_class2d_class3d.star"),
                plugin="napari-cryodiag")
    w = _dock(viewer)
    insp = w.inspection
    assert insp.x_feature == "rlnAutopickFigureOfMerit" and insp.one_d and w.result.n_kept == 6496
    assert "defocus_A" not in (insp.x_feature, insp.y_feature)
    # no polygon on a 1D histogram (it needs two scores)
    assert not w.thresholds.polygon_button.enabled and not w.thresholds.clear_polygon_button.enabled
    # the suggestion is a proposal the user applies; its line is there only while there is one
    assert not shown(w.thresholds.proposal_label)
    w.thresholds.suggest_button.clicked.emit()
    assert shown(w.thresholds.apply_button) and "would keep" in w.thresholds.proposal_label.value
    assert shown(w.thresholds.proposal_label)
    assert w.result.n_kept == 6496
    w.thresholds.apply_button.clicked.emit()
    assert w.inspection.thresholds.method.startswith("suggested")
    # Class2D data.star: no score at all -> never rlnDetectorPixelSize x defocus
    viewer.open(str(shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_data.star"), plugin="napari-cryodiag")
    w.picks.value = viewer.layers["manual_it025_data.star"]
    feats = (None if w.inspection is None else w.inspection.x_feature)
    assert feats != "rlnDetectorPixelSize" and w.result.n_kept == w.result.n_rows == 1099


def test_micrographs_shown_low_passed_toggle_and_cache(make_napari_viewer, tmp_path, qtbot):
    from napari_cryodiag.compute.display import display_image
    from napari_cryodiag.io.mrc import write_mrc
    from napari_cryodiag.simulate.micrographs import simulate_micrographs
    from napari_cryodiag.workflows import micrographs as wm

    sim = simulate_micrographs(n_micrographs=3, shape=(1024, 1024), particles_per_micrograph=30, seed=2, score=False)
    mics = tmp_path / "mics"
    mics.mkdir()
    for img, name in zip(sim.images, sim.names):
        write_mrc(mics / name, img, sim.pixel_size_A)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(mics), plugin="napari-cryodiag")
    layer = viewer.layers["mics"]
    md = layer.metadata["cryodiag"]
    b = md["display"]["bin_used"]
    assert md["display"]["enabled"] and b >= 2  # 2 Å/px, 1024 px: binned for display
    shown = np.asarray(layer.data[1])
    np.testing.assert_allclose(shown, display_image(sim.images[1], sim.pixel_size_A, lowpass_A=20.0, bin=b), rtol=1e-5)
    # particles stand out of the noise far more than on the raw micrograph
    assert np.std(shown) < 0.5 * np.std(sim.images[1])
    # the pick coordinates stay on the raw grid: a raw pixel (y, x) maps to the same world point
    assert np.allclose(layer.data_to_world((1, 10.0, 20.0))[1:],
                       np.array([(10 * b + (b - 1) / 2) * sim.pixel_size_A, (20 * b + (b - 1) / 2) * sim.pixel_size_A]))
    # the dock: one click turns it off (raw pixels back), and on again at another low-pass
    d = _dock(viewer, "Micrograph display")
    assert d.micrographs.value is layer
    d.filtered.value = False
    assert layer.data.shape == (3, 1024, 1024) and not layer.metadata["cryodiag"]["display"]["enabled"]
    np.testing.assert_array_equal(np.asarray(layer.data[0]), sim.images[0])
    d.lowpass_A.value = 30.0
    d.filtered.value = True
    assert layer.metadata["cryodiag"]["display"]["lowpass_A"] == 30.0
    lo, hi = layer.contrast_limits
    plane = np.asarray(layer.data[int(viewer.dims.current_step[0])])
    assert lo >= plane.min() - 1e-6 and hi <= plane.max() + 1e-6  # contrast from the filtered image
    # only the shown micrograph is filtered, and only once
    cache = wm._CACHE
    misses = cache.misses
    np.asarray(layer.data[2])
    np.asarray(layer.data[2])
    assert cache.misses == misses + 1


def test_the_stacked_axis_slider_says_what_it_moves_through(make_napari_viewer, shared_data, qtbot):
    """One slider moves every 3D layer (napari aligns layers on their last axes): it is named for
    all the plugin's layers on it, as they come and go; real RELION Class2D files (class averages
    and particles with coordinates) give "class / micrograph"."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-cryodiag", "micrographs")
    assert viewer.dims.axis_labels[-3] == "micrograph"
    viewer.open_sample("napari-cryodiag", "half_maps")  # maps: their z planes are on it too
    assert viewer.dims.axis_labels[-3] == "micrograph / z"
    for layer in [ly for ly in viewer.layers if ly.metadata.get("cryodiag", {}).get("kind")
                  in ("micrographs", "picks", "placeholder")]:
        viewer.layers.remove(layer)
    assert viewer.dims.axis_labels[-3] == "z"
    viewer.layers.clear()
    viewer.open_sample("napari-cryodiag", "class_averages")
    assert tuple(viewer.dims.axis_labels[-3:]) == ("class", "y", "x")

    other = make_napari_viewer()
    d = shared_data / "relion13-tutorial" / "Class2D"
    other.open([str(d / "manual_it025_classes.mrcs"), str(d / "manual_it025_data.star")], plugin="napari-cryodiag")
    assert other.dims.axis_labels[-3] == "class / micrograph"
    other.layers.remove("manual_it025_classes.mrcs")
    assert other.dims.axis_labels[-3] == "micrograph"
