"""npe2 writers: picks to RELION STAR / cryoSPARC .cs, images to MRC.

Signature (single-layer npe2 writer): ``(path: str, data, meta: dict) -> list[str]``, ``meta``
being the layer's attributes (``metadata``, ``features``, ``scale`` ...).

- A cryodiag picks layer holds only the shown micrograph's points; its full table is in
  ``meta["metadata"]["cryodiag"]["table"]``. The writers write the **whole table's kept rows**
  (``metadata["cryodiag"]["kept"]``, a bool mask over rows, when set), with the source's other
  fields kept (STAR columns; ``.cs`` rows taken from the source file by ``source_row``), through
  ``io.selection.write_selection``: the same files and side JSON (``<file>.cryodiag.json``) as the
  command line and Inspect Picks' Export; micrograph names from the linked micrographs.
- Any other Points layer is written from its data ``(.., y, x)`` (pixels: data coordinates) and
  numeric features.
- Writes are atomic. The file the picks were read from is never overwritten. Other existing
  files are replaced: napari's save dialog has asked the user already.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .errors import CryodiagInputError


def _cryodiag_meta(meta: dict) -> dict:
    md = (meta or {}).get("metadata") or {}
    return md.get("cryodiag", {}) if isinstance(md, dict) else {}


def _inputs(table: pd.DataFrame | None, md: dict) -> list[str]:
    out = []
    if table is not None:
        out += [p for p in [table.attrs.get("source")] + list(table.attrs.get("sources", []) or []) if p]
    if md.get("path"):
        out.append(md["path"])
    out += list(md.get("paths", []) or [])
    return [p for p in out if isinstance(p, (str, os.PathLike)) and os.path.isfile(p)]


def _kept_mask(md: dict, table: pd.DataFrame):
    """The layer's kept mask over the full table (None: every row)."""
    kept = md.get("kept")
    if kept is None:
        return None
    kept = np.asarray(kept, dtype=bool)
    if kept.shape != (len(table),):
        raise CryodiagInputError("kept mask does not match the picks table")
    return kept


def table_to_write(data, meta: dict) -> pd.DataFrame:
    """The table a points layer stands for (kept rows of the full table, or the layer's points)."""
    md = _cryodiag_meta(meta)
    table = md.get("table")
    if isinstance(table, pd.DataFrame):
        kept = _kept_mask(md, table)
        if kept is not None:
            out = table.loc[kept].reset_index(drop=True)
            out.attrs = dict(table.attrs)
            return out
        return table
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
    scale = meta.get("scale")
    if scale is not None and len(scale) >= 2 and float(scale[-1]) != 1.0:
        out["pixel_size_A"] = float(scale[-1])
    out.attrs = {"format": "points", "source": None}
    return out


def _write_points(path: str, data, meta: dict) -> list[str]:
    """Both point writers: the kept rows through the one selection writer (``io.selection``)."""
    from .io.selection import MicrographRefs, write_selection

    md = _cryodiag_meta(meta)
    table = md.get("table")
    if isinstance(table, pd.DataFrame):
        kept = _kept_mask(md, table)
    else:
        table, kept = table_to_write(data, meta), None
    refs = []
    paths = md.get("micrograph_paths")
    if paths:
        refs.append(MicrographRefs.from_paths(paths, shapes=md.get("micrograph_shape"),
                                              pixel_size_A=md.get("micrograph_pixel_size_A")))
    shape = md.get("micrograph_shape")
    out = write_selection(path, table, kept, settings=md.get("settings") or {"source": table.attrs.get("source")},
                          micrographs=refs, micrograph_shape=tuple(shape) if shape is not None else None,
                          protect=_inputs(md.get("table"), md), overwrite=True)
    return [os.fspath(p) for p in out.files]


def write_points_star(path: str, data, meta: dict) -> list[str]:
    """Write a points layer's picks as a RELION 3.1+ particle STAR (and its side JSON)."""
    return _write_points(path, data, meta)


def write_points_cs(path: str, data, meta: dict) -> list[str]:
    """Write a points layer's picks as a NumPy-format cryoSPARC .cs (and its side JSON)."""
    return _write_points(path, data, meta)


def write_image_mrc(path: str, data, meta: dict) -> list[str]:
    """Write an image layer as MRC: voxel size from ``scale``, origin from ``translate``."""
    from .io.mrc import write_mrc

    md = _cryodiag_meta(meta)
    arr = data
    if isinstance(arr, (list, tuple)):  # multiscale: the full-resolution level
        arr = arr[0]
    if hasattr(arr, "compute"):
        arr = arr.compute()
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise CryodiagInputError(f"cannot write a {arr.ndim}D image as MRC (2D or 3D only)", path)
    scale = meta.get("scale")
    translate = meta.get("translate")
    vs = tuple(float(s) for s in scale[-arr.ndim:]) if scale is not None else None
    org = tuple(float(t) for t in translate[-arr.ndim:]) if translate is not None else None
    stack = md.get("kind") in ("stack", "micrographs") or str(path).lower().endswith(".mrcs")
    if stack and vs is not None and arr.ndim == 3:
        vs = (vs[2], vs[1], vs[2])
        org = None
    dest = write_mrc(path, arr, vs, org, overwrite=True, protect=_inputs(None, md), stack=stack)
    return [os.fspath(dest)]
