"""Projects: RELION (5 and 3.1) and cryoSPARC sample projects opened as a user opens them.

One simulation is written in the three layouts (module fixture). Checked against the truth the
simulation wrote: which jobs there are (newest first) and what each holds, the picks read with
their micrograph's defocus from the CTF job (every pick once), the half maps and mask Map
validation would take, the refined particles with their cryoSPARC passthrough, the last 2D
iteration; names outside the project and missing files reported, not followed; a project is never
modified (the tree is hashed before and after).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_cryodiag.errors import CryodiagInputError
from tree_hash import tree_hash
from napari_cryodiag.io.projects import open_project, is_project, coordinate_file_of
from napari_cryodiag.workflows.project import (
    class2d_source, map_source, particle_source, pick_source, project_summary, read_particles, read_pick_source,
)


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    from napari_cryodiag.simulate.micrographs import simulate_micrographs
    from napari_cryodiag.simulate.project import particle_sets, write_sample_project

    sim = simulate_micrographs(n_micrographs=3, shape=(384, 384), seed=3, particles_per_micrograph=12)
    sets = particle_sets(sim, 3, n_refined=120, n_classified=120)
    base = tmp_path_factory.mktemp("projects")
    out = {}
    for name, layout, version in (("relion5", "relion", "5"), ("relion31", "relion", "3.1"),
                                  ("cryosparc", "cryosparc", "5")):
        out[name] = write_sample_project(base / name, layout, relion_version=version, simulation=sim,
                                         particle_sets=sets)
    return out


RELION_JOBS = {
    "PostProcess/job009": {"postprocess"}, "MaskCreate/job008": {"mask"},
    "Refine3D/job007": {"particles", "half_maps", "map"}, "Class2D/job006": {"class2d"},
    "Extract/job005": {"particles"}, "AutoPick/job004": {"picks"}, "ManualPick/job003": {"picks"},
    "CtfFind/job002": {"ctf", "micrographs"}, "MotionCorr/job001": {"micrographs"},
}
CRYOSPARC_JOBS = {
    "J6": {"particles", "half_maps", "mask", "map"}, "J5": {"class2d"}, "J4": {"particles"},
    "J3": {"picks", "ctf", "micrographs"}, "J2": {"ctf", "micrographs"}, "J1": {"micrographs"},
}


@pytest.mark.parametrize("name", ["relion5", "relion31", "cryosparc"])
def test_jobs_newest_first_with_what_they_hold(projects, name):
    sp = projects[name]
    p = open_project(sp.folder)
    expected = CRYOSPARC_JOBS if name == "cryosparc" else RELION_JOBS
    assert p.layout == ("cryosparc" if name == "cryosparc" else "relion")
    assert [j.id for j in p.jobs] == list(expected)  # newest (highest number) first
    assert {j.id: {o.kind for o in j.outputs} for j in p.jobs} == expected
    assert all(j.status == "succeeded" for j in p.jobs)
    assert not any(j.notes for j in p.jobs if j.id not in ("ManualPick/job003",)), [j.notes for j in p.jobs]
    assert p.version == {"relion5": "50001", "relion31": "30001", "cryosparc": "v4.4.1"}[name]
    mics = p.latest("micrographs")[1]
    assert [m.name for m in mics.micrographs] == [m.name for m in sp.micrographs]


def test_relion_pick_styles(projects):
    p5 = open_project(projects["relion5"].folder)
    p31 = open_project(projects["relion31"].folder)
    a5, a31 = p5.job("AutoPick/job004").output("picks"), p31.job("job004").output("picks")
    assert a5.style == "relion-index" and a5.path.name == "autopick.star"
    assert a31.style == "relion-suffix" and a31.path.name == "coords_suffix_autopick.star"
    assert a31.micrographs_star == projects["relion31"].folder / "CtfFind/job002/micrographs_ctf.star"
    assert [f.relative_to(projects["relion5"].folder) for f in a5.coordinate_files] == \
        [f.relative_to(projects["relion31"].folder) for f in a31.coordinate_files]
    assert len(a5.coordinate_files) == 3
    m31 = p31.job("ManualPick/job003")
    assert len(m31.output("picks").coordinate_files) == 1 and m31.missing == 0  # not picked is not missing
    assert "not picked" in m31.notes[0]


@pytest.mark.parametrize("name", ["relion5", "relion31", "cryosparc"])
def test_picks_arrive_once_with_their_micrographs_defocus(projects, name):
    sp = projects[name]
    sim = sp.simulation
    p = open_project(sp.folder)
    src = pick_source(p)
    assert src.job.id == sp.jobs["picks"]
    assert src.ctf_job.id == ("J3" if name == "cryosparc" else "CtfFind/job002")
    data = read_pick_source(src)
    t = data.table
    assert len(t) == len(sim.truth) and not data.notes
    truth = sim.truth.sort_values(["micrograph", "x_px", "y_px"]).reset_index(drop=True)
    got = t.assign(micrograph=t["micrograph"].astype(str)).sort_values(["micrograph", "x_px", "y_px"]).reset_index(drop=True)
    assert (got["micrograph"] == truth["micrograph"]).all()
    np.testing.assert_allclose(got["x_px"], truth["x_px"], atol=1e-3)
    np.testing.assert_allclose(got["defocus_A"], truth["defocus_A"], rtol=1e-5)
    np.testing.assert_allclose(got["defocus_u_A"], truth["defocus_u_A"], rtol=1e-5)
    if name == "cryosparc":  # the picker's own scores, and the join by micrograph uid
        np.testing.assert_allclose(got["ncc"], truth["ncc"], rtol=1e-5)
        assert "micrograph_uid" in t.columns
    else:  # RELION's figure of merit carries the NCC in the sample
        np.testing.assert_allclose(got["rlnAutopickFigureOfMerit"], truth["ncc"], rtol=1e-4)
        assert set(t["micrograph_name"].astype(str)) == {f"MotionCorr/job001/Movies/{n}" for n in sim.names}
    assert [m.name for m in data.micrographs] == [m.name for m in sp.micrographs]
    ex = data.exposures
    stats = sp.exposures.set_index("micrograph")
    e = ex.set_index(ex["micrograph"].astype(str))
    np.testing.assert_allclose(e.loc[stats.index, "ctf_max_resolution_A"], stats["max_resolution_A"], rtol=1e-5)
    np.testing.assert_allclose(e.loc[stats.index, "ctf_figure_of_merit"], stats["figure_of_merit"], rtol=1e-5)
    np.testing.assert_allclose(e.loc[stats.index, "astigmatism_A"], stats["astigmatism_A"], rtol=1e-4)


@pytest.mark.parametrize("name", ["relion5", "cryosparc"])
def test_map_particle_and_class_inputs(projects, name):
    sp = projects[name]
    p = open_project(sp.folder)
    ms = map_source(p)
    assert ms.half1 == sp.files["half1"] and ms.half2 == sp.files["half2"] and ms.mask == sp.files["mask"]
    if name == "relion5":
        assert ms.job.id == "PostProcess/job009" and ms.mask_job.id == "MaskCreate/job008"
        assert ms.postprocess.name == "postprocess.star"
        # a refinement alone: its half maps and the mask made from its map
        r = map_source(p, "Refine3D/job007")
        assert r.half1.name == "run_half1_class001_unfil.mrc" and r.mask_job.id == "MaskCreate/job008"
    else:
        assert ms.mask.name == "J6_008_volume_mask_fsc_auto.mrc"  # the last iteration, the auto-tightened mask
    pa = particle_source(p)
    assert pa.job.id == sp.jobs["refine3d"] and pa.particles.stage == "refine3d"
    t = read_particles(pa.particles)
    truth = sp.simulation  # noqa: F841
    assert len(t) == 120 and {"rot_deg", "tilt_deg", "psi_deg"} <= set(t.columns)
    if name == "cryosparc":  # the passthrough's micrograph of each particle, joined on uid
        assert t.attrs["passthrough"].endswith("J6_passthrough_particles.cs")
        assert t["micrograph"].astype(str).isin(sp.exposures["micrograph"]).all()
    job, c2 = class2d_source(p)
    assert job.id == sp.jobs["class2d"]
    assert c2.iteration == (25 if name == "relion5" else 20) and len(c2.iterations) == 2
    assert c2.classes is not None and c2.classes.exists()
    if name == "relion5":
        assert c2.model.name == "run_it025_model.star"


def test_a_job_folder_opens_its_project_focused_on_it(projects):
    sp = projects["relion5"]
    p = open_project(sp.folder / "AutoPick" / "job004")
    assert p.root == sp.folder and p.focus == ["AutoPick/job004"] and len(p.jobs) == 9
    assert pick_source(p).job.id == "AutoPick/job004"
    p = open_project(sp.folder / "ManualPick" / "job003")
    assert pick_source(p).job.id == "ManualPick/job003"
    assert open_project(sp.folder / "Class2D").focus == ["Class2D/job006"]
    assert open_project(sp.folder / "default_pipeline.star").focus == []
    c = projects["cryosparc"]
    p = open_project(c.folder / "J6")
    assert p.root == c.folder and p.focus == ["J6"]
    assert is_project(c.folder / "J6") and is_project(sp.folder) and not is_project(sp.folder / "MotionCorr/job001/Movies")


def test_not_a_project(tmp_path):
    (tmp_path / "some.txt").write_text("x")
    with pytest.raises(CryodiagInputError, match="not a RELION project"):
        open_project(tmp_path)
    with pytest.raises(CryodiagInputError, match="not found"):
        open_project(tmp_path / "nothing")


def test_outside_and_missing_paths_are_reported_not_followed(projects, tmp_path):
    src = projects["relion5"].folder
    proj = tmp_path / "proj"
    shutil.copytree(src, proj)
    outside = tmp_path / "elsewhere" / "stray.mrc"
    outside.parent.mkdir()
    shutil.copy(proj / "MotionCorr/job001/Movies/sim_0001.mrc", outside)
    ctf = proj / "CtfFind/job002/micrographs_ctf.star"
    text = ctf.read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("MotionCorr/job001/Movies/sim_0001.mrc"))
    extra = [row.replace("MotionCorr/job001/Movies/sim_0001.mrc", str(outside)),
             row.replace("MotionCorr/job001/Movies/sim_0001.mrc", "../elsewhere/stray.mrc")]
    ctf.write_text(text.rstrip() + "\n" + "\n".join(extra) + "\n")
    (proj / "MotionCorr/job001/Movies/sim_0002.mrc").unlink()
    p = open_project(proj)
    j = p.job("CtfFind/job002")
    assert j.outside == 2 and j.missing == 1
    assert any("2 of 5 micrographs listed in micrographs_ctf.star are outside the project folder" in n for n in j.notes)
    assert any("1 of 5 micrographs listed in micrographs_ctf.star are missing" in n and "sim_0002" in n for n in j.notes)
    mics = j.output("micrographs").micrographs
    assert [m.name for m in mics] == ["sim_0001.mrc", "sim_0003.mrc"] and all(m.is_relative_to(proj) for m in mics)
    assert outside not in p.files()
    # a coordinate index naming a file outside the project
    idx = proj / "AutoPick/job004/autopick.star"
    idx.write_text(idx.read_text().replace("AutoPick/job004/Movies/sim_0003_autopick.star", "/etc/passwd"))
    picks = open_project(proj).job("AutoPick/job004")
    assert picks.outside == 1 and len(picks.output("picks").coordinate_files) == 2


def test_opening_never_writes_into_the_project(projects, tmp_path):
    from napari_cryodiag.cli import main

    for sp in projects.values():
        before = tree_hash(sp.folder)
        p = open_project(sp.folder)
        read_pick_source(pick_source(p))
        read_particles(particle_source(p).particles)
        project_summary(p)
        assert main(["open", str(sp.folder), "--json"]) == 0
        assert tree_hash(sp.folder) == before


def test_cli_open_text_and_json(projects, capsys):
    from napari_cryodiag.cli import main

    sp = projects["relion31"]
    assert main(["open", str(sp.folder)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"RELION project {sp.folder} (pipeline version 30001): 9 jobs")
    assert out.index("PostProcess/job009") < out.index("MotionCorr/job001")
    assert "Inspect Picks: picks of AutoPick/job004 on 3 micrographs of CtfFind/job002, CTF from CtfFind/job002" in out
    assert main(["open", str(projects["cryosparc"].folder / "J3"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layout"] == "cryosparc" and d["focus"] == ["J3"] and [j["id"] for j in d["jobs"]][:2] == ["J6", "J5"]
    assert d["inputs"]["inspect_picks"]["ctf"]["path"] == "J3/J3_passthrough_micrographs.cs"
    assert d["inputs"]["map_validation"]["mask"] == "J6/J6_008_volume_mask_fsc_auto.mrc"


def test_cli_open_refuses_what_is_not_a_project(tmp_path, capsys):
    from napari_cryodiag.cli import main

    assert main(["open", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cryodiag open: error: {tmp_path}: not a RELION project") and "\n" not in err


def test_cli_sample_layouts(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    args = ["--n-micrographs", "2", "--size", "256", "--particles", "8", "--no-classes", "--no-refinement"]
    for layout in ("relion", "cryosparc"):
        out = tmp_path / layout
        r = subprocess.run([sys.executable, "-m", "napari_cryodiag.cli", "sample", "--layout", layout, str(out), *args],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        assert f"wrote {out}" in r.stdout
        p = open_project(out)
        assert len(p.latest("micrographs")[1].micrographs) == 2 and p.latest("picks")[0] is not None
        r2 = subprocess.run([sys.executable, "-m", "napari_cryodiag.cli", "sample", "--layout", layout, str(out), *args],
                            capture_output=True, text=True, env=env, timeout=600)
        assert r2.returncode == 2 and "already there" in r2.stderr


@pytest.fixture(scope="module")
def relion_autopick_job(projects, tmp_path_factory):
    """RELION 3.1's own picker run on the sample project's micrographs (outside the pipeline)."""
    exe = shutil.which("relion_autopick")
    if exe is None:
        pytest.skip("relion_autopick (RELION 3.1) is not installed")
    proj = tmp_path_factory.mktemp("relion_run") / "proj"
    shutil.copytree(projects["relion31"].folder, proj)
    d_A = projects["relion31"].simulation.particle_diameter_A
    r = subprocess.run([exe, "--i", "CtfFind/job002/micrographs_ctf.star", "--odir", "AutoPick/job010/", "--pickname",
                        "autopick", "--LoG", "--LoG_diam_min", f"{0.8 * d_A:.1f}", "--LoG_diam_max", f"{1.2 * d_A:.1f}",
                        "--angpix", "2", "--shrink", "0", "--lowpass", "20"], cwd=proj, capture_output=True, text=True,
                       timeout=600)
    return proj, r


def test_relion_names_coordinate_files_as_coordinate_file_of(relion_autopick_job):
    proj, run = relion_autopick_job
    for n in ("sim_0001", "sim_0002", "sim_0003"):
        f = coordinate_file_of(f"MotionCorr/job001/Movies/{n}.mrc", proj / "AutoPick/job010", "autopick")
        assert f.is_file(), run.stdout[-2000:] + run.stderr[-2000:]
    job = open_project(proj).job("AutoPick/job010")  # not in the pipeline: found from its folder
    picks = job.output("picks")
    assert picks.style == "relion-folder" and len(picks.coordinate_files) == 3
