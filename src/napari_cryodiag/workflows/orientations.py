"""Orientation diagnostics end to end: read the particle table (and two half maps for cFAR),
find the box size in the files behind the table, compute
(:mod:`napari_cryodiag.compute.particles.orientation_diagnostics`), draw and write the figures
and the JSON.

Called by ``cryodiag orientations`` and by the Orientations widget:
:func:`load_particles`, :func:`iter_orientation_diagnostics` (the worker's ``(done, total)``
generator) / :func:`orientation_diagnostics` with :class:`OrientationsOptions`, then
:func:`plan_outputs` + :func:`export`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd

from ..compute.particles.orientation_diagnostics import OrientationDiagnostics
from ..compute.particles.orientation_diagnostics import iter_orientation_diagnostics as _iter_compute
from ..compute.particles.orientations import table_box_px
from ..compute.progress import run_steps
from ..errors import CryodiagInputError, about

__all__ = ["OrientationsOptions", "OrientationDiagnostics", "load_particles", "particle_box_px", "read_half_maps",
           "iter_orientation_diagnostics", "orientation_diagnostics", "plan_outputs", "figures", "export", "FIGURES"]

#: figure stems of :func:`export` (``posterior_precision`` when there are CTF columns,
#: ``conical_fsc`` with half maps)
FIGURES = ("viewing_directions", "fourier_sampling", "posterior_precision", "scf_cfar", "conical_fsc",
           "orientations_overview")


@dataclass
class OrientationsOptions:
    """Options of the orientation diagnostics (0 = automatic / from the files)."""

    radius_px: Annotated[float, {"min": 0.0, "max": 2048.0, "label": "Fourier radius (voxels)", "special": "auto",
                                 "tooltip": "auto: box·apix/resolution, else box/4, else 32"}] = 0.0
    box_px: Annotated[int, {"min": 0, "max": 4096, "label": "box (px)", "special": "from the files"}] = 0
    pixel_size_A: Annotated[float, {"min": 0.0, "max": 100.0, "step": 0.01,
                                    "label": "pixel size (Å)", "special": "from the files"}] = 0.0
    resolution_A: Annotated[float, {"min": 0.0, "max": 100.0, "label": "shell resolution (Å)", "special": "none",
                                            "tooltip": "the resolution (Å) whose Fourier shell is examined"}] = 0.0
    noise_variance: Annotated[float, {"min": 1e-6, "max": 1e9, "label": "noise variance σ²"}] = 1.0
    n_azimuth: Annotated[int, {"min": 4, "max": 720, "label": "azimuth bins"}] = 72
    n_elevation: Annotated[int, {"min": 2, "max": 360, "label": "elevation bins", "tooltip": "uniform in sin(elevation): equal areas"}] = 36
    n_cones: Annotated[int, {"min": 8, "max": 4096, "label": "cFAR cones", "tooltip": "cone axes over a hemisphere"}] = 256
    cone_half_angle_deg: Annotated[float, {"min": 1.0, "max": 90.0, "label": "cFAR cone half-angle (°)"}] = 20.0
    method: Annotated[Literal["auto", "binned", "direct"], {
        "label": "SCF / sampling computation",
        "tooltip": "binned directions (fast) or particle by particle; auto: direct up to 20,000 particles"}] = "auto"

    def compute_kwargs(self) -> dict:
        return dict(radius_px=self.radius_px or None, box_px=self.box_px or None,
                    pixel_size_A=self.pixel_size_A or None, resolution_A=self.resolution_A or None,
                    noise_variance=self.noise_variance, n_azimuth=self.n_azimuth, n_elevation=self.n_elevation,
                    n_cones=self.n_cones, cone_half_angle_deg=self.cone_half_angle_deg, method=self.method)

    def to_dict(self) -> dict:
        return asdict(self)


def load_particles(particles) -> tuple[pd.DataFrame, list[str]]:
    """The particle table (path or DataFrame) without the rows that have no finite rot/tilt, and
    the warnings (one line each, naming the file). When no row has angles the diagnostics refuse."""
    if isinstance(particles, pd.DataFrame):
        table = particles
    else:
        from ..io.picks import read_table

        if not Path(particles).exists():
            raise CryodiagInputError("file not found", particles)
        table = read_table(particles)
    src = table.attrs.get("source")
    if not {"rot_deg", "tilt_deg"} <= set(table.columns):
        return table, []
    ok = (np.isfinite(np.asarray(table["rot_deg"], dtype=np.float64))
          & np.isfinite(np.asarray(table["tilt_deg"], dtype=np.float64)))
    if ok.all() or not ok.any():
        return table, []
    warning = (f"{src}: {int((~ok).sum())} of {len(table)} particles have no finite rot/tilt angle (NaN); "
               "they are left out")
    attrs = dict(table.attrs)
    table = table[ok].reset_index(drop=True)
    table.attrs = attrs
    return table, [warning]


def particle_box_px(table: pd.DataFrame) -> int | None:
    """Particle box size (px): from the table (:func:`~napari_cryodiag.compute.particles.orientations.table_box_px`),
    else the ``blob/shape`` field of its ``.cs`` source, else the header of its first particle stack."""
    box = table_box_px(table)
    if box is not None:
        return box
    attrs = table.attrs if hasattr(table, "attrs") else {}
    src = attrs.get("source")
    if attrs.get("format") == "cs" and src and "blob/shape" in (attrs.get("fields") or []):
        from ..io.cs import read_cs_array

        try:  # the canonical table drops blob/shape; read that one field (memory-mapped)
            arr = read_cs_array(src, mmap=True)
            if len(arr):
                return int(np.asarray(arr["blob/shape"][0]).ravel()[-1])
        except (CryodiagInputError, ValueError, KeyError, IndexError):
            pass
    if "image_path" in table.columns and len(table) and src:
        from ..io.mrc import read_header

        first = Path(str(table["image_path"].iloc[0]))
        for cand in (first, Path(src).parent / first):
            if cand.is_file():
                try:
                    return int(read_header(cand).shape[-1])
                except (CryodiagInputError, OSError, ValueError):
                    return None
    return None


def read_half_maps(half1, half2, pixel_size_A: float | None = None):
    """``(half1, half2, voxel size Å or None)`` for cFAR from two paths (or two arrays with
    ``pixel_size_A``); both or neither: one alone is an input error naming it."""
    if (half1 is None) != (half2 is None):
        raise CryodiagInputError("cFAR needs both half maps (--half1 and --half2)",
                                 half1 if isinstance(half1, (str, os.PathLike)) else half2)
    if half1 is None:
        return None, None, None
    from ..compute.maps.fsc import check_half_maps

    if isinstance(half1, (str, os.PathLike)):
        from ..io.mrc import read_map

        m1, m2 = read_map(half1), read_map(half2)
        # same grid, cubic, same voxel size, finite (the error names both files)
        apix = check_half_maps(m1.data, m2.data, m1.voxel_size_A, m2.voxel_size_A, half1, half2)
        return m1.data, m2.data, pixel_size_A or apix
    a, b = np.asarray(half1), np.asarray(half2)
    check_half_maps(a, b, pixel_size_A, pixel_size_A, "half map 1", "half map 2")
    return a, b, pixel_size_A


def iter_orientation_diagnostics(particles, options: OrientationsOptions | None = None, *, half1=None, half2=None,
                                 half_pixel_size_A: float | None = None, **option_fields):
    """Generator of ``(done, total)`` returning an :class:`OrientationDiagnostics`.

    ``particles``: a path or a canonical table (with 3D poses); ``half1``/``half2``: paths or
    arrays (with ``half_pixel_size_A``) for cFAR; ``option_fields`` set fields of ``options``
    (e.g. ``radius_px=16``).
    """
    opts = OrientationsOptions(**{**(asdict(options) if options else {}), **option_fields})
    table, _ = load_particles(particles) if not isinstance(particles, pd.DataFrame) else (particles, [])
    kw = opts.compute_kwargs()
    if kw["box_px"] is None:
        kw["box_px"] = particle_box_px(table)
    h1, h2, hp = read_half_maps(half1, half2, half_pixel_size_A)
    with about(table.attrs.get("source")):
        return (yield from _iter_compute(table, half1=h1, half2=h2, half_pixel_size_A=hp, **kw))


def orientation_diagnostics(particles, options: OrientationsOptions | None = None, *, progress=None,
                            **kwargs) -> OrientationDiagnostics:
    """:func:`iter_orientation_diagnostics` run to completion."""
    return run_steps(iter_orientation_diagnostics(particles, options, **kwargs), progress)


def plan_outputs(plan, *, json_name: str = "orientations.json") -> None:
    """Add the figures and the JSON of :func:`export` to ``plan`` (before its check)."""
    for stem in FIGURES:
        plan.figure(stem)
    plan.file(json_name, "JSON of the numbers")


def figures(res: OrientationDiagnostics) -> dict:
    """``{stem: Figure}`` of a result (see :data:`FIGURES`)."""
    from ..plots.orientations import (
        plot_conical_fsc,
        plot_directional_map,
        plot_orientations_overview,
        plot_scf_cfar,
        plot_viewing_directions,
    )

    out = {"viewing_directions": plot_viewing_directions(res.histogram),
           "fourier_sampling": plot_directional_map(res.maps, "fourier_sampling", scf=res.scf)}
    if res.maps.posterior_precision is not None:
        out["posterior_precision"] = plot_directional_map(res.maps, "posterior_precision")
    out["scf_cfar"] = plot_scf_cfar(res.scf, res.cfsc)
    if res.cfsc is not None:
        out["conical_fsc"] = plot_conical_fsc(res.cfsc)
    out["orientations_overview"] = plot_orientations_overview(res.histogram, res.maps, res.scf, res.cfsc)
    return out


def export(res: OrientationDiagnostics, plan, *, json_name: str = "orientations.json",
           extra: dict | None = None) -> list[Path]:
    """Write the figures, then the JSON of the numbers (with ``figures`` and ``extra``), through ``plan``."""
    written = []
    for stem, fig in figures(res).items():
        written += plan.save_figure(fig, stem)
    data = res.to_dict()
    data.update(extra or {})
    data["figures"] = [str(p) for p in written]
    written.append(plan.write_json(json_name, data))
    return written
