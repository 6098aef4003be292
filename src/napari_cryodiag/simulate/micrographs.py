"""Simulated micrographs with particles, junk and empty areas, and picks with known truth.

Image model (one micrograph, all lengths in pixels of the micrograph):

1. *Phase signal* (projected potential, arbitrary units, the unfiltered projection of the
   density peaks at ``contrast``): projections of the 3D density at random poses
   (:class:`~napari_cryodiag.compute.projection.FourierProjector`) added at the particle
   centres (sub-pixel, through the projector's Fourier shift), dense clumps of overlapping
   projections (aggregates), and a carbon film outside a large circular hole (a constant plus
   a low-pass texture, with a soft 1.5 px edge).
2. *CTF*: the whole phase signal is filtered once in Fourier space with the micrograph's CTF
   (:func:`~napari_cryodiag.compute.ctf.ctf_2d`, RELION sign convention, mild astigmatism, a
   B-factor envelope), after mirror padding so nothing wraps around.
3. *Intensity*: ``dose_px * ice(x, y) * carbon_absorption(x, y) * (1 - filtered)``: a smooth
   low-frequency background (an ice-thickness gradient plus a gentle random field), the carbon
   darker than the hole. With the CTF's positive first lobe, particles are **dark** on a bright
   background, as in raw micrographs.
4. *Shot noise*: Poisson counts at ``dose_e_per_A2`` electrons per Å².

Picks = every true particle (``truth == "particle"``) plus false picks on junk (``"junk"``:
along the carbon edge and on aggregates; ``truth_detail`` says which) and on empty areas
(``"empty"``: discs of ice kept free of particles). Their ``ncc`` and ``power`` come from
:func:`score_simulated_picks`, i.e. from the same scoring code as real picks.

Defocus per micrograph is spread evenly over ``defocus_range_A`` (shuffled), so that the pick
scores depend strongly on defocus, the dependence that score calibration removes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage

from ..compute.ctf import ctf_2d
from ..compute.projection import FourierProjector, euler_to_matrix
from .density import gaussian_atoms_density

TRUTH_LABELS = ("particle", "junk", "empty")

#: columns of the pick table in order (canonical names, docs/ARCHITECTURE.md)
PICK_COLUMNS = [
    "micrograph_name",
    "micrograph",
    "x_px",
    "y_px",
    "defocus_A",
    "defocus_u_A",
    "defocus_v_A",
    "defocus_angle_deg",
    "voltage_kV",
    "cs_mm",
    "amplitude_contrast",
    "pixel_size_A",
    "rot_deg",
    "tilt_deg",
    "psi_deg",
    "diameter_px",
    "truth",
    "truth_detail",
]


@dataclass
class SimulatedMicrographs:
    """Micrographs, the truth behind them, and the picks (``truth``) with their labels."""

    images: np.ndarray  #: (n, ny, nx) float32 raw micrographs (electron counts per pixel)
    names: list[str]  #: file names, ``sim_0001.mrc`` ...
    pixel_size_A: float
    defocus_u_A: np.ndarray  #: (n,) Å, underfocus positive
    defocus_v_A: np.ndarray  #: (n,)
    defocus_angle_deg: np.ndarray  #: (n,)
    voltage_kV: float
    cs_mm: float
    amplitude_contrast: float
    bfactor_A2: float
    particle_diameter_A: float
    volume: np.ndarray  #: (box, box, box) float32 density that was projected
    truth: pd.DataFrame  #: canonical pick table + ``truth``/``truth_detail`` (+ ``ncc``, ``power``)
    regions: pd.DataFrame  #: junk and empty areas: micrograph, kind, x_px, y_px, radius_px, inside
    clean: np.ndarray | None = None  #: (n, ny, nx) CTF-filtered phase signal (no noise), if kept
    seed: int = 0
    params: dict = field(default_factory=dict)

    @property
    def defocus_A(self) -> np.ndarray:
        """Mean defocus per micrograph, (dU + dV) / 2, Å."""
        return 0.5 * (self.defocus_u_A + self.defocus_v_A)

    @property
    def keys(self) -> list[str]:
        """Matching keys of the micrographs (the ``micrograph`` column of the picks)."""
        return [n.rsplit(".", 1)[0] for n in self.names]

    @property
    def picks(self) -> pd.DataFrame:
        """Alias of :attr:`truth` (the picks, each with its truth label)."""
        return self.truth

    @property
    def particle_diameter_px(self) -> float:
        return self.particle_diameter_A / self.pixel_size_A

    def region_mask(self, index: int, kind: str) -> np.ndarray:
        """Boolean (ny, nx) mask of the areas of one ``kind`` (carbon, aggregate, empty) on micrograph ``index``."""
        ny, nx = self.images.shape[1:]
        yy, xx = np.mgrid[0:ny, 0:nx]
        mask = np.zeros((ny, nx), bool)
        rows = self.regions[(self.regions["micrograph"] == self.keys[index]) & (self.regions["kind"] == kind)]
        for r in rows.itertuples():
            inside = (xx - r.x_px) ** 2 + (yy - r.y_px) ** 2 <= r.radius_px**2
            mask |= inside if r.inside else ~inside
        return mask


# --------------------------------------------------------------------------------------------
# helpers


def particle_diameter_A(volume: np.ndarray, pixel_size_A: float, fraction: float = 0.05) -> float:
    """Diameter of the density: twice the largest distance from the centre of mass of voxels above ``fraction`` of the maximum."""
    vol = np.asarray(volume, float)
    idx = np.argwhere(vol > fraction * vol.max())
    com = ndimage.center_of_mass(np.clip(vol, 0, None))
    r = np.sqrt(((idx - np.asarray(com)) ** 2).sum(axis=1)).max()
    return float(2.0 * (r + 0.5) * pixel_size_A)


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly distributed RELION Euler triples (rot, tilt, psi) in degrees, shape (n, 3)."""
    rot = rng.uniform(-180.0, 180.0, n)
    tilt = np.rad2deg(np.arccos(rng.uniform(-1.0, 1.0, n)))
    psi = rng.uniform(-180.0, 180.0, n)
    return np.stack([rot, tilt, psi], axis=1)


