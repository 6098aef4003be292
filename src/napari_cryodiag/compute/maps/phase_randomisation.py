"""Phase randomisation beyond a Fourier shell (Chen et al. 2013 high-resolution noise substitution).

Works on the half (r2c) transform in place of a copy: every selected coefficient keeps its
amplitude exactly and gets a uniform random phase. Which coefficients are "beyond" shell ``s``
(``convention``):

- ``"shell"`` (default): the coefficient's shell ``round(|k|)`` is at least ``s``, i.e.
  ``|k| >= s - 1/2`` (the whole of shell ``s`` is randomised);
- ``"radius"`` (RELION's ``randomizePhasesBeyond``): ``|k|^2 >= s^2``, i.e. ``|k| >= s``: only the
  outer half of shell ``s`` is randomised, so its randomised FSC stays high (RELION's
  randomisation shell is half a shell further out than the ``"shell"`` convention's).
 The planes of
the half transform that hold both members of a Friedel pair (last-axis index 0, and ``n/2`` for
even ``n``) get conjugate phases on the mates, so the result is the transform of a real map
(``rfftn(irfftn(F)) == F``) and amplitudes survive the round trip. Self-conjugate coefficients
(real-valued by symmetry) are left as they are. Random numbers are float32 from a seeded
``numpy.random.Generator``, so results repeat.
"""

from __future__ import annotations

import numpy as np

from ..fourier import FFT_WORKERS, shell_index


def _as_rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _hermitian_fix_plane(new: np.ndarray, old: np.ndarray, randomised: np.ndarray) -> None:
    """Make a complex plane [..., a, b] (one last-axis index of an rfftn) Hermitian in place.

    For each Friedel pair (p, -p) inside the plane, the member with the larger linear index is
    set to the conjugate of the other; self-conjugate points take the original value ``old``.
    Only ``randomised`` points are touched (the others keep the input's values bit for bit).
    """
    shape = new.shape
    idx = [np.arange(s) for s in shape]
    grids = np.meshgrid(*idx, indexing="ij")
    partner = [(-g) % s for g, s in zip(grids, shape)]
    lin = np.ravel_multi_index(grids, shape)
    lin_p = np.ravel_multi_index(partner, shape)
    upper = (lin > lin_p) & randomised
    new[upper] = np.conj(new[tuple(p[upper] for p in partner)])
    selfc = (lin == lin_p) & randomised
    new[selfc] = old[selfc]


CONVENTIONS = ("shell", "radius")
#: elements per slab of the randomisation (temporaries stay small: ~20 MB)
RANDOMISE_SLAB_ELEMENTS = 1 << 21


def randomised_coefficients(index: np.ndarray, shape_real, start_shell: int, convention: str = "shell") -> np.ndarray:
    """Boolean array (r2c layout) of the coefficients randomised from ``start_shell`` (see module doc)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    s = int(start_shell)
    if convention == "shell" or s <= 0:
        return index >= s
    # |k| >= s: every shell beyond s (round(|k|) >= s + 1 means |k| >= s + 1/2) and the part of
    # shell s with integer |k|^2 >= s^2; only shell s's few coefficients need their |k|^2
    sel = index > s
    where = np.nonzero(index == s)
    if where[0].size:
        n = [int(v) for v in shape_real]
        k2 = np.zeros(where[0].size, dtype=np.int64)
        for axis, pos in enumerate(where):
            k = pos.astype(np.int64)
            if axis < len(n) - 1:  # full axes: fftfreq order
                k = np.where(k <= n[axis] // 2, k, k - n[axis])
            k2 += k * k
        sel[tuple(w[k2 >= s * s] for w in where)] = True
    return sel


def randomise_phases(
    ft: np.ndarray,
    shape_real,
    start_shell: int,
    seed=0,
    index: np.ndarray | None = None,
    convention: str = "shell",
) -> np.ndarray:
    """Return a copy of ``ft`` (rfftn of a real map of ``shape_real``) with random phases from ``start_shell`` on.

    Amplitudes are kept exactly; coefficients before ``start_shell`` (in ``convention``, see the
    module doc) are unchanged; the corners beyond Nyquist (shell index ``n//2 + 1``) are
    randomised too.
    """
    ft = np.asarray(ft)
    if index is None:
        index = shell_index(shape_real)
    rng = _as_rng(seed)
    start_shell = int(start_shell)
    sel = randomised_coefficients(index, shape_real, start_shell, convention)
    if not sel.any():
        return ft.astype(np.complex64, copy=True)
    # slab by slab along the first axis: the same random stream as one whole-array draw (float32
    # angles, C order), with temporaries of one slab; unrandomised coefficients are put back. The
    # angles are drawn here in order (one stream), the slabs are filled in worker threads
    out = np.empty(ft.shape, dtype=np.complex64)
    plane = int(np.prod(ft.shape[1:])) or 1
    step = max(1, RANDOMISE_SLAB_ELEMENTS // plane)
    two_pi = np.float32(2 * np.pi)

    def fill(sl, phi):
        src = ft[sl]
        amp = np.abs(src).astype(np.float32, copy=False)
        o = out[sl]
        tmp = np.cos(phi)
        tmp *= amp
        o.real = tmp
        np.sin(phi, out=tmp)
        tmp *= amp
        o.imag = tmp
        keep = ~sel[sl]
        o[keep] = src[keep]

    def angles():
        """``(slab, angles)`` in order: the one random stream, drawn here."""
        for z0 in range(0, ft.shape[0], step):
            sl = slice(z0, z0 + step)
            phi = rng.random(ft[sl].shape, dtype=np.float32)
            phi *= two_pi
            yield sl, phi

    workers = min(FFT_WORKERS, -(-ft.shape[0] // step))
    if workers <= 1:
        for sl, phi in angles():
            fill(sl, phi)
    else:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pending: deque = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="cryodiag-phases") as pool:
            for sl, phi in angles():
                pending.append(pool.submit(fill, sl, phi))
                while len(pending) > 2 * workers:  # a few slabs of angles in memory, not all of them
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
    n_last = int(shape_real[-1])
    planes = [0] + ([n_last // 2] if n_last % 2 == 0 else [])
    for j in planes:
        plane_new = out[..., j]
        _hermitian_fix_plane(plane_new, ft[..., j], sel[..., j])
        out[..., j] = plane_new
    return out
