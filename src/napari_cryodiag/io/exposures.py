"""Per-micrograph tables: RELION ``micrographs_ctf.star`` / ``corrected_micrographs.star`` and
cryoSPARC exposure ``.cs`` files, as one canonical table (one row per micrograph).

Columns (present when the file has them; readers never invent values):

=========================  ===============================================================
``micrograph_name``        as the file names it (``MotionCorr/job002/Movies/mic.mrc``,
                           ``J2/motioncorrected/…_mic_patch_aligned_doseweighted.mrc``)
``micrograph``             the matching key (:func:`napari_cryodiag.micrographs.micrograph_key`)
``micrograph_uid``         cryoSPARC's exposure uid (what particles' ``location/micrograph_uid`` holds)
``defocus_u_A`` ``_v_A``   CTF (``rlnDefocusU/V`` / ``ctf/df1_A``, ``df2_A``); ``defocus_A`` their mean
``defocus_angle_deg``
``astigmatism_A``          ``|defocus_u - defocus_v|`` (RELION's ``rlnCtfAstigmatism`` when given)
``ctf_max_resolution_A``   resolution to which the CTF fit holds (``rlnCtfMaxResolution``,
                           ``ctf_stats/ctf_fit_to_A``)
``ctf_figure_of_merit``    ``rlnCtfFigureOfMerit`` / ``ctf_stats/cross_corr``
``pixel_size_A``           micrograph pixel size; ``micrograph_ny``, ``micrograph_nx`` (cryoSPARC)
``voltage_kV`` ``cs_mm`` ``amplitude_contrast``
=========================  ===============================================================

Other numeric columns keep their names (``rlnCtfIceRingDensity``, ``ctf_stats/ice_thickness_rel``).
``attrs``: ``source``, ``format`` (``"star"``/``"cs"``), ``kind = "exposures"``.

:func:`write_exposure_subset` writes the rows of some micrographs of such a file as a file of the
same kind: a RELION micrograph STAR keeps every block (``data_optics`` as it is) and every label
of the rows kept; a cryoSPARC exposure ``.cs`` keeps every field of its records
(:func:`~.cs.write_cs` from the source). Atomic, never over an input.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..micrographs import categorical_names_and_keys

__all__ = ["read_exposures", "EXPOSURE_COLUMNS", "exposures_with_stats", "write_exposure_subset",
           "exposure_subset_path"]

#: the per-micrograph statistics a curation can threshold on, with their units
EXPOSURE_COLUMNS = {
    "defocus_A": "Å", "astigmatism_A": "Å", "ctf_max_resolution_A": "Å", "ctf_figure_of_merit": "",
}

_STAR_RENAMES = {"rlnCtfMaxResolution": "ctf_max_resolution_A", "rlnCtfFigureOfMerit": "ctf_figure_of_merit",
                 "rlnCtfAstigmatism": "astigmatism_A"}
_CS_FIELDS = {"ctf/df1_A": "defocus_u_A", "ctf/df2_A": "defocus_v_A", "ctf/accel_kv": "voltage_kV",
              "ctf/cs_mm": "cs_mm", "ctf/amp_contrast": "amplitude_contrast",
              "ctf_stats/ctf_fit_to_A": "ctf_max_resolution_A", "ctf_stats/cross_corr": "ctf_figure_of_merit",
              "micrograph_blob/psize_A": "pixel_size_A"}


def read_exposures(path) -> pd.DataFrame:
    """The per-micrograph table of ``path`` (module docstring)."""
    p = os.fspath(path)
    suffix = Path(p).suffix.lower()
    if suffix == ".star":
        return _read_star(p)
    if suffix == ".cs":
        return _read_cs(p)
    raise CryodiagInputError("a micrograph table is a RELION .star or a cryoSPARC exposure .cs", p)


def _finish(out: pd.DataFrame, path: str, fmt: str) -> pd.DataFrame:
    if "defocus_u_A" in out.columns:
        v = out["defocus_v_A"] if "defocus_v_A" in out.columns else out["defocus_u_A"]
        out["defocus_A"] = (out["defocus_u_A"].astype(float) + v.astype(float)) / 2
        if "astigmatism_A" not in out.columns:
            out["astigmatism_A"] = (out["defocus_u_A"].astype(float) - v.astype(float)).abs()
    out.attrs.update({"source": path, "format": fmt, "kind": "exposures"})
    return out


def _read_star(path: str) -> pd.DataFrame:
    from .star import read_star_table

    t = read_star_table(path)
    if "micrograph" not in t.columns:
        raise CryodiagInputError("no rlnMicrographName: not a micrograph table", path)
    t = t.rename(columns={k: v for k, v in _STAR_RENAMES.items() if k in t.columns})
    attrs = dict(t.attrs)
    t = t.reset_index(drop=True)
    t.attrs = attrs
    return _finish(t, path, "star")


def _read_cs(path: str) -> pd.DataFrame:
    from .cs import read_cs_array

    arr = read_cs_array(path)
    names = list(arr.dtype.names or [])
    field = next((f for f in ("micrograph_blob/path", "micrograph_blob_non_dw/path") if f in names), None)
    if field is None:
        raise CryodiagInputError("no micrograph_blob/path: not a cryoSPARC exposure file", path)
    n = len(arr)
    raw = np.asarray(arr[field])
    codes, uniq = pd.factorize(raw, use_na_sentinel=False)
    dec = [u.decode(errors="replace") if isinstance(u, bytes) else str(u) for u in uniq]
    dec = [d[1:] if d.startswith(">") else d for d in dec]
    cols: dict = {}
    cols["micrograph_name"], cols["micrograph"] = categorical_names_and_keys(codes=codes, uniques=dec)
    if "uid" in names:
        cols["micrograph_uid"] = np.asarray(arr["uid"], dtype=np.uint64)
    for f, c in _CS_FIELDS.items():
        if f in names:
            cols[c] = np.asarray(arr[f], dtype=np.float64)
    if "ctf/df_angle_rad" in names:
        cols["defocus_angle_deg"] = np.degrees(np.asarray(arr["ctf/df_angle_rad"], dtype=np.float64))
    if "micrograph_blob/shape" in names:
        shape = np.asarray(arr["micrograph_blob/shape"]).reshape(n, -1)
        cols["micrograph_ny"], cols["micrograph_nx"] = shape[:, 0].astype(np.int64), shape[:, 1].astype(np.int64)
    used = set(_CS_FIELDS) | {field, "uid", "ctf/df_angle_rad", "micrograph_blob/shape"}
    for f in names:
        dt = arr.dtype[f]
        if f not in used and dt.shape == () and dt.kind in "iuf":
            cols[f] = np.asarray(arr[f])
    cols["source_row"] = np.arange(n, dtype=np.int64)
    return _finish(pd.DataFrame(cols), path, "cs")


def exposures_with_stats(exposures: pd.DataFrame) -> list[str]:
    """The statistics of :data:`EXPOSURE_COLUMNS` that ``exposures`` has (and that are not all NaN)."""
    out = []
    for c in EXPOSURE_COLUMNS:
        if c in exposures.columns and np.isfinite(pd.to_numeric(exposures[c], errors="coerce").to_numpy(float)).any():
            out.append(c)
    return out


def exposure_subset_path(picks_path, source_format: str) -> Path:
    """Where the micrograph subset beside an export of picks ``picks_path`` goes:
    ``<stem>_micrographs.star`` for a RELION micrograph table, ``<stem>_exposures.cs`` for a
    cryoSPARC exposure file."""
    p = Path(picks_path)
    if source_format == "cs":
        return p.with_name(f"{p.stem}_exposures.cs")
    return p.with_name(f"{p.stem}_micrographs.star")


def write_exposure_subset(path, exposures: pd.DataFrame, keep_keys, *, overwrite: bool = False,
                          protect=()) -> tuple[Path, int]:
    """Write the rows of the micrographs whose matching keys are in ``keep_keys`` of the file
    ``exposures`` was read from (:func:`read_exposures`; ``attrs["source"]``) to ``path``, in the
    same format (module docstring). Returns ``(path, rows written)``."""
    from ..micrographs import micrograph_key

    src = exposures.attrs.get("source")
    fmt = exposures.attrs.get("format")
    if not src or fmt not in ("star", "cs"):
        raise CryodiagInputError("the micrograph table was not read from a STAR or .cs file: no subset to write", path)
    keep = {str(k) for k in keep_keys}
    protect = [src, *protect]
    if fmt == "cs":
        from .cs import read_cs_array, write_cs

        if Path(path).suffix.lower() != ".cs":
            raise CryodiagInputError("a subset of a cryoSPARC exposure file is a .cs", path)
        keys = exposures["micrograph"].astype(str).to_numpy()
        rows = exposures["source_row"].to_numpy(dtype=np.int64)[np.isin(keys, list(keep))]
        n_src = len(read_cs_array(src, mmap=True))
        if rows.size and (rows.min() < 0 or rows.max() >= n_src):
            raise CryodiagInputError("the micrograph table's rows are not those of its .cs", src)
        sub = pd.DataFrame({"source_row": np.sort(rows)})
        sub.attrs = {"source": src, "format": "cs"}
        return write_cs(path, sub, overwrite=overwrite, protect=protect), int(rows.size)
    from .star import read_star_blocks, write_star_blocks

    if Path(path).suffix.lower() != ".star":
        raise CryodiagInputError("a subset of a RELION micrograph STAR is a .star", path)
    blocks = read_star_blocks(src)
    loops = [b for b in blocks if b.is_loop and "rlnMicrographName" in b.labels]
    if not loops:
        raise CryodiagInputError("no loop with rlnMicrographName: not a micrograph STAR", src)
    mics = loops[-1]
    table = mics.loop
    names = table["rlnMicrographName"].astype(str).to_numpy()
    rows = np.flatnonzero(np.isin(np.array([micrograph_key(n) for n in names], dtype=object), list(keep)))
    others = [(b.name, b.loop if b.is_loop else b.pairs) for b in blocks if b is not mics]
    out = write_star_blocks(path, [*others, (mics.name, table)], rows=rows, overwrite=overwrite, protect=protect)
    return out, int(rows.size)
