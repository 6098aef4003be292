"""The Project dock (issue 13), as a user works with it: a job chooser on RELION and cryoSPARC sample
projects (jobs newest first; opening an older job opens that job's picks, not the newest), and a
live session followed while a simulated microscope session
(:class:`~napari_cryodiag.simulate.session.SessionWriter`) writes into a folder, with files left
half-written between polls.

Checked: every pick arrives exactly once in the picks layer's pick set, the micrograph stack grows
to the final count and the slider reaches the new micrographs with their picks, a file being
written is not read, what was loaded with File > Open is not read again, thresholds set before
picks arrive apply to them, and an export at the end writes exactly the kept picks.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.viewer


@pytest.fixture(scope="module")
def sim():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    return simulate_micrographs(n_micrographs=5, shape=(256, 256), seed=11, particles_per_micrograph=6)


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    from napari_cryodiag.simulate.micrographs import simulate_micrographs
    from napari_cryodiag.simulate.project import particle_sets, write_sample_project

    sim = simulate_micrographs(n_micrographs=3, shape=(256, 256), seed=5, particles_per_micrograph=10)
    sets = particle_sets(sim, 5, n_refined=80, n_classified=80)
    base = tmp_path_factory.mktemp("project_dock")
    return {layout: write_sample_project(base / layout, layout, simulation=sim, particle_sets=sets)
            for layout in ("relion", "cryosparc")}


def _keys(t: pd.DataFrame) -> Counter:
    return Counter(zip(t["micrograph"].astype(str), np.round(t["x_px"].to_numpy(float), 2),
                       np.round(t["y_px"].to_numpy(float), 2)))


def _kind(layer) -> str:
    return layer.metadata.get("cryodiag", {}).get("kind", "")


def _points(viewer):
    return [ly for ly in viewer.layers if _kind(ly) == "picks"]


def _stacks(viewer):
    return [ly for ly in viewer.layers if _kind(ly) in ("micrographs", "micrograph")]


# --------------------------------------------------------------------------- the job chooser


def _newer_cryosparc_picker(folder, truth_keys):
    """A J7 picker newer than J3 holding only the first micrograph's picks (a second picking run)."""
    src, dst = folder / "J3", folder / "J7"
    dst.mkdir()
    rec = np.load(src / "J3_picked_particles.cs")
    first = np.array([truth_keys[0] in str(p) for p in rec["location/micrograph_path"]])
    with open(dst / "J7_picked_particles.cs", "wb") as f:
        np.save(f, rec[first])
    shutil.copy(src / "J3_passthrough_micrographs.cs", dst / "J7_passthrough_micrographs.cs")
    job = json.loads((src / "job.json").read_text())
    job["uid"] = "J7"
    (dst / "job.json").write_text(json.dumps(job))
    return int(first.sum())


@pytest.mark.parametrize("layout", ["relion", "cryosparc"])
def test_job_chooser_lists_jobs_newest_first_and_opens_the_chosen_one(make_napari_viewer, qtbot, projects,
                                                                     layout, tmp_path):
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget
    from napari_cryodiag.widgets.project import ProjectWidget

    sp = projects[layout]
    truth = sp.simulation.truth
    folder = sp.folder
    if layout == "cryosparc":  # a newer picks job than the one to open
        folder = tmp_path / "P1"
        shutil.copytree(sp.folder, folder)
        n_newer = _newer_cryosparc_picker(folder, sp.simulation.keys)
        older, newest, n_older = "J3", "J7", len(truth)
    else:
        older, newest = "ManualPick/job003", "AutoPick/job004"
        n_older = int(((truth["micrograph"] == sp.simulation.keys[0]) & (truth["truth"] == "particle")).sum())
    viewer = make_napari_viewer()
    dock = ProjectWidget(viewer)
    inspect = InspectPicksWidget(viewer)
    dock.folder.value = str(folder)
    dock.scan.clicked.emit()  # the user clicks Scan
    ids = dock.job_ids
    numbers = [dock.project.job(j).number for j in ids]
    assert numbers == sorted(numbers, reverse=True) and len(ids) == len(dock.project.jobs)  # newest first
    assert dock.table.rowCount() == len(ids) and dock.table.item(0, 0).text() == ids[0]
    holds = {dock.table.item(r, 0).text(): dock.table.item(r, 2).text() for r in range(dock.table.rowCount())}
    if layout == "relion":
        assert ids[0] == "PostProcess/job009" and ids.index(newest) < ids.index(older)
        assert holds[older] == "picks on 1 micrograph" and holds[newest] == "picks on 3 micrographs"
        assert "2D classes, iteration 25" in holds["Class2D/job006"] and "half maps" in holds["Refine3D/job007"]
    else:
        assert ids[0] == "J7" and ids.index(newest) < ids.index(older)
        assert f"{n_newer:,} picks" in holds["J7"] and f"{len(truth):,} picks" in holds["J3"]
        assert "half maps + mask" in holds["J6"]
    dock.select_job(older)
    assert dock.selected_job.id == older
    dock.open.clicked.emit()
    [pts] = _points(viewer)
    assert pts.name == f"picks ({older})"
    table = pts.metadata["cryodiag"]["table"]
    assert len(table) == n_older  # that job's picks, not the newest job's
    assert pts.metadata["cryodiag"]["job"] == older and pts.metadata["cryodiag"]["project"] == str(folder)
    [mics] = _stacks(viewer)
    assert mics.data.shape[0] == 3
    assert not table["defocus_A"].isna().any()  # with their CTF
    qtbot.waitUntil(lambda: inspect.session.layer is pts, timeout=5000)  # Inspect Picks takes the picks opened
    assert inspect.session.selection is not None and inspect.session.selection.n_rows == n_older


