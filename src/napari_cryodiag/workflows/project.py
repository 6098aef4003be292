"""A project end to end: which files each diagnostic takes from it, and reading them.

:func:`open_project` (:mod:`napari_cryodiag.io.projects`) says what each job holds. Here the
diagnostics' inputs are chosen from it, as a user would, and read:

- **Inspect Picks** (:func:`pick_source`, :func:`read_pick_source`): a picks job, the micrographs
  the picks were made on (the micrograph list its files or the pipeline name, else the nearest
  upstream job with micrographs) and the CTF of those micrographs (the nearest upstream CTF job;
  cryoSPARC: the exposures the picker passed through). The picks get their micrograph's defocus
  from the CTF table (joined by cryoSPARC micrograph uid, else by micrograph name).
- **Map validation** (:func:`map_source`): a PostProcess job's half maps and mask, else the newest
  half maps with their job's FSC mask (cryoSPARC ``mask_fsc_auto``) or the newest mask.
- **Orientations** (:func:`particle_source`, :func:`read_particles`): the newest refined particles
  (joined with their cryoSPARC passthrough file on ``uid``) with the half maps of the same job.
- **Classes** (:func:`class2d_source`): the last iteration of the newest 2D classification.

Each ``*_source(project, job=None)`` takes a job (id or :class:`~napari_cryodiag.io.projects.Job`)
to use instead of the newest, and returns None when the project has nothing for it.
:func:`project_summary` is what ``cryodiag open --json`` prints. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..io.projects import (
    Class2DIteration, CtfResults, HalfMapPair, Job, MicrographSet, ParticleSet, PickFiles, Project, open_project,
)

__all__ = ["open_project", "PickSource", "PickData", "MapSource", "ParticleSource", "pick_source", "read_pick_source",
           "map_source", "particle_source", "read_particles", "class2d_source", "join_exposures", "read_exposures",
           "project_summary", "CTF_COLUMNS", "ProjectView", "project_view", "job_view", "job_holds"]

#: per-micrograph values a pick or particle takes from the exposures when it lacks them
CTF_COLUMNS = ("defocus_A", "defocus_u_A", "defocus_v_A", "defocus_angle_deg", "pixel_size_A", "voltage_kV", "cs_mm",
               "amplitude_contrast", "micrograph_ny", "micrograph_nx")


def _job(project: Project, job) -> Job | None:
    if job is None:
        return None
    if isinstance(job, Job):
        return job
    j = project.job(str(job))
    if j is None:
        raise CryodiagInputError(f"no job {job} in the project", project.root)
    return j


def _nearest(project: Project, job: Job, kind: str):
    """``(job, result)`` of ``kind``: ``job``'s own, else its nearest upstream job's, else the
    newest job's that is older than ``job``, else the newest; ``(None, None)`` when none has one."""
    for j in [job, *project.upstream(job)]:
        out = j.output(kind)
        if out is not None:
            return j, out
    older = [(j, o) for j, o in project.results(kind) if j.number < job.number]
    if older:
        return older[0]
    return project.latest(kind)


def _job_of_file(project: Project, path: Path | None) -> Job | None:
    if path is None:
        return None
    for j in project.jobs:
        if any(path in o.files()[:1] for o in j.outputs):
            return j
    return None


# --------------------------------------------------------------------------- Inspect Picks


@dataclass
class PickSource:
    """The picks of one job, the micrographs they are on and their CTF."""

    job: Job
    picks: PickFiles
    micrographs: MicrographSet | None = None
    micrographs_job: Job | None = None
    ctf: CtfResults | None = None
    ctf_job: Job | None = None

    def files(self) -> list[Path]:
        out = list(self.picks.files())
        out += self.micrographs.files() if self.micrographs else []
        out += self.ctf.files() if self.ctf else []
        return out

    def to_dict(self, root=None) -> dict:
        return {"picks_job": self.job.id, "picks": self.picks.to_dict(root),
                "micrographs_job": self.micrographs_job.id if self.micrographs_job else None,
                "n_micrographs": len(self.micrographs.micrographs) if self.micrographs else 0,
                "ctf_job": self.ctf_job.id if self.ctf_job else None,
                "ctf": self.ctf.to_dict(root) if self.ctf else None}


