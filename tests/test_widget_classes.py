"""The "Classes" dock widget: docks, computes in a worker, shows grid/table/layer, exports a selection."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("napari")

from napari_cryodiag.widgets.classes import LAYER_NAME, ClassesWidget  # noqa: E402


def _not_blank(img: np.ndarray) -> bool:
    rgb = np.asarray(img)[::3, ::3, :3].astype(np.float32)
    grey = rgb.sum(axis=-1)
    return rgb.std() > 5 and np.unique(grey).size > 50


@pytest.mark.viewer
def test_widget_real_relion_class2d(make_napari_viewer, qtbot, shared_data, tmp_path):
    d = shared_data / "relion13-tutorial" / "Class2D"
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Classes")
    w.particles_path.setText(str(d / "manual_it025_data.star"))
    w.model_path.setText(str(d / "manual_it025_model.star"))
    w.compute()
    qtbot.waitUntil(lambda: w.result is not None, timeout=60_000)
    assert w.table.rowCount() == 10
    assert "no particle images" in w.status.text()
    layer = viewer.layers[LAYER_NAME]
    assert layer.data.shape == (10, 100, 100)
    assert layer.scale[-1] == pytest.approx(3.54)
    counts = dict(zip(w.result.summary["class"], w.result.summary["count"]))
    # stack sorted by count (default): classes in decreasing count
    order = layer.metadata["cryodiag"]["classes"]
    assert [counts[c] for c in order] == sorted(counts.values(), reverse=True)
    np.testing.assert_array_equal(layer.data[0], w.result.averages[order[0] - 1])
    # the text overlay names the class on screen, and follows the slider
    viewer.dims.set_current_step(0, 0)
    assert viewer.text_overlay.text.startswith(f"#{order[0]}  n={counts[order[0]]}")
    assert "nSig" in viewer.text_overlay.text  # RELION: significant samples, not an ESS
    viewer.dims.set_current_step(0, 3)
    assert viewer.text_overlay.text.startswith(f"#{order[3]}  n={counts[order[3]]}")
    # sort by class, then show a tiled grid
    w.sort_combo.setCurrentText("class")
    assert viewer.layers[LAYER_NAME].metadata["cryodiag"]["classes"] == list(range(1, 11))
    w.layer_mode.setCurrentText("tiled grid")
    assert viewer.layers[LAYER_NAME].data.ndim == 2
    labels = viewer.layers["class labels"]
    assert len(labels.data) == 10 and labels.features["label"][0].startswith("#1  n=36\nFRC n/a")
    # select two classes by clicking their tiles on the grid figure, then export
    for c in (2, 4):  # the grid is redrawn after each click: look the tile up each time
        ax_of = {cls: ax for ax, cls in w._axes_class.items()}
        w._on_grid_click(SimpleNamespace(inaxes=ax_of[c]))
    assert w.selected == {2, 4} and w.export_btn.isEnabled()
    assert "555" in w.selection_label.text()  # 264 + 291 particles
    selected_rows = {w.table.item(i.row(), 0).text() for i in w.table.selectedIndexes()}
    assert selected_rows == {"2", "4"}
    out = w.export_selected(str(tmp_path / "sel.star"))
    from napari_cryodiag.io.picks import read_table

    back = read_table(out)
    assert len(back) == 555 and set(back["class"]) == {2, 4}
    # never over the input
    assert w.export_selected(str(d / "manual_it025_data.star"), overwrite=True) is None
    # screenshots: the viewer with the layer and the widget are not blank
    w.tabs.setCurrentIndex(1)
    qtbot.wait(100)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert _not_blank(shot)
    img = w.grab().toImage()
    img.save(str(tmp_path / "classes_widget.png"))
    w.grab().save("/tmp/h5c_widget_relion.png")
    from matplotlib.image import imread

    assert _not_blank(imread(str(tmp_path / "classes_widget.png")) * 255)


@pytest.mark.viewer
def test_widget_simulated_frc_and_table_selection(make_napari_viewer, qtbot, tmp_path):
    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=2, n_particles=300, n_classes=4, n_junk=1, box=40)
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Classes")
    w.load_table(sim.table, sim.images, name="simulated")
    w.compute()
    qtbot.waitUntil(lambda: w.result is not None, timeout=60_000)
    s = w.result.summary
    assert s["frc_resolution_A"].notna().all()
    junk = sim.truth["junk_classes"][0]
    assert s.set_index("class")["frc_resolution_A"].idxmax() == junk
    assert viewer.layers[LAYER_NAME].data.shape == (4, 40, 40)
    # sorting by resolution puts the junk class last in the layer
    w.sort_combo.setCurrentText("resolution")
    assert viewer.layers[LAYER_NAME].metadata["cryodiag"]["classes"][-1] == junk
    # selecting rows of the table selects classes
    w.table.selectRow(0)
    qtbot.wait(10)
    assert len(w.selected) == 1
    w.set_selection([1, 2])
    out = w.export_selected(str(tmp_path / "good.star"))
    assert out is not None
    w.tabs.setCurrentIndex(3)
    qtbot.wait(100)
    w.grab().save("/tmp/h5c_widget_sim.png")
    assert w.progress.isHidden()


@pytest.mark.viewer
def test_widget_reports_bad_input(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    assert w.compute() is None  # nothing chosen
    assert "choose a particle file" in w.status.text()
    bad = tmp_path / "picks.star"
    bad.write_text("data_\n\nloop_\n_rlnCoordinateX #1\n1.0\n")
    w.particles_path.setText(str(bad))
    w.compute()
    qtbot.waitUntil(lambda: w.status.text().startswith("error"), timeout=30_000)
    assert "picks.star" in w.status.text() and w.result is None


@pytest.mark.viewer
def test_widget_cancel(make_napari_viewer, qtbot):
    import pandas as pd

    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=3, n_particles=200, n_classes=3, n_junk=1, box=32)
    reps = 40  # 8,000 particles: long enough to cancel midway
    t = pd.concat([sim.table] * reps, ignore_index=True)
    t["image_index"] = np.arange(len(t)) % len(sim.table)
    t.attrs = dict(sim.table.attrs)
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    w.load_table(t, sim.images, name="big")
    worker = w.compute()
    assert w.cancel_btn.isEnabled()
    with qtbot.waitSignal(worker.aborted, timeout=60_000):
        qtbot.waitUntil(lambda: w.progress.value() > 0, timeout=60_000)
        w.cancel_btn.click()
    qtbot.waitUntil(lambda: w.compute_btn.isEnabled(), timeout=10_000)
    assert w.result is None and w.status.text() == "cancelled"
