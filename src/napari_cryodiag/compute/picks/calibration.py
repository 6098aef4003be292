"""Calibration of pick scores against defocus ("Calibrate Pick/Power Score to CTF").

Per micrograph, the median of a score (NaN scores ignored) is plotted against the
micrograph's defocus; a robust line ``median ≈ intercept + slope * defocus_A`` is fitted over
the micrographs, and each pick's score becomes relative to the line at its micrograph's
defocus:

- ``mode="ratio"`` (default): ``calibrated = score / line(defocus)`` (1 = a typical pick of its
  micrograph); micrographs where the line is not positive get NaN (a ratio would flip sign);
- ``mode="difference"``: ``calibrated = score - line(defocus)`` (0 = typical).

Fits (``method``), over the per-micrograph medians, one point per micrograph:

- ``"theil-sen"`` (default): :func:`scipy.stats.theilslopes`, the median of pairwise slopes,
  intercept ``median(y) - slope * median(x)``; robust to up to ~29 % outlying micrographs;
- ``"huber"``: :func:`scipy.optimize.least_squares` with ``loss="huber"``, ``f_scale`` =
  1.4826 x the median absolute residual of the least-squares line;
- ``"siegel"``: :func:`scipy.stats.siegelslopes` (repeated medians, 50 % breakdown);
- ``"ols"``: ordinary least squares (not robust; for comparison).

``scale="log"`` fits the line to ``log(median)`` instead (a multiplicative trend, natural for
the power score, whose value goes with the square of the contrast); the reference
``exp(intercept + slope * defocus)`` is then always positive, so ratios never flip sign. It
needs positive medians. ``slope``/``intercept`` are then in log units.

NaN scores are ignored in the medians and stay NaN after calibration; picks whose micrograph
has no defocus get NaN. Without any defocus the calibration raises a
:class:`~napari_cryodiag.errors.CryodiagInputError` "<file>: calibration disabled: no defocus
(...)", which the widget shows as a message and the CLI prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError

METHODS = ("theil-sen", "huber", "siegel", "ols")
MODES = ("ratio", "difference")

__all__ = ["Calibration", "fit_calibration", "per_micrograph_medians", "robust_line", "METHODS", "MODES"]


def robust_line(x, y, method: str = "theil-sen") -> tuple[float, float]:
    """``(slope, intercept)`` of ``y ≈ intercept + slope * x`` with the named robust fit."""
    from scipy import optimize, stats

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError("a line needs at least two points at different x")
    if method == "theil-sen":
        if x.size > PAIRWISE_MAX_POINTS:  # scipy builds all N^2 pairs at once (8 GB at 33,000 micrographs)
            slope = _theil_sen_slope(x, y)
            return slope, float(np.median(y) - slope * np.median(x))
        res = stats.theilslopes(y, x)
        return float(res[0]), float(res[1])
    if method == "siegel":
        if x.size > PAIRWISE_MAX_POINTS:
            slope = _siegel_slope(x, y)
            return slope, float(np.median(y - slope * x))
        res = stats.siegelslopes(y, x)
        return float(res[0]), float(res[1])
    # least squares, centred for conditioning
    xm = x.mean()
    slope, icpt = np.polyfit(x - xm, y, 1)
    if method == "ols":
        return float(slope), float(icpt - slope * xm)
    if method == "huber":
        resid = y - (icpt + slope * (x - xm))
        scale = 1.4826 * np.median(np.abs(resid - np.median(resid)))
        if not scale > 0:
            scale = max(1e-12, float(np.std(resid)) or 1e-12)
        sol = optimize.least_squares(
            lambda p: p[1] + p[0] * (x - xm) - y, x0=[slope, icpt], loss="huber", f_scale=scale
        )
        s, c = sol.x
        return float(s), float(c - s * xm)
    raise ValueError(f"unknown fit method {method!r}; choose one of {', '.join(METHODS)}")


#: above this many points the pairwise fits (Theil-Sen, Siegel) run in blocks of pairs (same
#: numbers as scipy's, memory of one block instead of all N^2 pairs)
PAIRWISE_MAX_POINTS = 1500
_BLOCK_PAIRS = 4_000_000


def _pair_blocks(x, y, block_pairs: int | None = None):
    """The points sorted by x and the row ranges of blocks of about ``block_pairs`` pairs (default
    :data:`_BLOCK_PAIRS`, read when called): ``[(xs, ys, i0, i1), ...]`` for :func:`_block_slopes`."""
    block_pairs = _BLOCK_PAIRS if block_pairs is None else int(block_pairs)
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    n = len(xs)
    rows = max(1, block_pairs // n)
    return [(xs, ys, i0, min(n, i0 + rows)) for i0 in range(0, n, rows)]


def _block_slopes(xs, ys, i0, i1) -> np.ndarray:
    """The slopes of the pairs of rows ``i0:i1`` with every point at a larger x (as scipy's
    theilslopes takes them: pairs at the same x left out)."""
    dx = xs[None, :] - xs[i0:i1, None]
    dy = ys[None, :] - ys[i0:i1, None]
    keep = dx > 0
    return dy[keep] / dx[keep]


def _map_blocks(fn, blocks) -> list:
    """``fn`` of every block, in the blocks' order, two blocks at a time in threads (NumPy's
    arithmetic releases the GIL: about half the time of one thread on two cores). At most one
    block more than the workers is waiting, so that a few blocks' slopes are in memory at once."""
    from concurrent.futures import ThreadPoolExecutor

    workers = min(2, os.cpu_count() or 1)
    if workers == 1:
        return [fn(b) for b in blocks]
    out, pending = [], []
    with ThreadPoolExecutor(workers, thread_name_prefix="cryodiag-pairs") as pool:
        for b in blocks:
            pending.append(pool.submit(fn, b))
            if len(pending) > workers:
                out.append(pending.pop(0).result())
        out.extend(f.result() for f in pending)
    return out


