"""The Guinier curve of a map after a sharpening filter, for any B, without its transform.

The sharpening filter (:mod:`.sharpen`) multiplies each coefficient of a transform ``F`` by
``h = w[i] * exp(-B s^2 / 4)``: ``w`` the per-shell weights (FSC weighting, zeroing, low-pass),
``i`` the coefficient's shell, ``s^2`` its own squared frequency. ``relion_postprocess`` draws
its sharpened curve (``rlnLogAmplitudesSharpened``) this way: the Guinier curve of ``h F``,
with ``F`` the transform of the map whose curve it plots. :class:`FilteredGuinier` gives that
curve for a new B in microseconds, from a few per-shell sums of ``F`` taken once.

Within shell ``i`` (``round(|k|) = i``, ``k`` in cycles per box of side ``L = n * pixel``) the
integer ``k^2`` lies in ``[i^2 - i + 1, i^2 + i]``, so ``u = (k^2 - i^2) / i`` is in ``(-1, 1]``
and ``s^2 = (i^2 + i u) / L^2``. With ``p = |F|^2`` (``"amplitude2"``, ``q = 2``) or ``|F|``
(``"amplitude"``, ``q = 1``) and ``a = -q B / 4``:

    sum over shell i of |h|^q p = w_i^q exp(a i^2 / L^2) sum_k x_i^k / k! M_k(i),
    x_i = a i / L^2,   M_k(i) = sum over shell i of p u^k

exactly, as a power series; :data:`TERMS` terms of it leave a relative error below
``|x|^TERMS / TERMS! * e^(2|x|)`` (about 1e-9 at ``|x| =`` :data:`MAX_ARGUMENT`). ``|x|`` is
largest at Nyquist, ``|q B| / (8 n pixel^2)``: 0.17 for B = -1000 Å² on a 256³ box at 1.2 Å.
A B beyond the series' reach (a small box with a very large B) is summed coefficient by
coefficient from the transform, made again for it.
"""

from __future__ import annotations

import math

import numpy as np

from ..fourier import folded_shell_sums, foldable, n_shells, shell_counts, shell_index, shell_sums
from .guinier import QUANTITIES, GuinierCurve, guinier_curve_from_means

__all__ = ["FilteredGuinier", "TERMS", "MAX_ARGUMENT", "series_error_bound"]

#: terms of the series kept (the moments M_0 .. M_{TERMS-1})
TERMS = 20
#: the largest |x| the series is used for; beyond, the sum is taken coefficient by coefficient
MAX_ARGUMENT = 2.5