def pick_source(project: Project, job=None) -> PickSource | None:
    """The picks of ``job`` (default: the opened job when it has picks, else the newest picks
    job) with their micrographs and CTF (module docstring)."""
    j = _job(project, job)
    if j is None:
        focused = [f for f in project.focused_jobs if f.has("picks")] if project.focus else []
        j = focused[0] if focused else project.latest("picks")[0]
    if j is None or not j.has("picks"):
        return None
    picks = j.output("picks")
    src = PickSource(job=j, picks=picks)
    made_on = _job_of_file(project, picks.micrographs_star)
    start = made_on or j
    src.ctf_job, src.ctf = _nearest(project, start, "ctf")
    src.micrographs_job, src.micrographs = (src.ctf_job, src.ctf_job.output("micrographs")) \
        if src.ctf_job is not None and src.ctf_job.has("micrographs") else _nearest(project, start, "micrographs")
    return src


@dataclass
class PickData:
    """The tables of a :class:`PickSource`: the picks (canonical, with their micrograph's CTF),
    the per-micrograph table (None without a CTF job), the micrograph files, and notes."""

    table: pd.DataFrame
    exposures: pd.DataFrame | None
    micrographs: list[Path]
    notes: list[str] = field(default_factory=list)


def read_exposures(result: CtfResults | MicrographSet) -> pd.DataFrame:
    from ..io.exposures import read_exposures as _read

    return _read(result.path)


def read_pick_source(src: PickSource) -> PickData:
    """Read the picks (one table) and the CTF table, and give every pick its micrograph's CTF."""
    from ..io.picks import read_table

    picks = src.picks
    notes: list[str] = []
    if picks.style == "cryosparc":
        table = read_table(picks.path)
    else:
        if not picks.coordinate_files:
            raise CryodiagInputError("no coordinate files of this picks job are in the project", picks.path)
        files = [str(p) for p in picks.coordinate_files]
        table = read_table(files if len(files) > 1 else files[0])
        if picks.micrograph_names and len(files) > 1 and "source_file" in table.columns:
            name_of = dict(zip(files, picks.micrograph_names))
            names = table["source_file"].astype(str).map(name_of)
            if names.notna().all():
                from ..micrographs import categorical_names_and_keys

                table["micrograph_name"], table["micrograph"] = categorical_names_and_keys(names.to_numpy(dtype=object))
        elif picks.micrograph_names and len(files) == 1:
            from ..micrographs import categorical_names_and_keys

            table["micrograph_name"], table["micrograph"] = categorical_names_and_keys(
                np.full(len(table), picks.micrograph_names[0], dtype=object))
        table.attrs["source"] = str(picks.path)
        table.attrs["sources"] = files
    exposures = read_exposures(src.ctf) if src.ctf is not None else None
    if exposures is not None:
        notes += join_exposures(table, exposures)
    mics = list(src.micrographs.micrographs) if src.micrographs is not None else []
    return PickData(table=table, exposures=exposures, micrographs=mics, notes=notes)


def join_exposures(table: pd.DataFrame, exposures: pd.DataFrame, columns=CTF_COLUMNS) -> list[str]:
    """Give each row of ``table`` its micrograph's ``columns`` from ``exposures`` where the table
    lacks them (in place): by cryoSPARC micrograph uid when both have one, else by micrograph
    key. Returns notes (rows whose micrograph the exposures lack)."""
    if "micrograph_uid" in table.columns and "micrograph_uid" in exposures.columns:
        key_t, key_e, by = table["micrograph_uid"], exposures["micrograph_uid"], "micrograph uid"
    elif "micrograph" in table.columns and "micrograph" in exposures.columns:
        key_t, key_e, by = table["micrograph"].astype(str), exposures["micrograph"].astype(str), "micrograph name"
    else:
        return ["the picks have no micrograph names to join the CTF table on"]
    per = exposures.assign(_key=key_e.to_numpy()).drop_duplicates("_key").set_index("_key")
    idx = per.index.get_indexer(key_t.to_numpy())
    notes = []
    n_missing = int((idx < 0).sum())
    if n_missing:
        notes.append(f"{n_missing:,} of {len(table):,} rows are on micrographs the CTF table lacks (joined by {by})")
    for c in columns:
        if c in per.columns and (c not in table.columns or table[c].isna().all()):
            vals = per[c].to_numpy()
            out = np.where(idx >= 0, vals[np.maximum(idx, 0)], np.nan) if len(per) else np.full(len(table), np.nan)
            table[c] = out.astype(np.float64) if out.dtype.kind in "iuf" else out
    return notes


