"""Fourier shell correlation of two half maps: the no-mask, spherical, loose, tight and corrected curves.

Definitions (REFERENCE.md "Fourier shells and FSC"):

- ``FSC(i) = sum Re(F1 conj F2) / sqrt(sum |F1|^2 * sum |F2|^2)`` over the coefficients of shell
  ``i`` of the half (r2c) transform (:mod:`napari_cryodiag.compute.fourier`); the DC shell is 1.
- Resolution at a threshold: ``shell_edge_A`` is RELION's "last shell before the first drop"
  (no interpolation); ``interpolated_A`` interpolates linearly in frequency between the two shells
  around the crossing. A curve that never drops is "Nyquist-limited" (resolution = Nyquist).
- Corrected FSC (Chen et al. 2013 eq. 4): ``(FSC_t - FSC_n) / (1 - FSC_n)`` where ``FSC_n`` is the
  FSC of the phase-randomised half maps under the same mask; below the randomisation shell (plus
  ``wait_shells``: 0 as cryoSPARC, 2 as RELION) the corrected curve is the masked one.
- Randomisation start (``randomise_from``): ``"tight75"`` (default; 75 % of the frequency where
  the tight curve crosses 0.143, the cryoSPARC guide's rule), ``"relion"`` (first shell where
  the unmasked FSC < 0.8, and RELION's convention of what lies beyond it: ``|k| >= shell``
  rather than ``round(|k|) >= shell``, see :mod:`.phase_randomisation`), ``"nomask143"`` (first
  shell where the no-mask FSC < 0.143) or a number in Å.

Work is float32/complex64; the shell index is built once per box and shared by every curve; the
half maps' transforms are cached by :class:`HalfMaps` so that a new mask only costs its two
masked transforms (the widget's "what-if" mode).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np

from ...errors import CryodiagInputError
from ..arrays import arrays_equal, count_nonfinite
from ..fourier import (
    foldable,
    folded_shell_sums,
    irfftn,
    irfftn_inplace,
    n_shells,
    padded_real,
    rfftn,
    rfftn_inplace,
    shell_counts,
    shell_frequencies_invA,
    shell_index,
    shell_means,
    shell_means_of_average,
)
from ..progress import run_steps
from .masks import AutoMasks, MaskParams, check_user_mask, cosine_edge
from .phase_randomisation import randomise_phases

THRESHOLDS = (0.143, 0.5)
#: peak memory of the whole FSC run (five curves + corrected + Guinier), in float32 copies of one half map
MEMORY_FACTOR = 8.0
RANDOMISE_RULES = ("tight75", "relion", "nomask143")


# --------------------------------------------------------------------------- inputs


def check_half_maps(half1, half2, pixel_size1_A=None, pixel_size2_A=None, path1=None, path2=None, *, rtol=1e-3,
                    finite=(False, False)):
    """Raise :class:`CryodiagInputError` naming both files when the half maps cannot be compared.

    Checks: 3D, cubic, same shape, finite values, same voxel size (relative tolerance ``rtol``).
    ``finite``: per map, whether it is known to hold no NaN/inf (read by ``read_map``, which
    refuses them, or checked already): its voxels are not counted again (a full pass over a map).
    Returns the common voxel size (Å) or ``None`` when neither is known.
    """
    a, b = np.asarray(half1), np.asarray(half2)
    names = f"{path1 or 'half map 1'} and {path2 or 'half map 2'}"
    where = None if path1 is None and path2 is None else f"{path1}, {path2}"
    if a.ndim != 3 or b.ndim != 3:
        raise CryodiagInputError(f"half maps must be 3D volumes: shapes {a.shape} and {b.shape} ({names})", where)
    if a.shape != b.shape:
        raise CryodiagInputError(
            f"half maps are on different grids: {names} have shapes {a.shape} and {b.shape}", where
        )
    if len(set(a.shape)) != 1:
        raise CryodiagInputError(f"FSC needs cubic boxes; {names} have shape {a.shape}", where)
    def known(v):  # None or all zero: unknown
        return None if v is None or not np.any(np.ravel(v)) else np.ravel(v).astype(float)

    s1, s2 = known(pixel_size1_A), known(pixel_size2_A)
    for s, p in ((s1, path1), (s2, path2)):
        if s is not None and (np.ptp(s) > rtol * s.max()):
            raise CryodiagInputError(f"voxel size differs between axes {tuple(s)}; FSC needs cubic voxels", p)
    if s1 is not None and s2 is not None and abs(s1[0] - s2[0]) > rtol * max(s1[0], s2[0]):
        raise CryodiagInputError(
            f"half maps have different voxel sizes: {names} have {s1[0]:.4f} Å and {s2[0]:.4f} Å", where
        )
    for arr, p, known_finite in ((a, path1, finite[0]), (b, path2, finite[1])):
        if known_finite:
            continue
        bad = count_nonfinite(arr)
        if bad:
            raise CryodiagInputError(f"half map has {bad} NaN or infinite voxels", p)
    if s1 is not None:
        return float(s1[0])
    return None if s2 is None else float(s2[0])


def check_not_identical(half1, half2, path1=None, path2=None) -> None:
    """Refuse two identical half maps (the same file twice?): their FSC is 1 at every shell."""
    if arrays_equal(half1, half2):
        names = f"{path1 or 'half map 1'} and {path2 or 'half map 2'}"
        raise CryodiagInputError(
            f"the two half maps are identical ({names}): the same file twice? An FSC of a map with itself is 1 "
            "at every shell and says nothing about resolution", None if path1 is None else f"{path1}, {path2}")


def check_cubic(volume, path=None) -> None:
    """Refuse (naming ``path``) a volume that is not a cubic 3D box."""
    shape = np.shape(volume)
    if len(shape) != 3 or len(set(shape)) != 1:
        raise CryodiagInputError(f"needs a cubic 3D box, the map has shape {tuple(shape)} (z, y, x)", path)


# --------------------------------------------------------------------------- curves and resolutions


#: elements per slab in the shell sums: small enough for the temporaries to stay in cache
SLAB_ELEMENTS = 1 << 16


def shell_sums_fsc(f1: np.ndarray, f2: np.ndarray, index: np.ndarray, n: int):
    """``(sum Re(F1 conj F2), sum |F1|^2, sum |F2|^2)`` per shell (float64), slab by slab.

    Same sums as :func:`napari_cryodiag.compute.fourier.shell_sums`. On a cubic r2c transform the
    shell index of plane ``z`` equals that of plane ``n - z``, and within a plane row ``y`` equals
    row ``n - y`` (``|k|`` depends on ``k^2`` only): the (float32) products of mirrored planes and
    rows are added first, so that ``bincount`` (float64) runs over a quarter of the coefficients.
    The same sums up to float32 rounding of those additions (~1e-8 relative).
    """
    if not foldable(f1.shape, index):
        return _shell_sums_fsc_rows(f1, f2, index, n)
    def fill(z0, z1, out, tmp):
        """The three products of planes z0:z1: cross, |F1|^2, |F2|^2 (float32, as before)."""
        a, b = f1[z0:z1], f2[z0:z1]
        ar, ai, br, bi = a.real, a.imag, b.real, b.imag
        np.multiply(ar, br, out=out[0])
        out[0] += np.multiply(ai, bi, out=tmp)
        np.multiply(ar, ar, out=out[1])
        out[1] += np.multiply(ai, ai, out=tmp)
        np.multiply(br, br, out=out[2])
        out[2] += np.multiply(bi, bi, out=tmp)

    num, s1, s2 = folded_shell_sums(fill, 3, f1.shape, index, n)
    return num, s1, s2


def _shell_sums_fsc_rows(f1: np.ndarray, f2: np.ndarray, index: np.ndarray, n: int):
    """:func:`shell_sums_fsc` without folding (any shape): products slab by slab, in cache."""
    m = n_shells(n)
    num = np.zeros(m + 1)
    s1 = np.zeros(m + 1)
    s2 = np.zeros(m + 1)
    plane = int(np.prod(f1.shape[1:]))
    step = max(1, SLAB_ELEMENTS // max(plane, 1))
    for z0 in range(0, f1.shape[0], step):
        a = f1[z0 : z0 + step]
        b = f2[z0 : z0 + step]
        ix = index[z0 : z0 + step].astype(np.intp).ravel()
        ar, ai, br, bi = a.real, a.imag, b.real, b.imag
        c = ar * br
        c += ai * bi
        num += np.bincount(ix, weights=c.ravel(), minlength=m + 1)
        np.multiply(ar, ar, out=c)
        c += ai * ai
        s1 += np.bincount(ix, weights=c.ravel(), minlength=m + 1)
        np.multiply(br, br, out=c)
        c += bi * bi
        s2 += np.bincount(ix, weights=c.ravel(), minlength=m + 1)
    return num[:m], s1[:m], s2[:m]


def fsc_from_sums(num: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """FSC per shell from :func:`shell_sums_fsc`; DC shell set to 1, empty shells 0."""
    den = np.sqrt(p1 * p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    out[0] = 1.0
    return out


def fsc_from_transforms(f1: np.ndarray, f2: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """FSC per shell (0..n//2) from two half transforms and the shell index; DC shell set to 1."""
    return fsc_from_sums(*shell_sums_fsc(f1, f2, index, n))


def shell_spectra(num: np.ndarray, p1: np.ndarray, p2: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-shell means of the half maps' cross power (the signal's power) and of their
    uncorrelated power, ``(|F1|^2 + |F2|^2)/2 - Re(F1 conj F2)`` (the noise's power)."""
    c = np.maximum(np.asarray(counts, float), 1)
    return {"signal": num / c, "noise": (0.5 * (p1 + p2) - num) / c}


def fsc(half1: np.ndarray, half2: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """FSC of two cubic half maps (optionally both multiplied by ``mask``), shells 0..n//2."""
    a = np.asarray(half1, np.float32)
    b = np.asarray(half2, np.float32)
    if mask is not None:
        a, b = a * mask, b * mask
    n = a.shape[0]
    return fsc_from_transforms(rfftn(a), rfftn(b), shell_index(a.shape), n)


@dataclass
class Resolution:
    """Where a curve crosses ``threshold``."""

    threshold: float
    shell: int  #: last shell at or above the threshold before the first drop (RELION's rule)
    shell_edge_A: float  #: resolution of that shell (Å)
    interpolated_A: float  #: linear interpolation in frequency between the shells around the crossing
    nyquist_limited: bool  #: the curve never drops below the threshold

    def to_dict(self) -> dict:
        return asdict(self)


def resolution_at(curve: np.ndarray, n: int, pixel_size_A: float, threshold: float = 0.143) -> Resolution:
    """Resolution where ``curve`` (shells 0..n//2) first drops below ``threshold`` (from shell 1 on)."""
    c = np.asarray(curve, dtype=float)
    freq = shell_frequencies_invA(n, pixel_size_A)
    below = np.nonzero(c[1:] < threshold)[0]
    if below.size == 0:
        last = len(c) - 1
        res = 1.0 / freq[last]
        return Resolution(threshold, last, res, res, True)
    i = int(below[0]) + 1  # first shell below
    prev = i - 1
    if prev == 0:
        return Resolution(threshold, 0, float("inf"), float("inf"), False)
    t = (c[prev] - threshold) / (c[prev] - c[i])
    f = freq[prev] + t * (freq[i] - freq[prev])
    return Resolution(threshold, prev, float(1.0 / freq[prev]), float(1.0 / f), False)


def corrected_fsc(fsc_masked: np.ndarray, fsc_randomised: np.ndarray, randomise_shell: int, wait_shells: int = 0) -> np.ndarray:
    """Chen et al. (2013) eq. 4: ``(FSC_t - FSC_n) / (1 - FSC_n)`` from ``randomise_shell + wait_shells`` on.

    Shells before that keep the masked value. ``wait_shells=2`` reproduces RELION's postprocess.
    """
    t = np.asarray(fsc_masked, dtype=float)
    r = np.asarray(fsc_randomised, dtype=float)
    out = t.copy()
    i0 = max(int(randomise_shell) + int(wait_shells), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = 1.0 - r[i0:]
        val = np.where(np.abs(denom) > 1e-12, (t[i0:] - r[i0:]) / np.where(np.abs(denom) > 1e-12, denom, 1.0), 0.0)
    out[i0:] = val
    return out


def randomisation_shell(
    rule,
    n: int,
    pixel_size_A: float,
    *,
    fsc_tight: np.ndarray | None = None,
    fsc_unmasked: np.ndarray | None = None,
) -> int:
    """First randomised shell for ``rule`` (``"tight75"``, ``"relion"``, ``"nomask143"`` or Å as a number/str)."""
    m = n_shells(n)
    if isinstance(rule, str) and rule not in RANDOMISE_RULES:
        try:
            rule = float(rule)
        except ValueError:
            raise CryodiagInputError(
                f"unknown phase-randomisation rule {rule!r}; use one of {RANDOMISE_RULES} or a resolution in Å"
            ) from None
    if rule == "tight75":
        if fsc_tight is None:
            raise ValueError("tight75 needs the tight curve")
        r = resolution_at(fsc_tight, n, pixel_size_A, 0.143)
        f = 1.0 / r.interpolated_A if np.isfinite(r.interpolated_A) else 0.0
        shell = int(round(0.75 * f * n * pixel_size_A))
    elif rule == "relion":
        if fsc_unmasked is None:
            raise ValueError("relion rule needs the unmasked curve")
        below = np.nonzero(np.asarray(fsc_unmasked)[1:] < 0.8)[0]
        shell = int(below[0]) + 1 if below.size else m - 1
    elif rule == "nomask143":
        if fsc_unmasked is None:
            raise ValueError("nomask143 needs the unmasked curve")
        below = np.nonzero(np.asarray(fsc_unmasked)[1:] < 0.143)[0]
        shell = int(below[0]) + 1 if below.size else m - 1
    else:
        res_A = float(rule)
        if res_A <= 0:
            raise CryodiagInputError(f"randomisation resolution must be positive, got {res_A} Å")
        shell = int(round(n * pixel_size_A / res_A))
    return int(min(max(shell, 1), m - 1))


def randomisation_convention(rule) -> str:
    """``"radius"`` (RELION's ``|k| >= shell``) for the ``"relion"`` rule, else ``"shell"`` (``round(|k|) >= shell``)."""
    return "radius" if rule == "relion" else "shell"


RANDOMISE_CONVENTION_TEXT = {
    "shell": "coefficients with round(|k|) >= shell randomised (the whole shell)",
    "radius": "coefficients with |k| >= shell randomised (RELION's randomizePhasesBeyond: the outer half of the shell)",
}


# --------------------------------------------------------------------------- cached half maps


class HalfMaps:
    """Two half maps with their transforms, shell index and average cached.

    Every curve of the family is computed through this object, so a mask change (or a new
    randomisation shell) recomputes only the transforms it needs.
    """

    def __init__(self, half1, half2, pixel_size_A: float, path1=None, path2=None, *, lean: bool = False,
                 checked: bool = False):
        """``lean=True`` (one-shot runs such as the command line): :func:`iter_fsc_family` computes
        the masked curves before the half maps' transforms exist, drops each automatic mask after its
        curve, and frees the real half maps once only the transforms are needed
        (:meth:`release_real`), so that a 512³ run stays within ~7 map sizes; a lean object cannot
        recompute a masked curve. ``checked=True``: the maps were found free of NaN/inf already
        (:func:`napari_cryodiag.workflows.maps.load_half_maps`): not counted again."""
        check_half_maps(half1, half2, path1=path1, path2=path2, finite=(checked, checked))
        if not pixel_size_A or pixel_size_A <= 0:
            raise CryodiagInputError("voxel size unknown (0 in the header); give it explicitly", path1)
        self.half1 = np.asarray(half1, dtype=np.float32)
        self.half2 = np.asarray(half2, dtype=np.float32)
        self.shape = self.half1.shape
        self.n = int(self.shape[0])
        self.pixel_size_A = float(pixel_size_A)
        self.index = shell_index(self.shape)
        self.counts = shell_counts(self.index, self.n)
        self.frequency_invA = shell_frequencies_invA(self.n, self.pixel_size_A)
        self._f1 = self._f2 = None
        self._unmasked = None
        self._masked: dict[int, tuple] = {}
        self._average_means: dict[int, tuple] = {}
        # two complex work arrays: each masked product is formed in one's padded real view and
        # transformed over itself (no real work array), from curve to curve
        self._g = None
        self.lean = bool(lean)

    def _real(self):
        if self.half1 is None:
            raise RuntimeError("the real half maps were released (lean run): recompute from the files")
        return self.half1, self.half2

    @property
    def transforms(self):
        if self._f1 is None:
            h1, h2 = self._real()
            g, self._g = self._g, None  # the masked curves' work arrays become the transforms
            self._f1 = rfftn(h1, out=None if g is None else g[0])
            self._f2 = rfftn(h2, out=None if g is None else g[1])
        return self._f1, self._f2

    def release_real(self) -> None:
        """Keep only the transforms: compute them if needed, then free the real half maps."""
        _ = self.transforms  # computed now (a property)
        self.half1 = self.half2 = None

    def average_ft(self) -> np.ndarray:
        f1, f2 = self.transforms
        out = np.add(f1, f2)
        out *= np.float32(0.5)  # in place: the same numbers as (f1 + f2) * 0.5, one temporary fewer
        return out

    def average(self, out: np.ndarray | None = None) -> np.ndarray:
        """The half-map average (a new array, or written into ``out``)."""
        h1, h2 = self._real()
        out = np.add(h1, h2, out=out)
        out *= np.float32(0.5)  # in place: the same numbers as (h1 + h2) * 0.5
        return out

    def _transform_work(self) -> tuple[np.ndarray, np.ndarray]:
        """Two complex64 arrays of the r2c shape, where every masked product is formed
        (:func:`padded_real`) and transformed in place in turn: a transform into an array already in
        memory costs no page faults (a new 512³ one ~0.3 s of system time, several seconds on a
        virtual machine whose host takes freed memory back). Freed by :meth:`free_work` (or taken
        over by :attr:`transforms`)."""
        if self._g is None:
            self._g = (np.empty(self.index.shape, np.complex64), np.empty(self.index.shape, np.complex64))
        return self._g

    def free_work(self) -> None:
        """Free the work arrays (the cached transforms and curves stay)."""
        self._g = None

    def masked_average_means(self, mask: np.ndarray) -> dict:
        """Per-shell means of |F|^2 and |F| of the half-map average times ``mask`` (cached per mask):
        what the Guinier plot of the masked average needs, kept after :meth:`release_real`."""
        hit = self._average_means.get(id(mask))
        if hit is not None and hit[0] is mask:
            return hit[1]
        # during the family's run in a work array (no new array), else in a new one
        ft = self.masked_average_transform(mask, out=self._g[0] if self._g is not None else None)
        means = shell_means(ft, self.index, self.n, counts=self.counts)
        self._average_means[id(mask)] = (mask, means)
        return means

    def masked_average_transform(self, mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The r2c transform of the half-map average times ``mask`` (written into ``out``, a
        complex64 array of the r2c shape, when given). After :meth:`release_real` the average
        comes from the transforms (one inverse FFT)."""
        g = np.empty(self.index.shape, np.complex64) if out is None else out
        buf = padded_real(g, self.shape)
        if self.half1 is not None:
            np.add(self.half1, self.half2, out=buf)
            buf *= np.float32(0.5)
        else:
            buf[...] = irfftn(self.average_ft(), self.shape, overwrite=True)
        buf *= mask
        return rfftn_inplace(g, self.shape)

    def masked_fsc_and_spectra(self, mask: np.ndarray, *, average_means: bool = False):
        """FSC and :func:`shell_spectra` of the half maps times ``mask`` (not cached).

        ``mask`` may live in the padded real view of the second work array (:func:`iter_fsc_family`
        makes masks it does not keep there): each voxel is read before the product overwrites it.
        ``average_means=True``: the masked average's per-shell means (:meth:`masked_average_means`)
        are taken from the two masked transforms on the way and cached for ``mask``, with no
        transform of their own."""
        h1, h2 = self._real()
        g1, g2 = self._transform_work()
        np.multiply(h1, mask, out=padded_real(g1, self.shape))
        rfftn_inplace(g1, self.shape)
        np.multiply(h2, mask, out=padded_real(g2, self.shape))
        rfftn_inplace(g2, self.shape)
        sums = shell_sums_fsc(g1, g2, self.index, self.n)
        if average_means:
            self._average_means[id(mask)] = (mask, shell_means_of_average(g1, g2, self.index, self.n,
                                                                          counts=self.counts))
        return fsc_from_sums(*sums), shell_spectra(*sums, self.counts)

    def fsc_unmasked(self) -> np.ndarray:
        if self._unmasked is None:
            f1, f2 = self.transforms
            sums = shell_sums_fsc(f1, f2, self.index, self.n)
            self._unmasked = (fsc_from_sums(*sums), shell_spectra(*sums, self.counts))
        return self._unmasked[0]

    def fsc_masked(self, mask: np.ndarray, *, average_means: bool = False) -> np.ndarray:
        """FSC of the half maps multiplied by ``mask`` (cached per mask object); ``average_means``
        as :meth:`masked_fsc_and_spectra`."""
        key = id(mask)
        hit = self._masked.get(key)
        if hit is not None and hit[0] is mask:
            return hit[1]
        curve, spectra = self.masked_fsc_and_spectra(mask, average_means=average_means)
        self._masked[key] = (mask, curve, spectra)
        return curve

    def spectra(self, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Signal and noise power per shell (:func:`shell_spectra`) of the unmasked or masked half maps."""
        if mask is None:
            self.fsc_unmasked()
            return self._unmasked[1]
        self.fsc_masked(mask)
        return self._masked[id(mask)][2]

    def fsc_randomised(self, mask: np.ndarray, start_shell: int, seed=0, convention: str = "shell") -> np.ndarray:
        """Masked FSC of the half maps after phase randomisation from ``start_shell`` (independent per half).

        ``convention``: which coefficients are beyond the shell (:mod:`.phase_randomisation`).
        """
        f1, f2 = self.transforms
        rng = np.random.default_rng(seed)
        gs = []
        for f in (f1, f2):
            # each randomised transform goes back to real space over itself, is masked there, and is
            # transformed forward over itself again (no other map-sized array)
            g = randomise_phases(f, self.shape, start_shell, rng, self.index, convention)
            r = irfftn_inplace(g, self.shape)
            r *= mask
            gs.append(rfftn_inplace(g, self.shape))
        return fsc_from_transforms(gs[0], gs[1], self.index, self.n)


# --------------------------------------------------------------------------- the family


@dataclass
class FSCResult:
    """All FSC curves of a pair of half maps, with resolutions and the choices made."""

    box: int
    pixel_size_A: float
    frequency_invA: np.ndarray
    shell_counts: np.ndarray
    curves: dict[str, np.ndarray]
    resolutions: dict[str, dict[str, Resolution]]
    randomise_shell: int
    randomise_rule: str
    corrected_mask: str
    wait_shells: int
    seed: int
    mask_params: MaskParams
    masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: which coefficients were randomised: "shell" (round(|k|) >= shell) or "radius" (|k| >= shell, RELION)
    randomise_convention: str = "shell"
    #: per curve ("no_mask", "spherical", ...): per-shell signal and noise power (:func:`shell_spectra`);
    #: empty when the curves came from a file
    spectra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def randomise_from_A(self) -> float:
        return float(self.box * self.pixel_size_A / self.randomise_shell)

    @property
    def nyquist_A(self) -> float:
        return 2.0 * self.pixel_size_A

    @property
    def resolution_A(self) -> float:
        """The headline resolution: the corrected curve at 0.143, interpolated."""
        return self.resolutions["corrected"]["0.143"].interpolated_A

    def resolution(self, curve: str = "corrected", threshold: float = 0.143) -> Resolution:
        return self.resolutions[curve][f"{threshold:g}"]

    def to_dict(self) -> dict:
        """Numbers for JSON (no mask volumes)."""
        return {
            "box": self.box,
            "voxel_size_A": self.pixel_size_A,
            "nyquist_A": self.nyquist_A,
            "shell": np.arange(len(self.frequency_invA)),
            "frequency_invA": self.frequency_invA,
            "shell_counts": self.shell_counts,
            "curves": {k: v for k, v in self.curves.items()},
            "resolutions": {c: {t: r.to_dict() for t, r in d.items()} for c, d in self.resolutions.items()},
            "resolution_convention": "shell_edge_A: last shell before the first drop below the threshold "
            "(RELION); interpolated_A: linear in frequency between the shells around the crossing",
            "randomisation": {
                "rule": self.randomise_rule,
                "shell": self.randomise_shell,
                "from_A": self.randomise_from_A,
                "mask": self.corrected_mask,
                "wait_shells": self.wait_shells,
                "seed": self.seed,
                "convention": RANDOMISE_CONVENTION_TEXT[self.randomise_convention],
            },
            "mask_params": self.mask_params.to_dict(),
        }


def fsc_result_from_relion(pp: dict, path=None) -> FSCResult:
    """An :class:`FSCResult` from a RELION ``postprocess.star`` (as read by ``io.star.read_postprocess``).

    Curves: ``no_mask`` (unmasked maps), ``user`` (masked maps: RELION's mask), ``phase_randomised``
    and ``corrected``; box = 2 (shells - 1), voxel size from the last shell's frequency, the
    randomisation shell from ``rlnRandomiseFrom``, ``wait_shells=2`` (RELION's rule).
    """
    t = pp["fsc"]
    need = {
        "no_mask": "rlnFourierShellCorrelationUnmaskedMaps",
        "user": "rlnFourierShellCorrelationMaskedMaps",
        "phase_randomised": "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps",
        "corrected": "rlnFourierShellCorrelationCorrected",
    }
    missing = [c for c in need.values() if c not in t]
    if missing:
        raise CryodiagInputError(f"postprocess.star lacks columns {missing}", path or pp.get("path"))
    curves = {k: t[c].to_numpy(float) for k, c in need.items()}
    m = len(t)
    if m < 3:
        raise CryodiagInputError(f"postprocess.star has {m} FSC shells; a curve needs at least 3 (truncated file?)",
                                 path or pp.get("path"))
    for k, c in need.items():
        bad = np.flatnonzero(~np.isfinite(curves[k][1:])) + 1  # RELION writes a placeholder at shell 0
        if bad.size:
            shells = ", ".join(str(int(i)) for i in bad[:10]) + (" ..." if bad.size > 10 else "")
            raise CryodiagInputError(f"column {c} has {bad.size} NaN or infinite shells ({shells}); cannot read "
                                     "resolutions from it", path or pp.get("path"))
    box = 2 * (m - 1)
    if "rlnAngstromResolution" in t:  # written with more significant digits at Nyquist
        apix = float(t["rlnAngstromResolution"].to_numpy(float)[-1]) / 2.0
    else:
        apix = 1.0 / (2.0 * float(t["rlnResolution"].to_numpy(float)[-1]))
    frequency = np.arange(m) / (box * apix)  # RELION writes a placeholder at shell 0
    rand_A = float(pp.get("general", {}).get("rlnRandomiseFrom", 0) or 0)
    shell = int(round(box * apix / rand_A)) if rand_A > 0 else 1
    resolutions = {k: _resolutions(v, box, apix) for k, v in curves.items() if k != "phase_randomised"}
    counts = np.round(2 * np.pi * np.maximum(np.arange(m), 0.5) ** 2).astype(int)  # approx. half-shell sizes
    return FSCResult(box=box, pixel_size_A=apix, frequency_invA=frequency, shell_counts=counts, curves=curves,
                     resolutions=resolutions, randomise_shell=shell, randomise_rule="relion (from file)",
                     corrected_mask="user", wait_shells=2, seed=-1, mask_params=MaskParams(), masks={},
                     randomise_convention="radius")


def _resolutions(curve, n, apix):
    return {f"{t:g}": resolution_at(curve, n, apix, t) for t in THRESHOLDS}


def iter_fsc_family(
    half1,
    half2,
    pixel_size_A: float,
    *,
    mask: np.ndarray | None = None,
    mask_path=None,
    mask_params: MaskParams = MaskParams(),
    randomise_from="tight75",
    wait_shells: int = 0,
    seed: int = 0,
    halfmaps: HalfMaps | None = None,
    masks: dict | None = None,
    keep_masks=None,
) -> Iterator[tuple[int, int]]:
    """Generator: yields ``(done, total)`` progress and returns an :class:`FSCResult`.

    ``mask`` is an optional user mask (same grid, values in [0, 1]); with it the corrected curve
    uses it (as RELION does) and it is reported as the ``"user"`` curve. Pass ``halfmaps`` (and
    ``masks``) to reuse transforms/masks computed before. ``keep_masks``: names of the masks to
    keep in the result (default: all; the corrected curve's mask is always kept); the others are
    freed as soon as their curve is computed. A lean ``halfmaps`` (:class:`HalfMaps`) also frees
    its real maps on the way (see there).
    """
    hm = halfmaps if halfmaps is not None else HalfMaps(half1, half2, pixel_size_A)
    n, apix = hm.n, hm.pixel_size_A
    total = 6 + (mask is not None)  # the yields after the first: masks, 3 curves, [user], no mask, corrected
    done = 0
    user = None if mask is None else check_user_mask(mask, hm.shape, mask_path)
    cmask_name = "user" if user is not None else "tight"
    keep = {"spherical", "loose", "tight", "user"} if keep_masks is None else set(keep_masks)
    keep.add(cmask_name)
    yield done, total
    curves: dict[str, np.ndarray] = {}
    spectra: dict[str, dict] = {}
    maker = None
    if masks is None:
        # the threshold's low-pass needs only the low-frequency corner of the average's transform:
        # a pruned forward transform of the average gives it before any full transform exists
        # (the average is formed in the padded real view of a work array of the masked transforms,
        # and low-passed over itself there: memory the first masked curve then finds in place)
        work = padded_real(hm._transform_work()[0], hm.shape)
        maker = AutoMasks(hm.average(out=work), apix, mask_params, which=("spherical", "loose", "tight"),
                          half_fts=None if hm.lean or hm._f1 is None else hm.transforms, scratch=True)
    done += 1
    yield done, total
    kept: dict[str, np.ndarray] = {}
    for name in ("spherical", "loose", "tight"):
        if maker is not None and name not in keep:
            # a mask not kept is made in the padded real view of the second work transform: the
            # curve's second product (half 2 x mask) then overwrites it in place, so it needs no
            # map of its own (with a user mask, none of the automatic masks has one)
            m = maker.make(name, out=padded_real(hm._transform_work()[1], hm.shape))
        else:
            m = maker.make(name) if maker is not None else masks[name]
        if hm.lean or maker is not None:
            # the corrected curve's mask: the Guinier plot's masked average from the same transforms
            curves[name], spectra[name] = hm.masked_fsc_and_spectra(m, average_means=name == cmask_name)
        else:
            curves[name] = hm.fsc_masked(m, average_means=name == cmask_name)
            spectra[name] = hm.spectra(m)
        if name in keep:
            kept[name] = m
        del m
        done += 1
        yield done, total
    maker = None  # frees the distance transform
    if user is not None:
        kept["user"] = user
        curves["user"], spectra["user"] = hm.masked_fsc_and_spectra(user, average_means=True)
        done += 1
        yield done, total
    if hm.lean:  # what the Guinier plot needs from the real maps (the corrected curve's mask)
        hm.masked_average_means(kept[cmask_name])
    curves = {"no_mask": hm.fsc_unmasked(), **curves}
    spectra = {"no_mask": hm.spectra(), **spectra}
    if hm.lean:  # from here on only the transforms are needed
        hm.release_real()
    done += 1
    yield done, total
    cmask = kept[cmask_name]
    rule = randomise_from if isinstance(randomise_from, str) and randomise_from in RANDOMISE_RULES else str(randomise_from)
    shell = randomisation_shell(randomise_from, n, apix, fsc_tight=curves[cmask_name], fsc_unmasked=curves["no_mask"])
    convention = randomisation_convention(randomise_from)
    curves["phase_randomised"] = hm.fsc_randomised(cmask, shell, seed, convention)
    curves["corrected"] = corrected_fsc(curves[cmask_name], curves["phase_randomised"], shell, wait_shells)
    hm.free_work()
    done += 1
    yield done, total
    resolutions = {k: _resolutions(v, n, apix) for k, v in curves.items() if k != "phase_randomised"}
    return FSCResult(
        box=n,
        pixel_size_A=apix,
        frequency_invA=hm.frequency_invA,
        shell_counts=hm.counts,
        curves=curves,
        resolutions=resolutions,
        randomise_shell=shell,
        randomise_rule=rule,
        corrected_mask=cmask_name,
        wait_shells=wait_shells,
        seed=seed,
        mask_params=mask_params,
        masks=kept,
        randomise_convention=convention,
        spectra=spectra,
    )


def fsc_family(half1, half2, pixel_size_A: float, *, progress=None, **kwargs) -> FSCResult:
    """All curves (no mask, spherical, loose, tight, [user], phase-randomised, corrected) at once.

    Keyword arguments as :func:`iter_fsc_family`; ``progress(done, total)`` is called per step.
    """
    return run_steps(iter_fsc_family(half1, half2, pixel_size_A, **kwargs), progress)


__all__ = [
    "FSCResult",
    "HalfMaps",
    "MaskParams",
    "Resolution",
    "check_half_maps",
    "corrected_fsc",
    "cosine_edge",
    "fsc",
    "fsc_family",
    "iter_fsc_family",
    "fsc_from_transforms",
    "randomisation_shell",
    "resolution_at",
]
