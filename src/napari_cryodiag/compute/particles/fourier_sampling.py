"""Fourier sampling and posterior precision directional distributions.

Definition (REFERENCE.md "Poses and orientations"): a projection with viewing direction ``v``
fills the central plane normal to ``v``; on the Fourier shell of radius ``R`` (Fourier voxels) a
radial direction ``d`` is *sampled* by it when the point ``R d`` lies within half a voxel of that
plane, i.e. ``|d · v| <= ε = 0.5 / R``. The Fourier sampling of ``d`` is the number of such
projections, ``S(d) = Σ_i [|d · v_i| <= ε]``; the posterior precision weights each projection by
``w_i = <CTF_i²>_R / σ²`` (its CTF² averaged over the ring of radius ``R``, over the noise
variance). ``S`` is antipodally symmetric.

Fast path (``method="binned"``, default): the viewing directions are first binned on a ~2°
direction grid (:func:`.orientations.bin_directions`, O(N)); each occupied cell keeps its count,
summed weight and the first two moments of its directions. For an evaluation region (a point,
or a plot bin with its own spread of directions) and a cell, the fraction of the cell's
particles that sample the region is ``P(|x| <= ε)`` for ``x = d · v``, approximated by a uniform
distribution with the exact mean ``μ_d · μ_v`` and variance ``<D, V>_F - (μ_d · μ_v)²``
(``D``, ``V`` the second-moment matrices of ``d`` and ``v``, which are independent). A cell whose
particles all share one direction (a single view) is counted exactly. Cost is
O(N) + O(cells × regions), independent of N beyond the binning: 1e6 particles take a second or two.

``method="direct"`` evaluates the definition particle by particle (chunked matrix products);
it is the reference the binned result is tested against.

Plot maps are averages over equal-area azimuth × elevation bins (the axes of the viewing
direction histogram), not point samples: a thin band of sampled directions (a single view at
a large radius) would otherwise fall between grid points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import j0

from ...errors import CryodiagInputError
from .orientations import (
    SYM6,
    BinnedDirections,
    DirectionGrid,
    bin_directions,
    equal_area_elevation_edges_deg,
)

__all__ = [
    "slab_tolerance",
    "electron_wavelength_A",
    "ctf2_ring_mean",
    "posterior_precision_weights",
    "sampling_binned",
    "sampling_direct",
    "plot_bin_regions",
    "DirectionalMaps",
    "directional_distributions",
]

_SYM_MULT = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])


def slab_tolerance(radius_px: float) -> float:
    """``ε = 0.5 / R``: half a Fourier voxel at radius ``R`` (in voxels), as a |d·v| bound."""
    r = float(radius_px)
    if not r > 0.5:
        raise ValueError(f"the Fourier radius must exceed half a voxel, got {radius_px}")
    return 0.5 / r


# --------------------------------------------------------------------------------------------
# CTF² averaged over a ring
# --------------------------------------------------------------------------------------------
def electron_wavelength_A(voltage_kV) -> np.ndarray:
    """Relativistic electron wavelength in Å (vectorised)."""
    v = np.asarray(voltage_kV, dtype=np.float64) * 1e3
    return 12.2642598 / np.sqrt(v * (1.0 + 0.97848e-6 * v))


def ctf2_ring_mean(
    frequency_invA,
    defocus_u_A,
    defocus_v_A,
    voltage_kV=300.0,
    cs_mm=2.7,
    amplitude_contrast=0.1,
    phase_shift_deg=0.0,
) -> np.ndarray:
    """Mean of CTF² over the ring ``|s| = frequency_invA``, closed form, vectorised per particle.

    With the RELION/CTFFIND convention of :mod:`.ctf`,
    ``CTF = sin(A + B cos 2(θ - θ_ast))``, ``A = π λ Δf_mean s² - π/2 Cs λ³ s⁴ + φ + atan(Q0/√(1-Q0²))``,
    ``B = π λ (ΔfU - ΔfV)/2 s²``, and ``<sin²> = (1 - cos(2A) J0(2B)) / 2`` (the astigmatism angle
    drops out of a full-ring average).
    """
    s2 = np.asarray(frequency_invA, dtype=np.float64) ** 2
    lam = electron_wavelength_A(voltage_kV)
    cs_A = np.asarray(cs_mm, dtype=np.float64) * 1e7
    du = np.asarray(defocus_u_A, dtype=np.float64)
    dv = np.asarray(defocus_v_A, dtype=np.float64)
    q = np.clip(np.asarray(amplitude_contrast, dtype=np.float64), 0.0, 1.0)
    k3 = np.arctan2(q, np.sqrt(np.clip(1.0 - q * q, 0.0, None)))
    a = (
        np.pi * lam * 0.5 * (du + dv) * s2
        - 0.5 * np.pi * cs_A * lam**3 * s2 * s2
        + np.deg2rad(np.asarray(phase_shift_deg, dtype=np.float64))
        + k3
    )
    b = np.pi * lam * 0.5 * (du - dv) * s2
    return 0.5 * (1.0 - np.cos(2.0 * a) * j0(2.0 * b))


def posterior_precision_weights(table, frequency_invA: float, noise_variance=1.0) -> np.ndarray:
    """Per-particle weight ``<CTF²>_ring / σ²`` at ``frequency_invA`` from a canonical table.

    Needs ``defocus_u_A`` (``defocus_v_A`` defaults to it); ``voltage_kV``, ``cs_mm``,
    ``amplitude_contrast`` and ``phase_shift_deg`` default to 300 kV, 2.7 mm, 0.1 and 0 when the
    table lacks them. ``noise_variance`` is a scalar or one value per particle (1 gives a
    relative precision).
    """
    source = table.attrs.get("source") if hasattr(table, "attrs") else None
    cols = set(table.columns)
    if "defocus_u_A" not in cols and "defocus_A" not in cols:
        raise CryodiagInputError("the particle table has no defocus: cannot weight by CTF²", source)
    du = np.asarray(table["defocus_u_A"] if "defocus_u_A" in cols else table["defocus_A"], dtype=np.float64)
    dv = np.asarray(table["defocus_v_A"], dtype=np.float64) if "defocus_v_A" in cols else du

    def col(name, default):
        return np.asarray(table[name], dtype=np.float64) if name in cols else default

    w = ctf2_ring_mean(
        frequency_invA,
        du,
        dv,
        col("voltage_kV", 300.0),
        col("cs_mm", 2.7),
        col("amplitude_contrast", 0.1),
        col("phase_shift_deg", np.degrees(col("ctf/phase_shift_rad", 0.0))),
    )
    w = w / np.asarray(noise_variance, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise CryodiagInputError("non-finite CTF parameters in the particle table", source)
    return w


# --------------------------------------------------------------------------------------------
# sampling: binned (fast) and direct (reference)
# --------------------------------------------------------------------------------------------
def _point_moments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    sec = np.stack([p[:, a] * p[:, b] for a, b in SYM6], axis=1)
    return p, sec


def sampling_binned(
    binned: BinnedDirections,
    region_mean,
    region_second=None,
    radius_px: float = 32.0,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier sampling and weighted sampling of evaluation regions from binned directions.

    ``region_mean`` (m, 3) are unit points or mean directions of regions; ``region_second``
    (m, 6) their second moments (xx, yy, zz, xy, xz, yz) (default: those of points).
    Returns ``(S, W)``: the (fractional) number of projections and the summed weight sampling
    each region.

    Only (region, cell) pairs that can overlap the slab are evaluated: with ``tr`` the trace of
    a covariance, ``var(d·v) <= tr_d + tr_v + tr_d tr_v``, so pairs with
    ``|μ_d·μ_v| > ε + sqrt(3 (tr_d + tr_v + tr_d tr_v))`` contribute nothing.
    """
    eps = slab_tolerance(radius_px)
    if region_second is None:
        mu_d, sec_d = _point_moments(region_mean)
    else:
        mu_d = np.asarray(region_mean, dtype=np.float64).reshape(-1, 3)
        sec_d = np.asarray(region_second, dtype=np.float64).reshape(-1, 6)
    mu_v = binned.mean  # (b, 3)
    sec_v = binned.second * _SYM_MULT  # (b, 6)
    tr_v = np.clip(binned.second[:, :3].sum(axis=1) - np.einsum("ij,ij->i", mu_v, mu_v), 0.0, None)
    tr_d_all = np.clip(sec_d[:, :3].sum(axis=1) - np.einsum("ij,ij->i", mu_d, mu_d), 0.0, None)
    count = binned.count
    weight = binned.weight
    S = np.zeros(len(mu_d))
    W = np.zeros(len(mu_d))
    for s in range(0, len(mu_d), chunk):
        md = mu_d[s : s + chunk]
        tr_d = float(tr_d_all[s : s + chunk].max(initial=0.0))
        bound = eps + np.sqrt(3.0 * (tr_v + tr_d + tr_v * tr_d))  # (b,)
        t_all = md @ mu_v.T  # mean of x = d.v
        i, j = np.nonzero(np.abs(t_all) <= bound[None, :])
        if i.size == 0:
            continue
        t = t_all[i, j]
        ex2 = np.einsum("ij,ij->i", sec_d[s + i], sec_v[j])  # E[x^2]
        var = np.maximum(ex2 - t * t, 0.0)
        h = np.sqrt(3.0 * var)  # half width of the uniform with that variance
        # overlap of [t - h, t + h] with [-eps, eps], in coordinates relative to t (no cancellation);
        # a cell without spread (rounding-level variance) is a step, |t| <= eps, as in the definition
        spread = h > 1e-9
        hs = np.where(spread, h, 1.0)
        overlap = np.clip(np.minimum(hs, eps - t) - np.maximum(-hs, -eps - t), 0.0, None) / (2.0 * hs)
        frac = np.where(spread, np.minimum(overlap, 1.0), (np.abs(t) <= eps).astype(np.float64))
        m = len(md)
        S[s : s + m] = np.bincount(i, weights=frac * count[j], minlength=m)
        W[s : s + m] = np.bincount(i, weights=frac * weight[j], minlength=m)
    return S, W