def _smooth_field(rng, shape, sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``sigma_px`` (computed coarse, then zoomed)."""
    ny, nx = shape
    f = max(1, int(sigma_px // 4))
    small = rng.normal(size=(ny // f + 2, nx // f + 2)).astype(np.float32)
    small = ndimage.gaussian_filter(small, sigma_px / f, mode="wrap")
    big = ndimage.zoom(small, f, order=1)[:ny, :nx]
    big -= big.mean()
    big /= big.std() + 1e-12
    return big


def _add_images(canvas: np.ndarray, images: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> None:
    """Add square images (m, b, b) into ``canvas`` with their centre pixel ``b // 2`` at integer (cx, cy), clipping at borders."""
    ny, nx = canvas.shape
    b = images.shape[-1]
    h = b // 2
    for img, x, y in zip(images, cx, cy):
        x0, y0 = int(x) - h, int(y) - h
        sx0, sy0 = max(0, -x0), max(0, -y0)
        sx1, sy1 = min(b, nx - x0), min(b, ny - y0)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        canvas[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1] += img[sy0:sy1, sx0:sx1]


def _place_discs(rng, shape, n, radius_px, margin_px, avoid, max_tries=2000):
    """Up to ``n`` disc centres inside ``shape`` (with ``margin_px``) not overlapping ``avoid`` [(x, y, r)] or each other."""
    ny, nx = shape
    out = []
    tries = 0
    margin_px = min(margin_px, radius_px, 0.5 * min(nx, ny) - 1)
    while len(out) < n and tries < max_tries:
        tries += 1
        x = rng.uniform(margin_px, nx - margin_px)
        y = rng.uniform(margin_px, ny - margin_px)
        ok = all((x - ax) ** 2 + (y - ay) ** 2 > (radius_px + ar) ** 2 for ax, ay, ar in avoid + out)
        if ok:
            out.append((x, y, radius_px))
    return out


def _place_particles(rng, shape, n, min_dist_px, margin_px, allowed: np.ndarray) -> np.ndarray:
    """Dart throwing: up to ``n`` centres (x, y) at least ``min_dist_px`` apart, where ``allowed`` is True."""
    ny, nx = shape
    pts = np.empty((0, 2))
    for _ in range(20):
        need = n - len(pts)
        if need <= 0:
            break
        mx = min(margin_px, 0.5 * (nx - 1))
        my = min(margin_px, 0.5 * (ny - 1))
        cand = np.column_stack([rng.uniform(mx, nx - 1 - mx, 4 * need), rng.uniform(my, ny - 1 - my, 4 * need)])
        cand = cand[allowed[np.rint(cand[:, 1]).astype(int), np.rint(cand[:, 0]).astype(int)]]
        for c in cand:
            if len(pts) >= n:
                break
            if len(pts) == 0 or np.min(((pts - c) ** 2).sum(axis=1)) >= min_dist_px**2:
                pts = np.vstack([pts, c])
    return pts


# --------------------------------------------------------------------------------------------
# scores


def score_simulated_picks(
    images, table: pd.DataFrame, names, diameter_px: float, *, pixel_size_A: float | None = None,
    **kwargs,
):
    """NCC and power score of every pick in ``table`` on its micrograph (``images[i]`` named ``names[i]``).

    Uses :func:`napari_cryodiag.compute.picks.scores.score_micrograph`, the code that scores real
    picks, with its defaults (blob template of ``diameter_px``, dark particles, background
    subtracted, its default low-pass). Keyword arguments go to ``score_micrograph``. Returns two
    float arrays aligned with ``table`` rows (NaN where a pick's box leaves the micrograph).
    """
    from ..compute.picks.scores import score_micrograph

    kwargs["pixel_size_A"] = pixel_size_A

    ncc = np.full(len(table), np.nan)
    power = np.full(len(table), np.nan)
    keys = [str(n).rsplit(".", 1)[0] for n in names]
    mic = table["micrograph"].to_numpy()
    for i, key in enumerate(keys):
        rows = np.flatnonzero(mic == key)
        if len(rows) == 0:
            continue
        n_i, p_i = score_micrograph(
            np.asarray(images[i]),
            table["x_px"].to_numpy()[rows],
            table["y_px"].to_numpy()[rows],
            diameter_px=diameter_px,
            **kwargs,
        )
        ncc[rows] = n_i
        power[rows] = p_i
    return ncc, power


# --------------------------------------------------------------------------------------------
# the simulator


def simulate_micrographs(
    n_micrographs: int = 8,
    shape: tuple[int, int] = (1024, 1024),
    pixel_size_A: float = 2.0,
    seed: int = 0,
    *,
    particles_per_micrograph: int = 100,
    box: int = 64,
    volume: np.ndarray | None = None,
    defocus_range_A: tuple[float, float] = (8000.0, 30000.0),
    astigmatism_A: float = 400.0,
    voltage_kV: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    bfactor_A2: float = 80.0,
    dose_e_per_A2: float = 30.0,
    contrast: float = 0.3,
    carbon_fraction: float = 0.5,
    aggregates_per_micrograph: tuple[int, int] = (1, 3),
    empty_areas_per_micrograph: tuple[int, int] = (1, 2),
    false_picks_edge: int = 8,
    false_picks_empty: int = 5,
    score: bool = True,
    keep_clean: bool = False,
    name_format: str = "sim_{:04d}.mrc",
) -> SimulatedMicrographs:
    """Simulate ``n_micrographs`` micrographs of ``shape`` (ny, nx) with particles, junk, empty areas and picks.

    Deterministic for a given ``seed``. See the module docstring for the image model.

    Parameters
    ----------
    particles_per_micrograph
        True particles per micrograph (fewer if they do not fit).
    box, volume
        Box (pixels) of the density; ``volume`` overrides the default
        :func:`~napari_cryodiag.simulate.density.gaussian_atoms_density` (same pixel size).
    defocus_range_A
        Mean defoci are spread evenly over this range (then shuffled); dU - dV is drawn up to
        ``astigmatism_A``, the angle at random.
    dose_e_per_A2, contrast
        Shot noise level and phase-contrast scale; the defaults give a per-pixel SNR of a few
        percent: particles show after a low-pass, hardly in the raw image.
    carbon_fraction
        Fraction of micrographs with a carbon edge across one corner (at least one when > 0).
    score
        Compute ``ncc`` and ``power`` with :func:`score_simulated_picks`.
    keep_clean
        Keep the noise-free CTF-filtered phase signal in ``clean`` (tests).
    """
    rng = np.random.default_rng(seed)
    ny, nx = int(shape[0]), int(shape[1])
    n_mics = int(n_micrographs)
    if n_mics < 1:
        raise ValueError(f"n_micrographs must be >= 1, got {n_micrographs}")
    if min(ny, nx) < 2 * box:
        raise ValueError(f"micrographs of {ny}x{nx} px are too small for a {box} px particle box")
    apix = float(pixel_size_A)

    vol = gaussian_atoms_density(box=box, pixel_size_A=apix, seed=seed) if volume is None else np.asarray(volume, np.float32)
    box = vol.shape[0]
    projector = FourierProjector(vol, pad=2)
    diam_A = particle_diameter_A(vol, apix)
    diam_px = diam_A / apix
    # Scale so that the mean peak of unfiltered projections is ``contrast``.
    ref = projector.project(euler_to_matrix(*random_rotations(np.random.default_rng(seed + 1), 16).T))
    scale = contrast / float(ref.reshape(len(ref), -1).max(axis=1).mean())

    # Per-micrograph CTF
    lo, hi = defocus_range_A
    mean_df = np.linspace(lo, hi, n_mics) if n_mics > 1 else np.array([0.5 * (lo + hi)])
    mean_df = rng.permutation(mean_df + rng.uniform(-0.02, 0.02, n_mics) * (hi - lo) / max(n_mics, 1))
    astig = rng.uniform(0.25, 1.0, n_mics) * astigmatism_A
    df_u = mean_df + astig / 2
    df_v = mean_df - astig / 2
    df_ang = rng.uniform(-180.0, 180.0, n_mics)

    n_carbon = int(round(carbon_fraction * n_mics))
    if carbon_fraction > 0:
        n_carbon = max(n_carbon, 1)
    has_carbon = np.zeros(n_mics, bool)
    has_carbon[rng.permutation(n_mics)[:n_carbon]] = True

    names = [name_format.format(i + 1) for i in range(n_mics)]
    keys = [n.rsplit(".", 1)[0] for n in names]
    images = np.empty((n_mics, ny, nx), np.float32)
    clean = np.empty((n_mics, ny, nx), np.float32) if keep_clean else None
    dose_px = dose_e_per_A2 * apix**2
    pad = int(min(max(box, 64), ny // 2, nx // 2))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)

    pick_rows = []
    region_rows = []
    for i in range(n_mics):
        phase = np.zeros((ny, nx), np.float32)
        absorb = np.ones((ny, nx), np.float32)
        allowed = np.ones((ny, nx), bool)
        avoid = []

        # carbon film outside a large hole whose edge cuts one corner
        if has_carbon[i]:
            r_hole = rng.uniform(1.6, 2.4) * max(nx, ny)
            corner = rng.integers(4)
            cx_c = nx if corner in (1, 2) else 0.0
            cy_c = ny if corner in (2, 3) else 0.0
            # the hole centre lies away from that corner, so the carbon covers ~ 10-20 % of the image
            ang = np.arctan2(ny / 2 - cy_c, nx / 2 - cx_c) + rng.uniform(-0.25, 0.25)
            depth = rng.uniform(0.35, 0.55) * np.hypot(nx, ny) / 2  # how far the edge reaches into the image
            hx = cx_c + np.cos(ang) * (r_hole + depth)
            hy = cy_c + np.sin(ang) * (r_hole + depth)
            dist_out = np.sqrt((xx - hx) ** 2 + (yy - hy) ** 2) - r_hole  # > 0 on carbon
            carbon = 1.0 / (1.0 + np.exp(-np.clip(dist_out, -50, 50) / 1.5))
            texture = _smooth_field(rng, (ny, nx), 3.0)
            phase += (carbon * (1.5 + 0.3 * texture)) * contrast
            absorb *= 1.0 - 0.3 * carbon
            allowed &= dist_out < -0.75 * diam_px
            region_rows.append(dict(micrograph=keys[i], kind="carbon", x_px=hx, y_px=hy, radius_px=r_hole, inside=False))
            # false picks along the edge, on both sides of it
            theta_c = np.arctan2(cy_c - hy, cx_c - hx)
            # angular extent of the edge inside the image: sample many, keep those inside
            th = theta_c + np.linspace(-0.6, 0.6, 4000)
            ex = hx + r_hole * np.cos(th)
            ey = hy + r_hole * np.sin(th)
            m = diam_px
            inside = (ex > m) & (ex < nx - 1 - m) & (ey > m) & (ey < ny - 1 - m)
            th = th[inside]
            if len(th):
                pick_th = rng.choice(th, size=false_picks_edge, replace=len(th) < false_picks_edge)
                off = rng.uniform(-0.3, 0.3, false_picks_edge) * diam_px
                for t, o in zip(pick_th, off):
                    pick_rows.append(
                        dict(mic=i, x=hx + (r_hole + o) * np.cos(t), y=hy + (r_hole + o) * np.sin(t), truth="junk", detail="edge")
                    )

        # aggregates: dense clumps of overlapping particles
        n_agg = rng.integers(aggregates_per_micrograph[0], aggregates_per_micrograph[1] + 1)
        agg = _place_discs(rng, (ny, nx), n_agg, min(1.6 * diam_px, 0.15 * min(nx, ny)), 2 * diam_px, avoid)
        agg = [a for a in agg if allowed[int(a[1]), int(a[0])]]
        for ax, ay, ar in agg:
            k = int(rng.integers(15, 30))
            pos = np.column_stack([ax, ay]) + rng.normal(size=(k, 2)) * 0.45 * diam_px
            eul = random_rotations(rng, k)
            ip = np.rint(pos)
            imgs = projector.project(euler_to_matrix(*eul.T), shifts_px=pos - ip) * scale
            _add_images(phase, imgs, ip[:, 0], ip[:, 1])
            region_rows.append(dict(micrograph=keys[i], kind="aggregate", x_px=ax, y_px=ay, radius_px=ar, inside=True))
            for _ in range(int(rng.integers(1, 3))):
                j = rng.normal(size=2) * 0.2 * diam_px
                pick_rows.append(dict(mic=i, x=ax + j[0], y=ay + j[1], truth="junk", detail="aggregate"))
        avoid += agg

        # empty areas: ice kept free of particles
        n_emp = rng.integers(empty_areas_per_micrograph[0], empty_areas_per_micrograph[1] + 1)
        emp = _place_discs(rng, (ny, nx), n_emp, max(min(2.5 * diam_px, 0.2 * min(nx, ny)), 1.3 * diam_px), 3 * diam_px, avoid)
        emp = [e for e in emp if allowed[int(e[1]), int(e[0])]]
        for ex_, ey_, er in emp:
            region_rows.append(dict(micrograph=keys[i], kind="empty", x_px=ex_, y_px=ey_, radius_px=er, inside=True))
            k = max(1, int(round(false_picks_empty / max(len(emp), 1))))
            rr = np.sqrt(rng.uniform(0, 1, k)) * (er - 1.0 * diam_px)
            aa = rng.uniform(0, 2 * np.pi, k)
            for r_, a_ in zip(rr, aa):
                pick_rows.append(dict(mic=i, x=ex_ + r_ * np.cos(a_), y=ey_ + r_ * np.sin(a_), truth="empty", detail="empty"))
        avoid += emp
        for cx_, cy_, cr in avoid:
            allowed &= (xx - cx_) ** 2 + (yy - cy_) ** 2 > (cr + 0.6 * diam_px) ** 2

        # true particles
        pos = _place_particles(rng, (ny, nx), particles_per_micrograph, 1.15 * diam_px, max(box / 2, diam_px), allowed)
        eul = random_rotations(rng, len(pos))
        ip = np.rint(pos)
        if len(pos):
            imgs = projector.project(euler_to_matrix(*eul.T), shifts_px=pos - ip) * scale
            _add_images(phase, imgs, ip[:, 0], ip[:, 1])
        for (x, y), (r, t, p) in zip(pos, eul):
            pick_rows.append(dict(mic=i, x=x, y=y, truth="particle", detail="particle", rot=r, tilt=t, psi=p))

        # CTF on the whole (mirror-padded) phase image
        padded = np.pad(phase, pad, mode="reflect")
        ctf = ctf_2d(
            padded.shape, apix, df_u[i], df_v[i], df_ang[i],
            voltage_kV=voltage_kV, cs_mm=cs_mm, amplitude_contrast=amplitude_contrast, bfactor_A2=bfactor_A2,
        )
        filt = sfft.irfft2(sfft.rfft2(padded) * ctf, s=padded.shape)[pad : pad + ny, pad : pad + nx].astype(np.float32)
        if clean is not None:
            clean[i] = filt

        # smooth background (ice thickness gradient), absorption, shot noise
        gx, gy = rng.uniform(-0.08, 0.08, 2)
        ice = 1.0 + gx * (xx / nx - 0.5) + gy * (yy / ny - 0.5) + 0.01 * _smooth_field(rng, (ny, nx), max(nx, ny) / 8)
        expected = dose_px * ice * absorb * (1.0 - filt)
        images[i] = rng.poisson(np.clip(expected, 0, None)).astype(np.float32)

    # the pick table
    rows = pd.DataFrame(pick_rows)
    for c in ("rot", "tilt", "psi"):
        if c not in rows:
            rows[c] = np.nan
    mic = rows["mic"].to_numpy()
    table = pd.DataFrame(
        {
            "micrograph_name": np.asarray(names, dtype=object)[mic],
            "micrograph": np.asarray(keys, dtype=object)[mic],
            "x_px": rows["x"].to_numpy(float),
            "y_px": rows["y"].to_numpy(float),
            "defocus_A": mean_df[mic],
            "defocus_u_A": df_u[mic],
            "defocus_v_A": df_v[mic],
            "defocus_angle_deg": df_ang[mic],
            "voltage_kV": float(voltage_kV),
            "cs_mm": float(cs_mm),
            "amplitude_contrast": float(amplitude_contrast),
            "pixel_size_A": apix,
            "rot_deg": rows["rot"].to_numpy(float),
            "tilt_deg": rows["tilt"].to_numpy(float),
            "psi_deg": rows["psi"].to_numpy(float),
            "diameter_px": diam_px,
            "truth": rows["truth"].to_numpy(object),
            "truth_detail": rows["detail"].to_numpy(object),
        },
        columns=PICK_COLUMNS,
    )
    # picks in no particular order within a micrograph (as a picker writes them), micrographs in order
    order = np.lexsort((rng.random(len(table)), mic))
    table = table.iloc[order].reset_index(drop=True)
    table["micrograph_name"] = table["micrograph_name"].astype(str)
    table["micrograph"] = table["micrograph"].astype(str)
    table["truth"] = table["truth"].astype(str)
    table["truth_detail"] = table["truth_detail"].astype(str)
    if score:
        ncc, power = score_simulated_picks(images, table, names, diam_px, pixel_size_A=apix)
        table["ncc"] = ncc
        table["power"] = power

    regions = pd.DataFrame(region_rows, columns=["micrograph", "kind", "x_px", "y_px", "radius_px", "inside"])
    params = dict(
        n_micrographs=n_mics, shape=(ny, nx), pixel_size_A=apix, seed=seed, particles_per_micrograph=particles_per_micrograph,
        box=box, defocus_range_A=tuple(defocus_range_A), astigmatism_A=astigmatism_A, bfactor_A2=bfactor_A2,
        dose_e_per_A2=dose_e_per_A2, contrast=contrast, carbon_fraction=carbon_fraction,
    )
    return SimulatedMicrographs(
        images=images,
        names=names,
        pixel_size_A=apix,
        defocus_u_A=df_u,
        defocus_v_A=df_v,
        defocus_angle_deg=df_ang,
        voltage_kV=float(voltage_kV),
        cs_mm=float(cs_mm),
        amplitude_contrast=float(amplitude_contrast),
        bfactor_A2=float(bfactor_A2),
        particle_diameter_A=diam_A,
        volume=vol,
        truth=table,
        regions=regions,
        clean=clean,
        seed=seed,
        params=params,
    )
