"""Map sharpening, and a validation session that caches what a "what-if" change does not touch.

Sharpening (REFERENCE.md "Guinier plot, B-factor, sharpening") of the half-map average ``F``:

    F_sharp = F * exp(-B s^2 / 4) * w(s) * L(s)

- ``B`` is the sharpening B-factor (negative sharpens; RELION's sign), by default minus the
  fitted Guinier decay;
- ``w(s) = sqrt(2 FSC / (1 + FSC))`` (optional FSC weighting, FSC clipped at 0) and every shell
  from the first one whose FSC is below 1e-4 is set to zero (RELION's ``applyFscWeighting``);
- ``L(s)`` an optional low-pass at ``lowpass_A`` with a raised-cosine edge ``lowpass_edge_shells`` wide.

:class:`ValidationSession` keeps the half maps' transforms, masks, FSC family and Guinier curve:
changing B only re-filters the cached average transform (one inverse FFT); changing the mask
recomputes the masks' transforms but not the half maps'.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from ...errors import CryodiagInputError
from ..fourier import n_shells
from ..fourier import irfftn, rfftn
from ..progress import run_steps
from .fsc import FSCResult, HalfMaps, iter_fsc_family
from .diagnosis import DiagnosisParams, diagnose
from .guinier import GuinierFit, fit_guinier, fsc_weighted_curve, guinier_curve_from_means, guinier_window
from .masks import MaskParams, cosine_edge


@dataclass(frozen=True)
class SharpenParams:
    bfactor_A2: float | None = None  #: sharpening B (negative sharpens); None = minus the fitted decay
    fsc_weighting: bool = True
    zero_below_fsc: float = 1e-4
    lowpass_A: float | None = None
    lowpass_edge_shells: float = 2.0
    apply_mask: bool = False  #: multiply the sharpened map by the corrected curve's mask

    def to_dict(self) -> dict:
        return asdict(self)


def fsc_weight(fsc: np.ndarray) -> np.ndarray:
    """``sqrt(2F / (1 + F))`` per shell, F clipped at 0."""
    f = np.clip(np.asarray(fsc, float), 0.0, 1.0)
    return np.sqrt(2 * f / (1 + f))


def shell_filter(
    n: int,
    pixel_size_A: float,
    fsc: np.ndarray | None = None,
    *,
    fsc_weighting: bool = True,
    zero_below_fsc: float | None = 1e-4,
    lowpass_A: float | None = None,
    lowpass_edge_shells: float = 2.0,
) -> np.ndarray:
    """The per-shell part of the filter (FSC weighting, zeroing, low-pass); length ``n//2 + 2``.

    The extra last entry (0) applies to the corners beyond Nyquist.
    """
    m = n_shells(n)
    w = np.ones(m)
    if fsc is not None:
        c = np.asarray(fsc, float)
        if fsc_weighting:
            w *= fsc_weight(c)
            w[0] = 1.0
        if zero_below_fsc is not None:
            below = np.nonzero(~(c[1:] >= zero_below_fsc))[0]  # RELION: below 1e-4 (NaN too)
            if below.size:
                w[int(below[0]) + 1 :] = 0.0
    if lowpass_A:
        k_cut = n * pixel_size_A / lowpass_A
        w *= cosine_edge(np.arange(m, dtype=float), max(k_cut - lowpass_edge_shells, 0.0), k_cut)
    return np.append(w, 0.0)


#: the largest transform whose work array a caching :class:`Sharpener` keeps between calls
#: (256 MB: up to ~320³; beyond, a what-if step allocates it anew rather than hold it)
WORK_BUFFER_MAX_BYTES = 1 << 28


class Sharpener:
    """Sharpen one map repeatedly: caches its transform and, with ``cache``, the transform times
    the per-shell weights (FSC weighting, zeroing, low-pass) for the last weights used.

    The B envelope ``exp(-B s^2/4)`` with ``s^2 = s_z^2 + s_y^2 + s_x^2`` is the product of one
    factor per axis, so a new B costs two float32 multiplications of the transform and one
    inverse FFT (no exponential, and no shell lookup, per coefficient).
    """

    def __init__(self, ft: np.ndarray, shape_real, pixel_size_A: float, index: np.ndarray, *, cache: bool = True):
        self.ft = ft
        self.shape = tuple(shape_real)
        self.n = int(shape_real[0])
        self.pixel_size_A = float(pixel_size_A)
        self.index = index
        self.cache = cache
        apix = self.pixel_size_A
        #: s^2 along each axis of the r2c layout (1/Å^2)
        self.s2_axes = [np.fft.fftfreq(int(m), d=apix) ** 2 for m in self.shape[:-1]]
        self.s2_axes.append(np.fft.rfftfreq(int(self.shape[-1]), d=apix) ** 2)
        self._weighted = None
        self._weighted_key = None
        self._work = None

    @classmethod
    def from_map(cls, volume, pixel_size_A, *, cache: bool = False):
        from ..fourier import shell_index

        v = np.asarray(volume, np.float32)
        return cls(rfftn(v), v.shape, pixel_size_A, shell_index(v.shape), cache=cache)

    def _shell_weighted(self, shells: np.ndarray) -> np.ndarray:
        """The transform times ``shells[index]`` (complex64): kept for the next B when caching."""
        key = shells.tobytes()
        if self._weighted is not None and key == self._weighted_key:
            return self._weighted
        w = np.multiply(self.ft, shells[self.index], dtype=np.complex64)
        if self.cache:
            self._weighted, self._weighted_key = w, key
        return w

    def envelope_axes(self, bfactor_A2: float) -> list[np.ndarray]:
        """``exp(-B s_axis^2 / 4)`` along each axis (float32); their outer product is the envelope."""
        c = -float(bfactor_A2) / 4.0
        return [np.exp(c * s2).astype(np.float32) for s2 in self.s2_axes]

    def filtered(self, bfactor_A2: float, fsc: np.ndarray | None = None, *, out: np.ndarray | None = None,
                 **filter_kwargs) -> np.ndarray:
        """The transform of the sharpened map (complex64; into ``out`` when given)."""
        shells = shell_filter(self.n, self.pixel_size_A, fsc, **filter_kwargs).astype(np.float32)
        w = self._shell_weighted(shells)
        env = self.envelope_axes(bfactor_A2)
        if out is None:
            out = w if (w is not self._weighted) else np.empty(w.shape, np.complex64)
        # complex64 as float32 pairs (last axis twice as long): the real envelope multiplies both
        # parts, in float32, with contiguous inner loops
        wv = w.view(np.float32)
        ov = out.view(np.float32)
        np.multiply(wv, np.repeat(env[-1], 2), out=ov)
        lead = env[0]
        for e in env[1:-1]:
            lead = np.multiply.outer(lead, e)
        ov *= lead[..., None]
        return out

    def apply(self, bfactor_A2: float, fsc: np.ndarray | None = None, **filter_kwargs) -> np.ndarray:
        """Sharpened (or blurred, for positive B) map, float32."""
        work = None
        if self.cache and self.ft.nbytes <= WORK_BUFFER_MAX_BYTES:
            # the inverse FFT's input, reused from one B to the next (no new pages to fault in)
            if self._work is None:
                self._work = np.empty(self.ft.shape, np.complex64)
            work = self._work
        return irfftn(self.filtered(bfactor_A2, fsc, out=work, **filter_kwargs), self.shape, overwrite=True)


def sharpen_map(volume, pixel_size_A: float, bfactor_A2: float, fsc=None, **filter_kwargs) -> np.ndarray:
    """One-shot sharpening of a map (see module doc)."""
    return Sharpener.from_map(volume, pixel_size_A).apply(bfactor_A2, fsc, **filter_kwargs)


class ValidationSession:
    """FSC family, diagnosis, Guinier fit and sharpening of one pair of half maps, with caching.

    ``iter_compute()`` is a generator (``(done, total)`` progress) for a worker thread.
    """

    def __init__(self, half1, half2, pixel_size_A: float, path1=None, path2=None, *, lean: bool = False,
                 keep_masks=None):
        """``lean=True``: a one-shot run (the command line) that keeps only the masks named in
        ``keep_masks`` (and the corrected curve's) and frees the real half maps on the way
        (:class:`HalfMaps`); a second :meth:`iter_compute` with other FSC settings is then refused."""
        self.halfmaps = HalfMaps(half1, half2, pixel_size_A, path1, path2, lean=lean)
        self.keep_masks = keep_masks
        self.path1 = path1
        self._masks: dict | None = None
        self._mask_params: MaskParams | None = None
        self.fsc: FSCResult | None = None
        self._fsc_key = None
        self._guinier_key = None
        self.guinier_curve = None
        self.guinier: GuinierFit | None = None
        #: why there is no Guinier fit (e.g. a resolution coarser than the window's 10 Å end)
        self.guinier_error: str | None = None
        self.flags = []
        self.guinier_rule = "fsc143"  #: the Guinier window rule of the last compute
        self._sharpener: Sharpener | None = None
        self.sharpened: np.ndarray | None = None
        self.recomputed: list[str] = []  #: what the last call recomputed (for the widget and tests)

    def masks_for(self, params: MaskParams):
        if self._masks is None or params != self._mask_params:
            from .masks import auto_masks

            hm = self.halfmaps
            self._masks = auto_masks(hm.average(), hm.pixel_size_A, params, average_ft=hm.average_ft())
            self._mask_params = params
            self.recomputed.append("masks")
        return self._masks

    def iter_compute(
        self,
        *,
        mask=None,
        mask_path=None,
        mask_params: MaskParams = MaskParams(),
        randomise_from="tight75",
        wait_shells: int = 0,
        seed: int = 0,
        guinier_window_rule="fsc143",
        guinier_quantity: str = "amplitude2",
        diagnosis: DiagnosisParams = DiagnosisParams(),
    ):
        self.recomputed = []
        key = (id(mask), mask_params, str(randomise_from), wait_shells, seed)
        if self.fsc is None or key != self._fsc_key:
            lean = self.halfmaps.lean
            if lean and self.fsc is not None:
                raise RuntimeError("a lean session computes once; make a new one for other FSC settings")
            masks = None if lean else dict(self.masks_for(mask_params))
            self.fsc = yield from iter_fsc_family(
                None, None, self.halfmaps.pixel_size_A, mask=mask, mask_path=mask_path, mask_params=mask_params,
                randomise_from=randomise_from, wait_shells=wait_shells, seed=seed, halfmaps=self.halfmaps,
                masks=masks, keep_masks=self.keep_masks,
            )
            self._fsc_key = key
            self._mask_ref = mask
            self.flags = diagnose(self.fsc, diagnosis)
            self.recomputed.append("fsc")
        gkey = (self._fsc_key, str(guinier_window_rule), guinier_quantity)
        if gkey != self._guinier_key:
            self.guinier_rule = guinier_window_rule
            self.guinier_curve = self.rule_guinier_curve(guinier_quantity)
            try:
                window_fsc = self.weighting_fsc()[0] if guinier_window_rule == "relion" else self.fsc.curves["corrected"]
                lo, hi, rule = guinier_window(guinier_window_rule, window_fsc, self.halfmaps.pixel_size_A, self.halfmaps.n)
                self.guinier, self.guinier_error = fit_guinier(self.guinier_curve, lo, hi, rule), None
            except CryodiagInputError as err:
                # a low-resolution map has no B-factor window: the FSC stands without it
                self.guinier, self.guinier_error = None, err.problem
            self._guinier_key = gkey
            self.recomputed.append("guinier")
        return self

    def to_dict(self) -> dict:
        """Numbers for JSON: the FSC family, flags, Guinier fit and curve (and sharpening, if done)."""
        if self.fsc is None:
            return {}
        d = self.fsc.to_dict()
        d["flags"] = [f.to_dict() for f in self.flags]
        fit = self.guinier.to_dict() if self.guinier is not None else {"skipped": self.guinier_error}
        d["guinier"] = dict(
            fit, x_invA2=self.guinier_curve.x_invA2, y=self.guinier_curve.y, map=self.guinier_map_text(),
            convention="bfactor_A2 = map decay (amplitudes x exp(-B s^2/4)); "
                       "sharpening_bfactor_A2 = RELION's sign (negative sharpens)",
        )
        if self.sharpened is not None:
            d["sharpen"] = self.sharpen_used.to_dict()
        return d

    def compute(self, progress=None, **kwargs):
        return run_steps(self.iter_compute(**kwargs), progress)

    def weighting_fsc(self) -> tuple[np.ndarray, str]:
        """The curve that FSC weighting (and the "relion" window) uses, and its name.

        The corrected curve; but, as ``relion_postprocess`` does without ``--force_mask``, the
        unmasked one when it reaches further (its last shell above 0.143 is beyond the corrected one's).
        """
        r = self.fsc
        if r.resolution("no_mask").shell > r.resolution("corrected").shell:
            return r.curves["no_mask"], "no_mask"
        return r.curves["corrected"], "corrected"

    def guinier_map_text(self) -> str:
        if self.guinier_rule == "relion":
            return (f"average of the unmasked half maps, FSC-weighted with the {self.weighting_fsc()[1]} curve "
                    "(RELION's rlnLogAmplitudesWeighted)")
        return "average of the half maps under the corrected curve's mask"

    def rule_guinier_curve(self, quantity="amplitude2"):
        """The Guinier curve of the window rule in use: RELION's FSC-weighted unmasked average for
        ``"relion"``, else :meth:`masked_average_guinier`."""
        if self.guinier_rule == "relion":
            hm = self.halfmaps
            return fsc_weighted_curve(hm.average_ft(), hm.shape, hm.pixel_size_A, self.weighting_fsc()[0], quantity,
                                      hm.index)
        return self.masked_average_guinier(quantity)

    def masked_average_guinier(self, quantity="amplitude2"):
        """Guinier curve of the half-map average under the corrected curve's mask."""
        hm = self.halfmaps
        m = self.fsc.masks[self.fsc.corrected_mask]
        return guinier_curve_from_means(hm.masked_average_means(m)[quantity], hm.n, hm.pixel_size_A, quantity,
                                        hm.counts)

    def sharpen(self, params: SharpenParams = SharpenParams()) -> np.ndarray:
        """Sharpened average; only the filter and one inverse FFT are recomputed when B changes."""
        if self.fsc is None:
            raise RuntimeError("compute() first")
        hm = self.halfmaps
        if self._sharpener is None:
            # caching the shell-weighted transform costs one transform's memory: not in a lean run
            self._sharpener = Sharpener(hm.average_ft(), hm.shape, hm.pixel_size_A, hm.index, cache=not hm.lean)
        if params.bfactor_A2 is not None:
            b = params.bfactor_A2
        elif self.guinier is not None:
            b = self.guinier.sharpening_bfactor_A2
        else:
            raise CryodiagInputError(f"no B-factor was fitted ({self.guinier_error}); give one", self.path1)
        out = self._sharpener.apply(
            b,
            self.fsc.curves["corrected"],
            fsc_weighting=params.fsc_weighting,
            zero_below_fsc=params.zero_below_fsc,
            lowpass_A=params.lowpass_A,
            lowpass_edge_shells=params.lowpass_edge_shells,
        )
        if params.apply_mask:
            out *= self.fsc.masks[self.fsc.corrected_mask]
        self.sharpened = out
        self.sharpen_used = replace(params, bfactor_A2=float(b))
        self.recomputed.append("sharpen")
        return out
