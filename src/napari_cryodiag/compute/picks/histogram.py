"""Pre-binned 2D histogram of two pick features (e.g. NCC on x, power on y).

The bin of every pick is computed once per (x feature, y feature, edges); afterwards the
histogram of any selection (all picks, the kept ones, one micrograph's) is a single
``np.bincount(codes[mask])`` instead of an ``np.histogram2d`` call per change.

Conventions
-----------
- ``counts`` arrays are ``(n_y, n_x)``: row = y bin, column = x bin (``counts[iy, ix]``), ready
  for ``pcolormesh(x_edges, y_edges, counts)``.
- Edges are uniform in the feature's units, or uniform in ``log10`` of the feature when the
  axis is logarithmic (``log_y=True`` / ``log_x=True``); they are always stored in feature
  units.
- Picks with a NaN (or infinite) feature, or a non-positive value on a log axis, fall in no
  bin; they are counted (``n_missing``) and reported, never silently placed.
- Values outside the edges (the robust default range leaves out 0.5 % on each side) are put
  in the first/last bin when ``clip=True`` (the default, so every finite pick is shown), or
  in no bin with ``clip=False``; either way ``n_outside`` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import CryodiagInputError

DEFAULT_PERCENTILES = (0.5, 99.5)


def _valid(values: np.ndarray, log: bool) -> np.ndarray:
    ok = np.isfinite(values)
    if log:
        ok &= values > 0
    return ok


def robust_edges(
    values,
    n_bins: int = 100,
    *,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    log: bool = False,
    sample: int | None = 200_000,
    seed: int = 0,
) -> np.ndarray:
    """``n_bins + 1`` edges spanning the ``percentiles`` of the finite values.

    With ``log=True`` the edges are uniform in ``log10(value)`` over the positive values.
    Above ``sample`` values the percentiles are taken on a fixed random subsample (enough for
    0.5/99.5 % to within a small fraction of a bin). A degenerate range (all values equal)
    is widened to ±0.5 (or a factor 10**±0.5 on a log axis) around the value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if n_bins < 1:
        raise CryodiagInputError(f"histogram needs at least one bin, got {n_bins}")
    if sample is not None and v.size > sample:
        rng = np.random.default_rng(seed)
        v = v[rng.integers(0, v.size, sample)]
    v = v[_valid(v, log)]
    if v.size == 0:
        lo, hi = (0.0, 1.0)
    else:
        if log:
            v = np.log10(v)
        lo, hi = np.percentile(v, percentiles)
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
    e = np.linspace(lo, hi, n_bins + 1)
    if log:
        e = 10.0**e
    return e


def _codes_1d(values: np.ndarray, edges: np.ndarray, log: bool, clip: bool):
    """Bin index per value (int64), -1 where the value falls in no bin; plus outside mask."""
    v = np.asarray(values, dtype=np.float64)
    ok = _valid(v, log)
    n = edges.size - 1
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.log10(v)
        lo, hi = np.log10(edges[0]), np.log10(edges[-1])
    else:
        t = v
        lo, hi = float(edges[0]), float(edges[-1])
    scale = n / (hi - lo)
    with np.errstate(invalid="ignore"):
        f = (t - lo) * scale
        outside = ok & ((f < 0) | (t > hi))
        f = np.where(ok, f, 0.0)
    idx = f.astype(np.int64)  # floor for f >= 0
    np.clip(idx, 0, n - 1, out=idx)  # f == n (value at the last edge) -> last bin
    idx[~ok] = -1
    if not clip:
        idx[outside] = -1
    return idx, ok, outside


