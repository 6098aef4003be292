"""Guinier plot and B-factor.

Per shell: ``x = 1/d^2 = s^2`` (1/Å^2) and ``y = ln`` of the shell-averaged structure factor,
either ``quantity="amplitude2"`` (ln mean |F|^2, the cryoSPARC guide's plot, the default) or
``"amplitude"`` (ln mean |F|, RELION's ``rlnLogAmplitudesOriginal``).

With an envelope ``exp(-B s^2 / 4)`` on amplitudes, the fitted line gives the map's decay
``B = -2 * slope`` (|F|^2) or ``B = -4 * slope`` (|F|); positive B = a blurred map. RELION reports
the *sharpening* B-factor, its negative (``sharpening_bfactor_A2``). Both are returned and the
plot labels which is which.

Fit window (``window``): ``"fsc143"`` (default, the guide's rule: 10 Å to the FSC = 0.143
resolution), ``"relion"`` (10 Å to the last shell before FSC-weighting zeroes shells, i.e. the
corrected FSC first falls to 1e-4 or below), or an explicit ``(low_A, high_A)`` pair.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..fourier import shell_counts, shell_index, shell_sums
from ..fourier import rfftn

QUANTITIES = ("amplitude2", "amplitude")


@dataclass
class GuinierCurve:
    x_invA2: np.ndarray  #: s^2 = 1/d^2 per shell (shell 0 included, x = 0)
    y: np.ndarray  #: ln of the shell mean of |F|^2 or |F|
    quantity: str
    counts: np.ndarray


@dataclass
class GuinierFit:
    quantity: str
    window_rule: str
    low_A: float
    high_A: float
    slope: float  #: d y / d (1/d^2), Å^2
    intercept: float
    correlation: float
    n_points: int
    bfactor_A2: float  #: map decay B (envelope exp(-B s^2/4) on amplitudes); positive = blurred
    sharpening_bfactor_A2: float  #: RELION's convention: -bfactor_A2 (negative sharpens)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self, x):
        return self.intercept + self.slope * np.asarray(x, float)


def guinier_curve(ft: np.ndarray, shape_real, pixel_size_A: float, quantity: str = "amplitude2", index=None) -> GuinierCurve:
    """Guinier curve of a half transform ``ft`` (rfftn of a cubic map of ``shape_real``)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {QUANTITIES}")
    n = int(shape_real[0])
    if index is None:
        index = shell_index(shape_real)
    p = ft.real * ft.real
    p += ft.imag * ft.imag
    vals = p if quantity == "amplitude2" else np.sqrt(p)
    counts = shell_counts(index, n)
    mean = shell_sums(vals, index, n) / np.maximum(counts, 1)
    with np.errstate(divide="ignore"):
        y = np.log(np.where(mean > 0, mean, np.nan))
    x = (np.arange(len(mean)) / (n * pixel_size_A)) ** 2
    return GuinierCurve(x, y, quantity, counts)


def guinier_curve_of_map(volume: np.ndarray, pixel_size_A: float, quantity: str = "amplitude2", mask=None) -> GuinierCurve:
    v = np.asarray(volume, np.float32)
    if mask is not None:
        v = v * mask
    return guinier_curve(rfftn(v), v.shape, pixel_size_A, quantity)


def guinier_window(rule="fsc143", fsc=None, pixel_size_A: float | None = None, box: int | None = None, low_A: float = 10.0):
    """``(low_A, high_A, rule_name)`` of the fit window for ``rule`` (see module doc)."""
    if isinstance(rule, (tuple, list)):
        lo, hi = float(rule[0]), float(rule[1])
        return max(lo, hi), min(lo, hi), "explicit"
    from .fsc import resolution_at

    if fsc is None or pixel_size_A is None or box is None:
        raise ValueError(f"window rule {rule!r} needs the FSC curve, voxel size and box")
    c = np.asarray(fsc, float)
    if rule == "fsc143":
        hi = resolution_at(c, box, pixel_size_A, 0.143).interpolated_A
    elif rule == "relion":
        below = np.nonzero(c[1:] <= 1e-4)[0]
        last = int(below[0]) if below.size else len(c) - 1  # last shell before the first zeroed one
        hi = box * pixel_size_A / max(last, 1)
    else:
        raise ValueError(f"unknown Guinier window rule {rule!r}; use 'fsc143', 'relion' or (low_A, high_A)")
    return float(low_A), float(hi), str(rule)


def fit_guinier(curve: GuinierCurve, low_A: float = 10.0, high_A: float = 3.0, window_rule: str = "explicit") -> GuinierFit:
    """Least-squares line through the Guinier curve between ``low_A`` and ``high_A`` (inclusive)."""
    from ...errors import CryodiagInputError

    if high_A >= low_A:
        raise CryodiagInputError(
            f"Guinier fit window is empty: its high-resolution end {high_A:.2f} Å is not finer than its "
            f"low-resolution end {low_A:.2f} Å (resolution too low for a B-factor fit)"
        )
    x, y = np.asarray(curve.x_invA2), np.asarray(curve.y)
    lo_x, hi_x = 1.0 / low_A**2, 1.0 / high_A**2
    sel = (x >= lo_x - 1e-12) & (x <= hi_x + 1e-12) & np.isfinite(y)
    if sel.sum() < 3:
        raise CryodiagInputError(
            f"Guinier fit window {low_A:.2f}-{high_A:.2f} Å holds {int(sel.sum())} shells; need at least 3 "
            "(map too small or resolution too low for a B-factor)"
        )
    slope, intercept = np.polyfit(x[sel], y[sel], 1)
    corr = float(np.corrcoef(x[sel], y[sel])[0, 1])
    factor = 2.0 if curve.quantity == "amplitude2" else 4.0
    b = -factor * float(slope)
    return GuinierFit(curve.quantity, window_rule, float(low_A), float(high_A), float(slope), float(intercept), corr, int(sel.sum()), b, -b)
