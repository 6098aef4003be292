"""Fourier shells of the half (r2c) transform, shared by FSC, FRC, Guinier and noise model.

Conventions (REFERENCE.md "Fourier shells and FSC"):

- Transforms are ``numpy.fft.rfftn`` of a square image / cubic volume of side ``n``: the last
  axis holds non-negative frequencies only.
- The shell of a coefficient is ``round(|k|)`` with ``k`` the integer frequency vector (cycles per
  box). Shells ``0 .. n//2`` are kept; coefficients at or beyond ``n//2 + 1`` get the index
  ``n_shells(n)`` and fall out of every sum (they are counted in an overflow bin that is dropped).
- Shell ``i`` is at spatial frequency ``i / (n * pixel_size_A)`` 1/Å, i.e. resolution
  ``n * pixel_size_A / i`` Å.
- Sums run over the half transform as stored, without weighting the Friedel mates that the half
  transform omits (RELION does the same); ratios such as the FSC are insensitive to it.
"""

from __future__ import annotations

import os
import weakref
from functools import lru_cache

import numpy as np
import scipy.fft

#: threads for the 3D transforms
FFT_WORKERS = max(1, os.cpu_count() or 1)

def _pocketfft():
    """scipy's pocketfft module, whose r2c/c2r take an output array (``scipy.fft`` has no ``out=``),
    or None when this scipy lays it out differently."""
    try:
        from scipy.fft._pocketfft import pypocketfft
        from scipy.fft._pocketfft.helper import _normalization
    except ImportError:  # pragma: no cover - another scipy layout
        return None
    return pypocketfft, _normalization


def _usable_out(out, shape, dtype, *, contiguous: bool = True) -> bool:
    """Whether ``out`` can take a result of ``shape`` and ``dtype`` (``contiguous=False``: any
    strides, for pocketfft's per-axis writes)."""
    return (isinstance(out, np.ndarray) and out.shape == tuple(shape) and out.dtype == dtype
            and (out.flags.c_contiguous or not contiguous) and out.flags.writeable)


def _c2r_over_leading_axes(pfft, f: np.ndarray, shape, out: np.ndarray) -> np.ndarray:
    """pocketfft's multi-axis c2r without its copy of ``f``: the c2c passes over the leading axes
    in place in ``f`` (destroyed), the c2r along the last axis into ``out`` (which may be
    ``f``'s padded real view), then pocketfft's ``1/size`` scale: the same numbers, bit for bit."""
    if f.ndim > 1:
        pfft.c2c(f, tuple(range(f.ndim - 1)), False, 0, f, FFT_WORKERS)
    pfft.c2r(f, (f.ndim - 1,), shape[-1], False, 0, out, FFT_WORKERS)
    out *= np.float32(1 / np.longdouble(np.prod(shape, dtype=np.int64)))  # pocketfft's factor
    return out