# --------------------------------------------------------------------------- Map validation


@dataclass
class MapSource:
    """Half maps and a mask for Map validation, with the jobs they come from."""

    half1: Path
    half2: Path
    mask: Path | None = None
    job: Job | None = None
    mask_job: Job | None = None
    postprocess: Path | None = None

    def files(self) -> list[Path]:
        return [p for p in (self.half1, self.half2, self.mask, self.postprocess) if p is not None]

    def to_dict(self, root=None) -> dict:
        rel = (lambda p: None if p is None else (str(p.relative_to(root)) if root else str(p)))
        return {"job": self.job.id if self.job else None, "half1": rel(self.half1), "half2": rel(self.half2),
                "mask": rel(self.mask), "mask_job": self.mask_job.id if self.mask_job else None,
                "postprocess": rel(self.postprocess)}


def _newest_mask(project: Project, job: Job):
    j, m = _nearest_downstream_mask(project, job)
    return (j, m) if m is not None else project.latest("mask")


def _nearest_downstream_mask(project: Project, job: Job):
    """A MaskCreate job made from ``job``'s map (it reads ``job``), newest first."""
    for j, m in project.results("mask"):
        if job.id in j.inputs:
            return j, m
    return None, None


def map_source(project: Project, job=None) -> MapSource | None:
    """Half maps and mask (module docstring); ``job``: a PostProcess, refinement or mask job."""
    j = _job(project, job)
    candidates = [j] if j is not None else ([*project.focused_jobs] if project.focus else []) + list(project.jobs)
    for c in candidates:
        pp = c.output("postprocess")
        if pp is not None and pp.half1 is not None and pp.half2 is not None:
            return MapSource(half1=pp.half1, half2=pp.half2, mask=pp.mask, job=c,
                             mask_job=_job_of_file(project, pp.mask), postprocess=pp.path)
        hm: HalfMapPair | None = c.output("half_maps")
        if hm is not None:
            mj, mask = (c, hm.mask) if hm.mask is not None else (None, None)
            if mask is None:
                mj, m = _newest_mask(project, c)
                mask = m.path if m is not None else None
            return MapSource(half1=hm.half1, half2=hm.half2, mask=mask, job=c, mask_job=mj)
        if c.has("mask") and j is not None:  # a mask job: the half maps it was made from
            for up in project.upstream(c):
                hm = up.output("half_maps")
                if hm is not None:
                    return MapSource(half1=hm.half1, half2=hm.half2, mask=c.output("mask").path, job=up, mask_job=c)
    return None


# --------------------------------------------------------------------------- Orientations, Classes


@dataclass
class ParticleSource:
    job: Job
    particles: ParticleSet
    half_maps: HalfMapPair | None = None

    def to_dict(self, root=None) -> dict:
        return {"job": self.job.id, "particles": self.particles.to_dict(root),
                "half_maps": self.half_maps.to_dict(root) if self.half_maps else None}


def particle_source(project: Project, job=None) -> ParticleSource | None:
    """Refined particles (the newest refinement's, else the newest particle set) and the half maps
    of the same job."""
    j = _job(project, job)
    if j is not None:
        ps = j.output("particles")
        return ParticleSource(job=j, particles=ps, half_maps=j.output("half_maps")) if ps is not None else None
    focused = [f for f in project.focused_jobs if f.has("particles")] if project.focus else []
    refined = [(jj, o) for jj, o in project.results("particles") if o.stage in ("refine3d", "class3d")]
    pick = (focused[0], focused[0].output("particles")) if focused else (refined[0] if refined else
                                                                           project.latest("particles"))
    if pick[0] is None:
        return None
    return ParticleSource(job=pick[0], particles=pick[1], half_maps=pick[0].output("half_maps"))


def read_particles(ps: ParticleSet) -> pd.DataFrame:
    """The particle table, with the fields of its cryoSPARC passthrough file (joined on ``uid``)
    that it lacks."""
    from ..io.picks import read_table

    t = read_table(ps.path)
    if ps.passthrough is None or "uid" not in t.columns:
        return t
    pt = read_table(ps.passthrough)
    if "uid" not in pt.columns:
        return t
    add = [c for c in pt.columns if c not in t.columns and c not in ("source_row", "source_file")]
    if not add:
        return t
    per = pt.drop_duplicates("uid").set_index("uid")
    idx = per.index.get_indexer(t["uid"].to_numpy())
    attrs = dict(t.attrs)
    for c in add:
        vals = per[c].to_numpy()
        if isinstance(per[c].dtype, pd.CategoricalDtype):
            vals = per[c].astype(object).to_numpy()
        t[c] = np.where(idx >= 0, vals[np.maximum(idx, 0)], None if vals.dtype == object else np.nan) if len(per) \
            else np.nan
    t.attrs = attrs
    t.attrs["passthrough"] = str(ps.passthrough)
    return t


