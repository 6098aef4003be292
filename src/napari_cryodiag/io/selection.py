"""One writer for a selection of picks or particles: RELION particle STAR, RELION coordinate
files, cryoSPARC ``.cs``; one side JSON of settings; one input protection.

Every caller (``cryodiag picks --export-*``, Inspect Picks' Export, napari's File > Save) goes
through :func:`write_selection`:

- ``kind="particles"`` (``.star``): RELION 3.1+ particle STAR, ``data_optics`` (pixel size,
  voltage, Cs, amplitude contrast when known: ``rlnMicrographPixelSize`` for the micrographs the
  coordinates are in; ``rlnImagePixelSize``/``rlnImageSize`` too when the rows are particle
  images) and ``data_particles``; what ``relion_preprocess --reextract_data_star … --extract``
  reads.
- ``kind="coordinates"`` (``path`` = the index, e.g. ``AutoPick/job900/autopick.star``): one
  ``<micrograph>_<suffix>.star`` per micrograph beside the index, in a folder tree that mirrors
  the micrograph names (RELION's rule: the part after ``<Job>/jobNNN/``), as
  ``relion_preprocess --coord_dir <folder of the index> --coord_suffix _<suffix>.star`` reads
  them, and the index itself (RELION 4/5: ``data_coordinate_files`` with ``rlnMicrographName``
  and ``rlnMicrographCoordinates``, paths relative to the RELION project folder).
- ``kind="cs"`` (``.cs``): NumPy-format cryoSPARC ``.cs``; rows read from a ``.cs`` keep every
  field of their source (micrograph uids and paths included); other rows get cryoSPARC's pick
  schema with each micrograph's path, uid, shape and pixel size from the opened micrographs
  (:class:`MicrographRefs`): cryoSPARC joins picks to exposures by them.

``rlnMicrographName`` (and ``location/micrograph_path``) hold the micrograph's name as the
user's files have it: the name in the pick STAR itself when it has one, else the name in the
micrograph STAR or of the opened micrograph file with the same matching key, else (said in the
notes) the name in the pick file or the key.

Side JSON ``<file>.cryodiag.json``: the caller's ``settings`` (thresholds, calibration...) at the
top level, and ``counts`` (total, kept, left out and why), ``files`` (every file written) and
``export`` (format, where the micrograph names came from, notes).

Protection: every destination is checked before anything is written; an input file (the table's
sources, the micrographs, ``protect``) is never replaced, even with ``overwrite``; an existing
output only with ``overwrite``. Each file is written atomically (:mod:`.atomic`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from .atomic import atomic_write_text
from ..micrographs import cryosparc_uid, micrograph_key
from .star import optics_from_table, optics_groups_of_rows, relion_frame, write_star_blocks

__all__ = ["MicrographRefs", "SelectionFiles", "write_selection", "selection_kind", "selection_destinations",
           "relion_coordinate_path", "SIDE_SUFFIX"]

#: the side JSON is ``<file><SIDE_SUFFIX>``
SIDE_SUFFIX = ".cryodiag.json"
_JOB_PART = re.compile(r"^(?:.*?/)?job\d{3}[^/]*/(.*)$")


@dataclass
class MicrographRefs:
    """The micrographs as the user's files name them: ``names`` (e.g. ``Micrographs/epu.mrc``),
    their matching ``keys``, and when known ``shapes`` (``(ny, nx)``), cryoSPARC ``uids``,
    ``pixel_size_A``; ``paths`` are files to protect; ``origin`` says where the names come from."""

    names: list[str]
    keys: list[str] = field(default_factory=list)
    shapes: list | None = None
    uids: list | None = None
    pixel_size_A: list | None = None
    paths: list[str] = field(default_factory=list)
    origin: str = "micrographs"

    def __post_init__(self):
        self.names = [str(n) for n in self.names]
        if not self.keys:
            self.keys = [micrograph_key(n) for n in self.names]

    @classmethod
    def from_stack(cls, stack) -> "MicrographRefs":
        """The micrographs of an opened :class:`~napari_cryodiag.io.mrc.MicrographStack` (names
        as the files were given: ``Micrographs/*.mrc`` gives ``Micrographs/x.mrc``)."""
        headers = list(getattr(stack, "headers", []) or [])
        shapes = [tuple(int(v) for v in h.shape[1:]) for h in headers] if headers else None
        ps = [h.pixel_size_A for h in headers] if headers else [stack.pixel_size_A] * len(stack.paths)
        return cls(names=list(stack.paths), keys=list(stack.keys), shapes=shapes,
                   uids=[cryosparc_uid(p) for p in stack.paths], pixel_size_A=ps, paths=list(stack.paths),
                   origin="opened micrographs")

    @classmethod
    def from_paths(cls, paths: Sequence, shapes=None, pixel_size_A=None) -> "MicrographRefs":
        """Micrograph files by name (``shapes``/``pixel_size_A``: one per file or one for all)."""
        paths = [os.fspath(p) for p in paths]
        if shapes is not None and len(shapes) and np.ndim(shapes[0]) == 0:
            shapes = [tuple(shapes)] * len(paths)
        if pixel_size_A is not None and np.ndim(pixel_size_A) == 0:
            pixel_size_A = [pixel_size_A] * len(paths)
        return cls(names=paths, shapes=shapes, uids=[cryosparc_uid(p) for p in paths], pixel_size_A=pixel_size_A,
                   paths=[p for p in paths if os.path.isfile(p)], origin="opened micrographs")

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> "MicrographRefs":
        """The micrographs of a micrograph table (a RELION ``micrographs_ctf.star``, a cryoSPARC
        exposures ``.cs``): one entry per distinct name."""
        if "micrograph_name" not in table.columns:
            raise CryodiagInputError("the micrograph table has no micrograph names", table.attrs.get("source"))
        first = ~table["micrograph_name"].astype(str).duplicated().to_numpy()
        sub = table.loc[first]
        shapes = None
        if {"micrograph_ny", "micrograph_nx"} <= set(table.columns):
            shapes = list(zip(sub["micrograph_ny"].astype(int), sub["micrograph_nx"].astype(int)))
        uids = sub["micrograph_uid"].tolist() if "micrograph_uid" in table.columns else None
        ps = sub["pixel_size_A"].tolist() if "pixel_size_A" in table.columns else None
        src = table.attrs.get("source")
        return cls(names=sub["micrograph_name"].astype(str).tolist(), shapes=shapes, uids=uids, pixel_size_A=ps,
                   paths=[src] if src else [], origin=f"micrograph table {Path(src).name if src else ''}".strip())

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        """Index of each key's micrograph (-1 when absent); exact keys first, then ignoring case."""
        exact: dict[str, int] = {}
        low: dict[str, int] = {}
        for i, k in enumerate(self.keys):
            exact.setdefault(k, i)
            low.setdefault(k.lower(), i)
        return np.array([exact.get(k, low.get(str(k).lower(), -1)) for k in keys], dtype=np.int64)


@dataclass
class SelectionFiles:
    """What :func:`write_selection` wrote: ``kept`` (the main file: STAR, ``.cs`` or coordinate
    index), ``rejected`` (or None), ``side_json``, ``files`` (those three, in the order written;
    the side JSON last), ``coordinate_files`` (per micrograph), ``counts``, ``notes`` (what the
    user should act on: show them as warnings) and ``info`` (how the files were written)."""

    kept: Path
    rejected: Path | None
    side_json: Path
    files: list[Path]
    counts: dict
    notes: list[str]
    coordinate_files: list[Path] = field(default_factory=list)
    info: list[str] = field(default_factory=list)


def selection_kind(path, kind: str | None = None) -> str:
    """``"particles"`` (``.star``), ``"cs"`` (``.cs``) or ``"coordinates"`` (given)."""
    if kind is not None:
        if kind not in ("particles", "coordinates", "cs"):
            raise CryodiagInputError(f"unknown export kind {kind!r}: particles, coordinates or cs", path)
        if kind in ("particles", "coordinates") and Path(path).suffix.lower() != ".star":
            raise CryodiagInputError(f"a RELION {kind} export is a .star file", path)
        if kind == "cs" and Path(path).suffix.lower() != ".cs":
            raise CryodiagInputError("a cryoSPARC export is a .cs file", path)
        return kind
    suffix = Path(path).suffix.lower()
    if suffix == ".star":
        return "particles"
    if suffix == ".cs":
        return "cs"
    raise CryodiagInputError("export to .star (RELION) or .cs (cryoSPARC)", path)


def selection_destinations(path, rejected: bool = False) -> tuple[Path, Path | None, Path]:
    """``(kept file, rejected file or None, side JSON)`` for ``path``."""
    p = Path(path)
    rej = p.with_name(f"{p.stem}_rejected{p.suffix}") if rejected else None
    return p, rej, p.with_name(p.name + SIDE_SUFFIX)


def relion_coordinate_path(micrograph_name: str, coord_dir, suffix: str) -> Path:
    """Where ``relion_preprocess --coord_dir coord_dir --coord_suffix _<suffix>.star`` looks for
    a micrograph's coordinates: the name's part after ``<Job>/jobNNN/``, without extension."""
    name = str(micrograph_name).replace("\\", "/")
    m = _JOB_PART.match(name)
    post = m.group(1) if m else name
    post = post.lstrip("/")
    stem, ext = os.path.splitext(post)
    return Path(coord_dir) / f"{stem if ext else post}_{suffix}.star"


# --------------------------------------------------------------------------- names


def _micrograph_codes(table: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str] | None]:
    """Row -> distinct micrograph, each micrograph's matching key, and its name in the table (or
    None). A micrograph is a distinct ``micrograph_name`` when the table has names (two names of
    one key stay two micrographs), else a distinct key."""
    if "micrograph_name" in table.columns:
        col = table["micrograph_name"]
        cat = col.array if isinstance(col.dtype, pd.CategoricalDtype) else pd.Categorical(col.astype(str))
        names = [str(c) for c in cat.categories]
        return np.asarray(cat.codes, dtype=np.int64), [micrograph_key(n) for n in names], names
    if "micrograph" in table.columns:
        col = table["micrograph"]
        cat = col.array if isinstance(col.dtype, pd.CategoricalDtype) else pd.Categorical(col.astype(str))
        return np.asarray(cat.codes, dtype=np.int64), [str(k) for k in cat.categories], None
    return np.zeros(len(table), dtype=np.int64), [""], None


def _resolve_names(table: pd.DataFrame, refs: list[MicrographRefs], notes: list[str]):
    """(row -> micrograph code, per micrograph: name, ref list index/entry or None, key)."""
    codes, keys, own = _micrograph_codes(table)
    k = len(keys)
    names: list[str | None] = [None] * k
    entry: list[tuple[int, int] | None] = [None] * k
    origin = ""
    star_names = table.attrs.get("format") == "star" and own is not None
    for r, ref in enumerate(refs):
        idx = ref.lookup(keys)
        for j in range(k):
            if entry[j] is None and idx[j] >= 0:
                entry[j] = (r, int(idx[j]))
    for j in range(k):
        if star_names and own[j]:
            names[j] = own[j]
        elif entry[j] is not None:
            names[j] = refs[entry[j][0]].names[entry[j][1]]
        elif own is not None and own[j]:
            names[j] = own[j]
    if star_names:
        origin = "the pick STAR's rlnMicrographName"
    elif refs and all(e is not None for e in entry):
        origin = refs[0].origin if len({refs[e[0]].origin for e in entry}) == 1 else "the micrographs given"
    missing = [keys[j] for j in range(k) if names[j] is None]
    unmatched_refs = [keys[j] for j in range(k) if entry[j] is None and not star_names]
    if missing:
        notes.append(f"{len(missing)} micrographs have no name but their matching key (e.g. {missing[0]!r}): open the "
                     "micrographs (or give their micrograph STAR) so that RELION and cryoSPARC find them")
        for j in range(k):
            if names[j] is None:
                names[j] = keys[j]
        origin = origin or "matching keys"
    elif refs and unmatched_refs and not star_names:
        notes.append(f"{len(unmatched_refs)} micrographs of the picks are not among {refs[0].origin} "
                     f"(e.g. {unmatched_refs[0]!r}): their names are the pick file's")
    if not origin:
        origin = "the pick file's micrograph names"
    return codes, names, entry, keys, origin


def _name_categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    uniq, inv = np.unique(np.asarray(names, dtype=object), return_inverse=True) if names else (np.array([], object),
                                                                                                np.zeros(0, int))
    safe = np.where(codes >= 0, codes, 0)
    return pd.Categorical.from_codes(inv.reshape(-1)[safe] if len(inv) else safe,
                                     categories=pd.Index(uniq.astype(object), dtype=object))


def _per_micrograph(refs, entry, attr):
    out = []
    for e in entry:
        if e is None:
            out.append(None)
            continue
        vals = getattr(refs[e[0]], attr)
        out.append(None if vals is None else vals[e[1]])
    return out


# --------------------------------------------------------------------------- checks


def _inputs_of(table: pd.DataFrame, refs: list[MicrographRefs], protect: Iterable) -> set[tuple[int, int]]:
    files = [table.attrs.get("source")] + list(table.attrs.get("sources", []) or []) + list(protect)
    if "source_file" in table.columns:
        sf = table["source_file"]
        files += [str(v) for v in (sf.cat.categories if isinstance(sf.dtype, pd.CategoricalDtype) else pd.unique(sf))]
    for r in refs:
        files += list(r.paths)
    ids = set()
    for f in files:
        if not f:
            continue
        try:
            st = os.stat(f)
        except (OSError, TypeError, ValueError):
            continue
        if os.path.isfile(f):
            ids.add((st.st_dev, st.st_ino))
    return ids


def _check_destinations(dests: list[Path], inputs: set, overwrite: bool) -> None:
    seen = set()
    for d in dests:
        a = os.path.abspath(d)
        if a in seen:
            raise CryodiagInputError("two exported files would have the same name", d)
        seen.add(a)
        try:
            st = os.stat(d)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise CryodiagInputError(f"cannot check the output file: {err.strerror}", d) from None
        if (st.st_dev, st.st_ino) in inputs:
            raise CryodiagInputError("refusing to overwrite an input file; choose another output name", d)
        if not os.path.isfile(d):
            raise CryodiagInputError("an output file would replace a folder", d)
        if not overwrite:
            raise CryodiagInputError("file exists; pass overwrite=True (--overwrite) to replace it", d)


def _check_folder(folder: Path, where) -> None:
    f = Path(folder)
    while not f.exists():
        if f.parent == f:
            break
        f = f.parent
    if not f.is_dir():
        raise CryodiagInputError("output folder does not exist (a file is in the way)", where)
    if not os.access(f, os.W_OK | os.X_OK):
        raise CryodiagInputError("output folder is not writable", f)


# --------------------------------------------------------------------------- writers


def _known(table, col, default, rows_codes=None):
    if col in table.columns:
        return table[col].to_numpy(dtype=np.float64)
    if default is not None:
        return np.full(len(table), float(default))
    return None


def _particle_optics(table: pd.DataFrame, optics: dict, mic_psize: np.ndarray | None, notes: list[str]):
    """(optics DataFrame, rlnOpticsGroup per row) for a RELION 3.1+ particle STAR."""
    opt = optics_from_table(table)
    if opt is not None and "rlnOpticsGroup" in opt.columns:
        opt = opt.copy()
        add = {"rlnVoltage": optics.get("voltage_kV"), "rlnSphericalAberration": optics.get("cs_mm"),
               "rlnAmplitudeContrast": optics.get("amplitude_contrast")}
        for lab, v in add.items():
            if lab not in opt.columns and v is not None:
                opt[lab] = float(v)
        _optics_notes(opt, notes)
        return opt, optics_groups_of_rows(table, opt)
    n = len(table)
    ps = _known(table, "pixel_size_A", optics.get("pixel_size_A"))
    if ps is None and mic_psize is not None:
        ps = mic_psize
    elif ps is not None and mic_psize is not None:
        ps = np.where(np.isfinite(ps), ps, mic_psize)
    cols = {"rlnMicrographPixelSize": ps,
            "rlnVoltage": _known(table, "voltage_kV", optics.get("voltage_kV")),
            "rlnSphericalAberration": _known(table, "cs_mm", optics.get("cs_mm")),
            "rlnAmplitudeContrast": _known(table, "amplitude_contrast", optics.get("amplitude_contrast"))}
    if "image_path" in table.columns:
        img_ps = _known(table, "rlnImagePixelSize", None)
        if img_ps is None:
            img_ps = _known(table, "blob/psize_A", None)
        cols["rlnImagePixelSize"] = img_ps if img_ps is not None else ps
        size = _known(table, "rlnImageSize", None)
        if size is None:
            size = _known(table, "blob/shape[0]", None)
        if size is not None:
            cols["rlnImageSize"] = size
            cols["rlnImageDimensionality"] = np.full(n, 2.0)
    cols = {k: v for k, v in cols.items() if v is not None and np.isfinite(v).any()}
    if cols:
        frame = pd.DataFrame(cols).fillna(-1.0)
        keys = pd.MultiIndex.from_frame(frame) if frame.shape[1] > 1 else pd.Index(frame.iloc[:, 0])
        group_codes, uniq = pd.factorize(keys, sort=False)
        n_groups = len(uniq)
        if n_groups > 256:
            raise CryodiagInputError(f"{n_groups} distinct (pixel size, voltage, Cs, amplitude contrast) "
                                     "combinations: too many optics groups", table.attrs.get("source"))
        first = np.zeros(n_groups, dtype=np.int64)
        first[group_codes[::-1]] = np.arange(n)[::-1]
        opt = pd.DataFrame({"rlnOpticsGroupName": [f"opticsGroup{i + 1}" for i in range(n_groups)],
                            "rlnOpticsGroup": np.arange(1, n_groups + 1)})
        for lab, v in cols.items():
            vals = v[first]
            opt[lab] = vals.astype(np.int64) if lab in ("rlnImageSize", "rlnImageDimensionality") else vals
        groups = (group_codes + 1).astype(np.int32)
    else:
        opt = pd.DataFrame({"rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1]})
        groups = np.ones(n, dtype=np.int32)
    _optics_notes(opt, notes)
    return opt, groups


def _optics_notes(opt: pd.DataFrame, notes: list[str]) -> None:
    missing = [lab for lab in ("rlnMicrographPixelSize", "rlnVoltage", "rlnSphericalAberration",
                               "rlnAmplitudeContrast") if lab not in opt.columns and
               not (lab == "rlnMicrographPixelSize" and ("rlnImagePixelSize" in opt.columns or
                                                         "rlnMicrographOriginalPixelSize" in opt.columns))]
    if missing:
        notes.append(f"data_optics lacks {', '.join(missing)} (not known from the inputs): RELION's programs need "
                     "the pixel size, voltage and Cs; give them (optics=...) or add them to the file")


def _extra(table, extra_columns: dict | None):
    return {f"cryodiag_{re.sub(r'[^0-9A-Za-z_]', '_', k)}": np.asarray(v) for k, v in (extra_columns or {}).items()}


#: per-particle CTF labels RELION's re-extraction uses only with particle images (box size known)
_CTF_LABELS = {"rlnDefocusU": "cryodiag_defocus_u_A", "rlnDefocusV": "cryodiag_defocus_v_A",
               "rlnDefocusAngle": "cryodiag_defocus_angle_deg", "rlnPhaseShift": "cryodiag_rlnPhaseShift",
               "rlnCtfBfactor": "cryodiag_rlnCtfBfactor", "rlnCtfScalefactor": "cryodiag_rlnCtfScalefactor"}


def _write_particles(dest, table, rows, name_cat, groups, opt, extra, overwrite, info=None):
    frame = relion_frame(table, with_optics=True, optics=opt)
    if "rlnImageSize" not in opt.columns and any(k in frame for k in _CTF_LABELS):
        # picks, not particle images: RELION's re-extraction would keep these CTFs and then need a
        # box size that does not exist yet; it takes the CTF from the micrographs STAR instead
        frame = {(_CTF_LABELS.get(k, k)): v for k, v in frame.items()}
        if info is not None and not any(i.startswith("per-pick CTF") for i in info):
            info.append("per-pick CTF written as _cryodiag_defocus_* (read back by cryodiag): for picks without "
                        "particle images RELION takes the CTF from the micrographs STAR it extracts from")
    frame["rlnMicrographName"] = name_cat
    frame["rlnOpticsGroup"] = groups
    for k, v in extra.items():
        frame[k] = v
    order = ["rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY"]
    frame = {k: frame[k] for k in order if k in frame} | {k: v for k, v in frame.items() if k not in order}
    return write_star_blocks(dest, [("optics", opt), ("particles", frame)], rows=rows, overwrite=overwrite)


_COORD_LABELS = ("rlnCoordinateX", "rlnCoordinateY", "rlnClassNumber", "rlnAutopickFigureOfMerit", "rlnAnglePsi",
                 "rlnHelicalTubeID", "rlnAngleTiltPrior", "rlnAnglePsiPrior", "rlnHelicalTrackLengthAngst")


def _coordinate_columns(table, extra) -> dict:
    frame = relion_frame(table, with_optics=True, optics=None)
    cols = {k: frame[k] for k in _COORD_LABELS if k in frame}
    for c in ("ncc", "power", "diameter_px"):
        if c in table.columns:
            cols[f"cryodiag_{c}"] = table[c]
    cols.update(extra)
    return cols


def _coordinate_plan(table, rows, codes, names, folder: Path, suffix: str):
    """(micrograph code, its rows, coordinate file) for each micrograph with rows."""
    if not len(rows):
        return []
    rc = codes[rows]
    order = np.argsort(rc, kind="stable")
    sorted_codes = rc[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    plan = []
    for part in np.split(order, bounds):
        j = int(rc[part[0]])
        plan.append((j, rows[part], relion_coordinate_path(names[j], folder, suffix)))
    return plan


def _relpath(p: Path, project_dir: Path) -> str:
    ap = Path(os.path.abspath(p))
    try:
        return ap.relative_to(project_dir).as_posix()
    except ValueError:
        return ap.as_posix()


def _write_coordinates(index: Path, plan, names, cols, project_dir: Path, overwrite) -> list[Path]:
    written = []
    for _j, r, dest in plan:
        dest.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_star_blocks(dest, [("", cols)], rows=r, overwrite=overwrite))
    idx = {"rlnMicrographName": pd.Categorical([names[j] for j, _, _ in plan]),
           "rlnMicrographCoordinates": pd.Categorical([_relpath(d, project_dir) for _, _, d in plan])}
    if not plan:
        idx = {"rlnMicrographName": np.array([], dtype=object), "rlnMicrographCoordinates": np.array([], dtype=object)}
    written.append(write_star_blocks(index, [("coordinate_files", idx)], overwrite=overwrite))
    return written


def _cs_fields(table, codes, names, entry, refs, micrograph_shape):
    from .cs import MicrographFields

    k = len(names)
    shapes = np.zeros((k, 2), dtype=np.int64)
    got = _per_micrograph(refs, entry, "shapes")
    for j, s in enumerate(got):
        if s is not None:
            shapes[j] = s
    if "micrograph_ny" in table.columns and len(table):
        ny = table["micrograph_ny"].to_numpy()
        nx = table["micrograph_nx"].to_numpy()
        unknown = (shapes[codes] <= 0).any(axis=1)
        shapes[codes[unknown], 0] = ny[unknown]
        shapes[codes[unknown], 1] = nx[unknown]
    if micrograph_shape is not None:
        shapes[(shapes <= 0).any(axis=1)] = np.asarray(micrograph_shape, dtype=np.int64)
    uids = np.zeros(k, dtype=np.uint64)
    got_uid = _per_micrograph(refs, entry, "uids")
    import hashlib

    for j in range(k):
        u = got_uid[j]
        if u is None or not np.isfinite(float(u)) or int(u) <= 0:
            u = cryosparc_uid(names[j])
        if u is None:  # a stable uid from the name: the same micrograph gets the same uid in every export
            u = int.from_bytes(hashlib.sha1(names[j].encode()).digest()[:8], "little") >> 1
        uids[j] = int(u)
    ps = np.array([np.nan if v is None else float(v) for v in _per_micrograph(refs, entry, "pixel_size_A")])
    return MicrographFields(codes, names, uids, shapes, ps)


# --------------------------------------------------------------------------- the entry point


def write_selection(
    path,
    table: pd.DataFrame,
    kept=None,
    *,
    kind: str | None = None,
    rejected: bool = False,
    settings: dict | None = None,
    left_out: dict | None = None,
    micrographs: MicrographRefs | Sequence[MicrographRefs] | None = None,
    optics: dict | None = None,
    extra_columns: dict | None = None,
    coord_suffix: str = "autopick",
    project_dir=None,
    micrograph_shape=None,
    protect: Iterable = (),
    overwrite: bool = False,
) -> SelectionFiles:
    """Write the rows ``kept`` (bool mask over ``table``; all rows when None) of a canonical
    table, and optionally the others (``rejected=True``: ``<stem>_rejected<suffix>``), with the
    side JSON. See the module docstring for the formats and the protection.

    ``settings``: the caller's settings (thresholds, calibration, duplicates...), written at the
    top level of the side JSON. ``left_out``: why rows are not kept (``{"thresholds": n,
    "duplicates": m}``). ``micrographs``: the opened micrographs and/or micrograph STAR
    (:class:`MicrographRefs`, in order of preference). ``optics``: values of ``pixel_size_A``,
    ``voltage_kV``, ``cs_mm``, ``amplitude_contrast`` for rows that lack them.
    ``extra_columns``: ``{name: values per row of table}`` written beside (``_cryodiag_<name>`` in
    STAR), e.g. calibrated scores, without copying the table. ``project_dir``: the RELION project
    folder the coordinate index's paths are relative to (default: the current folder).
    """
    from .jsonfile import to_jsonable

    kind = selection_kind(path, kind)
    n = len(table)
    kept = np.ones(n, dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    if kept.shape != (n,):
        raise CryodiagInputError(f"the kept mask has {kept.shape} values for a table of {n} rows", path)
    refs = [] if micrographs is None else ([micrographs] if isinstance(micrographs, MicrographRefs) else list(micrographs))
    optics = dict(optics or {})
    notes: list[str] = []  # what the user should act on
    info: list[str] = []  # how the files were written
    main, rej, side = selection_destinations(path, rejected)
    extra = _extra(table, extra_columns)
    for k, v in extra.items():
        if len(v) != n:
            raise CryodiagInputError(f"extra column {k[len('cryodiag_'):]} has {len(v)} values for {n} rows", path)
    codes, names, entry, keys, origin = _resolve_names(table, refs, notes)
    if kind == "coordinates" and not ("x_px" in table.columns and "y_px" in table.columns):
        raise CryodiagInputError("the table has no pick coordinates to write as RELION coordinate files", path)
    rows_k = np.flatnonzero(kept)
    rows_r = np.flatnonzero(~kept) if rejected else None

    # ---- every destination, checked before anything is written
    dests = [main] + ([rej] if rej is not None else []) + [side]
    plans = {}
    if kind == "coordinates":
        folder = main.parent
        project = Path(os.path.abspath(project_dir if project_dir is not None else os.getcwd()))
        plans["kept"] = _coordinate_plan(table, rows_k, codes, names, folder, coord_suffix)
        if rej is not None:
            plans["rejected"] = _coordinate_plan(table, rows_r, codes, names, folder, f"{coord_suffix}_rejected")
        dests += [d for plan in plans.values() for _, _, d in plan]
    for d in dests:
        _check_folder(d.parent, d)
    if not main.parent.is_dir():
        raise CryodiagInputError("output folder does not exist", main.parent)
    _check_destinations(dests, _inputs_of(table, refs, protect), overwrite)

    # ---- the files
    written: list[Path] = []
    coordinate_files: list[Path] = []
    name_cat = _name_categorical(codes, names)
    if kind == "particles":
        mic_ps = None
        got = _per_micrograph(refs, entry, "pixel_size_A")
        if any(v is not None for v in got):
            per = np.array([np.nan if v is None else float(v) for v in got])
            mic_ps = per[np.where(codes >= 0, codes, 0)] if len(per) else None
        opt, groups = _particle_optics(table, optics, mic_ps, notes)
        written.append(_write_particles(main, table, rows_k, name_cat, groups, opt, extra, overwrite, info))
        if rej is not None:
            written.append(_write_particles(rej, table, rows_r, name_cat, groups, opt, extra, overwrite))
    elif kind == "coordinates":
        cols = _coordinate_columns(table, extra)
        out = _write_coordinates(main, plans["kept"], names, cols, project, overwrite)
        coordinate_files += out[:-1]
        written.append(out[-1])
        if rej is not None:
            out = _write_coordinates(rej, plans["rejected"], names, cols, project, overwrite)
            coordinate_files += out[:-1]
            written.append(out[-1])
    else:
        from .cs import check_cs_shapes, write_cs

        from_cs = table.attrs.get("format") == "cs" and table.attrs.get("source")
        mic = None if from_cs else _cs_fields(table, codes, names, entry, refs, micrograph_shape)
        sub_rows = [rows_k] + ([rows_r] if rej is not None else [])
        if not from_cs:
            for r in sub_rows:
                check_cs_shapes(table, r, mic, micrograph_shape, main)
        written.append(write_cs(main, table, rows=rows_k, micrographs=mic, overwrite=overwrite, protect=()))
        if rej is not None:
            written.append(write_cs(rej, table, rows=rows_r, micrographs=mic, overwrite=overwrite, protect=()))
        if extra:
            info.append(f"{', '.join(k[len('cryodiag_'):] for k in extra)}: not in the .cs (cryoSPARC has no field "
                        "for them)")

    counts = {"total": int(n), "kept": int(len(rows_k)), "left_out": int(n - len(rows_k)),
              "left_out_by": {str(k): int(v) for k, v in (left_out or {}).items()}}
    if rej is not None:
        counts["rejected_written"] = int(len(rows_r))
    read_notes = list(table.attrs.get("notes", []) or [])
    files = [str(p) for p in written] + [str(p) for p in coordinate_files]
    doc = dict(settings or {})
    doc.update(
        file=str(written[0]),  # the kept file and its rows (as the earlier side JSONs had them)
        n_rows=int(len(rows_k)),
        counts=counts,
        files=files + [str(side)],
        export={"format": {"particles": "RELION 3.1+ particle STAR", "coordinates": "RELION coordinate files + index",
                           "cs": "cryoSPARC .cs (NumPy format)"}[kind],
                "micrograph_names": origin, "n_coordinate_files": len(coordinate_files),
                "notes": notes, "info": info, "read_notes": read_notes},
    )
    import json

    atomic_write_text(side, json.dumps(to_jsonable(doc), indent=2) + "\n", overwrite=overwrite)
    return SelectionFiles(kept=written[0], rejected=written[1] if rej is not None else None, side_json=side,
                          files=written + [side], counts=counts, notes=notes, coordinate_files=coordinate_files,
                          info=info)
