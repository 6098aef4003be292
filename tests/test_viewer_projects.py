"""File > Open on a RELION or cryoSPARC project (issue 13), as a user does it: ``viewer.open`` on the
project folder or a job folder, then Inspect Picks docked from the Plugins menu.

Checked against the simulation the sample project was written from: ONE micrograph stack, one pick
set with every pick once and the right count per micrograph, each pick's defocus from the CTF job
(Inspect Picks calibrates with it), the CTF table and postprocess.star in the open tables, one
notification naming the jobs, the half maps and mask as map layers from their job folder (not over
the micrographs, whose slider a map's z axis would take over), and the project unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

from tree_hash import tree_hash

pytestmark = pytest.mark.viewer


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    from napari_cryodiag.simulate.micrographs import simulate_micrographs
    from napari_cryodiag.simulate.project import particle_sets, write_sample_project

    sim = simulate_micrographs(n_micrographs=3, shape=(256, 256), seed=5, particles_per_micrograph=10)
    sets = particle_sets(sim, 5, n_refined=80, n_classified=80)
    base = tmp_path_factory.mktemp("viewer_projects")
    return {layout: write_sample_project(base / layout, layout, simulation=sim, particle_sets=sets)
            for layout in ("relion", "cryosparc")}


def _kind(layer) -> str:
    return layer.metadata.get("cryodiag", {}).get("kind", "")


def _open(viewer, path, monkeypatch):
    from napari_cryodiag import _reader

    said = []
    real = _reader._notify
    monkeypatch.setattr(_reader, "_notify", lambda level, msg: (said.append((level, msg)), real(level, msg)))
    viewer.open(str(path), plugin="napari-cryodiag")
    return said


EXPECTED = {  # layout -> (micrographs job, picks job, CTF job, half maps job, mask file)
    "relion": ("CtfFind/job002", "AutoPick/job004", "CtfFind/job002", "PostProcess/job009", "MaskCreate/job008/mask.mrc"),
    "cryosparc": ("J3", "J3", "J3", "J6", "J6/J6_008_volume_mask_fsc_auto.mrc"),
}


@pytest.mark.parametrize("layout", ["relion", "cryosparc"])
def test_file_open_on_a_project(make_napari_viewer, qtbot, projects, layout, monkeypatch):
    from napari_cryodiag.io import mrc
    from napari_cryodiag.widgets._tables import tables_of

    sp = projects[layout]
    truth = sp.simulation.truth
    mics_job, picks_job, ctf_job, maps_job, mask = EXPECTED[layout]
    before = tree_hash(sp.folder)
    viewer = make_napari_viewer()
    said = _open(viewer, sp.folder, monkeypatch)

    [mics] = [ly for ly in viewer.layers if _kind(ly) == "micrographs"]
    assert mics.name == f"micrographs ({mics_job})" and mics.data.shape[0] == 3
    assert sorted(p.rsplit("/", 1)[-1] for p in mics.metadata["cryodiag"]["paths"]) == sorted(m.name for m in sp.micrographs)
    [pts] = [ly for ly in viewer.layers if type(ly).__name__ == "Points"]
    assert pts.name == f"picks ({picks_job})"
    table = pts.metadata["cryodiag"]["table"]
    assert len(table) == len(truth) == 45  # every pick once (16, 13 and 16 per micrograph)
    keys = mics.metadata["cryodiag"]["keys"]
    per_mic = truth.groupby("micrograph").size()
    assert per_mic.to_dict() == {"sim_0001": 16, "sim_0002": 13, "sim_0003": 16}
    for i, key in enumerate(keys):  # the slider shows each micrograph's own picks
        viewer.dims.set_current_step(0, i)
        qtbot.waitUntil(lambda k=key: len(pts.data) == per_mic[k], timeout=10000)
        assert (table["micrograph"].astype(str) == key).sum() == per_mic[key]
    # each pick has its micrograph's defocus from the CTF job
    want = truth.set_index(["micrograph", "x_px", "y_px"])["defocus_A"].groupby("micrograph").first()
    got = table.groupby(table["micrograph"].astype(str))["defocus_A"].first()
    np.testing.assert_allclose(got.loc[want.index], want, rtol=1e-5)

    assert sorted(_kind(ly) for ly in viewer.layers) == ["micrographs", "picks"]
    assert viewer.dims.range[0].stop == 2  # the slider: micrographs 0..2, not a map's z

    kinds = {t.kind: t for t in tables_of(viewer)}
    assert len(kinds["ctf"].table) == 3 and ctf_job in kinds["ctf"].name
    assert ("postprocess" in kinds) == (layout == "relion")
    [(level, msg)] = [m for m in said if "project" in m[1]]
    assert level == "info"
    for part in (f"3 micrographs from {mics_job}", f"picks from {picks_job}", f"CTF from {ctf_job}",
                 f"half maps from {maps_job}", f"open {maps_job} for Map validation"):
        assert part in msg

    # Inspect Picks from the Plugins menu takes the project's picks and calibrates with their defocus
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodiag", "Inspect Picks")
    assert w.layer is pts and w.result.n_rows == 45
    w.tabs.setCurrentIndex(2)
    qtbot.wait(10)
    assert w.calibration.source.value == "defocus: from the picks"
    w.calibration.form.calibrate_x.value = True
    assert w.calibration.form.calibrate_x.value and w.inspection.x_units == "calibrated (ratio)"
    assert len(w.inspection.calibrations["x"].per_micrograph) == 3

    # the half maps and mask from their job folder
    viewer.layers.clear()
    _open(viewer, sp.folder / maps_job, monkeypatch)
    maps = {ly.name: ly for ly in viewer.layers if _kind(ly) == "map"}
    assert len(viewer.layers) == 3 and set(maps) == {
        str(sp.files["half1"].relative_to(sp.folder)), str(sp.files["half2"].relative_to(sp.folder)), mask}
    h1 = maps[str(sp.files["half1"].relative_to(sp.folder))]
    np.testing.assert_array_equal(np.asarray(h1.data), mrc.read_map(sp.files["half1"]).data)
    assert tree_hash(sp.folder) == before  # nothing written into the project


def test_file_open_on_job_folders(make_napari_viewer, projects, monkeypatch):
    sp = projects["relion"]
    before = tree_hash(sp.folder)
    viewer = make_napari_viewer()
    said = _open(viewer, sp.folder / "AutoPick" / "job004", monkeypatch)
    assert sorted(_kind(ly) for ly in viewer.layers) == ["micrographs", "picks"]  # no maps from a picks job
    assert "(AutoPick/job004)" in said[-1][1]
    viewer.layers.clear()
    _open(viewer, sp.folder / "PostProcess" / "job009", monkeypatch)
    maps = [ly for ly in viewer.layers if _kind(ly) == "map"]
    assert len(maps) == len(viewer.layers) == 3 and all(ly.visible for ly in maps)
    assert sum(ly.metadata["cryodiag"]["value_range"] == (0.0, 1.0) for ly in maps) == 1  # the mask
    viewer.layers.clear()
    _open(viewer, sp.folder / "MotionCorr" / "job001" / "Movies", monkeypatch)  # a micrograph folder stays one
    [mics] = list(viewer.layers)
    assert _kind(mics) == "micrographs" and mics.name == "Movies" and mics.data.shape[0] == 3
    assert tree_hash(sp.folder) == before
