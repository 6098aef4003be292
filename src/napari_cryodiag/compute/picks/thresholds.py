"""Thresholds on two pick features (and an optional polygon), suggested defaults, counts.

A pick is *kept* when its x feature (NCC by default) is at least ``x_min`` (and at most
``x_max`` when set), its y feature (power by default) lies in ``[y_min, y_max]``, and, when a
polygon is drawn on the histogram, it lies inside the polygon. Any bound left at ``None`` does
not cut. A pick with a NaN in a feature that is cut on is rejected (it cannot be judged).

The polygon is stored in feature units; when the histogram axis was logarithmic, the polygon's
sides are straight lines in ``log10`` of that feature (``polygon_log_x`` / ``polygon_log_y``), so
what is selected is exactly what the user saw enclosed.
"""

from __future__ import annotations

import copy

import json
import queue
import re
import threading
import weakref
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError
from .histogram import PickHistogram


@dataclass
class Thresholds:
    """Selection rule on two features; ``mask`` applies it."""

    x_feature: str = "ncc"
    y_feature: str | None = "power"  #: None: a 1D view of the x feature (no y thresholds)
    x_min: float | None = None
    x_max: float | None = None
    y_min: float | None = None
    y_max: float | None = None
    polygon: list[tuple[float, float]] | None = None  # (x, y) vertices in feature units
    polygon_log_x: bool = False
    polygon_log_y: bool = False
    #: how the features were expressed: "raw", or "calibrated (ratio|difference)".
    x_units: str = "raw"
    y_units: str = "raw"
    #: how the values were set ("manual", "suggested: otsu + 3.0 MAD band", ...).
    method: str = "manual"

    # -------------------------------------------------------------- applying
    def mask_xy(self, x, y, *, polygon_mask: np.ndarray | None = None) -> np.ndarray:
        """Boolean keep-mask for feature arrays ``x`` and ``y``.

        ``polygon_mask`` may pass a precomputed :func:`polygon_mask` result (the polygon is
        costly at millions of picks and does not change while a line is dragged).
        """
        x = np.asarray(x)
        y = np.asarray(y)
        if x.shape != y.shape:
            raise CryodiagInputError(f"x and y features differ in length ({x.size} vs {y.size})")
        m = np.ones(x.shape, dtype=bool)
        if self.x_min is not None:
            m &= x >= self.x_min
        if self.x_max is not None:
            m &= x <= self.x_max
        if self.y_min is not None:
            m &= y >= self.y_min
        if self.y_max is not None:
            m &= y <= self.y_max
        if self.polygon is not None and len(self.polygon) >= 3:
            if polygon_mask is None:
                polygon_mask = self.polygon_mask(x, y)
            m &= polygon_mask
        return m

    def mask(self, table: pd.DataFrame) -> np.ndarray:
        """Keep-mask for a pick table, reading ``x_feature`` and ``y_feature`` columns."""
        for col in (self.x_feature, self.y_feature):
            if col not in table.columns:
                raise CryodiagInputError(
                    f"pick table has no column {col!r} to threshold on",
                    table.attrs.get("source") if hasattr(table, "attrs") else None,
                )
        return self.mask_xy(
            table[self.x_feature].to_numpy(dtype=np.float64),
            table[self.y_feature].to_numpy(dtype=np.float64),
        )

    def polygon_mask(self, x, y) -> np.ndarray:
        """Inside-polygon mask (all True when there is no polygon)."""
        x = np.asarray(x, dtype=np.float64)
        if self.polygon is None or len(self.polygon) < 3:
            return np.ones(x.shape, dtype=bool)
        return points_in_polygon(
            x, y, self.polygon, log_x=self.polygon_log_x, log_y=self.polygon_log_y
        )

    # ----------------------------------------------------------- checking
    def problems(self) -> list[str]:
        """What makes these thresholds inconsistent (empty when they are usable)."""
        out = []
        for k in ("x_min", "x_max", "y_min", "y_max"):
            v = getattr(self, k)
            if v is not None and not (isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v)):
                out.append(f"{k} = {v!r} is not a finite number")
        for axis in ("x", "y"):
            lo, hi = getattr(self, f"{axis}_min"), getattr(self, f"{axis}_max")
            feature = getattr(self, f"{axis}_feature")
            if not out and lo is not None and hi is not None and lo > hi:
                out.append(f"{feature} min {lo:.4g} is above its max {hi:.4g}: no pick could be kept")
        if self.polygon is not None and len(self.polygon) and len(self.polygon) < 3:
            out.append(f"a polygon needs at least 3 corners, got {len(self.polygon)}")
        return out

    def check(self, where=None) -> "Thresholds":
        """Raise :class:`CryodiagInputError` when the thresholds are inconsistent (min above max,
        a value that is not a finite number); returns ``self``."""
        bad = self.problems()
        if bad:
            raise CryodiagInputError("inconsistent thresholds: " + "; ".join(bad), where)
        return self

    # ----------------------------------------------------------- round trips
    def to_dict(self) -> dict:
        d = asdict(self)
        if self.polygon is not None:
            d["polygon"] = [[float(a), float(b)] for a, b in self.polygon]
        for k in ("x_min", "x_max", "y_min", "y_max"):
            if d[k] is not None:
                d[k] = float(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Thresholds":
        d = dict(d)
        if d.get("polygon") is not None:
            d["polygon"] = [tuple(map(float, p)) for p in d["polygon"]]
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def describe(self) -> str:
        """One line for titles and logs."""
        parts = []
        if self.x_min is not None or self.x_max is not None:
            lo = "-inf" if self.x_min is None else f"{self.x_min:.4g}"
            hi = "inf" if self.x_max is None else f"{self.x_max:.4g}"
            parts.append(f"{self.x_feature} in [{lo}, {hi}]")
        if self.y_min is not None or self.y_max is not None:
            lo = "-inf" if self.y_min is None else f"{self.y_min:.4g}"
            hi = "inf" if self.y_max is None else f"{self.y_max:.4g}"
            parts.append(f"{self.y_feature} in [{lo}, {hi}]")
        if self.polygon is not None and len(self.polygon) >= 3:
            parts.append(f"inside a {len(self.polygon)}-vertex polygon")
        return "; ".join(parts) if parts else "no thresholds"


def points_in_polygon(x, y, polygon, *, log_x: bool = False, log_y: bool = False) -> np.ndarray:
    """``matplotlib.path.Path.contains_points`` with a bounding-box pre-filter.

    NaN coordinates (and non-positive ones on a log axis) are outside.
    """
    from matplotlib.path import Path

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    out = np.zeros(x.shape, dtype=bool)
    if poly.shape[0] < 3:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        px = np.log10(poly[:, 0]) if log_x else poly[:, 0]
        py = np.log10(poly[:, 1]) if log_y else poly[:, 1]
        if not (np.all(np.isfinite(px)) and np.all(np.isfinite(py))):
            raise CryodiagInputError("polygon vertices must be finite (and positive on a log axis)")
        tx = np.log10(x) if log_x else x
        ty = np.log10(y) if log_y else y
    cand = (tx >= px.min()) & (tx <= px.max()) & (ty >= py.min()) & (ty <= py.max())
    idx = np.flatnonzero(cand)
    if idx.size:
        path = Path(np.column_stack([px, py]), closed=False)
        out[idx] = path.contains_points(np.column_stack([tx[idx], ty[idx]]))
    return out


# --------------------------------------------------------------------------- suggestions


def _robust_histogram(values, n_bins: int, percentiles):
    """Finite values and their histogram over the robust ``percentiles`` range.

    Returns ``(v, counts, edges)``, or ``(v, None, lo)`` when that range is a single value.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        raise CryodiagInputError("too few finite values to suggest a threshold")
    lo, hi = np.percentile(v, percentiles)
    if not hi > lo:
        return v, None, float(lo)
    counts, edges = np.histogram(v, bins=n_bins, range=(lo, hi))
    return v, counts, edges


def otsu_threshold(values, n_bins: int = 256, percentiles=(0.5, 99.5)) -> float:
    """Otsu's threshold (maximum between-class variance) of the finite values.

    The histogram spans the robust ``percentiles`` range so that a few outliers do not squash
    the two modes into a handful of bins.
    """
    v, counts, edges = _robust_histogram(values, n_bins, percentiles)
    if counts is None:
        return edges
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(counts).astype(np.float64)
    w1 = w0[-1] - w0
    s0 = np.cumsum(counts * centres)
    m0 = np.divide(s0, w0, out=np.zeros_like(s0), where=w0 > 0)
    m1 = np.divide(s0[-1] - s0, w1, out=np.zeros_like(s0), where=w1 > 0)
    between = w0 * w1 * (m0 - m1) ** 2
    k = int(np.argmax(between[:-1]))
    return float(edges[k + 1])


def valley_threshold(values, n_bins: int = 128, smooth_bins: float = 2.0, percentiles=(0.5, 99.5)) -> float:
    """Deepest minimum of the smoothed histogram between its two highest peaks.

    Falls back to :func:`otsu_threshold` when the histogram has a single peak.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    v, counts, edges = _robust_histogram(values, n_bins, percentiles)
    if counts is None:
        return edges
    h = gaussian_filter1d(counts.astype(np.float64), smooth_bins, mode="constant")
    peaks, props = find_peaks(np.concatenate([[0.0], h, [0.0]]), prominence=0.05 * h.max())
    peaks = peaks - 1
    if peaks.size < 2:
        return otsu_threshold(v, percentiles=percentiles)
    top = np.sort(peaks[np.argsort(props["prominences"])[-2:]])
    k = top[0] + int(np.argmin(h[top[0] : top[1] + 1]))
    return float(0.5 * (edges[k] + edges[k + 1]))


#: values used to estimate a mode's centre and spread (more only cost time)
_MAX_FIT_VALUES = 200_000
#: above this many picks, suggested thresholds (and the log-axis choice) come from a fixed random
#: subset of this many picks: quantiles and mode fits of 2e5 of 1e7 picks agree to ~2e-3 sigma
#: (1,000 picks in each 0.5 % tail); more only cost time when a view is rebuilt (calibration on/off)
_MAX_SUGGEST_VALUES = 200_000


#: views (axes, calibration, bins) of tables up to this many picks are kept, so that turning a
#: calibration off and on again, or going back to an axis, costs nothing (4 views at most)
_MAX_CACHED_VIEW_ROWS = 2_000_000
_MAX_CACHED_VIEWS = 4
_VIEW_ATTRS = ("x_raw", "x", "x_units", "y_raw", "y", "y_units", "log_y", "hist", "evaluator")
#: calibration fits (a line and a per-micrograph table: small) kept per score and settings at any
#: table size, so that calibration off and on again does not fit again (at 1e7 picks a fit of NCC
#: and power costs ~2.6 s: the per-micrograph medians and two Theil-Sen lines over 10,000 points)
_MAX_CACHED_FITS = 8


def _subset(n: int, k: int | None = None) -> np.ndarray:
    """A fixed (seeded) random subset of ``k`` indices of ``n`` (sorted, drawn with replacement)."""
    k = _MAX_SUGGEST_VALUES if k is None else k
    return np.sort(np.random.default_rng(0).integers(0, n, k))


def _robust_centre_scale(t: np.ndarray, k_clip: float = 2.0, iterations: int = 20) -> tuple[float, float]:
    """Centre and spread of the main mode of ``t``: start from the shortest interval holding
    half of the values (its midpoint; its half-length / 0.6745 as σ), then iterate median
    and ``1.4826 · MAD`` of the values within ``± k_clip · σ`` (the MAD corrected for the
    truncation, so a pure Gaussian keeps its σ).

    Starting from the shortest half keeps the estimate on the main mode when a third or more
    of the values are other things (junk and empty picks on small micrographs), where a
    median of all values sits between the modes and the band swallows them.
    """
    if t.size > _MAX_FIT_VALUES:  # a fixed random subset: the same answer to ~1e-3 sigma
        t = np.random.default_rng(0).choice(t, _MAX_FIT_VALUES, replace=False)
    s = np.sort(t)
    n = s.size
    h = n // 2 + 1
    if n >= 4:
        widths = s[h - 1:] - s[: n - h + 1]
        i = int(np.argmin(widths))
        med = 0.5 * float(s[i] + s[i + h - 1])
        mad = 0.5 * float(widths[i]) / 0.6745
    else:
        med = float(np.median(s))
        mad = 1.4826 * float(np.median(np.abs(s - med)))
    if mad == 0:
        mad = float(np.std(s)) or 1e-12
    from scipy.stats import norm

    # median |z| of a standard normal truncated to |z| <= k_clip
    q = float(norm.ppf(0.5 + 0.5 * (norm.cdf(k_clip) - 0.5)))
    prev = None
    for _ in range(iterations):
        sel = s[(s >= med - k_clip * mad) & (s <= med + k_clip * mad)]
        if sel.size < 3 or (prev is not None and sel.size == prev):
            break
        prev = sel.size
        med = float(np.median(sel))
        m = float(np.median(np.abs(sel - med))) / q
        mad = m if m > 0 else (float(np.std(sel)) or mad)
    return med, mad


def robust_band(values, k: float = 3.0, *, log: bool | None = None, iterations: int = 20,
                k_low: float | None = None) -> tuple[float, float]:
    """``median - k_low · σ`` to ``median + k · σ`` with ``σ = 1.4826 · MAD`` (in log10 when ``log``).

    The centre and σ are those of the main mode (:func:`_robust_centre_scale`: shortest half,
    then median and MAD iteratively clipped at ± 2σ) so that minority modes (junk, empty ice)
    do not widen the band; ``k_low`` (default ``k``) makes the band
    asymmetric. ``log=None`` chooses log when all finite values are positive (power is a sum
    of squares; a difference-calibrated power can be negative and is handled linearly).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise CryodiagInputError("no finite values to suggest a band")
    if log is None:
        log = bool(np.all(v > 0))
    t = np.log10(v[v > 0]) if log else v
    if t.size == 0:
        raise CryodiagInputError("no positive values for a band on a log axis")
    med, mad = _robust_centre_scale(t, iterations=iterations)
    lo, hi = med - (k if k_low is None else k_low) * mad, med + k * mad
    if log:
        return float(10.0**lo), float(10.0**hi)
    return float(lo), float(hi)


@dataclass
class TwoModes:
    """A two-Gaussian fit of one score (EM from Otsu's split): weights, means, SDs (low mode
    first) and Ashman's ``D = √2 |μ1 - μ0| / √(σ0² + σ1²)``."""

    weights: tuple[float, float]
    means: tuple[float, float]
    sds: tuple[float, float]
    ashman_d: float

    def boundary(self) -> float:
        """Where the weighted densities of the two modes cross between the means (the
        Bayes decision boundary; unlike Otsu's threshold it stays next to a small low mode)."""
        g = np.linspace(self.means[0], self.means[1], 4001)
        dens = [w * np.exp(-0.5 * ((g - m) / s) ** 2) / s for w, m, s in zip(self.weights, self.means, self.sds)]
        above = np.flatnonzero(dens[1] >= dens[0])
        return float(g[above[0]]) if above.size else float(self.means[1])

    def separated(self, min_d: float = 3.0, min_weight: float = 0.05) -> bool:
        """A real low mode: ``D >= min_d`` and the low mode holds between ``min_weight`` and
        half of the values. D > 2 is the textbook bound for a clean split of two Gaussians;
        3 is used by default because a single skewed mode (the low tail of particle NCC)
        fits as two Gaussians with D up to ~2.7."""
        return self.ashman_d >= min_d and min_weight <= self.weights[0] <= 0.5


def two_modes(values, iterations: int = 300, n_bins: int = 512) -> TwoModes | None:
    """Fit two Gaussians to the finite ``values`` (None with fewer than 4 values or one level).

    EM on a histogram (``n_bins`` over the 0.1-99.9 percentile range, the few values outside
    clipped to its ends), started from Otsu's split: the cost does not grow with the number
    of picks (10 million picks take as long as a thousand, once histogrammed).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 4 or not np.ptp(v) > 0:
        return None
    lo, hi = np.percentile(v, (0.1, 99.9))
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
    counts, edges = np.histogram(np.clip(v, lo, hi), bins=n_bins, range=(lo, hi))
    c = 0.5 * (edges[:-1] + edges[1:])
    nz = counts > 0
    c, cnt = c[nz], counts[nz].astype(np.float64)
    thr = otsu_threshold(v)
    ia, ib = c < thr, c >= thr
    if cnt[ia].sum() < 2 or cnt[ib].sum() < 2:
        return None

    def _stats(m):
        w_ = cnt[m].sum()
        mu_ = (cnt[m] * c[m]).sum() / w_
        return w_, mu_, np.sqrt((cnt[m] * (c[m] - mu_) ** 2).sum() / w_)

    (wa, ma, sa), (wb, mb, sb) = _stats(ia), _stats(ib)
    w = np.array([wa, wb]) / cnt.sum()
    mu = np.array([ma, mb])
    floor = 0.5 * (edges[1] - edges[0])
    sd = np.maximum(np.array([sa, sb]), floor)
    for _ in range(iterations):
        p = w[:, None] * np.exp(-0.5 * ((c[None, :] - mu[:, None]) / sd[:, None]) ** 2) / sd[:, None]
        r = p / np.maximum(p.sum(axis=0), 1e-300) * cnt[None, :]
        n = r.sum(axis=1)
        if np.any(n <= 0):
            return None
        w_new, mu_new = n / n.sum(), (r @ c) / n
        sd = np.maximum(np.sqrt((r * (c[None, :] - mu_new[:, None]) ** 2).sum(axis=1) / n), floor)
        done = np.abs(mu_new - mu).max() < 1e-7 * (hi - lo) and np.abs(w_new - w).max() < 1e-7
        w, mu = w_new, mu_new
        if done:
            break
    o = np.argsort(mu)
    d = float(np.sqrt(2.0) * abs(mu[1] - mu[0]) / np.sqrt(sd[0] ** 2 + sd[1] ** 2))
    return TwoModes(tuple(map(float, w[o])), tuple(map(float, mu[o])), tuple(map(float, sd[o])), d)


def _same_values(x: np.ndarray, y: np.ndarray) -> bool:
    return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=True))


def suggest_thresholds(
    x,
    y,
    *,
    x_feature: str = "ncc",
    y_feature: str = "power",
    x_method: str = "mixture",
    y_k: float = 3.0,
    y_k_low: float = 2.25,
    x_k: float = 3.5,
    min_separation: float = 3.0,
    y_log: bool | None = None,
    x_units: str = "raw",
    y_units: str = "raw",
) -> Thresholds:
    """Default thresholds from the score distributions (particles are assumed to be most picks).

    1. **Power band first, among all picks** (``y_min``, ``y_max``): the centre and spread σ
       of the main mode of the y feature (:func:`robust_band`: shortest half, then median and
       1.4826·MAD clipped at ± 2σ), in log10 for positive values; the band is
       ``centre - y_k_low·σ`` to ``centre + y_k·σ``. Particles form the main mode; empty ice
       sits below it (~0.45× particle power in the simulator, 2-4σ), aggregates and carbon
       edges ≥ 4σ above. The low side (2.25σ) trades a few particles for most empty picks;
       the high side (3σ) also drops particles that touch a carbon edge.
    2. **NCC minimum among the picks inside the band** (``x_min``): when the x feature shows a
       real low mode there (a two-Gaussian fit with Ashman's D ≥ ``min_separation`` and a low
       mode holding 5-50 % of the picks, :class:`TwoModes`), the crossing of the two fitted
       modes (``x_method="mixture"``), Otsu's threshold (``"otsu"``) or the histogram valley
       (``"valley"``) of those picks; otherwise only a robust lower bound ``centre - x_k·σ``
       (not below the lowest of those picks, so the line stays on the plot) that cuts
       outliers of the single particle mode. Particle NCC in noisy micrographs is broad and
       unimodal and overlaps empty ice: an Otsu cut there throws away a quarter to a third
       of the particles.

    Measured on the sample-data simulator (``simulate_micrographs`` defaults, seeds 0-4, raw
    and ratio-calibrated): 92-96 % of true particles kept, ≥ 92 % of junk (calibrated: all)
    and ≥ 80 % of empty picks rejected per seed (Otsu on NCC: 66-81 % of particles kept).
    Weak spot: when particles are only about half of the picks (tiny micrographs, much empty
    ice) empty picks inside the power band are kept (``tests/test_cli_picks.py``: 86 % recall
    at 85 % precision).

    When x and y are the same score (a single score such as RELION's autopick figure of
    merit on both axes) there is no band (a high score is not junk): only step 2 on all picks.
    ``Thresholds.method`` records which branch was taken and the numbers behind it.
    """
    if x_method not in ("mixture", "otsu", "valley"):
        raise CryodiagInputError(f"unknown threshold method {x_method!r} (mixture, otsu, valley)")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size > _MAX_SUGGEST_VALUES and x.shape == y.shape:  # the same picks on both axes
        idx = _subset(x.size)
        x, y = x[idx], y[idx]
    same = x_feature == y_feature or _same_values(x, y)
    if not np.isfinite(x).any():
        raise CryodiagInputError("too few finite values to suggest a threshold")
    if same:
        y_min = y_max = None
        inside = np.isfinite(x)
        band_text = f"no band on {y_feature} (same score on both axes)"
        among = "all picks"
    else:
        yf = y[np.isfinite(y)]
        log = y_log if y_log is not None else bool(yf.size and np.all(yf > 0))
        if log and not np.any(yf > 0):
            log = False
        y_min, y_max = robust_band(yf, y_k, log=log, k_low=y_k_low)
        inside = (y >= y_min) & (y <= y_max) & np.isfinite(x)
        if inside.sum() < 3:
            inside = np.isfinite(x)
        scale = "log10 " if log else ""
        band_text = f"{scale}{y_feature} in median -{y_k_low:g}/+{y_k:g} MAD-sigma of all picks"
        among = "the picks in the band"
    xs = x[inside]
    if xs.size < 2:
        raise CryodiagInputError("too few finite values to suggest a threshold")
    modes = two_modes(xs)
    d_text = ("no fit" if modes is None else
              f"Ashman's D {modes.ashman_d:.2f}, low mode {100 * modes.weights[0]:.0f} % of them")
    if modes is not None and modes.separated(min_separation):
        x_min = {"mixture": modes.boundary, "otsu": lambda: otsu_threshold(xs),
                 "valley": lambda: valley_threshold(xs)}[x_method]()
        x_text = (f"{x_feature} >= {x_method} cut of {among} (a low mode: {d_text}; "
                  f"D >= {min_separation:g})")
    else:
        med, sig = _robust_centre_scale(xs)
        # never below the lowest pick it applies to: the same cut, and a line the user can see
        x_min = float(max(med - x_k * sig, xs.min()))
        x_text = (f"{x_feature} >= median - {x_k:g} MAD-sigma of {among}, not below "
                  f"the lowest (no separate low mode: {d_text}; needs D >= {min_separation:g} and 5-50 %)")
    return Thresholds(
        x_feature=x_feature,
        y_feature=y_feature,
        x_min=x_min,
        y_min=y_min,
        y_max=y_max,
        x_units=x_units,
        y_units=y_units,
        method=f"suggested: {band_text}; then {x_text}",
    )


# --------------------------------------------------------------------------- counting


@dataclass
class SelectionCounts:
    """Result of applying thresholds: mask and counts overall and per micrograph."""

    mask: np.ndarray
    n_kept: int
    n_total: int
    kept_per_micrograph: np.ndarray
    total_per_micrograph: np.ndarray

    @property
    def n_rejected(self) -> int:
        return self.n_total - self.n_kept


class GroupCounter:
    """How many of a boolean mask's picks fall on each micrograph, fast and repeatedly.

    Picks usually come grouped by micrograph (a STAR file per micrograph, a table sorted by
    name): then the counts come from the kept picks' positions, searched for the groups' starts
    (where a weighted ``bincount`` converts the mask to floats first); otherwise the order that
    groups them is computed once.
    """

    def __init__(self, codes: np.ndarray, n_groups: int):
        codes = np.asarray(codes, dtype=np.intp)
        self.n_groups = int(n_groups)
        self.totals = np.bincount(codes, minlength=self.n_groups).astype(np.int64)
        self.order = None if codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1])) else \
            np.argsort(codes, kind="stable")
        self.starts = np.concatenate([[0], np.cumsum(self.totals)[:-1]]).astype(np.intp)

    #: picks per chunk of :meth:`count`
    chunk = 1 << 20

    def count(self, mask: np.ndarray) -> np.ndarray:
        """Kept picks per micrograph (int64, ``n_groups``).

        The kept picks' positions, a chunk of the mask at a time, are searched for the groups'
        starts: the count of a group is the difference of the kept picks before its start and
        before the next one (1e7 picks: about half the time of ``np.add.reduceat`` with an int64
        accumulator, and no more than a chunk's positions in memory).
        """
        m = np.asarray(mask, dtype=bool)
        if self.n_groups == 0 or m.size == 0:
            return np.zeros(self.n_groups, dtype=np.int64)
        if self.order is not None:
            m = m[self.order]
        edges = np.append(self.starts, m.size)  # an empty group's start is the next one's
        before = np.empty(edges.size, dtype=np.int64)  # kept picks before each edge
        base, k = 0, 0
        for a in range(0, m.size, self.chunk):
            b = min(a + self.chunk, m.size)
            idx = np.flatnonzero(m[a:b])
            k1 = int(np.searchsorted(edges, b, side="left"))  # the edges in [a, b)
            before[k:k1] = base + np.searchsorted(idx, edges[k:k1] - a, side="left")
            base += idx.size
            k = k1
        before[k:] = base
        return np.diff(before)


_SORTS = None  # the queue of background sorts (one thread for all, started at the first)
_SORTS_LOCK = threading.Lock()


def _sort_later(*jobs) -> None:
    """Run ``jobs`` (bound methods, in this order) in the one background sorting thread, the
    newest call's first. A job whose object is gone by then is skipped: the features of an
    evaluator that a calibration toggle or a rescore replaced are not sorted.

    One thread, not one per feature: on a 2-core laptop two sorts at once would take both cores
    and slow the threshold steps the user makes meanwhile, and the window's paint (each sort of
    1e7 values takes about a second and a half; NumPy's sort releases the GIL). Newest first: the
    features of the evaluator the user steps now come before those of one set up earlier."""
    global _SORTS
    with _SORTS_LOCK:
        if _SORTS is None:
            _SORTS = queue.LifoQueue()

            def work(q=_SORTS):
                while True:
                    for ref in q.get():
                        fn = ref()  # a weak reference: None once its evaluator was dropped
                        if fn is None:
                            continue
                        try:
                            fn()
                        except Exception:  # noqa: BLE001 - a failed sort leaves its feature unsorted: full passes
                            pass
                        del fn

            threading.Thread(target=work, name="cryodiag-sort-features", daemon=True).start()
    _SORTS.put(tuple(weakref.WeakMethod(job) for job in jobs))


class _SortedFeature:
    """One feature's values in increasing order, with the picks' order (NaNs last): the picks whose
    value lies between two bounds are one slice. The evaluator has it sorted in the background
    (:func:`_sort_later`), so that the first threshold steps do not wait for it.

    The other feature's values and the micrograph codes are kept in the same order too: a step
    reads all it needs of the picks it crosses as contiguous slices, with no gather from the
    full-length arrays (at 1e7 picks such a gather of the ~2.5e5 picks one slider step crosses
    costs 4-7 ms, against under 1 ms for the slice). They are gathered after the sort, which is
    :attr:`ready` first: until they are there, a step gathers them (the same result)."""

    def __init__(self, values: np.ndarray, other: np.ndarray, codes: np.ndarray):
        self._values, self._other, self._codes = values, other, codes
        self.order: np.ndarray | None = None
        self.sorted: np.ndarray | None = None
        self.other: np.ndarray | None = None  # the other feature, in this feature's order
        self.codes: np.ndarray | None = None  # the micrograph codes, in this feature's order
        self._sorted_event = threading.Event()  # order and sorted values there: steps can start
        self._done = threading.Event()  # all there (or the sort failed)

    def _sort(self) -> None:
        try:
            # not a stable sort: a step's slice holds every pick between its bounds, ties included,
            # in whatever order (NumPy's quicksort argsort takes less than half the time of its
            # stable one: 1.1-1.4 s against 2.6-2.9 s for 1e7 values on a 2-core VM)
            order = np.argsort(self._values)
            if order.size < 2**31 - 1:
                order = order.astype(np.int32)
            self.sorted = self._values[order]
            self.order = order  # after ``sorted``: ``ready`` tests it
            self._sorted_event.set()
            codes = self._codes[order]
            if codes.size and int(codes.max(initial=0)) < 2**31 - 1:
                codes = codes.astype(np.int32)
            self.codes = codes
            self.other = self._other[order]
        finally:
            self._values = self._other = self._codes = None  # the evaluator holds them
            self._sorted_event.set()
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._sorted_event.is_set() and self.order is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the whole job (the sort and the gathers in its order); True when sorted."""
        self._done.wait(timeout)
        return self.ready

    def span(self, a: float, b: float) -> tuple[int, int]:
        """``(i, j)``: the picks whose value lies in ``[min(a, b), max(a, b)]`` (ends included)
        are ``order[i:j]``, with their values ``sorted[i:j]`` (contiguous: no gather)."""
        lo, hi = (a, b) if a <= b else (b, a)
        return (int(np.searchsorted(self.sorted, lo, side="left")),
                int(np.searchsorted(self.sorted, hi, side="right")))


_BOUNDS = ("x_min", "x_max", "y_min", "y_max")


@dataclass
class ThresholdEvaluator:
    """Applies thresholds quickly and repeatedly to fixed feature arrays.

    ``micrograph_codes`` are integers ``0..n_micrographs-1`` per pick (``pd.factorize`` of the
    ``micrograph`` column); per-micrograph counts are one ``np.add.reduceat`` each. The polygon
    mask is cached, so dragging a line while a polygon is active stays cheap.

    A step that moves one bound from one value to another (a slider or a dragged line) is
    **incremental**: only the picks whose value lies between the old and the new bound can change,
    and they are one slice of the feature's sorted order (sorted once, in the background, for sets
    of at least :attr:`incremental_min` picks); the mask and the per-micrograph counts are updated
    from those picks alone. Each result is a new mask (earlier results are never changed) equal to
    the full evaluation's.
    """

    x: np.ndarray
    y: np.ndarray
    micrograph_codes: np.ndarray
    n_micrographs: int
    _poly_key: object = field(default=None, repr=False)
    _poly_mask: np.ndarray | None = field(default=None, repr=False)
    total_per_micrograph: np.ndarray = field(default=None, repr=False)
    #: sets smaller than this are always evaluated in full (a full pass is cheap there)
    incremental_min: int = 200_000
    #: sort the features at once (:meth:`prepare_steps`): for a view the user steps through
    sort_at_start: bool = False

    def __post_init__(self):
        self.x = np.ascontiguousarray(self.x, dtype=np.float64)
        self.y = np.ascontiguousarray(self.y, dtype=np.float64)
        self.micrograph_codes = np.ascontiguousarray(self.micrograph_codes, dtype=np.intp)
        if not (self.x.shape == self.y.shape == self.micrograph_codes.shape):
            raise CryodiagInputError("features and micrograph codes differ in length")
        self.counter = GroupCounter(self.micrograph_codes, self.n_micrographs)
        self.total_per_micrograph = self.counter.totals
        self._sorted: dict[str, _SortedFeature] = {}
        self._last: tuple | None = None  # (bounds, polygon key, SelectionCounts)
        if self.sort_at_start:
            self.prepare_steps()

    def prepare_steps(self) -> None:
        """Sort both features in the background now, x first (the one a user cuts first: NCC, a
        figure of merit), not at the first cut: a large set opened before its dock then steps
        incrementally as soon as the dock is up, and no later request for y sorts it ahead of x
        (the newest request sorts first). For interactive use; a one-shot run needs no sort."""
        self._sort_features(("x", "y"))

    def _polygon_mask(self, t: Thresholds):
        if t.polygon is None or len(t.polygon) < 3:
            return None
        key = (tuple(map(tuple, t.polygon)), t.polygon_log_x, t.polygon_log_y)
        if key != self._poly_key:
            self._poly_mask = t.polygon_mask(self.x, self.y)
            self._poly_key = key
        return self._poly_mask

    def _feature(self, axis: str) -> _SortedFeature | None:
        """The sorted values of feature ``axis`` ("x"/"y"), sorting started at the first call
        (None for sets too small to step incrementally)."""
        self._sort_features((axis,))
        return self._sorted.get(axis)

    def _sort_features(self, axes) -> None:
        """Have the features ``axes`` sorted in the background, in this order (those not sorted
        or queued yet; none for sets too small to step incrementally)."""
        if self.x.size < self.incremental_min:
            return
        new = [a for a in axes if a not in self._sorted]
        for a in new:
            self._sorted[a] = (_SortedFeature(self.x, self.y, self.micrograph_codes) if a == "x" else
                               _SortedFeature(self.y, self.x, self.micrograph_codes))
        if new:
            _sort_later(*(self._sorted[a]._sort for a in new))

    def _full(self, t: Thresholds, poly) -> SelectionCounts:
        m = t.mask_xy(self.x, self.y, polygon_mask=poly)
        kept_per = self.counter.count(m)
        return SelectionCounts(mask=m, n_kept=int(kept_per.sum()), n_total=int(self.x.size),
                               kept_per_micrograph=kept_per, total_per_micrograph=self.total_per_micrograph)

    def _step(self, t: Thresholds, poly, last: SelectionCounts, name: str, old: float, new: float):
        """The result of moving bound ``name`` from ``old`` to ``new``, or None (do it in full).

        Only the picks whose value of this feature lies between ``old`` and ``new`` can change;
        their values are one contiguous slice of the sorted feature. A step that tightens the cut
        (a minimum raised, a maximum lowered) only removes picks: those rows keep what they were
        and now also pass the new bound, with no look at the other feature. A step that loosens
        it re-judges those rows against the other feature and the polygon.
        """
        axis = name[0]
        feat = self._feature(axis)
        if feat is None or not feat.ready:
            return None
        i, j = feat.span(old, new)
        if j - i > self.x.size // 8:  # a long jump: a full pass costs less
            return None
        rows = feat.order[i:j]
        vals = feat.sorted[i:j]
        is_min = name.endswith("_min")
        before = last.mask[rows]
        if (new > old) == is_min:  # tightening
            now = before & ((vals >= new) if is_min else (vals <= new))
        else:
            lo = new if is_min else getattr(t, f"{axis}_min")
            hi = getattr(t, f"{axis}_max") if is_min else new
            now = np.ones(rows.size, dtype=bool)
            if lo is not None:
                now &= vals >= lo
            if hi is not None:
                now &= vals <= hi
            o_lo, o_hi = (t.y_min, t.y_max) if axis == "x" else (t.x_min, t.x_max)
            if o_lo is not None or o_hi is not None:
                # in this feature's order once gathered (a slice), else from the whole feature
                ov = feat.other[i:j] if feat.other is not None else (self.y if axis == "x" else self.x)[rows]
                if o_lo is not None:
                    now &= ov >= o_lo
                if o_hi is not None:
                    now &= ov <= o_hi
            if poly is not None:
                now &= poly[rows]
        m = last.mask.copy()
        m[rows] = now
        gained, lost = now & ~before, before & ~now
        kept_per = last.kept_per_micrograph.copy()
        n_gained, n_lost = int(np.count_nonzero(gained)), int(np.count_nonzero(lost))
        codes = feat.codes[i:j] if feat.codes is not None else self.micrograph_codes[rows]
        if n_gained:
            kept_per += np.bincount(codes[gained], minlength=self.n_micrographs)
        if n_lost:
            kept_per -= np.bincount(codes[lost], minlength=self.n_micrographs)
        return SelectionCounts(mask=m, n_kept=int(last.n_kept + n_gained - n_lost),
                               n_total=int(self.x.size), kept_per_micrograph=kept_per,
                               total_per_micrograph=self.total_per_micrograph)

    def evaluate(self, t: Thresholds) -> SelectionCounts:
        poly = self._polygon_mask(t)
        bounds = tuple(getattr(t, b) for b in _BOUNDS)
        poly_key = self._poly_key if poly is not None else None
        res = None
        if self._last is not None and self._last[1] == poly_key:
            changed = [i for i in range(4) if bounds[i] != self._last[0][i]]
            if not changed:
                res = self._last[2]
            elif len(changed) == 1:
                i = changed[0]
                old, new = self._last[0][i], bounds[i]
                # from or to "no cut" is a full pass: NaN values change side there
                if old is not None and new is not None and np.isfinite(old) and np.isfinite(new):
                    res = self._step(t, poly, self._last[2], _BOUNDS[i], float(old), float(new))
        if res is None:
            res = self._full(t, poly)
            # a cut on a feature: sort it for the next steps
            self._sort_features([axis for axis, lo, hi in (("x", t.x_min, t.x_max), ("y", t.y_min, t.y_max))
                                 if lo is not None or hi is not None])
        self._last = (bounds, poly_key, res)
        return res


def micrograph_codes(table: pd.DataFrame, column: str = "micrograph") -> tuple[np.ndarray, np.ndarray]:
    """``(codes, names)``: integer micrograph index per pick and the names, in order of appearance.

    Falls back to ``micrograph_name`` when ``column`` is absent; a table without either is
    one micrograph named "".
    """
    if column not in table.columns and "micrograph_name" in table.columns:
        column = "micrograph_name"
    if column not in table.columns:
        return np.zeros(len(table), dtype=np.intp), np.array([""], dtype=object)
    col = table[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        # categorical codes in order of first appearance, without a string per row (1e7 picks)
        codes, first = pd.factorize(col.cat.codes.to_numpy(), sort=False)
        cats = np.asarray(col.cat.categories.astype(str), dtype=object)
        names = np.where(first >= 0, cats[np.maximum(first, 0)], "nan") if len(first) else np.array([], dtype=object)
        return codes.astype(np.intp), np.asarray(names, dtype=object)
    codes, names = pd.factorize(col.astype(str), sort=False)
    return codes.astype(np.intp), np.asarray(names, dtype=object)


def micrograph_summary(
    table: pd.DataFrame,
    x,
    y,
    mask,
    *,
    codes: np.ndarray | None = None,
    names: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per micrograph: ``micrograph``, ``defocus_A`` (median, NaN when absent), ``picks``,
    ``kept``, ``median_x``, ``median_y`` (NaN-ignoring), in order of first appearance."""
    if codes is None or names is None:
        codes, names = micrograph_codes(table)
    n = len(names)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    df = pd.DataFrame({"c": codes, "x": x, "y": y})
    if "defocus_A" in table.columns:
        df["d"] = table["defocus_A"].to_numpy(dtype=np.float64)
    else:
        df["d"] = np.nan
    med = df.groupby("c", sort=True)[["x", "y", "d"]].median().reindex(range(n))
    out = pd.DataFrame(
        {
            "micrograph": names,
            "defocus_A": med["d"].to_numpy(),
            "picks": np.bincount(codes, minlength=n),
            "kept": np.bincount(codes[mask], minlength=n),
            "median_x": med["x"].to_numpy(),
            "median_y": med["y"].to_numpy(),
        }
    )
    return out


# --------------------------------------------------------------------------- whole state

#: score columns recognised as the pick score (x) and the power-like score (y), in order of preference
X_FEATURE_PREFERENCE = ("ncc", "rlnAutopickFigureOfMerit", "Confidence", "score", "fom")
Y_FEATURE_PREFERENCE = ("power",)
#: columns that are never offered as features (positions, indices, constants of the optics)
NOT_FEATURES = frozenset({
    "x_px", "y_px", "source_row", "image_index", "split", "voltage_kV", "cs_mm",
    "amplitude_contrast", "pixel_size_A", "rlnOpticsGroup",
})
#: a column whose name says it is a picker's score (offered by default); everything else
#: (defocus, pixel or box sizes, classes, angles, coordinates …) is offered but never chosen
_SCORE_NAME = re.compile(r"(^|[_/ ])(ncc|power|score|fom|confidence)($|[_/ ])|figureofmerit|autopick|confidence",
                         re.IGNORECASE)
_NOT_SCORE_NAME = re.compile(r"(_A|_px|_deg|_rad|_invA|_kV|_mm)$|defocus|pixel|size|class|coordinate|angle|"
                             r"magnification|voltage|optics|group|index|shift|origin|ctf|^manual$", re.IGNORECASE)


def numeric_features(table: pd.DataFrame) -> list[str]:
    """Numeric columns that can go on a histogram axis (any score, defocus, class ...)."""
    out = []
    for c in table.columns:
        if c in NOT_FEATURES:
            continue
        dt = table[c].dtype
        if pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt):
            out.append(str(c))
    return out


def is_score_column(name: str) -> bool:
    """Whether a column is a pick score (NCC, power, a picker's figure of merit or confidence)
    that may be put on an axis by default."""
    name = str(name)
    if name in X_FEATURE_PREFERENCE or name in Y_FEATURE_PREFERENCE:
        return True
    return bool(_SCORE_NAME.search(name)) and not _NOT_SCORE_NAME.search(name)


def score_features(table: pd.DataFrame) -> list[str]:
    """The numeric columns of ``table`` that are pick scores (:func:`is_score_column`)."""
    return [f for f in numeric_features(table) if is_score_column(f)]


def default_features(table: pd.DataFrame) -> tuple[str | None, str | None]:
    """(x, y) defaults, from score columns only: NCC-like on x, power on y.

    Never defocus, a pixel or box size, a class, an angle or a coordinate. A table with a single
    score (RELION autopick's figure of merit, crYOLO's confidence) gives ``(score, None)``: a 1D
    histogram of that score. A table without any score gives ``(None, None)``.
    """
    scores = score_features(table)
    x = next((f for f in X_FEATURE_PREFERENCE if f in scores), None)
    if x is None:
        x = next((f for f in scores if f not in Y_FEATURE_PREFERENCE), scores[0] if scores else None)
    y = next((f for f in Y_FEATURE_PREFERENCE if f in scores and f != x), None)
    return x, y


def wants_log_axis(values) -> bool:
    """Log scale for positive values spanning more than a decade (power scores)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size > 4 * _MAX_SUGGEST_VALUES:  # a fixed random subset answers the same
        v = v[_subset(v.size)]
    v = v[np.isfinite(v)]
    if v.size == 0 or np.any(v <= 0):
        return False
    lo, hi = np.percentile(v, [0.5, 99.5])
    return bool(hi > 10 * lo)


class PickInspection:
    """Everything the "Inspect Picks" view computes from one pick table (no Qt).

    Holds the feature arrays (raw or calibrated against defocus), the pre-binned histogram, the
    threshold evaluator and the current thresholds. The widget and the command line both use
    it; the widget only wires it to controls.

    Parameters
    ----------
    table
        Canonical pick table.
    x_feature, y_feature
        Columns on the axes (defaults: :func:`default_features`).
    calibrate_x, calibrate_y
        Calibrate that axis' score against defocus (``compute.calibration.fit_calibration``).
    mode, method, scale
        Calibration mode (``"ratio"`` / ``"difference"``), robust fit method, and the scale of
        the fit (``"linear"``, or ``"log"``: a line through log scores, which stays positive
        when junk-dominated medians would drive a linear line to zero).
    log_y
        Log-scaled y axis; ``None`` chooses (:func:`wants_log_axis`).
    bins
        Histogram bins per axis.
    defocus
        Defocus per micrograph key (Å; a Series/mapping) for picks whose table has no
        ``defocus_A`` (e.g. RELION autopicks with the CTF table of the same micrographs).
    suggest
        Start from the suggested thresholds (True), from none (False: every pick kept), or
        (None) suggested only for NCC × power, the scores the suggestion rule was made for: on any
        other score the suggestion is a proposal the user applies (:meth:`suggest`), never a
        silent default.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        x_feature: str | None = None,
        y_feature: str | None = None,
        *,
        calibrate_x: bool = False,
        calibrate_y: bool = False,
        mode: str = "ratio",
        method: str = "theil-sen",
        scale: str = "linear",
        log_y: bool | None = None,
        bins: int = 100,
        thresholds: Thresholds | None = None,
        defocus=None,
        suggest: bool | None = None,
        interactive: bool = False,
    ):
        self.table = table
        #: a view the user steps through (a dock): its evaluators sort their features at once
        self.interactive = bool(interactive)
        self.defocus = None if defocus is None else pd.Series(defocus, dtype=np.float64)
        if self.defocus is not None:
            self.defocus.index = self.defocus.index.astype(str)
        self.codes, self.names = micrograph_codes(table)
        dx, dy = default_features(table)
        self.x_feature = x_feature or dx
        # y: the given feature, else the default only when x was not given either (a chosen x
        # with no y is a 1D view); the same feature on both axes is a 1D view too
        self.y_feature = y_feature if y_feature is not None else (dy if x_feature is None else None)
        if self.y_feature == self.x_feature:
            self.y_feature = None
        if self.x_feature is None:
            raise CryodiagInputError("the picks have no numeric score column to inspect (NCC, power, a "
                                     "picker's figure of merit or confidence)", table.attrs.get("source"))
        self.mode = mode
        self.method = method
        self.scale = scale
        self.bins = int(bins)
        self.calibrations: dict = {}
        self.calibration_errors: dict = {}
        self._fits: dict = {}  # fit key -> Calibration or the error's message (see _MAX_CACHED_FITS)
        self._want_cal = {"x": bool(calibrate_x), "y": bool(calibrate_y)}
        self._log_y_request = log_y
        self.suggest_by_default = suggest
        self._views: dict = {}  # view key -> the arrays of that view (see _MAX_CACHED_VIEW_ROWS)
        self._rows_version = 0  # changes when rows change (added, rescored): cached views go
        self.rebuild()
        if thresholds is not None:
            self.thresholds = thresholds
        else:
            self.thresholds = self.default_thresholds()

    # ----------------------------------------------------------------- build
    def _column(self, name: str) -> np.ndarray:
        if name not in self.table.columns:
            raise CryodiagInputError(f"pick table has no column {name!r}", self.table.attrs.get("source"))
        # a writable copy (the table's column is read-only under pandas' copy-on-write): picks
        # rescored by hand are updated in place (update_rows)
        return np.array(pd.to_numeric(self.table[name], errors="coerce").to_numpy(dtype=np.float64), copy=True)

    def _calibrated(self, axis: str, name: str, raw: np.ndarray) -> tuple[np.ndarray, str]:
        self.calibrations.pop(axis, None)
        self.calibration_errors.pop(axis, None)
        if not self._want_cal[axis]:
            return raw, "raw"
        cal = self._fit(name)
        if isinstance(cal, str):
            self.calibration_errors[axis] = cal
            return raw, "raw"
        self.calibrations[axis] = cal
        vals = cal.apply(self.table, name, defocus=self.defocus)
        # writable (pandas' copy-on-write hands out read-only arrays): rows rescored by hand are
        # updated in place (update_rows)
        return np.require(vals.to_numpy(dtype=np.float64), requirements="W"), f"calibrated ({self.mode})"

    def _fit_key(self, name: str, mode=None, method=None, scale=None) -> tuple:
        return (name, mode or self.mode, method or self.method, scale or self.scale, id(self.table),
                len(self.table), self._rows_version, None if self.defocus is None else id(self.defocus))

    def _fit(self, name: str, mode=None, method=None, scale=None):
        """The calibration of score ``name`` with the view's settings (or those given), or why
        there is none (the error's message): fitted once per table, rows version, defocus and
        settings."""
        from .calibration import fit_calibration

        key = self._fit_key(name, mode, method, scale)
        hit = self._fits.get(key)
        if hit is None:
            try:
                hit = fit_calibration(self.table, name, mode=key[1], method=key[2], scale=key[3],
                                      defocus=self.defocus)
            except CryodiagInputError as err:
                hit = str(err)
            self._fits[key] = hit
            while len(self._fits) > _MAX_CACHED_FITS:
                self._fits.pop(next(iter(self._fits)), None)
        return hit

    def unfitted(self, *, calibrate_x: bool, calibrate_y: bool, mode=None, method=None, scale=None) -> list[str]:
        """The scores that :meth:`configure` with these settings would fit (their fits not kept)."""
        names = []
        if calibrate_x:
            names.append(self.x_feature)
        if calibrate_y and not self.one_d:
            names.append(self.y_feature)
        return [n for n in names if self._fit_key(n, mode, method, scale) not in self._fits]

    def prepare_fits(self, names, *, mode=None, method=None, scale=None) -> None:
        """Fit the calibration lines of ``names`` now and keep them, changing nothing in the view:
        a worker thread may call it (the dock does at 1e7 picks) and :meth:`configure` then takes
        them."""
        for name in names:
            self._fit(name, mode, method, scale)

    @property
    def one_d(self) -> bool:
        """A single score: the histogram is 1D and only x thresholds apply."""
        return self.y_feature is None

    def _view_key(self) -> tuple:
        return (self.x_feature, self.y_feature, self._want_cal["x"], self._want_cal["y"], self.mode, self.method,
                self.scale, self.bins, self._log_y_request, self._rows_version,
                None if self.defocus is None else id(self.defocus))

    def rows_changed(self) -> None:
        """Rows were added or changed outside the view's own methods: forget the cached views."""
        self._rows_version += 1
        self._views.clear()
        self._fits.clear()

    def set_interactive(self, on: bool = True) -> None:
        """Mark the view as stepped through by a user (:attr:`interactive`): its features are
        sorted in the background from now on (:meth:`ThresholdEvaluator.prepare_steps`)."""
        self.interactive = bool(on)
        if self.interactive:
            self.evaluator.prepare_steps()

    def rebuild(self) -> None:
        """Recompute features (and calibration), histogram and evaluator; a view seen before (same
        axes, calibration and bins, rows unchanged) is taken back from the cache."""
        key = self._view_key()
        view = self._views.get(key)
        if view is not None:
            for name in _VIEW_ATTRS:
                setattr(self, name, view[name])
            self.calibrations, self.calibration_errors = dict(view["calibrations"]), dict(view["errors"])
            self._views[key] = self._views.pop(key)  # most recently used last
            if self.interactive:  # it may have been built before the view was marked interactive
                self.evaluator.prepare_steps()
            return
        self._build()
        if len(self.x) <= _MAX_CACHED_VIEW_ROWS:
            self._views[key] = dict({name: getattr(self, name) for name in _VIEW_ATTRS},
                                    calibrations=dict(self.calibrations), errors=dict(self.calibration_errors))
            while len(self._views) > _MAX_CACHED_VIEWS:
                self._views.pop(next(iter(self._views)))

    def _build(self) -> None:
        self.x_raw = self._column(self.x_feature)
        self.x, self.x_units = self._calibrated("x", self.x_feature, self.x_raw)
        if self.one_d:
            self.calibrations.pop("y", None)
            self.calibration_errors.pop("y", None)
            self.y_raw = self.y = np.zeros_like(self.x)
            self.y_units = "raw"
            self.log_y = False
            self.hist = PickHistogram.from_values(self.x, self.y, bins=(self.bins, 1), y_edges=[-0.5, 0.5])
        else:
            self.y_raw = self._column(self.y_feature)
            self.y, self.y_units = self._calibrated("y", self.y_feature, self.y_raw)
            self.log_y = wants_log_axis(self.y) if self._log_y_request is None else bool(self._log_y_request)
            if self.log_y and not np.any(self.y[np.isfinite(self.y)] > 0):
                self.log_y = False
            self.hist = PickHistogram.from_values(self.x, self.y, bins=self.bins, log_y=self.log_y)
        self.evaluator = ThresholdEvaluator(self.x, self.y, self.codes, len(self.names),
                                            sort_at_start=self.interactive)

    def extend(self, rows: pd.DataFrame) -> None:
        """Append picks (rows of the same columns; picks added by hand) without rebuilding: their
        features are calibrated with the fitted lines, binned on the current edges, and their
        micrographs join the per-micrograph codes. ``self.table`` becomes the concatenation."""
        if len(rows) == 0:
            return
        self.rows_changed()
        table = pd.concat([self.table, rows], ignore_index=True, sort=False)
        table.attrs = dict(self.table.attrs)
        for col in ("micrograph", "micrograph_name"):
            if isinstance(table[col].dtype if col in table.columns else None, pd.CategoricalDtype):
                continue  # the rows came with the table's categories (PickSet.extend): kept by concat
            if col in self.table.columns and isinstance(self.table[col].dtype, pd.CategoricalDtype):
                cats = self.table[col].cat.categories.union(pd.Index(rows[col].astype(str).unique()))
                table[col] = pd.Categorical(table[col].astype(str), categories=cats)
        self.table = table
        n_old = len(self.codes)
        names = list(self.names)
        index = {str(n): i for i, n in enumerate(names)}
        col = "micrograph" if "micrograph" in rows.columns else ("micrograph_name" if "micrograph_name" in rows.columns else None)
        new_codes = np.zeros(len(rows), dtype=np.intp)
        for i, name in enumerate(rows[col].astype(str) if col else [""] * len(rows)):
            if name not in index:
                index[name] = len(names)
                names.append(name)
            new_codes[i] = index[name]
        self.codes = np.concatenate([self.codes, new_codes])
        self.names = np.asarray(names, dtype=object)

        def values(axis, feature, raw_all):
            raw = pd.to_numeric(rows[feature], errors="coerce").to_numpy(dtype=np.float64) \
                if feature in rows.columns else np.full(len(rows), np.nan)
            cal = self.calibrations.get(axis)
            if cal is None:
                return raw, raw
            sub = self.table.iloc[n_old:]
            return raw, cal.apply(sub, feature, defocus=self.defocus).to_numpy(dtype=np.float64)

        xr, xv = values("x", self.x_feature, self.x_raw)
        self.x_raw = np.concatenate([self.x_raw, xr])
        self.x = np.concatenate([self.x, xv])
        if self.one_d:
            self.y_raw = self.y = np.zeros_like(self.x)
            yv = np.zeros(len(rows))
        else:
            yr, yv = values("y", self.y_feature, self.y_raw)
            self.y_raw = np.concatenate([self.y_raw, yr])
            self.y = np.concatenate([self.y, yv])
        self.hist = self.hist.extend(xv, yv)
        self.evaluator = ThresholdEvaluator(self.x, self.y, self.codes, len(self.names),
                                            sort_at_start=self.interactive)

    def update_values(self, rows: np.ndarray, columns: dict) -> None:
        """New values of some columns for ``rows`` (picks moved by hand and rescored): the table
        changes in place and, when an axis feature changed, only those rows are re-binned."""
        rows = np.asarray(rows, dtype=np.intp)
        self.rows_changed()  # the table's values change: no cached view holds them
        for name, vals in columns.items():
            if name not in self.table.columns:
                self.table[name] = np.nan
            col = self.table.columns.get_loc(name)
            dt = self.table[name].dtype
            vals = np.asarray(vals)
            if dt.kind == "f":
                vals = vals.astype(dt)
            elif dt.kind in "iu" and vals.dtype.kind == "f":
                self.table[name] = self.table[name].astype(np.float64)
            self.table.iloc[rows, col] = vals
        if {self.x_feature, self.y_feature} & set(columns):
            self.update_rows(rows)

    def update_rows(self, rows: np.ndarray) -> None:
        """Recompute the features of ``rows`` from the table (calibrated with the fitted lines)
        and re-bin them on the current edges, in place: cheap for a few rows of millions."""
        rows = np.asarray(rows, dtype=np.intp)
        if rows.size == 0:
            return
        self.rows_changed()
        sub = self.table.iloc[rows]

        def values(axis, feature):
            raw = pd.to_numeric(sub[feature], errors="coerce").to_numpy(dtype=np.float64)
            cal = self.calibrations.get(axis)
            return raw, (raw if cal is None else cal.apply(sub, feature, defocus=self.defocus).to_numpy(np.float64))

        self.x_raw[rows], self.x[rows] = values("x", self.x_feature)
        if not self.one_d:
            self.y_raw[rows], self.y[rows] = values("y", self.y_feature)
        one = self.hist.extend(self.x[rows], self.y[rows])
        n = len(self.x)
        self.hist.codes[rows] = one.codes[n:]
        self.hist.missing[rows] = one.missing[n:]
        self.hist.rebinned()
        self.evaluator = ThresholdEvaluator(self.x, self.y, self.codes, len(self.names),
                                            sort_at_start=self.interactive)

    def configure(self, *, x_feature=None, y_feature="keep", calibrate_x=None, calibrate_y=None,
                  mode=None, method=None, scale=None, log_y="keep", bins=None,
                  keep_thresholds=False) -> None:
        """Change features/calibration/axis and rebuild; thresholds go back to the default rule
        (:meth:`default_thresholds`) unless ``keep_thresholds`` (they would be in the wrong units
        otherwise). ``y_feature=None`` makes the view 1D."""
        if x_feature is not None:
            self.x_feature = x_feature
        if y_feature != "keep":
            self.y_feature = y_feature
        if self.y_feature == self.x_feature:
            self.y_feature = None
        if calibrate_x is not None:
            self._want_cal["x"] = bool(calibrate_x)
        if calibrate_y is not None:
            self._want_cal["y"] = bool(calibrate_y)
        if mode is not None:
            self.mode = mode
        if method is not None:
            self.method = method
        if scale is not None:
            self.scale = scale
        if log_y != "keep":
            self._log_y_request = log_y
        if bins is not None:
            self.bins = int(bins)
        self.rebuild()
        if not keep_thresholds:
            self.thresholds = self.default_thresholds()
        else:
            self.thresholds.x_feature, self.thresholds.y_feature = self.x_feature, self.y_feature
            self.thresholds.x_units, self.thresholds.y_units = self.x_units, self.y_units
            # a polygon keeps the axis scale it was drawn on (what it encloses does not change)

    # --------------------------------------------------------------- applying
    @property
    def suggests_by_default(self) -> bool:
        """Whether the default thresholds are the suggested ones (see ``suggest``)."""
        if self.suggest_by_default is not None:
            return bool(self.suggest_by_default)
        return self.x_feature == "ncc" and self.y_feature == "power"

    def no_thresholds(self, method: str = "none: every pick kept") -> Thresholds:
        return Thresholds(x_feature=self.x_feature, y_feature=self.y_feature, x_units=self.x_units,
                          y_units=self.y_units, method=method)

    def default_thresholds(self) -> Thresholds:
        """The suggested thresholds when they are the default (NCC × power), else none."""
        if self.suggests_by_default:
            key = self._view_key()
            view = self._views.get(key)
            if view is not None and "suggested" in view:
                return copy.deepcopy(view["suggested"])
            t = self.suggest()
            if view is not None:
                view["suggested"] = copy.deepcopy(t)
            return t
        return self.no_thresholds(f"none: every pick kept (suggested thresholds on {self.x_feature} "
                                  "are a proposal to apply)")

    def suggest(self, **kwargs) -> Thresholds:
        """Suggested thresholds in the current units (see :func:`suggest_thresholds`)."""
        y_feature = self.x_feature if self.one_d else self.y_feature
        y = self.x if self.one_d else self.y
        try:
            t = suggest_thresholds(
                self.x, y, x_feature=self.x_feature, y_feature=y_feature,
                x_units=self.x_units, y_units=self.y_units, y_log=self.log_y or None, **kwargs,
            )
        except CryodiagInputError:
            t = self.no_thresholds("none (too few values)")
        if self.one_d:
            t.y_feature, t.y_min, t.y_max, t.y_units = None, None, None, "raw"
        return t

    def evaluate(self, thresholds: Thresholds | None = None) -> SelectionCounts:
        if thresholds is not None:
            self.thresholds = thresholds
        return self.evaluator.evaluate(self.thresholds)

    def summary(self, mask: np.ndarray | None = None) -> pd.DataFrame:
        """Per-micrograph table (:func:`micrograph_summary`) in the current units."""
        if mask is None:
            mask = self.evaluate().mask
        out = micrograph_summary(self.table, self.x, self.y, mask, codes=self.codes, names=self.names)
        if self.defocus is not None and "defocus_A" not in self.table.columns:
            out["defocus_A"] = out["micrograph"].astype(str).map(self.defocus).to_numpy(dtype=np.float64)
        return out

    def report(self, result: SelectionCounts | None = None) -> dict:
        """Numbers for a JSON side file: thresholds, units, calibration fits, counts."""
        r = self.evaluate() if result is None else result
        return {
            "source": self.table.attrs.get("source"),
            "x_feature": self.x_feature,
            "y_feature": self.y_feature,
            "x_units": self.x_units,
            "y_units": self.y_units,
            "thresholds": self.thresholds.to_dict(),
            "n_total": r.n_total,
            "n_kept": r.n_kept,
            "n_rejected": r.n_rejected,
            "n_without_value": int(self.hist.n_missing),
            "calibration": {
                axis: {k: v for k, v in cal.to_dict().items() if k != "per_micrograph"}
                for axis, cal in self.calibrations.items()
            },
            "calibration_errors": dict(self.calibration_errors),
            "per_micrograph": {
                "micrograph": [str(n) for n in self.names],
                "picks": r.total_per_micrograph.tolist(),
                "kept": r.kept_per_micrograph.tolist(),
            },
        }