def _axis_k2(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``k^2`` (float32, exact) along the full axes and over a (ky, kx) plane of the r2c layout."""
    k_full = np.rint(np.fft.fftfreq(n, d=1.0 / n)).astype(np.float32) ** 2
    kx = np.arange(n // 2 + 1, dtype=np.float32) ** 2
    return k_full, k_full[:, None] + kx[None, :]


class FilteredGuinier:
    """Guinier curves of ``F`` after the sharpening filter, for any B (see the module doc).

    ``source()`` returns ``F`` (the r2c transform of a cubic map of ``shape_real``); it is called
    once here, and again only for a B beyond the series' reach. ``index`` and ``counts``: the
    shape's shell index and counts, when the caller has them. Read-only once made: threads may
    share it.
    """

    def __init__(self, source, shape_real, pixel_size_A: float, quantity: str = "amplitude2", *, index=None,
                 counts=None):
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {QUANTITIES}")
        shape = tuple(int(s) for s in shape_real)
        if len(shape) != 3 or len(set(shape)) != 1:
            raise ValueError(f"a cubic map only, got shape {shape}")
        self.source = source
        self.shape = shape
        self.n = shape[0]
        self.pixel_size_A = float(pixel_size_A)
        self.quantity = quantity
        self.q = 2 if quantity == "amplitude2" else 1
        self.index = shell_index(shape) if index is None else index
        self.counts = shell_counts(self.index, self.n) if counts is None else np.asarray(counts)
        self.moments = self._sums(source(), terms=TERMS)  #: (TERMS, shells) float64

    # ------------------------------------------------------------------ per-shell sums
    def _quantity(self, a: np.ndarray, tmp: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``p`` of the coefficients ``a`` into ``out`` (``tmp``: scratch of the same shape)."""
        np.multiply(a.real, a.real, out=out)
        out += np.multiply(a.imag, a.imag, out=tmp)
        if self.quantity == "amplitude":
            np.sqrt(out, out=out)
        return out

    def _sums(self, ft: np.ndarray, *, terms: int) -> np.ndarray:
        """The moments ``sum p u^k`` (``k < terms``) per shell, ``(terms, shells)`` float64."""
        n = self.n
        k_full, k_yx = _axis_k2(n)
        index = self.index

        def fill(z0, z1, out, tmp):
            self._quantity(ft[z0:z1], tmp, out[0])
            np.add(k_yx[None], k_full[z0:z1, None, None], out=tmp)  # k^2 of each coefficient
            i = index[z0:z1].astype(np.float32)
            tmp -= i * i
            tmp /= np.maximum(i, 1)  # u in (-1, 1]; 0 at the origin
            np.clip(tmp, -1.0, 1.0, out=tmp)  # changes only the corners beyond Nyquist (left out)
            for k in range(1, terms):
                np.multiply(out[k - 1], tmp, out=out[k])

        if foldable(ft.shape, index):
            return folded_shell_sums(fill, terms, ft.shape, index, n)
        # any other index (not the shared one): the same quantities over the whole transform
        out = np.empty((terms,) + ft.shape, np.float32)
        fill(0, ft.shape[0], out, np.empty(ft.shape, np.float32))
        return np.stack([shell_sums(out[k], index, n) for k in range(terms)])

    def _direct(self, ft: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``sum p exp(x_i u)`` per shell, coefficient by coefficient (float64, a few planes at a
        time): for a B beyond the series' reach."""
        n = self.n
        m = n_shells(n)
        k_full, k_yx = (v.astype(np.float64) for v in _axis_k2(n))
        xs = np.append(x, 0.0)  # the corners beyond Nyquist (index m) are left out below
        out = np.zeros(m + 1)
        step = max(1, (1 << 20) // (n * (n // 2 + 1)))
        for z0 in range(0, n, step):
            z1 = min(n, z0 + step)
            a = ft[z0:z1]
            p = a.real.astype(np.float64) ** 2 + a.imag.astype(np.float64) ** 2
            if self.quantity == "amplitude":
                np.sqrt(p, out=p)
            i = self.index[z0:z1].astype(np.intp)
            u = (k_yx[None] + k_full[z0:z1, None, None] - i * i) / np.maximum(i, 1)
            # exp(x u) with |u| <= 1 (the shell's own scale exp(a i^2 / L^2) is applied per shell)
            p *= np.exp(np.clip(xs[i] * u, -700.0, 700.0))
            out += np.bincount(i.ravel(), weights=p.ravel(), minlength=m + 1)[: m + 1]
        return out[:m]

    # ------------------------------------------------------------------ curves
    def means(self, shell_weights, bfactor_A2: float) -> np.ndarray:
        """Per-shell means of ``|h F|^2`` (``"amplitude2"``) or ``|h F|`` (``"amplitude"``) for the
        filter of ``shell_weights`` (one per shell ``0 .. n//2``, more are ignored) and ``bfactor_A2``."""
        m = n_shells(self.n)
        w = np.abs(np.asarray(shell_weights, float)[:m])
        if w.size != m:
            raise ValueError(f"need {m} shell weights, got {w.size}")
        L2 = (self.n * self.pixel_size_A) ** 2
        a = -self.q * float(bfactor_A2) / 4.0
        i = np.arange(m, dtype=float)
        x = a * i / L2
        if np.max(np.abs(x)) <= MAX_ARGUMENT:
            series = np.zeros(m)
            term = np.ones(m)
            for k in range(TERMS):
                series += term * self.moments[k]
                term = term * x / (k + 1)
        else:
            series = self._direct(self.source(), x)
        with np.errstate(over="ignore", invalid="ignore"):
            scale = np.exp(a * i * i / L2)
            means = np.where(w > 0, w**self.q * scale * series, 0.0) / np.maximum(self.counts, 1)
        return means

    def curve(self, shell_weights, bfactor_A2: float) -> GuinierCurve:
        """The Guinier curve of ``h F`` (:meth:`means`); shells the filter zeroes have ``y = NaN``."""
        return guinier_curve_from_means(self.means(shell_weights, bfactor_A2), self.n, self.pixel_size_A,
                                        self.quantity, self.counts)


def series_error_bound(x: float) -> float:
    """Bound on the relative error of the series truncated after :data:`TERMS` terms at ``|x|``."""
    x = abs(float(x))
    return x**TERMS / math.factorial(TERMS) * math.exp(2 * x)
