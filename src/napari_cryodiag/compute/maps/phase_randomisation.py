"""Phase randomisation beyond a Fourier shell (Chen et al. 2013 high-resolution noise substitution).

Works on the half (r2c) transform in place of a copy: every coefficient whose shell is at or
beyond ``start_shell`` keeps its amplitude exactly and gets a uniform random phase. The planes of
the half transform that hold both members of a Friedel pair (last-axis index 0, and ``n/2`` for
even ``n``) get conjugate phases on the mates, so the result is the transform of a real map
(``rfftn(irfftn(F)) == F``) and amplitudes survive the round trip. Self-conjugate coefficients
(real-valued by symmetry) are left as they are. Random numbers are float32 from a seeded
``numpy.random.Generator``, so results repeat.
"""

from __future__ import annotations

import numpy as np

from ..fourier import shell_index


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


def randomise_phases(
    ft: np.ndarray,
    shape_real,
    start_shell: int,
    seed=0,
    index: np.ndarray | None = None,
) -> np.ndarray:
    """Return a copy of ``ft`` (rfftn of a real map of ``shape_real``) with random phases from ``start_shell`` on.

    Amplitudes are kept exactly; coefficients in shells below ``start_shell`` are unchanged;
    the corners beyond Nyquist (shell index ``n//2 + 1``) are randomised too.
    """
    ft = np.asarray(ft)
    if index is None:
        index = shell_index(shape_real)
    rng = _as_rng(seed)
    start_shell = int(start_shell)
    sel = index >= start_shell
    if not sel.any():
        return ft.astype(np.complex64, copy=True)
    # whole-array work (unit phasors from float32 angles), then the few unrandomised low-resolution
    # coefficients are put back: cheaper than gathering/scattering the randomised majority
    phi = rng.random(ft.shape, dtype=np.float32)
    phi *= np.float32(2 * np.pi)
    amp = np.abs(ft).astype(np.float32, copy=False)
    out = np.empty(ft.shape, dtype=np.complex64)
    tmp = np.cos(phi)
    tmp *= amp
    out.real = tmp
    np.sin(phi, out=tmp)
    tmp *= amp
    out.imag = tmp
    del phi, tmp, amp
    keep = ~sel
    out[keep] = ft[keep]
    n_last = int(shape_real[-1])
    planes = [0] + ([n_last // 2] if n_last % 2 == 0 else [])
    for j in planes:
        plane_new = out[..., j]
        _hermitian_fix_plane(plane_new, ft[..., j], sel[..., j])
        out[..., j] = plane_new
    return out