def rfftn(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """r2c transform in single precision (complex64), multi-threaded.

    ``out`` (complex64, C-contiguous, the r2c shape): the transform is written there and returned,
    with no new array (a fresh 512³ transform costs ~1 GiB of page faults, ~0.3 s of system time).
    The same pocketfft call as :func:`scipy.fft.rfftn`, so the same numbers bit for bit (tested).
    """
    x = np.asarray(x, dtype=np.float32)
    if out is not None:
        half = x.shape[:-1] + (x.shape[-1] // 2 + 1,)
        pf = _pocketfft()
        if pf is not None and x.ndim and x.flags.c_contiguous and _usable_out(out, half, np.complex64):
            pfft, norm = pf
            return pfft.r2c(x, tuple(range(x.ndim)), True, norm(None, True), out, FFT_WORKERS)
        out[...] = scipy.fft.rfftn(x, workers=FFT_WORKERS)
        return out
    return scipy.fft.rfftn(x, workers=FFT_WORKERS)


def irfftn(f: np.ndarray, shape, *, overwrite: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """c2r transform back to a float32 map of ``shape``.

    ``out`` (float32, C-contiguous, ``shape``): written there and returned, as :func:`rfftn`'s
    ``out``. ``overwrite=True`` with ``out`` (``f`` is destroyed): the c2c passes over the leading
    axes run in place in ``f``, then the c2r along the last axis writes ``out`` and the
    ``1/size`` scale is applied there, which is what pocketfft's multi-axis c2r does in a copy of
    ``f`` (one complex map-sized temporary fewer, no page faults). Every variant gives the same
    numbers, bit for bit (tested).
    """
    f = np.asarray(f, dtype=np.complex64)
    shape = tuple(int(s) for s in shape)
    if out is not None:
        pf = _pocketfft()
        if pf is not None and len(shape) == f.ndim and f.shape[:-1] == shape[:-1] \
                and f.shape[-1] == shape[-1] // 2 + 1 and _usable_out(out, shape, np.float32):
            pfft, norm = pf
            if overwrite and f.ndim > 1 and _usable_out(f, f.shape, np.complex64):
                return _c2r_over_leading_axes(pfft, f, shape, out)
            return pfft.c2r(f, tuple(range(f.ndim)), shape[-1], False, norm(None, False), out, FFT_WORKERS)
        out[...] = scipy.fft.irfftn(f, s=shape, workers=FFT_WORKERS)
        return out
    return scipy.fft.irfftn(f, s=shape, workers=FFT_WORKERS, overwrite_x=overwrite).astype(np.float32, copy=False)



# ------------------------------------------------------------------ transforms in place
# A complex64 array of the r2c shape ``(..., n // 2 + 1)`` holds, as float32, rows of
# ``2 * (n // 2 + 1)`` numbers: room for a real map of ``(..., n)`` with each row padded by one or
# two numbers (FFTW's in-place layout). A map written there is transformed over itself: one array
# for the map and its transform, where the out-of-place pair needs two (one map size fewer at
# 512³: 512 MiB, and as many page faults). pocketfft reads each row of the last axis whole before
# writing its transform over it, and rows never overlap, so the numbers are those of the
# out-of-place transform, bit for bit (tested).


def padded_real(g: np.ndarray, shape) -> np.ndarray:
    """The real map of ``shape`` that lives in the complex64 array ``g`` (the r2c shape of
    ``shape``, C-contiguous): a float32 view whose rows are padded to ``2 * (n // 2 + 1)``.

    Write a map there (``np.multiply(a, mask, out=padded_real(g, a.shape))``), then
    :func:`rfftn_inplace` transforms it into ``g``."""
    shape = tuple(int(s) for s in shape)
    half = shape[:-1] + (shape[-1] // 2 + 1,)
    if not _usable_out(g, half, np.complex64):
        raise ValueError(f"need a C-contiguous complex64 array of shape {half}, got {g.dtype} {g.shape}")
    return g.view(np.float32)[..., : shape[-1]]


def rfftn_inplace(g: np.ndarray, shape) -> np.ndarray:
    """r2c transform of the map held in ``padded_real(g, shape)``, written over it into ``g``
    (returned). The same numbers as ``rfftn`` of that map."""
    x = padded_real(g, shape)
    pf = _pocketfft()
    if pf is None:  # pragma: no cover - another scipy layout: transform a copy, then write it back
        g[...] = scipy.fft.rfftn(np.ascontiguousarray(x), workers=FFT_WORKERS)
        return g
    pfft, norm = pf
    return pfft.r2c(x, tuple(range(x.ndim)), True, norm(None, True), g, FFT_WORKERS)


def irfftn_inplace(g: np.ndarray, shape) -> np.ndarray:
    """c2r transform of ``g`` (the r2c transform of a map of ``shape``) over itself: returns the map
    as ``padded_real(g, shape)``; ``g`` no longer holds the transform. The same numbers as
    ``irfftn(g, shape)``."""
    shape = tuple(int(s) for s in shape)
    x = padded_real(g, shape)
    pf = _pocketfft()
    if pf is None:  # pragma: no cover - another scipy layout
        x[...] = scipy.fft.irfftn(g, s=shape, workers=FFT_WORKERS)
        return x
    return _c2r_over_leading_axes(pf[0], g, shape, x)



def n_shells(n: int) -> int:
    """Number of shells kept for a box of side ``n``: ``n // 2 + 1`` (DC to Nyquist)."""
    return n // 2 + 1


def _box_side(shape) -> int:
    shape = tuple(int(s) for s in shape)
    if len(set(shape)) != 1:
        raise ValueError(f"Fourier shells need a square/cubic box, got shape {shape}")
    return shape[0]


#: the shell indexes made by :func:`shell_index` (by id, while alive): the folded sums need one
_STANDARD_INDEXES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


@lru_cache(maxsize=16)
def _shell_index_cached(shape: tuple[int, ...]) -> np.ndarray:
    n = _box_side(shape)
    m = n_shells(n)
    # uint16 (shells up to 65535: boxes to 131068) halves the index of an int32 one: 64 MiB at 512³
    itype = np.uint16 if m < 65536 else np.int32
    # integer |k|^2 -> shell through a lookup table: exact, and no float sqrt per coefficient
    kmax = n // 2
    lookup = np.minimum(np.rint(np.sqrt(np.arange(len(shape) * kmax**2 + 1))), m).astype(itype)
    k_full = np.rint(np.fft.fftfreq(n, d=1.0 / n)).astype(np.int64)
    kx2 = np.arange(n // 2 + 1, dtype=np.int64) ** 2
    if len(shape) == 1:
        index = lookup[kx2]
    elif len(shape) == 2:
        index = lookup[k_full[:, None] ** 2 + kx2[None, :]]
    else:
        index = np.empty((n, n, n // 2 + 1), dtype=itype)
        r2_yx = k_full[:, None] ** 2 + kx2[None, :]
        for z, kz in enumerate(k_full):  # one plane at a time keeps the int64 temporaries small
            index[z] = lookup[r2_yx + kz * kz]
    index = np.ascontiguousarray(index, dtype=itype)
    index.setflags(write=False)
    _STANDARD_INDEXES[id(index)] = index
    return index


def shell_index(shape_real) -> np.ndarray:
    """Shell number of every coefficient of ``rfftn`` of a real array of ``shape_real``.

    Returns a read-only uint16 array (int32 for boxes beyond 131,068) of the r2c shape, cached per
    shape; values beyond Nyquist are set to ``n_shells(n)``.
    """
    return _shell_index_cached(tuple(int(s) for s in shape_real))


#: elements per slab of the shell sums: ``bincount`` converts its index (and weights) to 8-byte
#: numbers, so whole-array calls on a 512³ transform would allocate two more map-sized arrays
SUM_SLAB_ELEMENTS = 1 << 20


def _binned(index: np.ndarray, values, m: int) -> np.ndarray:
    ix = index.reshape(-1)
    v = None if values is None else np.asarray(values).reshape(-1)
    out = np.zeros(m + 1)
    for i in range(0, ix.size, SUM_SLAB_ELEMENTS):
        sl = slice(i, i + SUM_SLAB_ELEMENTS)
        out += np.bincount(ix[sl], weights=None if v is None else v[sl], minlength=m + 1)[: m + 1]
    return out[:m]


def shell_sums(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Sum ``values`` (same shape as ``index``) over shells ``0 .. n//2``; float64 result (slab by slab)."""
    m = n_shells(n)
    v = np.asarray(values)
    if np.iscomplexobj(v):
        return _binned(index, v.real, m) + 1j * _binned(index, v.imag, m)
    return _binned(index, v, m)


def shell_counts(index: np.ndarray, n: int) -> np.ndarray:
    """Number of coefficients in each shell ``0 .. n//2`` (of the half transform)."""
    return _binned(index, None, n_shells(n)).astype(np.int64)


#: elements per slab of the folded sums (a few planes: the products stay in cache)
FOLD_SLAB_ELEMENTS = 1 << 16


def foldable(shape, index) -> bool:
    """Whether :func:`folded_shell_sums` applies: the r2c transform of a cube and the shell index
    :func:`shell_index` made for it (any other index may lack the mirror symmetry)."""
    shape = tuple(shape)
    return (len(shape) == 3 and shape[0] == shape[1] and tuple(index.shape) == shape
            and _STANDARD_INDEXES.get(id(index)) is index)


def folded_shell_sums(fill, nq: int, shape, index: np.ndarray, n: int, workers: int | None = None) -> np.ndarray:
    """Per-shell sums of ``nq`` per-coefficient quantities of a cubic r2c transform, ``(nq, n//2+1)`` float64.

    ``fill(z0, z1, out, tmp)`` writes the quantities of planes ``z0:z1`` into ``out`` (float32, shape
    ``(nq, z1 - z0) + shape[1:]``); ``tmp`` (float32, ``(z1 - z0) + shape[1:]``) is scratch of its own
    (``fill`` is called from several threads at once, each with its own arrays). The shell index of
    plane ``n - z`` equals plane ``z``'s and, within a plane, row ``n - y`` equals row ``y``'s
    (``|k|`` depends on ``k^2`` only): the quantities of mirrored planes and rows are added first, so
    ``bincount`` (float64) runs over a quarter of the coefficients, with its index converted once per
    slab. The same sums up to float32 rounding of those additions (~1e-8 relative).

    The planes are shared out in ``workers`` (default :data:`FFT_WORKERS`) contiguous runs, summed
    in threads (NumPy's arithmetic releases the GIL) and added in a fixed order: the same numbers
    for any machine with the same number of workers, within float64 rounding of one another.
    """
    m = n_shells(n)
    nz = shape[0]
    pairs = (nz - 1) // 2  # planes 1..pairs pair with nz-1..nz-pairs; 0 (and nz/2 when even) alone
    keep = nz // 2 + 1  # rows 0..nz//2 after folding the mirrored rows
    step = max(1, FOLD_SLAB_ELEMENTS // max(shape[1] * shape[2], 1))
    slabs = [(0, 1, False)] + [(z0, min(z0 + step, pairs + 1), True) for z0 in range(1, pairs + 1, step)]
    if nz % 2 == 0:
        slabs.append((nz // 2, nz // 2 + 1, False))

    def run(part) -> np.ndarray:
        out = np.zeros((nq, m + 1))
        c = w = tmp = None
        for z0, z1, paired in part:
            k = z1 - z0
            if c is None or c.shape[1] != k:
                c = np.empty((nq, k) + tuple(shape[1:]), dtype=np.float32)
                w = np.empty_like(c)
                tmp = np.empty(c.shape[1:], dtype=np.float32)
            fill(z0, z1, c, tmp)
            if paired:
                fill(nz - z1 + 1, nz - z0 + 1, w, tmp)
                c += w[:, ::-1]  # plane nz - z next to plane z
            c[:, :, 1:pairs + 1] += c[:, :, nz - pairs:][:, :, ::-1]  # row nz - y onto row y
            ix = index[z0:z1, :keep].astype(np.intp).ravel()
            for q in range(nq):
                out[q] += np.bincount(ix, weights=c[q, :, :keep].ravel(), minlength=m + 1)
        return out

    workers = max(1, min(FFT_WORKERS if workers is None else int(workers), len(slabs) // 8))
    if workers == 1:
        return run(slabs)[:, :m]
    from concurrent.futures import ThreadPoolExecutor

    cuts = np.linspace(0, len(slabs), workers + 1).round().astype(int)
    with ThreadPoolExecutor(workers, thread_name_prefix="cryodiag-shells") as pool:
        parts = list(pool.map(run, [slabs[a:b] for a, b in zip(cuts[:-1], cuts[1:])]))
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total[:, :m]


def shell_means(ft: np.ndarray, index: np.ndarray, n: int, quantities=("amplitude2", "amplitude"), counts=None) -> dict:
    """Per-shell means of |F|^2 (``"amplitude2"``) and/or |F| (``"amplitude"``) of a half transform."""
    if counts is None:
        counts = shell_counts(index, n)
    c = np.maximum(counts, 1)
    want = [q for q in ("amplitude2", "amplitude") if q in quantities]
    if foldable(ft.shape, index) and want:
        return _folded_amplitude_means(lambda z0, z1: ft[z0:z1], ft.shape, index, n, want, c)
    p = ft.real * ft.real
    p += ft.imag * ft.imag
    out = {}
    if "amplitude2" in quantities:
        out["amplitude2"] = shell_sums(p, index, n) / c
    if "amplitude" in quantities:
        np.sqrt(p, out=p)
        out["amplitude"] = shell_sums(p, index, n) / c
    return out


def shell_means_of_average(f1: np.ndarray, f2: np.ndarray, index: np.ndarray, n: int,
                           quantities=("amplitude2", "amplitude"), counts=None) -> dict:
    """:func:`shell_means` of ``(f1 + f2) / 2``, formed a slab at a time (no transform-sized array).

    By linearity this is the transform of the average of the two maps whose transforms ``f1`` and
    ``f2`` are: the masked average's Guinier plot comes from the two masked half transforms the
    FSC computed anyway, with no transform of its own (equal to that transform's means to float32
    rounding of the sum, ~1e-7 relative)."""
    if counts is None:
        counts = shell_counts(index, n)
    c = np.maximum(counts, 1)
    want = [q for q in ("amplitude2", "amplitude") if q in quantities]
    if not want:
        return {}
    if not foldable(f1.shape, index):
        avg = np.add(f1, f2)
        avg *= np.float32(0.5)
        return shell_means(avg, index, n, want, counts)

    def slab(z0, z1):
        a = np.add(f1[z0:z1], f2[z0:z1])
        a *= np.float32(0.5)  # as (f1 + f2) * 0.5, in place
        return a

    return _folded_amplitude_means(slab, f1.shape, index, n, want, c)


def _folded_amplitude_means(slab, shape, index: np.ndarray, n: int, want: list, c: np.ndarray) -> dict:
    """Per-shell means of |F|^2 and/or |F| (``want``, in that order) of the coefficients that
    ``slab(z0, z1)`` gives for planes ``z0:z1``, through :func:`folded_shell_sums`; ``c``: the
    shell counts (at least 1)."""
    def fill(z0, z1, out, tmp):
        a = slab(z0, z1)
        p = out[0]
        np.multiply(a.real, a.real, out=p)
        p += np.multiply(a.imag, a.imag, out=tmp)
        if "amplitude" in want:
            np.sqrt(p, out=out[len(want) - 1])  # |F| beside |F|^2, or in its place

    sums = folded_shell_sums(fill, len(want), shape, index, n)
    return {q: sums[i] / c for i, q in enumerate(want)}


def shell_frequencies_invA(n: int, pixel_size_A: float) -> np.ndarray:
    """Spatial frequency of shells ``0 .. n//2`` in 1/Å: ``i / (n * pixel_size_A)``."""
    return np.arange(n_shells(n)) / (n * float(pixel_size_A))


def shell_resolution_A(n: int, pixel_size_A: float) -> np.ndarray:
    """Resolution of shells ``0 .. n//2`` in Å (``inf`` for the DC shell)."""
    f = shell_frequencies_invA(n, pixel_size_A)
    with np.errstate(divide="ignore"):
        return np.where(f > 0, 1.0 / np.where(f > 0, f, 1.0), np.inf)


def radial_frequency_invA(shape_real, pixel_size_A: float, *, rfft: bool = True) -> np.ndarray:
    """|k| in 1/Å for every coefficient of the (r)fft layout of ``shape_real`` (any box shape)."""
    axes = [np.fft.fftfreq(int(s), d=float(pixel_size_A)) for s in shape_real[:-1]]
    last = int(shape_real[-1])
    axes.append(np.fft.rfftfreq(last, d=float(pixel_size_A)) if rfft else np.fft.fftfreq(last, d=float(pixel_size_A)))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return np.sqrt(sum(g**2 for g in grids))
