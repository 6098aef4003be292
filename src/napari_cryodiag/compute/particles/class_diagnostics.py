"""Everything the class diagnostics show, from in-memory data, in one call.

:func:`iter_class_diagnostics` (a ``(done, total)`` generator for workers) and
:func:`class_diagnostics` (blocking) take the particle table, optional full posteriors, class
averages, a read RELION model and the particle images, compute the posterior/ESS histograms and
the per-class summary (count, median ESS, FRC resolution at 0.5 from half-set averages when
there are particle images, else the reason in ``frc_note``), and return a
:class:`ClassDiagnostics` whose :meth:`~ClassDiagnostics.to_json` holds every number behind the
figures. The files are read by :mod:`napari_cryodiag.workflows.classes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError
from ..progress import run_steps
from .class_averages import ClassAverages, array_images, iter_class_averages
from .classes import (
    Histogram,
    PosteriorColumns,
    class_base,
    posterior_columns,
    posterior_histograms,
    summarise_classes,
)

__all__ = ["ClassDiagnostics", "iter_class_diagnostics", "class_diagnostics", "select_classes",
           "posterior_class_columns"]


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
    #: ``(file, message)``: inputs that do not fit together (fewer averages than classes, averages
    #: of another size than the particles); the CLI prints them as warnings naming the file
    warnings: list[tuple[str | None, str]] = field(default_factory=list)

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
            "warnings": [{"file": f, "message": m} for f, m in self.warnings],
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


def iter_class_diagnostics(
    table: pd.DataFrame,
    *,
    averages: np.ndarray | None = None,
    averages_source: str = "given array",
    averages_pixel_size_A: float | None = None,
    model=None,
    posteriors="auto",
    images=None,
    no_images_reason: str = "no particle images: none given",
    pixel_size_A: float | None = None,
    compute_frc: bool = True,
    ctf: str = "phase_flip",
    halves: str = "auto",
    bins: int = 50,
    batch_size: int = 128,
    notes: Sequence[str] = (),
    client=None,
    num_workers: int | None = None,
):
    """Generator of ``(done, total)`` returning a :class:`ClassDiagnostics` (arrays in: the files
    are read by :mod:`napari_cryodiag.workflows.classes`).

    ``table``: a canonical particle table. ``averages``: ``(K, n, n)`` (class ``base + i`` is row
    ``i``; RELION classes start at 1, cryoSPARC at 0), with ``averages_source`` (for the figures)
    and ``averages_pixel_size_A``. ``model``: a read RELION model
    (:class:`napari_cryodiag.io.relion_model.ModelStar`: its ``classes`` and ``pixel_size_A``
    are used). ``posteriors``: ``"auto"`` (the table's ``posterior_class_k`` columns when present),
    an ``(N, K)`` array, or ``None``. ``images``: the particle images, an ``(N', n, n)`` stack or an
    image source (:class:`napari_cryodiag.io.particle_images.StackImages`); without them the FRC
    columns say ``no_images_reason``. ``client``/``num_workers``: where the half-set averages are
    computed (:func:`~.class_averages.iter_class_averages`).
    """
    src = table.attrs.get("source")
    notes = list(notes)
    # full posteriors as columns (the .cs reader's posterior_class_k from alignments3D_multi or
    # heterogeneous refinement's alignments_class_k)
    post_cols = posterior_class_columns(table)
    if "class" not in table and post_cols:
        table = table.copy()
        table["class"] = np.argmax(table[post_cols].to_numpy(dtype=np.float64), axis=1)
        notes.append("class = argmax of the full posteriors (the file has no class column)")
    if "class" not in table:
        raise CryodiagInputError("the particle table has no class column (not a classification result?)", src)

    avg_arr, avg_apix, avg_source = None, averages_pixel_size_A, "none"
    if averages is not None:
        avg_arr = np.asarray(averages, dtype=np.float32)
        if avg_arr.ndim == 2:
            avg_arr = avg_arr[None]
        if avg_arr.ndim != 3 or avg_arr.shape[1] != avg_arr.shape[2]:
            raise CryodiagInputError(f"class averages must be a stack of square images, got shape {avg_arr.shape}",
                                     averages_source)
        avg_source = averages_source
        if avg_apix is None and model is not None and model.pixel_size_A:
            avg_apix = model.pixel_size_A
            notes.append(f"class-average pixel size {avg_apix:g} Å/px from the model (header says 0)")
    if avg_apix is None and pixel_size_A:
        avg_apix = float(pixel_size_A)
    if avg_apix is None and "pixel_size_A" in table and table["pixel_size_A"].notna().any():
        avg_apix = float(table["pixel_size_A"].dropna().iloc[0])

    post = None
    if isinstance(posteriors, str):
        if posteriors != "auto":
            raise ValueError(f"posteriors must be 'auto', an (N, K) array or None, got {posteriors!r}")
        if post_cols:
            post = table[post_cols].to_numpy(dtype=np.float64)
    elif posteriors is not None:
        post = np.asarray(posteriors, dtype=np.float64)
    n_avg = None if avg_arr is None else int(avg_arr.shape[0])
    cols = posterior_columns(table, post, n_classes=n_avg)
    hists = posterior_histograms(cols, bins=bins)
    base = class_base(table, n_avg)
    summary = summarise_classes(
        table, cols, n_averages=n_avg,
        model_classes=None if model is None else model.classes,
    )
    warnings: list[tuple[str | None, str]] = []
    notes += list(summary.attrs.get("notes", []))
    if n_avg is not None:
        used = summary["count"] > 0
        bad = summary.loc[used & (summary["average_index"] < 0), "class"].tolist()
        if bad:
            shown = ", ".join(str(c) for c in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
            msg = (f"{n_avg} class averages for {int(used.sum())} classes with particles: classes {shown} have "
                   f"no average (classes counted from {base}); is this the stack of this classification?")
            notes.append(msg)
            warnings.append((avg_source, msg))

    ca = None
    reason = ""
    if not compute_frc:
        reason = "no particle images: FRC not requested"
    else:
        source, reason = (None, no_images_reason) if images is None else (
            array_images(table, images) if isinstance(images, np.ndarray) else (images, ""))
        if source is not None:
            box = source.box() if callable(getattr(source, "box", None)) else getattr(source, "box", None)
            if avg_arr is not None and box and int(box) != avg_arr.shape[-1]:
                msg = (f"class averages of {avg_arr.shape[-1]} px, particle images of {int(box)} px: the averages "
                       "are shown as they are, the FRC comes from the particles")
                notes.append(msg)
                warnings.append((avg_source, msg))
            labels = summary["class"].to_numpy()
            try:
                ca = yield from iter_class_averages(
                    table, source=source, labels=labels, pixel_size_A=pixel_size_A, ctf=ctf,
                    halves=halves, batch_size=batch_size, client=client, num_workers=num_workers,
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
        model=model,
        class_base=base,
        notes=notes,
        warnings=warnings,
    )


def class_diagnostics(table, *, progress=None, **kwargs) -> ClassDiagnostics:
    """:func:`iter_class_diagnostics` run to completion."""
    return run_steps(iter_class_diagnostics(table, **kwargs), progress)


def posterior_class_columns(table: pd.DataFrame) -> list[str]:
    """The table's full-posterior columns ``posterior_class_k``, in the order of ``k``."""
    return sorted((c for c in table.columns if str(c).startswith("posterior_class_")),
                  key=lambda c: int(str(c).rsplit("_", 1)[1]) if str(c).rsplit("_", 1)[1].isdigit() else 0)


def select_classes(table: pd.DataFrame, classes) -> pd.DataFrame:
    """The rows of ``table`` whose class is in ``classes`` (attrs kept, order kept)."""
    if "class" not in table:
        raise CryodiagInputError("the particle table has no class column", table.attrs.get("source"))
    keep = table["class"].isin(list(classes)).to_numpy()
    out = table.loc[keep].copy()
    out.attrs = dict(table.attrs)
    return out
