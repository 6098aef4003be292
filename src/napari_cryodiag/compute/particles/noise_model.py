"""Noise model: per-shell noise variance from the residuals of particle images.

For every particle image ``x`` with pose ``A`` (RELION Eulers), shift ``s`` and CTF, the model
image is ``a * CTF * P(V)`` where ``P(V)`` is the Fourier-slice projection of the map at that
pose and shift (:class:`~napari_cryodiag.compute.projection.FourierProjector`) and ``a`` an
amplitude scale between map and images. The noise estimate is the mean over images of the
residual power ``|X - a CTF P|^2`` in every Fourier coefficient (the 2D map, before ring
averaging), and its average over each shell (REFERENCE.md "Noise model"; cryoSPARC's basic
and advanced noise-model plots).

Conventions
-----------
- Images are transformed as ``rfft2(ifftshift(image))``, the layout of
  ``FourierProjector.project_ft`` (centred images; shells from :mod:`compute.fourier`).
- **Normalisation ("per-pixel")**: the residual power of the unnormalised DFT is divided by the
  number of pixels ``N**2``. For white real-space noise of variance ``sigma**2`` every
  coefficient has ``E|N(k)|^2 = N**2 sigma**2``, so the reported value is ``sigma**2`` in every
  shell: the numbers read as a real-space per-pixel variance. :meth:`NoiseModel.relion_sigma2`
  converts to RELION's ``rlnSigma2Noise`` (forward FFT divided by ``N**2`` and the variance of
  one real component, i.e. ``value / (2 N**2)``).
- Shifts: the table's ``shift_x_A/shift_y_A`` are RELION origins, the shift that centres the
  particle; the particle in the raw image therefore sits at ``-shift`` from the box centre and
  the projection is displaced by ``-shift / pixel_size_A`` pixels.
- **Scale** (``scale=``): ``"global"`` (default) fits one least-squares amplitude
  ``a = sum Re(X conj(CTF P)) / sum |CTF P|^2`` over all images and all coefficients except
  DC, inside Nyquist. It is exact in one pass: the per-coefficient sums of ``|X|^2``,
  ``Re(X conj S)`` and ``|S|^2`` are accumulated and combined at the end as
  ``|X|^2 - 2 a Re(X conj S) + a^2 |S|^2``. ``"per_image"`` fits one ``a`` per image (absorbs
  per-micrograph contrast differences; removes one degree of freedom per image, negligible
  for boxes of 64 px and more). ``"none"`` or a number uses that scale as it is.
- The DC coefficient (shell 0) is reported but excluded from the scale fit: particle images
  are usually normalised to a zero-mean background, which the projection knows nothing of.

Work is split into chunks of particles; each chunk (read its images, project, CTF, FFT,
partial sums) is a dask task through :mod:`napari_cryodiag.compute.scheduling` (local threads
or a ``dask.distributed`` cluster, whose workers read the particle images from the stacks'
paths; the projector and the particle parameters are sent once), computed a few chunks per
worker at a time: progress is reported after each chunk, cancel is honoured between chunks, and
the partial sums are added in chunk order (the same numbers on threads and on a cluster).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import scipy.fft as sfft

from ...errors import CryodiagInputError
from ..ctf import ctf_2d_stack
from ..fourier import (
    n_shells,
    shell_counts,
    shell_frequencies_invA,
    shell_index,
    shell_resolution_A,
    shell_sums,
)
from ..projection import FourierProjector, euler_to_matrix
from ..scheduling import JobCancelled, TaskRunner, task_key

SCALE_MODES = ("global", "per_image", "none")
NORMALISATION = (
    "per-pixel: |DFT|^2 / N^2 with the unnormalised DFT of an N x N image; white real-space "
    "noise of variance s^2 gives s^2 in every shell. RELION rlnSigma2Noise = value / (2 N^2)."
)


class NoiseModelCancelled(JobCancelled):
    """Raised by :func:`estimate_noise_model` when its cancel event is set."""


@dataclass
class NoiseModel:
    """Result of :func:`estimate_noise_model` (all powers in the per-pixel convention)."""

    box: int
    pixel_size_A: float
    n_images: int
    noise_variance: np.ndarray  # per shell 0..box//2, mean residual power
    power_map: np.ndarray  # (box, box//2+1) mean residual power per coefficient (rfft layout)
    image_power: np.ndarray  # per shell, mean |X|^2 / N^2
    signal_power: np.ndarray  # per shell, mean |a CTF P|^2 / N^2
    counts: np.ndarray  # coefficients per shell per image (half transform)
    scale_mode: str
    scale: float | np.ndarray  # global scale, or one per image (per_image)
    apply_ctf: bool = True
    normalisation: str = NORMALISATION
    notes: list[str] = field(default_factory=list)
    #: ``(file, message)``: what was changed or left out of the inputs (particles dropped, the map
    #: resampled or cropped); the CLI prints them as warnings naming the file
    warnings: list[tuple[str | None, str]] = field(default_factory=list)

    @property
    def shells(self) -> np.ndarray:
        return np.arange(n_shells(self.box))

    @property
    def frequency_invA(self) -> np.ndarray:
        return shell_frequencies_invA(self.box, self.pixel_size_A)

    @property
    def resolution_A(self) -> np.ndarray:
        return shell_resolution_A(self.box, self.pixel_size_A)

    @property
    def ssnr(self) -> np.ndarray:
        """Spectral signal-to-noise ratio per shell (model power over residual power)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.noise_variance > 0, self.signal_power / self.noise_variance, np.nan)

    def relative_standard_error(self) -> np.ndarray:
        """Expected relative statistical error of each shell value (standard deviation / mean).

        The residual power of a complex Gaussian coefficient is exponential (sd = mean); a
        real coefficient (DC, Nyquist) has sd = sqrt(2) mean, and the columns kx = 0 and
        kx = N/2 of the half transform hold each Friedel pair twice. For ``n_images`` images
        this gives ``sqrt(n_complex + 2 n_real + 4 n_pairs) / (count * sqrt(n_images))``,
        about ``1/sqrt(n_images * count)``.
        """
        return shell_relative_error(self.box) / np.sqrt(max(self.n_images, 1))

    def relion_sigma2(self) -> np.ndarray:
        """The per-shell values in RELION's ``rlnSigma2Noise`` convention."""
        return self.noise_variance / (2.0 * self.box**2)

    def full_map(self, ring_average: bool = False) -> np.ndarray:
        """Centred (box, box) map for display (DC at ``[box//2, box//2]``; rows ky, columns kx).

        ``ring_average=True`` gives the model (each coefficient set to its shell's value);
        coefficients beyond Nyquist are NaN.
        """
        n = self.box
        idx = shell_index((n, n))
        if ring_average:
            ext = np.append(self.noise_variance, np.nan)
            half = ext[idx]
        else:
            half = np.where(idx < n_shells(n), self.power_map, np.nan)
        return full_from_half(half, n)

    def to_dict(self) -> dict:
        d = {
            "box_px": self.box,
            "pixel_size_A": self.pixel_size_A,
            "n_images": self.n_images,
            "normalisation": self.normalisation,
            "scale_mode": self.scale_mode,
            "apply_ctf": self.apply_ctf,
            "shell": self.shells,
            "frequency_invA": self.frequency_invA,
            "resolution_A": self.resolution_A,
            "noise_variance": self.noise_variance,
            "relion_sigma2_noise": self.relion_sigma2(),
            "image_power": self.image_power,
            "signal_power": self.signal_power,
            "ssnr": self.ssnr,
            "coefficients_per_shell": self.counts,
            "relative_standard_error": self.relative_standard_error(),
            "notes": list(self.notes),
            "warnings": [{"file": None if f is None else os.fspath(f), "message": m} for f, m in self.warnings],
        }
        if np.ndim(self.scale) == 0:
            d["scale"] = float(self.scale)
        else:
            s = np.asarray(self.scale, float)
            d["scale_per_image_summary"] = {
                "mean": float(np.mean(s)),
                "std": float(np.std(s)),
                "min": float(np.min(s)),
                "max": float(np.max(s)),
            }
        return d


