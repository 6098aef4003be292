"""Pick inspection end to end: read → score → calibrate → threshold → curate → dedupe → write.

The same steps serve ``cryodiag picks`` (headless, :func:`run_pick_inspection`) and the Inspect
Picks dock widget (which holds a :class:`~napari_cryodiag.compute.picks.pickset.PickSet` and calls
the step functions here). Files are read and written here; the numbers come from
:mod:`napari_cryodiag.compute.picks`.

Option dataclasses (:class:`CalibrationOptions`, :class:`ScoringOptions`, :class:`PickerOptions`,
:class:`DedupeOptions`) carry units in their field names and how a form shows them in their field
metadata (``widgets._forms``).

A **session** (:func:`save_session` / :func:`load_session`) records what a user did to a pick set:
the pick files, the CTF table, axes, calibration, thresholds and the hand edits (deleted, moved and
added picks). ``cryodiag picks --session S.json`` replays it and writes the same selection the
widget would.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..compute.picks.calibration import METHODS
from ..compute.picks.pickset import MANUAL_COLUMN, PickSet, Selection
from ..compute.picks.thresholds import Thresholds
from ..errors import CryodiagInputError

__all__ = [
    "CalibrationOptions", "ScoringOptions", "PickerOptions", "DedupeOptions", "read_picks", "read_ctf_table",
    "defocus_per_micrograph", "attach_defocus", "open_pick_set", "score_kwargs", "iter_score", "iter_pick",
    "write_selection", "write_micrograph_subset", "micrograph_subset_path", "selection_paths", "calibrated_columns", "session_dict", "save_session", "read_session", "load_session", "SESSION_VERSION",
    "pixel_size_of",
]

SESSION_VERSION = 1


# --------------------------------------------------------------------------- options


@dataclass
class CalibrationOptions:
    """Scores calibrated against defocus (per-micrograph medians, robust line)."""

    calibrate_x: bool = field(default=False, metadata={"label": "Calibrate Pick Score to CTF"})
    calibrate_y: bool = field(default=False, metadata={"label": "Calibrate Power Score to CTF"})
    mode: Literal["ratio", "difference"] = field(default="ratio", metadata={
        "tooltip": "a pick's score relative to the line at its micrograph's defocus: score / line or score - line"})
    method: Literal[METHODS] = field(default="theil-sen", metadata={"label": "robust fit"})  # type: ignore[valid-type]
    scale: Literal["linear", "log"] = field(default="linear", metadata={
        "label": "fit scale", "tooltip": "fit the line to the median scores, or to their logarithm "
                                         "(log: the line stays positive when junk dominates some micrographs)"})

    def inspection_kwargs(self) -> dict:
        return {"calibrate_x": self.calibrate_x, "calibrate_y": self.calibrate_y, "mode": self.mode,
                "method": self.method, "scale": self.scale}


@dataclass
class ScoringOptions:
    """NCC against a blob (or templates) and power score at each pick."""

    diameter_A: float | None = field(default=None, metadata={
        "label": "particle diameter (Å)", "min": 5.0, "max": 5000.0, "step": 5.0, "none": "from the picks",
        "tooltip": "blob diameter and outer diameter of the power annulus; 'from the picks' uses their "
                   "diameter column (crYOLO, a picker's box)"})
    lowpass_A: float | None = field(default=None, metadata={
        "label": "low-pass (Å)", "min": 1.0, "max": 200.0, "step": 1.0, "none": "auto"})
    n_angles: int = field(default=36, metadata={"label": "template angles", "min": 1, "max": 360})
    contrast: Literal["dark", "bright"] = field(default="dark", metadata={
        "label": "particles", "tooltip": "dark on raw micrographs (the default), bright on inverted ones"})
    scheduler: str = field(default="", metadata={
        "label": "dask scheduler", "tooltip": "empty: local threads; or a dask.distributed address (tcp://host:8786)"})


@dataclass
class PickerOptions:
    """The blob/template picker on whole micrographs."""

    diameter_A: float | None = field(default=None, metadata={
        "label": "particle diameter (Å)", "min": 5.0, "max": 5000.0, "step": 5.0, "none": "enter it",
        "tooltip": "the blob's diameter; the picker will not guess it"})
    min_distance_A: float | None = field(default=None, metadata={
        "label": "min. distance (Å)", "min": 1.0, "max": 5000.0, "step": 5.0, "none": "= diameter"})
    max_picks: int = field(default=500, metadata={"label": "max picks / micrograph", "min": 1, "max": 100_000})
    ncc_min: float | None = field(default=None, metadata={
        "label": "lowest NCC", "min": -1.0, "max": 1.0, "step": 0.01, "none": "automatic",
        "tooltip": "picks below it are not kept (automatic: -0.1 for the blob picker, 0.1 with templates)"})


@dataclass
class DedupeOptions:
    """Duplicate picks removed among the kept ones when a selection is written."""

    distance_A: float = field(default=0.0, metadata={
        "label": "duplicates within (Å)", "min": 0.0, "max": 5000.0, "step": 5.0,
        "tooltip": "0: keep duplicates; cryoSPARC uses 20 Å, RELION 30 Å"})
    keep: Literal["higher", "first"] = field(default="higher", metadata={
        "label": "of two, keep", "tooltip": "the higher-scoring pick, or the earlier one (RELION)"})


# --------------------------------------------------------------------------- reading


def read_picks(paths, *, flip_y: bool = False) -> pd.DataFrame:
    """Read pick files (one, a list, a folder or a glob) into one canonical table."""
    from ..io.picks import read_table

    paths = [os.fspath(p) for p in paths] if isinstance(paths, (list, tuple)) else os.fspath(paths)
    if isinstance(paths, list) and len(paths) == 1:
        paths = paths[0]
    opts = {"flip_y": True} if flip_y else {}
    return read_table(paths, **opts)


def read_ctf_table(path) -> pd.DataFrame:
    """A CTF table (RELION ``micrographs_ctf.star``, a cryoSPARC exposure or particle ``.cs``)."""
    from ..io.picks import read_table

    ctf = read_table(os.fspath(path))
    if "micrograph" not in ctf.columns or "defocus_A" not in ctf.columns:
        from ..io.exposures import read_exposures

        try:  # a cryoSPARC exposure .cs (micrograph_blob/*, ctf/*)
            ctf = read_exposures(path)
        except CryodiagInputError:
            ctf = None
        if ctf is None or "micrograph" not in ctf.columns or "defocus_A" not in ctf.columns:
            raise CryodiagInputError("the CTF table has no micrograph names and defocus", path)
    return ctf


def defocus_per_micrograph(ctf: pd.DataFrame) -> pd.DataFrame:
    """Median CTF values per micrograph key (index), from any table with ``defocus_A``."""
    cols = [c for c in ("defocus_A", "defocus_u_A", "defocus_v_A", "defocus_angle_deg", "pixel_size_A",
                        "voltage_kV", "cs_mm", "amplitude_contrast") if c in ctf.columns]
    return ctf.groupby(ctf["micrograph"].astype(str), observed=True)[cols].median()


def attach_defocus(table: pd.DataFrame, ctf: pd.DataFrame) -> list[str]:
    """Add the CTF table's per-micrograph defocus (and pixel size when missing) to ``table`` in
    place; returns notes (picks on micrographs the CTF table lacks)."""
    if "micrograph" not in table.columns:
        raise CryodiagInputError("the picks have no micrograph names to join the CTF table on",
                                 table.attrs.get("source"))
    per = defocus_per_micrograph(ctf)
    keys = table["micrograph"].astype(str)
    notes = []
    df = keys.map(per["defocus_A"])
    n_missing = int(df.isna().sum())
    if n_missing:
        notes.append(f"{n_missing} picks are on micrographs absent from the CTF table (no defocus)")
    table["defocus_A"] = df.to_numpy(dtype=np.float64)
    for col in ("pixel_size_A", "voltage_kV", "cs_mm", "amplitude_contrast"):
        if col not in table.columns and col in per.columns:
            table[col] = keys.map(per[col]).to_numpy(dtype=np.float64)
    return notes


def open_pick_set(table: pd.DataFrame, *, ctf: pd.DataFrame | None = None,
                  calibration: CalibrationOptions | None = None, x_feature: str | None = None,
                  y_feature: str | None = None, bins: int | None = None, thresholds: Thresholds | None = None,
                  suggest: bool | None = None) -> PickSet:
    """A :class:`PickSet` over ``table``: defocus from ``ctf`` when the picks have none, the
    calibration of ``calibration``, the given axes and thresholds (else the defaults)."""
    defocus = None
    if ctf is not None and "defocus_A" not in table.columns:
        defocus = defocus_per_micrograph(ctf)["defocus_A"]
    cal = calibration or CalibrationOptions()
    kw = dict(cal.inspection_kwargs(), defocus=defocus, thresholds=thresholds, suggest=suggest)
    if bins is None:
        bins = int(np.clip(np.sqrt(max(len(table), 1)) / 1.5, 20, 100))
    kw["bins"] = int(bins)
    if x_feature:
        kw["x_feature"] = x_feature
    if y_feature:
        kw["y_feature"] = y_feature
    return PickSet(table, **kw)


def pixel_size_of(table: pd.DataFrame, *fallbacks) -> float | None:
    """The micrograph pixel size (Å): the table's ``pixel_size_A`` median, else the first usable
    of ``fallbacks`` (a number, or None)."""
    if "pixel_size_A" in table.columns:
        v = pd.to_numeric(table["pixel_size_A"], errors="coerce").to_numpy(dtype=float)
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            return float(np.median(v))
    for f in fallbacks:
        try:
            f = float(f) if f is not None else None
        except (TypeError, ValueError):
            f = None
        if f is not None and np.isfinite(f) and f > 0:
            return f
    return None


# --------------------------------------------------------------------------- scoring, picking


def score_kwargs(options: ScoringOptions, pixel_size_A: float | None, *, templates=None,
                 template_pixel_size_A: float | None = None) -> dict:
    """Keyword arguments of ``compute.picks.jobs`` scoring from the options (Å -> px)."""
    kw: dict = {"n_angles": int(options.n_angles), "particle_contrast": options.contrast}
    if pixel_size_A:
        kw["pixel_size_A"] = float(pixel_size_A)
    if options.lowpass_A:
        kw["lowpass_A"] = float(options.lowpass_A)
    if templates is not None:
        t = np.asarray(templates, dtype=np.float32)
        kw["templates"] = t[None] if t.ndim == 2 else t
        if template_pixel_size_A:
            kw["template_pixel_size_A"] = float(template_pixel_size_A)
    return kw


def _diameter_px(diameter_A, table, pixel_size_A, where):
    if diameter_A:
        if not pixel_size_A:
            raise CryodiagInputError("the particle diameter in Å needs the micrograph pixel size", where)
        return float(diameter_A) / float(pixel_size_A)
    if table is not None and "diameter_px" in table.columns:
        d = pd.to_numeric(table["diameter_px"], errors="coerce").to_numpy(dtype=float)
        d = d[np.isfinite(d) & (d > 0)]
        if d.size:
            return float(np.median(d))
    raise CryodiagInputError("give the particle diameter (Å): the picks do not record one", where)


def iter_score(micrographs, table: pd.DataFrame, options: ScoringOptions, *, pixel_size_A: float | None,
               keys=None, score_micrographs=None, templates=None, template_pixel_size_A=None,
               num_workers: int | None = None):
    """Generator: NCC and power for every pick of ``table`` on ``micrographs`` (a lazy stack or
    array, axis 0 = micrograph, ``keys`` their matching keys); yields ``(done, total)`` per
    micrograph and returns the scored table (same rows)."""
    from ..compute.picks.jobs import iter_score_picks

    d_px = _diameter_px(options.diameter_A, table, pixel_size_A, table.attrs.get("source"))
    kw = score_kwargs(options, pixel_size_A, templates=templates, template_pixel_size_A=template_pixel_size_A)
    return (yield from iter_score_picks(
        micrographs, table, diameter_px=d_px, keys=keys, score_micrographs=score_micrographs,
        client=options.scheduler or None, num_workers=num_workers, **kw))


def iter_pick(micrographs, options: PickerOptions, scoring: ScoringOptions, *, pixel_size_A: float,
              keys=None, names=None, score_micrographs=None, templates=None, template_pixel_size_A=None,
              ctf: pd.DataFrame | None = None, num_workers: int | None = None):
    """Generator: the blob/template picker on ``micrographs``; returns the pick table (with the CTF
    table's defocus per micrograph when ``ctf`` is given)."""
    from ..compute.picks.jobs import iter_pick_micrographs

    if not pixel_size_A:
        raise CryodiagInputError("the picker needs the micrograph pixel size")
    if not options.diameter_A:
        raise CryodiagInputError("enter the particle diameter (Å) for the picker")
    d_px = float(options.diameter_A) / float(pixel_size_A)
    kw = score_kwargs(scoring, pixel_size_A, templates=templates, template_pixel_size_A=template_pixel_size_A)
    if options.min_distance_A:
        kw["min_distance_px"] = float(options.min_distance_A) / float(pixel_size_A)
    table = yield from iter_pick_micrographs(
        micrographs, diameter_px=d_px, keys=keys, names=names, score_micrographs=score_micrographs,
        client=scoring.scheduler or None, num_workers=num_workers, max_picks=int(options.max_picks),
        ncc_min=options.ncc_min, **kw)
    if ctf is not None and len(table):
        attach_defocus(table, ctf)
    return table


# --------------------------------------------------------------------------- writing


def selection_paths(path, *, rejected: bool = False) -> list[Path]:
    """Every file :func:`write_selection` writes for ``path`` (a ``.star`` or ``.cs``): the kept
    picks, the rejected ones (``<stem>_rejected<suffix>``) when asked, and the side JSON
    (``<file>.cryodiag.json``). A coordinate export also writes one file per micrograph, which the
    writer checks before it writes any."""
    from ..io.selection import selection_destinations

    return [p for p in selection_destinations(path, rejected) if p is not None]


def calibrated_columns(pickset: PickSet) -> dict:
    """``{name: values per row}`` of the calibrated scores the view shows (none when raw)."""
    insp = pickset.inspection
    extra = {}
    if insp is not None:
        if insp.x_units != "raw":
            extra[f"{insp.x_feature}_calibrated"] = insp.x
        if not insp.one_d and insp.y_units != "raw" and insp.y_feature != insp.x_feature:
            extra[f"{insp.y_feature}_calibrated"] = insp.y
    return extra


def write_selection(pickset: PickSet, path, *, selection: Selection | None = None, kind: str | None = None,
                    rejected: bool = False, overwrite: bool = False, protect=(), micrographs=(),
                    micrograph_shape=None, settings: dict | None = None, coord_suffix: str = "autopick",
                    project_dir=None, micrograph_subset: bool = False):
    """Write the kept picks of ``pickset`` (and the rejected ones when asked: left out by the
    thresholds or as duplicates, not those deleted by hand) through the one selection writer,
    :func:`napari_cryodiag.io.selection.write_selection`: RELION particle STAR (``.star``),
    cryoSPARC ``.cs``, or RELION coordinate files (``kind="coordinates"``), with one side JSON of
    the settings and the counts (kept, left out and why). ``micrographs``: the opened micrographs
    (:class:`~napari_cryodiag.io.selection.MicrographRefs`) for the names and shapes the files
    need. Every destination is checked before any is written; atomic; never over an input, nor
    over an existing output unless ``overwrite``. Returns ``(SelectionFiles, Selection)``.

    ``micrograph_subset``: also write the kept micrographs' rows of the set's micrograph table
    (:attr:`PickSet.exposures`, as read: RELION ``<stem>_micrographs.star`` with its optics, or
    cryoSPARC ``<stem>_exposures.cs`` with every field) beside the picks
    (:func:`write_micrograph_subset`); the side JSON says what it holds (``micrograph_subset``) and
    ``SelectionFiles.files`` lists it."""
    from ..io.selection import selection_kind, write_selection as write_files

    sel = selection if selection is not None else pickset.evaluate()
    table, kept = pickset.table, sel.kept
    if selection_kind(path, kind) == "cs" and micrograph_shape is None and not micrographs \
            and not _table_has_shape(table):
        raise CryodiagInputError("a .cs file stores locations as fractions of the micrograph size: give the "
                                 "micrograph size (open the micrographs, or enter it)", path)
    extra = calibrated_columns(pickset)
    gone = pickset.removed
    if gone.any():  # deleted by hand: in neither file
        rows = ~gone
        table = table.loc[rows].reset_index(drop=True)
        table.attrs = dict(pickset.table.attrs)
        kept = kept[rows]
        extra = {k: np.asarray(v)[rows] for k, v in extra.items()}
    if MANUAL_COLUMN in table.columns and not (pickset.manual[~gone] > 0).any():
        # no hand edits: the file as it would be without them
        table = table.drop(columns=MANUAL_COLUMN)
        table.attrs = dict(pickset.table.attrs)
    info = dict(settings or {})
    info["selection"] = sel.to_dict()
    left_out = {"thresholds": sel.n_rejected_by_thresholds, "duplicates": sel.n_duplicates}
    if sel.n_dropped_with_micrograph:
        left_out["dropped_with_micrograph"] = sel.n_dropped_with_micrograph
    subset = None
    if micrograph_subset:
        subset = write_micrograph_subset(pickset, path, selection=sel, rejected=rejected, overwrite=overwrite,
                                         protect=protect)
        info["micrograph_subset"] = subset
    files = write_files(path, table, kept, kind=kind, rejected=rejected, settings=info, left_out=left_out,
                        micrographs=list(micrographs), extra_columns=extra or None, coord_suffix=coord_suffix,
                        project_dir=project_dir,
                        micrograph_shape=tuple(int(v) for v in micrograph_shape) if micrograph_shape else None,
                        protect=protect, overwrite=overwrite)
    if subset is not None and subset.get("file"):
        files.files.insert(len(files.files) - 1, Path(subset["file"]))
    return files, sel


def micrograph_subset_path(pickset: PickSet, path) -> Path | None:
    """Where :func:`write_micrograph_subset` writes beside the picks ``path`` (None without a
    micrograph table read from a file)."""
    from ..io.exposures import exposure_subset_path

    ex = pickset.exposures
    if ex is None or not ex.attrs.get("source") or ex.attrs.get("format") not in ("star", "cs"):
        return None
    return exposure_subset_path(path, ex.attrs["format"])


def write_micrograph_subset(pickset: PickSet, path, *, selection: Selection | None = None, rejected: bool = False,
                            overwrite: bool = False, protect=()) -> dict:
    """The kept micrographs' rows of the set's micrograph table beside the picks ``path`` (see
    :func:`write_selection`); returns what was written (``file`` None, with a ``note``, when there
    is no micrograph table). The picks' own destinations are checked first, so that a refused
    export writes nothing."""
    from ..io.exposures import write_exposure_subset

    sel = selection if selection is not None else pickset.evaluate()
    dest = micrograph_subset_path(pickset, path)
    if dest is None:
        return {"file": None, "note": "no micrograph table (CTF STAR or exposure .cs) is known for these picks: "
                                      "no micrograph subset written"}
    for f in [dest, *selection_paths(path, rejected=rejected)]:
        if f.exists() and not overwrite:
            raise CryodiagInputError("file exists; pass overwrite=True (--overwrite) to replace it", f)
    ex = sel.exposures
    stats_keys = pickset.micrograph_statistics(sel)["micrograph"].astype(str).to_numpy()
    keep = stats_keys if ex is None else stats_keys[ex.keep]
    sources = [p for p in [pickset.table.attrs.get("source"), *(pickset.table.attrs.get("sources") or [])] if p]
    out, n = write_exposure_subset(dest, pickset.exposures, keep, overwrite=overwrite, protect=[*sources, *protect])
    d = {"file": str(out), "source": str(pickset.exposures.attrs.get("source")), "n_micrographs": n,
         "n_in_source": int(len(pickset.exposures))}
    if ex is not None:
        d["exposures"] = ex.to_dict()
    return d


def _table_has_shape(table: pd.DataFrame) -> bool:
    return {"micrograph_ny", "micrograph_nx"} <= set(table.columns) or table.attrs.get("format") == "cs"


# --------------------------------------------------------------------------- sessions


def session_dict(pickset: PickSet, *, sources, ctf=None, calibration: CalibrationOptions | None = None,
                 dedupe: DedupeOptions | None = None, flip_y: bool = False) -> dict:
    """What a user did to a pick set, as data (see the module docstring)."""
    insp = pickset.inspection
    return {
        "cryodiag_session": SESSION_VERSION,
        "picks": [os.fspath(p) for p in (sources if isinstance(sources, (list, tuple)) else [sources])],
        "flip_y": bool(flip_y),
        "ctf": os.fspath(ctf) if ctf else None,
        "x_feature": None if insp is None else insp.x_feature,
        "y_feature": None if insp is None else insp.y_feature,
        "calibration": asdict(calibration or CalibrationOptions()),
        "thresholds": None if insp is None else insp.thresholds.to_dict(),
        "dedupe": asdict(dedupe or DedupeOptions()),
        "edits": pickset.edits(),
    }


def save_session(path, pickset: PickSet, *, overwrite: bool = False, protect=(), **kwargs) -> Path:
    """Write :func:`session_dict` as JSON (atomically, never over an input)."""
    from ..io.atomic import atomic_write_text
    from ..io.jsonfile import to_jsonable

    d = session_dict(pickset, **kwargs)
    return atomic_write_text(path, json.dumps(to_jsonable(d), indent=2) + "\n", overwrite=overwrite,
                             protect=[*d["picks"], *([d["ctf"]] if d["ctf"] else []), *protect])


def read_session(path) -> dict:
    """A session file as data (see :func:`session_dict`), checked; nothing replayed."""
    from ..io.jsonfile import loads_finite

    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CryodiagInputError("file not found", path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise CryodiagInputError(f"not a session file: {err}", path) from None
    d = loads_finite(text, path, what="session file")
    if not isinstance(d, dict) or "cryodiag_session" not in d or not d.get("picks"):
        raise CryodiagInputError("not a cryodiag session file (no 'cryodiag_session' and 'picks')", path)
    if not isinstance(d.get("edits") or {}, dict) or not isinstance(d.get("calibration") or {}, dict):
        raise CryodiagInputError("malformed session: 'edits' and 'calibration' are objects", path)
    return d


def load_session(path) -> tuple[PickSet, dict]:
    """Read a session file and replay it: the pick files read again, the CTF table joined, the axes,
    calibration and thresholds set, the hand edits applied. Returns the set and the session dict
    (with ``"applied"``: what the edits did)."""
    d = read_session(path)
    table = read_picks(d["picks"], flip_y=bool(d.get("flip_y")))
    ctf = read_ctf_table(d["ctf"]) if d.get("ctf") else None
    try:
        cal = CalibrationOptions(**d.get("calibration") or {})
        thresholds = Thresholds.from_dict(d["thresholds"]).check(path) if d.get("thresholds") else None
    except TypeError as err:
        raise CryodiagInputError(f"malformed session: {err}", path) from None
    ps = open_pick_set(table, ctf=ctf, calibration=cal, x_feature=d.get("x_feature"),
                       y_feature=d.get("y_feature"), thresholds=thresholds)
    d["applied"] = ps.apply_edits(d.get("edits") or {})
    return ps, d
