"""A pick set being inspected and curated: the table, the picks edited by hand, and the
thresholds view over it (:class:`~.thresholds.PickInspection`).

What is kept
------------
A pick is **kept** when it passes the thresholds (NCC × power, a single score, a polygon …) or was
added or moved by hand (a pick the user placed is a pick the user wants, whatever its score), and
was not deleted by hand. Duplicates (picks closer than a distance to a better one on the same
micrograph) are removed among the kept picks when a selection is written
(:meth:`PickSet.selection`), because which pick is a duplicate depends on what else is kept.

Edits keep row numbers
----------------------
Rows are never dropped while the set is open: a deleted pick stays in :attr:`PickSet.table` with
``removed[row] = True``, so the row numbers the viewer, the histogram codes and the kept mask use
stay valid; added picks are appended (binned on the histogram's edges and calibrated with the
fitted lines, without rebuilding the view). The ``manual`` column records the hand edits:
``"read"`` (as read or scored), ``"added"`` or ``"moved"``; a selection carries it into the files
written.

A set without any score column (manual picks, coordinates only) has no thresholds view
(``inspection is None``): every pick is kept until it is deleted by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError
from .duplicates import DuplicateResult, find_duplicates
from .exposures import (
    ExposureSelection, ExposureThresholds, exposure_values, kept_fraction, micrograph_statistics, pick_ctf_values,
)
from .thresholds import PickInspection, Thresholds, micrograph_codes

__all__ = ["PickSet", "Selection", "MANUAL_COLUMN", "MANUAL_STATES"]

#: the column recording hand edits, and its values
MANUAL_COLUMN = "manual"
MANUAL_STATES = ("read", "added", "moved")


@dataclass
class Selection:
    """What a pick set keeps now, with the reasons for what it leaves out."""

    kept: np.ndarray  #: bool per row of the table
    n_rows: int  #: picks in the set (not deleted by hand)
    n_removed_by_hand: int
    n_rejected_by_thresholds: int
    n_duplicates: int = 0
    n_added_by_hand: int = 0
    n_moved_by_hand: int = 0
    kept_per_micrograph: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    total_per_micrograph: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    thresholds: str = ""  #: the thresholds in words
    duplicates: dict | None = None  #: the duplicate search's settings and counts
    #: picks (not deleted by hand) on micrographs the exposure thresholds drop, whatever their scores
    n_dropped_with_micrograph: int = 0
    #: which micrographs the exposure thresholds keep and why the others are dropped (None: no such thresholds)
    exposures: ExposureSelection | None = None
    #: per micrograph, the picks kept before micrographs are dropped (what ``kept_fraction`` is of)
    kept_before_drop_per_micrograph: np.ndarray | None = None

    def __setattr__(self, name, value):
        if name == "kept":  # also ``sel.kept &= m``, which assigns the attribute
            self.__dict__["_n_kept"] = None
        object.__setattr__(self, name, value)

    @property
    def n_kept(self) -> int:
        """Picks kept (counted once per mask: a 1e7 mask takes milliseconds to count)."""
        n = self.__dict__.get("_n_kept")
        if n is None:
            n = self.__dict__["_n_kept"] = int(np.count_nonzero(self.kept))
        return n

    @property
    def n_left_out(self) -> int:
        return self.n_rows - self.n_kept

    def explain(self) -> str:
        """One sentence: how many picks are kept, how many are left out, and why."""
        parts = []
        if self.n_rejected_by_thresholds:
            parts.append(f"{self.n_rejected_by_thresholds:,} outside the thresholds ({self.thresholds})")
        if self.n_dropped_with_micrograph or (self.exposures is not None and self.exposures.n_dropped):
            ex = self.exposures
            k = ex.n_dropped if ex is not None else 0
            parts.append(f"{self.n_dropped_with_micrograph:,} dropped with their {k:,} micrograph{'s' * (k != 1)} "
                         f"({ex.thresholds if ex is not None else ''})")
        if self.n_duplicates:
            d = (self.duplicates or {}).get("distance_A")
            parts.append(f"{self.n_duplicates:,} duplicates" + (f" within {d:g} Å" if d else ""))
        text = f"{self.n_kept:,} of {self.n_rows:,} picks kept"
        if parts:
            text += "; left out: " + ", ".join(parts)
        if self.n_removed_by_hand:
            text += f"; {self.n_removed_by_hand:,} deleted by hand"
        hand = []
        if self.n_added_by_hand:
            hand.append(f"{self.n_added_by_hand:,} added")
        if self.n_moved_by_hand:
            hand.append(f"{self.n_moved_by_hand:,} moved")
        if hand:
            text += f" ({' and '.join(hand)} by hand, kept whatever their scores)"
        return text

    def to_dict(self) -> dict:
        return {
            "n_picks": self.n_rows, "n_kept": self.n_kept, "n_left_out": self.n_left_out,
            "n_rejected_by_thresholds": self.n_rejected_by_thresholds, "n_duplicates": self.n_duplicates,
            "n_removed_by_hand": self.n_removed_by_hand, "n_added_by_hand": self.n_added_by_hand,
            "n_moved_by_hand": self.n_moved_by_hand, "thresholds": self.thresholds,
            "duplicates": self.duplicates, "n_dropped_with_micrograph": self.n_dropped_with_micrograph,
            "exposures": None if self.exposures is None else self.exposures.to_dict(), "summary": self.explain(),
        }


def _median_finite(values) -> float:
    """The median of a column's finite numeric values (NaN when it has none)."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