def _theil_sen_slope(x, y) -> float:
    """Median of the pairwise slopes, exactly (two middle values averaged), in two passes over
    blocks of pairs: a sample of pairs brackets the median, then the pairs inside the bracket are
    kept and the pairs below it counted."""
    n = len(x)
    rng = np.random.default_rng(0)
    m = 1_000_000
    i, j = rng.integers(0, n, m), rng.integers(0, n, m)
    dx = x[j] - x[i]
    ok = dx != 0
    sample = np.sort((y[j] - y[i])[ok] / dx[ok])
    _, ties = np.unique(x, return_counts=True)
    total = n * (n - 1) // 2 - int((ties * (ties - 1) // 2).sum())  # pairs at different x
    k_lo, k_hi = (total - 1) // 2, total // 2  # ranks (0-based) of the middle values
    for width in (0.01, 0.05, 0.5):
        lo = sample[max(0, int((0.5 - width) * len(sample)))] if width < 0.5 else -np.inf
        hi = sample[min(len(sample) - 1, int((0.5 + width) * len(sample)))] if width < 0.5 else np.inf

        def judge(block, lo=lo, hi=hi):
            s = _block_slopes(*block)
            return int(np.count_nonzero(s < lo)), s[(s >= lo) & (s <= hi)]

        parts = _map_blocks(judge, _pair_blocks(x, y))
        below = sum(p[0] for p in parts)
        inside = np.sort(np.concatenate([p[1] for p in parts]))
        if below <= k_lo and k_hi < below + len(inside):
            return float((inside[k_lo - below] + inside[k_hi - below]) / 2)
    raise AssertionError("unreachable: the last bracket holds every slope")  # pragma: no cover


