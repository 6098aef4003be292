"""The simulated sample dataset written as a RELION or a cryoSPARC project.

``write_sample_project(folder, layout="relion")`` (RELION 4/5 files; ``relion_version="3.1"`` for
RELION 3.1's numbered pipeline and ``coords_suffix_*.star`` picks)::

    default_pipeline.star
    MotionCorr/job001/corrected_micrographs.star, Movies/sim_0001.mrc ...
    CtfFind/job002/micrographs_ctf.star          defocus, astigmatism, rlnCtfMaxResolution, rlnCtfFigureOfMerit
    ManualPick/job003/manualpick.star (3.1: coords_suffix_manualpick.star), Movies/…_manualpick.star
                                                 the true particles of the first micrograph, placed by hand
    AutoPick/job004/autopick.star (3.1: coords_suffix_autopick.star), Movies/sim_0001_autopick.star ...
                                                 every pick, rlnAutopickFigureOfMerit = its NCC score
    Extract/job005/particles.star, Movies/particles.mrcs
    Class2D/job006/run_it024_*, run_it025_{data,model}.star, run_it025_classes.mrcs
    Refine3D/job007/run_data.star, run_half{1,2}_class001_unfil.mrc, run_class001.mrc
    MaskCreate/job008/mask.mrc
    PostProcess/job009/postprocess.star (this package's FSC of the half maps), postprocess.mrc

``layout="cryosparc"``, a project folder ``P1``-style::

    project.json
    J1/ patch_motion_correction_multi   J1_micrographs.cs, motioncorrected/<uid>_sim_0001_patch_aligned_doseweighted.mrc
    J2/ patch_ctf_estimation_multi      J2_exposures.cs (micrograph_blob/*, ctf/*, ctf_stats/*)
    J3/ blob_picker_gpu                 J3_picked_particles.cs (location/*, pick_stats/*: no CTF, it is
                                        joined from the exposures by micrograph uid), J3_passthrough_micrographs.cs
    J4/ extract_micrographs_multi       J4_particles.cs, extract/particles.mrcs
    J5/ class_2D_new                    J5_019_/J5_020_particles.cs, J5_020_class_averages.mrc, J5_passthrough_particles.cs
    J6/ homo_refine_new                 J6_008_particles.cs, J6_passthrough_particles.cs,
                                        J6_007_/J6_008_volume_map_half_{A,B}.mrc, J6_008_volume_map.mrc,
                                        J6_008_volume_mask_fsc.mrc, J6_008_volume_mask_fsc_auto.mrc

Both hold the same micrographs, picks and CTF; ``cryodiag_sample.json`` records the truth
(:attr:`SampleProject.exposures`: per micrograph its defocus, astigmatism, CTF fit resolution,
figure of merit and pick count, and which micrographs are **bad**: the last one of three or more
has a CTF fit only to 12-15 Å and a figure of merit of 0.02, the ones to curate away). The particle
images (extracted, classified, refined) are simulated apart from the micrographs (their
micrograph names are the project's, their images are not cut from them).
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
from .dataset import picks_cs_records
from .micrographs import SimulatedMicrographs, simulate_micrographs

__all__ = ["SampleProject", "write_sample_project", "particle_sets", "LAYOUTS", "RELION_VERSIONS", "ctf_statistics",
           "micrograph_uids", "MANIFEST"]

LAYOUTS = ("relion", "cryosparc")
RELION_VERSIONS = ("5", "4", "3.1")
MANIFEST = "cryodiag_sample.json"


@dataclass
class SampleProject:
    """A written sample project: its folder, the jobs (role -> job id), the main files
    (role -> path), the micrographs, and the truth per micrograph (:attr:`exposures`)."""

    folder: Path
    layout: str
    jobs: dict[str, str]
    files: dict[str, Path]
    micrographs: list[Path]
    exposures: pd.DataFrame
    simulation: SimulatedMicrographs | None = None
    relion_version: str | None = None
    manifest: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def bad_micrographs(self) -> list[str]:
        return self.exposures.loc[self.exposures["bad"], "micrograph"].tolist()


# --------------------------------------------------------------------------- truth per micrograph


def micrograph_uids(sim: SimulatedMicrographs) -> np.ndarray:
    """cryoSPARC uids of the micrographs: those :func:`~.dataset.picks_cs_records` gives them."""
    rng = np.random.default_rng([int(sim.seed), 0x5A4D])
    rng.integers(1, 2**63, size=len(sim.truth), dtype=np.uint64)  # the picks' uids come first
    return rng.integers(1, 2**63, size=len(sim.names), dtype=np.uint64)


def ctf_statistics(sim: SimulatedMicrographs) -> pd.DataFrame:
    """Per micrograph (in order): key, defocus (Å), astigmatism ``|dU - dV|`` (Å), CTF fit
    resolution (Å), figure of merit, pick count and ``bad`` (see the module docstring)."""
    n = len(sim.names)
    rng = np.random.default_rng([int(sim.seed), 0xC7F])
    max_res = rng.uniform(3.2, 5.5, n)
    fom = rng.uniform(0.12, 0.3, n)
    bad = np.zeros(n, dtype=bool)
    if n >= 3:
        bad[-1] = True
        max_res[-1] = rng.uniform(12.0, 15.0)
        fom[-1] = 0.02
    counts = sim.truth["micrograph"].value_counts()
    return pd.DataFrame({
        "micrograph": sim.keys,
        "defocus_A": sim.defocus_A,
        "defocus_u_A": sim.defocus_u_A,
        "defocus_v_A": sim.defocus_v_A,
        "defocus_angle_deg": sim.defocus_angle_deg,
        "astigmatism_A": np.abs(sim.defocus_u_A - sim.defocus_v_A),
        "max_resolution_A": max_res,
        "figure_of_merit": fom,
        "n_picks": [int(counts.get(k, 0)) for k in sim.keys],
        "bad": bad,
    })


# --------------------------------------------------------------------------- writing helpers


def _mrc(path: Path, data, voxel_A: float, *, overwrite: bool, stack: bool = False) -> Path:
    from ..io.mrc import write_mrc

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mrc(path, np.asarray(data, dtype=np.float32), voxel_A, overwrite=overwrite, stack=stack)


def _value(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6f}"
    s = str(v)
    return f'"{s}"' if (not s or any(c.isspace() for c in s)) else s


def star_text(blocks: list[tuple[str, object]], version: str = "30001") -> str:
    """STAR text as RELION writes it: ``# version``, ``data_<name>``, key-value pairs (dict) or a
    loop (DataFrame)."""
    out = []
    for name, content in blocks:
        out.append(f"\n# version {version}\n\ndata_{name}\n\n")
        if isinstance(content, dict):
            w = max([len(k) for k in content] + [1]) + 2
            out += [f"_{k:<{w}}{_value(v)}\n" for k, v in content.items()]
            out.append(" \n")
            continue
        df = content
        out.append("loop_ \n")
        out += [f"_{c} #{i} \n" for i, c in enumerate(df.columns, 1)]
        cols = [[_value(v) for v in df[c].to_list()] for c in df.columns]
        out += [" ".join(row) + " \n" for row in zip(*cols)]
        out.append(" \n")
    return "".join(out)


def _star(path: Path, blocks, version: str, *, overwrite: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, star_text(blocks, version), overwrite=overwrite)


def _npy(path: Path, records: np.ndarray, *, overwrite: bool) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, records, allow_pickle=False)

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, write, overwrite=overwrite)


def _records(columns: dict) -> np.ndarray:
    """A record array from ``{field: values}`` (dtypes from the values; texts as bytes)."""
    n = len(next(iter(columns.values())))
    dtype = []
    for name, v in columns.items():
        a = np.asarray(v)
        if a.dtype.kind in "US":
            width = max([1] + [len(str(s).encode()) for s in a.ravel()])
            dtype.append((name, f"S{width}"))
        else:
            dtype.append((name, a.dtype.str, a.shape[1:]) if a.ndim > 1 else (name, a.dtype.str))
    out = np.zeros(n, dtype=dtype)
    for name, v in columns.items():
        a = np.asarray(v)
        out[name] = np.char.encode(a.astype(str)) if a.dtype.kind in "US" else a
    return out


def _drop_fields(records: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    keep = [n for n in records.dtype.names if not n.startswith(prefixes)]
    out = np.zeros(len(records), dtype=[(n, records.dtype[n]) for n in keep])
    for n in keep:
        out[n] = records[n]
    return out


def _set_text_field(records: np.ndarray, name: str, values) -> np.ndarray:
    vals = np.char.encode(np.asarray(values, dtype=str))
    dtype = [(n, vals.dtype if n == name else records.dtype[n]) for n in records.dtype.names]
    out = np.zeros(len(records), dtype=dtype)
    for n in records.dtype.names:
        out[n] = vals if n == name else records[n]
    return out


def _check_empty(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise CryodiagInputError("output exists and is not a folder", folder)
    if not overwrite and folder.is_dir():
        existing = [folder / n for n in (MANIFEST, "default_pipeline.star", "project.json") if (folder / n).exists()]
        if existing:
            raise CryodiagInputError("a sample project is already there; pass overwrite=True (--overwrite) to "
                                     "replace it", existing[0])


# --------------------------------------------------------------------------- the other simulations


def particle_sets(sim: SimulatedMicrographs, seed: int = 0, *, classes: bool = True, refinement: bool = True,
                  n_refined: int = 1000, n_classified: int = 600):
    """(2D classes, refined particles, half maps) simulated for the project on ``sim``'s
    micrographs (each None when not asked for); :func:`write_sample_project` takes them back
    (``particle_sets=``) so that several projects can share one simulation."""
    sc = sp = hm = None
    names = sim.names
    if classes:
        from .classes import simulate_classes

        sc = simulate_classes(seed=seed, n_particles=n_classified)
        sc.table["micrograph_name"] = [names[i % len(names)] for i in range(len(sc.table))]
    if refinement:
        from .half_maps import noisy_half_maps
        from .particles import simulate_particles

        vol = sim.volume if sim.volume.shape == (64, 64, 64) else None
        sp = simulate_particles(n_refined, box=64, pixel_size_A=sim.pixel_size_A, noise="white", seed=seed, volume=vol)
        sp.table["micrograph_name"] = [names[i % len(names)] for i in range(len(sp.table))]
        hm = noisy_half_maps(sp.volume, sp.pixel_size_A, resolution_A=max(3.0 * sp.pixel_size_A, 6.0), seed=seed)
    return sc, sp, hm


_particle_sets = particle_sets  # write_sample_project's keyword shadows the name


def _postprocess_blocks(hm, names: dict) -> dict | None:
    """postprocess.star's blocks from this package's FSC of the half maps (RELION's rules)."""
    from ..io.fsc_export import postprocess_blocks
    from ..workflows.maps import MapInputs, MapValidation

    inputs = MapInputs(half1=hm.half1, half2=hm.half2, pixel_size_A=hm.pixel_size_A, mask=hm.mask,
                       half1_name=names["half1"], half2_name=names["half2"], mask_name=names["mask"])
    v = MapValidation(inputs)
    s = v.compute()
    return postprocess_blocks(s.fsc, half1_name=names["half1"], half2_name=names["half2"], mask_name=names["mask"])


# --------------------------------------------------------------------------- RELION


_RELION5_TYPES = {
    "MotionCorr": "relion.motioncorr.own", "CtfFind": "relion.ctffind.ctffind4", "AutoPick": "relion.autopick.log",
    "ManualPick": "relion.manualpick", "Extract": "relion.extract", "Class2D": "relion.class2d.em",
    "Refine3D": "relion.refine3d", "MaskCreate": "relion.maskcreate", "PostProcess": "relion.postprocess",
}
_RELION31_TYPES = {"MotionCorr": 1, "CtfFind": 2, "ManualPick": 3, "AutoPick": 4, "Extract": 5, "Class2D": 8,
                   "Refine3D": 10, "MaskCreate": 12, "PostProcess": 15}
# node types: RELION 4/5 labels and RELION 3.1 numbers
_NODE_TYPES = {
    "micrographs": ("MicrographGroupMetadata.star.relion", 1), "coordinates": ("MicrographCoordsGroup.star.relion", 2),
    "particles": ("ParticleGroupMetadata.star.relion", 3), "optimiser": ("ProcessData.star.relion.optimiser", 9),
    "map": ("DensityMap.mrc.relion", 6), "halfmap": ("DensityMap.mrc.relion.halfmap", 10),
    "mask": ("Mask3D.mrc.relion", 7), "postprocess": ("ProcessData.star.relion.postprocess", 14),
}


def _pipeline_text(jobs: list[tuple[str, list[str], list[tuple[str, str]]]], version: str) -> str:
    """default_pipeline.star for ``jobs`` = [(job id, input nodes, [(output node, node kind)])]."""
    v5 = version != "3.1"
    ver = "50001" if v5 else "30001"
    procs = pd.DataFrame({
        "rlnPipeLineProcessName": [f"{j}/" for j, _, _ in jobs],
        "rlnPipeLineProcessAlias": ["None"] * len(jobs),
        **({"rlnPipeLineProcessTypeLabel": [_RELION5_TYPES[j.split("/")[0]] for j, _, _ in jobs],
            "rlnPipeLineProcessStatusLabel": ["Succeeded"] * len(jobs)} if v5 else
           {"rlnPipeLineProcessType": [_RELION31_TYPES[j.split("/")[0]] for j, _, _ in jobs],
            "rlnPipeLineProcessStatus": [2] * len(jobs)}),
    })
    nodes = [(n, k) for _, _, outs in jobs for n, k in outs]
    node_df = pd.DataFrame({"rlnPipeLineNodeName": [n for n, _ in nodes]})
    if v5:
        node_df["rlnPipeLineNodeTypeLabel"] = [_NODE_TYPES[k][0] for _, k in nodes]
        node_df["rlnPipeLineNodeTypeLabelDepth"] = 1
    else:
        node_df["rlnPipeLineNodeType"] = [_NODE_TYPES[k][1] for _, k in nodes]
    inputs = pd.DataFrame([(n, f"{j}/") for j, ins, _ in jobs for n in ins],
                          columns=["rlnPipeLineEdgeFromNode", "rlnPipeLineEdgeProcess"])
    outputs = pd.DataFrame([(f"{j}/", n) for j, _, outs in jobs for n, _ in outs],
                           columns=["rlnPipeLineEdgeProcess", "rlnPipeLineEdgeToNode"])
    return star_text([("pipeline_general", {"rlnPipeLineJobCounter": len(jobs) + 1}),
                      ("pipeline_processes", procs), ("pipeline_nodes", node_df),
                      ("pipeline_input_edges", inputs), ("pipeline_output_edges", outputs)], ver)


def _optics(sim: SimulatedMicrographs, *, image_pixel_A: float | None = None, image_size: int | None = None) -> pd.DataFrame:
    d = {"rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1],
         "rlnMicrographOriginalPixelSize": [sim.pixel_size_A], "rlnVoltage": [sim.voltage_kV],
         "rlnSphericalAberration": [sim.cs_mm], "rlnAmplitudeContrast": [sim.amplitude_contrast]}
    if image_pixel_A is not None:
        d.update(rlnImagePixelSize=[image_pixel_A], rlnImageSize=[image_size], rlnImageDimensionality=[2])
    else:
        d["rlnMicrographPixelSize"] = [sim.pixel_size_A]
    return pd.DataFrame(d)


def relion_micrograph_name(key_or_name: str) -> str:
    """A micrograph's name in the RELION sample project (``MotionCorr/job001/Movies/sim_0001.mrc``)."""
    stem = str(key_or_name).rsplit(".", 1)[0]
    return f"MotionCorr/job001/Movies/{stem}.mrc"


def relion_ctf_table(sim: SimulatedMicrographs, stats: pd.DataFrame, rows=None) -> pd.DataFrame:
    """``micrographs_ctf.star``'s data_micrographs loop for micrographs ``rows`` (default: all)."""
    s = stats if rows is None else stats.iloc[list(rows)]
    return pd.DataFrame({
        "rlnMicrographName": [relion_micrograph_name(k) for k in s["micrograph"]],
        "rlnOpticsGroup": 1,
        "rlnDefocusU": s["defocus_u_A"].to_numpy(float), "rlnDefocusV": s["defocus_v_A"].to_numpy(float),
        "rlnCtfAstigmatism": s["astigmatism_A"].to_numpy(float),
        "rlnDefocusAngle": s["defocus_angle_deg"].to_numpy(float),
        "rlnCtfFigureOfMerit": s["figure_of_merit"].to_numpy(float),
        "rlnCtfMaxResolution": s["max_resolution_A"].to_numpy(float),
    })


def relion_pick_table(picks: pd.DataFrame) -> pd.DataFrame:
    """A micrograph's picks as RELION's autopicker writes them (FOM = the simulated NCC score)."""
    fom = picks["ncc"].to_numpy(float) if "ncc" in picks.columns else np.zeros(len(picks))
    return pd.DataFrame({"rlnCoordinateX": picks["x_px"].to_numpy(float), "rlnCoordinateY": picks["y_px"].to_numpy(float),
                         "rlnAutopickFigureOfMerit": fom, "rlnClassNumber": 0, "rlnAnglePsi": 0.0})


def _relion_particles(t: pd.DataFrame, stack_name: str, *, poses: bool, classes: bool = False) -> pd.DataFrame:
    d = {"rlnImageName": [f"{int(i) + 1:06d}@{stack_name}" for i in t["image_index"]],
         "rlnMicrographName": [relion_micrograph_name(n) for n in t["micrograph_name"]],
         "rlnOpticsGroup": 1,
         "rlnDefocusU": t["defocus_u_A"].to_numpy(float), "rlnDefocusV": t["defocus_v_A"].to_numpy(float),
         "rlnDefocusAngle": t["defocus_angle_deg"].to_numpy(float)}
    if poses or classes:
        d.update(rlnAnglePsi=t["psi_deg"].to_numpy(float), rlnOriginXAngst=t["shift_x_A"].to_numpy(float),
                 rlnOriginYAngst=t["shift_y_A"].to_numpy(float))
    if poses:
        d.update(rlnAngleRot=t["rot_deg"].to_numpy(float), rlnAngleTilt=t["tilt_deg"].to_numpy(float),
                 rlnRandomSubset=(t["split"].to_numpy(int) + 1) if "split" in t.columns else 1)
    if classes:
        d.update(rlnClassNumber=t["class"].to_numpy(int), rlnMaxValueProbDistribution=t["class_posterior"].to_numpy(float),
                 rlnNrOfSignificantSamples=np.maximum(1, np.rint(t["class_ess"].to_numpy(float))).astype(int))
    return pd.DataFrame(d)


def _write_relion(folder: Path, sim, stats, sc, sp, hm, *, version: str, overwrite: bool, postprocess: bool):
    v = "50001" if version != "3.1" else "30001"
    files: dict[str, Path] = {}
    jobs: list[tuple[str, list[str], list[tuple[str, str]]]] = []
    # MotionCorr
    mc = folder / "MotionCorr" / "job001"
    mics = [_mrc(folder / relion_micrograph_name(n), img, sim.pixel_size_A, overwrite=overwrite)
            for n, img in zip(sim.names, sim.images)]
    corrected = pd.DataFrame({"rlnMicrographName": [relion_micrograph_name(n) for n in sim.names], "rlnOpticsGroup": 1})
    files["micrographs_star"] = _star(mc / "corrected_micrographs.star", [("optics", _optics(sim)), ("micrographs", corrected)],
                                      v, overwrite=overwrite)
    jobs.append(("MotionCorr/job001", [], [("MotionCorr/job001/corrected_micrographs.star", "micrographs")]))
    # CtfFind
    files["ctf"] = _star(folder / "CtfFind/job002/micrographs_ctf.star",
                         [("optics", _optics(sim)), ("micrographs", relion_ctf_table(sim, stats))], v, overwrite=overwrite)
    jobs.append(("CtfFind/job002", ["MotionCorr/job001/corrected_micrographs.star"],
                 [("CtfFind/job002/micrographs_ctf.star", "micrographs")]))
    ctf_node = "CtfFind/job002/micrographs_ctf.star"
    # AutoPick and ManualPick
    truth = sim.truth
    for jid, suffix, rows in (("ManualPick/job003", "manualpick",
                               truth[(truth["micrograph"] == sim.keys[0]) & (truth["truth"] == "particle")]),
                              ("AutoPick/job004", "autopick", truth)):
        from ..io.projects.relion import coordinate_file_of

        jobdir = folder / jid
        index_rows = []
        for key in sim.keys:
            sub = rows[rows["micrograph"] == key]
            if suffix == "manualpick" and not len(sub):
                continue
            name = relion_micrograph_name(key)
            cf = coordinate_file_of(name, jobdir, suffix)
            _star(cf, [("", relion_pick_table(sub))], v, overwrite=overwrite)
            index_rows.append((name, str(cf.relative_to(folder))))
        if version == "3.1":
            node = f"{jid}/coords_suffix_{suffix}.star"
            atomic_write_text(folder / node, ctf_node + "\n", overwrite=overwrite)
        else:
            node = f"{jid}/{suffix}.star"
            idx = pd.DataFrame(index_rows, columns=["rlnMicrographName", "rlnMicrographCoordinates"])
            _star(folder / node, [("coordinate_files", idx)], v, overwrite=overwrite)
        files[suffix] = folder / node
        jobs.append((jid, [ctf_node], [(node, "coordinates")]))
    picks_node = files["autopick"].relative_to(folder).as_posix()
    # Extract, Refine3D, MaskCreate, PostProcess
    if sp is not None:
        stack = _mrc(folder / "Extract/job005/Movies/particles.mrcs", sp.images, sp.pixel_size_A, overwrite=overwrite,
                     stack=True)
        stack_name = stack.relative_to(folder).as_posix()
        opt = _optics(sim, image_pixel_A=sp.pixel_size_A, image_size=sp.box)
        files["particles"] = _star(folder / "Extract/job005/particles.star",
                                   [("optics", opt), ("particles", _relion_particles(sp.table, stack_name, poses=False))],
                                   v, overwrite=overwrite)
        jobs.append(("Extract/job005", [ctf_node, picks_node], [("Extract/job005/particles.star", "particles")]))
    if sc is not None:
        c2 = folder / "Class2D/job006"
        cstack = _mrc(folder / "Class2D/job006/Movies/particles.mrcs", sc.images, sc.pixel_size_A, overwrite=overwrite,
                      stack=True)
        opt = _optics(sim, image_pixel_A=sc.pixel_size_A, image_size=int(sc.images.shape[-1]))
        data = _relion_particles(sc.table, cstack.relative_to(folder).as_posix(), poses=False, classes=True)
        k = int(sc.averages.shape[0])
        counts = np.bincount(sc.table["class"].to_numpy(int) - 1, minlength=k)
        for it in (24, 25):
            _star(c2 / f"run_it{it:03d}_data.star", [("optics", opt), ("particles", data)], v, overwrite=overwrite)
            classes = _mrc(c2 / f"run_it{it:03d}_classes.mrcs", sc.averages, sc.pixel_size_A, overwrite=overwrite,
                           stack=True)
            model_classes = pd.DataFrame({
                "rlnReferenceImage": [f"{i + 1:06d}@{classes.relative_to(folder).as_posix()}" for i in range(k)],
                "rlnClassDistribution": counts / max(counts.sum(), 1),
                "rlnAccuracyRotations": 5.0, "rlnAccuracyTranslationsAngst": 1.0, "rlnEstimatedResolution": 12.0})
            _star(c2 / f"run_it{it:03d}_model.star",
                  [("model_general", {"rlnReferenceDimensionality": 2, "rlnNrClasses": k,
                                      "rlnPixelSize": sc.pixel_size_A, "rlnOriginalImageSize": int(sc.images.shape[-1]),
                                      "rlnCurrentResolution": 12.0}),
                   ("model_classes", model_classes)], v, overwrite=overwrite)
        files["class2d_data"] = c2 / "run_it025_data.star"
        files["class2d_model"] = c2 / "run_it025_model.star"
        files["class2d_classes"] = c2 / "run_it025_classes.mrcs"
        jobs.append(("Class2D/job006", ["Extract/job005/particles.star"] if sp is not None else [],
                     [("Class2D/job006/run_it025_data.star", "particles"),
                      ("Class2D/job006/run_it025_optimiser.star", "optimiser")]))
    if sp is not None:
        r3 = folder / "Refine3D/job007"
        opt = _optics(sim, image_pixel_A=sp.pixel_size_A, image_size=sp.box)
        files["refined"] = _star(r3 / "run_data.star",
                                 [("optics", opt), ("particles", _relion_particles(sp.table, stack_name, poses=True))],
                                 v, overwrite=overwrite)
        files["half1"] = _mrc(r3 / "run_half1_class001_unfil.mrc", hm.half1, hm.pixel_size_A, overwrite=overwrite)
        files["half2"] = _mrc(r3 / "run_half2_class001_unfil.mrc", hm.half2, hm.pixel_size_A, overwrite=overwrite)
        files["map"] = _mrc(r3 / "run_class001.mrc", 0.5 * (hm.half1 + hm.half2), hm.pixel_size_A, overwrite=overwrite)
        jobs.append(("Refine3D/job007", ["Extract/job005/particles.star"],
                     [("Refine3D/job007/run_data.star", "particles"), ("Refine3D/job007/run_class001.mrc", "map"),
                      ("Refine3D/job007/run_half1_class001_unfil.mrc", "halfmap")]))
        files["mask"] = _mrc(folder / "MaskCreate/job008/mask.mrc", hm.mask, hm.pixel_size_A, overwrite=overwrite)
        jobs.append(("MaskCreate/job008", ["Refine3D/job007/run_class001.mrc"], [("MaskCreate/job008/mask.mrc", "mask")]))
        if postprocess:
            names = {k: files[k].relative_to(folder).as_posix() for k in ("half1", "half2", "mask")}
            blocks = _postprocess_blocks(hm, names)
            pp = folder / "PostProcess/job009"
            files["postprocess"] = _star(pp / "postprocess.star", [("general", blocks["general"]), ("fsc", blocks["fsc"])],
                                         v, overwrite=overwrite)
            _mrc(pp / "postprocess.mrc", 0.5 * (hm.half1 + hm.half2), hm.pixel_size_A, overwrite=overwrite)
            jobs.append(("PostProcess/job009", ["Refine3D/job007/run_half1_class001_unfil.mrc", "MaskCreate/job008/mask.mrc"],
                         [("PostProcess/job009/postprocess.star", "postprocess")]))
    for jid, _, _ in jobs:
        atomic_write_text(folder / jid / "RELION_JOB_EXIT_SUCCESS", "", overwrite=True)
    atomic_write_text(folder / "default_pipeline.star", _pipeline_text(jobs, version), overwrite=overwrite)
    ids = {"micrographs": "MotionCorr/job001", "ctf": "CtfFind/job002", "manualpick": "ManualPick/job003",
           "picks": "AutoPick/job004"}
    ids.update({k: j for k, j in (("particles", "Extract/job005"), ("class2d", "Class2D/job006"),
                                  ("refine3d", "Refine3D/job007"), ("mask", "MaskCreate/job008"),
                                  ("postprocess", "PostProcess/job009")) if any(x[0] == j for x in jobs)})
    files["picks"] = files["autopick"]
    return mics, files, ids


# --------------------------------------------------------------------------- cryoSPARC


def cryosparc_micrograph_name(uid: int, key: str) -> str:
    """A micrograph's path in the cryoSPARC sample project (relative to the project folder)."""
    return f"J1/motioncorrected/{int(uid):020d}_{key}_patch_aligned_doseweighted.mrc"


def exposure_records(sim: SimulatedMicrographs, stats: pd.DataFrame, rows=None, *, ctf: bool = True) -> np.ndarray:
    """cryoSPARC exposure records (``micrograph_blob/*``, and with ``ctf``: ``ctf/*``,
    ``ctf_stats/*``) of micrographs ``rows`` (default: all)."""
    rows = list(range(len(sim.names))) if rows is None else list(rows)
    uids = micrograph_uids(sim)[rows]
    s = stats.iloc[rows]
    ny, nx = sim.images.shape[1:]
    n = len(rows)
    cols = {
        "uid": uids,
        "micrograph_blob/path": np.array([cryosparc_micrograph_name(u, k) for u, k in zip(uids, s["micrograph"])]),
        "micrograph_blob/idx": np.zeros(n, np.uint32),
        "micrograph_blob/shape": np.tile(np.array([ny, nx], np.uint32), (n, 1)),
        "micrograph_blob/psize_A": np.full(n, sim.pixel_size_A, np.float32),
        "micrograph_blob/format": np.array(["MRC/1.0"] * n),
    }
    if ctf:
        cols.update({
            "ctf/type": np.array(["spline"] * n), "ctf/exp_group_id": np.zeros(n, np.uint32),
            "ctf/accel_kv": np.full(n, sim.voltage_kV, np.float32), "ctf/cs_mm": np.full(n, sim.cs_mm, np.float32),
            "ctf/amp_contrast": np.full(n, sim.amplitude_contrast, np.float32),
            "ctf/df1_A": s["defocus_u_A"].to_numpy(np.float32), "ctf/df2_A": s["defocus_v_A"].to_numpy(np.float32),
            "ctf/df_angle_rad": np.deg2rad(s["defocus_angle_deg"].to_numpy(np.float32)),
            "ctf/phase_shift_rad": np.zeros(n, np.float32),
            "ctf_stats/cross_corr": s["figure_of_merit"].to_numpy(np.float32),
            "ctf_stats/ctf_fit_to_A": s["max_resolution_A"].to_numpy(np.float32),
            "ctf_stats/df_range": np.stack([s["defocus_A"].to_numpy(np.float32) - 2000,
                                            s["defocus_A"].to_numpy(np.float32) + 2000], axis=1),
        })
    return _records(cols)


def cryosparc_pick_records(sim: SimulatedMicrographs, rows=None) -> np.ndarray:
    """The blob picker's records of the picks on micrographs ``rows`` (default: all): ``uid``,
    ``location/*`` (the micrograph's uid and path), ``pick_stats/*``; no ``ctf/*``."""
    rec = picks_cs_records(sim, folder_prefix="")
    uids = micrograph_uids(sim)
    index = {k: i for i, k in enumerate(sim.keys)}
    mi = np.array([index[k] for k in sim.truth["micrograph"]], dtype=np.int64)
    rec = _set_text_field(rec, "location/micrograph_path",
                          [cryosparc_micrograph_name(uids[i], sim.keys[i]) for i in mi])
    rec = _drop_fields(rec, ("ctf/",))
    if rows is not None:
        rec = rec[np.isin(mi, list(rows))]
    return rec


def _cs_particles(t: pd.DataFrame, sim: SimulatedMicrographs, stack: str, psize: float, box: int, seed: int, *,
                  alignments: str | None, passthrough: bool = False) -> np.ndarray:
    """Particle records on the project's micrographs: ``blob/*`` + ``ctf/*`` (+ ``alignments*``),
    or the passthrough (``location/*``)."""
    n = len(t)
    rng = np.random.default_rng([seed, 0x9A2])
    uid = rng.integers(1, 2**63, size=n, dtype=np.uint64)
    mic_uids = micrograph_uids(sim)
    index = {k: i for i, k in enumerate(sim.keys)}
    mi = np.array([index[str(m).rsplit(".", 1)[0]] for m in t["micrograph_name"]], dtype=np.int64)
    if passthrough:
        ny, nx = sim.images.shape[1:]
        return _records({
            "uid": uid, "location/micrograph_uid": mic_uids[mi],
            "location/micrograph_path": np.array([cryosparc_micrograph_name(mic_uids[i], sim.keys[i]) for i in mi]),
            "location/micrograph_shape": np.tile(np.array([ny, nx], np.uint32), (n, 1)),
            "location/center_x_frac": rng.uniform(0.1, 0.9, n).astype(np.float32),
            "location/center_y_frac": rng.uniform(0.1, 0.9, n).astype(np.float32),
        })
    cols = {
        "uid": uid, "blob/path": np.array([stack] * n), "blob/idx": t["image_index"].to_numpy(np.uint32),
        "blob/shape": np.tile(np.array([box, box], np.uint32), (n, 1)), "blob/psize_A": np.full(n, psize, np.float32),
        "ctf/accel_kv": np.full(n, sim.voltage_kV, np.float32), "ctf/cs_mm": np.full(n, sim.cs_mm, np.float32),
        "ctf/amp_contrast": np.full(n, sim.amplitude_contrast, np.float32),
        "ctf/df1_A": t["defocus_u_A"].to_numpy(np.float32), "ctf/df2_A": t["defocus_v_A"].to_numpy(np.float32),
        "ctf/df_angle_rad": np.deg2rad(t["defocus_angle_deg"].to_numpy(np.float32)),
    }
    if alignments == "2D":
        cols.update({"alignments2D/class": (t["class"].to_numpy(int) - 1).astype(np.uint32),
                     "alignments2D/class_posterior": t["class_posterior"].to_numpy(np.float32),
                     "alignments2D/class_ess": t["class_ess"].to_numpy(np.float32),
                     "alignments2D/pose": np.deg2rad(t["psi_deg"].to_numpy(np.float32)),
                     "alignments2D/shift": (np.stack([t["shift_x_A"], t["shift_y_A"]], axis=1) / psize).astype(np.float32),
                     "alignments2D/psize_A": np.full(n, psize, np.float32)})
    elif alignments == "3D":
        from scipy.spatial.transform import Rotation

        pose = Rotation.from_euler("ZYZ", t[["rot_deg", "tilt_deg", "psi_deg"]].to_numpy(float), degrees=True).as_rotvec()
        cols.update({"alignments3D/split": t["split"].to_numpy(np.uint32),
                     "alignments3D/pose": pose.astype(np.float32),
                     "alignments3D/shift": (np.stack([t["shift_x_A"], t["shift_y_A"]], axis=1) / psize).astype(np.float32),
                     "alignments3D/psize_A": np.full(n, psize, np.float32),
                     "alignments3D/class_posterior": np.ones(n, np.float32),
                     "alignments3D/class": np.zeros(n, np.uint32)})
    return _records(cols)


def _job_json(folder: Path, uid: str, jtype: str, title: str, inputs: list[str], number: int, *, overwrite: bool):
    doc = {"uid": uid, "project_uid": "P1", "type": jtype, "title": title, "status": "completed", "version": "v4.4.1",
           "created_at": {"$date": f"2024-01-01T{number:02d}:00:00.000Z"},
           "input_slot_groups": [{"type": "any", "connections": [{"job_uid": j, "group_name": "input"}]}
                                 for j in inputs]}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "job.json", json.dumps(doc, indent=2) + "\n", overwrite=overwrite)


