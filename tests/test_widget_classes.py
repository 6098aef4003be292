"""The "Classes" dock in a viewer, driven as a user drives it: particle sets and model.star from
the open tables or the file pickers, Compute in a worker (progress, cancel), the class table
(thumbnails large enough to judge a class, every row reachable, clicks select classes), the
class-average layer (order, pixel size, labels that go with it), and the export of a selection."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

pytest.importorskip("napari")

from napari_cryodiag.widgets.classes import LABELS_NAME, LAYER_NAME, ClassesWidget  # noqa: E402
from napari_cryodiag.widgets.classes.table_panel import THUMB_MIN_PX  # noqa: E402
from napari_cryodiag.widgets._layers import text_overlay  # noqa: E402

pytestmark = pytest.mark.viewer


def _not_blank(img: np.ndarray) -> bool:
    rgb = np.asarray(img)[::3, ::3, :3].astype(np.float32)
    grey = rgb.sum(axis=-1)
    return rgb.std() > 5 and np.unique(grey).size > 50


def _click_row(qtbot, w, cls):
    """A mouse click on the row of class ``cls`` of the class table."""
    view = w.table.view
    row = next(r for r in range(view.rowCount()) if int(view.item(r, 0).data(Qt.ItemDataRole.DisplayRole)) == cls)
    view.scrollToItem(view.item(row, 1))
    qtbot.wait(10)
    rect = view.visualItemRect(view.item(row, 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _compute(w):
    worker = w.compute()
    assert worker is not None, w.status.value
    w.wait()
    assert not w.busy
    return worker


def _add_table(viewer, table, images=None, name="simulated"):
    from napari_cryodiag.widgets._tables import OpenTable, tables_of

    return tables_of(viewer).add(OpenTable(name=name, kind="particles", table=table,
                                           data={} if images is None else {"images": images}))


def test_widget_real_relion_class2d(make_napari_viewer, qtbot, shared_data, tmp_path):
    from napari_cryodiag.workflows.classes import class_diagnostics

    d = shared_data / "relion13-tutorial" / "Class2D"
    viewer = make_napari_viewer(show=True)
    w = ClassesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Classes")
    # the particles and the model.star through the file pickers
    w.inputs.particles_file.value = d / "manual_it025_data.star"
    w.inputs.model_file.value = d / "manual_it025_model.star"
    assert w.inputs.particles.value.path == str(d / "manual_it025_data.star")
    assert w.inputs.model.value.path == str(d / "manual_it025_model.star")
    _compute(w)
    r = w.result
    ref = class_diagnostics(str(d / "manual_it025_data.star"), model=str(d / "manual_it025_model.star"))
    assert dict(zip(r.summary["class"], r.summary["count"])) == dict(zip(ref.summary["class"], ref.summary["count"]))
    assert w.table.view.rowCount() == 10
    # why there is no FRC is said once, above the table, not in a column of every row
    assert "no particle images" in w.table.note.value
    headers = [w.table.view.horizontalHeaderItem(c).text() for c in range(w.table.view.columnCount())]
    assert "note" not in headers and "nSig" in headers  # RELION: significant samples, not an ESS
    # thumbnails large enough to judge a class: a 100-px average at its own size
    assert w.table.thumb_px >= THUMB_MIN_PX and w.table.view.iconSize().width() >= 96
    icon = w.table.view.item(0, 0).data(Qt.ItemDataRole.DecorationRole)
    assert min(icon.availableSizes()[0].width(), icon.availableSizes()[0].height()) >= 96
    assert w.table.view.rowHeight(0) >= 96
    # every row is reachable: the table scrolls to the last one
    view = w.table.view
    view.scrollToItem(view.item(9, 0))
    qtbot.wait(10)
    assert view.viewport().rect().contains(view.visualItemRect(view.item(9, 0)).center())

    layer = viewer.layers[LAYER_NAME]
    assert layer.data.shape == (10, 100, 100)
    assert layer.scale[-1] == pytest.approx(3.54)
    counts = dict(zip(r.summary["class"], r.summary["count"]))
    # stack sorted by count (default): classes in decreasing count, the table in the same order
    order = layer.metadata["cryodiag"]["classes"]
    assert [counts[c] for c in order] == sorted(counts.values(), reverse=True)
    assert w.table.classes_in_order() == order
    np.testing.assert_array_equal(layer.data[0], r.averages[order[0] - 1])
    # the text overlay names the class on screen, and follows the slider
    viewer.dims.set_current_step(0, 0)
    assert text_overlay(viewer).text.startswith(f"#{order[0]}  n={counts[order[0]]}")
    assert "nSig" in text_overlay(viewer).text
    viewer.dims.set_current_step(0, 3)
    assert text_overlay(viewer).text.startswith(f"#{order[3]}  n={counts[order[3]]}")
    # sort by class, then show a tiled grid
    w.sort_by.value = "class"
    assert viewer.layers[LAYER_NAME].metadata["cryodiag"]["classes"] == list(range(1, 11))
    assert w.table.classes_in_order() == list(range(1, 11))
    w.layer_panel.mode.value = "tiled grid"
    assert viewer.layers[LAYER_NAME].data.ndim == 2
    labels = viewer.layers[LABELS_NAME]
    assert len(labels.data) == 10 and labels.features["label"][0].startswith("#1  n=36\nFRC n/a")
    # select two classes by clicking their rows, then export
    _click_row(qtbot, w, 2)
    _click_row(qtbot, w, 4)
    assert w.selected == {2, 4} and w.export_panel.export_button.enabled
    assert "555" in w.export_panel.selection_label.value  # 264 + 291 particles
    selected_rows = {w.table.view.item(i.row(), 0).text() for i in w.table.view.selectedIndexes()}
    assert selected_rows == {"2", "4"}
    # a second click unselects
    _click_row(qtbot, w, 4)
    assert w.selected == {2}
    _click_row(qtbot, w, 4)
    w.export_panel.selection_file.value = tmp_path / "sel.star"
    w.export_panel.export_button.clicked.emit()
    from napari_cryodiag.io.picks import read_table

    back = read_table(tmp_path / "sel.star")
    assert len(back) == 555 and set(back["class"]) == {2, 4}
    # never over the input
    assert w.export_selected(str(d / "manual_it025_data.star"), overwrite=True) is None
    # screenshots: the viewer with the layer and the widget are not blank
    w.tabs.setCurrentIndex(0)
    qtbot.wait(100)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert _not_blank(shot)
    img = w.grab().toImage()
    img.save(str(tmp_path / "classes_widget.png"))
    import os

    w.grab().save(os.path.join(os.environ.get("CRYODIAG_SCREENSHOTS", "/tmp"), "classes_widget_relion.png"))
    from matplotlib.image import imread

    assert _not_blank(imread(str(tmp_path / "classes_widget.png")) * 255)
    # the labels go with their layer (and the overlay)
    viewer.layers.remove(viewer.layers[LAYER_NAME])
    assert LABELS_NAME not in viewer.layers and not text_overlay(viewer).visible


def test_model_star_and_averages_from_the_open_files(make_napari_viewer, qtbot, shared_data):
    """File > Open of the three files of a RELION Class2D run: the particles, the model.star of
    the same run and the averages (one image per class) are chosen; the averages keep the
    model's pixel size."""
    d = shared_data / "relion13-tutorial" / "Class2D"
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    for f in ("manual_it025_model.star", "manual_it025_classes.mrcs", "manual_it025_data.star"):
        viewer.open(str(d / f), plugin="napari-cryodiag")
    assert w.inputs.particles.value.path == str(d / "manual_it025_data.star")
    assert w.inputs.model.value is not None and w.inputs.model.value.path == str(d / "manual_it025_model.star")
    assert w.inputs.averages.value.name == "manual_it025_classes.mrcs"
    _compute(w)
    assert w.result.averages_source == "manual_it025_classes.mrcs"
    assert w.result.averages_pixel_size_A == pytest.approx(3.54)  # the header says 0: the model's
    assert viewer.layers[LAYER_NAME].scale[-1] == pytest.approx(3.54)


