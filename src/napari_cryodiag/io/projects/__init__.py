"""Open a RELION or cryoSPARC project (or one of its job folders): which jobs there are, newest
first, and what each holds (:mod:`.model`), found without writing anything.

``open_project(path)`` takes a project folder (RELION: the folder with ``default_pipeline.star``;
cryoSPARC: ``P*/`` with its ``J*/`` job folders), a job folder (``AutoPick/job004``, ``J7``), a job
type folder (``Class2D``) or the pipeline file, and returns a :class:`~.model.Project`;
``Project.focus`` lists the jobs under a job folder that was opened. ``is_project(path)`` says
whether ``path`` is one of these (cheap: a few ``stat`` and ``listdir`` calls).
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import CryodiagInputError
from .cryosparc import discover_cryosparc, find_cryosparc_root
from .model import (
    OUTPUT_KINDS, STATUSES, Class2DIteration, CtfResults, HalfMapPair, Job, JobOutput, MapFile, MaskFile,
    MicrographSet, ParticleSet, PickFiles, PostProcessResult, Project,
)
from .paths import ProjectPaths, clean_name, within
from .relion import PIPELINE, coordinate_file_of, discover_relion, find_relion_root

__all__ = [
    "open_project", "is_project", "project_root", "Project", "Job", "JobOutput", "MicrographSet", "CtfResults",
    "PickFiles", "ParticleSet", "Class2DIteration", "HalfMapPair", "MaskFile", "PostProcessResult", "MapFile",
    "OUTPUT_KINDS", "STATUSES", "ProjectPaths", "clean_name", "within", "coordinate_file_of", "PIPELINE",
]


def project_root(path) -> tuple[str, Path] | None:
    """``("relion" | "cryosparc", project folder)`` of ``path``, or None when it is neither a
    project nor inside one."""
    p = Path(os.path.abspath(os.fspath(path)))
    if not p.exists():
        return None
    root = find_relion_root(p)
    if root is not None:
        return "relion", root
    root = find_cryosparc_root(p)
    if root is not None:
        return "cryosparc", root
    return None


def is_project(path) -> bool:
    """``path`` is a RELION or cryoSPARC project, or a job (type) folder of one."""
    try:
        return project_root(path) is not None
    except OSError:
        return False


def open_project(path) -> Project:
    """The project at or around ``path`` (module docstring); a path that is neither is a
    :class:`~napari_cryodiag.errors.CryodiagInputError`."""
    p = Path(os.path.abspath(os.fspath(path)))
    if not p.exists():
        raise CryodiagInputError("not found", p)
    found = project_root(p)
    if found is None:
        raise CryodiagInputError(
            f"not a RELION project, job type or job folder (no {PIPELINE}, no <Type>/jobNNN folders) "
            "nor a cryoSPARC project or job folder (no J*/job.json)", p)
    layout, root = found
    return discover_relion(root, p) if layout == "relion" else discover_cryosparc(root, p)
