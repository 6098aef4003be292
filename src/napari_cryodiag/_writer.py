"""npe2 writers: picks to RELION STAR / cryoSPARC .cs, images to MRC.

Signature (single-layer npe2 writer): ``(path: str, data, meta: dict) -> list[str]``, ``meta``
being the layer's attributes (``metadata``, ``features``, ``scale`` ...).

- A cryodiag picks layer shows one micrograph of its pick set; File > Save writes the **whole
  set as curated** through the same writer as Inspect Picks' Export
  (:func:`napari_cryodiag.workflows.picks.write_selection`): the kept picks (thresholds, hand
  edits, and the duplicate distance last used in Export), the settings beside the file
  (``<file>.cryodiag.json``), atomically, never over an input.
- Any other Points layer is written from its data ``(.., y, x)`` (pixels: data coordinates) and
  numeric features.
- napari's save dialog has asked before replacing an existing file, so outputs are replaced;
  inputs never are.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .errors import CryodiagInputError


def _cryodiag_meta(meta: dict) -> dict:
    md = (meta or {}).get("metadata") or {}
    return md.get("cryodiag", {}) if isinstance(md, dict) else {}


def _inputs(md: dict) -> list[str]:
    out = []
    table = md.get("table")
    if isinstance(table, pd.DataFrame):
        out += [p for p in [table.attrs.get("source")] + list(table.attrs.get("sources", []) or []) if p]
    if md.get("path"):
        out.append(md["path"])
    out += list(md.get("paths", []) or [])
    return [os.fspath(p) for p in out if isinstance(p, (str, os.PathLike)) and os.path.isfile(p)]


def points_table(data, meta: dict) -> pd.DataFrame:
    """The picks of a plain Points layer (not a cryodiag pick set) as a canonical table."""
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise CryodiagInputError("points layer has no (y, x) coordinates to write")
    feats = meta.get("features")
    out = pd.DataFrame(feats).reset_index(drop=True) if feats is not None else pd.DataFrame(index=range(len(arr)))
    out = out[[c for c in out.columns if out[c].dtype.kind in "iufb"]].copy()
    out["x_px"] = arr[:, -1]
    out["y_px"] = arr[:, -2]
    name = str(meta.get("name") or "micrograph")
    if arr.shape[1] >= 3:
        out["micrograph_name"] = [f"{name}_{int(i):04d}" for i in arr[:, -3]]
    else:
        out["micrograph_name"] = name
    out["micrograph"] = out["micrograph_name"]
    scale = meta.get("scale")
    if scale is not None and len(scale) >= 2 and float(scale[-1]) != 1.0:
        out["pixel_size_A"] = float(scale[-1])
    out.attrs = {"format": "points", "source": None}
    return out


def _write_points(path: str, data, meta: dict) -> list[str]:
    from .compute.picks.pickset import PickSet
    from .workflows.picks import write_selection

    md = _cryodiag_meta(meta)
    ps = md.get("pickset")
    table = md.get("table")
    if not isinstance(ps, PickSet):
        ps = PickSet(table if isinstance(table, pd.DataFrame) else points_table(data, meta))
    # what the viewer shows as kept (Inspect Picks' thresholds and the hand edits); a layer never
    # inspected is written whole (minus the picks deleted by hand)
    kept = md.get("kept")
    if kept is None or np.shape(kept) != (len(ps.table),):
        kept = np.ones(len(ps.table), dtype=bool)
    dedupe = md.get("export_options") or {}
    sel = ps.selection(kept=kept, dedupe_A=dedupe.get("distance_A") or None,
                       dedupe_keep=dedupe.get("keep", "higher"), pixel_size_A=md.get("pixel_size_A"))
    settings = {"source": ps.table.attrs.get("source"), "written_by": "napari File > Save"}
    if ps.inspection is not None:
        rep = ps.inspection.report()
        settings.update({k: rep[k] for k in ("x_feature", "y_feature", "x_units", "y_units", "thresholds",
                                             "calibration")})
    if dedupe:
        settings["duplicates_options"] = dedupe
    shape = md.get("micrograph_shape")
    files, _ = write_selection(ps, path, selection=sel, overwrite=True, protect=_inputs(md),
                               micrographs=md.get("micrograph_refs") or (),
                               micrograph_shape=tuple(shape) if shape is not None else None, settings=settings)
    for note in files.notes:
        _warn(f"{path}: {note}")
    return [os.fspath(p) for p in files.files]


def _warn(text: str) -> None:
    import warnings

    warnings.warn(text, stacklevel=3)  # napari shows a writer's warnings as notifications


def write_points_star(path: str, data, meta: dict) -> list[str]:
    """Write a picks layer as a RELION STAR file (the pick set as curated, with its settings)."""
    return _write_points(path, data, meta)


def write_points_cs(path: str, data, meta: dict) -> list[str]:
    """Write a picks layer as a NumPy-format cryoSPARC .cs file (the pick set as curated)."""
    return _write_points(path, data, meta)


def write_image_mrc(path: str, data, meta: dict) -> list[str]:
    """Write an image layer as MRC: voxel size from ``scale``, origin from ``translate``; a
    micrograph layer shown filtered is written raw (its data as read)."""
    from .io.mrc import write_mrc

    md = _cryodiag_meta(meta)
    arr = md.get("raw") if md.get("raw") is not None else data
    if isinstance(arr, (list, tuple)):  # multiscale: the full-resolution level
        arr = arr[0]
    if hasattr(arr, "compute"):
        arr = arr.compute()
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise CryodiagInputError(f"cannot write a {arr.ndim}D image as MRC (2D or 3D only)", path)
    scale = meta.get("scale")
    translate = meta.get("translate")
    if md.get("raw") is not None and md.get("pixel_size_A"):
        apix = float(md["pixel_size_A"])
        vs = (apix,) * arr.ndim
        org = None
    else:
        vs = tuple(float(s) for s in scale[-arr.ndim:]) if scale is not None else None
        org = tuple(float(t) for t in translate[-arr.ndim:]) if translate is not None else None
    stack = md.get("kind") in ("stack", "micrographs") or str(path).lower().endswith(".mrcs")
    if stack and vs is not None and arr.ndim == 3:
        vs = (vs[2], vs[1], vs[2])
        org = None
    dest = write_mrc(path, arr, vs, org, overwrite=True, protect=_inputs(md), stack=stack)
    return [os.fspath(dest)]
