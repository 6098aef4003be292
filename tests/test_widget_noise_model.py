"""The "Noise model" dock in a viewer (under Xvfb): particle sets from the open tables or the file
pickers, the map as a layer, the options through the magicgui form, a worker with progress and
cancel, plots, RELION's spectra from a model.star, saved outputs; a screenshot is written for
inspection."""

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
    from napari_cryodiag.workflows.noise import NoiseOptions, iter_noise_model
    from napari_cryodiag.compute.progress import run_steps

    sim, paths = particle_set
    viewer = make_napari_viewer(show=True)
    viewer.open(str(paths["star"]), plugin="napari-cryodiag")
    viewer.open(str(paths["map"]), plugin="napari-cryodiag")
    w = NoiseModelWidget(viewer)
    viewer.window.add_dock_widget(w, name="Noise model", area="right")
    # the particle set opened as a table and the 3D map are offered, and chosen
    assert w.particles.value.name == "particles.star"
    assert w.map.value.name == "particles_map.mrc"
    w.options.chunk_size.value = 16
    worker = w.compute()
    assert worker is not None
    w.wait()
    nm = w.result
    assert nm.n_images == 90 and nm.box == 48
    rel = nm.noise_variance / sim.noise_spectrum - 1
    assert np.all(np.abs(rel) < 4.5 * nm.relative_standard_error())
    ref = run_steps(iter_noise_model(str(paths["star"]), str(paths["map"]), NoiseOptions(chunk_size=16)))
    np.testing.assert_allclose(nm.noise_variance, ref.noise_variance, rtol=1e-5)
    assert "90 particles" in w.summary.value
    # every view draws
    for view in ("basic", "advanced (2D)", "overview"):
        w.view.value = view
        assert len(w.canvas.figure.axes) >= 1
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "noise_model_widget.png"))
    # RELION spectra from the real tutorial model (the file picker; the spectra show at once)
    w.model_file.value = shared_data / "relion13-tutorial/Class2D/manual_it025_model.star"
    assert w.model.value is not None and w.view.value == "RELION σ²"
    assert len(w.relion["spectra"]) == 3
    ax = w.canvas.figure.axes[0]
    assert len(ax.get_lines()) == 3
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata()[0], 1.482587e-04)
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "noise_model_widget_relion.png"))
    # outputs
    w.save_figure.value = tmp_path / "fig.png"
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    w.save_numbers.value = tmp_path / "n.json"
    data = json.loads((tmp_path / "n.json").read_text())
    assert len(data["noise_model"]["noise_variance"]) == 25
    assert data["relion_sigma2_noise"]["groups"]["Micrographs/Falcon_2012_06_12-14_33_35_0.mrc"]["particles"] == 409
    # a model.star opened with File > Open is offered from the open tables
    w.model.value = None
    assert w.relion is None
    viewer.open(str(shared_data / "relion13-tutorial/Class2D/manual_it025_model.star"), plugin="napari-cryodiag")
    assert w.model.value is not None and w.relion is not None


def test_widget_from_files_double_click_and_cancel(make_napari_viewer, qtbot, particle_set):
    from napari_cryodiag.widgets.noise_model import NoiseModelWidget

    sim, paths = particle_set
    viewer = make_napari_viewer()
    w = NoiseModelWidget(viewer)
    assert w.particles.value is None and w.map.value is None
    w.set_inputs(particles=str(paths["star"]), map_path=str(paths["map"]), stack=str(paths["stack"]))
    assert w.particles.value.path == str(paths["star"]) and w.map.value.name == "particles_map.mrc"
    w.options.scale.value = "per_image"
    w.options.max_particles.value = 40
    w.compute_button.clicked.emit()
    w.compute_button.clicked.emit()  # a double click starts one job
    assert len(w._workers) == 1
    w.wait()
    assert w.result.n_images == 40 and w.result.scale_mode == "per_image"
    assert np.ndim(w.result.scale) == 1 and len(w.result.scale) == 40
    # cancel: the worker stops at the next chunk boundary, no result
    w.options.chunk_size.value = 1
    w.options.max_particles.value = 0
    worker = w.compute()
    assert w.controls.cancel.enabled
    with qtbot.waitSignal(worker.aborted, timeout=60_000):
        w.controls.cancel.clicked.emit()
    w.wait()
    assert not w.controls.cancel.enabled
    assert w.result is None
    assert "cancelled" in w.summary.value


def test_widget_bad_input_is_reported(make_napari_viewer, tmp_path):
    from napari_cryodiag.widgets.noise_model import NoiseModelWidget

    viewer = make_napari_viewer()
    w = NoiseModelWidget(viewer)
    assert w.compute() is None  # no inputs: an error message, no worker
    assert "choose a particle set" in w.summary.value
    w.model_file.value = tmp_path / "missing_model.star"
    assert w.model.value is None and w.relion is None and "missing_model.star" in w.status.value
    assert w.load_model() is None
