"""Diagnosis of FSC curve shapes: what limits the map, with a one-line explanation and advice.

Flags (after the cryoSPARC guide's "Common CryoSPARC Plots" and RELION's postprocess checks):

========================  =========================================================================
``identical``             the no-mask FSC is 1 at every shell: the half maps are the same map
                          (then no other flag: their advice would be misleading)
``nyquist``               the reported curve stays above 0.143 up to Nyquist
``duplicates``            the no-mask curve stays positive to Nyquist with a long tail
``oscillation``           two or more prominent dips (CTF parameters: pixel size, voltage, Cs)
``micelle_dip``           a single dip with its minimum between about 10 and 4.5 Å, caused by extra
                          uncorrelated power (see below)
``mask_too_tight``        the corrected curve departs from the curve of its mask
``unmasked_better``       RELION: the unmasked curve reaches further than the corrected one
``randomised_high``       RELION: phase-randomised FSC > 0.1 at the reported resolution
========================  =========================================================================

Each rule's numbers are module constants and :class:`DiagnosisParams`, so they can be tuned and
reported. Shape flags (tail, dips) are read on the no-mask curve, which carries no mask-induced
correlation, and on the curve of the corrected mask.

A dip in the FSC between ~9 and ~5 Å is not by itself a micelle: the power spectrum of every
protein map has a minimum near 6–7 Å (between the ~10 Å hump of packed helices and sheets and the
~4.5 Å hump of strands and helix turns), so half maps of a soluble protein with plain white noise
dip there too. The SNR per shell is ``FSC / (1 - FSC)`` = signal power / noise power; the half
maps give both (cross power, and the uncorrelated rest: ``FSCResult.spectra``). A disordered
micelle adds uncorrelated power, so ``micelle_dip`` needs the noise power at the dip to rise above
the line between the dip's shoulders (in log) by at least ``dip_noise_share`` of the SNR's drop;
a dip of the signal's own spectrum leaves the noise flat. Curves read from a file have no spectra:
there the flag rests on the shape alone (``details["basis"]`` says which).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from .fsc import FSCResult


@dataclass(frozen=True)
class DiagnosisParams:
    tail_fraction: float = 0.2  #: outer fraction of shells (before Nyquist) that makes the "tail"
    tail_min_fsc: float = 0.05  #: mean no-mask FSC in the tail above this (and above 3 sigma) = positive tail
    tail_positive_fraction: float = 0.9  #: share of tail shells above 3 sigma
    oscillation_prominence: float = 0.2  #: a dip this deep counts towards oscillations
    oscillation_min_dips: int = 2
    dip_prominence: float = 0.1  #: a single dip this deep counts as a micelle dip ...
    dip_range_A: tuple = (10.0, 4.5)  #: ... when its minimum lies in this resolution range ...
    dip_noise_share: float = 0.5  #: ... and extra noise power explains this share of the SNR drop (log)
    mask_deviation: float = 0.1  #: masked - corrected above this ...
    mask_deviation_shells: int = 3  #: ... over this many shells (after the randomisation dip)
    skip_after_randomisation: int = 2  #: shells after the randomisation shell not checked (expected dip)
    randomised_max: float = 0.1  #: RELION's limit for the randomised-phase FSC at the resolution
    unmasked_margin: float = 0.01  #: relative margin for "unmasked reaches further"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Flag:
    code: str
    title: str
    explanation: str
    advice: str
    curve: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def one_line(self) -> str:
        return f"{self.title}: {self.explanation} {self.advice}"


TEXT = {
    "identical": (
        "half maps identical",
        "the no-mask FSC is 1 at every shell, so the two half maps are the same map (the same file given twice, or "
        "a refinement that did not keep its half sets apart); an FSC then says nothing about resolution.",
        "Give the two half maps of one refinement (run_half1_class001_unfil.mrc and run_half2_class001_unfil.mrc).",
    ),
    "nyquist": (
        "FSC above threshold up to Nyquist",
        "the half maps still correlate at the highest frequency the box holds, so resolution is limited by the pixel size.",
        "Re-extract the particles with a larger box (less downsampling) and refine again.",
    ),
    "duplicates": (
        "FSC positive to Nyquist with a long tail",
        "the half maps stay correlated beyond the resolution, which breaks the independence of the half sets; duplicate particles (picks that coincide after alignment) are the usual cause.",
        "Run duplicate-particle removal (cryoSPARC 'Remove Duplicate Particles', 20 Å) and refine again.",
    ),
    "oscillation": (
        "FSC oscillates",
        "repeated dips and recoveries are the mark of systematically wrong CTF parameters.",
        "Check the pixel size, the accelerating voltage and the spherical aberration (Cs).",
    ),
    "micelle_dip": (
        "FSC dip between ~9 and ~5 Å",
        "a dip in this band is expected for membrane proteins: the micelle or nanodisc is disordered relative to the protein.",
        "Usually harmless; a mask that excludes the micelle, or signal subtraction, can help.",
    ),
    "mask_too_tight": (
        "corrected FSC departs from the masked FSC",
        "the phase-randomised half maps still correlate under the mask, so the mask itself creates correlation (too tight or too sharp).",
        "Use a looser mask with a softer edge (more dilation, wider cosine fall-off).",
    ),
    "unmasked_better": (
        "unmasked FSC reaches further than the corrected one (RELION check)",
        "masking should raise the FSC; if it does not, the mask is wrong (misplaced, wrong map, or cutting density).",
        "Check that the mask covers the particle and sits on the same grid as the half maps.",
    ),
    "randomised_high": (
        "phase-randomised FSC above 0.1 at the reported resolution (RELION check)",
        "correlation that survives phase randomisation comes from the mask, so the reported resolution is inflated.",
        "Use a softer, less tight mask; report the corrected curve.",
    ),
}


def _flag(code, curve, **details) -> Flag:
    title, expl, adv = TEXT[code]
    return Flag(code, title, expl, adv, curve, details)


def _prominent_minima(c: np.ndarray, prominence: float):
    """Local minima of ``c`` and their prominences (as ``scipy.signal.find_peaks`` on ``-c``).

    A minimum's prominence is how far the curve must rise, on the lower of its two sides, before
    it meets a deeper point (or the end of the curve). Plateaus count once, at their first shell.
    Kept here to avoid importing scipy.signal (seconds of start-up for the command line).
    """
    c = np.asarray(c, float)
    out_i, out_p = [], []
    n = len(c)
    i = 1
    while i < n - 1:
        if c[i] < c[i - 1]:
            j = i
            while j + 1 < n and c[j + 1] == c[i]:
                j += 1
            if j + 1 < n and c[j + 1] > c[i]:
                left = c[:i][::-1]
                stop = np.nonzero(left < c[i])[0]
                lmax = left[: stop[0]].max() if stop.size else left.max()
                right = c[j + 1 :]
                stop = np.nonzero(right < c[i])[0]
                rmax = right[: stop[0]].max() if stop.size else right.max()
                prom = min(lmax, rmax) - c[i]
                if prom >= prominence:
                    out_i.append(i)
                    out_p.append(prom)
            i = j + 1
        else:
            i += 1
    return np.array(out_i, dtype=int), np.array(out_p, dtype=float)


def _dips(curve: np.ndarray, prominence: float, start: int = 1):
    c = np.asarray(curve, float)[start:]
    idx, prom = _prominent_minima(c, prominence)
    return idx + start, prom


def _noise_excess(curve: np.ndarray, spectra: dict, d: int) -> tuple[float, float]:
    """At dip ``d``: how far ln(noise power) rises above the line between the dip's shoulders, and how
    far ln(SNR) = ln(FSC / (1 - FSC)) falls below it (both in natural log units)."""
    c = np.asarray(curve, float)
    span = max(3, d // 2)
    lo = max(1, d - span)
    left = lo + int(np.argmax(c[lo:d]))
    right = d + 1 + int(np.argmax(c[d + 1 : d + span + 1]))
    t = (d - left) / (right - left)

    def above_line(y):
        return float(y[d] - (y[left] + t * (y[right] - y[left])))

    noise = np.log(np.maximum(np.asarray(spectra["noise"], float), 1e-300))
    fc = np.clip(c, 1e-6, 1 - 1e-6)
    snr = np.log(fc / (1 - fc))
    return above_line(noise), -above_line(snr)


def diagnose(result: FSCResult, params: DiagnosisParams = DiagnosisParams()) -> list[Flag]:
    """Flags for the curves of ``result`` (empty list for a clean case)."""
    flags: list[Flag] = []
    n, apix = result.box, result.pixel_size_A
    res_A = n * apix / np.maximum(np.arange(len(result.frequency_invA)), 1)
    counts = np.maximum(np.asarray(result.shell_counts, float), 1)
    sigma = 1.0 / np.sqrt(counts)
    mask_curve = result.corrected_mask
    reported = result.resolution("corrected", 0.143)
    no_mask = np.asarray(result.curves["no_mask"])
    last = len(no_mask) - 1
    if np.all(no_mask[1:] >= 1 - 1e-6):
        return [_flag("identical", "no_mask", min_fsc=float(no_mask[1:].min()))]

    # above threshold to Nyquist
    if reported.nyquist_limited:
        flags.append(_flag("nyquist", "corrected", fsc_at_nyquist=float(result.curves["corrected"][-1]), nyquist_A=result.nyquist_A))

    # positive tail to Nyquist (no-mask curve)
    nm = result.resolution("no_mask", 0.143)
    if not reported.nyquist_limited and not nm.nyquist_limited:
        t0 = max(nm.shell + 2, int(round(last * (1 - params.tail_fraction))))
        tail = slice(t0, last + 1)
        if t0 <= last - 2:
            above = no_mask[tail] > 3 * sigma[tail]
            mean_tail = float(no_mask[tail].mean())
            if above.mean() >= params.tail_positive_fraction and mean_tail > params.tail_min_fsc:
                flags.append(_flag("duplicates", "no_mask", tail_from_A=float(res_A[t0]), mean_tail_fsc=mean_tail))

    # dips: oscillations or a micelle dip (no-mask curve and the corrected mask's curve)
    osc_found = False
    for name in ("no_mask", mask_curve):
        c = result.curves[name]
        dips, prom = _dips(c, params.oscillation_prominence)
        if len(dips) >= params.oscillation_min_dips:
            flags.append(_flag("oscillation", name, dips_A=[float(res_A[d]) for d in dips], prominences=prom.tolist()))
            osc_found = True
            break
    if not osc_found:
        for name in ("no_mask", mask_curve):
            c = result.curves[name]
            dips, prom = _dips(c, params.dip_prominence)
            hi, lo = params.dip_range_A
            inside = [(d, p) for d, p in zip(dips, prom) if lo <= res_A[d] <= hi]
            if len(dips) == 1 and inside:
                d, p = inside[0]
                spec = result.spectra.get(name)
                if spec is None:
                    flags.append(_flag("micelle_dip", name, dip_A=float(res_A[d]), depth=float(p),
                                       basis="curve shape only (no power spectra)"))
                    break
                excess, drop = _noise_excess(c, spec, d)
                if excess >= params.dip_noise_share * drop:
                    flags.append(_flag("micelle_dip", name, dip_A=float(res_A[d]), depth=float(p),
                                       noise_excess_log=excess, snr_drop_log=drop,
                                       basis="extra uncorrelated power at the dip"))
                    break

    # corrected departing from its masked curve
    masked = np.asarray(result.curves[mask_curve])
    corr = np.asarray(result.curves["corrected"])
    start = result.randomise_shell + result.wait_shells + params.skip_after_randomisation
    end = result.resolution(mask_curve, 0.143).shell
    if end > start:
        dev = masked[start : end + 1] - corr[start : end + 1]
        big = dev > params.mask_deviation
        if big.sum() >= params.mask_deviation_shells:
            persistent = bool(dev[-1] > params.mask_deviation)
            flags.append(
                _flag(
                    "mask_too_tight",
                    "corrected",
                    max_deviation=float(dev.max()),
                    shells_deviating=int(big.sum()),
                    persistent=persistent,
                    severity="strong" if persistent else "slight",
                )
            )

    # RELION: unmasked reaches further than corrected
    if not reported.nyquist_limited and nm.interpolated_A < reported.interpolated_A * (1 - params.unmasked_margin):
        flags.append(_flag("unmasked_better", "no_mask", unmasked_A=nm.interpolated_A, corrected_A=reported.interpolated_A))

    # RELION: randomised-phase FSC at the reported resolution
    # (when the corrected curve drops at the randomisation shell itself, check the first
    # randomised shell: below it the "randomised" curve is just the masked one)
    rshell = min(max(reported.shell, result.randomise_shell + 1), last)
    if rshell > result.randomise_shell:
        val = float(result.curves["phase_randomised"][rshell])
        if val > params.randomised_max:
            flags.append(_flag("randomised_high", "phase_randomised", value=val, at_A=float(res_A[rshell])))
    return flags
