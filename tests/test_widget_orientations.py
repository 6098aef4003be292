"""The "Orientations" dock: particle sets from the open tables, a picks layer or the file picker,
half maps (never class-average stacks) for cFAR, options through the magicgui form, a worker
with cancel, non-blank plots, saved figures."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("napari")

from napari_cryodiag.widgets.orientations import OrientationsWidget  # noqa: E402

pytestmark = pytest.mark.viewer


def _not_blank(img: np.ndarray) -> bool:
    rgb = np.asarray(img)[..., :3].astype(float)
    return rgb.std() > 5 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50


def test_widget_real_cryosparc_with_half_maps(make_napari_viewer, qtbot, shared_data, tmp_path):
    from napari_cryodiag.simulate.orientations import anisotropic_half_maps
    from napari_cryodiag.workflows.orientations import orientation_diagnostics

    viewer = make_napari_viewer()
    w = OrientationsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Orientations")
    h1, h2 = anisotropic_half_maps(40, 2.0, extra_bfactor_A2=2000.0, seed=2)
    viewer.add_image(h1, name="half1", scale=(2.0, 2.0, 2.0))
    viewer.add_image(h2, name="half2", scale=(2.0, 2.0, 2.0))
    # class averages (a 2D stack, opened or added) are never offered as half maps
    viewer.open(str(shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_classes.mrcs"),
                plugin="napari-cryodiag")
    viewer.add_image(np.zeros((10, 100, 100), np.float32), name="another stack")
    assert set(w.half1.choices) == {None, viewer.layers["half1"], viewer.layers["half2"]}
    assert (w.half1.value.name, w.half2.value.name) == ("half1", "half2")  # the pair, by default
    w.particles_file.value = shared_data / "cryosparc" / "cryosparc_P12_J24_001_particles.cs"
    assert len(w.current_table()) == 2019
    w.options.radius_px.value = 24  # fewer shell points than the default box/4 = 45: a faster test
    worker = w.compute()
    assert worker is not None
    w.wait()
    r = w.result
    assert r.n_particles == 2019 and r.box_px == 180 and r.radius_px == 24
    assert 0.45 < r.scf.scf_star < 0.6  # measured 0.543 at R = 24
    assert r.cfsc is not None and r.cfsc.cfar < 0.5 and r.cfsc.pixel_size_A == 2.0
    ref = orientation_diagnostics(shared_data / "cryosparc" / "cryosparc_P12_J24_001_particles.cs", radius_px=24)
    assert r.scf.scf_star == pytest.approx(ref.scf.scf_star)
    assert "SCF* = 0.5" in w.status.value and "cFAR" in w.status.value
    # one plot per tab (axes + colour bar), saved files exist and JSON has the numbers
    assert len(w.viewing_canvas.figure.axes) == 2 and len(w.sampling_canvas.figure.axes) == 2
    assert len(w.cfar_canvas.figure.axes) >= 3
    w.figures_folder.value = tmp_path
    w.save_button.clicked.emit()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "conical_fsc.png" in names and "viewing_directions.png" in names and "orientations.json" in names
    data = json.loads((tmp_path / "orientations.json").read_text())
    assert data["scf"]["scf_star"] == pytest.approx(r.scf.scf_star)
    assert data["cfar"]["cfar"] == pytest.approx(r.cfsc.cfar)
    # look at it: the dock widget is not blank
    for i in (1, 4):  # Fourier sampling, cone FSCs
        w.tabs.setCurrentIndex(i)
        qtbot.wait(100)
        shot = w.grab().toImage()
        from qtpy.QtGui import QImage

        shot = shot.convertToFormat(QImage.Format.Format_RGBA8888)
        arr = np.frombuffer(shot.constBits().asstring(shot.sizeInBytes()), np.uint8).reshape(
            shot.height(), shot.width(), 4)
        assert _not_blank(arr)
        shot.save(os.path.join(os.environ.get("CRYODIAG_SCREENSHOTS", "/tmp"), f"orientations_widget_{i}.png"))


def test_widget_table_from_a_layer_double_click_and_cancel(make_napari_viewer, qtbot):
    from napari_cryodiag.simulate.orientations import preferred_orientation_poses
    from napari_cryodiag.workflows.orientations import OrientationsOptions, orientation_diagnostics

    viewer = make_napari_viewer()
    w = OrientationsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Orientations")
    # without a table, compute refuses
    assert w.compute() is None and "choose a particle set" in w.status.value
    table = preferred_orientation_poses(50_000, 0.8, 10, seed=1, ctf=True)
    layer = viewer.add_points(np.zeros((1, 2)), name="particles",
                              metadata={"cryodiag": {"kind": "picks", "table": table}})
    assert w.particles.value.layer is layer
    assert w.current_table() is table
    w.options.method.value = "binned"
    w.options.n_azimuth.value = 36
    # a double click starts one job
    w.compute_button.clicked.emit()
    w.compute_button.clicked.emit()
    assert len(w._workers) == 1
    w.wait()
    r = w.result
    assert r.scf.method == "binned" and r.scf.scf_star < 0.81
    assert r.histogram.counts.shape[1] == 36  # azimuth bins from the form
    ref = orientation_diagnostics(table, OrientationsOptions(method="binned", n_azimuth=36))
    assert r.scf.scf_star == pytest.approx(ref.scf.scf_star)
    assert r.maps.posterior_precision is not None and r.cfsc is None
    # the posterior precision is below the Fourier sampling: weights <CTF²> are at most 1
    assert (r.maps.posterior_precision <= r.maps.fourier_sampling + 1e-9).all()
    # renaming the layer keeps the choice
    layer.name = "renamed particles"
    assert w.particles.value.layer is layer and "renamed particles" in w.particles.native.currentText()
    # cancel: a new run quit before its first yield is aborted and leaves the old result in place
    old = w.result
    worker = w.compute()
    aborted = []
    worker.aborted.connect(lambda: aborted.append(True))
    w.controls.cancel.clicked.emit()
    qtbot.waitUntil(lambda: bool(aborted), timeout=60_000)
    w.wait()
    assert w.result is old
    assert w.compute_button.enabled and not w.controls.cancel.enabled
