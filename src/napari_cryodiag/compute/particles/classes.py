"""Class diagnostics: posterior ESS, best-class probability and ESS histograms, per-class statistics.

Definitions (REFERENCE.md "Classes"):

- ESS of a posterior ``p`` over ``K`` classes is ``1 / sum_k p_k^2``: 1 for a one-hot
  posterior, ``K`` for a uniform one. It needs the full posterior vectors, which cryoSPARC keeps
  only in ``alignments3D_multi/class_posterior`` ``(N, K)``.
- cryoSPARC 2D classification stores per particle the best-class posterior
  (``alignments2D/class_posterior`` -> ``class_posterior``) and the class ESS (``class_ess``).
- RELION stores ``rlnMaxValueProbDistribution`` (the largest posterior over all *orientations,
  shifts and classes* of the particle) and ``rlnNrOfSignificantSamples`` (how many such samples
  carry most of the probability). They are RELION's *analogues*, not the same quantities, and are
  labelled as such everywhere (:class:`PosteriorColumns`).

Histograms use fixed, documented edges (:func:`probability_edges`, :func:`ess_edges`) and
``numpy.histogram`` chunk by chunk (:func:`histogram_counts`), counting NaN and out-of-range
values apart. Per-class statistics (:func:`class_statistics`) are computed in O(N) with one
stable radix sort of 16-bit class codes, so 1e7 particles and hundreds of classes take about a
second (a per-class mask loop is O(N K)).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError

__all__ = [
    "ess_from_posteriors",
    "best_from_posteriors",
    "PosteriorColumns",
    "posterior_columns",
    "Histogram",
    "histogram_counts",
    "probability_edges",
    "ess_edges",
    "posterior_histograms",
    "class_statistics",
    "class_base",
    "average_index_of_class",
    "summarise_classes",
    "check_class_labels",
    "check_posterior_values",
    "sort_summary",
    "SORT_KEYS",
]

RELION_BEST_COLUMN = "rlnMaxValueProbDistribution"
RELION_ESS_COLUMN = "rlnNrOfSignificantSamples"


# --------------------------------------------------------------------------- posteriors
def ess_from_posteriors(posteriors, *, normalize: bool = True) -> np.ndarray:
    """ESS ``1 / sum_k p_k^2`` of each row of an ``(N, K)`` posterior array (float64).

    ``normalize=True`` applies it to the row normalised to sum 1 (stored posteriors may not sum
    exactly to 1), computed without a normalised copy as ``(sum p)^2 / sum p^2``. Rows that sum
    to 0 or contain NaN give NaN. Sums are accumulated in float64 whatever the input dtype.
    """
    p = np.asarray(posteriors)
    if p.dtype.kind not in "f":
        p = p.astype(np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2:
        raise ValueError(f"posteriors must be (N, K), got shape {p.shape}")
    sq = np.einsum("ij,ij->i", p, p, dtype=np.float64)
    num = np.square(p.sum(axis=1, dtype=np.float64)) if normalize else np.ones(len(p))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sq > 0, num / np.where(sq > 0, sq, 1.0), np.nan)


def best_from_posteriors(posteriors, *, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(best class column index, best-class probability)`` of each row of ``(N, K)`` posteriors."""
    p = np.asarray(posteriors, dtype=np.float64)
    if normalize:
        s = p.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(s > 0, p / np.where(s > 0, s, 1.0), np.nan)
    idx = np.argmax(np.nan_to_num(p, nan=-1.0), axis=1)
    return idx, p[np.arange(len(p)), idx]


@dataclass
class PosteriorColumns:
    """Per-particle best-class probability and ESS (or their RELION analogues), with labels."""

    best_prob: np.ndarray | None
    ess: np.ndarray | None
    source: str  # "full posteriors", "cryosparc", "relion", "none"
    best_label: str
    ess_label: str
    n_classes: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ess_is_integer(self) -> bool:
        return self.source == "relion"


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    """``"7.5 (row 3; 2 rows in all)"`` for the first row where ``bad`` holds (rows counted from 1)."""
    i = int(np.flatnonzero(bad)[0])
    n = int(bad.sum())
    return f"{values[i]:g} (row {i + 1}" + (f"; {n} rows in all)" if n > 1 else ")")


