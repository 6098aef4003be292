"""Write the simulated sample dataset to a folder, in the formats users bring.

Layout of ``write_sample_dataset(folder)``::

    folder/
      micrographs/sim_0001.mrc ...   raw micrographs (float32 MRC, pixel size in the header)
      picks.star                     all picks, RELION 3.1 style (optics block + particles)
      picks.cs                       the same picks as a NumPy-format cryoSPARC .cs
                                     (location/*, pick_stats/*, ctf/*; schema of cryoSPARC's pickers)
      truth.csv                      the picks with their truth label (particle / junk / empty),
                                     truth_detail (edge / aggregate), true pose and scores
      regions.csv                    junk and empty areas per micrograph (carbon, aggregate, empty)
      density.mrc                    the 3D density the particles are projections of
      half_maps/half1.mrc half2.mrc mask.mrc        (simulate.half_maps)
      classes/class_averages.mrcs particles.mrcs particles.star   (simulate.classes)
      dataset.json                   parameters, counts and the list of files

The picks files hold what a picker writes (coordinates, CTF, scores); the truth is only in
``truth.csv``. Everything is generated from ``seed`` (the ``.cs`` uids too) and written
atomically; existing files are only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..io.atomic import atomic_write, atomic_write_text
from .micrographs import SimulatedMicrographs, simulate_micrographs

MICROGRAPH_FOLDER = "micrographs"

#: columns of the picks files (what a picker knows)
PICK_FILE_COLUMNS = [
    "micrograph_name", "micrograph", "x_px", "y_px", "defocus_A", "defocus_u_A", "defocus_v_A",
    "defocus_angle_deg", "voltage_kV", "cs_mm", "amplitude_contrast", "pixel_size_A", "diameter_px", "ncc", "power",
]


@dataclass
class SampleDataset:
    """Paths of a written sample dataset, and the simulation it came from."""

    folder: Path
    micrographs: list[Path]
    picks_star: Path
    picks_cs: Path
    truth_csv: Path
    regions_csv: Path
    density: Path
    manifest: Path
    half_maps: dict[str, Path] = field(default_factory=dict)
    classes: dict[str, Path] = field(default_factory=dict)
    refinement: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    simulation: SimulatedMicrographs | None = None


def _write_mrc(path: Path, data: np.ndarray, voxel_size_A: float, *, overwrite: bool, stack: bool = False) -> Path:
    from ..io.mrc import write_mrc

    return write_mrc(path, np.asarray(data, dtype=np.float32), voxel_size_A, overwrite=overwrite, stack=stack)


def pick_file_table(sim: SimulatedMicrographs, folder_prefix: str = MICROGRAPH_FOLDER) -> pd.DataFrame:
    """The picks as a picker would write them: no truth, micrograph names relative to the dataset folder."""
    cols = [c for c in PICK_FILE_COLUMNS if c in sim.truth.columns]
    t = sim.truth[cols].copy()
    t["micrograph_name"] = [f"{folder_prefix}/{n}" if folder_prefix else n for n in t["micrograph_name"]]
    return t


def picks_cs_records(sim: SimulatedMicrographs, folder_prefix: str = MICROGRAPH_FOLDER) -> np.ndarray:
    """A cryoSPARC pick record array (NumPy ``.cs`` schema, as cryoSPARC's blob/template pickers write).

    Fields and dtypes follow a real cryoSPARC particle schema: ``uid``, ``location/*``
    (``center_x_frac = x_px / nx``, ``center_y_frac = y_px / ny``, ``micrograph_shape = [ny, nx]``),
    ``pick_stats/*`` (``ncc_score``, ``power``, ``template_idx``, ``angle_rad``) and the
    micrograph's ``ctf/*`` (``df1_A``, ``df2_A``, ``df_angle_rad`` ...). uids come from the seed.
    """
    t = sim.truth
    n = len(t)
    ny, nx = sim.images.shape[1:]
    paths = [f"{folder_prefix}/{m}" if folder_prefix else m for m in t["micrograph_name"]]
    width = max([1] + [len(p.encode()) for p in paths])
    dtype = [
        ("uid", "<u8"),
        ("location/micrograph_uid", "<u8"),
        ("location/exp_group_id", "<u4"),
        ("location/micrograph_path", f"S{width}"),
        ("location/micrograph_shape", "<u4", (2,)),
        ("location/center_x_frac", "<f4"),
        ("location/center_y_frac", "<f4"),
        ("location/min_dist_A", "<f4"),
        ("location/micrograph_psize_A", "<f4"),
        ("pick_stats/ncc_score", "<f4"),
        ("pick_stats/power", "<f4"),
        ("pick_stats/template_idx", "<u4"),
        ("pick_stats/angle_rad", "<f4"),
        ("ctf/type", "S9"),
        ("ctf/exp_group_id", "<u4"),
        ("ctf/accel_kv", "<f4"),
        ("ctf/cs_mm", "<f4"),
        ("ctf/amp_contrast", "<f4"),
        ("ctf/df1_A", "<f4"),
        ("ctf/df2_A", "<f4"),
        ("ctf/df_angle_rad", "<f4"),
        ("ctf/phase_shift_rad", "<f4"),
        ("ctf/scale", "<f4"),
        ("ctf/scale_const", "<f4"),
        ("ctf/shift_A", "<f4", (2,)),
        ("ctf/tilt_A", "<f4", (2,)),
        ("ctf/trefoil_A", "<f4", (2,)),
        ("ctf/tetra_A", "<f4", (4,)),
        ("ctf/anisomag", "<f4", (4,)),
        ("ctf/bfactor", "<f4"),
    ]
    out = np.zeros(n, dtype=dtype)
    rng = np.random.default_rng([int(sim.seed), 0x5A4D])
    out["uid"] = rng.integers(1, 2**63, size=n, dtype=np.uint64)
    mic_uid = rng.integers(1, 2**63, size=len(sim.names), dtype=np.uint64)
    index = {k: i for i, k in enumerate(sim.keys)}
    mi = np.array([index[k] for k in t["micrograph"]], dtype=np.int64)
    out["location/micrograph_uid"] = mic_uid[mi] if n else []
    out["location/micrograph_path"] = np.char.encode(np.asarray(paths, dtype=str)) if n else []
    out["location/micrograph_shape"] = np.array([ny, nx], dtype=np.uint32)
    out["location/center_x_frac"] = t["x_px"].to_numpy(float) / nx
    out["location/center_y_frac"] = t["y_px"].to_numpy(float) / ny
    out["location/min_dist_A"] = 0.5 * sim.particle_diameter_A
    out["location/micrograph_psize_A"] = sim.pixel_size_A
    if "ncc" in t:
        out["pick_stats/ncc_score"] = t["ncc"].to_numpy(float)
    if "power" in t:
        out["pick_stats/power"] = t["power"].to_numpy(float)
    out["ctf/type"] = b"imported"
    out["ctf/accel_kv"] = sim.voltage_kV
    out["ctf/cs_mm"] = sim.cs_mm
    out["ctf/amp_contrast"] = sim.amplitude_contrast
    out["ctf/df1_A"] = t["defocus_u_A"].to_numpy(float)
    out["ctf/df2_A"] = t["defocus_v_A"].to_numpy(float)
    out["ctf/df_angle_rad"] = np.deg2rad(t["defocus_angle_deg"].to_numpy(float))
    out["ctf/scale"] = 1.0
    out["ctf/anisomag"] = 0.0
    return out


def _write_npy(path: Path, records: np.ndarray, *, overwrite: bool) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, records, allow_pickle=False)

    return atomic_write(path, write, overwrite=overwrite)


def _write_csv(path: Path, df: pd.DataFrame, *, overwrite: bool) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False, float_format="%.6g"), overwrite=overwrite)


def write_sample_dataset(
    folder: str | os.PathLike,
    seed: int = 0,
    n_micrographs: int = 8,
    shape: tuple[int, int] = (1024, 1024),
    pixel_size_A: float = 2.0,
    *,
    half_maps: bool = True,
    classes: bool = True,
    refinement: bool = True,
    n_refined_particles: int = 1000,
    overwrite: bool = False,
    simulation: SimulatedMicrographs | None = None,
    **simulate_kwargs,
) -> SampleDataset:
    """Simulate (or take ``simulation``) and write the sample dataset into ``folder`` (created).

    ``simulate_kwargs`` go to :func:`~napari_cryodiag.simulate.micrographs.simulate_micrographs`.
    ``half_maps`` / ``classes`` add the half maps and the 2D classes (what is left out is named
    in ``skipped`` and ``dataset.json``). ``refinement``
    adds a refined particle set (``refinement/particles.star``, its MRCS stack and the map the
    images were projected from; poses, shifts and CTF known, white noise of known variance) for
    the orientation and noise-model diagnostics.
    """
    folder = Path(folder).expanduser().absolute()  # relative_to() below needs absolute paths
    if folder.exists() and not folder.is_dir():
        raise CryodiagInputError("output exists and is not a folder", folder)
    if not overwrite and folder.is_dir():
        # fail before simulating when the dataset is already there
        existing = [folder / n for n in ("dataset.json", "picks.star", "picks.cs", "truth.csv") if (folder / n).exists()]
        existing += sorted((folder / MICROGRAPH_FOLDER).glob("*.mrc"))[:1] if (folder / MICROGRAPH_FOLDER).is_dir() else []
        if existing:
            raise CryodiagInputError("a sample dataset is already there; pass overwrite=True (--overwrite) to replace it",
                                     existing[0])
    folder.mkdir(parents=True, exist_ok=True)
    if simulation is None:
        simulation = simulate_micrographs(
            n_micrographs=n_micrographs, shape=shape, pixel_size_A=pixel_size_A, seed=seed, **simulate_kwargs
        )
    sim = simulation
    apix = sim.pixel_size_A

    mic_dir = folder / MICROGRAPH_FOLDER
    mic_dir.mkdir(exist_ok=True)
    mic_paths = [_write_mrc(mic_dir / name, img, apix, overwrite=overwrite) for name, img in zip(sim.names, sim.images)]

    from ..io.star import write_star

    picks = pick_file_table(sim)
    star = write_star(folder / "picks.star", picks, overwrite=overwrite)
    cs = _write_npy(folder / "picks.cs", picks_cs_records(sim), overwrite=overwrite)
    truth = sim.truth.copy()
    truth["micrograph_name"] = [f"{MICROGRAPH_FOLDER}/{n}" for n in truth["micrograph_name"]]
    truth_csv = _write_csv(folder / "truth.csv", truth, overwrite=overwrite)
    regions_csv = _write_csv(folder / "regions.csv", sim.regions, overwrite=overwrite)
    density = _write_mrc(folder / "density.mrc", sim.volume, apix, overwrite=overwrite)

    out = SampleDataset(
        folder=folder, micrographs=mic_paths, picks_star=star, picks_cs=cs, truth_csv=truth_csv,
        regions_csv=regions_csv, density=density, manifest=folder / "dataset.json", simulation=sim,
    )
    extra: dict = {}
    if not half_maps:
        out.skipped["half_maps"] = "not requested"
    else:
        from .half_maps import simulate_half_maps

        hm = simulate_half_maps(seed=seed)
        d = folder / "half_maps"
        d.mkdir(exist_ok=True)
        for key in ("half1", "half2", "mask"):
            out.half_maps[key] = _write_mrc(d / f"{key}.mrc", getattr(hm, key), hm.pixel_size_A, overwrite=overwrite)
        extra["half_maps"] = {
            "pixel_size_A": hm.pixel_size_A,
            "box": int(hm.half1.shape[0]),
            **{k: v for k, v in hm.truth.items() if isinstance(v, (int, float, str)) or v is None},
        }
    if not classes:
        out.skipped["classes"] = "not requested"
    else:
        from .classes import simulate_classes

        sc = simulate_classes(seed=seed)
        d = folder / "classes"
        d.mkdir(exist_ok=True)
        out.classes["averages"] = _write_mrc(d / "class_averages.mrcs", sc.averages, sc.pixel_size_A,
                                             overwrite=overwrite, stack=True)
        out.classes["particles_stack"] = _write_mrc(d / "particles.mrcs", sc.images, sc.pixel_size_A,
                                                    overwrite=overwrite, stack=True)
        table = sc.table.copy()
        if "image_path" not in table.columns:
            table["image_index"] = np.arange(len(table))
        table["image_path"] = "particles.mrcs"
        out.classes["particles_star"] = write_star(d / "particles.star", table, overwrite=overwrite)
        extra["classes"] = {
            "pixel_size_A": sc.pixel_size_A,
            "n_classes": int(sc.averages.shape[0]),
            "n_particles": int(len(sc.table)),
        }

    if refinement:
        from .particles import simulate_particles, write_particle_set

        sp = simulate_particles(n_refined_particles, box=64, pixel_size_A=apix, noise="white", seed=seed,
                                volume=sim.volume if sim.volume.shape == (64, 64, 64) else None)
        out.refinement = write_particle_set(sp, folder / "refinement", overwrite=overwrite)
        extra["refinement"] = {
            "pixel_size_A": sp.pixel_size_A,
            "n_particles": int(len(sp.table)),
            "box": sp.box,
            "noise": sp.noise,
            "noise_variance_per_pixel": float(sp.noise_sigma**2),
        }
    else:
        out.skipped["refinement"] = "not requested"

    counts = sim.truth["truth_detail"].value_counts().to_dict()
    manifest = {
        "generator": "napari_cryodiag.simulate.dataset.write_sample_dataset",
        "seed": seed,
        "parameters": sim.params,
        "pixel_size_A": apix,
        "micrograph_shape_yx": list(sim.images.shape[1:]),
        "particle_diameter_A": sim.particle_diameter_A,
        "defocus_A": {k: float(v) for k, v in zip(sim.keys, sim.defocus_A)},
        "picks": {"total": int(len(sim.truth)), **{str(k): int(v) for k, v in counts.items()}},
        "conventions": {
            "picks.star": "rlnCoordinateX/Y = x_px/y_px (column/row of the micrograph array)",
            "picks.cs": "x_px = center_x_frac * nx, y_px = center_y_frac * ny, micrograph_shape = [ny, nx]",
            "micrographs": "raw counts, particles dark; CTF in RELION convention (positive first lobe)",
        },
        "files": {
            "micrographs": [str(p.relative_to(folder)) for p in mic_paths],
            "picks_star": star.name,
            "picks_cs": cs.name,
            "truth_csv": truth_csv.name,
            "regions_csv": regions_csv.name,
            "density": density.name,
            "half_maps": {k: str(p.relative_to(folder)) for k, p in out.half_maps.items()},
            "classes": {k: str(p.relative_to(folder)) for k, p in out.classes.items()},
            "refinement": {k: str(p.relative_to(folder)) for k, p in out.refinement.items()},
        },
        "skipped": out.skipped,
        **extra,
    }
    atomic_write_text(out.manifest, json.dumps(manifest, indent=2, default=float) + "\n", overwrite=overwrite)
    return out