def test_file_open_on_a_project_lets_the_dock_find_it(make_napari_viewer, projects):
    from napari_cryodiag.widgets.project import ProjectWidget

    sp = projects["relion"]
    viewer = make_napari_viewer()
    dock = ProjectWidget(viewer)
    viewer.open(str(sp.folder), plugin="napari-cryodiag")
    assert dock.folder_path() == sp.folder  # from the layers' metadata
    assert dock.job_ids[0] == "PostProcess/job009" and len(dock.job_ids) == 9
    dock.select_job("Class2D/job006")
    added = dock.open_job()
    assert [ly.name for ly in added] == ["run_it025_classes.mrcs (Class2D/job006)"]
    from napari_cryodiag.widgets._tables import tables_of

    parts = [t for t in tables_of(viewer).of_kind("particles") if "Class2D/job006" in t.name]
    assert len(parts) == 1 and len(parts[0].table) == 80


# --------------------------------------------------------------------------- following a live session


def _follow(dock, n=1):
    ups = [dock.poll_now() for _ in range(n)]
    return ups


@pytest.mark.parametrize("layout", ["relion", "cryosparc", "folder"])
def test_following_a_live_session(make_napari_viewer, qtbot, sim, tmp_path, layout, monkeypatch):
    import napari_cryodiag.io.picks as io_picks
    from napari_cryodiag.io.picks import read_table
    from napari_cryodiag.simulate.session import SessionWriter
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget
    from napari_cryodiag.widgets.project import ProjectWidget

    reads: Counter = Counter()
    real = io_picks.read_table
    monkeypatch.setattr(io_picks, "read_table", lambda p, **kw: (reads.update([os.fspath(p)]), real(p, **kw))[1])
    truth = sim.truth
    viewer = make_napari_viewer()
    dock = ProjectWidget(viewer)
    inspect = InspectPicksWidget(viewer)
    w = SessionWriter(tmp_path / layout, sim, layout)
    dock.folder.value = str(w.folder)
    assert not dock.poll_now()  # nothing written yet: no layers
    assert not _points(viewer) and not _stacks(viewer)
    w.step(0)
    _follow(dock, 2)  # a text file is complete once its size held for two polls
    [pts] = _points(viewer)
    [mics] = _stacks(viewer)
    assert mics.data.shape[0] == 1 and mics.ndim == 3
    qtbot.waitUntil(lambda: inspect.session.layer is pts, timeout=5000)
    n0 = int((truth["micrograph"] == sim.keys[0]).sum())
    assert len(inspect.session.pickset) == n0
    # thresholds set before the other micrographs' picks arrive
    insp = inspect.session.inspection
    feature = insp.x_feature
    cut = float(np.median(truth[feature if feature in truth.columns else "ncc"]))
    for name, value in (("x_max", None), ("y_min", None), ("y_max", None), ("x_min", cut)):
        inspect.set_threshold(name, value)

    w.write_micrograph(1, partial=True)  # being written: not read
    up = dock.poll_now()
    assert up.pending and mics.data.shape[0] == 1 and "still being written" in dock.live_status.value
    w.finish()
    w.write_ctf(1)
    w.write_picks(1, partial=True)
    _follow(dock, 2)
    assert mics.data.shape[0] == 2 and len(inspect.session.pickset) == n0
    w.finish()
    w.write_picks(2)  # picks before their micrograph and its CTF: they wait for the CTF
    _follow(dock, 2)
    w.write_micrograph(2)
    w.write_ctf(2, partial=True)
    _follow(dock, 1)
    w.finish()
    w.step(3)
    w.step(4)
    _follow(dock, 3)
    assert "picks" in dock.live_status.value and "Open: 5 micrographs" in dock.live_status.value
    if layout != "folder":  # the job list follows the session
        holds = {dock.table.item(r, 0).text(): dock.table.item(r, 2).text() for r in range(dock.table.rowCount())}
        assert holds == ({"AutoPick/job003": "picks on 5 micrographs", "CtfFind/job002": "CTF of 5, 5 micrographs",
                          "MotionCorr/job001": "5 micrographs"} if layout == "relion" else
                         {"J3": f"CTF of 5, 5 micrographs, {len(truth):,} picks", "J2": "CTF of 5, 5 micrographs",
                          "J1": "5 micrographs"}), holds

    [pts2] = _points(viewer)
    assert pts2 is pts and len(_stacks(viewer)) == 1
    [mics] = _stacks(viewer)
    assert mics.data.shape[0] == 5 and mics.metadata["cryodiag"]["keys"] == list(sim.keys)
    ps = inspect.session.pickset
    assert ps is pts.metadata["cryodiag"]["pickset"]
    assert _keys(ps.table) == _keys(truth)  # every pick exactly once
    if layout != "cryosparc":  # one file per micrograph, each read once
        per_file = [n for f, n in reads.items() if f.endswith("_autopick.star")]
        assert len(per_file) == 5 and set(per_file) == {1}
    # the thresholds set before they arrived apply to the new picks
    sel = inspect.session.selection
    t = ps.table
    later = ~t["micrograph"].astype(str).eq(sim.keys[0]).to_numpy()
    score = pd.to_numeric(t[feature], errors="coerce").to_numpy(float)
    np.testing.assert_array_equal(sel.kept[later], score[later] >= cut)
    assert 0 < sel.kept[later].sum() < later.sum()
    assert inspect.session.inspection.thresholds.x_min == cut
    # the slider reaches the new micrographs, each with its own picks
    for i in (4, 2):
        viewer.dims.set_current_step(0, i)
        n_i = int((truth["micrograph"] == sim.keys[i]).sum())
        qtbot.waitUntil(lambda n=n_i: len(pts.data) == n, timeout=10000)
    # an export now writes exactly the kept picks
    out = inspect.export(tmp_path / "kept.star")
    assert out is not None
    got = read_table(str(tmp_path / "kept.star"))
    assert _keys(got) == _keys(t[sel.kept])


