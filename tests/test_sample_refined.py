"""The "Simulated refined particles and map" sample, as a user opens it from File > Open Sample:
the Orientations and Noise model docks (from the Plugins menu) choose it and recover its truth."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.viewer


def test_refined_sample_in_orientations_and_noise_model(make_napari_viewer, qtbot):
    from napari_cryodiag._sample_data import SAMPLE_N_REFINED

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryodiag", "half_maps")  # other maps open first: the docks must still choose right
    viewer.open_sample("napari-cryodiag", "refined_particles")
    assert [ly.name for ly in viewer.layers][-1] == "simulated refined map"
    _, noise = viewer.window.add_plugin_dock_widget("napari-cryodiag", "Noise model")
    assert noise.particles.value.name == "simulated refined particles"
    assert noise.map.value.name == "simulated refined map"
    truth = noise.particles.value.data["truth"]
    noise.options.chunk_size.value = 128
    assert noise.compute() is not None
    noise.wait()
    nm = noise.result
    assert nm is not None and nm.n_images == SAMPLE_N_REFINED and nm.box == 64
    # white noise of the simulated variance, per shell, within the model's own standard error
    spectrum = np.asarray(truth["noise_spectrum"])
    rel = nm.noise_variance / spectrum - 1
    assert np.all(np.abs(rel) < 4.5 * nm.relative_standard_error())

    _, orient = viewer.window.add_plugin_dock_widget("napari-cryodiag", "Orientations")
    assert orient.particles.value.name == "simulated refined particles"
    assert orient.compute() is not None
    orient.wait()
    s = orient.result
    assert s is not None and s.n_particles == SAMPLE_N_REFINED
    assert s.box_px == 64 and s.radius_px == 16 and s.radius_source == "box 64 px / 4"  # the box of its images
    # poses uniform on the sphere: no preferred orientation
    assert s.scf.scf_star > 0.81 and not s.scf.preferred_orientation
