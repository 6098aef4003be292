"""2D class diagnostics end to end: read the particle table, full posteriors, class averages, a
RELION model and the particle stacks; compute (:mod:`napari_cryodiag.compute.particles.class_diagnostics`);
draw and write the figures and the JSON; write the particles of selected classes.

Called by ``cryodiag classes`` and by the Classes widget: :func:`iter_class_diagnostics` (the
worker's ``(done, total)`` generator) / :func:`class_diagnostics` with :class:`ClassesOptions`,
then :func:`plan_outputs` + :func:`export` (figures ``class_histograms``, ``class_grid``,
``class_frc`` and the JSON), and :func:`write_selection`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal, Sequence

import numpy as np
import pandas as pd

from ..compute.particles.class_diagnostics import ClassDiagnostics, posterior_class_columns, select_classes
from ..compute.particles.class_diagnostics import iter_class_diagnostics as _iter_compute
from ..compute.progress import run_steps
from ..errors import CryodiagInputError, about

__all__ = ["ClassesOptions", "ClassDiagnostics", "read_averages", "read_cs_full_posteriors",
           "iter_class_diagnostics", "class_diagnostics", "write_selection", "plan_outputs", "export",
           "FIGURES"]

#: figure stems of :func:`export` (``class_frc`` only when particle images were found)
FIGURES = ("class_histograms", "class_grid", "class_frc")


@dataclass
class ClassesOptions:
    """Options of the class diagnostics."""

    ctf: Annotated[Literal["phase_flip", "wiener", "none"], {
        "label": "CTF correction", "tooltip": "CTF correction of the half-set averages"}] = "phase_flip"
    halves: Annotated[Literal["auto", "split", "alternate"], {
        "label": "half sets", "tooltip": "the split column (auto when present) or alternating rows"}] = "auto"
    compute_frc: Annotated[bool, {"label": "FRC from particle images"}] = True
    pixel_size_A: Annotated[float, {"min": 0.0, "max": 100.0, "step": 0.01,
                                    "label": "pixel size (Å)", "special": "from the files"}] = 0.0
    bins: Annotated[int, {"min": 2, "max": 1000, "label": "histogram bins"}] = 50
    sort_by: Annotated[Literal["count", "resolution", "median_ess", "class"], {
        "label": "sort the grid by"}] = "count"

    def to_dict(self) -> dict:
        return asdict(self)


def read_averages(path) -> tuple[np.ndarray, float | None]:
    """Class averages ``(K, n, n)`` float32 from an MRCS/MRC, and the header pixel size (None if 0)."""
    from ..io.mrc import read_stack

    st = read_stack(path)
    data = np.asarray(st.data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[1] != data.shape[2]:
        raise CryodiagInputError(f"class averages must be a stack of square images, got shape {data.shape}", path)
    return data, st.pixel_size_A


def read_cs_full_posteriors(path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Full class posteriors ``alignments3D_multi/class_posterior`` ``(N, K)`` of a ``.cs``, with
    ``alignments3D_multi/class`` (class ids per column) when present; ``None`` when the file has
    no such field (e.g. 2D classification exports)."""
    from ..io.cs import read_cs_array

    key, ids = "alignments3D_multi/class_posterior", "alignments3D_multi/class"
    arr = read_cs_array(path, mmap=True)  # the header only, until a field is read
    names = arr.dtype.names or ()
    if key not in names:
        return None
    post = np.asarray(arr[key], dtype=np.float64)
    if post.ndim == 1:
        post = post[:, None]
    return post, (np.asarray(arr[ids]) if ids in names else None)


def _table(particles) -> pd.DataFrame:
    if isinstance(particles, pd.DataFrame):
        return particles
    from ..io.picks import read_table

    return read_table(particles)