def test_following_a_project_opened_with_file_open_reads_nothing_twice(make_napari_viewer, qtbot, sim, tmp_path,
                                                                       monkeypatch):
    import napari_cryodiag.io.mrc as io_mrc
    import napari_cryodiag.io.picks as io_picks
    from napari_cryodiag.simulate.session import SessionWriter
    from napari_cryodiag.widgets.project import ProjectWidget

    w = SessionWriter(tmp_path / "relion", sim, "relion")
    w.step(0)
    w.step(1)
    viewer = make_napari_viewer()
    dock = ProjectWidget(viewer)
    viewer.open(str(w.folder), plugin="napari-cryodiag")  # File > Open: two micrographs and their picks
    [pts] = _points(viewer)
    [mics] = _stacks(viewer)
    assert mics.data.shape[0] == 2 and dock.folder_path() == w.folder
    n01 = int(sim.truth["micrograph"].isin(sim.keys[:2]).sum())
    assert len(pts.metadata["cryodiag"]["table"]) == n01
    reads: Counter = Counter()
    real_t, real_h = io_picks.read_table, io_mrc.read_header
    monkeypatch.setattr(io_picks, "read_table", lambda p, **kw: (reads.update([os.fspath(p)]), real_t(p, **kw))[1])
    monkeypatch.setattr(io_mrc, "read_header", lambda p, *a, **kw: (reads.update([os.fspath(p)]),
                                                                     real_h(p, *a, **kw))[1])
    _follow(dock, 2)
    assert not [f for f in reads if f.endswith(("_autopick.star", ".mrc"))]  # what is loaded is not read again
    assert len(pts.metadata["cryodiag"]["pickset"].table) == n01 and mics.data.shape[0] == 2
    for i in (2, 3, 4):
        w.step(i)
    _follow(dock, 2)
    [pts2] = _points(viewer)
    assert pts2 is pts
    assert _keys(pts.metadata["cryodiag"]["pickset"].table) == _keys(sim.truth)
    [mics] = _stacks(viewer)
    assert mics.data.shape[0] == 5
    new = [f for f in reads if f.endswith(("_autopick.star", ".mrc"))]
    assert sorted(os.path.basename(f) for f in new if f.endswith("_autopick.star")) == \
        [f"{k}_autopick.star" for k in sim.keys[2:]]
    assert all(reads[f] == 1 for f in new if f.endswith("_autopick.star"))