def class2d_source(project: Project, job=None) -> tuple[Job, Class2DIteration] | None:
    """The last iteration of ``job``'s (default: the newest) 2D classification."""
    j = _job(project, job)
    if j is not None:
        c = j.output("class2d")
        return (j, c) if c is not None else None
    focused = [f for f in project.focused_jobs if f.has("class2d")] if project.focus else []
    if focused:
        return focused[0], focused[0].output("class2d")
    j, c = project.latest("class2d")
    return (j, c) if j is not None else None


# --------------------------------------------------------------------------- summary


def project_summary(project: Project) -> dict:
    """The project as data (``Project.to_dict``) with the inputs each diagnostic would take."""
    d = project.to_dict()
    root = project.root
    ps = pick_source(project)
    ms = map_source(project)
    pa = particle_source(project)
    c2 = class2d_source(project)
    d["inputs"] = {
        "inspect_picks": ps.to_dict(root) if ps else None,
        "map_validation": ms.to_dict(root) if ms else None,
        "orientations": pa.to_dict(root) if pa else None,
        "classes": {"job": c2[0].id, **c2[1].to_dict(root)} if c2 else None,
    }
    return d


# --------------------------------------------------------------------------- the viewer's first look


@dataclass
class ProjectView:
    """What opening a project in napari shows (:func:`project_view`): the micrographs (one stack)
    with the job they come from, the picks on them (:class:`PickSource`, read with
    :func:`read_pick_source`), the CTF table's job, and the half maps and mask
    (:class:`MapSource`) with the ``model.star`` next to the half maps when there is one."""

    project: Project
    micrographs: list[Path] = field(default_factory=list)
    micrographs_job: Job | None = None
    picks: PickSource | None = None
    ctf: CtfResults | None = None
    ctf_job: Job | None = None
    maps: MapSource | None = None
    model: Path | None = None
    particles: ParticleSource | None = None  #: only when a particle job was opened (its folder, or a chosen job)
    class2d: tuple[Job, Class2DIteration] | None = None  #: likewise, a 2D classification job

    def describe(self) -> str:
        """One sentence: what is opened from which job."""
        what = {"relion": "RELION project", "cryosparc": "cryoSPARC project"}.get(self.project.layout, "project")
        parts = []
        if self.micrographs:
            parts.append(f"{len(self.micrographs)} micrographs from {self.micrographs_job.id}")
        if self.picks is not None:
            parts.append(f"picks from {self.picks.job.id}")
        if self.ctf_job is not None:
            parts.append(f"CTF from {self.ctf_job.id}")
        if self.maps is not None:
            pp = " with its postprocess.star" if self.maps.postprocess is not None else ""
            parts.append(f"half maps from {self.maps.job.id}{pp}" + (
                f", mask from {(self.maps.mask_job or self.maps.job).id}" if self.maps.mask is not None else ""))
        if self.class2d is not None:
            parts.append(f"2D classes (iteration {self.class2d[1].iteration}) from {self.class2d[0].id}")
        elif self.particles is not None:
            parts.append(f"particles ({self.particles.particles.stage}) from {self.particles.job.id}")
        focus = f" ({', '.join(self.project.focus)})" if self.project.focus else ""
        return f"{what} {self.project.root.name}{focus}: " + ("; ".join(parts) if parts else "nothing to show")


def _focused_has(project: Project, kind: str) -> bool:
    return not project.focus or any(j.has(kind) for j in project.focused_jobs)


