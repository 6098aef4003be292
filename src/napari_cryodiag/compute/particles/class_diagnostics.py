"""Everything the class diagnostics show, from files or in-memory data, in one call.

:func:`class_diagnostics_gen` (a ``(done, total)`` generator for workers) and
:func:`class_diagnostics` (blocking) read the particle table, optional full posteriors
(``alignments3D_multi`` of a ``.cs``), class averages (MRCS) and a RELION model, compute the
posterior/ESS histograms and the per-class summary (count, median ESS, FRC resolution at 0.5
from half-set averages when the particle images are found, else the reason in ``frc_note``),
and return a :class:`ClassDiagnostics` whose :meth:`~ClassDiagnostics.to_json` holds every
number behind the figures. Both the CLI and the widget use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError
from ..progress import run_steps
from .class_averages import ClassAverages, class_averages_gen, locate_particle_images
from .classes import (
    Histogram,
    PosteriorColumns,
    class_base,
    posterior_columns,
    posterior_histograms,
    read_cs_full_posteriors,
    summarise_classes,
)

__all__ = ["ClassDiagnostics", "class_diagnostics_gen", "class_diagnostics", "select_classes",
           "write_selection", "read_averages"]


@dataclass
class ClassDiagnostics:
    table: pd.DataFrame
    posterior: PosteriorColumns
    histograms: dict[str, Histogram]
    summary: pd.DataFrame  # one row per class (see summarise_classes) + frc columns
    averages: np.ndarray | None  # (K, n, n) aligned with summary["average_index"]
    averages_source: str
    averages_pixel_size_A: float | None
    class_averages: ClassAverages | None
    frc_reason: str  # "" when the FRC was computed
    model: object | None = None
    class_base: int = 0
    notes: list[str] = field(default_factory=list)

    def average_for(self, cls) -> np.ndarray | None:
        """The class-average image of class label ``cls`` (None if there is none)."""
        if self.averages is None:
            return None
        row = self.summary.loc[self.summary["class"] == cls]
        if row.empty or int(row["average_index"].iloc[0]) < 0:
            return None
        return self.averages[int(row["average_index"].iloc[0])]

    def to_json(self) -> dict:
        out = {
            "particles": self.table.attrs.get("source"),
            "n_particles": int(len(self.table)),
            "n_classes": int(len(self.summary)),
            "class_numbering": f"classes numbered from {self.class_base} (as in the file)",
            "posterior_source": self.posterior.source,
            "best_prob_label": self.posterior.best_label,
            "ess_label": self.posterior.ess_label,
            "histograms": {k: h.to_dict() for k, h in self.histograms.items()},
            "averages_source": self.averages_source,
            "averages_pixel_size_A": self.averages_pixel_size_A,
            "frc": {"available": self.class_averages is not None, "reason": self.frc_reason},
            "classes": self.summary.to_dict(orient="records"),
            "notes": list(self.posterior.notes) + list(self.notes),
        }
        ca = self.class_averages
        if ca is not None:
            from ..fourier import shell_frequencies_invA

            n = ca.averages.shape[-1]
            out["frc"].update(
                {
                    "threshold": ca.threshold,
                    "ctf_correction": ca.ctf_mode,
                    "halves": ca.halves,
                    "pixel_size_A": ca.pixel_size_A,
                    "frequency_invA": shell_frequencies_invA(n, ca.pixel_size_A),
                    "curves": {str(int(c)): ca.frc[i] for i, c in enumerate(ca.labels)},
                    "notes": ca.notes,
                }
            )
        return out


def read_averages(path) -> tuple[np.ndarray, float | None]:
    """Class averages ``(K, n, n)`` float32 from an MRCS/MRC, and the header pixel size (None if 0)."""
    from ...io.mrc import read_stack

    st = read_stack(path)
    data = np.asarray(st.data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[1] != data.shape[2]:
        raise CryodiagInputError(f"class averages must be a stack of square images, got shape {data.shape}", path)
    return data, st.pixel_size_A


def _read_table(particles):
    if isinstance(particles, pd.DataFrame):
        return particles
    from ...io.picks import read_table

    return read_table(particles)


def class_diagnostics_gen(
    particles,
    *,
    averages=None,
    model=None,
    posteriors="auto",
    images: np.ndarray | None = None,
    stacks: Sequence[str | os.PathLike] = (),
    search_dirs: Sequence[str | os.PathLike] = (),
    pixel_size_A: float | None = None,
    compute_frc: bool = True,
    ctf: str = "phase_flip",
    halves: str = "auto",
    bins: int = 50,
    batch_size: int = 128,
):
    """Generator of ``(done, total)`` returning a :class:`ClassDiagnostics`.

    ``particles``: a table path (STAR/.cs) or a canonical DataFrame. ``averages``: MRCS path or
    ``(K, n, n)`` array (class ``base + i`` is row ``i``; RELION classes start at 1, cryoSPARC
    at 0). ``model``: RELION ``_model.star`` path or a read :class:`ModelStar` (its pixel size
    and, when ``averages`` is not given, its reference stack are used). ``posteriors``:
    ``"auto"`` (the table's ``posterior_class_k`` columns, else ``alignments3D_multi/class_posterior``
    of a ``.cs`` source, when present), a ``.cs`` path, an ``(N, K)`` array, or ``None``.
    """
    table = _read_table(particles)
    src = table.attrs.get("source")
    notes: list[str] = []
    # full posteriors as columns (the .cs reader's posterior_class_k from alignments3D_multi or
    # heterogeneous refinement's alignments_class_k)
    post_cols = sorted((c for c in table.columns if str(c).startswith("posterior_class_")),
                       key=lambda c: int(str(c).rsplit("_", 1)[1]) if str(c).rsplit("_", 1)[1].isdigit() else 0)
    if "class" not in table and post_cols:
        table = table.copy()
        table["class"] = np.argmax(table[post_cols].to_numpy(dtype=np.float64), axis=1)
        notes.append("class = argmax of the full posteriors (the file has no class column)")
    if "class" not in table:
        raise CryodiagInputError("the particle table has no class column (not a classification result?)", src)

    model_obj = None
    if model is not None:
        from ...io.relion_model import read_model_star, resolve_reference_stack

        model_obj = read_model_star(model) if isinstance(model, (str, os.PathLike)) else model
        if averages is None:
            ref = resolve_reference_stack(model_obj)
            if ref is not None:
                averages = ref
            else:
                notes.append("the model's class-average stack was not found next to it")

    avg_arr, avg_apix, avg_source = None, None, "none"
    if averages is not None:
        if isinstance(averages, (str, os.PathLike)):
            avg_arr, avg_apix = read_averages(averages)
            avg_source = os.fspath(averages)
        else:
            avg_arr = np.asarray(averages, dtype=np.float32)
            avg_source = "given array"
        if avg_apix is None and model_obj is not None and model_obj.pixel_size_A:
            avg_apix = model_obj.pixel_size_A
            notes.append(f"class-average pixel size {avg_apix:g} Å/px from the model (header says 0)")
    if avg_apix is None and pixel_size_A:
        avg_apix = float(pixel_size_A)
    if avg_apix is None and "pixel_size_A" in table and table["pixel_size_A"].notna().any():
        avg_apix = float(table["pixel_size_A"].dropna().iloc[0])

    post = None
    if isinstance(posteriors, str) and posteriors == "auto" and post_cols:
        post = table[post_cols].to_numpy(dtype=np.float64)
    elif isinstance(posteriors, str) and posteriors == "auto":
        if table.attrs.get("format") == "cs" and src and len(table):
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
    elif posteriors is not None:
        post = np.asarray(posteriors, dtype=np.float64)
    n_avg = None if avg_arr is None else int(avg_arr.shape[0])
    cols = posterior_columns(table, post, n_classes=n_avg)
    hists = posterior_histograms(cols, bins=bins)
    base = class_base(table, n_avg)
    summary = summarise_classes(
        table, cols, n_averages=n_avg,
        model_classes=None if model_obj is None else model_obj.classes,
    )
    if n_avg is not None:
        used = summary["count"] > 0
        bad = summary.loc[used & (summary["average_index"] < 0), "class"].tolist()
        if bad:
            notes.append(f"classes {bad} have no image in the {n_avg}-image average stack "
                         f"(classes counted from {base})")

    ca = None
    reason = ""
    if not compute_frc:
        reason = "no particle images: FRC not requested"
    else:
        source, reason = locate_particle_images(table, images=images, stacks=stacks, search_dirs=search_dirs)
        if source is not None:
            labels = summary["class"].to_numpy()
            try:
                ca = yield from class_averages_gen(
                    table, source=source, labels=labels, pixel_size_A=pixel_size_A, ctf=ctf,
                    halves=halves, batch_size=batch_size,
                )
                reason = ""
            except CryodiagInputError as err:  # images found but unusable: say why, keep the rest
                ca = None
                reason = f"FRC not computed: {err}"
    if ca is not None:
        res = dict(zip(ca.labels.tolist(), ca.frc_resolution_A))
        nyq = dict(zip(ca.labels.tolist(), ca.frc_nyquist_limited))
        nt = dict(zip(ca.labels.tolist(), ca.frc_note))
        summary["frc_resolution_A"] = [res.get(c, np.nan) for c in summary["class"]]
        summary["frc_nyquist_limited"] = [bool(nyq.get(c, False)) for c in summary["class"]]
        summary["frc_note"] = [nt.get(c, "") for c in summary["class"]]
        if avg_arr is None:
            avg_arr = ca.weighted_averages()
            avg_apix = ca.pixel_size_A
            avg_source = (f"computed from the particles ({ca.ctf_mode.replace('_', '-')}, "
                          f"FRC-weighted, {len(ca.labels)} classes)")
            summary["average_index"] = np.arange(len(summary))
    else:
        summary["frc_resolution_A"] = np.nan
        summary["frc_nyquist_limited"] = False
        summary["frc_note"] = reason
    yield (1, 1)
    return ClassDiagnostics(
        table=table,
        posterior=cols,
        histograms=hists,
        summary=summary,
        averages=avg_arr,
        averages_source=avg_source,
        averages_pixel_size_A=avg_apix,
        class_averages=ca,
        frc_reason=reason,
        model=model_obj,
        class_base=base,
        notes=notes,
    )


def class_diagnostics(particles, *, progress=None, **kwargs) -> ClassDiagnostics:
    """:func:`class_diagnostics_gen` run to completion."""
    return run_steps(class_diagnostics_gen(particles, **kwargs), progress)


def select_classes(table: pd.DataFrame, classes) -> pd.DataFrame:
    """The rows of ``table`` whose class is in ``classes`` (attrs kept, order kept)."""
    if "class" not in table:
        raise CryodiagInputError("the particle table has no class column", table.attrs.get("source"))
    keep = table["class"].isin(list(classes)).to_numpy()
    out = table.loc[keep].copy()
    out.attrs = dict(table.attrs)
    return out


def write_selection(table: pd.DataFrame, classes, path, *, overwrite: bool = False) -> tuple[Path, int]:
    """Write the particles of ``classes`` to ``path`` (``.star`` or ``.cs``), atomically and never
    over the table's source file. Returns ``(path, number of particles written)``."""
    p = Path(path)
    sub = select_classes(table, classes)
    if sub.empty:
        raise CryodiagInputError("no particles in the selected classes; nothing written", p)
    suffix = p.suffix.lower()
    if suffix == ".star":
        from ...io.star import write_star

        out = write_star(p, sub, overwrite=overwrite)
    elif suffix == ".cs":
        from ...io.cs import write_cs

        src = table.attrs.get("source") if table.attrs.get("format") == "cs" else None
        out = write_cs(p, sub, source=src, overwrite=overwrite)
    else:
        raise CryodiagInputError("selection must be written as .star or .cs", p)
    return Path(out), int(len(sub))
