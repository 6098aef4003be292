"""cryoSPARC ``.cs`` files (NumPy record format, and the compressed format via cryosparc-tools).

Two formats, told apart by the first bytes: ``\\x93NUMPY`` is a NumPy ``.npy`` record array,
read with ``np.load(..., max_header_size=2**30)`` (memory-mapped only when the file would not fit
in memory), or, when only some fields are needed (``fields=``), read front to back in 64 MB chunks
keeping just those fields (:func:`read_cs_fields`); ``\\x95CSDAT`` is cryoSPARC's compressed column format, which only
cryosparc-tools reads (``pip install cryosparc-tools``).

Conventions (docs/ARCHITECTURE.md):
- picks: ``x_px = location/center_x_frac * nx``, ``y_px = location/center_y_frac * ny`` with
  ``location/micrograph_shape = [ny, nx]``; ``flip_y=True`` gives ``ny - y``.
- CTF: ``defocus_u_A = ctf/df1_A``, ``defocus_v_A = ctf/df2_A``,
  ``defocus_angle_deg = degrees(ctf/df_angle_rad)``.
- 3D poses (axis-angle, rad) -> RELION ``rot, tilt, psi`` =
  ``Rotation.from_rotvec(pose).as_euler("ZYZ", degrees=True)`` (REFERENCE.md);
  2D in-plane pose (rad) -> ``psi_deg``.
- shifts (pixels of the particle image) -> ``shift_x_A, shift_y_A`` = shift × ``psize_A`` of the
  same alignment, sign as stored by cryoSPARC.
- ``class`` is 0-based as cryoSPARC stores it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..micrographs import categorical_names_and_keys
from .atomic import atomic_write

__all__ = ["read_cs_array", "read_cs_fields", "read_cs", "write_cs", "cs_format", "CS_CONVENTION", "MMAP_FRACTION"]

NUMPY_MAGIC = b"\x93NUMPY"
CSDAT_MAGIC = b"\x95CSDAT"
#: Files larger than this fraction of the available memory are memory-mapped instead of read
#: (sequential reads are much faster than page faults on a cold cache, so only when needed).
MMAP_FRACTION = 0.5
#: Chunk size of the sequential field reader.
CHUNK_BYTES = 64 * 1024 * 1024


def _available_bytes() -> int:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 8 << 30

CS_CONVENTION = (
    "cryoSPARC .cs: x_px = center_x_frac * nx, y_px = center_y_frac * ny, "
    "micrograph_shape = [ny, nx] (cryoSPARC's frame{flip})"
)

_KNOWN_PREFIXES = (
    "location/", "pick_stats/", "blob/", "ctf/", "alignments2D/", "alignments3D/",
    "alignments3D_multi/", "alignments_class_", "micrograph_blob", "movie_blob", "mscope_params/",
    "quality_stats/", "sym_expand/", "filament/", "components_mode_", "background_blob/",
    "ctf_stats/", "exposure/", "gain_ref_blob/", "rigid_motion/", "spline_motion/", "intermediate",
)


def cs_format(path) -> str:
    """``"numpy"`` or ``"csdat"`` from the first bytes; raises for anything else."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise CryodiagInputError("file not found", path) from None
    except IsADirectoryError:
        raise CryodiagInputError("is a folder, not a .cs file", path) from None
    if magic == NUMPY_MAGIC:
        return "numpy"
    if magic == CSDAT_MAGIC:
        return "csdat"
    raise CryodiagInputError(
        f"not a cryoSPARC .cs file: starts with {magic!r}, expected \\x93NUMPY or \\x95CSDAT", path
    )


def read_cs_array(path, *, mmap: bool | None = None) -> np.ndarray:
    """The raw record array (memory-mapped when ``mmap``, or by default when the file is larger
    than ``MMAP_FRACTION`` of the available memory)."""
    path = os.fspath(path)
    fmt = cs_format(path)
    if fmt == "csdat":
        try:
            from cryosparc.dataset import Dataset  # type: ignore
        except ImportError:
            raise CryodiagInputError(
                "compressed .cs format (\\x95CSDAT) needs cryosparc-tools: "
                "pip install cryosparc-tools", path
            ) from None
        try:
            ds = Dataset.load(path)
            arr = ds.to_records(fixed=True)
        except Exception as err:  # pragma: no cover - depends on cryosparc-tools
            raise CryodiagInputError(f"cryosparc-tools could not read the file: {err}", path) from None
        return arr
    if mmap is None:
        mmap = os.path.getsize(path) > MMAP_FRACTION * _available_bytes()
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False, max_header_size=2**30)
    except (ValueError, OSError, EOFError) as err:
        raise CryodiagInputError(f"corrupt .cs (NumPy format) file: {err}", path) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.names is None or arr.ndim != 1:
        raise CryodiagInputError(
            "unknown .cs schema: expected a 1D record array with cryoSPARC fields "
            f"(got {getattr(arr, 'dtype', type(arr))})", path
        )
    return arr


