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

One plane of the sharpened map costs far less than the map: plane ``z0`` of ``irfftn(W env)`` is
the 2D inverse transform over ``(y, x)`` of ``sum_kz W(kz) env_z(kz) exp(2 pi i kz z0 / n)`` times
``env_y env_x`` (a matrix-vector product over the cached transform); along ``y`` the same with
axis 1; along ``x`` (the half axis of the r2c layout) with Hermitian weights (1 for ``kx = 0`` and
Nyquist, 2 otherwise) and the real part of a complex 2D inverse transform
(:meth:`Sharpener.plane`). :class:`SharpenedMap` (:meth:`ValidationSession.sharpen` with
``lazy=True``) is the map of one B as an array-like that computes the planes it is asked for and
the whole map (once) only when it is asked for that.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.fft

from ...errors import CryodiagInputError
from ..fourier import n_shells
from ..fourier import FFT_WORKERS, irfftn, rfftn
from ..progress import run_steps
from .fsc import FSCResult, HalfMaps, iter_fsc_family
from .diagnosis import DiagnosisParams, diagnose
from .filtered_guinier import FilteredGuinier
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
        self._weighted_entry = None  #: (shell weights' bytes, transform times them), read atomically
        self._work = None
        self._build_lock = threading.Lock()  #: one thread builds the shell-weighted transform
        self._apply_lock = threading.Lock()  #: one inverse FFT at a time in the shared work array

    @classmethod
    def from_map(cls, volume, pixel_size_A, *, cache: bool = False):
        from ..fourier import shell_index

        v = np.asarray(volume, np.float32)
        return cls(rfftn(v), v.shape, pixel_size_A, shell_index(v.shape), cache=cache)

    def _shell_weighted(self, shells: np.ndarray) -> np.ndarray:
        """The transform times ``shells[index]`` (complex64): kept for the next B when caching."""
        key = shells.tobytes()
        entry = self._weighted_entry
        if entry is not None and entry[0] == key:
            return entry[1]
        with self._build_lock:
            entry = self._weighted_entry
            if entry is not None and entry[0] == key:  # built by another thread meanwhile
                return entry[1]
            w = np.multiply(self.ft, shells[self.index], dtype=np.complex64)
            if self.cache:
                self._weighted_entry = (key, w)
        return w

    @property
    def _weighted(self):
        entry = self._weighted_entry
        return None if entry is None else entry[1]

    def shell_weights(self, fsc: np.ndarray | None = None, **filter_kwargs) -> np.ndarray:
        """The per-shell weights (float32) of :func:`shell_filter` for this map."""
        return shell_filter(self.n, self.pixel_size_A, fsc, **filter_kwargs).astype(np.float32)

    def weighted(self, fsc: np.ndarray | None = None, **filter_kwargs) -> np.ndarray:
        """The transform times the per-shell weights of this filter (complex64; cached for the
        next B when caching; do not write into it)."""
        return self._shell_weighted(self.shell_weights(fsc, **filter_kwargs))

    def envelope_axes(self, bfactor_A2: float) -> list[np.ndarray]:
        """``exp(-B s_axis^2 / 4)`` along each axis (float32); their outer product is the envelope."""
        c = -float(bfactor_A2) / 4.0
        return [np.exp(c * s2).astype(np.float32) for s2 in self.s2_axes]

    def filtered(self, bfactor_A2: float, fsc: np.ndarray | None = None, *, out: np.ndarray | None = None,
                 **filter_kwargs) -> np.ndarray:
        """The transform of the sharpened map (complex64; into ``out`` when given)."""
        w = self.weighted(fsc, **filter_kwargs)
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
        with self._apply_lock:
            work = None
            if self.cache and self.ft.nbytes <= WORK_BUFFER_MAX_BYTES:
                # the inverse FFT's input, reused from one B to the next (no new pages to fault in)
                if self._work is None:
                    self._work = np.empty(self.ft.shape, np.complex64)
                work = self._work
            return irfftn(self.filtered(bfactor_A2, fsc, out=work, **filter_kwargs), self.shape, overwrite=True)

    def plane(self, bfactor_A2: float, fsc: np.ndarray | None = None, axis: int = 0, index: int = 0,
              **filter_kwargs) -> np.ndarray:
        """Plane ``index`` along ``axis`` of :meth:`apply`'s map (float32, 2D), without the map:
        one matrix-vector product over the shell-weighted transform and one 2D inverse FFT."""
        return np.take(self.planes(bfactor_A2, fsc, axis, [index], **filter_kwargs), 0, axis=axis)

    def planes(self, bfactor_A2: float, fsc: np.ndarray | None = None, axis: int = 0, indices=(0,),
               **filter_kwargs) -> np.ndarray:
        """Planes ``indices`` along ``axis`` of :meth:`apply`'s map, stacked along ``axis`` (float32)."""
        return planes_of(self.weighted(fsc, **filter_kwargs), self.shape, self.envelope_axes(bfactor_A2), axis, indices)