def _write_cryosparc(folder: Path, sim, stats, sc, sp, hm, *, seed: int, overwrite: bool):
    files: dict[str, Path] = {}
    ids = {"micrographs": "J1", "ctf": "J2", "picks": "J3"}
    atomic_write_text(folder / "project.json", json.dumps({"uid": "P1", "title": "cryodiag sample project"}) + "\n",
                      overwrite=overwrite)
    uids = micrograph_uids(sim)
    mics = [_mrc(folder / cryosparc_micrograph_name(u, k), img, sim.pixel_size_A, overwrite=overwrite)
            for u, k, img in zip(uids, sim.keys, sim.images)]
    _job_json(folder / "J1", "J1", "patch_motion_correction_multi", "Patch Motion Correction", [], 1, overwrite=overwrite)
    files["micrographs_cs"] = _npy(folder / "J1/J1_micrographs.cs", exposure_records(sim, stats, ctf=False),
                                   overwrite=overwrite)
    _job_json(folder / "J2", "J2", "patch_ctf_estimation_multi", "Patch CTF Estimation", ["J1"], 2, overwrite=overwrite)
    files["ctf"] = _npy(folder / "J2/J2_exposures.cs", exposure_records(sim, stats), overwrite=overwrite)
    _job_json(folder / "J3", "J3", "blob_picker_gpu", "Blob Picker", ["J2"], 3, overwrite=overwrite)
    files["picks"] = _npy(folder / "J3/J3_picked_particles.cs", cryosparc_pick_records(sim), overwrite=overwrite)
    _npy(folder / "J3/J3_passthrough_micrographs.cs", exposure_records(sim, stats), overwrite=overwrite)
    if sp is not None:
        ids["particles"] = "J4"
        _job_json(folder / "J4", "J4", "extract_micrographs_multi", "Extract From Micrographs", ["J3"], 4,
                  overwrite=overwrite)
        stack = "J4/extract/particles.mrcs"
        _mrc(folder / stack, sp.images, sp.pixel_size_A, overwrite=overwrite, stack=True)
        files["particles"] = _npy(folder / "J4/J4_particles.cs",
                                  _cs_particles(sp.table, sim, stack, sp.pixel_size_A, sp.box, seed, alignments=None),
                                  overwrite=overwrite)
    if sc is not None:
        ids["class2d"] = "J5"
        _job_json(folder / "J5", "J5", "class_2D_new", "2D Classification", ["J4"] if sp is not None else [], 5,
                  overwrite=overwrite)
        stack = "J5/extract/particles.mrcs"
        box = int(sc.images.shape[-1])
        _mrc(folder / stack, sc.images, sc.pixel_size_A, overwrite=overwrite, stack=True)
        rec = _cs_particles(sc.table, sim, stack, sc.pixel_size_A, box, seed + 1, alignments="2D")
        for it in (19, 20):
            _npy(folder / f"J5/J5_{it:03d}_particles.cs", rec, overwrite=overwrite)
            _mrc(folder / f"J5/J5_{it:03d}_class_averages.mrc", sc.averages, sc.pixel_size_A, overwrite=overwrite,
                 stack=True)
        files["class2d_data"] = folder / "J5/J5_020_particles.cs"
        files["class2d_classes"] = folder / "J5/J5_020_class_averages.mrc"
        _npy(folder / "J5/J5_passthrough_particles.cs",
             _cs_particles(sc.table, sim, stack, sc.pixel_size_A, box, seed + 1, alignments=None, passthrough=True),
             overwrite=overwrite)
    if sp is not None:
        ids["refine3d"] = "J6"
        _job_json(folder / "J6", "J6", "homo_refine_new", "Homogeneous Refinement", ["J4"], 6, overwrite=overwrite)
        stack = "J4/extract/particles.mrcs"
        files["refined"] = _npy(folder / "J6/J6_008_particles.cs",
                                _cs_particles(sp.table, sim, stack, sp.pixel_size_A, sp.box, seed, alignments="3D"),
                                overwrite=overwrite)
        _npy(folder / "J6/J6_passthrough_particles.cs",
             _cs_particles(sp.table, sim, stack, sp.pixel_size_A, sp.box, seed, alignments=None, passthrough=True),
             overwrite=overwrite)
        for it in (7, 8):
            files["half1"] = _mrc(folder / f"J6/J6_{it:03d}_volume_map_half_A.mrc", hm.half1, hm.pixel_size_A,
                                  overwrite=overwrite)
            files["half2"] = _mrc(folder / f"J6/J6_{it:03d}_volume_map_half_B.mrc", hm.half2, hm.pixel_size_A,
                                  overwrite=overwrite)
        files["map"] = _mrc(folder / "J6/J6_008_volume_map.mrc", 0.5 * (hm.half1 + hm.half2), hm.pixel_size_A,
                            overwrite=overwrite)
        _mrc(folder / "J6/J6_008_volume_mask_fsc.mrc", hm.mask, hm.pixel_size_A, overwrite=overwrite)
        files["mask"] = _mrc(folder / "J6/J6_008_volume_mask_fsc_auto.mrc", hm.mask, hm.pixel_size_A, overwrite=overwrite)
    return mics, files, ids


