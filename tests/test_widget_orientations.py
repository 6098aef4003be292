"""The "Orientations" dock widget: docks, computes in a worker, draws non-blank plots, saves figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("napari")

from napari_cryodiag.widgets.orientations import OrientationsWidget  # noqa: E402


def _not_blank(img: np.ndarray) -> bool:
    rgb = np.asarray(img)[..., :3].astype(float)
    return rgb.std() > 5 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50


@pytest.mark.viewer
def test_widget_real_cryosparc_with_half_maps(make_napari_viewer, qtbot, shared_data, tmp_path):
    from napari_cryodiag.simulate.orientations import anisotropic_half_maps

    viewer = make_napari_viewer()
    w = OrientationsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Orientations")
    h1, h2 = anisotropic_half_maps(40, 2.0, extra_bfactor_A2=2000.0, seed=2)
    viewer.add_image(h1, name="half1", scale=(2.0, 2.0, 2.0))
    viewer.add_image(h2, name="half2", scale=(2.0, 2.0, 2.0))
    w.load_file(shared_data / "cryosparc" / "cryosparc_P12_J24_001_particles.cs")
    assert len(w.current_table()) == 2019
    w.half1_combo.setCurrentText("half1")
    w.half2_combo.setCurrentText("half2")
    w.radius_spin.setValue(24)  # fewer shell points than the default box/4 = 45: a faster test
    worker = w.compute()
    assert worker is not None
    qtbot.waitUntil(lambda: w.result is not None, timeout=60_000)
    r = w.result
    assert r.n_particles == 2019 and r.box_px == 180 and r.radius_px == 24
    assert 0.45 < r.scf.scf_star < 0.6  # measured 0.543 at R = 24
    assert r.cfsc is not None and r.cfsc.cfar < 0.5 and r.cfsc.pixel_size_A == 2.0
    assert "SCF* = 0.5" in w.status.text() and "cFAR" in w.status.text()
    # one plot per tab (axes + colour bar), saved files exist and JSON has the numbers
    assert len(w.viewing_canvas.figure.axes) == 2 and len(w.sampling_canvas.figure.axes) == 2
    assert len(w.cfar_canvas.figure.axes) >= 3
    paths = w.save_figures(tmp_path)
    names = sorted(p.name for p in paths)
    assert "conical_fsc.png" in names and "viewing_directions.png" in names and "orientations.json" in names
    data = json.loads((tmp_path / "orientations.json").read_text())
    assert data["scf"]["scf_star"] == pytest.approx(r.scf.scf_star)
    assert data["cfar"]["cfar"] == pytest.approx(r.cfsc.cfar)
    # look at it: the dock widget is not blank
    w.tabs.setCurrentIndex(1)  # Fourier sampling
    qtbot.wait(100)
    shot = w.grab().toImage()
    from qtpy.QtGui import QImage

    shot = shot.convertToFormat(QImage.Format.Format_RGBA8888)
    arr = np.frombuffer(shot.constBits().asstring(shot.sizeInBytes()), np.uint8).reshape(shot.height(), shot.width(), 4)
    assert _not_blank(arr)
    shot.save("/tmp/orientations_widget.png")


@pytest.mark.viewer
def test_widget_table_from_a_layer_and_cancel(make_napari_viewer, qtbot):
    from napari_cryodiag.simulate.orientations import preferred_orientation_poses

    viewer = make_napari_viewer()
    w = OrientationsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Orientations")
    # without a table, compute refuses
    assert w.compute() is None
    table = preferred_orientation_poses(50_000, 0.8, 10, seed=1, ctf=True)
    viewer.add_points(np.zeros((1, 2)), name="particles", metadata={"cryodiag": {"kind": "picks", "table": table}})
    assert w.source_combo.currentText() == "particles"
    assert w.current_table() is table
    w.method_combo.setCurrentText("binned")
    w.compute()
    qtbot.waitUntil(lambda: w.result is not None, timeout=60_000)
    r = w.result
    assert r.scf.method == "binned" and r.scf.scf_star < 0.81
    assert r.maps.posterior_precision is not None and r.cfsc is None
    # the posterior precision is below the Fourier sampling: weights <CTF²> are at most 1
    assert (r.maps.posterior_precision <= r.maps.fourier_sampling + 1e-9).all()
    # cancel: a new run quit before its first yield is aborted and leaves the old result in place
    old = w.result
    worker = w.compute()
    aborted = []
    worker.aborted.connect(lambda: aborted.append(True))
    worker.quit()
    qtbot.waitUntil(lambda: bool(aborted), timeout=60_000)
    qtbot.wait(50)
    assert w.result is old
    assert w.compute_button.isEnabled() and not w.cancel_button.isEnabled()
