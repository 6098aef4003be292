"""The canonical pick / particle table and micrograph-name matching.

Every table reader returns a pandas DataFrame with the columns of docs/ARCHITECTURE.md
(``micrograph_name``, ``micrograph``, ``x_px``, ``y_px``, ``pixel_size_A``, ``defocus_*``, ...)
and ``attrs = {"source", "format", "convention", "optics", ...}``. :func:`read_table`
dispatches on the suffix; :func:`match_to_micrographs` maps each row to a micrograph of an open
stack by the ``micrograph`` key.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from . import cbox, cs, star
from .paths import TABLE_SUFFIXES, expand_table_paths
from ..micrographs import (  # the pick table's micrograph matching, re-exported here
    MatchReport,
    group_rows,
    match_to_micrographs,
    micrograph_key,
    micrograph_keys,
)

__all__ = [
    "micrograph_key",
    "micrograph_keys",
    "read_table",
    "concat_tables",
    "match_to_micrographs",
    "MatchReport",
    "has_coordinates",
    "group_rows",
    "TABLE_SUFFIXES",
]


def read_table(path, **opts) -> pd.DataFrame:
    """Read a pick/particle table (``.star``, ``.cs``, ``.cbox``; a folder or glob of them).

    Options are passed to the format's reader (e.g. ``flip_y=True`` for ``.cs``,
    ``fields=`` to read only some ``.cs`` fields).
    """

    if isinstance(path, (list, tuple)):
        files = [os.fspath(p) for p in path]
        return concat_tables([read_table(p, **opts) for p in files], files)
    p = os.fspath(path)
    if os.path.isdir(p) or any(c in p for c in "*?["):
        files = expand_table_paths(p)
        sufs = {Path(f).suffix.lower() for f in files}
        if sufs == {".star"}:
            return star.read_star_table(files, **opts)
        return concat_tables([read_table(f, **opts) for f in files], files, label=p)
    suffix = Path(p).suffix.lower()
    if suffix == ".star":
        return star.read_star_table(p, **opts)
    if suffix == ".cs":
        return cs.read_cs(p, **opts)
    if suffix == ".cbox":
        return cbox.read_cbox(p, **opts)
    raise CryodiagInputError(
        f"not a file cryodiag reads as a table: suffix '{suffix}' (tables: {', '.join(TABLE_SUFFIXES)}; "
        "images and maps: .mrc, .mrcs, .map, .rec, .st)", p
    )


def concat_tables(tables: list[pd.DataFrame], files: list[str], label: str | None = None) -> pd.DataFrame:
    """One canonical table of several (one per file): rows in file order, ``source_file`` per row,
    ``attrs["sources"]`` the files; micrograph names stay categorical."""
    if not tables:
        raise CryodiagInputError("no tables to read", label)
    out = pd.concat(tables, ignore_index=True, sort=False)
    for col in ("micrograph", "micrograph_name"):
        if col in out.columns and not isinstance(out[col].dtype, pd.CategoricalDtype):
            if any(isinstance(t[col].dtype, pd.CategoricalDtype) for t in tables if col in t.columns):
                out[col] = out[col].astype(str).astype("category")
    parts = []
    for f, t in zip(files, tables):
        parts.append(np.full(len(t), f, dtype=object))
    out["source_file"] = np.concatenate(parts) if parts else np.array([], dtype=object)
    out.attrs = dict(tables[0].attrs)
    out.attrs["source"] = label or files[0]
    out.attrs["sources"] = list(files)
    return out


def has_coordinates(table: pd.DataFrame) -> bool:
    """True when the table has pick coordinates (``x_px``/``y_px`` not all missing)."""
    if "x_px" not in table.columns or "y_px" not in table.columns:
        return False
    if len(table) == 0:
        return bool(table.attrs.get("has_locations", True))
    return bool(np.isfinite(table["x_px"].to_numpy(dtype=float)).any())