def test_follow_live_in_a_thread_and_stop_at_once(make_napari_viewer, qtbot, sim, tmp_path):
    from napari_cryodiag.simulate.session import SessionWriter
    from napari_cryodiag.widgets.project import ProjectWidget

    viewer = make_napari_viewer()
    dock = ProjectWidget(viewer)
    w = SessionWriter(tmp_path / "folder", sim, "folder")
    dock.folder.value = str(w.folder)
    dock.interval.value = 0.5
    w.step(0)
    w.step(1)
    dock.follow.value = True  # the user ticks Follow live
    n01 = int(sim.truth["micrograph"].isin(sim.keys[:2]).sum())
    qtbot.waitUntil(lambda: len(_points(viewer)) == 1 and len(_points(viewer)[0].metadata["cryodiag"]["table"]) == n01,
                    timeout=20000)
    w.step(2)
    qtbot.waitUntil(lambda: _stacks(viewer)[0].data.shape[0] == 3, timeout=20000)
    qtbot.waitUntil(lambda: len(_points(viewer)[0].metadata["cryodiag"]["table"]) == n01 + int(
        (sim.truth["micrograph"] == sim.keys[2]).sum()), timeout=20000)
    dock.follow.value = False  # stop: nothing more joins
    assert dock.source is None and dock._worker is None and "stopped" in dock.live_status.value
    w.step(3)
    qtbot.wait(1500)
    assert _stacks(viewer)[0].data.shape[0] == 3


def test_a_single_micrograph_opened_becomes_a_stack_when_more_arrive(make_napari_viewer, qtbot, sim, tmp_path):
    from napari_cryodiag.simulate.session import SessionWriter
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget
    from napari_cryodiag.widgets.project import ProjectWidget

    w = SessionWriter(tmp_path / "relion", sim, "relion")
    w.step(0)
    viewer = make_napari_viewer()
    dock = ProjectWidget(viewer)
    inspect = InspectPicksWidget(viewer)
    viewer.open(str(w.folder), plugin="napari-cryodiag")  # one micrograph: a 2D layer
    [mic] = _stacks(viewer)
    assert mic.ndim == 2
    [pts] = _points(viewer)
    w.step(1)
    w.step(2)
    _follow(dock, 2)
    [mics] = _stacks(viewer)  # replaced by a stack of all three, where the 2D layer was
    assert mics.ndim == 3 and mics.data.shape[0] == 3 and mics.metadata["cryodiag"]["keys"] == list(sim.keys[:3])
    assert list(viewer.layers).index(mics) == 0 and _points(viewer) == [pts]
    qtbot.waitUntil(lambda: inspect.session.layer is pts, timeout=5000)
    assert _keys(inspect.session.pickset.table) == _keys(sim.truth[sim.truth["micrograph"].isin(sim.keys[:3])])
    for i in (2, 0):
        viewer.dims.set_current_step(0, i)
        n_i = int((sim.truth["micrograph"] == sim.keys[i]).sum())
        qtbot.waitUntil(lambda n=n_i: len(pts.data) == n, timeout=10000)
    np.testing.assert_array_equal(np.asarray(mics.metadata["cryodiag"]["raw"][2]), sim.images[2])