def iter_class_diagnostics(
    particles,
    options: ClassesOptions | None = None,
    *,
    averages=None,
    model=None,
    posteriors="auto",
    images: np.ndarray | None = None,
    stacks: Sequence[str | os.PathLike] = (),
    search_dirs: Sequence[str | os.PathLike] = (),
    pixel_size_A: float | None = None,
    averages_pixel_size_A: float | None = None,
    averages_name: str | None = None,
    batch_size: int = 128,
    client=None,
    num_workers: int | None = None,
    **option_fields,
):
    """Generator of ``(done, total)`` returning a :class:`ClassDiagnostics`.

    ``particles``: a table path (STAR/.cs) or a canonical DataFrame. ``averages``: an MRCS path
    or a ``(K, n, n)`` array (class ``base + i`` is row ``i``; RELION classes start at 1,
    cryoSPARC at 0); by default the model's reference stack, or averages computed from the
    particle images. ``model``: a RELION ``_model.star`` path or a read
    :class:`~napari_cryodiag.io.relion_model.ModelStar`. ``posteriors``: ``"auto"`` (the table's
    ``posterior_class_k`` columns, else ``alignments3D_multi/class_posterior`` of a ``.cs``
    source), a ``.cs`` path, an ``(N, K)`` array, or ``None``. ``images``: the particle images
    in memory; else the stacks the table names, looked for in ``stacks`` (files or folders),
    ``search_dirs`` and next to the table. ``averages_pixel_size_A``: of ``averages`` given as an
    array (e.g. a layer's), else the file header's, the model's or the particles'; ``averages_name``:
    what the array is (figures and messages). ``option_fields`` set fields of ``options``
    (``ctf=``, ``halves=``, ``compute_frc=``, ``bins=``). ``client`` (a ``dask.distributed``
    client or scheduler address) / ``num_workers`` (local threads): where the half-set averages
    are computed; a cluster's workers read the particle stacks themselves.
    """
    opts = ClassesOptions(**{**(asdict(options) if options else {}), **option_fields})
    table = _table(particles)
    src = table.attrs.get("source")
    notes: list[str] = []
    model_obj = None
    if model is not None:
        from ..io.relion_model import read_model_star, resolve_reference_stack

        model_obj = read_model_star(model) if isinstance(model, (str, os.PathLike)) else model
        if averages is None:
            ref = resolve_reference_stack(model_obj)
            if ref is not None:
                averages = ref
            else:
                notes.append("the model's class-average stack was not found next to it")
    avg_kw = {}
    if isinstance(averages, (str, os.PathLike)):
        arr, apix = read_averages(averages)
        avg_kw = dict(averages=arr, averages_source=os.fspath(averages), averages_pixel_size_A=apix)
    elif averages is not None:
        avg_kw = dict(averages=np.asarray(averages, dtype=np.float32), averages_source=averages_name or "given array",
                      averages_pixel_size_A=averages_pixel_size_A or None)

    post = posteriors
    if isinstance(posteriors, str) and posteriors == "auto":
        if not posterior_class_columns(table) and table.attrs.get("format") == "cs" and src and len(table):
            got = read_cs_full_posteriors(src)
            if got is not None:
                post = got[0]
                if "source_row" in table:
                    post = post[table["source_row"].to_numpy(dtype=np.int64)]
    elif isinstance(posteriors, (str, os.PathLike)):
        got = read_cs_full_posteriors(posteriors)
        if got is None:
            raise CryodiagInputError("no alignments3D_multi/class_posterior field", posteriors)
        post = got[0]

    source, reason = images, ""
    if images is None and opts.compute_frc:
        from ..io.particle_images import locate_particle_stacks

        source, reason = locate_particle_stacks(table, stacks=stacks, search_dirs=search_dirs)
    apix = pixel_size_A or opts.pixel_size_A or None
    with about(src):
        return (yield from _iter_compute(
            table, model=model_obj, posteriors=post, images=source, no_images_reason=reason or "no particle images",
            pixel_size_A=apix, compute_frc=opts.compute_frc, ctf=opts.ctf, halves=opts.halves, bins=opts.bins,
            batch_size=batch_size, notes=notes, client=client, num_workers=num_workers, **avg_kw,
        ))


def class_diagnostics(particles, options: ClassesOptions | None = None, *, progress=None, **kwargs) -> ClassDiagnostics:
    """:func:`iter_class_diagnostics` run to completion."""
    return run_steps(iter_class_diagnostics(particles, options, **kwargs), progress)


def write_selection(table: pd.DataFrame, classes, path, *, overwrite: bool = False, protect=()) -> tuple[Path, int]:
    """Write the particles of ``classes`` to ``path`` (``.star`` or ``.cs``), atomically and never
    over the table's source file (nor a file of ``protect``). Returns ``(path, particles written)``."""
    p = Path(path)
    sub = select_classes(table, classes)
    if sub.empty:
        raise CryodiagInputError("no particles in the selected classes; nothing written", p)
    suffix = p.suffix.lower()
    if suffix == ".star":
        from ..io.star import write_star

        out = write_star(p, sub, overwrite=overwrite, protect=protect)
    elif suffix == ".cs":
        from ..io.cs import write_cs

        src = table.attrs.get("source") if table.attrs.get("format") == "cs" else None
        out = write_cs(p, sub, source=src, overwrite=overwrite, protect=protect)
    else:
        raise CryodiagInputError("selection must be written as .star or .cs", p)
    return Path(out), int(len(sub))


def plan_outputs(plan, *, json_name: str = "classes.json") -> None:
    """Add the figures and the JSON of :func:`export` to ``plan`` (before its check)."""
    for stem in FIGURES:
        plan.figure(stem)
    plan.file(json_name, "JSON of the numbers")


def figures(diag: ClassDiagnostics, sort_by: str = "count") -> dict:
    """``{stem: Figure}``: the histograms, the class grid and (with particle images) the FRC curves."""
    from ..plots.classes import ESS_SHORT, RELION_GRID_NOTE, plot_class_grid, plot_frc_curves, plot_posterior_histograms

    name = Path(str(diag.table.attrs.get("source", "particles"))).name
    out = {"class_histograms": plot_posterior_histograms(diag.histograms, title=name, source=diag.posterior.source)}
    foot = f"averages: {diag.averages_source}"
    if diag.frc_reason:
        foot += f"; FRC: {diag.frc_reason}"
    ess_name = ESS_SHORT.get(diag.posterior.source, "ESS")
    if ess_name != "ESS":
        foot = f"{RELION_GRID_NOTE}; {foot}"
    out["class_grid"] = plot_class_grid(diag.summary, diag.averages, sort_by=sort_by, title=name, footnote=foot,
                                        ess_name=ess_name)
    if diag.class_averages is not None:
        out["class_frc"] = plot_frc_curves(diag.class_averages)
    return out


def export(diag: ClassDiagnostics, plan, *, sort_by: str = "count", json_name: str = "classes.json",
           extra: dict | None = None) -> list[Path]:
    """Write the figures and the JSON of the numbers (``extra`` merged into it) through ``plan``."""
    written = []
    for stem, fig in figures(diag, sort_by).items():
        written += plan.save_figure(fig, stem)
    data = diag.to_json()
    data["sort_by"] = sort_by
    data.update(extra or {})
    written.append(plan.write_json(json_name, data))
    return written
