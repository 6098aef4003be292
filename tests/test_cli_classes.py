"""``cryodiag classes`` end to end: real RELION/cryoSPARC class sets, simulated particles on disk."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import mrcfile
import numpy as np
import pytest

from napari_cryodiag.cli import main


def _png_not_blank(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.05  # not a flat image


def test_cli_relion_class2d(shared_data, tmp_path):
    d = shared_data / "relion13-tutorial" / "Class2D"
    out = tmp_path / "out"
    rc = main(["classes", str(d / "manual_it025_data.star"), "--model", str(d / "manual_it025_model.star"),
               "-o", str(out), "--sort", "resolution"])
    assert rc == 0
    js = json.loads((out / "classes.json").read_text())
    assert js["n_particles"] == 1099 and js["n_classes"] == 10
    assert js["posterior_source"] == "relion"
    counts = {c["class"]: c["count"] for c in js["classes"]}
    assert counts == {1: 36, 2: 264, 3: 107, 4: 291, 5: 143, 6: 167, 7: 33, 8: 6, 9: 4, 10: 48}
    assert sum(js["histograms"]["best_prob"]["counts"]) == 1099
    assert len(js["histograms"]["best_prob"]["edges"]) == 51
    assert not js["frc"]["available"] and js["frc"]["reason"].startswith("no particle images:")
    assert all(c["frc_resolution_A"] is None for c in js["classes"])
    assert js["averages_pixel_size_A"] == pytest.approx(3.54)
    for name in ("class_histograms.png", "class_grid.png"):
        _png_not_blank(out / name)
    assert not (out / "class_frc.png").exists()


def test_cli_cryosparc_export_with_selection(shared_data, tmp_path):
    src = shared_data / "cryosparc" / "cryosparc_J2_particles_exported.cs"
    out = tmp_path / "out"
    rc = main(["classes", str(src), "-o", str(out), "--select", "1,4", "--select-out", str(tmp_path / "good.cs")])
    assert rc == 0
    js = json.loads((out / "classes.json").read_text())
    raw = np.load(src)
    assert js["selection"]["n_particles"] == int(np.isin(raw["alignments2D/class"], [1, 4]).sum())
    assert len(np.load(tmp_path / "good.cs")) == js["selection"]["n_particles"]
    assert js["posterior_source"] == "cryosparc"
    assert sum(js["histograms"]["ess"]["counts"]) == 22
    # writing over the input is refused with exit status 2, the input untouched
    before = src.read_bytes()
    rc = main(["classes", str(src), "-o", str(tmp_path / "o2"), "--select", "1", "--select-out", str(src),
               "--overwrite"])
    assert rc == 2 and src.read_bytes() == before


def test_cli_simulated_particles_on_disk(tmp_path, capsys):
    from napari_cryodiag.io.star import write_star
    from napari_cryodiag.simulate.classes import simulate_classes

    sim = simulate_classes(seed=1, n_particles=300, n_classes=4, n_junk=1, box=40)
    (tmp_path / "Extract").mkdir()
    with mrcfile.new(tmp_path / "Extract" / "parts.mrcs") as m:
        m.set_data(sim.images)
        m.voxel_size = sim.pixel_size_A
    t = sim.table.copy()
    t["image_path"] = "Extract/parts.mrcs"
    t.attrs = {}
    (tmp_path / "Class2D").mkdir()
    star = tmp_path / "Class2D" / "run_data.star"
    write_star(star, t)
    out = tmp_path / "out"
    rc = main(["classes", str(star), "-o", str(out), "--format", "png,svg"])
    assert rc == 0
    js = json.loads((out / "classes.json").read_text())
    assert js["frc"]["available"] and js["frc"]["reason"] == ""
    res = {c["class"]: c["frc_resolution_A"] for c in js["classes"]}
    junk = sim.truth["junk_classes"][0]
    assert res[junk] > max(v for k, v in res.items() if k != junk)
    assert js["averages_source"].startswith("computed from the particles")
    assert (out / "class_frc.png").exists() and (out / "class_grid.svg").exists()
    _png_not_blank(out / "class_grid.png")
    _png_not_blank(out / "class_frc.png")
    # existing outputs are not replaced without --overwrite
    rc = main(["classes", str(star), "-o", str(out), "--no-frc"])
    assert rc == 2
    assert "exists" in capsys.readouterr().err


def test_cli_bad_input(tmp_path, capsys):
    bad = tmp_path / "nothing.star"
    bad.write_text("data_\n\nloop_\n_rlnCoordinateX #1\n1.0\n")
    rc = main(["classes", str(bad), "-o", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nothing.star" in err and "class" in err