def test_widget_simulated_frc_and_table_selection(make_napari_viewer, qtbot, tmp_path):
    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=2, n_particles=300, n_classes=4, n_junk=1, box=40)
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Classes")
    item = _add_table(viewer, sim.table, sim.images)
    assert w.inputs.particles.value is item  # a particle set just opened is the one chosen
    # the simulated averages as a stack layer with its pixel size: the output keeps it
    viewer.add_image(np.asarray(sim.averages, np.float32), name="my averages",
                     scale=(1.0, sim.pixel_size_A, sim.pixel_size_A),
                     metadata={"cryodiag": {"kind": "stack", "pixel_size_A": sim.pixel_size_A}})
    w.inputs.averages.value = viewer.layers["my averages"]
    w.inputs.options.bins.value = 20
    _compute(w)
    assert len(w.result.histograms["best_prob"].counts) == 20
    s = w.result.summary
    assert s["frc_resolution_A"].notna().all()
    junk = sim.truth["junk_classes"][0]
    assert s.set_index("class")["frc_resolution_A"].idxmax() == junk
    assert viewer.layers[LAYER_NAME].data.shape == (4, 40, 40)
    assert viewer.layers[LAYER_NAME].scale[-1] == pytest.approx(sim.pixel_size_A)
    assert "FRC Å" in [w.table.view.horizontalHeaderItem(c).text() for c in range(w.table.view.columnCount())]
    # sorting by resolution puts the junk class last in the layer and the table
    w.sort_by.value = "resolution"
    assert viewer.layers[LAYER_NAME].metadata["cryodiag"]["classes"][-1] == junk
    assert w.table.classes_in_order()[-1] == junk
    # selecting rows of the table selects classes
    w.table.view.selectRow(0)
    qtbot.wait(10)
    assert len(w.selected) == 1
    w.set_selection([1, 2])
    out = w.export_selected(str(tmp_path / "good.star"))
    assert out is not None
    w.tabs.setCurrentIndex(2)
    qtbot.wait(100)
    assert len(w.plots.frc.figure.axes[0].get_lines()) >= 4
    w.grab().save(str(tmp_path / "classes_frc.png"))
    assert w.controls.native.isHidden()
    paths = w.export_panel.save_figures(tmp_path / "figs")
    assert {"class_histograms.png", "class_grid.png", "class_frc.png", "classes.json"} <= {p.name for p in paths}