def planes_of(w: np.ndarray, shape, env, axis: int, indices) -> np.ndarray:
    """Planes ``indices`` along ``axis`` of ``irfftn(w * env_0 ⊗ env_1 ⊗ env_2, shape)`` (3D r2c
    layout), stacked along ``axis`` (float32): see the module doc."""
    shape = tuple(int(m) for m in shape)
    if len(shape) != 3 or w.ndim != 3:
        raise ValueError(f"planes of a 3D map only, got shape {shape}")
    axis = int(axis) % 3
    size = shape[axis]
    j = np.asarray(indices, dtype=np.int64).reshape(-1)
    if j.size and (j.min() < -size or j.max() >= size):
        raise IndexError(f"plane index out of range for axis {axis} of size {size}")
    j = j % size
    if axis < 2:
        k = np.rint(np.fft.fftfreq(size, 1.0 / size))
        weights = np.asarray(env[axis], np.float64) / size
    else:
        k = np.arange(w.shape[2], dtype=np.float64)
        h = np.full(k.size, 2.0)  # Hermitian weights of the half axis: its mirror coefficients
        h[0] = 1.0
        if size % 2 == 0:
            h[-1] = 1.0  # Nyquist
        weights = h * np.asarray(env[2], np.float64) / size
    phase = (weights[None, :] * np.exp(2j * np.pi * np.outer(j, k) / size)).astype(np.complex64)  # (m, k)
    if axis == 0:
        y = (phase @ w.reshape(w.shape[0], -1)).reshape(j.size, *w.shape[1:])  # (m, ky, kx)
        y *= np.multiply.outer(env[1], env[2])[None]
        out = scipy.fft.irfftn(y, s=shape[1:], axes=(1, 2), workers=FFT_WORKERS, overwrite_x=True)
    elif axis == 1:
        y = np.matmul(phase, w)  # (kz, m, kx)
        y *= np.multiply.outer(env[0], env[2])[:, None, :]
        out = scipy.fft.irfftn(y, s=(shape[0], shape[2]), axes=(0, 2), workers=FFT_WORKERS, overwrite_x=True)
    else:
        y = (w.reshape(-1, w.shape[2]) @ phase.T).reshape(w.shape[0], w.shape[1], j.size)  # (kz, ky, m)
        y *= np.multiply.outer(env[0], env[1])[:, :, None]
        out = scipy.fft.ifftn(y, axes=(0, 1), workers=FFT_WORKERS, overwrite_x=True).real
    return np.ascontiguousarray(out, dtype=np.float32)


#: a key asking for more planes than this computes the whole map instead
MAX_LAZY_PLANES = 16