# --------------------------------------------------------------------------- entry point


def write_sample_project(
    folder: str | os.PathLike,
    layout: str = "relion",
    *,
    relion_version: str = "5",
    seed: int = 0,
    n_micrographs: int = 8,
    shape: tuple[int, int] = (1024, 1024),
    pixel_size_A: float = 2.0,
    classes: bool = True,
    refinement: bool = True,
    postprocess: bool = True,
    n_refined_particles: int = 1000,
    n_classified_particles: int = 600,
    overwrite: bool = False,
    simulation: SimulatedMicrographs | None = None,
    particle_sets: tuple | None = None,
    **simulate_kwargs,
) -> SampleProject:
    """Simulate (or take ``simulation``) and write the sample dataset as a ``layout`` project in
    ``folder`` (module docstring). ``classes`` / ``refinement`` add the 2D classification and the
    extraction + refinement (+ mask, + ``postprocess``) jobs; ``particle_sets``: those of
    :func:`particle_sets` to reuse. Existing files are only replaced with ``overwrite``; every
    file is written atomically."""
    if layout not in LAYOUTS:
        raise CryodiagInputError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if relion_version not in RELION_VERSIONS:
        raise CryodiagInputError(f"RELION version must be one of {', '.join(RELION_VERSIONS)}, not {relion_version!r}")
    folder = Path(folder).expanduser().absolute()
    _check_empty(folder, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    sim = simulation or simulate_micrographs(n_micrographs=n_micrographs, shape=shape, pixel_size_A=pixel_size_A,
                                             seed=seed, **simulate_kwargs)
    stats = ctf_statistics(sim)
    if particle_sets is None:
        sc, sp, hm = _particle_sets(sim, seed, classes=classes, refinement=refinement, n_refined=n_refined_particles,
                                    n_classified=n_classified_particles)
    else:
        sc, sp, hm = particle_sets
        sc, sp, hm = (sc if classes else None), (sp if refinement else None), (hm if refinement else None)
    skipped = {}
    if not classes:
        skipped["classes"] = "not requested"
    if not refinement:
        skipped["refinement"] = "not requested"
    if layout == "relion":
        mics, files, ids = _write_relion(folder, sim, stats, sc, sp, hm, version=relion_version, overwrite=overwrite,
                                         postprocess=postprocess)
    else:
        mics, files, ids = _write_cryosparc(folder, sim, stats, sc, sp, hm, seed=seed, overwrite=overwrite)
    out = SampleProject(folder=folder, layout=layout, jobs=ids, files=files, micrographs=mics, exposures=stats,
                        simulation=sim, relion_version=relion_version if layout == "relion" else None,
                        manifest=folder / MANIFEST, skipped=skipped)
    manifest = {
        "generator": "napari_cryodiag.simulate.project.write_sample_project",
        "layout": layout, "relion_version": out.relion_version, "seed": seed, "parameters": sim.params,
        "pixel_size_A": sim.pixel_size_A, "micrograph_shape_yx": list(sim.images.shape[1:]),
        "particle_diameter_A": sim.particle_diameter_A,
        "jobs": ids, "files": {k: str(p.relative_to(folder)) for k, p in files.items()},
        "picks": {"total": int(len(sim.truth)), **{str(k): int(v) for k, v in sim.truth["truth"].value_counts().items()}},
        "exposures": stats.to_dict(orient="records"),
        "bad_micrographs": out.bad_micrographs, "skipped": skipped,
    }
    from ..io.jsonfile import to_jsonable

    atomic_write_text(out.manifest, json.dumps(to_jsonable(manifest), indent=2) + "\n", overwrite=overwrite)
    return out
