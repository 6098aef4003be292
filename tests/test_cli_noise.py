"""``cryodiag noise`` end to end: simulated particle set on disk, and a real RELION model.star."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from napari_cryodiag.cli import main
from napari_cryodiag.simulate.particles import simulate_particles, write_particle_set


def test_noise_from_particles_star(tmp_path, capsys):
    sim = simulate_particles(n=120, box=48, pixel_size_A=2.5, noise="coloured", seed=21)
    paths = write_particle_set(sim, tmp_path / "in")
    out = tmp_path / "out"
    rc = main(["noise", "--particles", str(paths["star"]), "--map", str(paths["map"]), "-o", str(out),
               "--chunk-size", "32", "--quiet"])
    assert rc == 0
    assert (out / "noise_basic.png").stat().st_size > 10_000
    assert (out / "noise_advanced.png").stat().st_size > 10_000
    res = json.loads((out / "noise.json").read_text())["noise_model"]
    assert res["n_images"] == 120 and res["box_px"] == 48
    np.testing.assert_allclose(res["frequency_invA"], np.arange(25) / (48 * 2.5))
    v = np.array(res["noise_variance"])
    se = np.array(res["relative_standard_error"])
    assert np.all(np.abs(v / sim.noise_spectrum - 1) < 4.5 * se)
    np.testing.assert_allclose(res["relion_sigma2_noise"], v / (2 * 48**2))
    assert res["scale"] == pytest.approx(1.0, abs=0.03)
    # outputs are not replaced without --overwrite
    rc = main(["noise", "--particles", str(paths["star"]), "--map", str(paths["map"]), "-o", str(out), "--quiet"])
    assert rc == 2 and "exists" in capsys.readouterr().err


def test_noise_subset_and_options(tmp_path):
    sim = simulate_particles(n=60, box=32, noise="white", seed=2)
    paths = write_particle_set(sim, tmp_path / "in")
    out = tmp_path / "out"
    rc = main(["noise", "--particles", str(paths["star"]), "--map", str(paths["map"]), "-o", str(out),
               "--max-particles", "25", "--scale", "per_image", "--stack", str(paths["stack"]),
               "--format", "png,svg", "--quiet"])
    assert rc == 0
    res = json.loads((out / "noise.json").read_text())["noise_model"]
    assert res["n_images"] == 25 and res["scale_mode"] == "per_image"
    assert (out / "noise_basic.svg").exists()


def _group1_from_text(path):
    """Independent parse of data_model_group_1 (shell, frequency, sigma2) from the file text."""
    text = path.read_text()
    block = text.split("data_model_group_1", 1)[1].split("data_model_group_2", 1)[0]
    rows = [ln.split() for ln in block.splitlines() if re.match(r"^\s*\d+\s+[\d.]+\s+[\d.eE+-]+\s*$", ln)]
    return np.array(rows, dtype=float)


def test_relion_model_spectra(shared_data, tmp_path):
    model = shared_data / "relion13-tutorial/Class2D/manual_it025_model.star"
    out = tmp_path / "out"
    rc = main(["noise", "--model", str(model), "-o", str(out), "--quiet"])
    assert rc == 0
    assert (out / "relion_sigma2.png").stat().st_size > 10_000
    res = json.loads((out / "noise.json").read_text())["relion_sigma2_noise"]
    assert res["pixel_size_A"] == pytest.approx(3.54) and res["image_size_px"] == 100
    groups = res["groups"]
    assert len(groups) == 3
    g1 = groups["Micrographs/Falcon_2012_06_12-14_33_35_0.mrc"]
    ref = _group1_from_text(model)
    assert len(ref) == 51
    np.testing.assert_array_equal(g1["shell"], ref[:, 0])
    np.testing.assert_allclose(g1["frequency_invA"], ref[:, 1])
    np.testing.assert_allclose(g1["sigma2_noise"], ref[:, 2])
    assert g1["sigma2_noise"][0] == pytest.approx(1.482587e-04) and g1["sigma2_noise"][-1] == pytest.approx(4.759587e-06)
    # shell i is at i / (N * apix)
    np.testing.assert_allclose(g1["frequency_invA"], np.arange(51) / (100 * 3.54), atol=1e-6)
    np.testing.assert_allclose(g1["per_pixel"], 2 * 100**2 * ref[:, 2], rtol=1e-6)
    assert g1["particles"] == 409


def test_noise_bad_input(tmp_path, capsys):
    assert main(["noise", "-o", str(tmp_path)]) == 2
    assert "--particles" in capsys.readouterr().err
    sim = simulate_particles(n=5, box=32, seed=1)
    paths = write_particle_set(sim, tmp_path / "in")
    assert main(["noise", "--particles", str(paths["star"]), "-o", str(tmp_path)]) == 2
    assert "--map" in capsys.readouterr().err
    rc = main(["noise", "--particles", str(paths["star"]), "--map", str(tmp_path / "nope.mrc"),
               "-o", str(tmp_path / "o")])
    assert rc == 2 and "nope.mrc" in capsys.readouterr().err
    rc = main(["noise", "--model", str(paths["star"]), "-o", str(tmp_path / "o2")])
    assert rc == 2 and "model" in capsys.readouterr().err
