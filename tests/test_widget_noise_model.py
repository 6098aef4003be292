"""The "Noise model" dock widget in a viewer (under Xvfb): layers or files in, worker with
progress and cancel, plots and saved outputs; a screenshot is written for inspection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from napari_cryodiag.simulate.particles import simulate_particles, write_particle_set

pytestmark = pytest.mark.viewer

SHOT_DIR = Path(os.environ.get("CRYODIAG_SCREENSHOTS", "/tmp"))


@pytest.fixture
def particle_set(tmp_path):
    sim = simulate_particles(n=90, box=48, pixel_size_A=2.5, noise="coloured", seed=31)
    return sim, write_particle_set(sim, tmp_path / "set")


def test_widget_from_layers_with_relion_model(make_napari_viewer, qtbot, particle_set, shared_data, tmp_path):
    from napari_cryodiag.widgets.noise_model import NoiseModelWidget

    sim, paths = particle_set
    viewer = make_napari_viewer(show=True)
    viewer.open(str(paths["star"]), plugin="napari-cryodiag")
    viewer.open(str(paths["map"]), plugin="napari-cryodiag")
    w = NoiseModelWidget(viewer)
    viewer.window.add_dock_widget(w, name="Noise model", area="right")
    # the reader's layers are offered, the table layer and the 3D map
    assert w.particles_combo.currentText() == "particles.star"
    assert w.map_combo.currentText() == "particles_map.mrc"
    w.chunk_size.setValue(16)
    worker = w.compute()
    assert worker is not None
    qtbot.waitUntil(lambda: w.result is not None, timeout=60_000)
    nm = w.result
    assert nm.n_images == 90 and nm.box == 48
    rel = nm.noise_variance / sim.noise_spectrum - 1
    assert np.all(np.abs(rel) < 4.5 * nm.relative_standard_error())
    assert "90 particles" in w.summary.text()
    # every view draws
    for view in ("basic", "advanced (2D)", "overview"):
        w.view_combo.setCurrentText(view)
        assert len(w.canvas.figure.axes) >= 1
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "noise_model_widget.png"))
    # RELION spectra from the real tutorial model
    w.set_inputs(model=str(shared_data / "relion13-tutorial/Class2D/manual_it025_model.star"))
    spectra = w.load_model()
    assert len(spectra) == 3 and w.view_combo.currentText() == "RELION σ²"
    ax = w.canvas.figure.axes[0]
    assert len(ax.get_lines()) == 3
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata()[0], 1.482587e-04)
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "noise_model_widget_relion.png"))
    # outputs
    fig_path = w.save_figure(tmp_path / "fig.png")
    assert fig_path.stat().st_size > 10_000
    data = json.loads(w.save_json(tmp_path / "n.json").read_text())
    assert len(data["noise_model"]["noise_variance"]) == 25
    assert data["relion_sigma2_noise"]["groups"]["Micrographs/Falcon_2012_06_12-14_33_35_0.mrc"]["particles"] == 409


def test_widget_from_files_and_cancel(make_napari_viewer, qtbot, particle_set):
    from napari_cryodiag.widgets.noise_model import FROM_FILE, NoiseModelWidget

    sim, paths = particle_set
    viewer = make_napari_viewer()
    w = NoiseModelWidget(viewer)
    assert w.particles_combo.currentText() == FROM_FILE
    w.set_inputs(particles=str(paths["star"]), map_path=str(paths["map"]), stack=str(paths["stack"]))
    w.scale_combo.setCurrentText("per_image")
    w.max_particles.setValue(40)
    w.compute()
    qtbot.waitUntil(lambda: w.result is not None, timeout=60_000)
    assert w.result.n_images == 40 and w.result.scale_mode == "per_image"
    # cancel: the worker stops at the next chunk boundary, no result
    w.chunk_size.setValue(1)
    w.max_particles.setValue(0)
    worker = w.compute()
    assert w.cancel_btn.isEnabled()
    with qtbot.waitSignal(worker.aborted, timeout=60_000):
        w.cancel_btn.click()
    qtbot.waitUntil(lambda: not w.cancel_btn.isEnabled(), timeout=10_000)
    assert w.result is None
    assert "cancelled" in w.summary.text()


def test_widget_bad_input_is_reported(make_napari_viewer, tmp_path):
    from napari_cryodiag.widgets.noise_model import NoiseModelWidget

    viewer = make_napari_viewer()
    w = NoiseModelWidget(viewer)
    assert w.compute() is None  # no inputs: an error notification, no worker
    w.set_inputs(model=str(tmp_path / "missing_model.star"))
    assert w.load_model() is None