def check_class_labels(table: pd.DataFrame, n_averages: int | None = None) -> list[str]:
    """Refuse class numbers that no classification writes; return warnings for the usable rest.

    Class numbers are whole numbers from the first class on (RELION counts from 1, cryoSPARC
    from 0): a fraction (2.5) or a number below 0 (-3) is a damaged or mislabelled column, and
    is refused naming the value and the row (:class:`CryodiagInputError`) rather than read as a
    class of its own. Rows without a class are dropped with a warning.
    """
    if "class" not in table:
        return []
    source = table.attrs.get("source")
    c = pd.to_numeric(table["class"], errors="coerce").to_numpy(np.float64)
    raw = table["class"].to_numpy()
    notes = []
    missing = np.isnan(c)
    unreadable = missing & ~pd.isna(raw)
    if unreadable.any():
        i = int(np.flatnonzero(unreadable)[0])
        raise CryodiagInputError(f"class column holds {raw[i]!r} (row {i + 1}), not a class number", source)
    ok = ~missing
    frac = ok & (c != np.round(c))
    if frac.any():
        raise CryodiagInputError(f"class numbers must be whole numbers; the class column holds {_first_bad(c, frac)}",
                                 source)
    neg = ok & (c < 0)
    if neg.any():
        raise CryodiagInputError(
            f"class numbers start at 1 (RELION) or 0 (cryoSPARC); the class column holds {_first_bad(c, neg)}", source
        )
    if missing.any():
        notes.append(f"{int(missing.sum())} of {len(c)} particles have no class number; they are left out")
    return notes


def check_posterior_values(cols: "PosteriorColumns", n_classes: int | None, source=None) -> None:
    """Refuse best-class probabilities outside [0, 1] and class ESS below 1 (or above the number
    of classes, for cryoSPARC's ESS): such values are not posteriors, and plotting them would
    give empty or misleading histograms."""
    if cols.best_prob is not None:
        p = cols.best_prob
        bad = np.isfinite(p) & ((p < 0) | (p > 1 + 1e-6))
        if bad.any():
            raise CryodiagInputError(
                f"{cols.best_label}: a probability must lie in [0, 1], the table holds {_first_bad(p, bad)}", source
            )
    if cols.ess is not None:
        e = cols.ess
        bad = np.isfinite(e) & (e < 1 - 1e-6)
        if bad.any():
            raise CryodiagInputError(f"{cols.ess_label}: values start at 1, the table holds {_first_bad(e, bad)}",
                                     source)
        if cols.source in ("cryosparc", "full posteriors") and n_classes:
            bad = np.isfinite(e) & (e > n_classes * (1 + 1e-6))
            if bad.any():
                raise CryodiagInputError(
                    f"{cols.ess_label}: an ESS over {n_classes} classes is at most {n_classes}, the table holds "
                    f"{_first_bad(e, bad)}", source,
                )


def posterior_columns(
    table: pd.DataFrame, posteriors: np.ndarray | None = None, n_classes: int | None = None
) -> PosteriorColumns:
    """Pick the best-class probability and ESS of a particle table.

    Priority: full ``(N, K)`` ``posteriors`` (ESS computed as ``1/sum p^2``) > cryoSPARC
    ``class_posterior``/``class_ess`` > RELION ``rlnMaxValueProbDistribution``/
    ``rlnNrOfSignificantSamples`` (also when a STAR reader stored the former as ``class_posterior``).
    Values that are no posteriors (a probability of 7.5, an ESS below 1) are refused naming the
    column, value and row (:func:`check_posterior_values`).
    """
    cols = _posterior_columns(table, posteriors, n_classes)
    k = cols.n_classes
    if "class" in table and len(table):  # the classes the particles are in count too
        k = max(k or 0, int(pd.unique(table["class"].dropna()).size))
    check_posterior_values(cols, k, table.attrs.get("source"))
    return cols


