"""A simulated collection session that writes into a folder over time, for the live view.

:class:`SessionWriter` writes the micrographs of a :class:`~.micrographs.SimulatedMicrographs`
one at a time, with their picks and CTF, as a streaming pipeline would, in one of three layouts:

- ``"relion"``: a RELION 5 project as :func:`~.project.write_sample_project` writes it (MotionCorr,
  CtfFind, AutoPick jobs; the jobs marked running), where ``corrected_micrographs.star``,
  ``micrographs_ctf.star`` and ``autopick.star`` are rewritten with one more row per micrograph,
  as RELION's scheduler does;
- ``"cryosparc"``: a cryoSPARC project (J1 motion, J2 CTF, J3 picker) whose exposure and pick
  ``.cs`` files are rewritten with every micrograph's rows so far, as cryoSPARC Live does;
- ``"folder"``: ``micrographs/*.mrc``, ``picks/<mic>_autopick.star`` (coordinates, FOM and the
  simulated NCC and power as ``_cryodiag_ncc``/``_cryodiag_power``) and ``micrographs_ctf.star``.

Every write can be done in two halves (``partial=True`` writes the first part of the bytes, in
place, as a writer that has not finished; :meth:`SessionWriter.finish` writes the rest), so that
tests can check that a file being written is not read before it is complete. Nothing here
sleeps: the caller decides when each step happens.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from .micrographs import SimulatedMicrographs
from .project import (
    _optics, _pipeline_text, ctf_statistics, cryosparc_micrograph_name, cryosparc_pick_records, exposure_records,
    micrograph_uids, relion_ctf_table, relion_micrograph_name, relion_pick_table, star_text,
)

__all__ = ["SessionWriter", "SESSION_LAYOUTS"]

SESSION_LAYOUTS = ("relion", "cryosparc", "folder")


def _mrc_bytes(image: np.ndarray, pixel_size_A: float) -> bytes:
    """The bytes of an MRC file of ``image`` (written to a temporary folder by mrcfile)."""
    import tempfile

    import mrcfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "micrograph.mrc"
        with mrcfile.new(p) as m:
            m.set_data(np.asarray(image, dtype=np.float32))
            m.voxel_size = pixel_size_A
        return p.read_bytes()


def _npy_bytes(records: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, records, allow_pickle=False)
    return buf.getvalue()


@dataclass
class _Pending:
    path: Path
    data: bytes
    written: int


@dataclass
class SessionWriter:
    """Writes ``sim``'s micrographs into ``folder`` one by one (module docstring).

    :meth:`write_micrograph`, :meth:`write_picks`, :meth:`write_ctf` write one micrograph's
    files (``partial=True``: the first part only; :meth:`finish` the rest); :meth:`step` writes
    all three for the next micrograph. :attr:`written` lists the micrographs whose files are all
    complete.
    """

    folder: Path
    sim: SimulatedMicrographs
    layout: str = "relion"
    written: list[int] = field(default_factory=list)

    def __post_init__(self):
        if self.layout not in SESSION_LAYOUTS:
            raise CryodiagInputError(f"layout must be one of {', '.join(SESSION_LAYOUTS)}, not {self.layout!r}")
        self.folder = Path(self.folder).absolute()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stats = ctf_statistics(self.sim)
        self._pending: dict[Path, _Pending] = {}
        self._mics: list[int] = []  # micrographs whose MRC was written
        self._ctf: list[int] = []
        self._picks: list[int] = []
        if self.layout == "relion":
            jobs = [("MotionCorr/job001", [], [("MotionCorr/job001/corrected_micrographs.star", "micrographs")]),
                    ("CtfFind/job002", ["MotionCorr/job001/corrected_micrographs.star"],
                     [("CtfFind/job002/micrographs_ctf.star", "micrographs")]),
                    ("AutoPick/job003", ["CtfFind/job002/micrographs_ctf.star"],
                     [("AutoPick/job003/autopick.star", "coordinates")])]
            text = _pipeline_text(jobs, "5").replace("Succeeded", "Running")
            (self.folder / "default_pipeline.star").write_text(text)
            for j, _, _ in jobs:
                (self.folder / j).mkdir(parents=True, exist_ok=True)
        elif self.layout == "cryosparc":
            (self.folder / "project.json").write_text('{"uid": "P1", "title": "live session"}\n')
            for uid, jtype, inputs in (("J1", "patch_motion_correction_multi", []),
                                       ("J2", "patch_ctf_estimation_multi", ["J1"]), ("J3", "blob_picker_gpu", ["J2"])):
                d = self.folder / uid
                d.mkdir(parents=True, exist_ok=True)
                conns = [{"connections": [{"job_uid": j, "group_name": "exposures"}]} for j in inputs]
                (d / "job.json").write_text(json.dumps({"uid": uid, "type": jtype, "status": "running",
                                                        "input_slot_groups": conns}) + "\n")
        else:
            (self.folder / "micrographs").mkdir(exist_ok=True)
            (self.folder / "picks").mkdir(exist_ok=True)

    # ------------------------------------------------------------------ files of micrograph i
    def micrograph_path(self, i: int) -> Path:
        key = self.sim.keys[i]
        if self.layout == "relion":
            return self.folder / relion_micrograph_name(key)
        if self.layout == "cryosparc":
            return self.folder / cryosparc_micrograph_name(micrograph_uids(self.sim)[i], key)
        return self.folder / "micrographs" / f"{key}.mrc"

    def picks_path(self, i: int) -> Path:
        key = self.sim.keys[i]
        if self.layout == "relion":
            return self.folder / f"AutoPick/job003/Movies/{key}_autopick.star"
        if self.layout == "cryosparc":
            return self.folder / "J3/J3_picked_particles.cs"
        return self.folder / "picks" / f"{key}_autopick.star"

    def ctf_path(self) -> Path:
        if self.layout == "relion":
            return self.folder / "CtfFind/job002/micrographs_ctf.star"
        if self.layout == "cryosparc":
            return self.folder / "J2/J2_exposures.cs"
        return self.folder / "micrographs_ctf.star"

    def picks_of(self, i: int) -> pd.DataFrame:
        t = self.sim.truth
        return t[t["micrograph"] == self.sim.keys[i]]

    # ------------------------------------------------------------------ writing
    def _write(self, path: Path, data: bytes, partial: bool) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        n = max(1, len(data) // 2) if partial else len(data)
        with open(path, "wb") as f:  # in place, as a writer does (not atomic: this is the point)
            f.write(data[:n])
        if partial:
            self._pending[path] = _Pending(path, data, n)
        else:
            self._pending.pop(path, None)
        return path

    def finish(self, path=None) -> list[Path]:
        """Complete the partially written ``path`` (default: every partial file)."""
        todo = [self._pending[Path(path)]] if path is not None else list(self._pending.values())
        out = []
        for p in todo:
            with open(p.path, "ab") as f:
                f.write(p.data[p.written:])
            self._pending.pop(p.path, None)
            out.append(p.path)
        return out

    def write_micrograph(self, i: int, *, partial: bool = False) -> Path:
        sim = self.sim
        path = self._write(self.micrograph_path(i), _mrc_bytes(sim.images[i], sim.pixel_size_A), partial)
        if i not in self._mics:
            self._mics.append(i)
        if self.layout == "relion":
            mics = pd.DataFrame({"rlnMicrographName": [relion_micrograph_name(sim.keys[j]) for j in self._mics],
                                 "rlnOpticsGroup": 1})
            (self.folder / "MotionCorr/job001/corrected_micrographs.star").write_text(
                star_text([("optics", _optics(sim)), ("micrographs", mics)], "50001"))
        elif self.layout == "cryosparc":
            self._write(self.folder / "J1/J1_micrographs.cs", _npy_bytes(exposure_records(sim, self.stats, self._mics,
                                                                                          ctf=False)), False)
        return path

    def write_ctf(self, i: int, *, partial: bool = False) -> Path:
        if i not in self._ctf:
            self._ctf.append(i)
        sim = self.sim
        if self.layout == "cryosparc":
            data = _npy_bytes(exposure_records(sim, self.stats, self._ctf))
        else:
            table = relion_ctf_table(sim, self.stats, self._ctf)
            if self.layout == "folder":
                table["rlnMicrographName"] = [f"micrographs/{sim.keys[j]}.mrc" for j in self._ctf]
            data = star_text([("optics", _optics(sim)), ("micrographs", table)], "50001").encode()
        return self._write(self.ctf_path(), data, partial)

    def write_picks(self, i: int, *, partial: bool = False) -> Path:
        if i not in self._picks:
            self._picks.append(i)
        sim = self.sim
        if self.layout == "cryosparc":
            rec = cryosparc_pick_records(sim, self._picks)
            path = self._write(self.picks_path(i), _npy_bytes(rec), partial)
            self._write(self.folder / "J3/J3_passthrough_micrographs.cs",
                        _npy_bytes(exposure_records(sim, self.stats, [j for j in self._picks if j in self._ctf])), False)
            return path
        rows = relion_pick_table(self.picks_of(i))
        if self.layout == "folder":
            p = self.picks_of(i)
            rows["cryodiag_ncc"] = p["ncc"].to_numpy(float)
            rows["cryodiag_power"] = p["power"].to_numpy(float)
        path = self._write(self.picks_path(i), star_text([("", rows)], "50001").encode(), partial)
        if self.layout == "relion":
            idx = pd.DataFrame({"rlnMicrographName": [relion_micrograph_name(sim.keys[j]) for j in self._picks],
                                "rlnMicrographCoordinates": [f"AutoPick/job003/Movies/{sim.keys[j]}_autopick.star"
                                                             for j in self._picks]})
            (self.folder / "AutoPick/job003/autopick.star").write_text(star_text([("coordinate_files", idx)], "50001"))
        return path

    def step(self, i: int | None = None) -> int:
        """Write micrograph ``i`` (default: the next one) with its CTF and picks; returns ``i``."""
        i = len(self.written) if i is None else i
        self.write_micrograph(i)
        self.write_ctf(i)
        self.write_picks(i)
        self.written.append(i)
        return i

    @property
    def pending(self) -> list[Path]:
        return list(self._pending)
