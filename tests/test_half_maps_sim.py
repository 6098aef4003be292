"""The half-map simulator: known FSC, resolution and B-factor; pathologies change what they should."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.fourier import shell_counts, shell_index
from napari_cryodiag.compute.maps.fsc import fsc
from napari_cryodiag.simulate.half_maps import simulate_half_maps


def test_defaults_are_a_clean_sample():
    sim = simulate_half_maps()
    assert sim.half1.shape == (96, 96, 96) and sim.half1.dtype == np.float32
    assert sim.mask.min() >= 0 and sim.mask.max() == 1.0
    assert sim.pixel_size_A == 1.5
    assert sim.truth["resolution_A"] == 4.5 and sim.truth["bfactor_A2"] == 60.0


def test_unmasked_fsc_follows_the_truth():
    sim = simulate_half_maps(box=64, pixel_size_A=2.0, resolution_A=7.0, seed=3)
    c = fsc(sim.half1, sim.half2)
    counts = shell_counts(shell_index(sim.half1.shape), 64)
    band = 4 / np.sqrt(counts) + 0.02
    assert np.all(np.abs(c - sim.truth["fsc_unmasked"])[1:] < band[1:])


def test_duplicates_truth_has_the_shared_noise_tail():
    sim = simulate_half_maps(box=64, pixel_size_A=2.0, resolution_A=8.0, pathology="duplicates", duplicate_fraction=0.15)
    c = fsc(sim.half1, sim.half2)
    assert c[-8:].mean() == pytest.approx(0.15, abs=0.03)
    assert sim.truth["fsc_unmasked"][-1] == pytest.approx(0.15, abs=0.01)


def test_seeded():
    a = simulate_half_maps(box=48, seed=5)
    b = simulate_half_maps(box=48, seed=5)
    np.testing.assert_array_equal(a.half1, b.half1)
    assert not np.array_equal(a.half1, simulate_half_maps(box=48, seed=6).half1)


def test_unknown_pathology():
    with pytest.raises(ValueError, match="pathology"):
        simulate_half_maps(box=32, pathology="gremlins")
