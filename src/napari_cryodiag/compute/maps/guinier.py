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
last shell before the corrected FSC first falls below 1e-4), or an explicit ``(low_A, high_A)``
pair.

RELION's ``relion_postprocess --auto_bfac`` (``Postprocessing::sharpenMap``) fits the curve of
the *unmasked* half-map average after FSC weighting (``rlnLogAmplitudesWeighted``: every
coefficient times ``sqrt(2 FSC / (1 + FSC))`` of its shell, zero from the first shell whose FSC
is below 1e-4), with an unweighted least-squares line over the shells from ``--autob_lowres``
(10 Å) on whose weighted amplitude is not zero. :func:`fsc_weighted_curve` builds that curve;
the "relion" window rule of :class:`~.sharpen.ValidationSession` uses it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..fourier import shell_counts, shell_index, shell_means
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


def guinier_curve(ft: np.ndarray, shape_real, pixel_size_A: float, quantity: str = "amplitude2", index=None,
                  counts=None) -> GuinierCurve:
    """Guinier curve of a half transform ``ft`` (rfftn of a cubic map of ``shape_real``); ``index``
    and ``counts``: the shape's shell index and counts, when the caller has them."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {QUANTITIES}")
    n = int(shape_real[0])
    if index is None:
        index = shell_index(shape_real)
    if counts is None:
        counts = shell_counts(index, n)
    return guinier_curve_from_means(shell_means(ft, index, n, (quantity,), counts)[quantity], n, pixel_size_A,
                                    quantity, counts)


def guinier_curve_from_means(mean: np.ndarray, n: int, pixel_size_A: float, quantity: str, counts) -> GuinierCurve:
    """Guinier curve from per-shell means (:func:`shell_means`); empty shells give ``y = NaN``."""
    mean = np.asarray(mean, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(np.where(mean > 0, mean, np.nan))
    x = (np.arange(len(mean)) / (n * pixel_size_A)) ** 2
    return GuinierCurve(x, y, quantity, np.asarray(counts))


def guinier_curve_of_map(volume: np.ndarray, pixel_size_A: float, quantity: str = "amplitude2", mask=None,
                         weighting_fsc=None, *, index=None, counts=None) -> GuinierCurve:
    """Guinier curve of a cubic map (times ``mask`` if given); with ``weighting_fsc`` (one value per
    shell ``0..n//2``) after RELION's FSC weighting (:func:`fsc_weighted_curve`). ``index`` and
    ``counts`` (the shell index of the map's shape and its shell counts) save their computation
    when the caller has them."""
    v = np.asarray(volume, np.float32)
    if mask is not None:
        v = np.multiply(v, mask, dtype=np.float32)
    if weighting_fsc is not None:
        if len(weighting_fsc) != v.shape[0] // 2 + 1:
            raise ValueError(f"FSC weighting needs {v.shape[0] // 2 + 1} shells, got {len(weighting_fsc)}")
        return fsc_weighted_curve(rfftn(v), v.shape, pixel_size_A, weighting_fsc, quantity, index)
    return guinier_curve(rfftn(v), v.shape, pixel_size_A, quantity, index, counts=counts)


#: RELION's applyFscWeighting zeroes every shell from the first one whose FSC is below this
RELION_ZERO_BELOW_FSC = 1e-4


def relion_last_weighted_shell(fsc) -> int:
    """Last shell before the first shell (from shell 1 on) whose FSC is below 1e-4 (RELION's ``ires_max``)."""
    c = np.asarray(fsc, float)
    below = np.nonzero(~(c[1:] >= RELION_ZERO_BELOW_FSC))[0]  # NaN counts as below
    return int(below[0]) if below.size else len(c) - 1


def fsc_weighted_curve(ft: np.ndarray, shape_real, pixel_size_A: float, fsc, quantity: str = "amplitude",
                       index=None) -> GuinierCurve:
    """Guinier curve of ``ft`` after RELION's FSC weighting: ``sqrt(2F/(1+F))`` per shell, 0 from the first
    shell with F < 1e-4 on (and for F <= 0); shells that end up empty have ``y = NaN`` (RELION: -99, weight 0)."""
    n = int(shape_real[0])
    if index is None:
        index = shell_index(shape_real)
    c = np.asarray(fsc, float)
    w = np.zeros(n // 2 + 2, dtype=np.float32)  # last entry: the corners beyond Nyquist
    last = relion_last_weighted_shell(c)
    f = np.clip(c[: last + 1], 0.0, None)
    w[: last + 1] = np.sqrt(2 * f / (1 + f))
    w[0] = 1.0
    weighted = ft * w[index]
    return guinier_curve(weighted, shape_real, pixel_size_A, quantity, index)


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
        last = relion_last_weighted_shell(c)
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
