"""``cryodiag orientations`` end to end on the real files and simulated half maps."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from napari_cryodiag.cli import main

CS = "cryosparc/cryosparc_P12_J24_001_particles.cs"
STAR = "relion13-tutorial/particles_autopick_sort_class2d_class3d.star"


def _png_not_blank(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.05


def test_cli_real_cryosparc(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["orientations", str(shared_data / CS), "--resolution", "11.8", "-o", str(out)]) == 0
    js = json.loads((out / "orientations.json").read_text())
    # R = box * apix / resolution = 180 * 2.95 / 11.8 = 45 voxels
    assert js["n_particles"] == 2019 and js["box_px"] == 180 and js["radius_px"] == pytest.approx(45.0, rel=1e-6)
    assert js["ctf_frequency_invA"] == pytest.approx(1 / 11.8, rel=1e-6)
    vd = js["viewing_directions"]
    counts = np.array(vd["counts"])
    assert counts.shape == (36, 72) and counts.sum() == 2019
    assert len(vd["azimuth_edges_deg"]) == 73 and len(vd["elevation_edges_deg"]) == 37
    assert vd["elevation_edges_deg"][0] == -90 and vd["elevation_edges_deg"][-1] == 90
    assert "sin(elevation)" in vd["binning"]
    assert 0.45 < js["scf"]["scf_star"] < 0.56 and js["scf"]["preferred_orientation"] is True
    assert js["scf"]["guide_scf_star"] == 0.81
    sm = js["sampling_maps"]
    assert np.array(sm["fourier_sampling"]).shape == (36, 72)
    assert sm["fourier_sampling_summary"]["min"] > 0
    assert sm["posterior_precision_summary"] is not None
    assert js["cfar"] is None
    for name in ("viewing_directions", "fourier_sampling", "posterior_precision", "scf_cfar", "orientations_overview"):
        _png_not_blank(out / f"{name}.png")
    assert "SCF* = 0.5" in capsys.readouterr().out


def test_cli_relion_with_half_maps(shared_data, tmp_path):
    from napari_cryodiag.io.mrc import write_mrc
    from napari_cryodiag.simulate.orientations import anisotropic_half_maps

    h1, h2 = anisotropic_half_maps(40, 2.0, extra_bfactor_A2=2000.0, seed=3)
    p1 = write_mrc(tmp_path / "h1.mrc", h1, 2.0)
    p2 = write_mrc(tmp_path / "h2.mrc", h2, 2.0)
    out = tmp_path / "out"
    rc = main(["orientations", str(shared_data / STAR), "--half1", str(p1), "--half2", str(p2),
               "--radius-px", "20", "--n-cones", "64", "-o", str(out)])
    assert rc == 0
    js = json.loads((out / "orientations.json").read_text())
    assert js["n_particles"] == 6496 and js["radius_px"] == 20.0 and js["radius_source"] == "given"
    c = js["cfar"]
    assert c["n_cones"] == 64 and c["pixel_size_A"] == 2.0 and c["box"] == 40
    assert c["cfar"] < 0.5 and c["anisotropic"] is True and c["guide_cfar"] == 0.5
    assert abs(c["worst_axis_azimuth_elevation_deg"][1]) > 45  # weak axis z (64 noisy cones)
    assert np.array(c["fsc"]).shape == (64, 21)
    _png_not_blank(out / "conical_fsc.png")


def test_cli_bad_inputs(shared_data, tmp_path, capsys):
    assert main(["orientations", str(tmp_path / "missing.star"), "-o", str(tmp_path / "o")]) == 2
    assert "missing.star" in capsys.readouterr().err
    # picks without poses
    picks = shared_data / "relion13-tutorial" / "autopick"
    first = sorted(picks.glob("*_autopick.star"))[0]
    assert main(["orientations", str(first), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert first.name in err and "orientations" in err
    # only one half map
    assert main(["orientations", str(shared_data / CS), "--half1", str(first), "-o", str(tmp_path / "o")]) == 2
    assert "--half2" in capsys.readouterr().err
