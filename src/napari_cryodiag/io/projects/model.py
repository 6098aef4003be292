"""What a project holds: its jobs (newest first) and, per job, typed results.

A :class:`Project` is what :func:`~napari_cryodiag.io.projects.open_project` found in a RELION or
cryoSPARC project folder (or in one of its job folders): nothing is read beyond what tells which
files a job wrote (the pipeline, ``job.json``, the micrograph/coordinate lists, ``.cs`` and MRC
headers), and nothing is ever written.

Paths are absolute (``root`` joined with the names the project's files use). A name that points
outside the project folder is not followed and a listed file that is not there is not used: both
are reported in the job's ``notes`` (and counted in :attr:`Job.outside` / :attr:`Job.missing`).

Results (``Job.outputs``), by ``kind``:

==================  =======================================================================
``micrographs``     :class:`MicrographSet`: a micrograph list (STAR or exposure ``.cs``) and the
                    micrograph files it names that are in the project
``ctf``             :class:`CtfResults`: per-micrograph CTF (``micrographs_ctf.star``, an exposure
                    ``.cs`` with ``ctf/*``); which fit statistics it has
``picks``           :class:`PickFiles`: coordinates (RELION 4/5 index, RELION 3.1 suffix file, a
                    folder of coordinate files, a cryoSPARC pick ``.cs``)
``particles``       :class:`ParticleSet`: a particle table (extracted, refined, selected), with
                    its cryoSPARC passthrough file
``class2d``         :class:`Class2DIteration`: the last iteration of a 2D classification
``half_maps``       :class:`HalfMapPair`: two half maps (and the job's own FSC mask)
``mask``            :class:`MaskFile`
``postprocess``     :class:`PostProcessResult`: ``postprocess.star``, its maps and its inputs
``map``             :class:`MapFile`: any other 3D map a job wrote
==================  =======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, Iterator

__all__ = [
    "JobOutput", "MicrographSet", "CtfResults", "PickFiles", "ParticleSet", "Class2DIteration", "HalfMapPair",
    "MaskFile", "PostProcessResult", "MapFile", "Job", "Project", "STATUSES", "OUTPUT_KINDS",
]

#: a job's state, in RELION's words (cryoSPARC's are mapped onto them); "" when unknown
STATUSES = ("succeeded", "running", "scheduled", "failed", "aborted", "")


def _rel(path: Path | None, root: Path | None) -> str | None:
    if path is None:
        return None
    if root is not None:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return str(path)


@dataclass
class JobOutput:
    """One result of a job; ``path`` is its main file."""

    path: Path
    kind: ClassVar[str] = ""

    def files(self) -> list[Path]:
        """Every file this result stands for (what a reader of it would read)."""
        return [self.path]

    def describe(self, root: Path | None = None) -> str:
        return f"{self.kind}: {_rel(self.path, root)}"

    def to_dict(self, root: Path | None = None) -> dict:
        out: dict = {"kind": self.kind}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = _rel(v, root)
            elif isinstance(v, (list, tuple)) and v and isinstance(v[0], (Path, str)):
                v = [_rel(p, root) if isinstance(p, Path) else p for p in v]
                v = v if len(v) <= 20 else {"n": len(v), "first": v[0]}
            out[f.name] = v
        return out


@dataclass
class MicrographSet(JobOutput):
    """A list of micrographs (``path``: the STAR or exposure ``.cs``) and the files found."""

    micrographs: list[Path] = field(default_factory=list)  #: in the list's order, only those that exist
    n_listed: int = 0  #: rows of the list
    pixel_size_A: float | None = None
    kind: ClassVar[str] = "micrographs"

    def files(self) -> list[Path]:
        return [self.path, *self.micrographs]

    def describe(self, root=None) -> str:
        found = f"{len(self.micrographs)} of {self.n_listed}" if len(self.micrographs) != self.n_listed \
            else f"{self.n_listed}"
        return f"micrographs: {found} in {_rel(self.path, root)}"


@dataclass
class CtfResults(JobOutput):
    """Per-micrograph CTF estimates; ``statistics`` names what the fit reports besides defocus
    (``max_resolution`` = RELION ``rlnCtfMaxResolution`` / cryoSPARC ``ctf_stats/ctf_fit_to_A``,
    ``figure_of_merit`` = ``rlnCtfFigureOfMerit`` / ``ctf_stats/cross_corr``)."""

    n_micrographs: int = 0
    statistics: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "ctf"

    def describe(self, root=None) -> str:
        extra = f" ({', '.join(self.statistics)})" if self.statistics else ""
        return f"CTF of {self.n_micrographs} micrographs{extra}: {_rel(self.path, root)}"


@dataclass
class PickFiles(JobOutput):
    """Pick coordinates. ``style``: ``"relion-index"`` (RELION 4/5 ``autopick.star`` /
    ``manualpick.star``: ``rlnMicrographName`` + ``rlnMicrographCoordinates``), ``"relion-suffix"``
    (RELION 3.1 ``coords_suffix_<s>.star`` naming the micrograph STAR; one
    ``<micrograph>_<s>.star`` per micrograph), ``"cryosparc"`` (a ``.cs`` with ``location/*``).
    ``coordinate_files``: the per-micrograph files found (RELION); ``micrographs_star``: the
    micrograph list the picks were made on, when the files say it."""

    style: str = ""  #: also ``"relion-folder"``: ``*_autopick.star`` files under a job folder without an index
    coordinate_files: list[Path] = field(default_factory=list)
    micrograph_names: list[str] = field(default_factory=list)  #: per coordinate file, its micrograph's name (RELION)
    n_listed: int = 0
    micrographs_star: Path | None = None
    kind: ClassVar[str] = "picks"

    def files(self) -> list[Path]:
        return [self.path, *self.coordinate_files]

    def describe(self, root=None) -> str:
        if self.style == "cryosparc":
            return f"picks: {_rel(self.path, root)}"
        found = (f"{len(self.coordinate_files)} of {self.n_listed}" if len(self.coordinate_files) != self.n_listed
                 else f"{self.n_listed}")
        return f"picks: {found} coordinate files ({self.style}) in {_rel(self.path, root)}"


@dataclass
class ParticleSet(JobOutput):
    """A particle table; ``stage`` says what made it (``extract``, ``refine3d``, ``class3d``,
    ``select``, ``class2d``); ``passthrough``: cryoSPARC's file of the fields passed through
    (joined on ``uid``)."""

    stage: str = ""
    passthrough: Path | None = None
    iteration: int | None = None
    kind: ClassVar[str] = "particles"

    def files(self) -> list[Path]:
        return [self.path] + ([self.passthrough] if self.passthrough else [])

    def describe(self, root=None) -> str:
        it = f", iteration {self.iteration}" if self.iteration is not None else ""
        pt = f" + {Path(self.passthrough).name}" if self.passthrough else ""
        return f"particles ({self.stage}{it}): {_rel(self.path, root)}{pt}"


@dataclass
class Class2DIteration(JobOutput):
    """The last iteration of a 2D classification: ``path`` = its particle table
    (``run_itNNN_data.star`` / ``J_NNN_particles.cs``), ``model`` (RELION ``run_itNNN_model.star``),
    ``classes`` (the class averages' stack); ``iterations``: every iteration found."""

    iteration: int = 0
    model: Path | None = None
    classes: Path | None = None
    passthrough: Path | None = None
    iterations: list[int] = field(default_factory=list)
    kind: ClassVar[str] = "class2d"

    def files(self) -> list[Path]:
        return [p for p in (self.path, self.model, self.classes, self.passthrough) if p is not None]

    def describe(self, root=None) -> str:
        parts = [Path(p).name for p in (self.path, self.model, self.classes) if p is not None]
        n = f" ({len(self.iterations)} iterations found)" if len(self.iterations) > 1 else ""
        return f"2D classes, iteration {self.iteration}{n}: {', '.join(parts)}"


@dataclass
class HalfMapPair(JobOutput):
    """Two half maps (``path`` = half 1, ``half2``), the job's FSC mask when it wrote one, and the
    iteration they are from (None: the final ones)."""

    half2: Path | None = None
    mask: Path | None = None
    iteration: int | None = None
    kind: ClassVar[str] = "half_maps"

    @property
    def half1(self) -> Path:
        return self.path

    def files(self) -> list[Path]:
        return [p for p in (self.path, self.half2, self.mask) if p is not None]

    def describe(self, root=None) -> str:
        it = f" (iteration {self.iteration})" if self.iteration is not None else ""
        m = f", mask {Path(self.mask).name}" if self.mask else ""
        return f"half maps{it}: {Path(self.path).name}, {Path(self.half2).name}{m}"


@dataclass
class MaskFile(JobOutput):
    kind: ClassVar[str] = "mask"


@dataclass
class PostProcessResult(JobOutput):
    """RELION PostProcess: ``path`` = ``postprocess.star``; its maps; and the half maps and mask it
    was run on (from its ``data_general``), when they are in the project."""

    map: Path | None = None
    masked_map: Path | None = None
    half1: Path | None = None
    half2: Path | None = None
    mask: Path | None = None
    final_resolution_A: float | None = None
    kind: ClassVar[str] = "postprocess"

    def files(self) -> list[Path]:
        return [p for p in (self.path, self.map, self.masked_map) if p is not None]

    def describe(self, root=None) -> str:
        res = f", {self.final_resolution_A:.2f} Å" if self.final_resolution_A else ""
        return f"postprocess{res}: {_rel(self.path, root)}"


@dataclass
class MapFile(JobOutput):
    role: str = ""  #: "map", "sharpened", "class001" ...
    kind: ClassVar[str] = "map"

    def describe(self, root=None) -> str:
        return f"map{f' ({self.role})' if self.role else ''}: {_rel(self.path, root)}"


#: every result kind, in the order a job's outputs are listed
OUTPUT_KINDS = tuple(c.kind for c in (MicrographSet, CtfResults, PickFiles, ParticleSet, Class2DIteration,
                                      HalfMapPair, MaskFile, PostProcessResult, MapFile))


@dataclass
class Job:
    """One job of a project.

    ``id``: ``"CtfFind/job003"`` (RELION) or ``"J3"`` (cryoSPARC); ``type``: the folder's job type
    (``"CtfFind"``) or cryoSPARC's job type (``"patch_ctf_estimation_multi"``); ``label``: the
    pipeline's process type (``"relion.ctffind.ctffind4"``, or 3.1's number) or cryoSPARC's title;
    ``alias``: RELION's alias; ``status``: one of :data:`STATUSES`; ``number``: the job number
    (newest = highest); ``time``: creation (or last change) time, s since the epoch, when known;
    ``inputs``: the job ids this job read from (pipeline edges, cryoSPARC input connections).
    """

    id: str
    type: str
    folder: Path
    number: int
    label: str = ""
    alias: str = ""
    status: str = ""
    time: float | None = None
    inputs: list[str] = field(default_factory=list)
    input_files: list[Path] = field(default_factory=list)
    outputs: list[JobOutput] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outside: int = 0  #: names pointing outside the project (not followed)
    missing: int = 0  #: listed files that are not there

    def output(self, kind: str) -> JobOutput | None:
        """This job's first result of ``kind`` (None when it has none)."""
        return next((o for o in self.outputs if o.kind == kind), None)

    def has(self, kind: str) -> bool:
        return self.output(kind) is not None

    @property
    def title(self) -> str:
        alias = f" ({self.alias})" if self.alias and self.alias != "None" else ""
        return f"{self.id}{alias}"

    def describe(self, root: Path | None = None) -> list[str]:
        status = f" [{self.status}]" if self.status else ""
        kind = self.type if self.type and self.type not in self.id else ""
        lines = [f"{self.title}{' ' + kind if kind else ''}{status}"]
        lines += [f"  {o.describe(root)}" for o in self.outputs]
        lines += [f"  note: {n}" for n in self.notes]
        return lines

    def to_dict(self, root: Path | None = None) -> dict:
        return {
            "id": self.id, "type": self.type, "label": self.label, "alias": self.alias, "status": self.status,
            "number": self.number, "time": self.time, "folder": _rel(self.folder, root), "inputs": list(self.inputs),
            "outputs": [o.to_dict(root) for o in self.outputs], "notes": list(self.notes),
            "outside": self.outside, "missing": self.missing,
        }


@dataclass
class Project:
    """A RELION or cryoSPARC project as found (see the module docstring).

    ``layout``: ``"relion"`` or ``"cryosparc"``; ``root``: the project folder (the folder with
    ``default_pipeline.star``; the cryoSPARC project folder ``P*``); ``opened``: the path the user
    gave; ``focus``: the ids of the jobs under ``opened`` when it was a job (or job type) folder,
    else empty (the whole project); ``jobs``: newest first; ``version``: the pipeline's STAR version
    (``"30001"`` RELION 3.1, ``"50001"`` RELION 5) or cryoSPARC's when ``job.json`` says it.
    """

    root: Path
    layout: str
    jobs: list[Job] = field(default_factory=list)
    opened: Path | None = None
    focus: list[str] = field(default_factory=list)
    version: str = ""
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def job(self, job_id: str) -> Job | None:
        """The job of id ``job_id`` (``"CtfFind/job003"``, ``"job003"``, ``"J3"``), or None."""
        jid = str(job_id).strip().rstrip("/")
        for j in self.jobs:
            if j.id == jid or j.id.rsplit("/", 1)[-1] == jid or (j.alias and j.alias.rstrip("/") == jid):
                return j
        return None

    def results(self, kind: str, *, jobs: list[str] | None = None) -> list[tuple[Job, JobOutput]]:
        """Every ``(job, result)`` of ``kind``, newest job first (only ``jobs`` when given)."""
        out = []
        for j in self.jobs:
            if jobs is not None and j.id not in jobs:
                continue
            out += [(j, o) for o in j.outputs if o.kind == kind]
        return out

    def latest(self, kind: str, *, prefer: list[str] | None = None) -> tuple[Job, JobOutput] | tuple[None, None]:
        """The newest ``(job, result)`` of ``kind``: among ``prefer`` (job ids) first when any of
        them has one, then among all jobs; ``(None, None)`` when no job has one."""
        if prefer:
            found = self.results(kind, jobs=list(prefer))
            if found:
                return found[0]
        found = self.results(kind)
        return found[0] if found else (None, None)

    def upstream(self, job: Job, depth: int = 8) -> list[Job]:
        """The jobs ``job`` read from, directly or through others (nearest first)."""
        seen, order, frontier = {job.id}, [], list(job.inputs)
        for _ in range(depth):
            nxt = []
            for jid in frontier:
                j = self.job(jid)
                if j is None or j.id in seen:
                    continue
                seen.add(j.id)
                order.append(j)
                nxt += j.inputs
            frontier = nxt
        return order

    @property
    def focused_jobs(self) -> list[Job]:
        return [j for j in self.jobs if j.id in self.focus] if self.focus else list(self.jobs)

    def files(self) -> list[Path]:
        """Every file a result names (what opening the project may read)."""
        return [p for j in self.jobs for o in j.outputs for p in o.files()]

    def describe(self) -> list[str]:
        what = {"relion": "RELION project", "cryosparc": "cryoSPARC project"}.get(self.layout, self.layout)
        ver = ""
        if self.version:
            ver = f" (pipeline version {self.version})" if self.layout == "relion" else f" ({self.version})"
        head = f"{what} {self.root}{ver}: {len(self.jobs)} jobs"
        if self.focus:
            head += f"; opened {', '.join(self.focus)}"
        lines = [head]
        lines += [f"note: {n}" for n in self.notes]
        for j in self.jobs:
            lines += j.describe(self.root)
        return lines

    def to_dict(self) -> dict:
        return {
            "layout": self.layout, "root": str(self.root), "opened": str(self.opened) if self.opened else None,
            "focus": list(self.focus), "version": self.version, "notes": list(self.notes),
            "jobs": [j.to_dict(self.root) for j in self.jobs],
        }