class FieldTable(dict):
    """Selected ``.cs`` fields as contiguous arrays (``t[name]``), with the record ``dtype`` they
    would have in the file's layout and ``len(t)`` rows."""

    def __init__(self, arrays: dict, dtype: np.dtype, n: int):
        super().__init__(arrays)
        self.dtype = dtype
        self._n = n
        self.lazy: dict = {}  # field -> file, for fields read on demand

    def __len__(self) -> int:
        return self._n


def read_cs_fields(path, fields: Sequence[str], *, chunk_bytes: int = CHUNK_BYTES) -> "FieldTable":
    """Only ``fields`` of a NumPy-format ``.cs``, read sequentially in chunks.

    Memory stays at the size of the selected fields plus one chunk, and the file is read
    front to back (fast on a cold cache, unlike strided page faults through a memory map).
    """
    path = os.fspath(path)
    if cs_format(path) != "numpy":
        arr = read_cs_array(path)
        keep = [f for f in fields if f in arr.dtype.names]
        return FieldTable({f: np.asarray(arr[f]) for f in keep}, np.dtype([(f, arr.dtype[f]) for f in keep]), len(arr))
    from numpy.lib import format as npf

    try:
        with open(path, "rb") as f:
            version = npf.read_magic(f)
            reader = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
            shape, fortran, dtype = reader(f, max_header_size=2**30)
            if dtype.names is None or len(shape) != 1:
                raise CryodiagInputError(
                    f"unknown .cs schema: expected a 1D record array with cryoSPARC fields (got {dtype})", path)
            keep = [fl for fl in fields if fl in dtype.names]
            out_dtype = np.dtype([(fl, dtype[fl]) for fl in keep])
            n = int(shape[0])
            out = FieldTable({fl: np.empty((n,) + dtype[fl].shape, dtype[fl].base) for fl in keep}, out_dtype, n)
            rows_per_chunk = max(1, chunk_bytes // max(dtype.itemsize, 1))
            buf = bytearray(rows_per_chunk * dtype.itemsize)
            done = 0
            while done < n:
                m = min(rows_per_chunk, n - done)
                view = memoryview(buf)[: m * dtype.itemsize]
                got = f.readinto(view)
                if got != m * dtype.itemsize:
                    raise CryodiagInputError(
                        f"truncated .cs file: header says {n} rows of {dtype.itemsize} bytes", path)
                chunk = np.frombuffer(buf, dtype=dtype, count=m)
                for fl in keep:
                    out[fl][done:done + m] = chunk[fl]
                done += m
    except (ValueError, OSError, EOFError) as err:
        raise CryodiagInputError(f"corrupt .cs (NumPy format) file: {err}", path) from None
    return out


def _decode(values: np.ndarray) -> np.ndarray:
    """Decode a bytes column once per distinct value (fast for millions of rows)."""
    if values.dtype.kind == "U":
        return values.astype(object)
    uniq, inv = np.unique(np.asarray(values), return_inverse=True)
    dec = np.array([u.decode(errors="replace") if isinstance(u, bytes) else str(u) for u in uniq], dtype=object)
    return dec[inv.ravel()]


def _strip_cs_path(s: np.ndarray) -> np.ndarray:
    # cryoSPARC marks imported absolute paths with a leading '>'
    return np.array([p[1:] if p.startswith(">") else p for p in s], dtype=object) if len(s) < 64 else \
        pd.Series(s).str.replace(r"^>", "", regex=True).to_numpy(dtype=object)


def _decode_paths(values, uid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode a path column once per distinct value: (row -> code, decoded distinct paths).

    With ``uid`` (e.g. ``location/micrograph_uid``) the distinct values are found on the
    integers, and only one path per uid is decoded (fast for millions of rows).
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), np.array([], dtype=object)
    if uid is not None:
        import pandas as pd

        # hash factorisation (O(n)) instead of sorting millions of uids
        codes, uniq = pd.factorize(np.asarray(uid), use_na_sentinel=False)
        first = np.empty(len(uniq), dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # last write wins: the first row
        dec = _strip_cs_path(_decode(np.asarray(values[first])))
        return codes.astype(np.int64, copy=False), dec
    uniq, inv = np.unique(np.asarray(values), return_inverse=True)
    return inv.ravel(), _strip_cs_path(_decode(uniq))


def _categorical(codes, uniques):
    import pandas as pd

    ucodes, uu = pd.factorize(np.asarray(uniques, dtype=object), use_na_sentinel=False, sort=True)
    return pd.Categorical.from_codes(ucodes[codes], categories=pd.Index(np.asarray(uu, dtype=object), dtype=object))


def read_cs(path, *, fields: Sequence[str] | None = None, flip_y: bool = False, mmap: bool | None = None,
            keep_other_fields: bool = True, require_coordinates: bool = False) -> pd.DataFrame:
    """Read a ``.cs`` file into the canonical table.

    ``fields`` limits which source fields are read (with memory-mapping this avoids touching
    the rest); by default all scalar fields are kept (``keep_other_fields``) under their own
    names (``alignments3D/error`` ...). A file without ``location/*`` is still a table
    (``attrs["has_locations"] = False``); ``require_coordinates=True`` raises instead.
    """

    path = os.fspath(path)
    if fields is not None and not mmap and cs_format(path) == "numpy":
        from numpy.lib import format as npf

        with open(path, "rb") as f:
            version = npf.read_magic(f)
            reader = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
            try:
                _, _, file_dtype = reader(f, max_header_size=2**30)
            except ValueError as err:
                raise CryodiagInputError(f"corrupt .cs (NumPy format) file: {err}", path) from None
        all_names = list(file_dtype.names or [])
        if all_names:
            sel = list(fields)
            if "location/micrograph_uid" in sel and "location/micrograph_path" in sel:
                # one path per micrograph is enough: fetched below through a memory map
                sel.remove("location/micrograph_path")
            arr = read_cs_fields(path, sel)
            if len(sel) < len(fields):
                arr.lazy["location/micrograph_path"] = path
                arr.dtype = np.dtype(arr.dtype.descr + [("location/micrograph_path", file_dtype["location/micrograph_path"].str)])
        else:
            arr = read_cs_array(path)
        names = all_names or list(arr.dtype.names or [])
    else:
        arr = read_cs_array(path, mmap=mmap)
        names = list(arr.dtype.names)
    if not any(n == "uid" or n.startswith(_KNOWN_PREFIXES) for n in names):
        raise CryodiagInputError(
            "unknown .cs schema: none of the cryoSPARC fields (uid, location/*, blob/*, ctf/*, "
            f"alignments*/ ...) is present; fields are {', '.join(names[:8])}", path
        )
    want = set(names if fields is None else [f for f in fields if f in names])
    have = lambda f: f in want and f in arr.dtype.names  # noqa: E731
    n = len(arr)
    cols: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def col(f):
        used.add(f)
        return np.asarray(arr[f])

    has_loc = have("location/center_x_frac") and have("location/center_y_frac") and have("location/micrograph_shape")
    if has_loc:
        shape = col("location/micrograph_shape").reshape(n, 2)
        ny = shape[:, 0].astype(np.int64)
        nx = shape[:, 1].astype(np.int64)
        x = col("location/center_x_frac").astype(np.float64) * nx
        y = col("location/center_y_frac").astype(np.float64) * ny
        if flip_y:
            y = ny - y
        cols["x_px"] = x
        cols["y_px"] = y
        cols["micrograph_ny"] = ny
        cols["micrograph_nx"] = nx
    mic_uid = col("location/micrograph_uid") if have("location/micrograph_uid") else None
    if have("location/micrograph_path") or mic_uid is not None:
        if have("location/micrograph_path"):
            lazy = getattr(arr, "lazy", {}).get("location/micrograph_path")
            if lazy is not None:  # rows are read on demand through a memory map
                values = np.load(lazy, mmap_mode="r", max_header_size=2**30)["location/micrograph_path"]
            else:
                values = arr["location/micrograph_path"]
            codes, uniq = _decode_paths(values, mic_uid)
            used.add("location/micrograph_path")
        else:
            codes, uniq = np.zeros(n, dtype=np.int64), np.array([], dtype=object)
        if n and (len(uniq) == 0 or all(u == "" for u in uniq)) and mic_uid is not None:
            codes, uniq = _decode_paths(mic_uid.astype(str), None)  # no paths: name by uid
        cols["micrograph_name"], cols["micrograph"] = categorical_names_and_keys(codes=codes, uniques=uniq)
    if mic_uid is not None:
        cols["micrograph_uid"] = mic_uid
    # pixel size: the micrograph's when picks are located, else the particle image's
    if have("location/micrograph_psize_A"):
        cols["pixel_size_A"] = col("location/micrograph_psize_A").astype(np.float64)
    elif have("blob/psize_A"):
        cols["pixel_size_A"] = col("blob/psize_A").astype(np.float64)
    # scores
    if have("pick_stats/ncc_score"):
        cols["ncc"] = col("pick_stats/ncc_score").astype(np.float64)
    if have("pick_stats/power"):
        cols["power"] = col("pick_stats/power").astype(np.float64)
    # CTF
    if have("ctf/df1_A"):
        cols["defocus_u_A"] = col("ctf/df1_A").astype(np.float64)
    if have("ctf/df2_A"):
        cols["defocus_v_A"] = col("ctf/df2_A").astype(np.float64)
    if "defocus_u_A" in cols:
        cols["defocus_A"] = (cols["defocus_u_A"] + cols.get("defocus_v_A", cols["defocus_u_A"])) / 2
    if have("ctf/df_angle_rad"):
        cols["defocus_angle_deg"] = np.degrees(col("ctf/df_angle_rad").astype(np.float64))
    for src, dst in (("ctf/accel_kv", "voltage_kV"), ("ctf/cs_mm", "cs_mm"), ("ctf/amp_contrast", "amplitude_contrast")):
        if have(src):
            cols[dst] = col(src).astype(np.float64)
    # alignments: 3D preferred for class/split when both exist
    al = "alignments3D" if any(f.startswith("alignments3D/") for f in want) else (
        "alignments2D" if any(f.startswith("alignments2D/") for f in want) else None)
    if have("alignments3D/pose"):
        from scipy.spatial.transform import Rotation

        pose = col("alignments3D/pose").reshape(n, 3).astype(np.float64)
        if n:
            eul = Rotation.from_rotvec(pose).as_euler("ZYZ", degrees=True)
        else:
            eul = np.zeros((0, 3))
        cols["rot_deg"], cols["tilt_deg"], cols["psi_deg"] = eul[:, 0], eul[:, 1], eul[:, 2]
    elif have("alignments2D/pose"):
        cols["psi_deg"] = np.degrees(col("alignments2D/pose").reshape(n).astype(np.float64))
    if al is not None:
        sh = f"{al}/shift"
        ps = f"{al}/psize_A"
        if have(sh):
            s = col(sh).reshape(n, 2).astype(np.float64)
            p = col(ps).astype(np.float64) if have(ps) else cols.get("pixel_size_A", np.full(n, np.nan))
            cols["shift_x_A"] = s[:, 0] * p
            cols["shift_y_A"] = s[:, 1] * p
        for src, dst in (("class", "class"), ("class_posterior", "class_posterior"), ("class_ess", "class_ess"),
                         ("split", "split")):
            if have(f"{al}/{src}"):
                cols[dst] = col(f"{al}/{src}")
    # full posteriors over classes: alignments3D_multi/class_posterior (N, K) or alignments_class_k/*
    if have("alignments3D_multi/class_posterior"):
        post = col("alignments3D_multi/class_posterior").reshape(n, -1).astype(np.float64)
        for k in range(post.shape[1]):
            cols[f"posterior_class_{k}"] = post[:, k]
    else:
        ks = sorted(int(f[len("alignments_class_"):].split("/")[0]) for f in want
                    if f.startswith("alignments_class_") and f.endswith("/class_posterior"))
        for k in ks:
            cols[f"posterior_class_{k}"] = col(f"alignments_class_{k}/class_posterior").astype(np.float64)
    # particle images
    if have("blob/path"):
        cols["image_path"] = _categorical(*_decode_paths(arr["blob/path"]))
        used.add("blob/path")
    if have("blob/idx"):
        cols["image_index"] = col("blob/idx").astype(np.int64)
    # everything else scalar & numeric under its own name
    if keep_other_fields:
        for f in names:
            if f in used or f not in want or f in cols:
                continue
            dt = arr.dtype[f]
            if dt.shape == () and dt.kind in "iufb":
                cols[f] = np.asarray(arr[f])
            elif dt.shape and dt.kind in "iuf" and int(np.prod(dt.shape)) <= 4:
                v = np.asarray(arr[f]).reshape(n, -1)
                for j in range(v.shape[1]):
                    cols[f"{f}[{j}]"] = v[:, j]
    cols["source_row"] = np.arange(n, dtype=np.int64)
    table = pd.DataFrame(cols, copy=False)
    if require_coordinates and not has_loc:
        raise CryodiagInputError(
            "the .cs file has no location/* fields: nothing to place on micrographs "
            "(it can still be read as a particle table)", path
        )
    table.attrs = {
        "source": path,
        "format": "cs",
        "convention": CS_CONVENTION.format(flip="; y flipped: ny - y" if flip_y else ""),
        "optics": None,
        "flip_y": bool(flip_y),
        "has_locations": bool(has_loc),
        "fields": names,
        "note": "" if has_loc else "no location/* fields: a particle table with nothing to place on micrographs",
    }
    return table


# --------------------------------------------------------------------------- writing


def _rotvec_from_euler(rot, tilt, psi) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("ZYZ", np.column_stack([rot, tilt, psi]), degrees=True).as_rotvec()


def _update_from_table(out: np.ndarray, table: pd.DataFrame, flip_y: bool) -> None:
    """Write canonical columns back into cryoSPARC fields that exist in ``out``."""
    names = set(out.dtype.names)
    tc = table.columns
    n = len(out)

    def put(field, values):
        if field in names:
            out[field] = np.asarray(values).astype(out.dtype[field].base, copy=False).reshape(out[field].shape)

    if "x_px" in tc and "location/micrograph_shape" in names:
        shape = np.asarray(out["location/micrograph_shape"]).reshape(n, 2).astype(np.float64)
        ny, nx = shape[:, 0], shape[:, 1]
        if "micrograph_ny" in tc:
            ny = table["micrograph_ny"].to_numpy(dtype=np.float64)
            nx = table["micrograph_nx"].to_numpy(dtype=np.float64)
            out["location/micrograph_shape"] = np.column_stack([ny, nx]).astype(out.dtype["location/micrograph_shape"].base)
        y = table["y_px"].to_numpy(dtype=np.float64)
        if flip_y:
            y = ny - y
        with np.errstate(divide="ignore", invalid="ignore"):
            put("location/center_x_frac", table["x_px"].to_numpy(dtype=np.float64) / nx)
            put("location/center_y_frac", y / ny)
    for c, f in (("ncc", "pick_stats/ncc_score"), ("power", "pick_stats/power"), ("defocus_u_A", "ctf/df1_A"),
                 ("defocus_v_A", "ctf/df2_A"), ("voltage_kV", "ctf/accel_kv"), ("cs_mm", "ctf/cs_mm"),
                 ("amplitude_contrast", "ctf/amp_contrast")):
        if c in tc:
            put(f, table[c].to_numpy())
    if "defocus_angle_deg" in tc:
        put("ctf/df_angle_rad", np.radians(table["defocus_angle_deg"].to_numpy(dtype=np.float64)))


def _new_records(table: pd.DataFrame, micrograph_shape=None) -> np.ndarray:
    """A fresh cryoSPARC-style record array from a canonical table (no source .cs)."""
    n = len(table)
    tc = table.columns
    fields: list[tuple] = [("uid", "<u8")]
    data: dict[str, np.ndarray] = {}
    rng = np.random.default_rng()
    data["uid"] = rng.integers(1, 2**63, size=n, dtype=np.uint64)
    if "x_px" in tc and "y_px" in tc:
        if "micrograph_ny" in tc:
            shape = np.column_stack([table["micrograph_ny"], table["micrograph_nx"]]).astype(np.uint32)
        elif micrograph_shape is not None:
            shape = np.tile(np.asarray(micrograph_shape, dtype=np.uint32), (n, 1))
        else:
            raise CryodiagInputError(
                "writing picks to .cs needs the micrograph shape (location/micrograph_shape = "
                "[ny, nx]); pass micrograph_shape=(ny, nx)"
            )
        names = table.get("micrograph_name", table.get("micrograph", pd.Series([""] * n))).astype(str).to_numpy()
        width = max(1, max((len(s.encode()) for s in names), default=1))
        fields += [("location/micrograph_uid", "<u8"), ("location/micrograph_path", f"S{width}"),
                   ("location/micrograph_shape", "<u4", (2,)), ("location/center_x_frac", "<f4"),
                   ("location/center_y_frac", "<f4")]
        uniq, inv = np.unique(names, return_inverse=True)
        data["location/micrograph_uid"] = (np.arange(len(uniq), dtype=np.uint64) + 1)[inv]
        data["location/micrograph_path"] = np.char.encode(names.astype(str))
        data["location/micrograph_shape"] = shape
        data["location/center_x_frac"] = table["x_px"].to_numpy(dtype=np.float64) / shape[:, 1]
        data["location/center_y_frac"] = table["y_px"].to_numpy(dtype=np.float64) / shape[:, 0]
        if "pixel_size_A" in tc:
            fields.append(("location/micrograph_psize_A", "<f4"))
            data["location/micrograph_psize_A"] = table["pixel_size_A"].to_numpy()
    for c, f in (("ncc", "pick_stats/ncc_score"), ("power", "pick_stats/power"), ("defocus_u_A", "ctf/df1_A"),
                 ("defocus_v_A", "ctf/df2_A"), ("voltage_kV", "ctf/accel_kv"), ("cs_mm", "ctf/cs_mm"),
                 ("amplitude_contrast", "ctf/amp_contrast")):
        if c in tc:
            fields.append((f, "<f4"))
            data[f] = table[c].to_numpy()
    if "defocus_angle_deg" in tc:
        fields.append(("ctf/df_angle_rad", "<f4"))
        data["ctf/df_angle_rad"] = np.radians(table["defocus_angle_deg"].to_numpy(dtype=np.float64))
    if "image_path" in tc:
        paths = table["image_path"].astype(str).to_numpy()
        width = max(1, max((len(s.encode()) for s in paths), default=1))
        fields += [("blob/path", f"S{width}"), ("blob/idx", "<u4")]
        data["blob/path"] = np.char.encode(paths.astype(str))
        data["blob/idx"] = table.get("image_index", pd.Series(np.zeros(n))).to_numpy().astype(np.uint32)
        if "pixel_size_A" in tc:
            fields.append(("blob/psize_A", "<f4"))
            data["blob/psize_A"] = table["pixel_size_A"].to_numpy()
    if {"rot_deg", "tilt_deg", "psi_deg"} <= set(tc):
        fields.append(("alignments3D/pose", "<f4", (3,)))
        data["alignments3D/pose"] = _rotvec_from_euler(table["rot_deg"], table["tilt_deg"], table["psi_deg"]) if n else np.zeros((0, 3))
    if "class" in tc:
        fields.append(("alignments3D/class", "<u4"))
        data["alignments3D/class"] = table["class"].to_numpy()
    out = np.zeros(n, dtype=fields)
    for k, v in data.items():
        out[k] = np.asarray(v).reshape(out[k].shape)
    return out


def write_cs(path, table: pd.DataFrame, source=None, *, overwrite: bool = False, protect: Iterable = (),
             micrograph_shape=None) -> Path:
    """Write a table as a NumPy-format ``.cs`` (atomically; never over the source).

    When the table came from a ``.cs`` (``source`` or ``table.attrs["source"]``), the rows named
    by ``source_row`` are taken from it with all their other fields, and the canonical columns
    (locations from ``x_px``/``y_px`` with the table's ``flip_y``, scores, CTF) are written back.
    Otherwise a new record array is built from the canonical columns (``micrograph_shape``
    ``(ny, nx)`` is needed for picks when the table has no ``micrograph_ny/nx`` columns).
    """
    src = source
    if src is None and table.attrs.get("format") == "cs":
        src = table.attrs.get("source")
    protect = list(protect) + [p for p in (src, table.attrs.get("source")) if p]
    if src is not None:
        base = read_cs_array(src, mmap=True)
        if "source_row" not in table.columns:
            raise CryodiagInputError("table has no source_row column to select rows of the source .cs", src)
        rows = table["source_row"].to_numpy(dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(base)):
            raise CryodiagInputError(
                f"source_row values out of range for the source .cs ({len(base)} rows)", src
            )
        out = np.array(base[rows])
        _update_from_table(out, table, bool(table.attrs.get("flip_y", False)))
    else:
        out = _new_records(table, micrograph_shape)

    def _write(tmp: Path):
        with open(tmp, "wb") as f:
            np.save(f, out, allow_pickle=False)

    return atomic_write(path, _write, overwrite=overwrite, protect=protect)
