"""A protein map with secondary structure, whose power spectrum has the features of real maps.

Real protein maps are not "atoms spread uniformly": their spherically averaged power has a hump
near 10 Å (packed α-helices and stacked β-sheets, ~10 Å apart), a dip around 6–7 Å and a second
hump at 4–5 Å (β-strands 4.8 Å apart, the helix pitch of 5.4 Å), before the atoms' own fall-off.
Half maps made of such a map plus white noise therefore have an FSC with a shallow dip between
~9 and ~5 Å, which a diagnosis must not mistake for a micelle.

:func:`secondary_structure_map` builds a globular particle of two domains inside a sphere: a
bundle of α-helices (axes on a hexagonal lattice 10 Å apart, 1.5 Å rise and 100° per residue,
Cα at 2.3 Å from the axis, side chains pointing out) and a β-sandwich (two sheets 10 Å apart,
strands 4.8 Å apart, 3.3 Å per residue, side chains alternating above and below the sheet).
Each residue is five Gaussian atoms (backbone N, Cα, C, O and one side-chain atom), about one
atom per 18 Å^3 like real protein. Atoms are splatted trilinearly and blurred by a Gaussian of
``atom_sigma_A``; the map is float32 ``[z, y, x]`` with maximum 1, centred at ``box // 2``.
"""

from __future__ import annotations

import numpy as np

from ..compute.fourier import irfftn, radial_frequency_invA, rfftn


def _rotation_to(d: np.ndarray) -> np.ndarray:
    """A rotation matrix taking the z axis to the unit vector ``d`` (columns: e1, e2, d)."""
    d = d / np.linalg.norm(d)
    a = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(d, a)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    return np.stack([e1, e2, d], axis=1)


def _helix_residues(length_A: float, rng) -> np.ndarray:
    """Atoms (x, y, z) in Å of one α-helix along z, centred on z = 0."""
    n = max(int(length_A / 1.5), 4)
    i = np.arange(n)
    phase = rng.uniform(0, 2 * np.pi)
    out = []
    # (radius, angle offset, z offset) of N, CA, C, O, side chain relative to the residue
    for r, dphi, dz in ((1.6, -0.5, -0.5), (2.3, 0.0, 0.0), (1.7, 0.5, 0.6), (2.0, 0.7, 1.5), (3.6, 0.1, -0.6)):
        phi = phase + np.deg2rad(100.0) * i + dphi
        out.append(np.stack([r * np.cos(phi), r * np.sin(phi), 1.5 * i + dz - 0.75 * n], axis=1))
    return np.concatenate(out)


def _sheet_residues(n_strands: int, length_A: float, rng) -> np.ndarray:
    """Atoms of one β-sheet in the x-z plane: strands along z, 4.8 Å apart along x."""
    n = max(int(length_A / 3.3), 3)
    i = np.arange(n)
    out = []
    for s in range(n_strands):
        x0 = (s - (n_strands - 1) / 2) * 4.8
        zig = 0.9 * (-1.0) ** i  # the pleat
        side = 2.5 * (-1.0) ** (i + s)  # side chains alternate above/below the sheet
        z = 3.3 * i - 1.65 * n + rng.uniform(-0.3, 0.3)
        for dx, dy, dz in ((-0.5, 0.0, -1.1), (0.0, 0.0, 0.0), (0.5, 0.0, 1.1), (1.4, 0.0, 1.0), (0.0, None, 0.0)):
            y = side if dy is None else zig + dy
            out.append(np.stack([x0 + dx + 0 * i, np.broadcast_to(y, n), z + dz], axis=1))
    return np.concatenate(out)


def _splat(points_px: np.ndarray, weights: np.ndarray, box: int) -> np.ndarray:
    grid = np.zeros(box**3, dtype=np.float64)
    base = np.floor(points_px).astype(np.int64)
    frac = points_px - base
    for corner in range(8):
        off = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        w = np.prod(np.where(off, frac, 1 - frac), axis=1) * weights
        idx = base + off
        ok = np.all((idx >= 0) & (idx < box), axis=1)
        lin = np.ravel_multi_index(tuple(idx[ok].T), (box, box, box))
        grid += np.bincount(lin, weights=w[ok], minlength=box**3)
    return grid.reshape(box, box, box)


def secondary_structure_map(box: int = 96, pixel_size_A: float = 1.2, seed: int = 0, *,
                            radius_A: float | None = None, atom_sigma_A: float = 0.8) -> np.ndarray:
    """A two-domain (α-helical bundle + β-sandwich) particle of radius ``radius_A`` (default 0.3 box).

    Returns float32 ``[z, y, x]``, maximum 1. Coordinates: Å from the box centre ``box // 2``.
    """
    rng = np.random.default_rng(seed)
    radius = 0.3 * box * pixel_size_A if radius_A is None else float(radius_A)
    atoms = []
    # helical domain on one side, β-sandwich on the other
    centres = (np.array([0.0, 0.0, 0.42 * radius]), np.array([0.0, 0.0, -0.45 * radius]))
    dom_r = 0.6 * radius
    # helices: axes on a hexagonal lattice 10 Å apart, inside the domain's sphere
    rot = _rotation_to(rng.normal(size=3))
    span = int(dom_r // 10) + 1
    for a in range(-span, span + 1):
        for b in range(-span, span + 1):
            p = np.array([10.0 * (a + 0.5 * b), 10.0 * np.sqrt(0.75) * b, 0.0])
            rho = np.hypot(p[0], p[1])
            if rho > dom_r - 3:
                continue
            length = 2 * np.sqrt(max(dom_r**2 - rho**2, 0.0))
            h = _helix_residues(length, rng)
            tilt = _rotation_to(np.array([rng.normal(0, 0.15), rng.normal(0, 0.15), 1.0]))
            atoms.append((h @ tilt.T + p) @ rot.T + centres[0])
    # β-sandwich: two sheets 10 Å apart
    rot = _rotation_to(rng.normal(size=3))
    n_strands = max(int(1.6 * dom_r / 4.8), 2)
    for y0 in (-5.0, 5.0):
        sh = _sheet_residues(n_strands, 1.6 * dom_r, rng)
        sh[:, 1] += y0
        twist = _rotation_to(np.array([rng.normal(0, 0.1), 0.0, 1.0]))
        atoms.append((sh @ twist.T) @ rot.T + centres[1])
    xyz = np.concatenate(atoms)
    xyz = xyz[np.linalg.norm(xyz, axis=1) < radius]
    xyz = xyz + rng.normal(0, 0.2, size=xyz.shape)  # coordinate error
    c = box // 2
    pts = xyz[:, ::-1] / pixel_size_A + c  # (x, y, z) Å -> (z, y, x) px
    grid = _splat(pts, rng.uniform(0.8, 1.2, size=len(pts)), box)
    shape = (box, box, box)
    s = radial_frequency_invA(shape, pixel_size_A)
    form = np.exp(-2 * np.pi**2 * atom_sigma_A**2 * s**2).astype(np.float32)
    vol = irfftn(rfftn(grid.astype(np.float32)) * form, shape)
    return (vol / vol.max()).astype(np.float32)
