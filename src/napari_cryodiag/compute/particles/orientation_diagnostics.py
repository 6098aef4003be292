"""Every orientation diagnostic of a particle set in one call: viewing directions, Fourier
sampling and posterior-precision maps, SCF/SCF*, and the conical FSC / cFAR of half maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import CryodiagInputError
from ..progress import run_steps
from .cfar import conical_fsc
from .fourier_sampling import directional_distributions, posterior_precision_weights
from .orientations import (
    ViewingHistogram,
    bin_directions,
    table_box_px,
    table_pixel_size_A,
    viewing_direction_histogram,
    viewing_directions_from_table,
)
from .scf import sampling_compensation_factor

#: below this many particles SCF is computed particle by particle (``method="auto"``)
DIRECT_SCF_MAX_PARTICLES = 20_000


@dataclass
class OrientationDiagnostics:
    """Everything the Orientations widget and ``cryodiag orientations`` show."""

    histogram: ViewingHistogram
    maps: object  # fourier_sampling.DirectionalMaps
    scf: object  # scf.SCFResult
    cfsc: object | None  # cfar.ConicalFSC
    radius_px: float
    radius_source: str
    box_px: int | None
    pixel_size_A: float | None
    ctf_frequency_invA: float | None
    precision_note: str
    n_particles: int
    source: str | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "n_particles": int(self.n_particles),
            "conventions": {
                "viewing_direction": "third row of RELION's A: (cos rot sin tilt, sin rot sin tilt, cos tilt)",
                "azimuth": "rot (deg), 0 at the poles",
                "elevation": "90 - tilt (deg)",
                "antipodes": "viewing histogram: full sphere, not folded; sampling maps are antipodally symmetric",
            },
            "radius_px": float(self.radius_px),
            "radius_source": self.radius_source,
            "box_px": self.box_px,
            "pixel_size_A": self.pixel_size_A,
            "ctf_frequency_invA": self.ctf_frequency_invA,
            "posterior_precision_weights": self.precision_note,
            "viewing_directions": self.histogram.to_dict(),
            "scf": self.scf.to_dict(),
            "sampling_maps": self.maps.to_dict(),
            "cfar": None if self.cfsc is None else self.cfsc.to_dict(),
        }


def has_refined_poses(table, *, rows: int | None = None) -> bool:
    """Whether ``table`` has rot and tilt columns whose values are not one pose for every particle
    (the first ``rows`` rows only, when given: enough to rank inputs cheaply)."""
    if not {"rot_deg", "tilt_deg"} <= set(getattr(table, "columns", [])) or len(table) < 2:
        return False
    head = table if rows is None else table.iloc[:rows]
    rot = np.asarray(head["rot_deg"], dtype=np.float64)
    tilt = np.asarray(head["tilt_deg"], dtype=np.float64)
    finite = np.isfinite(rot) & np.isfinite(tilt)
    if not finite.any():
        return False
    return bool(np.ptp(rot[finite]) > 0 or np.ptp(tilt[finite]) > 0)


def _refuse_unrefined_poses(table, source) -> None:
    """Refuse a particle set whose every particle has the same rot and tilt: no refinement gives
    that (a 2D classification writes rot = tilt = 0, an import leaves them unset). Reporting its
    one viewing direction as "preferred orientation" would be advice drawn from a wrong input."""
    if not {"rot_deg", "tilt_deg"} <= set(getattr(table, "columns", [])) or len(table) < 2:
        return
    rot = np.asarray(table["rot_deg"], dtype=np.float64)
    tilt = np.asarray(table["tilt_deg"], dtype=np.float64)
    if not has_refined_poses(table):
        raise CryodiagInputError(
            f"all {len(table)} particles have rot = {rot[0]:g}° and tilt = {tilt[0]:g}°: these are not refined 3D "
            "orientations (a 2D classification writes 0, an import leaves them unset); use a 3D refinement's particles",
            source,
        )


def iter_orientation_diagnostics(
    table,
    *,
    radius_px: float | None = None,
    box_px: int | None = None,
    pixel_size_A: float | None = None,
    resolution_A: float | None = None,
    n_azimuth: int = 72,
    n_elevation: int = 36,
    noise_variance=1.0,
    half1=None,
    half2=None,
    half_pixel_size_A: float | None = None,
    n_cones: int = 256,
    cone_half_angle_deg: float = 20.0,
    method: str = "auto",
):
    """Generator: yields ``(done, total)`` progress and returns :class:`OrientationDiagnostics`.

    The Fourier radius ``R`` of the sampling computations is ``radius_px`` if given; else
    ``box · apix / resolution_A`` when those are known; else ``box / 4``; else 32 voxels.
    The CTF² of the posterior precision is averaged over the ring at ``R / (box · apix)``
    (``1 / resolution_A``, or half Nyquist ``1 / (4 apix)``, when the box is unknown).
    ``method``: "auto" (SCF particle by particle up to 20,000 particles, binned above),
    "binned" or "direct" (also for the maps).
    """
    total = 6 if half1 is not None else 5
    source = table.attrs.get("source") if hasattr(table, "attrs") else None
    vectors = viewing_directions_from_table(table)
    n = len(vectors)
    if n == 0:
        raise CryodiagInputError("the particle table is empty", source)
    _refuse_unrefined_poses(table, source)
    yield (1, total)
    hist = viewing_direction_histogram(vectors, n_azimuth, n_elevation)
    yield (2, total)

    box = int(box_px) if box_px else table_box_px(table)
    apix = float(pixel_size_A) if pixel_size_A else table_pixel_size_A(table)
    if radius_px:
        radius, how = float(radius_px), "given"
    elif resolution_A and box and apix:
        radius, how = box * apix / float(resolution_A), f"box {box} px × {apix:g} Å / {resolution_A:g} Å"
    elif box:
        radius, how = box / 4.0, f"box {box} px / 4"
    else:
        radius, how = 32.0, "default (box unknown)"
    radius = max(radius, 1.0)

    if box and apix:
        freq = radius / (box * apix)
    elif resolution_A:
        freq = 1.0 / float(resolution_A)
    elif apix:
        freq = 1.0 / (4.0 * apix)
    else:
        freq = None
    weights = None
    note = "unavailable: no pixel size to place the ring"
    if freq is not None:
        try:
            weights = posterior_precision_weights(table, freq, noise_variance)
            nv = np.asarray(noise_variance)
            note = f"<CTF²> over the ring at {freq:.4f} 1/Å ({1 / freq:.1f} Å) / noise variance" + (
                f" {float(nv):g}" if nv.ndim == 0 else " (per particle)"
            )
        except CryodiagInputError as err:
            weights, note = None, f"unavailable: {err.problem}"
    binned = bin_directions(vectors, weights)
    yield (3, total)
    maps = directional_distributions(
        vectors if method == "direct" else None,
        weights,
        radius,
        n_azimuth,
        n_elevation,
        binned=binned if method != "direct" else None,
        method="direct" if method == "direct" else "binned",
    )
    yield (4, total)
    scf_method = method if method in ("binned", "direct") else ("direct" if n <= DIRECT_SCF_MAX_PARTICLES else "binned")
    scf_res = sampling_compensation_factor(
        vectors if scf_method == "direct" else None, radius, binned=binned if scf_method == "binned" else None, method=scf_method
    )
    yield (5, total)
    cfsc = None
    if half1 is not None and half2 is not None:
        hp = half_pixel_size_A or apix or 1.0
        cfsc = conical_fsc(half1, half2, hp, n_cones=n_cones, half_angle_deg=cone_half_angle_deg)
        yield (6, total)
    return OrientationDiagnostics(
        histogram=hist,
        maps=maps,
        scf=scf_res,
        cfsc=cfsc,
        radius_px=radius,
        radius_source=how,
        box_px=box,
        pixel_size_A=apix,
        ctf_frequency_invA=freq,
        precision_note=note,
        n_particles=n,
        source=source,
    )


def orientation_diagnostics(table, *, progress=None, **kwargs) -> OrientationDiagnostics:
    """Run :func:`iter_orientation_diagnostics` to the end and return its result."""
    return run_steps(iter_orientation_diagnostics(table, **kwargs), progress)