class SharpenedMap:
    """The sharpened map of one B and filter as a read-only array-like (float32, the map's shape)
    that computes what it is asked for: ``m[5]``, ``m[:, 7]``, ``m[..., 3]`` (a key that fixes one
    axis with an integer, or a few planes along one axis) cost one plane each (a few ms at 256³);
    any other key, ``np.asarray(m)`` and :meth:`full` compute the whole map once (one inverse FFT)
    and keep it. :meth:`full` is :meth:`Sharpener.apply`'s map (times the mask, if any).

    Thread-safe: a plane can be read while another thread computes the whole map.
    """

    def __init__(self, sharpener: Sharpener, bfactor_A2: float, fsc=None, mask: np.ndarray | None = None,
                 full: np.ndarray | None = None, **filter_kwargs):
        self.sharpener = sharpener
        self.bfactor_A2 = float(bfactor_A2)
        self.fsc = fsc
        self.mask = mask
        self.filter_kwargs = filter_kwargs
        self.shape = tuple(sharpener.shape)
        self.dtype = np.dtype(np.float32)
        self._full = full
        self._lock = threading.Lock()
        self._env = None
        #: the shell-weighted transform of this filter, kept while the sharpener caches it
        self._w = None
        #: ``(axis, indices, planes)`` of the last planes computed (contrast limits of a shown plane)
        self.last_planes = None

    # ------------------------------------------------------------------ array protocol
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        state = "computed" if self.computed else "lazy"
        return f"SharpenedMap(shape={self.shape}, B={self.bfactor_A2:g} Å², {state})"

    @property
    def computed(self) -> bool:
        """The whole map is computed (and kept)."""
        return self._full is not None

    def full(self) -> np.ndarray:
        """The whole sharpened map (computed once; the same array afterwards)."""
        out = self._full
        if out is not None:
            return out
        with self._lock:
            if self._full is None:
                out = self.sharpener.apply(self.bfactor_A2, self.fsc, **self.filter_kwargs)
                if self.mask is not None:
                    out *= self.mask
                self._full = out
            return self._full

    def __array__(self, dtype=None, copy=None):
        out = self.full().view()
        out.flags.writeable = False  # the session's map: a reader gets a read-only view
        if dtype is not None and np.dtype(dtype) != out.dtype:
            return out.astype(dtype)
        return out.copy() if copy else out

    def planes(self, axis: int, indices) -> np.ndarray:
        """Planes ``indices`` along ``axis``, stacked along ``axis`` (float32)."""
        if self._full is not None:
            return np.take(self._full, indices, axis=axis)
        sh = self.sharpener
        if self._env is None:
            self._env = sh.envelope_axes(self.bfactor_A2)
        w = self._w
        if w is None:
            w = sh.weighted(self.fsc, **self.filter_kwargs)
            if sh.cache:
                self._w = w
        out = planes_of(w, self.shape, self._env, axis, indices)
        if self.mask is not None:
            out *= np.take(self.mask, indices, axis=axis)
        self.last_planes = (axis, np.asarray(indices).reshape(-1), out)
        return out

    def plane(self, axis: int, index: int) -> np.ndarray:
        """Plane ``index`` along ``axis`` (2D, float32)."""
        return np.take(self.planes(axis, [int(index)]), 0, axis=axis)

    def __getitem__(self, key):
        if self._full is not None:
            return self._full[key]
        plan = _plane_key(key, self.shape)
        if plan is None:
            return self.full()[key]
        axis, indices, squeeze, rest = plan
        out = self.planes(axis, indices)
        if squeeze:
            out = np.take(out, 0, axis=axis)
        return out[rest] if rest is not None else out


