"""Duplicate picks: picks closer than a distance on the same micrograph.

Within each micrograph a KD-tree (:class:`scipy.spatial.cKDTree`) lists the pairs closer than
``distance_A`` (converted with the pixel size). Picks are then visited in priority order and
a pick is kept unless an already kept pick lies within the distance (greedy non-maximum
suppression). Priority:

- ``keep="higher"`` (default, cryoSPARC's rule): higher ``score`` first; NaN scores last; ties
  by row order;
- ``keep="first"`` (RELION's rule): earlier rows first.

Defaults: 20 Å (cryoSPARC's default; RELION's GUI uses 30 Å). Rows without coordinates are
left alone (kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ...errors import CryodiagInputError

__all__ = ["DuplicateResult", "find_duplicates", "KEEP_RULES"]

KEEP_RULES = ("higher", "first")


@dataclass
class DuplicateResult:
    """Outcome of :func:`find_duplicates`.

    ``keep`` is a boolean array aligned with the table rows (False = removed as a duplicate, or
    not a candidate when a ``mask`` was given); ``kept_by[i]`` is the row position of the kept
    pick that removed row ``i`` (-1 otherwise).
    """

    keep: np.ndarray
    n_removed: int
    n_candidates: int
    kept_by: np.ndarray
    distance_A: float | None
    score: str | None
    rule: str
    removed_per_micrograph: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "distance_A": self.distance_A,
            "score": self.score,
            "rule": self.rule,
            "n_candidates": self.n_candidates,
            "n_removed": self.n_removed,
            "n_kept": int(self.n_candidates - self.n_removed),
            "removed_per_micrograph": dict(self.removed_per_micrograph),
        }


def _nms(xy: np.ndarray, radius: float, priority: np.ndarray):
    """Greedy NMS on one micrograph. ``priority``: positions in visiting order. Returns (removed, by)."""
    n = len(xy)
    removed = np.zeros(n, bool)
    by = np.full(n, -1, dtype=np.int64)
    if n < 2 or not radius > 0:
        return removed, by
    pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray")
    if len(pairs) == 0:
        return removed, by
    # adjacency (CSR) of the picks involved in a pair
    a = np.concatenate([pairs[:, 0], pairs[:, 1]])
    b = np.concatenate([pairs[:, 1], pairs[:, 0]])
    order = np.argsort(a, kind="stable")
    a, b = a[order], b[order]
    start = np.searchsorted(a, np.arange(n + 1))
    rank = np.empty(n, dtype=np.int64)
    rank[priority] = np.arange(n)
    involved = np.unique(a)
    for i in involved[np.argsort(rank[involved], kind="stable")]:
        if removed[i]:
            continue
        nb = b[start[i] : start[i + 1]]
        nb = nb[(rank[nb] > rank[i]) & ~removed[nb]]
        removed[nb] = True
        by[nb] = i
    return removed, by


def find_duplicates(
    table: pd.DataFrame,
    distance_A: float | None = 20.0,
    *,
    score: str | None = "ncc",
    keep: str = "higher",
    pixel_size_A: float | None = None,
    distance_px: float | None = None,
    micrograph_column: str = "micrograph",
    mask=None,
) -> DuplicateResult:
    """Find duplicate picks per micrograph; see the module docstring.

    Parameters
    ----------
    table
        Pick table with ``x_px``, ``y_px`` and (usually) ``micrograph``; a table without a
        micrograph column is treated as one micrograph.
    distance_A
        Minimum distance between kept picks, in Å (needs ``pixel_size_A`` or the table's
        ``pixel_size_A`` column). ``distance_px`` gives it in pixels instead.
    score
        Column ranking the picks for ``keep="higher"`` (any numeric column).
    keep
        ``"higher"`` or ``"first"``.
    mask
        Optional boolean array: only these rows take part (e.g. the picks kept by thresholds);
        the others get ``keep=False``.
    """
    src = str(table.attrs.get("source", "the pick table"))
    if keep not in KEEP_RULES:
        raise ValueError(f"keep must be one of {KEEP_RULES}, got {keep!r}")
    for c in ("x_px", "y_px"):
        if c not in table.columns:
            raise CryodiagInputError(f"no '{c}' column: picks need coordinates to find duplicates", src)
    n = len(table)
    cand = np.ones(n, bool) if mask is None else np.asarray(mask, bool).copy()
    if cand.shape != (n,):
        raise ValueError(f"mask has shape {cand.shape}, the table has {n} rows")
    x = pd.to_numeric(table["x_px"], errors="coerce").to_numpy(np.float64)
    y = pd.to_numeric(table["y_px"], errors="coerce").to_numpy(np.float64)
    has_xy = np.isfinite(x) & np.isfinite(y)

    if keep == "higher":
        if score is None or score not in table.columns:
            raise CryodiagInputError(
                f"no '{score}' column to rank duplicates by; choose another score or keep='first'", src
            )
        s = pd.to_numeric(table[score], errors="coerce").to_numpy(np.float64)
        s = np.where(np.isfinite(s), s, -np.inf)
        global_order = np.lexsort((np.arange(n), -s))  # higher score first, ties by row
    else:
        global_order = np.arange(n)
    global_rank = np.empty(n, dtype=np.int64)
    global_rank[global_order] = np.arange(n)

    if distance_px is None:
        if distance_A is None:
            raise ValueError("give distance_A or distance_px")
        if pixel_size_A is None:
            if "pixel_size_A" not in table.columns:
                raise CryodiagInputError(
                    "no pixel size to convert the duplicate distance from Å (give pixel_size_A or a distance in pixels)", src
                )
            apix_row = pd.to_numeric(table["pixel_size_A"], errors="coerce").to_numpy(np.float64)
        else:
            apix_row = np.full(n, float(pixel_size_A))
    groups = (
        table[micrograph_column].astype(str).to_numpy()
        if micrograph_column in table.columns
        else np.zeros(n, dtype=object)
    )
    codes, uniques = pd.factorize(groups)
    keep_arr = cand.copy()
    kept_by = np.full(n, -1, dtype=np.int64)
    removed_per = {}
    active = cand & has_xy
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    for g, name in enumerate(uniques):
        rows = order[bounds[g] : bounds[g + 1]]
        rows = rows[active[rows]]
        if len(rows) < 2:
            continue
        if distance_px is not None:
            r = float(distance_px)
        else:
            apix = np.nanmedian(apix_row[rows])
            if not np.isfinite(apix) or apix <= 0:
                raise CryodiagInputError(f"no valid pixel size for micrograph {name}", src)
            r = float(distance_A) / apix
        xy = np.column_stack([x[rows], y[rows]])
        # "closer than r": query_pairs includes r itself; shrink by a hair
        removed, by = _nms(xy, r * (1 - 1e-9), np.argsort(global_rank[rows], kind="stable"))
        if removed.any():
            keep_arr[rows[removed]] = False
            kept_by[rows[removed]] = rows[by[removed]]
            removed_per[str(name)] = int(removed.sum())
    n_removed = int(sum(removed_per.values()))
    return DuplicateResult(
        keep=keep_arr, n_removed=n_removed, n_candidates=int(cand.sum()), kept_by=kept_by,
        distance_A=None if distance_px is not None else float(distance_A),
        score=score if keep == "higher" else None, rule=keep, removed_per_micrograph=removed_per,
    )
