"""A RELION project: ``default_pipeline.star`` and the job folders ``<Type>/jobNNN/``.

Jobs come from the pipeline (RELION 3.1: numbered process types and states; RELION 4/5: type
and state labels such as ``relion.ctffind.ctffind4`` / ``Succeeded``) and from the job folders on
disk (a job folder the pipeline does not list is still a job; a pipeline entry without its
folder is noted). A job's state, when the pipeline does not give it, comes from RELION's marker
files (``RELION_JOB_EXIT_SUCCESS`` / ``_FAILURE`` / ``_ABORTED``).

What a job holds is recognised by the names RELION gives its outputs, whatever the job type
(an External job that writes ``particles.star`` has particles):

==============================================  =============================================
``corrected_micrographs.star``,                 :class:`~.model.MicrographSet` (the files each
``micrographs.star``, ``micrographs_selected``  row names that are in the project)
``micrographs_ctf.star``                        :class:`~.model.CtfResults` + MicrographSet
``autopick.star`` / ``manualpick.star``         :class:`~.model.PickFiles` ``relion-index``
(RELION 4/5: ``rlnMicrographCoordinates``)
``coords_suffix_<s>.star`` (RELION 3.1: names   PickFiles ``relion-suffix``: per micrograph
the micrograph STAR)                            ``<job>/<name after Type/jobNNN/>_<s>.star``
``particles.star``, ``run_data.star``,          :class:`~.model.ParticleSet`
``run_itNNN_data.star`` (Class3D, Refine3D)
``run_itNNN_{data,model}.star`` +               :class:`~.model.Class2DIteration` (the last
``run_itNNN_classes.mrcs`` (Class2D)            iteration)
``run_half{1,2}_class001_unfil.mrc``            :class:`~.model.HalfMapPair` (while running:
                                                the last ``run_itNNN_half{1,2}_class001.mrc``)
``mask.mrc``                                    :class:`~.model.MaskFile`
``postprocess.star`` (+ ``postprocess.mrc``,    :class:`~.model.PostProcessResult`, with the half
``postprocess_masked.mrc``)                     maps and mask its ``data_general`` names
``run_class001.mrc``, ``initial_model.mrc``,    :class:`~.model.MapFile`
``relion_locres_filtered.mrc``
==============================================  =============================================

Only micrograph and coordinate lists are read (to find their files); particle tables are not
opened here. Nothing is written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ...errors import CryodiagInputError
from .model import (
    Class2DIteration, CtfResults, HalfMapPair, Job, MapFile, MaskFile, MicrographSet, ParticleSet, PickFiles,
    PostProcessResult, Project,
)
from .paths import ProjectPaths

__all__ = ["PIPELINE", "is_relion_project", "find_relion_root", "discover_relion", "JOB_FOLDER", "coordinate_file_of"]

PIPELINE = "default_pipeline.star"
JOB_FOLDER = re.compile(r"^job(\d{3,})$")
#: job types of RELION 3.1-5 (the folders jobs live in)
JOB_TYPES = (
    "Import", "MotionCorr", "CtfFind", "ManualPick", "AutoPick", "Extract", "Select", "Class2D", "Class3D",
    "Refine3D", "InitialModel", "MaskCreate", "JoinStar", "Subtract", "PostProcess", "LocalRes", "CtfRefine",
    "Polish", "MotionRefine", "MultiBody", "External", "DynaMight", "ModelAngelo", "Reconstruct", "ImportTomo",
)
# RELION 3.1 numbered process types and states (pipeline_jobs.h)
_TYPES_31 = {0: "Import", 1: "MotionCorr", 2: "CtfFind", 3: "ManualPick", 4: "AutoPick", 5: "Extract",
             7: "Select", 8: "Class2D", 9: "Class3D", 10: "Refine3D", 12: "MaskCreate", 13: "JoinStar",
             14: "Subtract", 15: "PostProcess", 16: "LocalRes", 18: "InitialModel", 19: "MultiBody",
             20: "Polish", 21: "CtfRefine", 99: "External"}
_STATUS_31 = {0: "running", 1: "scheduled", 2: "succeeded", 3: "failed", 4: "aborted"}
_MARKERS = (("RELION_JOB_EXIT_SUCCESS", "succeeded"), ("RELION_JOB_EXIT_FAILURE", "failed"),
            ("RELION_JOB_EXIT_ABORTED", "aborted"))
_MICROGRAPH_LISTS = ("corrected_micrographs.star", "micrographs_selected.star", "micrographs.star")
_PICK_INDEX = ("autopick.star", "manualpick.star", "coordinates.star")
_ITER = re.compile(r"^run_it(\d{3,})_(data|model|classes|optimiser|sampling)\.(star|mrcs)$")
_ITER_HALF = re.compile(r"^run_it(\d{3,})_half([12])_class001\.mrc$")
_SUFFIX_FILE = re.compile(r"^coords_suffix_(.+)\.star$")
_JOB_PART = re.compile(r"^(?:.*?/)?[^/]+/job\d{3,}/(.*)$")


def is_relion_project(folder: Path) -> bool:
    return (Path(folder) / PIPELINE).is_file()


def find_relion_root(path: Path) -> Path | None:
    """The RELION project folder of ``path`` when ``path`` is a project folder (with
    ``default_pipeline.star``, or ``<Type>/jobNNN`` folders), its pipeline file, a job type folder
    (``Class2D``) or a job folder (``Class2D/job006``); else None (a folder of micrographs inside
    a job is not a project: it opens as micrographs)."""
    p = Path(os.path.abspath(path))
    if p.is_file():
        return p.parent if p.name == PIPELINE else None
    if not p.is_dir():
        return None
    if is_relion_project(p):
        return p
    is_job = bool(JOB_FOLDER.match(p.name))
    if is_job and is_relion_project(p.parent.parent):
        return p.parent.parent
    if not is_job and is_relion_project(p.parent) and _has_job_folders(p):
        return p.parent
    if is_job and p.parent.name in JOB_TYPES:
        return p.parent.parent
    if any(_has_job_folders(p / t) for t in JOB_TYPES):
        return p
    return None


def _has_job_folders(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(JOB_FOLDER.match(n) for n in os.listdir(folder))
    except OSError:
        return False


def job_id_of(name: str) -> str | None:
    """``"CtfFind/job003"`` from a process or node name (``"CtfFind/job003/"``,
    ``"CtfFind/job003/micrographs_ctf.star"``)."""
    parts = str(name).strip().strip("/").split("/")
    if len(parts) >= 2 and JOB_FOLDER.match(parts[1]):
        return f"{parts[0]}/{parts[1]}"
    return None


def coordinate_file_of(micrograph_name: str, job_folder: Path, suffix: str) -> Path:
    """Where RELION's pickers write a micrograph's coordinates: ``<job>/<the name after
    Type/jobNNN/, without extension>_<suffix>.star`` (``MotionCorr/job002/Movies/mic.mrc`` ->
    ``<job>/Movies/mic_autopick.star``)."""
    name = str(micrograph_name).replace("\\", "/")
    m = _JOB_PART.match(name)
    post = m.group(1) if m else name.lstrip("/")
    stem = post.rsplit(".", 1)[0] if "." in post.rsplit("/", 1)[-1] else post
    return job_folder / f"{stem}_{suffix}.star"


# --------------------------------------------------------------------------- the pipeline


def _read_star(path: Path) -> dict:
    from ..star import read_star

    return read_star(path)


def _loop(blocks: dict, *names: str) -> pd.DataFrame | None:
    for n in names:
        v = blocks.get(n)
        if isinstance(v, pd.DataFrame):
            return v
    return None


def _col(df: pd.DataFrame, *labels: str):
    for lab in labels:
        if lab in df.columns:
            return df[lab].astype(str).to_list()
    return None


def _read_pipeline(path: Path, project: Project) -> tuple[dict, dict, dict]:
    """``(processes, inputs, outputs)``: per job id its (label, alias, status); the input
    nodes (files) per job id; the output nodes per job id."""
    try:
        blocks = _read_star(path)
    except CryodiagInputError as err:
        project.notes.append(f"the pipeline could not be read ({err.problem}); jobs found from their folders")
        return {}, {}, {}
    with open(path, "rb") as f:
        head = f.read(4096).decode(errors="replace")
    m = re.search(r"#\s*version\s+(\d+)", head)
    project.version = m.group(1) if m else ""
    procs: dict = {}
    pr = _loop(blocks, "pipeline_processes")
    if pr is not None and "rlnPipeLineProcessName" in pr.columns:
        names = pr["rlnPipeLineProcessName"].astype(str).to_list()
        aliases = _col(pr, "rlnPipeLineProcessAlias") or ["None"] * len(names)
        labels = _col(pr, "rlnPipeLineProcessTypeLabel")
        states = _col(pr, "rlnPipeLineProcessStatusLabel")
        types31 = _col(pr, "rlnPipeLineProcessType")
        states31 = _col(pr, "rlnPipeLineProcessStatus")
        for i, name in enumerate(names):
            jid = job_id_of(name)
            if jid is None:
                continue
            if labels is not None:
                label = labels[i]
            elif types31 is not None:
                t = _int(types31[i])
                label = f"{t} ({_TYPES_31.get(t, 'unknown')})" if t is not None else ""
            else:
                label = ""
            if states is not None:
                status = states[i].strip().lower()
            elif states31 is not None:
                status = _STATUS_31.get(_int(states31[i]), "")
            else:
                status = ""
            alias = aliases[i].strip().strip("/")
            alias = "" if alias in ("None", "") else alias.rsplit("/", 1)[-1]
            procs[jid] = (label, alias, status if status in ("succeeded", "running", "scheduled", "failed", "aborted")
                          else status)
    inputs: dict = {}
    ie = _loop(blocks, "pipeline_input_edges")
    if ie is not None and {"rlnPipeLineEdgeFromNode", "rlnPipeLineEdgeProcess"} <= set(ie.columns):
        for node, proc in zip(ie["rlnPipeLineEdgeFromNode"].astype(str), ie["rlnPipeLineEdgeProcess"].astype(str)):
            jid = job_id_of(proc)
            if jid:
                inputs.setdefault(jid, []).append(node)
    outputs: dict = {}
    oe = _loop(blocks, "pipeline_output_edges")
    if oe is not None and {"rlnPipeLineEdgeProcess", "rlnPipeLineEdgeToNode"} <= set(oe.columns):
        for proc, node in zip(oe["rlnPipeLineEdgeProcess"].astype(str), oe["rlnPipeLineEdgeToNode"].astype(str)):
            jid = job_id_of(proc)
            if jid:
                outputs.setdefault(jid, []).append(node)
    return procs, inputs, outputs


def _int(s) -> int | None:
    try:
        return int(float(s))
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- jobs


def _job_folders(root: Path, types: set[str]) -> dict[str, Path]:
    out = {}
    for t in sorted(types):
        d = root / t
        if not d.is_dir() or d.is_symlink():
            continue
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            if JOB_FOLDER.match(n) and (d / n).is_dir():
                out[f"{t}/{n}"] = d / n
    return out


def _status_on_disk(folder: Path) -> str:
    for marker, status in _MARKERS:
        if (folder / marker).exists():
            return status
    return ""


def _mtime(folder: Path) -> float | None:
    try:
        return folder.stat().st_mtime
    except OSError:
        return None


def discover_relion(root: Path, opened: Path | None = None) -> Project:
    """Every job of the RELION project at ``root`` and what it holds (module docstring)."""
    root = Path(os.path.abspath(root))
    project = Project(root=root, layout="relion", opened=Path(os.path.abspath(opened)) if opened else root)
    pp = ProjectPaths(root)
    procs, inputs, outputs = ({}, {}, {})
    if is_relion_project(root):
        procs, inputs, outputs = _read_pipeline(root / PIPELINE, project)
    else:
        project.notes.append(f"no {PIPELINE}: jobs found from their folders (no aliases, states from RELION's "
                             "marker files)")
    types = set(JOB_TYPES) | {jid.split("/")[0] for jid in procs}
    folders = _job_folders(root, types)
    ids = sorted(set(folders) | set(procs), key=lambda j: (int(JOB_FOLDER.match(j.split("/")[1]).group(1)), j))
    for jid in ids:
        t, jobdir = jid.split("/")
        folder = folders.get(jid, root / t / jobdir)
        label, alias, status = procs.get(jid, ("", "", ""))
        job = Job(id=jid, type=t, folder=folder, number=int(JOB_FOLDER.match(jobdir).group(1)), label=label,
                  alias=alias, status=status or _status_on_disk(folder), time=_mtime(folder))
        for node in inputs.get(jid, []):
            src = job_id_of(node)
            if src and src not in job.inputs:
                job.inputs.append(src)
            p, _why = pp.path_of(node)
            if p is not None:
                job.input_files.append(p)
        if jid not in folders:
            job.notes.append("listed in the pipeline but its folder is missing")
        else:
            _find_outputs(job, pp, outputs.get(jid, []))
        project.jobs.append(job)
    project.jobs.sort(key=lambda j: j.number, reverse=True)
    _focus(project)
    return project


def _focus(project: Project) -> None:
    """The jobs under the opened folder, when it is inside the project and not the project."""
    opened = project.opened
    if opened is None or opened == project.root:
        return
    if opened.is_file():
        opened = opened.parent
    try:
        rel = opened.relative_to(project.root).parts
    except ValueError:
        return
    if not rel:
        return
    prefix = "/".join(rel[:2])
    project.focus = [j.id for j in project.jobs if j.id == prefix or (len(rel) == 1 and j.id.startswith(prefix + "/"))]


def _note(job: Job, resolved, what: str, where: Path) -> None:
    job.notes += resolved.notes(what, where.name)
    job.outside += len(resolved.outside)
    job.missing += len(resolved.missing)


def _not_used(job: Job, what: str, why: str) -> None:
    """Note a single name that was not used: it leads outside the project, or its file is missing."""
    if why == "outside":
        job.outside += 1
        job.notes.append(f"{what}: outside the project folder, not followed")
    else:
        job.missing += 1
        job.notes.append(f"{what}: missing")


def _micrograph_list(job: Job, pp: ProjectPaths, star: Path) -> tuple[MicrographSet | None, pd.DataFrame | None]:
    try:
        blocks = _read_star(star)
    except CryodiagInputError as err:
        job.notes.append(f"{star.name} could not be read: {err.problem}")
        return None, None
    df = _loop(blocks, "micrographs", "")
    if df is None or "rlnMicrographName" not in df.columns:
        job.notes.append(f"{star.name} has no rlnMicrographName column")
        return None, None
    names = df["rlnMicrographName"].astype(str).to_list()
    res = pp.resolve(names)
    _note(job, res, "micrographs", star)
    ps = None
    opt = _loop(blocks, "optics")
    for lab in ("rlnMicrographPixelSize", "rlnMicrographOriginalPixelSize"):
        if opt is not None and lab in opt.columns and len(opt):
            ps = float(pd.to_numeric(opt[lab], errors="coerce").median())
            break
    return MicrographSet(path=star, micrographs=res.found, n_listed=len(names), pixel_size_A=ps), df


def _find_outputs(job: Job, pp: ProjectPaths, nodes: list[str]) -> None:
    folder = job.folder
    try:
        names = set(os.listdir(folder))
    except OSError as err:
        job.notes.append(f"the job folder cannot be read ({err.strerror})")
        return
    # micrographs and CTF
    if "micrographs_ctf.star" in names:
        star = folder / "micrographs_ctf.star"
        mics, df = _micrograph_list(job, pp, star)
        if mics is not None:
            stats = [s for lab, s in (("rlnCtfMaxResolution", "max_resolution"), ("rlnCtfFigureOfMerit", "figure_of_merit"),
                                      ("rlnCtfAstigmatism", "astigmatism"), ("rlnCtfIceRingDensity", "ice_ring_density"))
                     if lab in df.columns]
            job.outputs.append(CtfResults(path=star, n_micrographs=len(df), statistics=stats))
            job.outputs.append(mics)
    else:
        for n in _MICROGRAPH_LISTS:
            if n in names:
                mics, _ = _micrograph_list(job, pp, folder / n)
                if mics is not None:
                    job.outputs.append(mics)
                break
    # picks
    for n in _PICK_INDEX:
        if n in names:
            picks = _pick_index(job, pp, folder / n)
            if picks is not None:
                job.outputs.append(picks)
            break
    else:
        for n in sorted(names):
            m = _SUFFIX_FILE.match(n)
            if m:
                job.outputs.append(_pick_suffix(job, pp, folder / n, m.group(1)))
                break
        else:
            if job.type in ("AutoPick", "ManualPick"):  # a picker run outside the pipeline: its files
                suffix = "autopick" if job.type == "AutoPick" else "manualpick"
                files = sorted(p for p in folder.rglob(f"*_{suffix}.star") if p.is_file())
                if files:
                    job.outputs.append(PickFiles(path=folder, style="relion-folder", coordinate_files=files,
                                                 n_listed=len(files)))
    # particles, classes, maps
    iters: dict[str, dict[int, Path]] = {}
    halves: dict[int, dict[str, Path]] = {}
    for n in names:
        m = _ITER.match(n)
        if m:
            iters.setdefault(m.group(2), {})[int(m.group(1))] = folder / n
        m = _ITER_HALF.match(n)
        if m:
            halves.setdefault(int(m.group(1)), {})[m.group(2)] = folder / n
    is_class2d = job.type == "Class2D" or any(n.endswith("_classes.mrcs") for n in names)
    if is_class2d and iters.get("data"):
        it = max(iters["data"])
        job.outputs.append(Class2DIteration(
            path=iters["data"][it], iteration=it, model=iters.get("model", {}).get(it),
            classes=iters.get("classes", {}).get(it), iterations=sorted(iters["data"])))
    stage = job.type.lower()
    if "particles.star" in names:
        job.outputs.append(ParticleSet(path=folder / "particles.star", stage=stage))
    if "run_data.star" in names:
        job.outputs.append(ParticleSet(path=folder / "run_data.star", stage=stage))
    elif iters.get("data") and not is_class2d:
        it = max(iters["data"])
        job.outputs.append(ParticleSet(path=iters["data"][it], stage=stage, iteration=it))
    h1, h2 = folder / "run_half1_class001_unfil.mrc", folder / "run_half2_class001_unfil.mrc"
    if h1.name in names and h2.name in names:
        job.outputs.append(HalfMapPair(path=h1, half2=h2))
    elif halves:
        done = [i for i, d in halves.items() if len(d) == 2]
        if done:
            it = max(done)
            job.outputs.append(HalfMapPair(path=halves[it]["1"], half2=halves[it]["2"], iteration=it))
    if "mask.mrc" in names:
        job.outputs.append(MaskFile(path=folder / "mask.mrc"))
    if "postprocess.star" in names:
        job.outputs.append(_postprocess(job, pp, folder, names))
    for n, role in (("run_class001.mrc", "map"), ("initial_model.mrc", "initial model"),
                    ("relion_locres_filtered.mrc", "local-resolution filtered")):
        if n in names:
            job.outputs.append(MapFile(path=folder / n, role=role))
    if not job.outputs and nodes:
        job.notes.append(f"{len(nodes)} outputs in the pipeline, none of a kind cryodiag opens")


def _pick_index(job: Job, pp: ProjectPaths, index: Path) -> PickFiles | None:
    try:
        blocks = _read_star(index)
    except CryodiagInputError as err:
        job.notes.append(f"{index.name} could not be read: {err.problem}")
        return None
    df = _loop(blocks, "coordinate_files", "")
    if df is None or "rlnMicrographCoordinates" not in df.columns:
        job.notes.append(f"{index.name} has no rlnMicrographCoordinates column")
        return None
    coords = df["rlnMicrographCoordinates"].astype(str).to_list()
    mics = df["rlnMicrographName"].astype(str).to_list() if "rlnMicrographName" in df.columns else [""] * len(coords)
    res = pp.resolve(coords)
    _note(job, res, "coordinate files", index)
    mstar = next((p for p in job.input_files if p.name.endswith(".star") and p.is_file()), None)
    return PickFiles(path=index, style="relion-index", coordinate_files=res.found,
                     micrograph_names=[m for m, p in zip(mics, res.paths) if p is not None], n_listed=len(coords),
                     micrographs_star=mstar)


def _pick_suffix(job: Job, pp: ProjectPaths, suffix_file: Path, suffix: str) -> PickFiles:
    """RELION 3.1: the suffix file holds the name of the micrograph STAR the picks were made on."""
    mstar = None
    try:
        text = suffix_file.read_text(errors="replace")
    except OSError:
        text = ""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if first and first.endswith(".star") and "_rln" not in first:
        mstar, why = pp.one(first)
        if mstar is None:
            _not_used(job, f"{suffix_file.name} names {first}", why)
    if mstar is None:
        mstar = next((p for p in job.input_files if p.name.endswith(".star") and p.is_file()), None)
    files: list[Path] = []
    mic_names: list[str] = []
    n_listed = 0
    if mstar is not None:
        try:
            df = _loop(_read_star(mstar), "micrographs", "")
        except CryodiagInputError:
            df = None
        if df is not None and "rlnMicrographName" in df.columns:
            names = df["rlnMicrographName"].astype(str).to_list()
            n_listed = len(names)
            expected = [coordinate_file_of(n, job.folder, suffix) for n in names]
            files = [p for p in expected if pp.exists(p)]
            mic_names = [n for n, p in zip(names, expected) if pp.exists(p)]
            if len(files) < n_listed:  # not picked (yet): RELION writes no file for them
                job.notes.append(f"{n_listed - len(files)} of {n_listed} micrographs of {mstar.name} have no "
                                 f"_{suffix}.star file (not picked)")
    if not files:  # no micrograph list: the coordinate files under the job folder
        files = sorted(p for p in job.folder.rglob(f"*_{suffix}.star") if p.is_file())
        n_listed = len(files)
    return PickFiles(path=suffix_file, style="relion-suffix", coordinate_files=files, micrograph_names=mic_names,
                     n_listed=n_listed, micrographs_star=mstar)


def _postprocess(job: Job, pp: ProjectPaths, folder: Path, names: set[str]) -> PostProcessResult:
    star = folder / "postprocess.star"
    out = PostProcessResult(path=star, map=folder / "postprocess.mrc" if "postprocess.mrc" in names else None,
                            masked_map=folder / "postprocess_masked.mrc" if "postprocess_masked.mrc" in names else None)
    try:
        general = _read_star(star).get("general")
    except CryodiagInputError as err:
        job.notes.append(f"postprocess.star could not be read: {err.problem}")
        return out
    if isinstance(general, dict):
        res = general.get("rlnFinalResolution")
        out.final_resolution_A = float(res) if isinstance(res, (int, float)) else None
        for lab, attr in (("rlnUnfilteredMapHalf1", "half1"), ("rlnUnfilteredMapHalf2", "half2"),
                          ("rlnMaskName", "mask")):
            v = general.get(lab)
            if isinstance(v, str) and v and v != "None":
                p, why = pp.one(v)
                if p is None:
                    _not_used(job, f"postprocess.star's {lab} {v}", why)
                setattr(out, attr, p)
    return out