def test_class_averages_beside_micrographs_are_put_on_screen(make_napari_viewer, qtbot):
    """Class averages 40 px wide computed in a viewer that shows 2,048 px micrographs: the new layer
    is fitted to the canvas (not a speck in a corner); a double-click on a class's row moves the
    slider to that class (the overlay names it) and fits the canvas again after the user panned
    away, and leaves the class selection as it was."""
    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=2, n_particles=300, n_classes=4, n_junk=1, box=40)
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((3, 2048, 2048), np.float32), name="micrographs")
    w = ClassesWidget(viewer)
    viewer.window.add_dock_widget(w, name="Classes")
    _add_table(viewer, sim.table, sim.images)
    viewer.add_image(np.asarray(sim.averages, np.float32), name="my averages",
                     scale=(1.0, sim.pixel_size_A, sim.pixel_size_A),
                     metadata={"cryodiag": {"kind": "stack", "pixel_size_A": sim.pixel_size_A}})
    w.inputs.averages.value = viewer.layers["my averages"]
    viewer.reset_view()  # the user's view: the whole 2,048 px canvas
    zoom_all = viewer.camera.zoom
    _compute(w)
    layer = viewer.layers[LAYER_NAME]
    (y0, x0), (y1, x1) = layer.extent.world[0][-2:], layer.extent.world[1][-2:]
    cy, cx = viewer.camera.center[-2:]
    assert y0 <= cy <= y1 and x0 <= cx <= x1  # centred on the averages
    # and zoomed in to them: 40 px x 2.9 Å against 2,048 px, fitted to the canvas's shorter side
    assert viewer.camera.zoom > 5 * zoom_all
    fitted = viewer.camera.zoom
    classes = layer.metadata["cryodiag"]["classes"]
    target = classes[2]
    viewer.camera.center = (0.0, 1500.0, 1500.0)  # the user pans back to the micrographs
    viewer.camera.zoom = zoom_all
    w.set_selection([classes[0]])
    before = set(w.selected)
    view = w.table.view
    row = next(r for r in range(view.rowCount()) if int(view.item(r, 0).data(Qt.ItemDataRole.DisplayRole)) == target)
    view.scrollToItem(view.item(row, 1))
    qtbot.wait(10)
    # a double click as the window system delivers it: press, release, double-click, release
    pos = view.visualItemRect(view.item(row, 1)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.wait(50)
    assert set(w.selected) == before  # a double click shows, it does not select
    assert int(round(layer.world_to_data(viewer.dims.point[-3:])[0])) == classes.index(target)
    assert text_overlay(viewer).text.startswith(f"#{target} ")
    assert viewer.layers.selection.active is layer
    cy, cx = viewer.camera.center[-2:]
    assert y0 <= cy <= y1 and x0 <= cx <= x1 and viewer.camera.zoom == pytest.approx(fitted)


def test_widget_reports_bad_input(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    assert w.compute() is None  # nothing chosen
    assert "choose a particle file" in w.status.value
    bad = tmp_path / "picks.star"
    bad.write_text("data_\n\nloop_\n_rlnCoordinateX #1\n1.0\n")
    w.inputs.particles_file.value = bad
    assert w.inputs.particles.value is not None
    w.compute()
    w.wait()
    assert w.status.value.startswith("error") and "picks.star" in w.status.value and "class" in w.status.value
    assert w.result is None


def test_widget_double_click_and_cancel(make_napari_viewer, qtbot):
    import pandas as pd

    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=3, n_particles=200, n_classes=3, n_junk=1, box=32)
    reps = 40  # 8,000 particles: long enough to cancel midway
    t = pd.concat([sim.table] * reps, ignore_index=True)
    t["image_index"] = np.arange(len(t)) % len(sim.table)
    t.attrs = dict(sim.table.attrs)
    viewer = make_napari_viewer()
    w = ClassesWidget(viewer)
    _add_table(viewer, t, sim.images, name="big")
    w.compute_button.clicked.emit()
    worker = w._workers[0]
    w.compute_button.clicked.emit()  # a double click starts one job
    assert len(w._workers) == 1 and not w.compute_button.enabled and w.compute() is None
    assert w.controls.cancel.enabled
    with qtbot.waitSignal(worker.aborted, timeout=60_000):
        qtbot.waitUntil(lambda: w.controls.progress.value > 0, timeout=60_000)
        w.controls.cancel.clicked.emit()
    w.wait()
    assert w.compute_button.enabled
    assert w.result is None and w.status.value == "cancelled"