def _posterior_columns(table, posteriors, n_classes) -> PosteriorColumns:
    fmt = str(table.attrs.get("format", "")).lower()
    k = n_classes
    if k is None and "class" in table and len(table):
        k = int(pd.unique(table["class"].dropna()).size)
    if posteriors is not None:
        post = np.asarray(posteriors, dtype=np.float64)
        if post.shape[0] != len(table):
            raise CryodiagInputError(
                f"full posteriors have {post.shape[0]} rows but the table has {len(table)}",
                table.attrs.get("source"),
            )
        _, best = best_from_posteriors(post)
        return PosteriorColumns(
            best_prob=best,
            ess=ess_from_posteriors(post),
            source="full posteriors",
            best_label="best-class probability (from full posteriors)",
            ess_label="class ESS = 1/Σp² (from full posteriors)",
            n_classes=post.shape[1],
        )
    # a STAR reader may store rlnMaxValueProbDistribution as class_posterior; a STAR that
    # carries class_ess (written from cryoSPARC data) holds cryoSPARC's quantities
    relion = (RELION_BEST_COLUMN in table or RELION_ESS_COLUMN in table
              or (fmt == "star" and "class_ess" not in table))
    if relion:
        best_col = RELION_BEST_COLUMN if RELION_BEST_COLUMN in table else (
            "class_posterior" if "class_posterior" in table else None)
        ess_col = RELION_ESS_COLUMN if RELION_ESS_COLUMN in table else None
        notes = ["RELION analogues: rlnMaxValueProbDistribution is the largest posterior over "
                 "orientations, shifts and classes; rlnNrOfSignificantSamples counts the samples "
                 "(orientations x classes) that carry most of the probability"]
        return PosteriorColumns(
            best_prob=None if best_col is None else table[best_col].to_numpy(dtype=np.float64),
            ess=None if ess_col is None else table[ess_col].to_numpy(dtype=np.float64),
            source="relion",
            best_label="RELION rlnMaxValueProbDistribution (analogue of best-class probability)",
            ess_label="RELION rlnNrOfSignificantSamples (analogue of class ESS)",
            n_classes=k,
            notes=notes,
        )
    if "class_posterior" in table or "class_ess" in table:
        return PosteriorColumns(
            best_prob=table["class_posterior"].to_numpy(dtype=np.float64) if "class_posterior" in table else None,
            ess=table["class_ess"].to_numpy(dtype=np.float64) if "class_ess" in table else None,
            source="cryosparc",
            best_label="probability of best class (class_posterior)",
            ess_label="class ESS (class_ess)",
            n_classes=k,
        )
    return PosteriorColumns(None, None, "none", "best-class probability", "class ESS", k,
                            ["the table has no class posterior or ESS columns"])


# --------------------------------------------------------------------------- histograms
@dataclass
class Histogram:
    """Counts over ``edges`` (len(counts) + 1), with what was left out."""

    edges: np.ndarray
    counts: np.ndarray
    label: str
    n_total: int
    n_outside: int  # finite values outside [edges[0], edges[-1]]
    n_nan: int

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "n_total": self.n_total,
            "n_outside": self.n_outside,
            "n_nan": self.n_nan,
        }