def _siegel_slope(x, y, block_pairs: int | None = None) -> float:
    """Repeated medians (scipy's siegelslopes): the median over points of the median slope to
    every other point (pairs at the same x left out), one block of points at a time."""
    block_pairs = _BLOCK_PAIRS if block_pairs is None else int(block_pairs)
    n = len(x)
    rows = max(1, block_pairs // n)
    med = np.empty(n)
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        dx = x[None, :] - x[i0:i1, None]
        dy = y[None, :] - y[i0:i1, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            sl = np.where(dx != 0, dy / np.where(dx != 0, dx, 1.0), np.nan)
        med[i0:i1] = np.nanmedian(sl, axis=1)
    return float(np.nanmedian(med))


def _source_name(table: pd.DataFrame, source=None) -> str:
    if source is not None:
        return str(source)
    return str(getattr(table, "attrs", {}).get("source", "the pick table"))


def _codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer code per row and the distinct micrograph keys (as text), without turning every
    row into a string (1e7 rows: categorical codes as they are, else one factorisation)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy(), pd.Index(col.cat.categories.astype(str))
    codes, uniq = pd.factorize(col.to_numpy(dtype=object), sort=False)
    return codes, pd.Index(pd.Index(uniq).astype(str))


def _per_row(col: pd.Series, per: pd.Series) -> np.ndarray:
    """``per`` (indexed by micrograph key) looked up for every row of ``col`` (NaN when absent)."""
    codes, cats = _codes(col)
    vals = np.append(per.reindex(cats).to_numpy(dtype=np.float64), np.nan)
    return vals[np.where(codes < 0, len(cats), codes)]


def _group_by_key(values: pd.Series, col: pd.Series):
    """``values`` grouped by micrograph key (the groups' index is the key as text)."""
    codes, cats = _codes(col)
    keys = pd.Categorical.from_codes(np.where(codes < 0, -1, codes), categories=cats)
    return values.groupby(keys, observed=True)


def _defocus_per_micrograph(table, defocus, micrograph_column, defocus_column, source) -> pd.Series:
    """Defocus (Å) per micrograph key, from a mapping/Series/DataFrame or the table's column."""
    src = _source_name(table, source)
    if micrograph_column not in table.columns:
        raise CryodiagInputError(
            f"calibration disabled: the picks have no '{micrograph_column}' column to group them by micrograph",
            src,
        )
    if defocus is None:
        if defocus_column not in table.columns:
            raise CryodiagInputError(
                f"calibration disabled: no defocus (no '{defocus_column}' column and no CTF table given)",
                src,
            )
        d = pd.to_numeric(table[defocus_column], errors="coerce")
        per = _group_by_key(d, table[micrograph_column]).median()
        per.index = pd.Index(per.index.astype(str))
    elif isinstance(defocus, pd.DataFrame):
        if micrograph_column not in defocus.columns or defocus_column not in defocus.columns:
            csrc = defocus.attrs.get("source", "the CTF table")
            raise CryodiagInputError(
                f"calibration disabled: no defocus (needs '{micrograph_column}' and '{defocus_column}' columns)",
                csrc,
            )
        per = pd.to_numeric(defocus[defocus_column], errors="coerce").groupby(
            defocus[micrograph_column].astype(str)
        ).median()
    else:
        per = pd.Series(defocus, dtype=np.float64)
        per.index = per.index.astype(str)
    per = per[np.isfinite(per.to_numpy(dtype=np.float64))]
    if per.empty:
        raise CryodiagInputError("calibration disabled: no defocus (all values missing)", src)
    return per.astype(np.float64)


def per_micrograph_medians(
    table: pd.DataFrame,
    score: str,
    *,
    defocus=None,
    micrograph_column: str = "micrograph",
    defocus_column: str = "defocus_A",
    source=None,
) -> pd.DataFrame:
    """Per-micrograph ``defocus_A``, ``n_picks``, ``n_scored`` and ``median`` of ``score`` (NaN ignored).

    Sorted by micrograph key. ``defocus_A`` is NaN for micrographs without defocus.
    """
    src = _source_name(table, source)
    if score not in table.columns:
        raise CryodiagInputError(f"no '{score}' score column in the picks", src)
    if micrograph_column not in table.columns:
        raise CryodiagInputError(f"no '{micrograph_column}' column: cannot group picks by micrograph", src)
    per_df = _defocus_per_micrograph(table, defocus, micrograph_column, defocus_column, source)
    vals = pd.to_numeric(table[score], errors="coerce").astype(np.float64)
    vals = vals.where(np.isfinite(vals.to_numpy()))
    g = _group_by_key(vals, table[micrograph_column])
    out = pd.DataFrame(
        {"n_picks": g.size(), "n_scored": g.count(), "median": g.median()}
    )
    out.index = pd.Index(out.index.astype(str), name="micrograph")
    out["defocus_A"] = per_df.reindex(out.index).to_numpy()
    out = out.reset_index()[["micrograph", "defocus_A", "n_picks", "n_scored", "median"]]
    return out.sort_values("micrograph", kind="stable").reset_index(drop=True)


@dataclass
class Calibration:
    """A fitted score-vs-defocus line and how to apply it.

    ``per_micrograph`` has columns ``micrograph, defocus_A, n_picks, n_scored, median,
    line, median_calibrated`` (the last two filled after the fit). ``residual_slope`` is the
    same robust fit over the calibrated medians (≈ 0 when the trend is removed).
    """

    score: str
    slope: float  #: score units per Å of defocus
    intercept: float  #: score units at defocus 0
    method: str
    mode: str
    per_micrograph: pd.DataFrame
    scale: str = "linear"
    residual_slope: float = float("nan")
    residual_intercept: float = float("nan")
    micrograph_column: str = "micrograph"
    defocus_column: str = "defocus_A"
    source: str | None = None
    warnings: list[str] = field(default_factory=list)
    _defocus: pd.Series | None = field(default=None, repr=False)

    def line(self, defocus_A) -> np.ndarray:
        """The fitted median score at ``defocus_A`` (the reference a score is taken relative to)."""
        v = self.intercept + self.slope * np.asarray(defocus_A, dtype=np.float64)
        return np.exp(v) if self.scale == "log" else v

    def calibrate_values(self, values, defocus_A) -> np.ndarray:
        """Calibrated scores for raw ``values`` at per-value ``defocus_A`` (NaN stays NaN)."""
        v = np.asarray(values, dtype=np.float64)
        ref = self.line(defocus_A)
        if self.mode == "ratio":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(ref > 0, v / np.where(ref > 0, ref, 1.0), np.nan)
        return v - ref

    def defocus_of(self, table: pd.DataFrame) -> np.ndarray:
        """Each row's micrograph defocus (Å), as used by the fit (NaN when unknown)."""
        col = table[self.micrograph_column]
        if self._defocus is not None:
            return _per_row(col, self._defocus)
        per = self.per_micrograph.set_index("micrograph")["defocus_A"]
        return _per_row(col, per)

    def apply(self, table: pd.DataFrame, column: str | None = None, *, defocus=None) -> pd.Series:
        """Calibrated values of ``column`` (default: the fitted score) for every row of ``table``.

        Returns a float Series aligned with ``table.index``, named ``<column>_calibrated``.
        ``defocus`` (mapping micrograph -> Å, or a CTF table) overrides the fit's defocus lookup.
        """
        col = column or self.score
        if col not in table.columns:
            raise CryodiagInputError(f"no '{col}' column to calibrate", _source_name(table))
        if defocus is not None:
            per = _defocus_per_micrograph(table, defocus, self.micrograph_column, self.defocus_column, None)
            df = _per_row(table[self.micrograph_column], per)
        else:
            df = self.defocus_of(table)
            if np.isnan(df).any() and self.defocus_column in table.columns:
                # micrographs unknown to the fit: their own defocus from the table
                own = _group_by_key(pd.to_numeric(table[self.defocus_column], errors="coerce"),
                                    table[self.micrograph_column]).transform("median").to_numpy(dtype=np.float64)
                df = np.where(np.isnan(df), own, df)
        vals = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=np.float64)
        return pd.Series(self.calibrate_values(vals, df), index=table.index, name=f"{col}_calibrated")

    def to_dict(self) -> dict:
        """Plain numbers for JSON: fit, mode, method, per-micrograph table."""
        return {
            "score": self.score,
            "slope_per_A": self.slope,
            "intercept": self.intercept,
            "method": self.method,
            "mode": self.mode,
            "scale": self.scale,
            "residual_slope_per_A": self.residual_slope,
            "n_micrographs_fitted": int(np.isfinite(self.per_micrograph["median"]).sum()
                                        if len(self.per_micrograph) else 0),
            "warnings": list(self.warnings),
            "per_micrograph": self.per_micrograph.to_dict(orient="list"),
        }


def fit_calibration(
    table: pd.DataFrame,
    score: str = "ncc",
    *,
    defocus=None,
    method: str = "theil-sen",
    mode: str = "ratio",
    micrograph_column: str = "micrograph",
    defocus_column: str = "defocus_A",
    min_picks: int = 1,
    scale: str = "linear",
    source=None,
) -> Calibration:
    """Fit the calibration line of ``score`` against defocus over the micrographs of ``table``.

    Parameters
    ----------
    table
        Canonical pick table (``micrograph`` key column, the score column, and ``defocus_A``
        unless ``defocus`` is given).
    score
        Column to calibrate (``ncc``, ``power``, ``rlnAutopickFigureOfMerit``, ...).
    defocus
        Defocus per micrograph: a mapping/Series ``micrograph key -> Å``, or a CTF table with
        ``micrograph`` and ``defocus_A`` columns (e.g. ``io.picks.read_table`` of RELION's
        ``micrographs_ctf.star``). Default: the table's ``defocus_A`` column.
    method, mode
        See the module docstring.
    min_picks
        Micrographs with fewer scored picks are left out of the fit (still calibrated).
    scale
        ``"linear"`` (default): a line through the medians; ``"log"``: a line through their
        logarithms (multiplicative trend; positive medians only).
    """
    if scale not in ("linear", "log"):
        raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")
    if method not in METHODS:
        raise ValueError(f"unknown fit method {method!r}; choose one of {', '.join(METHODS)}")
    if mode not in MODES:
        raise ValueError(f"unknown calibration mode {mode!r}; choose 'ratio' or 'difference'")
    src = _source_name(table, source)
    per_df = _defocus_per_micrograph(table, defocus, micrograph_column, defocus_column, source)
    per = per_micrograph_medians(
        table, score, defocus=per_df, micrograph_column=micrograph_column, source=source
    )
    warnings = []
    use = per["defocus_A"].notna() & per["median"].notna() & (per["n_scored"] >= min_picks)
    n_missing_df = int(per["defocus_A"].isna().sum())
    if n_missing_df:
        warnings.append(f"{n_missing_df} micrographs have no defocus; their picks are not calibrated (NaN)")
    if use.sum() < 2 or np.ptp(per.loc[use, "defocus_A"].to_numpy()) == 0:
        raise CryodiagInputError(
            f"calibration disabled: needs scored picks on at least two micrographs of different "
            f"defocus in {src} (found {int(use.sum())})",
            src,
        )
    yfit = per.loc[use, "median"].to_numpy(dtype=np.float64)
    if scale == "log":
        if np.any(yfit <= 0):
            raise CryodiagInputError(
                f"calibration on a log scale needs positive medians of '{score}' (use scale='linear') in {src}", src
            )
        yfit = np.log(yfit)
    slope, intercept = robust_line(per.loc[use, "defocus_A"].to_numpy(dtype=np.float64), yfit, method)
    cal = Calibration(
        score=score, slope=slope, intercept=intercept, method=method, mode=mode, scale=scale,
        per_micrograph=per, micrograph_column=micrograph_column, defocus_column=defocus_column,
        source=src, warnings=warnings, _defocus=per_df,
    )
    line = cal.line(per["defocus_A"].to_numpy())
    if mode == "ratio" and np.any(line[use.to_numpy()] <= 0):
        warnings.append(
            "the calibration line is not positive at some micrographs' defocus; their ratio-calibrated "
            "scores are NaN (use mode='difference')"
        )
    per["line"] = line
    # calibrated medians: median over picks of the calibrated score (equals the calibrated
    # median for a monotone per-micrograph transform, which both modes are)
    per["median_calibrated"] = cal.calibrate_values(per["median"].to_numpy(), per["defocus_A"].to_numpy())
    ok2 = use & np.isfinite(per["median_calibrated"])
    if ok2.sum() >= 2:
        cal.residual_slope, cal.residual_intercept = robust_line(
            per.loc[ok2, "defocus_A"], per.loc[ok2, "median_calibrated"], method
        )
    return cal
