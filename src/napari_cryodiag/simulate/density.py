"""A protein-like 3D density made of Gaussian "atoms", with known shape and no symmetry.

The atoms fill three connected, unequal lobes (so that every view is distinguishable and
projections look like a real, asymmetric particle), inside a sphere of about 0.6 * box.
"""

from __future__ import annotations

import numpy as np


def gaussian_atoms_density(
    box: int = 64,
    pixel_size_A: float = 2.0,
    n_atoms: int = 300,
    seed: int = 0,
    atom_sigma_A: float | None = None,
) -> np.ndarray:
    """Return a float32 map [z, y, x] of side ``box``; maximum 1, centred at ``box // 2``.

    ``atom_sigma_A`` defaults to ``max(1.5 Å, 0.8 px)`` so atoms are sampled on the grid.
    """
    rng = np.random.default_rng(seed)
    radius_px = 0.3 * box  # envelope radius: particle diameter ~0.6 box
    # three lobes of different sizes along different directions
    lobes = np.array([[0.0, 0.0, 0.0], [0.55, 0.25, -0.1], [-0.3, 0.5, 0.35]]) * radius_px
    sizes = np.array([0.55, 0.4, 0.3]) * radius_px
    weights = np.array([0.5, 0.3, 0.2])
    which = rng.choice(3, size=n_atoms, p=weights)
    pos = lobes[which] + rng.normal(size=(n_atoms, 3)) * sizes[which, None] * 0.5
    pos -= pos.mean(axis=0)
    r = np.linalg.norm(pos, axis=1)
    pos[r > radius_px] *= (radius_px / r[r > radius_px])[:, None]
    sigma_px = (atom_sigma_A if atom_sigma_A else max(1.5, 0.8 * pixel_size_A)) / pixel_size_A
    amp = rng.uniform(0.6, 1.4, size=n_atoms)

    c = box // 2
    vol = np.zeros((box, box, box), dtype=np.float64)
    # splat each atom on a local cube (fast, exact up to the truncation at 4 sigma)
    half = int(np.ceil(4 * sigma_px))
    g = np.arange(-half, half + 1)
    for (x, y, z), a in zip(pos + c, amp):
        ix, iy, iz = int(round(x)), int(round(y)), int(round(z))
        gx = np.exp(-((g + ix - x) ** 2) / (2 * sigma_px**2))
        gy = np.exp(-((g + iy - y) ** 2) / (2 * sigma_px**2))
        gz = np.exp(-((g + iz - z) ** 2) / (2 * sigma_px**2))
        sz = slice(max(iz - half, 0), min(iz + half + 1, box))
        sy = slice(max(iy - half, 0), min(iy + half + 1, box))
        sx = slice(max(ix - half, 0), min(ix + half + 1, box))
        blob = a * gz[:, None, None] * gy[None, :, None] * gx[None, None, :]
        vol[sz, sy, sx] += blob[
            sz.start - (iz - half) : sz.stop - (iz - half),
            sy.start - (iy - half) : sy.stop - (iy - half),
            sx.start - (ix - half) : sx.stop - (ix - half),
        ]
    vol /= vol.max()
    return vol.astype(np.float32)