def shell_relative_error(n: int) -> np.ndarray:
    """Relative standard error of a shell mean of exponential powers for one image (see
    :meth:`NoiseModel.relative_standard_error`)."""
    idx = shell_index((n, n))
    m = n_shells(n)
    ky = np.fft.fftfreq(n, d=1.0 / n)[:, None] * np.ones((1, n // 2 + 1))
    kx = np.ones((n, 1)) * np.fft.rfftfreq(n, d=1.0 / n)[None, :]
    edge = (kx == 0) | (kx == n / 2)  # columns holding both members of Friedel pairs
    real = edge & ((ky == 0) | (ky == -n / 2) | (ky == n / 2))
    var = np.where(real, 2.0, np.where(edge, 2.0, 1.0))  # each duplicated entry: 4/2 per copy
    counts = np.bincount(idx.ravel(), minlength=m + 1)[:m]
    vsum = np.bincount(idx.ravel(), weights=var.ravel(), minlength=m + 1)[:m]
    return np.sqrt(vsum) / np.maximum(counts, 1)


def full_from_half(half: np.ndarray, n: int) -> np.ndarray:
    """Expand an rfft-layout real array (n, n//2+1) to the centred full (n, n) plane.

    Uses Friedel symmetry ``v(-k) = v(k)`` of a power map.
    """
    half = np.asarray(half)
    full = np.empty((n, n), dtype=half.dtype)
    m = n // 2 + 1
    full[:, :m] = half
    if n > m:
        kx = np.arange(m, n)  # negative frequencies -(n - kx)
        ky = (-np.arange(n)) % n
        full[:, m:] = half[ky][:, n - kx]
    return np.fft.fftshift(full)


# --------------------------------------------------------------------------- inputs


def _column(table: pd.DataFrame, name: str, default=None, required: bool = False, source=None):
    if name in table.columns:
        v = pd.to_numeric(table[name], errors="coerce").to_numpy(np.float64)
        if np.isnan(v).any():
            raise CryodiagInputError(f"column {name!r} has missing or non-numeric values", source)
        return v
    if required:
        raise CryodiagInputError(f"particle table lacks column {name!r}", source)
    return None if default is None else np.full(len(table), float(default))


@dataclass
class _Particles:
    matrices: np.ndarray  # (n, 3, 3)
    shifts_px: np.ndarray  # (n, 2) displacement of the particle (x, y) in pixels
    ctf_params: np.ndarray | None  # (n, 7): dU, dV, angle, kV, Cs, Q0, phase shift


def _particle_params(table, pixel_size_A, apply_ctf, ctf_defaults, notes, source) -> _Particles:
    rot = _column(table, "rot_deg", required=True, source=source)
    tilt = _column(table, "tilt_deg", required=True, source=source)
    psi = _column(table, "psi_deg", required=True, source=source)
    sx = _column(table, "shift_x_A", source=source)
    sy = _column(table, "shift_y_A", source=source)
    if sx is None or sy is None:
        notes.append("no shift_x_A/shift_y_A in the table: particles assumed centred")
        sx = np.zeros(len(table)) if sx is None else sx
        sy = np.zeros(len(table)) if sy is None else sy
    mats = euler_to_matrix(rot, tilt, psi).reshape(-1, 3, 3)
    shifts = -np.stack([sx, sy], axis=1) / float(pixel_size_A)
    ctf = None
    if apply_ctf:
        du = _column(table, "defocus_u_A", source=source)
        dv = _column(table, "defocus_v_A", source=source)
        if du is None or dv is None:
            d = _column(table, "defocus_A", source=source)
            if d is None:
                raise CryodiagInputError(
                    "particle table has no defocus (defocus_u_A/defocus_v_A or defocus_A); "
                    "give one or switch the CTF off", source
                )
            du, dv = (d, d) if du is None else (du, du)
            notes.append("astigmatism unknown: defocus_u = defocus_v")
        cols = [du, dv, _column(table, "defocus_angle_deg", 0.0, source=source)]
        for name in ("voltage_kV", "cs_mm", "amplitude_contrast", "phase_shift_deg"):
            v = _column(table, name, source=source)
            if v is None and name == "phase_shift_deg":  # phase plate: RELION deg, cryoSPARC rad
                v = _column(table, "rlnPhaseShift", source=source)
                if v is None and "ctf/phase_shift_rad" in table.columns:
                    v = np.rad2deg(_column(table, "ctf/phase_shift_rad", source=source))
            if v is None:
                v = np.full(len(table), float(ctf_defaults[name]))
                if name != "phase_shift_deg":
                    notes.append(f"{name} not in the table: used {ctf_defaults[name]}")
            cols.append(v)
        ctf = np.stack(cols, axis=1)
    return _Particles(mats, shifts, ctf)


class ArrayImages:
    """Particle images in memory, one per table row (the image-source protocol of
    :func:`iter_noise_model`: ``box``, ``header_pixel_size_A``, ``read(rows)``; the file-backed
    one is :class:`napari_cryodiag.io.particle_images.TableStacks`)."""

    header_pixel_size_A = 0.0

    def __init__(self, images: np.ndarray, n_rows: int, source=None):
        if len(images) != n_rows:
            raise CryodiagInputError(f"{len(images)} images for {n_rows} particles", source)
        if images.ndim != 3 or images.shape[-2] != images.shape[-1]:
            raise CryodiagInputError(f"particle images must be (n, N, N), got {images.shape}", source)
        self.images = images
        self.box = int(images.shape[-1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.images[rows], dtype=np.float32)


def match_map_to_images(volume: np.ndarray, map_pixel_size_A: float, box: int, pixel_size_A: float,
                        path=None) -> np.ndarray:
    """Bring a map onto the particles' grid: Fourier crop/pad to the images' pixel size, then
    crop/pad the box in real space. Raises when the pixel sizes cannot be matched within 1 %."""
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3 or len(set(vol.shape)) != 1:
        raise CryodiagInputError(f"the map must be a cubic volume, got shape {vol.shape}", path)
    n = vol.shape[0]
    if map_pixel_size_A and pixel_size_A and abs(map_pixel_size_A / pixel_size_A - 1) > 1e-3:
        m = int(round(n * map_pixel_size_A / pixel_size_A))
        if m < 4 or abs(m * pixel_size_A / (n * map_pixel_size_A) - 1) > 0.01:
            raise CryodiagInputError(
                f"map pixel size {map_pixel_size_A:.4g} Å cannot be matched to the particles' "
                f"{pixel_size_A:.4g} Å", path
            )
        need = 2 * 16 * m**3  # the padded transform and its inverse (complex128)
        if m > 4 * max(n, box) or need > _available_bytes() // 2:
            raise CryodiagInputError(
                f"map voxel size {map_pixel_size_A:.4g} Å is {map_pixel_size_A / pixel_size_A:.3g}x the particles' "
                f"{pixel_size_A:.4g} Å: resampling the {n}^3 map to {m}^3 would need {need / 2**30:.1f} GiB; "
                "check the voxel size (give the map's with --map-pixel-size)", path
            )
        ft = np.fft.fftshift(np.fft.fftn(vol))
        out = np.zeros((m, m, m), dtype=np.complex128)
        k = min(n, m)
        si, so = n // 2 - k // 2, m // 2 - k // 2
        out[so:so + k, so:so + k, so:so + k] = ft[si:si + k, si:si + k, si:si + k]
        vol = np.real(np.fft.ifftn(np.fft.ifftshift(out))).astype(np.float32) * (m / n) ** 3
        n = m
    if n != box:
        out = np.zeros((box, box, box), dtype=np.float32)
        k = min(n, box)
        si, so = n // 2 - k // 2, box // 2 - k // 2
        out[so:so + k, so:so + k, so:so + k] = vol[si:si + k, si:si + k, si:si + k]
        vol = out
    return vol


def _available_bytes() -> int:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 8 << 30


#: columns a particle needs for its model image (CTF columns only with the CTF on)
_POSE_COLUMNS = ("rot_deg", "tilt_deg", "psi_deg", "shift_x_A", "shift_y_A")
_CTF_COLUMNS = ("defocus_u_A", "defocus_v_A", "defocus_A", "defocus_angle_deg", "voltage_kV", "cs_mm",
                "amplitude_contrast", "phase_shift_deg")


def _usable_rows(table: pd.DataFrame, apply_ctf: bool, notes: list, warnings: list, source):
    """``(table, kept)``: rows with a missing or non-numeric pose (or CTF, with the CTF on) are
    left out, with a note naming the columns and the first row; ``table`` has those rows' values
    zeroed (never used) so that the parameters can be built for every row, ``kept`` are the rows
    to use. No usable row at all is a :class:`CryodiagInputError`."""
    cols = [c for c in _POSE_COLUMNS + (_CTF_COLUMNS if apply_ctf else ()) if c in table.columns]
    if not cols:
        return table, np.arange(len(table))
    values = table[cols].apply(pd.to_numeric, errors="coerce")
    bad_cols = values.isna()
    bad = bad_cols.any(axis=1).to_numpy()
    if not bad.any():
        return table, np.arange(len(table))
    which = [c for c in cols if bad_cols[c].any()]
    first = int(np.flatnonzero(bad)[0]) + 1
    if bad.all():
        raise CryodiagInputError(
            f"no particle can be modelled: all {len(table)} have missing or non-numeric {', '.join(which)}", source
        )
    notes.append(f"{int(bad.sum())} of {len(table)} particles have missing or non-numeric {', '.join(which)} "
                 f"(first: row {first}): left out of the noise model")
    warnings.append((source, notes[-1]))
    clean = table.copy()
    clean[cols] = values.where(~bad_cols, 0.0)
    return clean, np.flatnonzero(~bad)


# --------------------------------------------------------------------------- chunks


def _chunk_sums(rows, reader, projector, params, box, pixel_size_A, scale_mode, scale_value, fit_mask,
                cancel):
    """Partial sums of one chunk: per-coefficient |X|^2, Re(X S*), |S|^2 (and residual for
    per-image/fixed scales), with S = CTF * P."""
    if cancel is not None and cancel.is_set():
        raise NoiseModelCancelled("noise model cancelled")
    imgs = reader.read(rows)
    x = sfft.rfft2(np.fft.ifftshift(imgs, axes=(-2, -1)), axes=(-2, -1)).astype(np.complex64, copy=False)
    s = projector.project_ft(params.matrices[rows], params.shifts_px[rows])
    if params.ctf_params is not None:
        du, dv, ang, kv, cs, q0, ph = np.asarray(params.ctf_params)[rows].T  # one CTF call per chunk
        s *= ctf_2d_stack((box, box), pixel_size_A, du, dv, ang, voltage_kV=kv, cs_mm=cs,
                          amplitude_contrast=q0, phase_shift_deg=ph, rfft=True)
    # The model must be the transform of a real image: columns kx = 0 and kx = N/2 of the half
    # transform hold Friedel pairs (ky, -ky); interpolation does not make them exact conjugates.
    neg = (-np.arange(box)) % box
    for col in (0, box // 2):
        c = s[:, :, col]
        s[:, :, col] = 0.5 * (c + np.conj(c[:, neg]))
    xs = (x * np.conj(s)).real.astype(np.float64)
    ss = (s.real.astype(np.float64) ** 2 + s.imag.astype(np.float64) ** 2)
    xx = (x.real.astype(np.float64) ** 2 + x.imag.astype(np.float64) ** 2)
    out = {
        "xx": xx.sum(axis=0),
        "xs": xs.sum(axis=0),
        "ss": ss.sum(axis=0),
        "xs_fit": float(xs[:, fit_mask].sum()),
        "ss_fit": float(ss[:, fit_mask].sum()),
    }
    if scale_mode == "per_image":
        den = ss[:, fit_mask].sum(axis=1)
        a = np.where(den > 0, xs[:, fit_mask].sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)
        out["scales"] = a
        out["rr"] = (xx - 2 * a[:, None, None] * xs + (a**2)[:, None, None] * ss).sum(axis=0)
        out["aa_ss"] = ((a**2)[:, None, None] * ss).sum(axis=0)
    return out


def iter_noise_model(
    table: pd.DataFrame,
    volume: np.ndarray,
    *,
    images=None,
    pixel_size_A: float | None = None,
    map_pixel_size_A: float | None = None,
    scale: str | float = "global",
    apply_ctf: bool = True,
    voltage_kV: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    chunk_size: int = 256,
    pad: int = 2,
    scheduler: str | None = "threads",
    num_workers: int | None = None,
    cancel: threading.Event | None = None,
    source: str | os.PathLike | None = None,
    map_source: str | os.PathLike | None = None,
    projector: FourierProjector | None = None,
    client=None,
) -> Iterator[tuple[int, int]]:
    """Generator form of :func:`estimate_noise_model`: yields ``(done, total)`` particles after
    each chunk and returns the :class:`NoiseModel` (``StopIteration.value``).
    ``source``/``map_source``: the table's and the map's names for messages."""
    import dask

    source = source if source is not None else table.attrs.get("source")
    if len(table) == 0:
        raise CryodiagInputError("particle table is empty", source)
    if isinstance(scale, str) and scale not in SCALE_MODES:
        raise ValueError(f"scale must be one of {SCALE_MODES} or a number, got {scale!r}")
    if images is None:
        raise CryodiagInputError("no particle images: give the images or their stacks", source)
    reader = ArrayImages(images, len(table), source) if isinstance(images, np.ndarray) else images
    box = reader.box
    notes: list[str] = []
    if pixel_size_A is None:
        if "pixel_size_A" in table.columns:
            pixel_size_A = float(np.nanmedian(pd.to_numeric(table["pixel_size_A"], errors="coerce")))
        elif getattr(reader, "header_pixel_size_A", 0) > 0:
            pixel_size_A = reader.header_pixel_size_A
            notes.append("pixel size from the stack header")
        else:
            raise CryodiagInputError("pixel size unknown: not in the table nor the stack header", source)
    if not np.isfinite(pixel_size_A) or pixel_size_A <= 0:
        raise CryodiagInputError(f"invalid pixel size {pixel_size_A}", source)
    warnings: list[tuple[str | None, str]] = []
    vol = match_map_to_images(volume, map_pixel_size_A or pixel_size_A, box, pixel_size_A, map_source)
    n_map = int(np.shape(volume)[0])
    if map_pixel_size_A and abs(map_pixel_size_A / pixel_size_A - 1) > 1e-3:
        m = int(round(n_map * map_pixel_size_A / pixel_size_A))
        warnings.append((map_source, f"map voxel size {map_pixel_size_A:.4g} Å resampled (Fourier) to the particles' "
                                     f"{pixel_size_A:.4g} Å ({n_map}³ -> {m}³)"))
        n_map = m
    if n_map != box:
        how = "cropped" if n_map > box else "padded with zeros"
        warnings.append((map_source, f"map box {n_map} {how} to the particles' box {box}"))
    notes += [w for _, w in warnings]
    defaults = {"voltage_kV": voltage_kV, "cs_mm": cs_mm, "amplitude_contrast": amplitude_contrast,
                "phase_shift_deg": 0.0}
    table, kept = _usable_rows(table, apply_ctf, notes, warnings, source)
    params = _particle_params(table, pixel_size_A, apply_ctf, defaults, notes, source)
    if projector is None or projector.n != box:
        projector = FourierProjector(vol, pad=pad)

    idx = shell_index((box, box))
    inside = idx < n_shells(box)
    fit_mask = inside.copy()
    fit_mask[0, 0] = False
    scale_mode = scale if isinstance(scale, str) else "fixed"
    scale_value = 1.0 if scale_mode == "none" else (None if isinstance(scale, str) else float(scale))

    n = len(kept)
    chunk_size = max(int(chunk_size), 1)
    chunks = [kept[i:i + chunk_size] for i in range(0, n, chunk_size)]
    acc: dict[str, np.ndarray | float] = {}
    scales = []
    done = 0
    task = dask.delayed(_chunk_sums, pure=False)
    key = task_key("cryodiag-noise")
    if scheduler == "sync":
        num_workers = 1
    elif scheduler not in (None, "threads"):
        raise ValueError(f"scheduler must be 'threads' or 'sync' (or give client=), got {scheduler!r}")
    # rounds of a few chunks per worker: partial sums are added (in chunk order, whatever the
    # scheduler) before the next round starts, so memory does not grow with the particles
    with TaskRunner(client, num_workers, cancel=cancel, cancelled=NoiseModelCancelled,
                    what="chunks of particles") as runner:
        common = [runner.share(v) for v in (reader, projector, params, fit_mask)]
        group = 2 * runner.n_workers
        for g in range(0, len(chunks), group):
            if cancel is not None and cancel.is_set():
                raise NoiseModelCancelled("noise model cancelled")
            batch = chunks[g:g + group]
            tasks = [task(rows, common[0], common[1], common[2], box, pixel_size_A, scale_mode, scale_value,
                          common[3], None, dask_key_name=key(g + j)) for j, rows in enumerate(batch)]
            sizes = [len(r) for r in batch]
            results = yield from runner.run_items(tasks, sizes, done, n)
            for res in results:
                if "scales" in res:
                    scales.append(res.pop("scales"))
                for k_, v in res.items():
                    acc[k_] = acc[k_] + v if k_ in acc else v
            done += int(sum(sizes))

    norm = float(box * box) * n
    xx, xs, ss = acc["xx"] / norm, acc["xs"] / norm, acc["ss"] / norm
    if scale_mode == "global":
        a = acc["xs_fit"] / acc["ss_fit"] if acc["ss_fit"] > 0 else 0.0
        rr = xx - 2 * a * xs + a * a * ss
        sig = a * a * ss
        scale_out = float(a)
    elif scale_mode == "per_image":
        rr = acc["rr"] / norm
        sig = acc["aa_ss"] / norm
        scale_out = np.concatenate(scales)
    else:
        a = scale_value
        rr = xx - 2 * a * xs + a * a * ss
        sig = a * a * ss
        scale_out = float(a)
    rr = np.where(inside, np.maximum(rr, 0.0), 0.0)
    counts = shell_counts(idx, box)

    def per_shell(v):
        with np.errstate(invalid="ignore", divide="ignore"):
            return shell_sums(v, idx, box) / np.maximum(counts, 1)

    return NoiseModel(
        box=box,
        pixel_size_A=float(pixel_size_A),
        n_images=n,
        noise_variance=per_shell(rr),
        power_map=rr.astype(np.float64),
        image_power=per_shell(xx),
        signal_power=per_shell(sig),
        counts=counts,
        scale_mode=scale_mode,
        scale=scale_out,
        apply_ctf=apply_ctf,
        notes=notes,
        warnings=warnings,
    )


def estimate_noise_model(
    table: pd.DataFrame,
    volume: np.ndarray,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    **kwargs,
) -> NoiseModel:
    """Per-shell noise variance of particle images against CTF-modulated projections of a map.

    Parameters
    ----------
    table
        Canonical particle table (``rot_deg``, ``tilt_deg``, ``psi_deg``, ``shift_x_A``,
        ``shift_y_A``, CTF columns, ``image_path``/``image_index``, ``pixel_size_A``).
    volume
        The map [z, y, x] (cubic). ``map_pixel_size_A`` is its voxel size when it differs from
        the particles' (it is then Fourier-resampled; a different box is cropped/padded).
    images
        The particle images in table order: an (n, N, N) array, or an image source with
        ``box``, ``header_pixel_size_A`` and ``read(rows)`` such as
        :class:`napari_cryodiag.io.particle_images.TableStacks` (reads the stacks by chunk;
        :func:`napari_cryodiag.workflows.noise.estimate_noise_model` builds it from files).
    scale
        ``"global"`` (one least-squares amplitude, default), ``"per_image"``, ``"none"`` or a number.
    apply_ctf
        Multiply projections by each particle's CTF (defocus from the table; voltage, Cs and
        amplitude contrast from the table or the keyword defaults, reported in ``notes``).
    chunk_size, num_workers, client
        Particles per dask task; local threads (``num_workers``, default one per core;
        ``scheduler="sync"`` means one), or a :class:`distributed.Client` / scheduler address as
        ``client``: each worker then reads its own chunks of particle images from the stacks'
        paths (:mod:`napari_cryodiag.compute.scheduling`). Partial sums are added in chunk order
        either way, so both give the same numbers.
    projector
        A :class:`FourierProjector` of this map already built on the particles' grid (reused
        to save its set-up; it must be the projector of ``volume``).
    progress
        Called with ``(done, total)`` particles after each group of chunks.
    cancel
        A ``threading.Event``; when set, work stops and :class:`NoiseModelCancelled` is raised.
    """
    gen = iter_noise_model(table, volume, cancel=cancel, **kwargs)
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(done, total)
        if cancel is not None and cancel.is_set():
            gen.close()
            raise NoiseModelCancelled("noise model cancelled")


# --------------------------------------------------------------------------- RELION spectra


class NoiseSpectra(dict):
    """``{group name: spectrum}`` with ``notes`` on what was left out."""

    def __init__(self, *args, notes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.notes = list(notes)


def relion_noise_spectra(model, image_size_px: int | None = None) -> NoiseSpectra:
    """Per-group ``rlnSigma2Noise`` spectra of a RELION model (:class:`io.relion_model.ModelStar`).

    Returns ``{group name: {"shell", "frequency_invA", "resolution_A", "sigma2_noise",
    "per_pixel"}}``; ``per_pixel = 2 N^2 sigma2_noise`` (``N`` = ``rlnOriginalImageSize``) puts
    RELION's values in this module's per-pixel convention (NaN when ``N`` is unknown).

    A group whose ``rlnSigma2Noise`` is NaN (or missing) in every shell is left out, with a note
    in ``.notes``; when no group has a value, :class:`CryodiagInputError` names the model file
    (an empty plot would say nothing).
    """
    n = image_size_px or model.image_size_px
    out = NoiseSpectra()
    empty = []
    for name, df in model.groups.items():
        s2 = pd.to_numeric(df["sigma2_noise"], errors="coerce").to_numpy(float) if "sigma2_noise" in df \
            else np.full(len(df), np.nan)
        if not np.isfinite(s2).any():
            empty.append(str(name))
            continue
        shell = df["shell"].to_numpy(int) if "shell" in df else np.arange(len(s2))
        if "frequency_invA" in df:
            f = df["frequency_invA"].to_numpy(float)
        elif n and model.pixel_size_A:
            f = shell / (n * model.pixel_size_A)
        else:
            f = np.full(len(s2), np.nan)
        with np.errstate(divide="ignore"):
            res = np.where(f > 0, 1.0 / np.where(f > 0, f, 1.0), np.inf)
        out[str(name)] = {
            "shell": shell,
            "frequency_invA": f,
            "resolution_A": res,
            "sigma2_noise": s2,
            "per_pixel": 2.0 * n * n * s2 if n else np.full(len(s2), np.nan),
        }
    path = getattr(model, "path", None) or None
    if empty and not out:
        what = f"all {len(empty)} groups" if len(empty) > 1 else f"group {empty[0]}"
        raise CryodiagInputError(f"no noise spectrum to show: rlnSigma2Noise is NaN in every shell of {what}", path)
    if empty:
        out.notes.append(f"rlnSigma2Noise is NaN in every shell of group(s) {', '.join(empty)}: left out")
    return out