def histogram_counts(values, edges, *, chunk: int = 1 << 22) -> tuple[np.ndarray, int, int]:
    """Counts of ``values`` in ``edges``; ``(counts, n_outside, n_nan)``.

    Counts follow ``numpy.histogram`` (a value on an inner edge counts in the bin to its right,
    the last bin includes the last edge); NaN and out-of-range values are counted apart. The
    values are binned in their own dtype (no float64 copy of a float32 column), chunk by chunk
    so that memory stays bounded on memory-mapped columns.
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2:
        raise ValueError("need at least two edges")
    v = np.asarray(values).ravel()
    counts = np.zeros(len(e) - 1, dtype=np.int64)
    n_nan = 0
    for start in range(0, v.size, chunk):
        x = v[start : start + chunk]
        counts += np.histogram(x, e)[0]
        if x.dtype.kind == "f":
            n_nan += int(np.count_nonzero(np.isnan(x)))
    n_out = int(v.size - n_nan - counts.sum())
    return counts, n_out, n_nan


def probability_edges(bins: int = 50) -> np.ndarray:
    """Edges for a probability in [0, 1]."""
    return np.linspace(0.0, 1.0, bins + 1)


def ess_edges(values, n_classes: int | None = None, *, integer: bool = False, bins: int = 50) -> np.ndarray:
    """Edges for an ESS-like quantity.

    ``integer=True`` (RELION's sample counts): unit bins centred on 1, 2, ... up to the largest
    value (at most ``bins`` bins; wider integer-aligned bins beyond). Otherwise ``bins`` uniform
    bins on ``[1, hi]`` with ``hi`` the data's maximum rounded up to an integer, capped at ``K``
    (the number of classes, the largest possible ESS) — with hundreds of classes a ``[1, K]``
    axis would squeeze every particle into the first bins.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    vmax = float(finite.max()) if finite.size else 1.0
    if integer:
        top = max(int(np.ceil(vmax)), 1)
        width = max(int(np.ceil(top / bins)), 1)
        n = int(np.ceil(top / width))
        return 0.5 + width * np.arange(n + 1, dtype=np.float64)
    hi = float(np.ceil(vmax))
    if n_classes:
        hi = min(hi, float(n_classes))
    hi = max(hi, vmax, 2.0)
    return np.linspace(1.0, hi, bins + 1)


def posterior_histograms(cols: PosteriorColumns, *, bins: int = 50) -> dict[str, Histogram]:
    """Histograms of the best-class probability (``"best_prob"``) and ESS (``"ess"``)."""
    out: dict[str, Histogram] = {}
    if cols.best_prob is not None:
        e = probability_edges(bins)
        c, n_out, n_nan = histogram_counts(cols.best_prob, e)
        out["best_prob"] = Histogram(e, c, cols.best_label, int(cols.best_prob.size), n_out, n_nan)
    if cols.ess is not None:
        e = ess_edges(cols.ess, cols.n_classes, integer=cols.ess_is_integer, bins=bins)
        c, n_out, n_nan = histogram_counts(cols.ess, e)
        out["ess"] = Histogram(e, c, cols.ess_label, int(cols.ess.size), n_out, n_nan)
    return out


# --------------------------------------------------------------------------- per class
def _class_codes(classes) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes ``0..G-1`` (uint16 when G < 65536, so that a stable sort is a radix sort)
    and the class label of each code. Integer labels in a small range map by offset, others
    through ``numpy.unique``; codes of labels absent from the data are kept (dropped later)."""
    c = np.asarray(classes)
    if c.dtype.kind == "f" and c.size:
        if not np.isfinite(c).all():
            raise ValueError("class labels contain NaN; drop those rows first")
        if np.all(c == np.round(c)):
            c = c.astype(np.int64)
    if c.dtype.kind in "iu" and c.size:
        lo, hi = int(c.min()), int(c.max())
        if hi - lo < 2**16 - 1:
            # subtract in the array's own dtype (no int64 temporary), then narrow
            if lo < 0:  # hi - lo may not fit a narrow signed dtype
                c = c.astype(np.int64)
            shifted = c if lo == 0 else c - c.dtype.type(lo)
            return shifted.astype(np.uint16), np.arange(lo, hi + 1)
    labels, codes = np.unique(c, return_inverse=True)
    codes = codes.ravel()
    return (codes.astype(np.uint16) if labels.size < 2**16 else codes.astype(np.intp)), labels


def _group_medians(codes: np.ndarray, counts: np.ndarray, values) -> np.ndarray:
    """Median of ``values`` in each group (NaN ignored; NaN for groups without values).

    Fast path (non-negative values exactly representable in float32, e.g. cryoSPARC's float32
    ESS or RELION's integer sample counts): one sort of 64-bit keys ``code << 32 | float32
    bits`` (the bits of non-negative floats sort like the floats; NaN sorts last in its group),
    then the middle element(s) of each group. Otherwise a stable sort of the codes, a gather
    and ``numpy.median`` per group.
    """
    g = counts.size
    med = np.full(g, np.nan)
    v = np.asarray(values)
    if v.dtype.kind not in "f":
        v = v.astype(np.float64)
    v32 = v if v.dtype == np.float32 else v.astype(np.float32)
    nan = np.isnan(v32)
    fast = codes.dtype.itemsize <= 4 and not bool((v32 < 0).any())
    if fast and v32 is not v:
        fast = bool(np.array_equal(v32, v, equal_nan=True))
    stop = np.cumsum(counts)
    start = stop - counts
    if fast:
        key = (codes.astype(np.uint64) << np.uint64(32)) | v32.view(np.uint32).astype(np.uint64)
        key.sort()
        valid = counts - np.bincount(codes[nan].astype(np.intp), minlength=g) if nan.any() else counts
        has = valid > 0
        lo = (start + (valid - 1) // 2)[has]
        hi = (start + valid // 2)[has]
        low32 = np.uint64(0xFFFFFFFF)
        a = (key[lo] & low32).astype(np.uint32).view(np.float32).astype(np.float64)
        b = (key[hi] & low32).astype(np.uint32).view(np.float32).astype(np.float64)
        med[has] = 0.5 * (a + b)
        return med
    order = np.argsort(codes, kind="stable")
    e = v[order]
    has_nan = bool(nan.any())
    for j in np.nonzero(counts)[0]:
        seg = e[start[j] : stop[j]]
        if has_nan:
            seg = seg[~np.isnan(seg)]
        if seg.size:
            med[j] = np.median(seg)
    return med


def class_statistics(classes, ess=None, best_prob=None, labels=None) -> pd.DataFrame:
    """Per-class ``count``, ``fraction``, ``median_ess`` and ``mean_best_prob``.

    Counts and means by ``bincount``; medians by one sort of (class, value) keys
    (:func:`_group_medians`): O(N log N) at worst, independent of the number of classes
    (a per-class mask loop is O(N K)).
    ``labels`` lists classes to report even when empty (count 0, NaN statistics); classes present
    in the data are always reported. Rows are in ascending class order.
    """
    codes, code_labels = _class_codes(classes)
    g = code_labels.size
    n = int(codes.size)
    icodes = codes.astype(np.intp)  # bincount casts to intp on every call otherwise
    counts = np.bincount(icodes, minlength=g)
    med = np.full(g, np.nan)
    meanp = np.full(g, np.nan)
    if ess is not None and n:
        med = _group_medians(codes, counts, ess)
    if best_prob is not None and n:
        p = np.asarray(best_prob)
        if p.dtype.kind != "f":
            p = p.astype(np.float64)
        ok = ~np.isnan(p)
        if ok.all():
            s, c = np.bincount(icodes, weights=p, minlength=g), counts
        else:
            s = np.bincount(icodes[ok], weights=p[ok], minlength=g)
            c = np.bincount(icodes[ok], minlength=g)
        with np.errstate(invalid="ignore", divide="ignore"):
            meanp = np.where(c > 0, s / np.where(c > 0, c, 1), np.nan)
    keep = counts > 0
    df = pd.DataFrame(
        {
            "class": code_labels[keep],
            "count": counts[keep].astype(np.int64),
            "fraction": counts[keep] / n if n else np.zeros(int(keep.sum())),
            "median_ess": med[keep],
            "mean_best_prob": meanp[keep],
        }
    )
    if labels is not None:
        full = pd.DataFrame({"class": np.asarray(labels)})
        df = full.merge(df, on="class", how="outer").sort_values("class", kind="stable")
        df["count"] = df["count"].fillna(0).astype(np.int64)
        df["fraction"] = df["fraction"].fillna(0.0)
        df = df.reset_index(drop=True)
    return df


def class_base(table: pd.DataFrame, n_averages: int | None = None) -> int:
    """Number of the first class: 1 for RELION (STAR), 0 for cryoSPARC (``.cs``).

    Uses ``table.attrs["class_base"]`` when set, then the format, then the data (a table whose
    classes run 1..K with ``K == n_averages`` is 1-based).
    """
    if "class_base" in table.attrs:
        return int(table.attrs["class_base"])
    fmt = str(table.attrs.get("format", "")).lower()
    if fmt == "star":
        return 1
    if fmt == "cs":
        return 0
    if "class" in table and len(table):
        c = table["class"].to_numpy()
        if c.min() >= 1 and (n_averages is None or c.max() == n_averages):
            return 1
    return 0


def average_index_of_class(classes, base: int, n_averages: int) -> np.ndarray:
    """Index into the class-average stack of each class label (-1 when out of range)."""
    idx = np.asarray(classes, dtype=np.int64) - int(base)
    return np.where((idx >= 0) & (idx < n_averages), idx, -1)


#: Columns of the class summary the grid and table can be sorted by.
SORT_KEYS = {
    "class": ("class", True),
    "count": ("count", False),
    "resolution": ("frc_resolution_A", True),
    "median_ess": ("median_ess", True),
}


def sort_summary(summary: pd.DataFrame, by: str = "count") -> pd.DataFrame:
    """Sort a class summary: ``class`` (ascending), ``count`` (largest first), ``resolution``
    (best first; missing last) or ``median_ess`` (most certain first; missing last)."""
    if by not in SORT_KEYS:
        raise ValueError(f"sort key must be one of {', '.join(SORT_KEYS)}, got {by!r}")
    col, asc = SORT_KEYS[by]
    if col not in summary:
        return summary.reset_index(drop=True)
    return summary.sort_values([col, "class"], ascending=[asc, True], na_position="last",
                               kind="stable").reset_index(drop=True)


def summarise_classes(
    table: pd.DataFrame,
    cols: PosteriorColumns | None = None,
    *,
    n_averages: int | None = None,
    model_classes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per-class summary of a particle table.

    Columns: ``class`` (as in the file), ``average_index`` (index into the class-average stack,
    -1 if none), ``count``, ``fraction``, ``median_ess`` and ``mean_best_prob`` (of the
    columns chosen by :func:`posterior_columns`), and with a RELION model
    ``model_distribution`` and ``model_expected_count`` (= distribution x N). When averages are
    given, classes without particles are listed too (count 0).
    """
    if "class" not in table:
        raise CryodiagInputError("the particle table has no class column", table.attrs.get("source"))
    notes = check_class_labels(table, n_averages)
    cls = pd.to_numeric(table["class"], errors="coerce").to_numpy()
    ok = ~np.isnan(cls)
    if np.all(cls[ok] == np.round(cls[ok])):
        cls = np.where(ok, cls, 0).astype(np.int64)
    if cols is None:
        cols = posterior_columns(table)
    base = class_base(table, n_averages)
    labels = None
    if n_averages:
        labels = np.arange(base, base + n_averages)
    ess = None if cols.ess is None else cols.ess[ok]
    best = None if cols.best_prob is None else cols.best_prob[ok]
    df = class_statistics(cls[ok], ess, best, labels=labels)
    df.insert(1, "average_index", average_index_of_class(df["class"], base, n_averages or 0)
              if n_averages else -1)
    if model_classes is not None and "class_distribution" in model_classes:
        dist = dict(zip(model_classes["class"].astype(int), model_classes["class_distribution"]))
        df["model_distribution"] = [dist.get(int(c), np.nan) for c in df["class"]]
        df["model_expected_count"] = df["model_distribution"] * int(ok.sum())
    df.attrs["notes"] = notes
    return df


def table_source(table: pd.DataFrame) -> str | None:
    s = table.attrs.get("source")
    return None if s is None else os.fspath(s)
