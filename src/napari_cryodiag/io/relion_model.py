"""RELION ``*_model.star`` reading: class distribution, per-class spectra, per-group noise spectra.

A RELION model file (written by ``relion_refine`` each iteration of 2D/3D classification or
refinement) has these blocks:

- ``model_general``: scalars (``rlnPixelSize``, ``rlnOriginalImageSize``, ``rlnNrClasses``,
  ``rlnCurrentResolution``, ``rlnAveragePmax``, ...).
- ``model_classes``: one row per class (``rlnReferenceImage`` ``"000001@Class2D/x_classes.mrcs"``
  or a map path, ``rlnClassDistribution``, ``rlnAccuracyRotations``, ``rlnAccuracyTranslations``
  (pixels, RELION < 3.1) or ``rlnAccuracyTranslationsAngst`` (RELION >= 3.1), ...).
- ``model_class_N``: per-class spectra (``rlnSpectralIndex``, ``rlnResolution`` 1/Å,
  ``rlnSsnrMap``, ``rlnGoldStandardFsc``, ``rlnReferenceSigma2``, ``rlnReferenceTau2``, ...).
- Noise spectra ``rlnSigma2Noise`` per group: ``model_group_N`` blocks (RELION < 3.1, one per
  micrograph group, names in ``model_groups``) or ``model_optics_group_N`` (RELION >= 3.1).

:func:`read_model_star` returns a :class:`ModelStar`. Tables keep every source column under its
own ``rln...`` name and add standard ones:

- ``classes``: ``class`` (1-based, as RELION numbers them), ``class_distribution``,
  ``reference_image``, ``image_index`` (0-based index into ``image_path`` when the reference is
  a ``N@stack`` entry, else NaN), ``image_path`` (as written in the file, relative to the RELION
  project folder), ``accuracy_rotations_deg``, ``accuracy_translations_A`` (converted from pixels
  for RELION < 3.1 files; RELION writes 999 for classes with too few particles: kept as is).
- ``groups``: ``{name: DataFrame}`` with ``shell`` (``rlnSpectralIndex``), ``frequency_invA``
  (``rlnResolution``), ``resolution_A`` (``inf`` at shell 0) and ``sigma2_noise``
  (``rlnSigma2Noise``). ``name`` is the group name from ``model_groups`` (RELION < 3.1,
  e.g. a micrograph name) or ``"optics_group_N"``; ``group_table`` is the ``model_groups`` block.
- ``class_spectra``: ``{class: DataFrame}`` with ``shell``, ``frequency_invA``, ``resolution_A``
  and the source columns (``rlnSsnrMap``, ``rlnGoldStandardFsc``, ...).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError

__all__ = ["ModelStar", "read_model_star", "resolve_reference_stack"]


@dataclass
class ModelStar:
    """Contents of a RELION ``_model.star`` (see the module docstring for the columns)."""

    classes: pd.DataFrame
    groups: dict[str, pd.DataFrame]
    pixel_size_A: float | None
    general: dict
    class_spectra: dict[int, pd.DataFrame] = field(default_factory=dict)
    group_table: pd.DataFrame | None = None
    group_kind: str = "group"  # "group" (RELION < 3.1) or "optics_group" (RELION >= 3.1)
    path: str = ""
    notes: list[str] = field(default_factory=list)  #: what the user should know (e.g. a group without noise values)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size_px(self) -> int | None:
        v = self.general.get("rlnOriginalImageSize")
        return None if v is None else int(v)


_CLASS_BLOCK = re.compile(r"^model_class_(\d+)$")
_GROUP_BLOCK = re.compile(r"^model_group_(\d+)$")
_OPTICS_BLOCK = re.compile(r"^model_optics_group_(\d+)$")


def _spectrum(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    if "rlnSpectralIndex" in out:
        out.insert(0, "shell", pd.to_numeric(out["rlnSpectralIndex"], errors="coerce").fillna(-1).astype(int))
    if "rlnResolution" in out:
        f = out["rlnResolution"].to_numpy(dtype=float)
        out["frequency_invA"] = f
        with np.errstate(divide="ignore"):
            out["resolution_A"] = np.where(f > 0, 1.0 / np.where(f > 0, f, 1.0), np.inf)
    return out


def _note_empty(spec: pd.DataFrame, block: str, notes: list[str]) -> None:
    v = spec["sigma2_noise"].to_numpy(dtype=float)
    if len(v) and not np.isfinite(v).any():
        notes.append(f"data_{block}: rlnSigma2Noise has no value (all NaN): no noise spectrum for this group")


def _split_reference(name: str) -> tuple[float, str]:
    name = str(name)
    if "@" in name:
        idx, path = name.split("@", 1)
        try:
            return float(int(idx) - 1), path
        except ValueError:
            return np.nan, name
    return np.nan, name


def read_model_star(path: str | os.PathLike, *, blocks=None) -> ModelStar:
    """Read a RELION ``_model.star`` file (RELION 1.3 to 5).

    Raises :class:`CryodiagInputError` when the file is missing, unreadable as STAR (a word or
    ``-`` in a spectrum is refused naming the block and row), or lacks the
    ``model_general``/``model_classes`` blocks of a model file. ``blocks``: the file's blocks
    when already read (:func:`napari_cryodiag.io.star.read_star_blocks`).
    """
    from .star import read_star_blocks

    p = Path(path)
    if blocks is None:
        if not p.is_file():
            raise CryodiagInputError("file not found", p)
        blocks = read_star_blocks(p)
    by: dict = {}
    notes = [n for b in blocks for n in b.notes]
    for b in blocks:
        if b.name in by:
            raise CryodiagInputError(f"two blocks named data_{b.name} (lines {by[b.name].line} and {b.line})", p)
        by[b.name] = b
    blocks = {name: (b.loop if b.is_loop else b.pairs) for name, b in by.items()}
    if "model_general" not in blocks or "model_classes" not in blocks:
        raise CryodiagInputError(
            "not a RELION model file: needs data_model_general and data_model_classes blocks "
            f"(found: {', '.join(list(blocks)[:12]) or 'none'})",
            p,
        )
    gen = blocks["model_general"]
    if isinstance(gen, pd.DataFrame):
        gen = gen.iloc[0].to_dict() if len(gen) else {}
    general = {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(gen).items()}
    pixel = general.get("rlnPixelSize")
    if pixel is not None and not isinstance(pixel, (int, float)):
        raise CryodiagInputError(f"rlnPixelSize {str(pixel)[:40]!r} in data_model_general is not a number", p)
    pixel_size_A = float(pixel) if pixel is not None and np.isfinite(pixel) and float(pixel) > 0 else None

    classes = blocks["model_classes"]
    if not isinstance(classes, pd.DataFrame):
        classes = pd.DataFrame([classes])
    classes = classes.reset_index(drop=True).copy()
    classes.insert(0, "class", np.arange(1, len(classes) + 1))
    if "rlnClassDistribution" in classes:
        classes["class_distribution"] = classes["rlnClassDistribution"].astype(float)
    if "rlnReferenceImage" in classes:
        refs = [_split_reference(r) for r in classes["rlnReferenceImage"]]
        classes["reference_image"] = classes["rlnReferenceImage"].astype(str)
        classes["image_index"] = [r[0] for r in refs]
        classes["image_path"] = [r[1] for r in refs]
    if "rlnAccuracyRotations" in classes:
        classes["accuracy_rotations_deg"] = classes["rlnAccuracyRotations"].astype(float)
    if "rlnAccuracyTranslationsAngst" in classes:
        classes["accuracy_translations_A"] = classes["rlnAccuracyTranslationsAngst"].astype(float)
    elif "rlnAccuracyTranslations" in classes and pixel_size_A:
        acc = classes["rlnAccuracyTranslations"].to_numpy(dtype=float)
        # 999 flags a class RELION could not estimate: keep the flag, do not scale it
        classes["accuracy_translations_A"] = np.where(acc >= 999, acc, acc * pixel_size_A)

    class_spectra: dict[int, pd.DataFrame] = {}
    groups: dict[str, pd.DataFrame] = {}
    group_table = blocks.get("model_groups")
    if group_table is not None and not isinstance(group_table, pd.DataFrame):
        group_table = pd.DataFrame([group_table])
    names_by_number: dict[int, str] = {}
    if isinstance(group_table, pd.DataFrame) and "rlnGroupName" in group_table:
        nums = group_table.get("rlnGroupNumber", pd.Series(np.arange(1, len(group_table) + 1)))
        names_by_number = {int(n): str(s) for n, s in zip(nums, group_table["rlnGroupName"])}
    group_kind = "group"
    for name, df in blocks.items():
        if not isinstance(df, pd.DataFrame):
            continue
        m = _CLASS_BLOCK.match(name)
        if m:
            class_spectra[int(m.group(1))] = _spectrum(df)
            continue
        m = _GROUP_BLOCK.match(name)
        if m and "rlnSigma2Noise" in df:
            num = int(m.group(1))
            spec = _spectrum(df)
            spec["sigma2_noise"] = spec["rlnSigma2Noise"].astype(float)
            groups[names_by_number.get(num, f"group_{num}")] = spec
            _note_empty(spec, name, notes)
            continue
        m = _OPTICS_BLOCK.match(name)
        if m and "rlnSigma2Noise" in df:
            spec = _spectrum(df)
            spec["sigma2_noise"] = spec["rlnSigma2Noise"].astype(float)
            groups[f"optics_group_{int(m.group(1))}"] = spec
            group_kind = "optics_group"
            _note_empty(spec, name, notes)
    return ModelStar(
        classes=classes,
        groups=groups,
        pixel_size_A=pixel_size_A,
        general=general,
        class_spectra=class_spectra,
        group_table=group_table if isinstance(group_table, pd.DataFrame) else None,
        group_kind=group_kind,
        path=str(p),
        notes=notes,
    )


def resolve_reference_stack(model: ModelStar, model_path: str | os.PathLike | None = None) -> Path | None:
    """Find the class-average stack the model's ``rlnReferenceImage`` entries point to.

    RELION writes paths relative to its project folder (``Class2D/x_classes.mrcs``), usually the
    parent of the model's folder. Tries, in order: the path as written relative to the model's
    grandparent folder, relative to the model's folder, the same basename next to the model, and
    the conventional ``<model stem without _model>_classes.mrcs``. Returns ``None`` if none exists.
    """
    mp = Path(model_path or model.path)
    here = mp.parent
    candidates: list[Path] = []
    if "image_path" in model.classes and len(model.classes):
        written = Path(str(model.classes["image_path"].iloc[0]))
        candidates += [here.parent / written, here / written, here / written.name]
    stem = mp.name
    if stem.endswith("_model.star"):
        candidates.append(here / (stem[: -len("_model.star")] + "_classes.mrcs"))
    for c in candidates:
        if c.is_file():
            return c
    return None