@dataclass
class PickHistogram:
    """Bin codes of two features, for fast histograms of any selection.

    Build with :meth:`from_values`. ``codes[i]`` is ``iy * n_x + ix`` for a binned pick and
    ``n_y * n_x`` (the "no bin" slot) otherwise.
    """

    x_edges: np.ndarray
    y_edges: np.ndarray
    codes: np.ndarray
    log_x: bool
    log_y: bool
    clip: bool
    missing: np.ndarray  # bool per pick: NaN/inf, or <= 0 on a log axis
    n_outside: int  # finite picks outside the edges (clipped in or dropped, see ``clip``)

    @classmethod
    def from_values(
        cls,
        x,
        y,
        *,
        bins: int | tuple[int, int] = 100,
        x_edges=None,
        y_edges=None,
        percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
        log_x: bool = False,
        log_y: bool = False,
        clip: bool = True,
    ) -> "PickHistogram":
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise CryodiagInputError(
                f"x and y features differ in length ({x.size} vs {y.size})"
            )
        nbx, nby = (bins, bins) if np.isscalar(bins) else bins
        if x_edges is None:
            x_edges = robust_edges(x, int(nbx), percentiles=percentiles, log=log_x)
        if y_edges is None:
            y_edges = robust_edges(y, int(nby), percentiles=percentiles, log=log_y)
        x_edges = np.asarray(x_edges, dtype=np.float64)
        y_edges = np.asarray(y_edges, dtype=np.float64)
        for e, name, lg in ((x_edges, "x", log_x), (y_edges, "y", log_y)):
            if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
                raise CryodiagInputError(f"{name} edges must increase strictly")
            if lg and e[0] <= 0:
                raise CryodiagInputError(f"{name} edges must be positive on a log axis")
        ix, okx, outx = _codes_1d(x, x_edges, log_x, clip)
        iy, oky, outy = _codes_1d(y, y_edges, log_y, clip)
        nx, ny = x_edges.size - 1, y_edges.size - 1
        missing = ~(okx & oky)
        codes = iy * nx + ix
        codes[(ix < 0) | (iy < 0)] = nx * ny
        n_outside = int(np.count_nonzero((outx | outy) & ~missing))
        return cls(x_edges, y_edges, codes, log_x, log_y, clip, missing, n_outside)

    def extend(self, x, y) -> "PickHistogram":
        """The histogram with picks ``x``, ``y`` appended, binned on the same edges (picks
        added by hand join the histogram without re-binning the others)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        ix, okx, outx = _codes_1d(x, self.x_edges, self.log_x, self.clip)
        iy, oky, outy = _codes_1d(y, self.y_edges, self.log_y, self.clip)
        missing = ~(okx & oky)
        codes = iy * self.n_x + ix
        codes[(ix < 0) | (iy < 0)] = self.n_x * self.n_y
        return PickHistogram(self.x_edges, self.y_edges, np.concatenate([self.codes, codes]), self.log_x,
                             self.log_y, self.clip, np.concatenate([self.missing, missing]),
                             self.n_outside + int(np.count_nonzero((outx | outy) & ~missing)))

    # ------------------------------------------------------------------ shape
    @property
    def n_x(self) -> int:
        return self.x_edges.size - 1

    @property
    def n_y(self) -> int:
        return self.y_edges.size - 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_y, self.n_x)

    @property
    def n_picks(self) -> int:
        return int(self.codes.size)

    @property
    def n_missing(self) -> int:
        """Picks in no bin for want of a value (counted once: call :meth:`rebinned` after
        changing ``missing`` in place)."""
        n = self.__dict__.get("_n_missing")
        if n is None:
            n = self.__dict__["_n_missing"] = int(np.count_nonzero(self.missing))
        return n

    def rebinned(self) -> None:
        """Say that ``codes`` or ``missing`` were changed in place (picks moved by hand)."""
        self.__dict__.pop("_n_missing", None)

    # ----------------------------------------------------------------- counts
    def _full_counts(self, mask) -> np.ndarray:
        m = self.n_x * self.n_y + 1
        if mask is None:
            return np.bincount(self.codes, minlength=m)
        mask = np.asarray(mask)
        if mask.dtype == bool and mask.shape == self.codes.shape:
            # a boolean mask as weights: no compaction of the selected codes (a random
            # boolean gather is several times slower than a weighted pass over all codes)
            return np.bincount(self.codes, weights=mask, minlength=m).astype(np.int64)
        return np.bincount(self.codes[mask], minlength=m)

    def counts(self, mask=None) -> np.ndarray:
        """``(n_y, n_x)`` int64 counts of the picks selected by ``mask`` (all when None).

        ``mask`` is a boolean array over picks or an integer index array.
        """
        return self._full_counts(mask)[:-1].reshape(self.n_y, self.n_x)

    def counts_and_unbinned(self, mask=None) -> tuple[np.ndarray, int]:
        """Counts as :meth:`counts` plus the number of selected picks that fell in no bin."""
        full = self._full_counts(mask)
        return full[:-1].reshape(self.n_y, self.n_x), int(full[-1])

    def summary(self) -> dict:
        """Numbers to report alongside the figure (for the CLI JSON and the widget)."""
        return {
            "n_picks": self.n_picks,
            "n_missing": self.n_missing,
            "n_outside_edges": self.n_outside,
            "outside_clipped_into_edge_bins": bool(self.clip),
            "bins": [self.n_x, self.n_y],
            "x_range": [float(self.x_edges[0]), float(self.x_edges[-1])],
            "y_range": [float(self.y_edges[0]), float(self.y_edges[-1])],
            "log_x": bool(self.log_x),
            "log_y": bool(self.log_y),
        }
