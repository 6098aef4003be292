"""A cryoSPARC project folder (``P*/``) and its job folders (``J*/`` with ``job.json``).

A job's type, state, title, creation time and inputs come from its ``job.json`` (``type``,
``status``, ``title``, ``created_at``, ``input_slot_groups[].connections[].job_uid``); what it
holds comes from its files, recognised by their fields (the ``.cs`` header: no rows are read)
and by cryoSPARC's names, ``J<n>_[<iteration>_]<what>.<cs|mrc>`` (or the older
``cryosparc_P<p>_J<n>_…``):

=============================================  ==============================================
``.cs`` with ``micrograph_blob/*``             :class:`~.model.MicrographSet` (and, with
(``J3_exposures…cs``, a picker's passthrough   ``ctf/*``, :class:`~.model.CtfResults`):
``J4_passthrough_micrographs.cs``)             exposures, the micrographs they name found in
                                               the project
``.cs`` with ``location/*`` only               :class:`~.model.PickFiles` ``cryosparc``
``.cs`` with ``blob/*`` or ``alignments3D/*``  :class:`~.model.ParticleSet` (extracted, refined)
                                               with ``J<n>_passthrough_particles.cs``
``.cs`` with ``alignments2D/*`` +              :class:`~.model.Class2DIteration` (last
``J<n>_<it>_class_averages.mrc``               iteration)
``…map_half_A.mrc`` / ``…map_half_B.mrc``      :class:`~.model.HalfMapPair` with the job's
                                               ``mask_fsc_auto`` (else ``mask_fsc``) mask
``…mask_*.mrc``; ``…map.mrc``, ``…map_sharp``  :class:`~.model.MaskFile`; :class:`~.model.MapFile`
=============================================  ==============================================

Of files with iterations, the last iteration's. Paths inside ``.cs`` files are relative to the
project folder (``J2/motioncorrected/…``); cryoSPARC marks imported absolute paths with ``>``.
Compressed ``.cs`` files (cryoSPARC's CSDAT) are recognised by their names only.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from .model import (
    Class2DIteration, CtfResults, HalfMapPair, Job, MapFile, MaskFile, MicrographSet, ParticleSet, PickFiles, Project,
)
from .paths import ProjectPaths

__all__ = ["is_cryosparc_job", "find_cryosparc_root", "discover_cryosparc", "cs_fields", "STATUS_OF"]

_JOB = re.compile(r"^J(\d+)$")
_OUTPUT = re.compile(r"^(?:cryosparc_P\d+_)?J(\d+)_(?:(\d{3,})_)?(.+)$")
#: cryoSPARC job states -> :data:`~.model.STATUSES`
STATUS_OF = {"completed": "succeeded", "running": "running", "started": "running", "launched": "running",
             "queued": "scheduled", "building": "scheduled", "waiting": "running", "failed": "failed",
             "killed": "aborted"}


def is_cryosparc_job(folder: Path) -> bool:
    folder = Path(folder)
    return bool(_JOB.match(folder.name)) and (folder / "job.json").is_file()


def _has_jobs(folder: Path) -> bool:
    try:
        return any(_JOB.match(n) and (folder / n / "job.json").is_file() for n in os.listdir(folder))
    except OSError:
        return False


def find_cryosparc_root(path: Path) -> Path | None:
    """The cryoSPARC project folder of ``path``: it (``project.json``, or job folders inside), or
    the folder of the job folder ``path`` is."""
    p = Path(os.path.abspath(path))
    if p.is_file():
        p = p.parent
    if (p / "project.json").is_file() or (p.is_dir() and _has_jobs(p)):
        return p
    if is_cryosparc_job(p) or (_JOB.match(p.name) and (p.parent / "project.json").is_file()):
        return p.parent
    return None


def cs_fields(path: Path) -> list[str] | None:
    """Field names of a NumPy-format ``.cs`` (its header only); None for another format."""
    from numpy.lib import format as npf

    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                return None
            f.seek(0)
            version = npf.read_magic(f)
            reader = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
            _, _, dtype = reader(f, max_header_size=2**30)
    except (OSError, ValueError):
        return None
    return list(dtype.names or [])


def _cs_column(path: Path, field: str) -> np.ndarray | None:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False, max_header_size=2**30)
        return np.asarray(arr[field])
    except (OSError, ValueError, KeyError):
        return None


def _time(value) -> float | None:
    """cryoSPARC's ``created_at``: ``{"$date": "2024-01-02T03:04:05.678Z"}``, an ISO text, or
    milliseconds since the epoch."""
    if isinstance(value, dict):
        value = value.get("$date")
    if isinstance(value, (int, float)):
        return float(value) / (1000.0 if value > 1e11 else 1.0)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _read_job_json(folder: Path, job: Job) -> dict:
    try:
        doc = json.loads((folder / "job.json").read_text(errors="replace"))
    except FileNotFoundError:
        job.notes.append("no job.json (type and state unknown)")
        return {}
    except (OSError, ValueError) as err:
        job.notes.append(f"job.json could not be read ({err})")
        return {}
    return doc if isinstance(doc, dict) else {}


def _inputs(doc: dict) -> list[str]:
    out = []
    for grp in doc.get("input_slot_groups") or []:
        for con in (grp or {}).get("connections") or []:
            uid = (con or {}).get("job_uid")
            if isinstance(uid, str) and uid not in out:
                out.append(uid)
    for uid in doc.get("parents") or []:
        if isinstance(uid, str) and uid not in out:
            out.append(uid)
    return out


def discover_cryosparc(root: Path, opened: Path | None = None) -> Project:
    """Every job of the cryoSPARC project at ``root`` and what it holds (module docstring)."""
    root = Path(os.path.abspath(root))
    project = Project(root=root, layout="cryosparc", opened=Path(os.path.abspath(opened)) if opened else root)
    pp = ProjectPaths(root)
    try:
        names = os.listdir(root)
    except OSError as err:
        project.notes.append(f"the project folder cannot be read ({err.strerror})")
        names = []
    for n in names:
        m = _JOB.match(n)
        if not m or not (root / n).is_dir():
            continue
        job = Job(id=n, type="", folder=root / n, number=int(m.group(1)))
        doc = _read_job_json(root / n, job)
        job.type = str(doc.get("type") or doc.get("job_type") or "")
        job.label = str(doc.get("title") or "")
        raw = str(doc.get("status") or "")
        job.status = STATUS_OF.get(raw, raw)
        job.time = _time(doc.get("created_at")) or _mtime(root / n)
        job.inputs = _inputs(doc)
        if not project.version and isinstance(doc.get("version"), str):
            project.version = doc["version"]
        _find_outputs(job, pp)
        project.jobs.append(job)
    project.jobs.sort(key=lambda j: j.number, reverse=True)
    opened_p = project.opened
    if opened_p is not None and opened_p != root:
        top = opened_p if opened_p.is_dir() else opened_p.parent
        try:
            rel = top.relative_to(root).parts
        except ValueError:
            rel = ()
        if rel:
            project.focus = [j.id for j in project.jobs if j.id == rel[0]]
    return project


def _mtime(p: Path) -> float | None:
    try:
        return p.stat().st_mtime
    except OSError:
        return None


def _role(fields: list[str] | None, what: str) -> str:
    """``exposures``, ``picks``, ``particles``, ``refined``, ``class2d`` or ``""`` for a ``.cs``."""
    if fields is None:  # compressed or unreadable: the name says
        w = what.lower()
        if "exposure" in w or "micrograph" in w:
            return "exposures"
        if "pick" in w:
            return "picks"
        if "particle" in w:
            return "particles"
        return ""
    f = set(fields)
    if any(n.startswith("micrograph_blob/") for n in f):
        return "exposures"
    if "alignments2D/class" in f:
        return "class2d"
    if any(n.startswith("alignments3D/") for n in f):
        return "refined"
    if "blob/path" in f:
        return "particles"
    if "location/center_x_frac" in f:
        return "picks"
    return ""


def _find_outputs(job: Job, pp: ProjectPaths) -> None:
    folder = job.folder
    try:
        names = sorted(os.listdir(folder))
    except OSError as err:
        job.notes.append(f"the job folder cannot be read ({err.strerror})")
        return
    cs: dict[str, dict] = {}  # role -> {iteration: path}, passthrough separately
    passthrough: dict[str, Path] = {}
    volumes: dict[str, dict] = {}
    for n in names:
        p = folder / n
        low = n.lower()
        stem, ext = (n.rsplit(".", 1) + [""])[:2]
        m = _OUTPUT.match(stem)
        it = int(m.group(2)) if (m and m.group(2)) else -1
        what = m.group(3) if m else stem
        if ext.lower() == "cs" and p.is_file():
            fields = cs_fields(p)
            role = _role(fields, what)
            if not role:
                continue
            if "passthrough" in low:  # keyed by what passes through: exposures, or particles (of any kind)
                passthrough["exposures" if role == "exposures" else "particles"] = p
            else:
                cs.setdefault(role, {})[it] = p
        elif ext.lower() in ("mrc", "mrcs") and p.is_file():
            key = what[len("volume_"):] if what.startswith("volume_") else what
            volumes.setdefault(key, {})[it] = p

    def last(d: dict) -> tuple[int, Path]:
        it = max(d)
        return it, d[it]

    # exposures: the job's own, else the passthrough ones (the micrographs a picker worked on)
    exp_path = last(cs["exposures"])[1] if "exposures" in cs else passthrough.get("exposures")
    if exp_path is not None:
        _exposures(job, pp, exp_path)
    if "picks" in cs:
        job.outputs.append(PickFiles(path=last(cs["picks"])[1], style="cryosparc"))
    for role, stage in (("refined", "refine3d"), ("particles", "extract")):
        if role in cs:
            it, p = last(cs[role])
            pt = passthrough.get("particles")
            job.outputs.append(ParticleSet(path=p, stage=stage, passthrough=pt, iteration=None if it < 0 else it))
    if "class2d" in cs:
        it, p = last(cs["class2d"])
        avg = volumes.get("class_averages", {})
        job.outputs.append(Class2DIteration(
            path=p, iteration=max(it, 0), classes=avg.get(it) or (last(avg)[1] if avg else None),
            passthrough=passthrough.get("particles"),
            iterations=sorted(i for i in cs["class2d"] if i >= 0) or [0]))
    if "map_half_A" in volumes and "map_half_B" in volumes:
        it = max(set(volumes["map_half_A"]) & set(volumes["map_half_B"]), default=None)
        if it is not None:
            mask = None
            for key in ("mask_fsc_auto", "mask_fsc", "mask_refine"):
                if key in volumes:
                    mask = volumes[key].get(it) or last(volumes[key])[1]
                    break
            job.outputs.append(HalfMapPair(path=volumes["map_half_A"][it], half2=volumes["map_half_B"][it],
                                           mask=mask, iteration=None if it < 0 else it))
    for key in sorted(volumes):
        if key.startswith("mask"):
            job.outputs.append(MaskFile(path=last(volumes[key])[1]))
    for key, role in (("map", "map"), ("map_sharp", "sharpened")):
        if key in volumes:
            job.outputs.append(MapFile(path=last(volumes[key])[1], role=role))


def _exposures(job: Job, pp: ProjectPaths, path: Path) -> None:
    fields = cs_fields(path) or []
    mic_field = next((f for f in ("micrograph_blob/path", "micrograph_blob_non_dw/path") if f in fields), None)
    found: list[Path] = []
    n = 0
    ps = None
    if mic_field is not None:
        vals = _cs_column(path, mic_field)
        if vals is not None:
            names = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in vals]
            n = len(names)
            res = pp.resolve(names)
            job.notes += res.notes("micrographs", path.name)
            job.outside += len(res.outside)
            job.missing += len(res.missing)
            found = res.found
        if "micrograph_blob/psize_A" in fields:
            v = _cs_column(path, "micrograph_blob/psize_A")
            if v is not None and len(v):
                ps = float(np.median(v))
    job.outputs.append(MicrographSet(path=path, micrographs=found, n_listed=n, pixel_size_A=ps))
    if "ctf/df1_A" in fields:
        stats = [s for f, s in (("ctf_stats/ctf_fit_to_A", "max_resolution"), ("ctf_stats/cross_corr", "figure_of_merit"),
                                ("ctf_stats/df_range", "defocus_range"), ("ctf_stats/ice_thickness_rel", "ice_thickness"))
                 if f in fields]
        job.outputs.insert(len(job.outputs) - 1, CtfResults(path=path, n_micrographs=n, statistics=stats))
