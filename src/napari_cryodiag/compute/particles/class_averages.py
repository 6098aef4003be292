"""Half-set class averages from particle images, and the per-class FRC at 0.5.

For every particle with a class, the image is

1. CTF-corrected in its own frame: ``ctf="phase_flip"`` (default) multiplies its transform by
   ``sign(CTF)``; ``ctf="wiener"`` multiplies by ``CTF`` and divides the class sums by
   ``sum CTF^2 + wiener_constant * count`` (``CTF`` in the aligned frame); ``ctf="none"``;
2. centred: shifted by the particle's origin (``shift_x_A``, ``shift_y_A``; RELION convention,
   the shift that centres the particle): ``centred(r) = image(r - shift)``, as a phase ramp;
3. rotated in plane by ``psi_deg``: ``aligned(u) = centred(R(psi)^T u)`` with ``R(psi)`` the
   counter-clockwise rotation in (x, y). This inverts RELION's model ``image(r) =
   ref(R(psi) (r + shift))`` (the projection with Euler angles (0, 0, psi) of
   :mod:`napari_cryodiag.compute.projection`), so the aligned images average to the reference.
   The rotated CTF of an astigmatic particle is the CTF with angle ``defocus_angle + psi``.
   Rotation uses ``scipy.ndimage.map_coordinates`` (``order=1`` by default); the interpolation
   damps both halves alike, so the FRC is barely affected.

Aligned images are summed per (class, half). Halves are the ``split`` column (0/1) when the
table has both values, else alternating rows within each class (``halves="alternate"``).
The FRC of the two half averages (soft circular mask, :mod:`napari_cryodiag.compute.particles.frc`) gives
each class's resolution at 0.5.

Images come from an in-memory stack (``images=``, indexed by ``image_index`` or by row) or from
an image source (``source=``): the stack files named in ``image_path`` are found and read by
:mod:`napari_cryodiag.io.particle_images`, which says which are missing; the caller then reports
``"no particle images: <why>"`` instead of an FRC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd
from scipy import ndimage

from ...errors import CryodiagInputError
from ..progress import run_steps
from ..scheduling import TaskRunner, task_key
from .frc import frc, resolutions_at, soft_circular_mask

__all__ = [
    "ClassAverages",
    "ParticleImages",
    "array_images",
    "iter_class_averages",
    "compute_class_averages",
    "align_images",
    "frc_weighted",
    "CTF_MODES",
]

CTF_MODES = ("phase_flip", "wiener", "none")


# --------------------------------------------------------------------------- image sources
@dataclass
class ParticleImages:
    """An in-memory stack of particle images, indexed by ``image_index`` (or by row).

    The image-source protocol of :func:`iter_class_averages`: ``array`` (the stack, or ``None``
    for a file-backed source), ``box()``, ``get(image_path, index)`` and ``pixel_size_A``
    (:class:`napari_cryodiag.io.particle_images.StackImages` is the file-backed one).
    """

    array: np.ndarray
    pixel_size_A: float | None = None

    def box(self) -> int:
        return int(self.array.shape[-1])

    def get(self, image_path: str | None, index: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[index], dtype=np.float32)


def array_images(table: pd.DataFrame, images: np.ndarray) -> tuple[ParticleImages | None, str]:
    """The in-memory stack ``images`` as an image source for ``table``; returns ``(source, reason)``
    with ``source`` None and ``reason`` ``"no particle images: <why>"`` when it does not fit."""
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        return None, f"no particle images: expected a stack of square images, got shape {arr.shape}"
    idx = table["image_index"].to_numpy() if "image_index" in table else np.arange(len(table))
    if len(table) and (np.nanmax(idx) >= arr.shape[0] or np.nanmin(idx) < 0):
        return None, f"no particle images: image index out of range of the {arr.shape[0]}-image stack"
    return ParticleImages(array=arr), ""


# --------------------------------------------------------------------------- alignment
def rotate_images(images: np.ndarray, psi_deg, *, order: int = 1) -> np.ndarray:
    """``out[i](u) = images[i](R(psi_i)^T u)`` about the centre pixel ``n // 2`` (zeros outside).

    One ``scipy.ndimage.affine_transform`` per image (in (row, col) = (y, x) order the sampling
    matrix is ``[[cos, -sin], [sin, cos]]``).
    """
    imgs = np.asarray(images, dtype=np.float32)
    psi = np.atleast_1d(np.asarray(psi_deg, dtype=np.float64))
    n = imgs.shape[-1]
    c = np.array([n // 2, n // 2], dtype=np.float64)
    out = np.empty_like(imgs)
    for i, (img, p) in enumerate(zip(imgs, psi)):
        t = np.deg2rad(p)
        # (y_in, x_in) = M (uy, ux) + offset with x_in = cos ux + sin uy, y_in = -sin ux + cos uy
        m = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        out[i] = ndimage.affine_transform(img, m, offset=c - m @ c, order=order, mode="constant",
                                          cval=0.0, prefilter=order > 1)
    return out


def _particle_ctfs(rows: pd.DataFrame, n: int, pixel_size_A: float, extra_angle_deg=None) -> np.ndarray:
    """CTFs (m, n, n//2+1) of the rows on the rfft2 grid, all at once.

    Same formula as :func:`napari_cryodiag.compute.ctf.ctf_2d` (tested equal), vectorised over
    particles. Missing voltage / Cs / amplitude contrast default to 300 kV, 2.7 mm, 0.1.
    """
    m = len(rows)

    def col(name, default):
        return rows[name].to_numpy(dtype=np.float64) if name in rows else np.full(m, default)

    du = col("defocus_u_A", np.nan)
    dv = col("defocus_v_A", np.nan)
    if "defocus_u_A" not in rows and "defocus_A" in rows:
        du = dv = rows["defocus_A"].to_numpy(dtype=np.float64)
    ang = col("defocus_angle_deg", 0.0)
    if extra_angle_deg is not None:
        ang = ang + np.asarray(extra_angle_deg, dtype=np.float64)
    kv = col("voltage_kV", 300.0)
    cs = col("cs_mm", 2.7)
    q0 = col("amplitude_contrast", 0.1)
    ph = np.nan_to_num(col("phase_shift_deg", 0.0))
    ky = np.fft.fftfreq(n, d=pixel_size_A)[:, None]
    kx = np.fft.rfftfreq(n, d=pixel_size_A)[None, :]
    s2 = (kx**2 + ky**2).astype(np.float32)
    theta = np.arctan2(ky, kx)
    # cos(2(theta - a)) = cos 2theta cos 2a + sin 2theta sin 2a: no per-particle cos over the grid
    c2t = np.cos(2 * theta).astype(np.float32)
    s2t = np.sin(2 * theta).astype(np.float32)
    a2 = 2.0 * np.deg2rad(ang)
    v = kv * 1e3
    lam = 12.2642598 / np.sqrt(v * (1.0 + 0.97848e-6 * v))
    k3 = np.arctan2(q0, np.sqrt(np.maximum(1.0 - q0 * q0, 0.0)))

    def b(x):  # per-particle scalar -> broadcastable float32
        return np.asarray(x, dtype=np.float32)[:, None, None]

    half = b(0.5 * (du - dv))
    dz = b(0.5 * (du + dv)) + half * (c2t * b(np.cos(a2)) + s2t * b(np.sin(a2)))
    chi = b(np.pi * lam) * dz * s2 - b(0.5 * np.pi * cs * 1e7 * lam**3) * (s2 * s2) + b(np.deg2rad(ph) + k3)
    return np.sin(chi, out=chi)


def align_images(
    images: np.ndarray,
    psi_deg,
    shifts_px,
    *,
    ctfs: np.ndarray | None = None,
    ctf_mode: str = "none",
    order: int = 1,
) -> np.ndarray:
    """CTF-correct (in the particle frame), centre and un-rotate particle images (see module doc).

    ``shifts_px`` (m, 2) are (x, y) origins in pixels (the shift that centres the particle);
    ``ctfs`` (m, n, n//2+1) the particles' CTFs on the rfft2 grid (for ``phase_flip``/``wiener``,
    where ``wiener`` multiplies by the CTF).
    """
    imgs = np.asarray(images, dtype=np.float32)
    m, n = imgs.shape[0], imgs.shape[-1]
    ft = np.fft.rfft2(np.fft.ifftshift(imgs, axes=(-2, -1)))
    if ctf_mode == "phase_flip":
        ft *= np.sign(ctfs)
    elif ctf_mode == "wiener":
        ft *= ctfs
    elif ctf_mode != "none":
        raise ValueError(f"ctf_mode must be one of {CTF_MODES}, got {ctf_mode!r}")
    sh = np.asarray(shifts_px, dtype=np.float64).reshape(m, 2)
    if np.any(sh):
        ky = np.fft.fftfreq(n)[:, None]
        kx = np.fft.rfftfreq(n)[None, :]
        ft *= np.exp(-2j * np.pi * (sh[:, 0, None, None] * kx + sh[:, 1, None, None] * ky)).astype(np.complex64)
    cen = np.fft.fftshift(np.fft.irfft2(ft, s=(n, n)), axes=(-2, -1)).astype(np.float32)
    psi = np.asarray(psi_deg, dtype=np.float64).reshape(m)
    if not np.any(psi):
        return cen
    return rotate_images(cen, psi, order=order)


# --------------------------------------------------------------------------- averages
@dataclass
class ClassAverages:
    """Per-class averages (all particles and the two halves) with their FRC."""

    labels: np.ndarray  # class label of each row
    averages: np.ndarray  # (K, n, n) float32
    half1: np.ndarray
    half2: np.ndarray
    counts: np.ndarray  # (K, 2) particles in each half
    pixel_size_A: float
    ctf_mode: str
    halves: str
    frc: np.ndarray  # (K, n//2+1), NaN for classes without two halves
    frc_resolution_A: np.ndarray
    frc_nyquist_limited: np.ndarray
    frc_note: list[str]
    threshold: float = 0.5
    notes: list[str] = field(default_factory=list)

    def weighted_averages(self) -> np.ndarray:
        """The averages low-passed by their own FRC: each ring times ``sqrt(2 F / (1 + F))``
        (F = half-set FRC, negative values 0), the weight of a combined two-half map. Noise
        beyond a class's resolution is damped, so the images look like the class averages
        RELION and cryoSPARC show (they regularise with the class SSNR). Classes without an FRC
        are returned unfiltered."""
        return frc_weighted(self.averages, self.frc)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "class": self.labels,
                "half1_count": self.counts[:, 0],
                "half2_count": self.counts[:, 1],
                "frc_resolution_A": self.frc_resolution_A,
                "frc_nyquist_limited": self.frc_nyquist_limited,
                "frc_note": self.frc_note,
            }
        )


def frc_weighted(averages: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Multiply each average's rings by ``sqrt(2F/(1+F))`` of its FRC curve (see
    :meth:`ClassAverages.weighted_averages`); float32 ``(K, n, n)``."""
    from ..fourier import shell_index

    avg = np.asarray(averages, dtype=np.float32)
    n = avg.shape[-1]
    idx = shell_index((n, n))
    out = avg.copy()
    for i in range(len(avg)):
        f = np.asarray(curves[i], dtype=np.float64)
        if not np.all(np.isfinite(f)):
            continue
        f = np.clip(f, 0.0, 1.0)
        w = np.sqrt(2 * f / (1 + f))
        w = np.append(w, 0.0)  # coefficients beyond Nyquist
        ft = np.fft.rfft2(np.fft.ifftshift(avg[i])) * w[idx]
        out[i] = np.fft.fftshift(np.fft.irfft2(ft, s=(n, n)))
    return out


def _halves(table: pd.DataFrame, codes: np.ndarray, mode: str) -> tuple[np.ndarray, str]:
    if mode in ("auto", "split") and "split" in table:
        s = table["split"].to_numpy()
        ok = ~pd.isna(s)
        vals = set(np.unique(s[ok]).tolist()) if ok.any() else set()
        if ok.all() and vals == {0, 1}:
            return s.astype(np.intp), "split"
        if mode == "split":
            raise CryodiagInputError("the split column does not hold both half sets 0 and 1",
                                     table.attrs.get("source"))
    elif mode == "split":
        raise CryodiagInputError("the table has no split column", table.attrs.get("source"))
    # alternate rows within each class: rank of the row inside its class, modulo 2
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.nonzero(np.diff(sorted_codes))[0] + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    rank = np.empty(len(codes), dtype=np.intp)
    rank[order] = np.arange(len(codes)) - first
    return rank % 2, "alternate"


#: CTF columns a batch needs (the rest of the table stays with the client)
_CTF_COLUMNS = ("defocus_u_A", "defocus_v_A", "defocus_A", "defocus_angle_deg", "voltage_kV", "cs_mm",
                "amplitude_contrast", "phase_shift_deg")


def _batch_sums(source, path, index, ctf_rows, psi, shifts, key, n, apix, ctf, order):
    """One batch (a dask task): read its images, CTF-correct, centre, un-rotate, and sum them per
    (class, half) ``key``. Returns ``(keys, sums (m, n, n) float64, CTF² sums or None)``."""
    imgs = source.get(path, index)
    if imgs.shape[-1] != n or imgs.shape[-2] != n:
        raise CryodiagInputError(f"particle images of different sizes ({imgs.shape[-1]} vs {n})", path)
    ctfs = _particle_ctfs(ctf_rows, n, apix) if ctf != "none" else None
    aligned = align_images(imgs, psi, shifts, ctfs=ctfs, ctf_mode=ctf, order=order)
    o = np.argsort(key, kind="stable")
    uk, st = np.unique(key[o], return_index=True)
    part = np.add.reduceat(aligned[o].astype(np.float64), st, axis=0)
    den_part = None
    if ctf == "wiener":
        c_al = _particle_ctfs(ctf_rows, n, apix, extra_angle_deg=psi)
        den_part = np.add.reduceat((c_al.astype(np.float64) ** 2)[o], st, axis=0)
    return uk, part, den_part


def iter_class_averages(
    table: pd.DataFrame,
    *,
    images: np.ndarray | None = None,
    source=None,
    labels=None,
    pixel_size_A: float | None = None,
    ctf: str = "phase_flip",
    wiener_constant: float = 0.1,
    halves: str = "auto",
    batch_size: int = 128,
    order: int = 1,
    mask_radius_px: float | None = None,
    threshold: float = 0.5,
    min_per_half: int = 2,
    client=None,
    num_workers: int | None = None,
) -> Iterator[tuple[int, int]]:
    """Generator of ``(done, total)`` progress that returns a :class:`ClassAverages`.

    The images are ``images`` (an in-memory stack) or ``source`` (an image source such as
    :class:`napari_cryodiag.io.particle_images.StackImages`). Batches of ``batch_size``
    particles are dask tasks (:mod:`napari_cryodiag.compute.scheduling`: ``num_workers`` local
    threads, or a ``dask.distributed`` ``client``/address whose workers read their batches from
    the stack files); their per-(class, half) sums are added in batch order, so threads and a
    cluster give the same averages. Raises :class:`CryodiagInputError`
    when there are none or they do not fit (the message is the ``"no particle images: ..."``
    reason) or the table lacks what is needed.
    """
    if ctf not in CTF_MODES:
        raise ValueError(f"ctf must be one of {CTF_MODES}, got {ctf!r}")
    src_path = table.attrs.get("source")
    if "class" not in table:
        raise CryodiagInputError("the particle table has no class column", src_path)
    if source is None:
        if images is None:
            raise CryodiagInputError("no particle images: give the images or their stacks", src_path)
        source, reason = array_images(table, images)
        if source is None:
            raise CryodiagInputError(reason, src_path)
    notes: list[str] = []
    cls = table["class"].to_numpy()
    keep = ~pd.isna(cls)
    t = table.loc[keep]
    cls = cls[keep].astype(np.int64)
    if labels is None:
        labels = np.unique(cls)
    labels = np.asarray(labels, dtype=np.int64)
    lut = {int(c): i for i, c in enumerate(labels)}
    codes = np.array([lut.get(int(c), -1) for c in cls], dtype=np.intp) if len(cls) else np.zeros(0, np.intp)
    inside = codes >= 0
    if not inside.all():
        notes.append(f"{int((~inside).sum())} particles in classes outside the averages were skipped")
    t = t.loc[inside]
    codes = codes[inside]
    half, halves_used = _halves(t, codes, halves)
    n = source.box()
    apix = pixel_size_A
    if apix is None and "pixel_size_A" in t and t["pixel_size_A"].notna().any():
        apix = float(t["pixel_size_A"].dropna().iloc[0])
    if apix is None:
        source.box()  # opening a file fills its header pixel size
        apix = source.pixel_size_A
    if apix is None or not apix > 0:
        raise CryodiagInputError("particle pixel size unknown (give pixel_size_A)", src_path)
    has_ctf = ("defocus_u_A" in t or "defocus_A" in t)
    if ctf != "none" and not has_ctf:
        notes.append("no CTF columns: averages are not CTF-corrected")
        ctf = "none"
    k = len(labels)
    acc = np.zeros((k * 2, n, n), dtype=np.float64)
    den = np.zeros((k * 2, n, n // 2 + 1), dtype=np.float64) if ctf == "wiener" else None
    counts = np.bincount(codes * 2 + half, minlength=2 * k).reshape(k, 2)

    psi = t["psi_deg"].to_numpy(dtype=np.float64) if "psi_deg" in t else np.zeros(len(t))
    sx = t["shift_x_A"].to_numpy(dtype=np.float64) / apix if "shift_x_A" in t else np.zeros(len(t))
    sy = t["shift_y_A"].to_numpy(dtype=np.float64) / apix if "shift_y_A" in t else np.zeros(len(t))
    psi = np.nan_to_num(psi)
    shifts = np.nan_to_num(np.stack([sx, sy], axis=1))
    if source.array is not None:
        img_idx = t["image_index"].to_numpy().astype(np.int64) if "image_index" in t else np.arange(len(t))
        groups = [(None, np.arange(len(t)))]
    else:
        if "image_index" in t:
            img_idx = t["image_index"].to_numpy().astype(np.int64)
        else:
            img_idx = np.arange(len(t))
        if "image_path" in t and t["image_path"].notna().any():
            paths = t["image_path"].astype(str).to_numpy()
            groups = [(p, np.nonzero(paths == p)[0]) for p in pd.unique(paths)]
        else:
            groups = [("", np.arange(len(t)))]
    import dask

    total = len(t)
    yield (0, total)
    ctf_cols = [c for c in _CTF_COLUMNS if c in t.columns]
    batches = [(path, rows_all[b : b + batch_size]) for path, rows_all in groups
               for b in range(0, len(rows_all), batch_size)]
    key = task_key("cryodiag-class-averages")
    done = 0
    with TaskRunner(client, num_workers, what="batches of particles") as runner:
        src_node = runner.share(source)
        round_size = 2 * runner.n_workers
        for r0 in range(0, len(batches), round_size):
            tasks, sizes = [], []
            for j, (path, rows) in enumerate(batches[r0 : r0 + round_size]):
                sub = t.iloc[rows][ctf_cols].reset_index(drop=True) if ctf != "none" else None
                tasks.append(dask.delayed(_batch_sums, pure=False)(
                    src_node, path, img_idx[rows], sub, psi[rows], shifts[rows], codes[rows] * 2 + half[rows],
                    n, apix, ctf, order, dask_key_name=key(r0 + j)))
                sizes.append(len(rows))
            results = yield from runner.run_items(tasks, sizes, done, total)
            for uk, part, den_part in results:
                acc[uk] += part
                if den is not None:
                    den[uk] += den_part
            done += int(sum(sizes))

    acc = acc.reshape(k, 2, n, n)
    cnt = counts.astype(np.float64)
    if den is not None:
        den = den.reshape(k, 2, n, n // 2 + 1)

        def _wiener(num, d, c):
            ft = np.fft.rfft2(np.fft.ifftshift(num, axes=(-2, -1)))
            ft /= d + wiener_constant * np.maximum(c, 1.0)[..., None, None]
            return np.fft.fftshift(np.fft.irfft2(ft, s=(n, n)), axes=(-2, -1))

        halves_avg = _wiener(acc, den, cnt)
        full = _wiener(acc.sum(axis=1), den.sum(axis=1), cnt.sum(axis=1))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            halves_avg = acc / np.maximum(cnt, 1.0)[..., None, None]
            full = acc.sum(axis=1) / np.maximum(cnt.sum(axis=1), 1.0)[:, None, None]
    h1 = halves_avg[:, 0].astype(np.float32)
    h2 = halves_avg[:, 1].astype(np.float32)
    mask = soft_circular_mask(n, mask_radius_px)
    curves = frc(h1, h2, mask=mask)
    res, nyq = resolutions_at(curves, n, apix, threshold)
    note = [""] * k
    for i in range(k):
        if counts[i].min() < min_per_half:
            curves[i] = np.nan
            res[i] = np.nan
            nyq[i] = False
            note[i] = (f"too few particles for an FRC ({counts[i, 0]} + {counts[i, 1]} in the halves)"
                       if counts[i].sum() else "no particles")
    return ClassAverages(
        labels=labels,
        averages=full.astype(np.float32),
        half1=h1,
        half2=h2,
        counts=counts,
        pixel_size_A=float(apix),
        ctf_mode=ctf,
        halves=halves_used,
        frc=curves,
        frc_resolution_A=res,
        frc_nyquist_limited=nyq,
        frc_note=note,
        threshold=threshold,
        notes=notes,
    )


def compute_class_averages(table: pd.DataFrame, *, progress=None, **kwargs) -> ClassAverages:
    """:func:`iter_class_averages` run to completion (``progress(done, total)`` per batch)."""
    return run_steps(iter_class_averages(table, **kwargs), progress)
