"""Noise model end to end: read the particle table, the map and the particle stacks (by chunk,
memory-mapped), compute the per-shell noise from residuals
(:mod:`napari_cryodiag.compute.particles.noise_model`); read a RELION ``model.star``'s per-group
``rlnSigma2Noise``; draw and write the figures and the JSON.

Called by ``cryodiag noise`` and by the Noise model widget: :func:`iter_noise_model` (the
worker's ``(done, total)`` generator) with :class:`NoiseOptions`, :func:`relion_spectra`, then
:func:`plan_outputs` + :func:`export`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd

from ..compute.particles import noise_model as _nm
from ..compute.particles.noise_model import NoiseModel, relion_noise_spectra
from ..errors import CryodiagInputError, about

__all__ = ["NoiseOptions", "NoiseModel", "subset", "image_source", "estimate_noise_model", "iter_noise_model",
           "relion_spectra", "group_particle_counts", "numbers", "plan_outputs", "export"]


@dataclass
class NoiseOptions:
    """Options of the noise model (0 = automatic / from the files)."""

    scale: Annotated[Literal["global", "per_image", "none"], {
        "label": "map-to-image scale",
        "tooltip": "one least-squares amplitude, one per image, or 1"}] = "global"
    apply_ctf: Annotated[bool, {"label": "apply each particle's CTF",
                                 "tooltip": "multiply the projections by each particle's CTF"}] = True
    max_particles: Annotated[int, {"min": 0, "max": 100_000_000, "label": "max particles", "special": "all",
                                   "tooltip": "a random subset (seed 0)"}] = 0
    chunk_size: Annotated[int, {"min": 1, "max": 100_000, "label": "particles per task"}] = 256
    pixel_size_A: Annotated[float, {"min": 0.0, "max": 100.0, "step": 0.01,
                                    "label": "particle pixel size (Å)", "special": "from the table"}] = 0.0
    map_pixel_size_A: Annotated[float, {"min": 0.0, "max": 100.0, "step": 0.01,
                                        "label": "map voxel size (Å)", "special": "from the map"}] = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def subset(table: pd.DataFrame, max_particles: int, seed: int = 0) -> pd.DataFrame:
    """A random subset of ``max_particles`` rows (in table order; all rows when 0 or more)."""
    if not max_particles or len(table) <= max_particles:
        return table
    keep = np.sort(np.random.default_rng(seed).choice(len(table), max_particles, replace=False))
    attrs = dict(table.attrs)
    out = table.iloc[keep].reset_index(drop=True)
    out.attrs = attrs
    return out


def image_source(table: pd.DataFrame, images=None, stack=None, source=None):
    """The particle images of ``table``: ``images`` as given, else the stack files
    (:class:`~napari_cryodiag.io.particle_images.TableStacks`: ``stack`` indexed by
    ``image_index``, or the stacks the table names)."""
    if images is not None:
        return images
    from ..io.particle_images import TableStacks

    return TableStacks(table, stack=stack, source=source)


def estimate_noise_model(table: pd.DataFrame, volume: np.ndarray, *, images=None, stack=None, source=None,
                         **kwargs) -> NoiseModel:
    """:func:`napari_cryodiag.compute.particles.noise_model.estimate_noise_model` with the images
    read from the stacks when not given (see :func:`image_source`)."""
    src = source if source is not None else table.attrs.get("source")
    return _nm.estimate_noise_model(table, volume, images=image_source(table, images, stack, src), source=src,
                                    **kwargs)


def iter_noise_model(particles, volume, options: NoiseOptions | None = None, *, images=None, stack=None,
                     scale=None, num_workers: int | None = None, cancel: threading.Event | None = None,
                     source=None, **kwargs):
    """Generator: ``(done, total)`` particles; returns the :class:`NoiseModel`.

    ``particles``: a table path or a canonical DataFrame; ``volume``: a map path or an array
    (its voxel size from ``options.map_pixel_size_A``, else the header); ``images``/``stack``: as
    :func:`image_source`; ``scale``: a number overrides ``options.scale``.
    """
    opts = options or NoiseOptions()
    if isinstance(particles, pd.DataFrame):
        table = particles
    else:
        from ..io.picks import read_table

        table = read_table(particles)
    src = source or table.attrs.get("source") or (None if isinstance(particles, pd.DataFrame)
                                                  else os.fspath(particles))
    table = subset(table, opts.max_particles)
    map_apix = opts.map_pixel_size_A or None
    map_source = None
    if isinstance(volume, (str, os.PathLike)):
        map_source = os.fspath(volume)
        from ..io.mrc import read_map

        m = read_map(volume)
        volume, map_apix = m.data, map_apix or m.pixel_size_A
    with about(src):
        return (yield from _nm.iter_noise_model(
            table, volume, images=image_source(table, images, stack, src), pixel_size_A=opts.pixel_size_A or None,
            map_pixel_size_A=map_apix, scale=opts.scale if scale is None else scale, apply_ctf=opts.apply_ctf,
            chunk_size=opts.chunk_size, num_workers=num_workers, cancel=cancel, source=src, map_source=map_source,
            **kwargs))


def group_particle_counts(model) -> dict:
    """``{group name: rlnGroupNrParticles}`` when the model lists them (RELION < 3.1)."""
    gt = getattr(model, "group_table", None)
    if gt is None or "rlnGroupName" not in gt or "rlnGroupNrParticles" not in gt:
        return {}
    return {str(n): int(c) for n, c in zip(gt["rlnGroupName"], gt["rlnGroupNrParticles"])}


def relion_spectra(model) -> dict:
    """Per-group ``rlnSigma2Noise`` of a RELION ``*_model.star`` (path or read model):
    ``{"model", "spectra", "counts", "json"}``; a model without spectra is an input error."""
    from ..io.relion_model import read_model_star

    path = model if isinstance(model, (str, os.PathLike)) else getattr(model, "path", None)
    m = read_model_star(model) if isinstance(model, (str, os.PathLike)) else model
    spectra = relion_noise_spectra(m)
    if not spectra:
        raise CryodiagInputError("the model has no rlnSigma2Noise spectra", path)
    counts = group_particle_counts(m)
    js = {
        "model": str(path),
        "pixel_size_A": m.pixel_size_A,
        "image_size_px": m.image_size_px,
        "group_kind": m.group_kind,
        "per_pixel_convention": "per_pixel = 2 * N^2 * sigma2_noise (N = rlnOriginalImageSize)",
        "groups": {name: {**s, "particles": counts.get(name)} for name, s in spectra.items()},
    }
    return {"model": m, "spectra": spectra, "counts": counts, "json": js}


def numbers(noise_model: NoiseModel | None = None, relion: dict | None = None, inputs: dict | None = None) -> dict:
    """The JSON of the numbers: ``noise_model`` (per shell), ``relion_sigma2_noise``, ``inputs``."""
    out: dict = {}
    if noise_model is not None:
        out["noise_model"] = noise_model.to_dict()
    if inputs:
        out["inputs"] = inputs
    if relion is not None:
        out["relion_sigma2_noise"] = relion["json"]
    return out


def plan_outputs(plan, *, particles: bool = True, model: bool = False, json_name: str = "noise.json") -> None:
    """Add the figures and the JSON of :func:`export` to ``plan`` (before its check)."""
    if particles:
        plan.figure("noise_basic")
        plan.figure("noise_advanced")
    if model:
        plan.figure("relion_sigma2")
    plan.file(json_name, "JSON of the numbers")


def export(plan, noise_model: NoiseModel | None = None, relion: dict | None = None, *, inputs: dict | None = None,
           per_pixel: bool = False, json_name: str = "noise.json") -> list[Path]:
    """Write the figures (basic and advanced noise model, RELION σ²) and the JSON through ``plan``."""
    from ..plots.noise_model import plot_noise_advanced, plot_noise_basic, plot_relion_sigma2

    written = []
    if noise_model is not None:
        written += plan.save_figure(plot_noise_basic(noise_model), "noise_basic")
        written += plan.save_figure(plot_noise_advanced(noise_model), "noise_advanced")
    if relion is not None:
        fig = plot_relion_sigma2(relion["spectra"], per_pixel=per_pixel, counts=relion["counts"])
        written += plan.save_figure(fig, "relion_sigma2")
    written.append(plan.write_json(json_name, numbers(noise_model, relion, inputs)))
    return written