def sampling_direct(vectors, points, radius_px: float, weights=None, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Definition, particle by particle: ``S(d) = Σ_i [|d·v_i| <= 0.5/R]`` (and weighted sum)."""
    eps = slab_tolerance(radius_px)
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    w = np.ones(len(v)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    S = np.zeros(len(p))
    W = np.zeros(len(p))
    for s in range(0, len(v), chunk):
        hit = np.abs(p @ v[s : s + chunk].T) <= eps  # (m, chunk)
        S += hit.sum(axis=1)
        W += hit @ w[s : s + chunk]
    return S, W


# --------------------------------------------------------------------------------------------
# directional maps on the azimuth x elevation axes
# --------------------------------------------------------------------------------------------
def plot_bin_regions(n_azimuth: int = 72, n_elevation: int = 36):
    """Mean direction (m, 3) and second moments (m, 6) of each equal-area plot bin.

    Bins are ordered ``[i_elevation, i_azimuth]`` (row-major), edges as in the viewing
    direction histogram. Directions are uniform over a bin, i.e. uniform in ``z`` and in
    azimuth ``φ``, so the moments are exact integrals: with ``r = sqrt(1 - z²)``,
    ``x = r cos φ``, ``y = r sin φ`` and ``z`` and ``φ`` independent.
    """
    n_az, n_el = int(n_azimuth), int(n_elevation)
    z = np.linspace(-1.0, 1.0, n_el + 1)
    a = np.linspace(-np.pi, np.pi, n_az + 1)
    z0, z1 = z[:-1], z[1:]
    dz = z1 - z0
    prim_r = 0.5 * (z * np.sqrt(np.clip(1 - z * z, 0, None)) + np.arcsin(np.clip(z, -1, 1)))
    prim_rz = -((np.clip(1 - z * z, 0, None)) ** 1.5) / 3.0
    e_z = 0.5 * (z0 + z1)
    e_zz = (z0 * z0 + z0 * z1 + z1 * z1) / 3.0
    e_r = np.diff(prim_r) / dz
    e_rz = np.diff(prim_rz) / dz
    e_rr = 1.0 - e_zz
    a0, a1 = a[:-1], a[1:]
    da = a1 - a0
    e_c = (np.sin(a1) - np.sin(a0)) / da
    e_s = -(np.cos(a1) - np.cos(a0)) / da
    e_cc = 0.5 + (np.sin(2 * a1) - np.sin(2 * a0)) / (4 * da)
    e_ss = 1.0 - e_cc
    e_cs = -(np.cos(2 * a1) - np.cos(2 * a0)) / (4 * da)
    Z = lambda v: np.broadcast_to(v[:, None], (n_el, n_az))  # noqa: E731
    A = lambda v: np.broadcast_to(v[None, :], (n_el, n_az))  # noqa: E731
    mean = np.stack([Z(e_r) * A(e_c), Z(e_r) * A(e_s), Z(e_z)], axis=-1).reshape(-1, 3)
    second = np.stack(
        [Z(e_rr) * A(e_cc), Z(e_rr) * A(e_ss), Z(e_zz), Z(e_rr) * A(e_cs), Z(e_rz) * A(e_c), Z(e_rz) * A(e_s)],
        axis=-1,
    ).reshape(-1, 6)
    return mean, second


@dataclass
class DirectionalMaps:
    """Fourier sampling and posterior precision averaged over equal-area plot bins.

    ``fourier_sampling[i_el, i_az]``: mean number of projections sampling a direction of the
    bin; ``posterior_precision``: mean summed ``<CTF²>/σ²`` of those projections (None without
    weights).
    """

    fourier_sampling: np.ndarray
    posterior_precision: np.ndarray | None
    azimuth_edges_deg: np.ndarray
    elevation_edges_deg: np.ndarray
    radius_px: float
    n_particles: int
    method: str

    @property
    def tolerance(self) -> float:
        return slab_tolerance(self.radius_px)

    def to_dict(self) -> dict:
        def summary(m):
            if m is None:
                return None
            mean = float(m.mean())
            return {
                "min": float(m.min()),
                "max": float(m.max()),
                "mean": mean,
                "min_over_mean": float(m.min() / mean) if mean > 0 else None,
                "fraction_of_bins_below_half_a_projection": float((m < 0.5).mean()),
            }

        return {
            "radius_px": float(self.radius_px),
            "tolerance_abs_d_dot_v": self.tolerance,
            "method": self.method,
            "n_particles": int(self.n_particles),
            "azimuth_edges_deg": self.azimuth_edges_deg,
            "elevation_edges_deg": self.elevation_edges_deg,
            "fourier_sampling_summary": summary(self.fourier_sampling),
            "posterior_precision_summary": summary(self.posterior_precision),
            "fourier_sampling": self.fourier_sampling,
            "posterior_precision": self.posterior_precision,
        }


def directional_distributions(
    vectors=None,
    weights=None,
    radius_px: float = 32.0,
    n_azimuth: int = 72,
    n_elevation: int = 36,
    *,
    binned: BinnedDirections | None = None,
    grid: DirectionGrid | None = None,
    method: str = "binned",
) -> DirectionalMaps:
    """Fourier sampling (and posterior precision when ``weights`` are given) on the plot axes.

    Pass either ``vectors`` (n, 3) (and ``weights``), or an already ``binned`` set.
    ``method="direct"`` averages the per-particle definition over 4 × 4 sub-points per bin
    (reference; slow for large sets).
    """
    n_az, n_el = int(n_azimuth), int(n_elevation)
    if method == "binned":
        if binned is None:
            binned = bin_directions(vectors, weights, grid)
        mean, second = plot_bin_regions(n_az, n_el)
        S, W = sampling_binned(binned, mean, second, radius_px)
        has_w = weights is not None or not np.array_equal(binned.weight, binned.count)
        n = binned.n_particles
    elif method == "direct":
        if vectors is None:
            raise ValueError("method='direct' needs the vectors")
        sub = 4
        pts = _plot_subpoints(n_az, n_el, sub)
        S, W = sampling_direct(vectors, pts, radius_px, weights)
        S = S.reshape(-1, sub * sub).mean(axis=1)
        W = W.reshape(-1, sub * sub).mean(axis=1)
        has_w = weights is not None
        n = len(np.asarray(vectors).reshape(-1, 3))
    else:
        raise ValueError(f"unknown method {method!r}")
    return DirectionalMaps(
        fourier_sampling=S.reshape(n_el, n_az),
        posterior_precision=W.reshape(n_el, n_az) if has_w else None,
        azimuth_edges_deg=np.linspace(-180.0, 180.0, n_az + 1),
        elevation_edges_deg=equal_area_elevation_edges_deg(n_el),
        radius_px=float(radius_px),
        n_particles=n,
        method=method,
    )


def _plot_subpoints(n_az: int, n_el: int, sub: int) -> np.ndarray:
    z_edges = np.linspace(-1.0, 1.0, n_el + 1)
    a_edges = np.linspace(-np.pi, np.pi, n_az + 1)
    f = (np.arange(sub) + 0.5) / sub
    z = z_edges[:-1, None] + np.diff(z_edges)[:, None] * f[None, :]
    a = a_edges[:-1, None] + np.diff(a_edges)[:, None] * f[None, :]
    r = np.sqrt(np.clip(1 - z * z, 0, None))
    x = r[:, None, :, None] * np.cos(a)[None, :, None, :]
    y = r[:, None, :, None] * np.sin(a)[None, :, None, :]
    zz = np.broadcast_to(z[:, None, :, None], x.shape)
    return np.stack([x, y, zz], axis=-1).reshape(-1, 3)