def _plane_key(key, shape):
    """How to serve ``key`` from planes along one axis: ``(axis, indices, squeeze, rest)`` with
    ``rest`` the key left for the stacked planes (None: nothing); None when the key needs the map."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key) or sum(k is Ellipsis for k in key) > 1:
        return None
    i = next((i for i, k in enumerate(key) if k is Ellipsis), None)
    if i is not None:
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1:]
    if len(key) > len(shape):
        return None
    key = key + (slice(None),) * (len(shape) - len(key))
    best = None
    for ax, (k, size) in enumerate(zip(key, shape)):
        if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            if not -size <= int(k) < size:
                raise IndexError(f"index {int(k)} is out of bounds for axis {ax} with size {size}")
            cand = (1, ax, [int(k) % size], True)
        elif isinstance(k, slice):
            idx = range(size)[k]
            if len(idx) == size and (k.step is None or k.step == 1):
                continue  # the whole axis
            cand = (len(idx), ax, list(idx), False)
        else:
            return None  # fancy indexing: from the whole map
        if best is None or cand[0] < best[0]:
            best = cand
    if best is None or best[0] > MAX_LAZY_PLANES or best[0] == 0:
        return None
    _, ax, indices, squeeze = best
    rest = list(key)
    if squeeze:
        del rest[ax]
    else:
        rest[ax] = slice(None)
    rest = tuple(rest)
    if all(isinstance(k, slice) and k == slice(None) for k in rest):
        rest = None
    return ax, indices, squeeze, rest


def sharpen_map(volume, pixel_size_A: float, bfactor_A2: float, fsc=None, **filter_kwargs) -> np.ndarray:
    """One-shot sharpening of a map (see module doc)."""
    return Sharpener.from_map(volume, pixel_size_A).apply(bfactor_A2, fsc, **filter_kwargs)


class ValidationSession:
    """FSC family, diagnosis, Guinier fit and sharpening of one pair of half maps, with caching.

    ``iter_compute()`` is a generator (``(done, total)`` progress) for a worker thread.
    """

    def __init__(self, half1, half2, pixel_size_A: float, path1=None, path2=None, *, lean: bool = False,
                 keep_masks=None, checked: bool = False):
        """``lean=True``: a one-shot run (the command line) that keeps only the masks named in
        ``keep_masks`` (and the corrected curve's) and frees the real half maps on the way
        (:class:`HalfMaps`); a second :meth:`iter_compute` with other FSC settings is then refused."""
        self.halfmaps = HalfMaps(half1, half2, pixel_size_A, path1, path2, lean=lean, checked=checked)
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
        #: the last sharpened map (:class:`SharpenedMap`: computed when asked for), or None
        self.sharpened_map: SharpenedMap | None = None
        self._filtered = None  #: (key, FilteredGuinier) of the sharpened Guinier curves
        self._filtered_lock = threading.Lock()
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
        if self.sharpened_map is not None:
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

    def sharpened_guinier(self, sharpened_map: "SharpenedMap"):
        """The Guinier curve that the plotted one becomes under ``sharpened_map``'s filter (its B,
        FSC weighting and low-pass applied to each coefficient of the plotted curve's transform, as
        ``relion_postprocess`` draws its sharpened curve): of the masked average under the
        corrected curve's mask, or of the unmasked average with the "relion" window rule.

        Microseconds per B once :meth:`filtered_guinier` exists (no map and no FFT). Reads nothing
        a new B changes: a worker thread may call it while the next B is shown."""
        m = sharpened_map
        return self.filtered_guinier().curve(m.sharpener.shell_weights(m.fsc, **m.filter_kwargs), m.bfactor_A2)

    def _filtered_key(self):
        return (self._guinier_key, self.guinier_rule, self.guinier_curve.quantity)

    @property
    def filtered_guinier_ready(self) -> bool:
        """:meth:`filtered_guinier` is made for the current FSC, window rule and quantity."""
        hit = self._filtered
        return hit is not None and hit[0] == self._filtered_key()

    def filtered_guinier(self) -> FilteredGuinier:
        """The :class:`FilteredGuinier` of the plotted curve's transform (per-shell moments: one
        FFT and one pass over it, 0.4 s at 256³), made on first use and kept for this FSC, window
        rule and quantity (thread-safe: a worker may make it)."""
        hm = self.halfmaps
        key = self._filtered_key()
        with self._filtered_lock:
            hit = self._filtered
            if hit is None or hit[0] != key:
                if self.guinier_rule == "relion":
                    sharpener = self._sharpener

                    def source():
                        return sharpener.ft if sharpener is not None else hm.average_ft()
                else:
                    mask = self.fsc.masks[self.fsc.corrected_mask]

                    def source():
                        return hm.masked_average_transform(mask)
                hit = (key, FilteredGuinier(source, hm.shape, hm.pixel_size_A, key[2], index=hm.index,
                                            counts=hm.counts))
                self._filtered = hit
        return hit[1]

    @property
    def sharpened(self) -> np.ndarray | None:
        """The last sharpened map, whole (computed now if :meth:`sharpen` was lazy), or None."""
        return None if self.sharpened_map is None else self.sharpened_map.full()

    def sharpen(self, params: SharpenParams = SharpenParams(), *, lazy: bool = False):
        """Sharpened average; only the filter and one inverse FFT are recomputed when B changes.

        ``lazy=True`` returns the :class:`SharpenedMap` without computing it (a plane costs a few
        ms; the whole map is computed when first asked for, by it or by :attr:`sharpened`)."""
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
        result = SharpenedMap(
            self._sharpener,
            b,
            self.fsc.curves["corrected"],
            self.fsc.masks[self.fsc.corrected_mask] if params.apply_mask else None,
            fsc_weighting=params.fsc_weighting,
            zero_below_fsc=params.zero_below_fsc,
            lowpass_A=params.lowpass_A,
            lowpass_edge_shells=params.lowpass_edge_shells,
        )
        self.sharpened_map = result
        self.sharpen_used = replace(params, bfactor_A2=float(b))
        self.recomputed.append("sharpen")
        return result if lazy else result.full()
