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
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from . import cbox, cs, star
from .paths import TABLE_SUFFIXES, expand_table_paths
from .keys import categorical_names_and_keys, micrograph_key, micrograph_keys

__all__ = [
    "micrograph_key",
    "micrograph_keys",
    "read_table",
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
        return _concat([read_table(p, **opts) for p in files], files)
    p = os.fspath(path)
    if os.path.isdir(p) or any(c in p for c in "*?["):
        files = expand_table_paths(p)
        sufs = {Path(f).suffix.lower() for f in files}
        if sufs == {".star"}:
            return star.read_star_table(files, **opts)
        return _concat([read_table(f, **opts) for f in files], files, label=p)
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


def _concat(tables: list[pd.DataFrame], files: list[str], label: str | None = None) -> pd.DataFrame:
    if not tables:
        raise CryodiagInputError("no tables to read", label)
    out = pd.concat(tables, ignore_index=True, sort=False)
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


class MatchReport(dict):
    """Outcome of :func:`match_to_micrographs` (a dict with a readable ``summary()``).

    Keys: ``n_rows``, ``n_matched``, ``n_unmatched``, ``unmatched_micrographs`` (table keys with
    no open micrograph -> number of picks), ``micrographs_without_picks`` (open keys with no
    pick), ``picks_per_micrograph`` (counts per open micrograph).
    """

    def summary(self, max_names: int = 5) -> str:
        parts = [f"{self['n_matched']} of {self['n_rows']} picks placed on "
                 f"{len(self['picks_per_micrograph']) - len(self['micrographs_without_picks'])} micrographs"]
        um = self["unmatched_micrographs"]
        if um:
            names = ", ".join(list(um)[:max_names]) + (" ..." if len(um) > max_names else "")
            parts.append(f"{self['n_unmatched']} picks on {len(um)} micrographs that are not open ({names})")
        nw = self["micrographs_without_picks"]
        if nw:
            names = ", ".join(nw[:max_names]) + (" ..." if len(nw) > max_names else "")
            parts.append(f"{len(nw)} open micrographs have no picks ({names})")
        return "; ".join(parts)


def match_to_micrographs(table: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, MatchReport]:
    """Index of each row's micrograph in ``keys`` (-1 when not open) and a report.

    Rows are matched by the ``micrograph`` key column (see :func:`micrograph_key`); ``keys``
    are normalised with the same function, so raw file names work too. When no key matches
    exactly, a case-insensitive match is tried.
    """
    keys = [micrograph_key(k) for k in keys]
    n = len(table)
    if "micrograph" not in table.columns:
        if len(keys) == 1:  # single micrograph, single-file picks without a name: place them
            idx = np.zeros(n, dtype=np.int64)
        else:
            idx = np.full(n, -1, dtype=np.int64)
        col = None
    else:
        col = table["micrograph"]
        lookup: dict[str, int] = {}
        for i, k in enumerate(keys):  # duplicate keys (mic.mrc and mic_DW.mrc): the first wins
            lookup.setdefault(k, i)
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = [str(c) for c in col.cat.categories]
            codes = col.cat.codes.to_numpy()
        else:
            codes, uniq = pd.factorize(col.to_numpy(dtype=object), use_na_sentinel=True)
            cats = [str(c) for c in uniq]
        cat_idx = np.array([lookup.get(c, -1) for c in cats], dtype=np.int64)
        if len(cats) and (cat_idx < 0).all():
            low: dict[str, int] = {}
            for i, k in enumerate(keys):
                low.setdefault(k.lower(), i)
            cat_idx = np.array([low.get(c.lower(), -1) for c in cats], dtype=np.int64)
        codes = np.asarray(codes)
        if len(cat_idx):
            idx = np.where(codes >= 0, cat_idx[np.maximum(codes, 0)], -1).astype(np.int64)
        else:
            idx = np.full(n, -1, dtype=np.int64)
    counts = np.bincount(idx[idx >= 0], minlength=len(keys)) if len(keys) else np.zeros(0, int)
    unmatched = {}
    if col is not None and (idx < 0).any():
        vc = pd.Series(np.asarray(col.to_numpy(), dtype=object)[idx < 0]).astype(str).value_counts()
        unmatched = {str(k): int(v) for k, v in vc.items()}
    report = MatchReport(
        n_rows=int(n),
        n_matched=int((idx >= 0).sum()),
        n_unmatched=int((idx < 0).sum()),
        unmatched_micrographs=unmatched,
        micrographs_without_picks=[k for k, c in zip(keys, counts) if c == 0],
        picks_per_micrograph=[int(c) for c in counts],
    )
    return idx, report


def group_rows(index_per_row: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices per group (``index_per_row`` in ``[0, n_groups)``, -1 ignored), O(N log N)."""
    idx = np.asarray(index_per_row)
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    bounds = np.searchsorted(sorted_idx, np.arange(n_groups + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_groups)]