def project_view(project: Project) -> ProjectView:
    """The inputs a user expects on opening ``project`` (or one of its job folders) in napari:
    the picks of the newest picks job (:func:`pick_source`) on their micrographs with the CTF of
    those micrographs, else the newest micrographs and CTF; the half maps and mask Map validation
    takes (:func:`map_source`). A job folder opened shows only what its jobs hold (and the
    micrographs and CTF its picks are on). Nothing is read beyond the lists and headers."""
    view = ProjectView(project=project)
    ps = pick_source(project) if _focused_has(project, "picks") else None
    if ps is not None and ps.micrographs is not None and ps.micrographs.micrographs:
        view.picks, view.micrographs, view.micrographs_job = ps, list(ps.micrographs.micrographs), ps.micrographs_job
        view.ctf, view.ctf_job = ps.ctf, ps.ctf_job
    else:
        view.picks = ps
        if _focused_has(project, "micrographs"):
            j, m = project.latest("micrographs", prefer=project.focus or None)
            if m is not None and m.micrographs:
                view.micrographs, view.micrographs_job = list(m.micrographs), j
                view.ctf_job, view.ctf = _nearest(project, j, "ctf")
        if ps is not None and ps.ctf is not None:
            view.ctf, view.ctf_job = ps.ctf, ps.ctf_job
    if _focused_has(project, "half_maps") or _focused_has(project, "postprocess") or (
            project.focus and _focused_has(project, "mask")):
        ms = map_source(project)
        if ms is not None:
            view.maps = ms
            model = ms.half1.parent / ms.half1.name.replace("_half1_class001_unfil.mrc", "_model.star")
            view.model = model if model != ms.half1 and model.is_file() else None
    if project.focus and _focused_has(project, "class2d"):
        view.class2d = class2d_source(project)
    elif project.focus and _focused_has(project, "particles") and not _focused_has(project, "picks"):
        view.particles = particle_source(project)
    return view


def job_view(project: Project, job) -> ProjectView:
    """What opening job ``job`` (an id or a :class:`Job`, e.g. one chosen among
    ``project.jobs``) shows: :func:`project_view` with that job in focus, as File > Open on its
    folder does (its picks on their micrographs with their CTF, its half maps and mask, its
    particles or 2D classes)."""
    import dataclasses

    j = _job(project, job)
    return project_view(dataclasses.replace(project, focus=[j.id]))


def _cs_rows(path: Path) -> int | None:
    """Records of an uncompressed ``.cs`` from its header (None when it cannot tell)."""
    from numpy.lib import format as npf

    try:
        with open(path, "rb") as f:
            version = npf.read_magic(f)
            reader = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
            shape = reader(f, max_header_size=2**30)[0]
        return int(np.prod(shape))
    except (OSError, ValueError, EOFError):
        return None


def _n(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def job_holds(job: Job) -> str:
    """What ``job`` holds, in a few words for a job chooser (``"4 micrographs, CTF of 4, picks
    on 4 micrographs"``); only headers are read (a cryoSPARC ``.cs``'s record count)."""
    parts = []
    for o in job.outputs:
        if isinstance(o, MicrographSet):
            parts.append(_n(len(o.micrographs), "micrograph"))
        elif isinstance(o, CtfResults):
            parts.append(f"CTF of {o.n_micrographs}")
        elif isinstance(o, PickFiles):
            n = _cs_rows(o.path) if o.style == "cryosparc" else None
            parts.append(f"{n:,} picks" if n is not None else
                         f"picks on {_n(len(o.coordinate_files), 'micrograph')}" if o.style != "cryosparc" else "picks")
        elif isinstance(o, Class2DIteration):
            parts.append(f"2D classes, iteration {o.iteration}")
        elif isinstance(o, ParticleSet):
            n = _cs_rows(o.path) if o.path.suffix == ".cs" else None
            parts.append(f"{n:,} particles ({o.stage})" if n is not None else f"particles ({o.stage})")
        elif isinstance(o, HalfMapPair):
            parts.append("half maps" + (" + mask" if o.mask is not None else ""))
        elif o.kind == "mask" and not any(isinstance(x, HalfMapPair) for x in job.outputs):
            parts.append("mask")
        elif o.kind == "postprocess":
            res = getattr(o, "final_resolution_A", None)
            parts.append("postprocess" + (f" {res:.2f} Å" if res else ""))
        elif o.kind == "map" and not any(isinstance(x, HalfMapPair) for x in job.outputs):
            parts.append("map")
    seen, out = set(), []
    for p in parts:  # a cryoSPARC exposure file is both micrographs and CTF: say each once
        if p not in seen:
            seen.add(p)
            out.append(p)
    return ", ".join(out) if out else "nothing this plugin opens"