def _with_manual(table: pd.DataFrame) -> pd.DataFrame:
    if MANUAL_COLUMN in table.columns:
        vals = table[MANUAL_COLUMN].astype(str)
        bad = ~vals.isin(MANUAL_STATES)
        if bad.any():
            vals = vals.where(~bad, "read")
        table[MANUAL_COLUMN] = pd.Categorical(vals, categories=MANUAL_STATES)
    else:
        table[MANUAL_COLUMN] = pd.Categorical.from_codes(np.zeros(len(table), np.int8), categories=MANUAL_STATES)
    return table


class PickSet:
    """A pick table with hand edits and its thresholds view (see the module docstring).

    The set takes ``table`` over (it is not copied; a ``manual`` column is added to it).

    ``inspection_options`` go to :class:`~.thresholds.PickInspection` (features, calibration,
    bins, thresholds, defocus per micrograph).
    """

    def __init__(self, table: pd.DataFrame, **inspection_options):
        # the set owns the table from now on (no copy: 1e7 picks): it gains the ``manual`` column
        attrs = dict(table.attrs)
        table = _with_manual(table)
        table.attrs = attrs
        self.source = attrs.get("source")
        self.removed = np.zeros(len(table), dtype=bool)
        self.version = 0  #: increases with every change of rows (views compare it)
        self.no_scores = ""
        try:
            self.inspection: PickInspection | None = PickInspection(table, **inspection_options)
        except CryodiagInputError as err:
            if "no numeric score" not in str(err):
                raise
            self.inspection = None
            self.no_scores = err.problem if hasattr(err, "problem") else str(err)
            self._table = table
            self._codes, self._names = micrograph_codes(table)
        self._inspection_options = dict(inspection_options)
        #: the micrograph table (one row per micrograph: CTF and its fit statistics), when known
        self.exposures: pd.DataFrame | None = None
        self._exposure_values: pd.DataFrame | None = None
        #: thresholds on the micrograph statistics that drop whole micrographs with their picks
        self.exposure_thresholds = ExposureThresholds()
        self._stats_cache: tuple | None = None
        self._allowed_cache: tuple | None = None

    def set_interactive(self, on: bool = True) -> None:
        """The set is shown in a dock the user steps through: its thresholds view (and any view
        built later, rescored or promoted) sorts its features in the background at once."""
        self._inspection_options["interactive"] = bool(on)
        if self.inspection is not None:
            self.inspection.set_interactive(on)

    # ------------------------------------------------------------------ views
    @property
    def table(self) -> pd.DataFrame:
        return self.inspection.table if self.inspection is not None else self._table

    @property
    def codes(self) -> np.ndarray:
        return self.inspection.codes if self.inspection is not None else self._codes

    @property
    def names(self) -> np.ndarray:
        return self.inspection.names if self.inspection is not None else self._names

    def __len__(self) -> int:
        return len(self.table)

    @property
    def manual(self) -> np.ndarray:
        """Per row: 0 as read, 1 added, 2 moved by hand."""
        return np.asarray(self.table[MANUAL_COLUMN].cat.codes, dtype=np.int8)

    @property
    def thresholds(self) -> Thresholds | None:
        return None if self.inspection is None else self.inspection.thresholds

    def _count(self, mask: np.ndarray) -> np.ndarray:
        """Picks of ``mask`` per micrograph (the view's counter when it has one)."""
        if self.inspection is not None and len(self.inspection.evaluator.counter.totals) == len(self.names):
            return self.inspection.evaluator.counter.count(mask)
        return np.bincount(self.codes[np.asarray(mask, bool)], minlength=len(self.names)).astype(np.int64)

    def _edit_state(self):
        """(manual codes, any hand edit) of the current version, computed once per change."""
        if getattr(self, "_edit_cache", (None,))[0] != (self.version, len(self.table)):
            manual = self.manual
            self._edit_cache = ((self.version, len(self.table)), manual,
                                bool(np.any(manual > 0)) or bool(self.removed.any()))
        return self._edit_cache[1], self._edit_cache[2]

    def evaluate(self, thresholds: Thresholds | None = None) -> Selection:
        """Apply the thresholds (and the hand edits, and the exposure thresholds): what is kept
        now (no duplicate search)."""
        return self._drop_micrographs(self._evaluate_picks(thresholds))

    def _evaluate_picks(self, thresholds: Thresholds | None = None) -> Selection:
        n = len(self.table)
        manual, edited = self._edit_state()
        res = None
        if self.inspection is not None:
            res = self.inspection.evaluate(thresholds)
            by_thresholds = res.mask
            words = self.inspection.thresholds.describe()
        else:
            by_thresholds = np.ones(n, dtype=bool)
            words = "no scores"
        if not edited and res is not None:  # the common case: the thresholds' own counts
            return Selection(kept=by_thresholds, n_rows=n, n_removed_by_hand=0,
                             n_rejected_by_thresholds=int(n - res.n_kept),
                             kept_per_micrograph=res.kept_per_micrograph,
                             total_per_micrograph=res.total_per_micrograph, thresholds=words)
        forced = manual > 0
        kept = (by_thresholds | forced) & ~self.removed
        n_removed = int(np.count_nonzero(self.removed))
        return Selection(
            kept=kept,
            n_rows=n - n_removed,
            n_removed_by_hand=n_removed,
            n_rejected_by_thresholds=int(np.count_nonzero(~by_thresholds & ~forced & ~self.removed)),
            n_added_by_hand=int(np.count_nonzero((manual == 1) & ~self.removed)),
            n_moved_by_hand=int(np.count_nonzero((manual == 2) & ~self.removed)),
            kept_per_micrograph=self._count(kept),
            total_per_micrograph=self._count(~self.removed),
            thresholds=words,
        )

    # ------------------------------------------------------------------ exposures
    def set_exposures(self, table: pd.DataFrame | None) -> None:
        """The micrograph table (``io.exposures.read_exposures``, or a CTF table): its statistics
        join the picks' micrographs by matching key; its rows are what a micrograph subset holds."""
        self.exposures = table
        self._exposure_values = None if table is None or "micrograph" not in table.columns else exposure_values(table)
        self._stats_cache = None

    def set_exposure_thresholds(self, thresholds: ExposureThresholds) -> None:
        """Replace the exposure thresholds; a statistic the micrographs do not have is refused."""
        thresholds.check(self.source)
        have = set(self._static_statistics().columns) | {"kept_fraction"}
        missing = [k for k in thresholds.bounds if k not in have or k == "micrograph"]
        if missing:
            raise CryodiagInputError(f"no micrograph statistic {missing[0]!r} to threshold on (there are: "
                                     f"{', '.join(self.statistic_names())})", self.source)
        self.exposure_thresholds = thresholds

    def statistic_names(self) -> list[str]:
        """The per-micrograph statistics known for this set (:mod:`.exposures`)."""
        cols = [c for c in self._static_statistics().columns if c != "micrograph"]
        return cols + ["kept_fraction"]

    def _score_statistics(self) -> dict:
        insp = self.inspection
        out: dict = {}
        if insp is None:
            for c in ("ncc", "power"):
                if c in self.table.columns:
                    out[f"median_{c}"] = pd.to_numeric(self.table[c], errors="coerce").to_numpy(np.float64)
            return out
        axes = [(insp.x_feature, insp.x_raw, insp.x, insp.x_units)]
        if not insp.one_d:
            axes.append((insp.y_feature, insp.y_raw, insp.y, insp.y_units))
        for feature, raw, _shown, _units in axes:
            out[f"median_{feature}"] = raw
        for feature, _raw, shown, units in axes:
            if units != "raw":
                out[f"median_{feature}_calibrated"] = shown
        return out

    def _static_statistics(self) -> pd.DataFrame:
        """The statistics that do not depend on the pick thresholds (cached per change of rows,
        view and micrograph table)."""
        insp = self.inspection
        view = None if insp is None else (insp.x_feature, insp.y_feature, insp.x_units, insp.y_units,
                                          insp._rows_version, id(insp.x), id(insp.y))
        key = (self.version, len(self.table), id(insp), view, id(self.exposures))
        if self._stats_cache is not None and self._stats_cache[0] == key:
            return self._stats_cache[1]
        stats = micrograph_statistics(self.codes, self.names, active=~self.removed, scores=self._score_statistics(),
                                      exposures=self._exposure_values,
                                      picks_ctf=pick_ctf_values(self.table, self.codes, self.names))
        self._stats_cache = (key, stats)
        return stats

    def micrograph_statistics(self, selection: Selection | None = None) -> pd.DataFrame:
        """One row per micrograph (:func:`.exposures.micrograph_statistics`): the pick set's
        micrographs in code order, then those of the micrograph table without picks; with
        ``kept_fraction`` (of the pick thresholds), ``kept`` (picks kept in the end) and, when the
        exposure thresholds are set, ``keep`` and ``why`` (the reason a micrograph is dropped)."""
        sel = selection if selection is not None else self.evaluate()
        stats = self._static_statistics().copy()
        m, n = len(stats), len(self.names)
        before = sel.kept_before_drop_per_micrograph
        before = sel.kept_per_micrograph if before is None else before
        stats["kept_fraction"] = kept_fraction(before, sel.total_per_micrograph, m)
        stats["kept"] = np.concatenate([np.asarray(sel.kept_per_micrograph, np.int64), np.zeros(m - n, np.int64)])
        ex = sel.exposures
        if ex is not None and len(ex.keep) == m:
            stats["keep"] = ex.keep
            stats["why"] = ex.reasons
        return stats

    def _drop_micrographs(self, sel: Selection) -> Selection:
        """The exposure thresholds applied to a selection of picks: the picks of every dropped
        micrograph are left out (counted as dropped with their micrograph, not as rejected)."""
        if not self.exposure_thresholds.active:
            return sel
        stats = self._static_statistics()
        m, n = len(stats), len(self.names)
        cols = {"kept_fraction": kept_fraction(sel.kept_per_micrograph, sel.total_per_micrograph, m)}
        for k in self.exposure_thresholds.bounds:  # a statistic gone (calibration off): not judged
            if k not in stats.columns and k not in cols:
                cols[k] = np.full(m, np.nan)
        ex = self.exposure_thresholds.evaluate(stats, extra=cols)
        sel.exposures = ex
        sel.kept_before_drop_per_micrograph = sel.kept_per_micrograph
        keep = ex.keep[:n]
        if keep.all():
            return sel
        dropped = ~keep
        tot, before = sel.total_per_micrograph, sel.kept_per_micrograph
        sel.kept = sel.kept & self._allowed(keep)
        sel.n_dropped_with_micrograph = int(tot[dropped].sum())
        sel.n_rejected_by_thresholds = int((tot - before)[keep].sum())
        sel.kept_per_micrograph = np.where(keep, before, 0).astype(np.int64)
        return sel

    def _allowed(self, keep: np.ndarray) -> np.ndarray:
        """Per pick: its micrograph is kept (cached while the kept micrographs and rows stay)."""
        key = (len(self.codes), keep.tobytes())
        if self._allowed_cache is None or self._allowed_cache[0] != key:
            self._allowed_cache = (key, keep[self.codes])
        return self._allowed_cache[1]

    # ------------------------------------------------------------------ edits
    def _changed(self) -> None:
        self.version += 1

    def remove(self, rows) -> int:
        """Delete picks by hand (row numbers); returns how many were in the set."""
        rows = np.asarray(rows, dtype=np.intp)
        rows = rows[(rows >= 0) & (rows < len(self.table))]
        n = int(np.count_nonzero(~self.removed[rows]))
        self.removed[rows] = True
        if n:
            self._changed()
        return n

    def restore(self, rows) -> None:
        """Undo :meth:`remove` for these rows."""
        self.removed[np.asarray(rows, dtype=np.intp)] = False
        self._changed()

    def _micrograph_values(self, key: str) -> dict:
        """Per-micrograph values for a new pick on micrograph ``key``: what the other picks of
        that micrograph share (defocus, pixel size, CTF constants, micrograph name), and the
        particle's size (the median diameter and box of that micrograph's picks, else of the
        set's: a pick placed by hand is drawn and exported like the others)."""
        t = self.table
        out = {}
        if "micrograph" not in t.columns:
            return out
        on = np.flatnonzero(t["micrograph"].astype(str).to_numpy() == str(key))
        for col in ("diameter_px", "box_px"):
            if col in t.columns:
                size = _median_finite(t[col].iloc[on]) if on.size else np.nan
                if not np.isfinite(size):  # no size on this micrograph: the set's
                    size = _median_finite(t[col])
                if np.isfinite(size):
                    out[col] = size
        if not on.size:
            return out
        first = t.iloc[on[0]]
        for col in ("micrograph_name", "defocus_A", "defocus_u_A", "defocus_v_A", "defocus_angle_deg",
                    "pixel_size_A", "voltage_kV", "cs_mm", "amplitude_contrast", "micrograph_ny",
                    "micrograph_nx", "rlnOpticsGroup", "source_file", "micrograph_uid"):
            if col in t.columns:
                out[col] = first[col]
        if "defocus_A" in t.columns:
            out["defocus_A"] = float(np.nanmedian(t["defocus_A"].to_numpy(dtype=np.float64)[on]))
        return out

    def add(self, micrograph: str, x_px, y_px, *, values: dict | None = None, name: str | None = None) -> np.ndarray:
        """Add picks by hand on micrograph ``micrograph`` (its matching key) at ``x_px``, ``y_px``;
        ``values``: other columns for them (e.g. defocus from a CTF table, computed scores).
        Returns their row numbers."""
        x = np.atleast_1d(np.asarray(x_px, dtype=np.float64))
        y = np.atleast_1d(np.asarray(y_px, dtype=np.float64))
        if x.shape != y.shape:
            raise CryodiagInputError("added picks: x and y differ in length")
        base = self._micrograph_values(micrograph)
        if name is not None:
            base["micrograph_name"] = name
        base.update(values or {})
        t = self.table
        cols = {}
        for col in t.columns:
            if col in ("x_px", "y_px"):
                continue
            if col == "micrograph":
                cols[col] = [str(micrograph)] * len(x)
            elif col == MANUAL_COLUMN:
                cols[col] = ["added"] * len(x)
            elif col in base:
                v = base[col]
                cols[col] = list(v) if np.ndim(v) else [v] * len(x)
            elif col == "source_row":
                cols[col] = [-1] * len(x)
            elif pd.api.types.is_numeric_dtype(t[col].dtype) and not pd.api.types.is_bool_dtype(t[col].dtype):
                cols[col] = [np.nan] * len(x)
            else:
                cols[col] = [""] * len(x)  # a per-pick text (an image name) the new pick does not have
        for col, v in base.items():
            if col not in cols and col not in ("x_px", "y_px"):
                cols[col] = list(v) if np.ndim(v) else [v] * len(x)
        rows = pd.DataFrame(cols)
        rows["x_px"], rows["y_px"] = x, y
        for col in t.columns:  # keep the table's dtypes where the new values allow it
            if col in rows.columns and t[col].dtype.kind in "iu" and rows[col].isna().any():
                rows[col] = rows[col].astype("float64")
        rows = rows[[c for c in t.columns if c in rows.columns] + [c for c in rows.columns if c not in t.columns]]
        start = len(t)
        if self.inspection is not None:
            self.inspection.extend(rows)
        else:
            new = pd.concat([t, rows], ignore_index=True, sort=False)
            new.attrs = dict(t.attrs)
            self._table = new
            self._codes, self._names = micrograph_codes(new)
        tab = self.table
        tab[MANUAL_COLUMN] = pd.Categorical(tab[MANUAL_COLUMN].astype(str), categories=MANUAL_STATES)
        self.removed = np.concatenate([self.removed, np.zeros(len(x), dtype=bool)])
        self._changed()
        return np.arange(start, start + len(x))

    def extend(self, rows: pd.DataFrame) -> np.ndarray:
        """Append picks that were read, not placed by hand (a live session's new picks): they are
        ``"read"`` picks, kept or not by the current thresholds; their features are binned on the
        histogram's edges and calibrated with the fitted lines (no rebuild of the view). Columns
        the set lacks join it (NaN for the older rows). Returns their row numbers."""
        start = len(self.table)
        if rows is None or not len(rows):
            return np.zeros(0, dtype=np.int64)
        rows = rows.copy()
        rows.attrs = {}
        t = self.table
        # the set's categorical columns (micrograph names, source files) stay categorical: the new
        # values join their categories (pandas would otherwise turn 1e6 rows into strings to concatenate)
        for col in t.columns:
            if col in rows.columns and col != MANUAL_COLUMN and isinstance(t[col].dtype, pd.CategoricalDtype):
                vals = rows[col].astype(str)
                extra = pd.Index(pd.unique(vals)).difference(t[col].cat.categories.astype(str))
                if len(extra):
                    t[col] = t[col].cat.add_categories(extra)
                rows[col] = pd.Categorical(vals, categories=t[col].cat.categories)
        rows[MANUAL_COLUMN] = pd.Categorical.from_codes(np.zeros(len(rows), np.int8), categories=MANUAL_STATES)
        rows = rows[[c for c in t.columns if c in rows.columns] + [c for c in rows.columns if c not in t.columns]]
        if self.inspection is not None:
            self.inspection.extend(rows)
        else:
            new = pd.concat([t, rows], ignore_index=True, sort=False)
            new.attrs = dict(t.attrs)
            self._table = new
            self._codes, self._names = micrograph_codes(new)
        tab = self.table
        if not isinstance(tab[MANUAL_COLUMN].dtype, pd.CategoricalDtype):
            tab[MANUAL_COLUMN] = pd.Categorical(tab[MANUAL_COLUMN].astype(str), categories=MANUAL_STATES)
        self.removed = np.concatenate([self.removed, np.zeros(len(rows), dtype=bool)])
        self._changed()
        return np.arange(start, start + len(rows))

    def move(self, rows, x_px, y_px) -> None:
        """Picks moved by hand: new coordinates, marked ``moved`` (``added`` ones stay ``added``)."""
        rows = np.atleast_1d(np.asarray(rows, dtype=np.intp))
        t = self.table
        idx = t.index[rows]
        for col, v in (("x_px", x_px), ("y_px", y_px)):
            t.loc[idx, col] = np.atleast_1d(np.asarray(v, dtype=t[col].dtype))
        was = self.manual[rows]
        t.loc[idx[was == 0], MANUAL_COLUMN] = "moved"
        if self.inspection is not None:
            self.inspection.rows_changed()  # (coordinates may be an axis of the view)
        self._changed()

    def update_values(self, rows, columns: dict) -> None:
        """New values of some columns for ``rows`` (rescored picks); the view follows."""
        rows = np.asarray(rows, dtype=np.intp)
        if self.inspection is not None:
            self.inspection.update_values(rows, columns)
        else:
            for name, vals in columns.items():
                if name not in self._table.columns:
                    self._table[name] = np.nan
                self._table.loc[self._table.index[rows], name] = np.asarray(vals)
            if any(c in ("ncc", "power") for c in columns):
                self._promote()
        self._changed()

    def set_scores(self, scored: pd.DataFrame, columns=("ncc", "power")) -> None:
        """Scores computed for every row (the table ``compute.picks.jobs.score_picks`` returns for
        this set's table, row for row): the columns replace the old ones and the view is rebuilt."""
        if len(scored) != len(self.table):
            raise CryodiagInputError(f"scores for {len(scored)} picks, the set has {len(self.table)}", self.source)
        t = self.table
        for c in columns:
            if c in scored.columns:
                t[c] = scored[c].to_numpy()
        for k, v in scored.attrs.items():
            if k.startswith("cryodiag_"):
                t.attrs[k] = v
        if self.inspection is not None:
            opts = self._current_options()
            if "ncc" in t.columns and opts.get("x_feature") not in t.columns:
                opts.pop("x_feature", None)
            self.inspection = PickInspection(t, **opts)
        else:
            self._promote()
        self._changed()

    def _current_options(self) -> dict:
        insp = self.inspection
        opts = dict(self._inspection_options)
        opts.pop("thresholds", None)
        if insp is not None:
            opts.update(calibrate_x=insp._want_cal["x"], calibrate_y=insp._want_cal["y"], mode=insp.mode,
                        method=insp.method, scale=insp.scale, bins=insp.bins, defocus=insp.defocus)
        # new scores: the default axes (NCC x power once they exist)
        opts.pop("x_feature", None)
        opts.pop("y_feature", None)
        return opts

    def _promote(self) -> None:
        """A set without scores got some: build the thresholds view."""
        try:
            self.inspection = PickInspection(self._table, **self._inspection_options)
            self.no_scores = ""
        except CryodiagInputError:
            pass

    # ------------------------------------------------------------------ output
    def find_duplicates(self, distance_A: float, *, keep: str = "higher", score: str | None = None,
                        pixel_size_A: float | None = None, kept: np.ndarray | None = None) -> DuplicateResult:
        """Duplicates among the kept picks (``kept``: default, what :meth:`evaluate` keeps)."""
        if kept is None:
            kept = self.evaluate().kept
        score = score or (self.inspection.x_feature if self.inspection is not None else None)
        if keep == "higher" and (score is None or score not in self.table.columns):
            keep = "first"
        px = None if ("pixel_size_A" in self.table.columns and pixel_size_A is None) else pixel_size_A
        return find_duplicates(self.table, distance_A, score=score, keep=keep, pixel_size_A=px, mask=kept)

    def selection(self, *, kept: np.ndarray | None = None, dedupe_A: float | None = None,
                  dedupe_keep: str = "higher", dedupe_score: str | None = None,
                  pixel_size_A: float | None = None) -> Selection:
        """What a written selection holds: :meth:`evaluate` (or the given ``kept`` mask, e.g. what
        the viewer showed as kept), then duplicates removed among the kept picks when ``dedupe_A``
        is given."""
        sel = self.evaluate()
        if kept is not None:
            kept = np.asarray(kept, dtype=bool)
            if kept.shape != (len(self.table),):
                raise CryodiagInputError(f"kept mask of {kept.size} rows for {len(self.table)} picks", self.source)
            sel.kept = kept & ~self.removed
            on = ~self.removed
            if sel.n_dropped_with_micrograph:  # a dropped micrograph's picks stay out
                allowed = self._allowed(sel.exposures.keep[:len(self.names)])
                sel.kept &= allowed
                on = on & allowed
            sel.n_rejected_by_thresholds = int(np.count_nonzero(~sel.kept & on))
            sel.kept_per_micrograph = self._count(sel.kept)
        if dedupe_A:
            dup = self.find_duplicates(dedupe_A, keep=dedupe_keep, score=dedupe_score,
                                       pixel_size_A=pixel_size_A, kept=sel.kept)
            sel.n_duplicates = int(np.count_nonzero(sel.kept & ~dup.keep))
            sel.kept = dup.keep & sel.kept
            sel.duplicates = dup.to_dict()
            sel.kept_per_micrograph = self._count(sel.kept)
        return sel

    def rows(self, which: str, selection: Selection | None = None) -> pd.DataFrame:
        """The picks ``which`` = ``"kept"`` or ``"rejected"`` (left out, not deleted by hand) as a
        table, with the calibrated scores as extra columns when the view is calibrated."""
        sel = selection if selection is not None else self.evaluate()
        m = sel.kept if which == "kept" else (~sel.kept & ~self.removed)
        t = self.table
        out = t.loc[m].copy()
        if MANUAL_COLUMN in out.columns and not (self.manual[m] > 0).any():
            out = out.drop(columns=MANUAL_COLUMN)  # no hand edits: the file as it would be without them
        insp = self.inspection
        if insp is not None:
            if insp.x_units != "raw":
                out[f"{insp.x_feature}_calibrated"] = insp.x[m]
            if not insp.one_d and insp.y_units != "raw" and insp.y_feature != insp.x_feature:
                out[f"{insp.y_feature}_calibrated"] = insp.y[m]
        out = out.reset_index(drop=True)
        out.attrs = dict(t.attrs)
        return out

    # ------------------------------------------------------------------ sessions
    def row_keys(self, rows) -> list:
        """Stable keys of rows across sessions: ``[source_file, source_row]`` for picks read from
        files, ``None`` for picks added by hand."""
        t = self.table
        rows = np.asarray(rows, dtype=np.intp)
        src = t["source_file"].astype(str).to_numpy()[rows] if "source_file" in t.columns else \
            np.full(len(rows), str(self.source or ""), dtype=object)
        sr = t["source_row"].to_numpy()[rows] if "source_row" in t.columns else rows
        man = self.manual[rows]
        return [None if man[i] == 1 else [str(src[i]), int(sr[i])] for i in range(len(rows))]

    def edits(self) -> dict:
        """The hand edits as data (for a saved session): deleted, moved and added picks."""
        t = self.table
        man = self.manual
        removed = np.flatnonzero(self.removed & (man != 1))
        moved = np.flatnonzero((man == 2) & ~self.removed)
        added = np.flatnonzero((man == 1) & ~self.removed)
        mic = t["micrograph"].astype(str).to_numpy() if "micrograph" in t.columns else np.full(len(t), "")
        x, y = t["x_px"].to_numpy(dtype=float), t["y_px"].to_numpy(dtype=float)
        return {
            "removed": self.row_keys(removed),
            "moved": [{"row": k, "x_px": float(x[r]), "y_px": float(y[r])} for k, r in zip(self.row_keys(moved), moved)],
            "added": [{"micrograph": str(mic[r]), "x_px": float(x[r]), "y_px": float(y[r])} for r in added],
        }

    def apply_edits(self, edits: dict) -> dict:
        """Replay :meth:`edits` on a freshly read set; returns counts of what applied and what did
        not (rows that are no longer in the files)."""
        t = self.table
        src = t["source_file"].astype(str).to_numpy() if "source_file" in t.columns else \
            np.full(len(t), str(self.source or ""), dtype=object)
        sr = t["source_row"].to_numpy() if "source_row" in t.columns else np.arange(len(t))
        index = {(str(a), int(b)): i for i, (a, b) in enumerate(zip(src, sr))}
        missing = 0

        def find(key):
            nonlocal missing
            if key is None:
                return None
            i = index.get((str(key[0]), int(key[1])))
            if i is None:
                missing += 1
            return i

        rem = [i for i in (find(k) for k in edits.get("removed", [])) if i is not None]
        self.remove(rem)
        n_moved = 0
        for m in edits.get("moved", []):
            i = find(m.get("row"))
            if i is not None:
                self.move([i], [m["x_px"]], [m["y_px"]])
                n_moved += 1
        added = edits.get("added", [])
        by_mic: dict[str, list] = {}
        for a in added:
            by_mic.setdefault(str(a["micrograph"]), []).append((float(a["x_px"]), float(a["y_px"])))
        for mic, pts in by_mic.items():
            xs, ys = zip(*pts)
            self.add(mic, xs, ys)
        return {"removed": len(rem), "moved": n_moved, "added": len(added), "not_found": missing}
