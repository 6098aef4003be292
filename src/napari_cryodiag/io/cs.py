"""cryoSPARC ``.cs`` files (NumPy record format, and the compressed format via cryosparc-tools).

Two formats, told apart by the first bytes: ``\\x93NUMPY`` is a NumPy ``.npy`` record array;
``\\x95CSDAT`` is cryoSPARC's compressed column format, which only cryosparc-tools reads
(``pip install cryosparc-tools``).

NumPy-format files are never handed to ``np.load`` blindly: :func:`read_cs_header` checks the
magic, the header (its length, that it is a one-dimensional record array of plain fields, no
Python objects) and that the file holds the rows the header claims, before anything is
allocated. The rows are then read front to back in chunks of a few MB into one buffer, and only
the fields asked for are copied out (:func:`read_cs_fields`): memory stays at the size of those
fields, and the file is read sequentially (fast on a cold cache, unlike page faults through a
memory map). Big-endian files are read in native byte order.

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
- float32 fields stay float32 (the numbers of the file); micrograph names and paths are
  categoricals decoded once per distinct micrograph uid.

Refused (``CryodiagInputError`` naming the file and the field): a malformed or oversized header,
a row count the file does not hold, a field of the wrong type or shape (``micrograph_shape`` of 3
values, a pose of 4, numbers stored as text), text that is not UTF-8, a micrograph shape that is
not a micrograph's. Picks on a micrograph of shape ``[0, 0]`` or whose fractions are NaN, ±inf or
outside [0, 1] are left out with a note that counts them (refused when none is left).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..micrographs import categorical_names_and_keys
from .atomic import atomic_write

__all__ = ["read_cs_array", "read_cs_fields", "read_cs_header", "read_cs", "write_cs", "check_cs_shapes",
           "MicrographFields", "CsHeader", "cs_format", "CS_CONVENTION", "PICK_FIELDS"]

NUMPY_MAGIC = b"\x93NUMPY"
CSDAT_MAGIC = b"\x95CSDAT"
#: rows looked at per chunk (bytes of the file's rows): a few MB stay in cache while each field is
#: copied out (1-4 MB were fastest on the project machine, 32 MB 2-4x slower)
CHUNK_BYTES = 4 * 1024 * 1024
#: the largest header accepted (cryoSPARC's widest schemas need a few tens of KB)
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: the fields a pick view needs
PICK_FIELDS = ("location/micrograph_uid", "location/micrograph_path", "location/micrograph_shape",
               "location/center_x_frac", "location/center_y_frac", "location/micrograph_psize_A",
               "pick_stats/ncc_score", "pick_stats/power")

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
#: kind (numpy dtype.kind letters) and per-row shape of the fields cryodiag reads
_SPEC = {
    "uid": ("iu", ()),
    "location/micrograph_uid": ("iu", ()),
    "location/micrograph_path": ("SU", ()),
    "location/micrograph_shape": ("iu", (2,)),
    "location/center_x_frac": ("f", ()),
    "location/center_y_frac": ("f", ()),
    "location/micrograph_psize_A": ("fiu", ()),
    "pick_stats/ncc_score": ("fiu", ()),
    "pick_stats/power": ("fiu", ()),
    "blob/path": ("SU", ()),
    "blob/idx": ("iu", ()),
    "blob/psize_A": ("fiu", ()),
    "alignments3D/pose": ("f", (3,)),
    "alignments2D/pose": ("f", ()),
    "alignments3D_multi/class_posterior": ("f", None),
}
for _al in ("alignments2D", "alignments3D"):
    _SPEC.update({f"{_al}/shift": ("f", (2,)), f"{_al}/psize_A": ("fiu", ()), f"{_al}/class": ("iuf", ()),
                  f"{_al}/class_posterior": ("f", ()), f"{_al}/class_ess": ("f", ()), f"{_al}/split": ("iuf", ())})
for _c in ("df1_A", "df2_A", "df_angle_rad", "accel_kv", "cs_mm", "amp_contrast"):
    _SPEC[f"ctf/{_c}"] = ("fiu", ())


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
    except OSError as err:
        raise CryodiagInputError(f"cannot open: {err.strerror}", path) from None
    if magic == NUMPY_MAGIC:
        return "numpy"
    if magic == CSDAT_MAGIC:
        return "csdat"
    raise CryodiagInputError(
        f"not a cryoSPARC .cs file: starts with {magic!r}, expected \\x93NUMPY or \\x95CSDAT", path
    )


@dataclass
class CsHeader:
    """A checked NumPy-format ``.cs`` header: record ``dtype`` (as stored), ``n`` rows, data
    ``offset`` in bytes."""

    path: str
    dtype: np.dtype
    n: int
    offset: int

    @property
    def names(self) -> list[str]:
        return list(self.dtype.names or [])


def _short(err) -> str:
    s = str(err).replace("\n", " ")
    return s if len(s) <= 160 else s[:160] + "…"


def read_cs_header(path) -> CsHeader:
    """Parse and check the header of a NumPy-format ``.cs`` (see the module docstring)."""
    path = os.fspath(path)
    if cs_format(path) != "numpy":
        raise CryodiagInputError("compressed .cs (\\x95CSDAT): no NumPy header", path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        pre = f.read(12)
        if len(pre) < 10:
            raise CryodiagInputError("truncated .cs file: the NumPy header is cut short", path)
        major = pre[6]
        if major == 1:
            hlen = int.from_bytes(pre[8:10], "little")
            start = 10
        elif major in (2, 3):
            if len(pre) < 12:
                raise CryodiagInputError("truncated .cs file: the NumPy header is cut short", path)
            hlen = int.from_bytes(pre[8:12], "little")
            start = 12
        else:
            raise CryodiagInputError(f"unknown NumPy format version {major}.{pre[7]} in the .cs header", path)
        if hlen > MAX_HEADER_BYTES or start + hlen > size:
            raise CryodiagInputError(f"corrupt .cs header: it claims {hlen:,} bytes"
                                     + (f" but the file has {size:,}" if start + hlen > size else
                                        f" (more than the {MAX_HEADER_BYTES >> 20} MiB a .cs header needs)"), path)
        f.seek(start)
        raw = f.read(hlen)
    try:
        text = raw.decode("latin1" if major < 3 else "utf-8")
        d = ast.literal_eval(text)
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError, TypeError) as err:
        raise CryodiagInputError(f"corrupt .cs header (not a NumPy header: {_short(type(err).__name__)})", path) from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise CryodiagInputError("corrupt .cs header: expected the keys descr, fortran_order and shape", path)
    shape = d["shape"]
    if not (isinstance(shape, tuple) and len(shape) == 1 and isinstance(shape[0], int) and not isinstance(shape[0], bool)
            and shape[0] >= 0):
        raise CryodiagInputError(f"unknown .cs schema: shape {_short(repr(shape))[:60]} is not a number of rows "
                                 "(a 1D record array)", path)
    try:
        from numpy.lib import format as npf

        dtype = npf.descr_to_dtype(d["descr"])
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, MemoryError) as err:
        raise CryodiagInputError(f"corrupt .cs header: field types cannot be read ({_short(err)[:80]})", path) from None
    if dtype.names is None:
        raise CryodiagInputError(f"unknown .cs schema: expected a 1D record array with cryoSPARC fields (got {dtype})"[:300],
                                 path)
    if dtype.hasobject:
        raise CryodiagInputError("the .cs holds Python objects (pickled), which cryodiag does not load", path)
    if dtype.itemsize == 0 and shape[0]:
        raise CryodiagInputError("corrupt .cs header: rows of 0 bytes", path)
    n = shape[0]
    need = start + hlen + n * dtype.itemsize
    if need > size:
        raise CryodiagInputError(f"truncated .cs file: the header says {n:,} rows of {dtype.itemsize} bytes "
                                 f"({need:,} bytes) but the file has {size:,}", path)
    return CsHeader(path=path, dtype=dtype, n=n, offset=start + hlen)


def _native(a: np.ndarray) -> np.ndarray:
    if a.dtype.byteorder not in ("=", "|") and a.dtype.byteorder != ("<" if np.little_endian else ">"):
        return a.astype(a.dtype.newbyteorder("="))
    return a


def _check_field(hdr: CsHeader, name: str) -> None:
    spec = _SPEC.get(name)
    if spec is None:
        return
    dt = hdr.dtype[name]
    kinds, shape = spec
    ok = dt.base.kind in kinds and (shape is None or dt.shape == shape)
    if not ok:
        want = {(): "a number", (2,): "2 numbers", (3,): "3 numbers"}.get(shape, "numbers")
        if kinds == "SU":
            want = "text"
        elif kinds == "iu" and shape == (2,):
            want = "2 integers [ny, nx]"
        elif kinds == "iu":
            want = "an integer"
        got = f"{dt.base.str}{list(dt.shape) if dt.shape else ''}"
        raise CryodiagInputError(f"field {name} is {got}, expected {want}: not a cryoSPARC field of this name", hdr.path)


class FieldTable(dict):
    """Selected ``.cs`` fields as contiguous native-order arrays (``t[name]``), with the record
    ``dtype`` they have in the file and ``len(t)`` rows."""

    def __init__(self, arrays: dict, dtype: np.dtype, n: int):
        super().__init__(arrays)
        self.dtype = dtype
        self._n = n
        self.lazy: dict = {}

    def __len__(self) -> int:
        return self._n


def _flat(dt: np.dtype) -> np.dtype:
    """A field's dtype for copying: a small native subarray (``micrograph_shape``: 2 x u4) as one
    unsigned integer of its size (3x faster to copy out of a record), else as it is."""
    base = dt.base
    native = base.byteorder in ("=", "|") or base.byteorder == ("<" if np.little_endian else ">")
    if dt.shape and native and dt.itemsize in (4, 8) and base.kind in "iuf":
        return np.dtype(f"<u{dt.itemsize}" if np.little_endian else f">u{dt.itemsize}")
    return dt


def read_cs_fields(path, fields: Sequence[str] | None = None, *, chunk_bytes: int = CHUNK_BYTES,
                   header: CsHeader | None = None, transient: Sequence[str] = (), on_chunk=None) -> FieldTable:
    """Only ``fields`` (all when None) of a ``.cs``, as contiguous native-order arrays.

    NumPy format: the rows are read front to back with ``readinto``, ``chunk_bytes`` at a time,
    into one reused buffer (it stays in cache while each field is copied out; memory stays at the
    size of the fields, and no page of the file is mapped). Compressed format: through
    cryosparc-tools. Fields that the file lacks are left out.

    ``on_chunk(records, lo, hi, arrays)`` (NumPy format only) is called for each chunk of rows
    ``lo:hi`` after its fields were copied (``arrays[f][lo:hi]``, in the file's byte order);
    ``records`` also holds the ``transient`` fields, which are looked at there but not copied out
    (values derived from them while the chunk is in cache cost no array of their own). ``records``
    is the reused buffer: it is overwritten by the next chunk.
    """
    path = os.fspath(path)
    if cs_format(path) != "numpy":
        arr = read_cs_array(path)
        keep = [f for f in (fields or arr.dtype.names) if f in arr.dtype.names]
        return FieldTable({f: _native(np.ascontiguousarray(arr[f])) for f in keep},
                          np.dtype([(f, arr.dtype[f]) for f in keep]), len(arr))
    hdr = header or read_cs_header(path)
    keep = [f for f in (fields if fields is not None else hdr.names) if f in hdr.dtype.names]
    keep = list(dict.fromkeys(keep))
    seen = [f for f in dict.fromkeys(transient) if f in hdr.dtype.names and f not in keep]
    for f in keep + seen:
        _check_field(hdr, f)
    dtype = np.dtype([(f, hdr.dtype[f]) for f in keep])
    n = hdr.n
    flat = {f: _flat(hdr.dtype[f]) for f in keep}
    flat.update({f: hdr.dtype[f] for f in seen})
    view_dt = np.dtype({"names": keep + seen, "formats": [flat[f] for f in keep + seen],
                        "offsets": [hdr.dtype.fields[f][1] for f in keep + seen], "itemsize": hdr.dtype.itemsize})
    tmp = {f: np.empty((n,) + flat[f].shape, flat[f].base) for f in keep}
    if n and (keep or (seen and on_chunk is not None)):
        row = hdr.dtype.itemsize
        rows_per = min(n, max(1, chunk_bytes // row))
        buf = np.empty(rows_per, dtype=view_dt)
        raw = buf.view(np.uint8)  # the buffer's bytes, rows of the file's layout
        with open(path, "rb", buffering=0) as fh:
            fh.seek(hdr.offset)
            for lo in range(0, n, rows_per):
                hi = min(n, lo + rows_per)
                want = (hi - lo) * row
                got = 0
                while got < want:
                    k = fh.readinto(raw[got:want])
                    if not k:
                        raise CryodiagInputError(f"truncated .cs file: rows end at row {lo + got // row + 1:,} of "
                                                 f"{n:,} (the file shrank while it was read)", path)
                    got += k
                chunk = buf[: hi - lo]
                for f in keep:
                    tmp[f][lo:hi] = chunk[f]
                if on_chunk is not None:
                    on_chunk(chunk, lo, hi, tmp)
    out = {}
    for f in keep:
        dt = hdr.dtype[f]
        v = tmp.pop(f)
        if flat[f] is not dt:
            v = v.view(dt.base).reshape((n,) + dt.shape)
        out[f] = _native(v)
    return FieldTable(out, dtype, n)


def read_cs_array(path, *, mmap: bool | None = None) -> np.ndarray:
    """The raw record array (memory-mapped when ``mmap``; the header checked first)."""
    path = os.fspath(path)
    fmt = cs_format(path)
    if fmt == "csdat":
        try:
            from cryosparc.dataset import Dataset  # type: ignore
        except ImportError:
            raise CryodiagInputError(
                "compressed .cs format (\\x95CSDAT) needs cryosparc-tools: pip install cryosparc-tools", path
            ) from None
        try:
            ds = Dataset.load(path)
            arr = ds.to_records(fixed=True)
        except Exception as err:  # noqa: BLE001 - cryosparc-tools raises many kinds on a bad file
            raise CryodiagInputError(f"cryosparc-tools could not read the file: {_short(err)}", path) from None
        return arr
    hdr = read_cs_header(path)
    try:
        return np.memmap(path, dtype=hdr.dtype, mode="r", offset=hdr.offset, shape=(hdr.n,)) if mmap and hdr.n else \
            np.fromfile(path, dtype=hdr.dtype, count=hdr.n, offset=hdr.offset)
    except (ValueError, OSError, MemoryError) as err:
        raise CryodiagInputError(f"cannot read the .cs rows: {_short(err)}", path) from None


def _decode_strict(values: np.ndarray, field: str, path, rows: np.ndarray | None = None) -> np.ndarray:
    """Decode distinct byte strings (UTF-8); one that is not UTF-8 text is refused naming its row."""
    if values.dtype.kind == "U":
        return values.astype(object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        try:
            out[i] = bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            row = int(rows[i]) if rows is not None else i
            raise CryodiagInputError(f"field {field} of row {row + 1} is not UTF-8 text", path) from None
    return out


def _strip_cs_path(s: np.ndarray) -> np.ndarray:
    # cryoSPARC marks imported absolute paths with a leading '>'
    return np.array([p[1:] if p.startswith(">") else p for p in s], dtype=object)


def _runs_of(uid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal values of an integer column (picks are stored micrograph by micrograph):
    ``(run -> code, run lengths, first row of each code)``, codes numbered in order of first
    appearance (as ``pd.factorize(uid)``). Only the runs are hashed, never the rows: a uid that
    comes back in several runs (files joined or sorted by another field) gets its one code."""
    n = len(uid)
    if n == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(uid[1:] != uid[:-1])
    starts += 1
    starts = np.concatenate([np.zeros(1, dtype=starts.dtype), starts])
    lengths = np.diff(starts, append=n)
    run_codes, uniq = pd.factorize(uid[starts], use_na_sentinel=False)
    first_run = np.empty(len(uniq), dtype=np.int64)
    first_run[run_codes[::-1]] = np.arange(len(run_codes) - 1, -1, -1)  # the last write wins: the first run
    return run_codes.astype(np.int32), lengths, starts[first_run]


def _codes_of(uid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row -> code, first row of each code) of an integer column (:func:`_runs_of`, expanded)."""
    run_codes, lengths, first = _runs_of(uid)
    return np.repeat(run_codes, lengths), first


def _expand_categorical(cat: pd.Categorical, lengths: np.ndarray) -> pd.Categorical:
    """A categorical of runs repeated to one value per row (the codes repeated, categories kept)."""
    return pd.Categorical.from_codes(np.repeat(cat.codes, lengths), dtype=cat.dtype, validate=False)


def _decode_paths(values, uid: np.ndarray | None, field: str, path) -> tuple[np.ndarray, np.ndarray]:
    """Decode a path column once per distinct value: (row -> code, decoded distinct paths).
    With ``uid`` the distinct micrographs are found on the integers and one path per uid is
    decoded."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int32), np.array([], dtype=object)
    if uid is not None:
        codes, first = _codes_of(np.asarray(uid))
        dec = _strip_cs_path(_decode_strict(np.asarray(values[first]), field, path, first))
        return codes, dec
    uniq, inv = np.unique(np.asarray(values), return_inverse=True)
    return inv.ravel().astype(np.int32), _strip_cs_path(_decode_strict(uniq, field, path))


def _categorical(codes, uniques):
    ucodes, uu = pd.factorize(np.asarray(uniques, dtype=object), use_na_sentinel=False, sort=True)
    return pd.Categorical.from_codes(ucodes[codes], categories=pd.Index(np.asarray(uu, dtype=object), dtype=object))


def read_cs(path, *, fields: Sequence[str] | None = None, flip_y: bool = False, mmap: bool | None = None,
            keep_other_fields: bool = True, require_coordinates: bool = False) -> pd.DataFrame:
    """Read a ``.cs`` file into the canonical table.

    ``fields`` limits which source fields are read (only those are touched in the file); by
    default all scalar fields are kept (``keep_other_fields``) under their own names
    (``alignments3D/error`` ...). ``cs.PICK_FIELDS`` are what a pick view needs. A file
    without ``location/*`` is still a table (``attrs["has_locations"] = False``);
    ``require_coordinates=True`` raises instead. ``mmap`` is accepted for compatibility (fields
    are always read in chunks, :func:`read_cs_fields`).
    """
    path = os.fspath(path)
    fmt = cs_format(path)
    if fmt == "numpy":
        hdr = read_cs_header(path)
        names = hdr.names
    else:
        hdr = None
        names = None
    sel = list(names) if fields is None and names is not None else (None if fields is None else list(fields))
    lazy_path = None
    if sel is not None and names is not None and "location/micrograph_uid" in names and "location/micrograph_path" in sel:
        # one path per micrograph is read and decoded, at the first row of each uid
        sel = [f for f in sel if f != "location/micrograph_path"] + ["location/micrograph_uid"]
        _check_field(hdr, "location/micrograph_path")
        lazy_path = np.memmap(path, dtype=hdr.dtype, mode="r", offset=hdr.offset, shape=(hdr.n,)) if hdr.n else \
            np.zeros(0, dtype=hdr.dtype)
    fxn, fyn, shn = "location/center_x_frac", "location/center_y_frac", "location/micrograph_shape"
    derived = None
    if (hdr is not None and sel is not None and {fxn, fyn, shn} <= set(sel)
            and all(hdr.dtype[f].base.kind == "f" and not hdr.dtype[f].shape for f in (fxn, fyn))):
        # pixel coordinates computed while each chunk of rows is in cache: the fractions are not copied out
        _check_field(hdr, shn)
        # per row: x, y and whether it is dropped (micrograph of shape 0, or a fraction outside [0, 1]);
        # per file: how many of each, and the largest shape value
        derived = {"x": np.empty(hdr.n), "y": np.empty(hdr.n), "drop": np.empty(hdr.n, dtype=bool),
                   "zero": 0, "off": 0, "shape_max": 0.0}
        sel = [f for f in sel if f not in (fxn, fyn)]
        shape_base = hdr.dtype[shn].base
        frac_dt = {f: hdr.dtype[f].base.newbyteorder("=") for f in (fxn, fyn)}
        scratch: dict = {}

        def on_chunk(records, lo, hi, arrays):
            # the strided fields are copied once into contiguous chunk buffers (in cache), and the
            # arithmetic runs on those: 2x faster than ufuncs casting straight from the records
            m = hi - lo
            if scratch.get("m", 0) < m:
                scratch.update(m=m, fx=np.empty(m, frac_dt[fxn]), fy=np.empty(m, frac_dt[fyn]), nx=np.empty(m),
                               ny=np.empty(m), t=np.empty(m, dtype=bool), z=np.empty(m, dtype=bool))
            fx, fy, fnx, fny = (scratch[k][:m] for k in ("fx", "fy", "nx", "ny"))
            t, z = scratch["t"][:m], scratch["z"][:m]
            fx[:] = records[fxn]
            fy[:] = records[fyn]
            sh = arrays[shn][lo:hi].view(shape_base).reshape(m, 2)
            fny[:] = sh[:, 0]  # exact: shapes are integers below 2**20 (checked after)
            fnx[:] = sh[:, 1]
            x, y, drop = derived["x"][lo:hi], derived["y"][lo:hi], derived["drop"][lo:hi]
            x[:] = fx
            y[:] = fy
            np.multiply(x, fnx, out=x)
            np.multiply(y, fny, out=y)
            derived["shape_max"] = max(derived["shape_max"], float(fny.max()), float(fnx.max()))
            np.less_equal(fny, 0, out=z)  # a micrograph of shape 0: ny or nx 0 (or negative in a signed field)
            np.less_equal(fnx, 0, out=t)
            np.logical_or(z, t, out=z)
            ok = (fx >= 0) & (fx <= 1) & (fy >= 0) & (fy <= 1)  # NaN fails the test too
            np.logical_not(ok, out=drop)  # fractions off the micrograph, for now
            nz = int(np.count_nonzero(z))
            if np.count_nonzero(drop):
                np.logical_not(z, out=t)
                np.logical_and(t, drop, out=t)
                derived["off"] += int(np.count_nonzero(t))
            if nz:
                np.logical_or(drop, z, out=drop)
                derived["zero"] += nz

        arr = read_cs_fields(path, sel, header=hdr, transient=(fxn, fyn), on_chunk=on_chunk)
    else:
        arr = read_cs_fields(path, sel, header=hdr)
    if names is None:
        names = list(arr.dtype.names or [])
    if not any(n == "uid" or n.startswith(_KNOWN_PREFIXES) for n in names):
        raise CryodiagInputError(
            "unknown .cs schema: none of the cryoSPARC fields (uid, location/*, blob/*, ctf/*, "
            f"alignments*/ ...) is present; fields are {', '.join(names[:8])}"[:400], path
        )
    want = set(names if fields is None else [f for f in fields if f in names])
    have = lambda f: f in want and (f in arr or (f == "location/micrograph_path" and lazy_path is not None)  # noqa: E731
                                    or (f in (fxn, fyn) and derived is not None))
    n = len(arr)
    cols: dict[str, np.ndarray] = {}
    used: set[str] = set()
    notes: list[str] = []

    def col(f):
        used.add(f)
        return arr[f]

    has_loc = have("location/center_x_frac") and have("location/center_y_frac") and have("location/micrograph_shape")
    drop = None
    if has_loc:
        shape = col("location/micrograph_shape").reshape(n, 2)
        if n and ((derived["shape_max"] if derived is not None else shape.max()) >= 2**20):
            i = int(np.argmax(shape.max(axis=1)))
            raise CryodiagInputError(f"location/micrograph_shape {shape[i].tolist()} of row {i + 1} is not a "
                                     "micrograph's size", path)
        ny = shape[:, 0]  # the file's integers, no copy
        nx = shape[:, 1]
        if derived is not None:  # computed chunk by chunk (on_chunk above)
            used.update((fxn, fyn))
            x, y = derived["x"], derived["y"]
            n_zero, n_off = derived["zero"], derived["off"]
            drop = derived.pop("drop") if n_zero or n_off else None
        else:
            fx = col("location/center_x_frac")
            fy = col("location/center_y_frac")
            x = np.multiply(fx, nx, dtype=np.float64)
            y = np.multiply(fy, ny, dtype=np.float64)
            bad_frac = ~((fx >= 0) & (fx <= 1) & (fy >= 0) & (fy <= 1))  # NaN fails the test too
            zero = (ny == 0) | (nx == 0) if ny.dtype.kind == "u" else (ny <= 0) | (nx <= 0)
            off = ~zero & bad_frac
            n_zero, n_off = int(zero.sum()), int(off.sum())
            drop = zero | off if n_zero or n_off else None
        if flip_y:
            y = np.subtract(ny, y, out=y)
        if n_zero:
            notes.append(f"{n_zero} of {n} picks are on micrographs of shape [0, 0] (position unknown): left out")
        if n_off:
            notes.append(f"{n_off} of {n} picks have fractions that are NaN, ±inf or outside [0, 1] (off the "
                         "micrograph): left out")
        if drop is not None and n_zero + n_off == n:
            raise CryodiagInputError("no pick has a position on its micrograph: " + "; ".join(notes), path)
        cols["x_px"] = x
        cols["y_px"] = y
        cols["micrograph_ny"] = ny
        cols["micrograph_nx"] = nx
    mic_uid = col("location/micrograph_uid") if have("location/micrograph_uid") or (
        "location/micrograph_uid" in arr and have("location/micrograph_path")) else None
    if have("location/micrograph_path") or mic_uid is not None:
        lengths = None
        if mic_uid is not None:  # one path per micrograph uid, decoded at the first row of its first run
            codes, lengths, first = _runs_of(np.asarray(mic_uid))
        if have("location/micrograph_path"):
            used.add("location/micrograph_path")
            values = lazy_path["location/micrograph_path"] if lazy_path is not None else arr["location/micrograph_path"]
            if mic_uid is not None:
                uniq = _strip_cs_path(_decode_strict(np.asarray(values[first]), "location/micrograph_path", path,
                                                     first)) if n else np.array([], dtype=object)
            else:
                codes, uniq = _decode_paths(values, None, "location/micrograph_path", path)
        else:
            uniq = np.array([], dtype=object)
            if mic_uid is None:
                codes = np.zeros(n, dtype=np.int32)
        if n and (len(uniq) == 0 or all(u == "" for u in uniq)) and mic_uid is not None:
            uniq = np.array([str(u) for u in np.asarray(mic_uid[first]).tolist()], dtype=object)  # uids as names
        name_cat, key_cat = categorical_names_and_keys(codes=codes, uniques=uniq)
        if lengths is not None:  # runs -> rows
            name_cat, key_cat = _expand_categorical(name_cat, lengths), _expand_categorical(key_cat, lengths)
        cols["micrograph_name"], cols["micrograph"] = name_cat, key_cat
    if mic_uid is not None and "location/micrograph_uid" in want:
        cols["micrograph_uid"] = mic_uid
    if have("location/micrograph_psize_A"):
        cols["pixel_size_A"] = col("location/micrograph_psize_A")
    elif have("blob/psize_A"):
        cols["pixel_size_A"] = col("blob/psize_A")
    if have("pick_stats/ncc_score"):
        cols["ncc"] = col("pick_stats/ncc_score")
    if have("pick_stats/power"):
        cols["power"] = col("pick_stats/power")
    if have("ctf/df1_A"):
        cols["defocus_u_A"] = col("ctf/df1_A")
    if have("ctf/df2_A"):
        cols["defocus_v_A"] = col("ctf/df2_A")
    if "defocus_u_A" in cols:
        u = cols["defocus_u_A"].astype(np.float64)
        cols["defocus_A"] = (u + cols.get("defocus_v_A", u).astype(np.float64)) / 2
    if have("ctf/df_angle_rad"):
        cols["defocus_angle_deg"] = np.degrees(col("ctf/df_angle_rad").astype(np.float64))
    for src, dst in (("ctf/accel_kv", "voltage_kV"), ("ctf/cs_mm", "cs_mm"), ("ctf/amp_contrast", "amplitude_contrast")):
        if have(src):
            cols[dst] = col(src)
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
        sh, ps = f"{al}/shift", f"{al}/psize_A"
        if have(sh):
            sv = col(sh).reshape(n, 2).astype(np.float64)
            p = col(ps).astype(np.float64) if have(ps) else np.asarray(cols.get("pixel_size_A", np.full(n, np.nan)),
                                                                        dtype=np.float64)
            cols["shift_x_A"] = sv[:, 0] * p
            cols["shift_y_A"] = sv[:, 1] * p
        for src, dst in (("class", "class"), ("class_posterior", "class_posterior"), ("class_ess", "class_ess"),
                         ("split", "split")):
            if have(f"{al}/{src}"):
                cols[dst] = col(f"{al}/{src}")
    if have("alignments3D_multi/class_posterior"):
        post = col("alignments3D_multi/class_posterior").reshape(n, -1).astype(np.float64)
        for k in range(post.shape[1]):
            cols[f"posterior_class_{k}"] = post[:, k]
    else:
        ks = sorted(int(f[len("alignments_class_"):].split("/")[0]) for f in want
                    if f.startswith("alignments_class_") and f.endswith("/class_posterior")
                    and f[len("alignments_class_"):].split("/")[0].isdigit())
        for k in ks:
            cols[f"posterior_class_{k}"] = col(f"alignments_class_{k}/class_posterior").astype(np.float64)
    if have("blob/path"):
        cols["image_path"] = _categorical(*_decode_paths(arr["blob/path"], None, "blob/path", path))
        used.add("blob/path")
    if have("blob/idx"):
        cols["image_index"] = col("blob/idx").astype(np.int64)
    if keep_other_fields:
        for f in names:
            if f in used or f not in want or f in cols or f not in arr:
                continue
            dt = arr.dtype[f]
            if dt.shape == () and dt.kind in "iufb":
                cols[f] = arr[f]
            elif dt.shape and dt.kind in "iuf" and int(np.prod(dt.shape)) <= 4:
                v = arr[f].reshape(n, -1)
                for j in range(v.shape[1]):
                    cols[f"{f}[{j}]"] = v[:, j]
    cols["source_row"] = np.arange(n, dtype=np.int64)
    table = pd.DataFrame(cols, copy=False)
    if drop is not None:
        table = table.loc[~drop].reset_index(drop=True)
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
        "notes": notes,
        "note": "; ".join(notes) if notes else (
            "" if has_loc else "no location/* fields: a particle table with nothing to place on micrographs"),
    }
    return table


# --------------------------------------------------------------------------- writing


def _rotvec_from_euler(rot, tilt, psi) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("ZYZ", np.column_stack([rot, tilt, psi]), degrees=True).as_rotvec()


def _update_from_table(out: np.ndarray, table: pd.DataFrame, flip_y: bool, rows=None) -> None:
    """Write canonical columns back into cryoSPARC fields that exist in ``out`` (the records of
    ``rows`` of ``table``)."""
    names = set(out.dtype.names)
    tc = table.columns
    n = len(out)
    r = slice(None) if rows is None else rows

    def col(c, dtype=None):
        v = table[c].to_numpy()[r]
        return v if dtype is None else v.astype(dtype)

    def put(field, values):
        if field in names:
            out[field] = np.asarray(values).astype(out.dtype[field].base, copy=False).reshape(out[field].shape)

    if "x_px" in tc and "location/micrograph_shape" in names:
        shape = np.asarray(out["location/micrograph_shape"]).reshape(n, 2).astype(np.float64)
        ny, nx = shape[:, 0], shape[:, 1]
        if "micrograph_ny" in tc:
            ny = col("micrograph_ny", np.float64)
            nx = col("micrograph_nx", np.float64)
            out["location/micrograph_shape"] = np.column_stack([ny, nx]).astype(out.dtype["location/micrograph_shape"].base)
        y = col("y_px", np.float64)
        if flip_y:
            y = ny - y
        with np.errstate(divide="ignore", invalid="ignore"):
            put("location/center_x_frac", col("x_px", np.float64) / nx)
            put("location/center_y_frac", y / ny)
    for c, f in (("ncc", "pick_stats/ncc_score"), ("power", "pick_stats/power"), ("defocus_u_A", "ctf/df1_A"),
                 ("defocus_v_A", "ctf/df2_A"), ("voltage_kV", "ctf/accel_kv"), ("cs_mm", "ctf/cs_mm"),
                 ("amplitude_contrast", "ctf/amp_contrast")):
        if c in tc:
            put(f, col(c))
    if "defocus_angle_deg" in tc:
        put("ctf/df_angle_rad", np.radians(col("defocus_angle_deg", np.float64)))


class MicrographFields:
    """What a new ``.cs`` says about each pick's micrograph, per distinct micrograph: ``codes``
    (row of the table -> micrograph), ``paths`` (``location/micrograph_path``), ``uids``
    (``location/micrograph_uid``), ``shapes`` (``[ny, nx]``, 0 when unknown) and ``psize_A``
    (NaN when unknown)."""

    def __init__(self, codes, paths, uids, shapes, psize_A):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.paths = [str(p) for p in paths]
        self.uids = np.asarray(uids, dtype=np.uint64)
        self.shapes = np.asarray(shapes, dtype=np.int64).reshape(-1, 2)
        self.psize_A = np.asarray(psize_A, dtype=np.float64)


def _micrograph_fields_of_table(table: pd.DataFrame, micrograph_shape) -> MicrographFields:
    n = len(table)
    names = table.get("micrograph_name", table.get("micrograph"))
    if names is None:
        names = pd.Series([""] * n)
    cat = pd.Categorical(names.astype(str) if not isinstance(names.dtype, pd.CategoricalDtype) else names)
    k = len(cat.categories)
    shapes = np.zeros((k, 2), dtype=np.int64)
    if "micrograph_ny" in table.columns:
        ny = table["micrograph_ny"].to_numpy()
        nx = table["micrograph_nx"].to_numpy()
        shapes[cat.codes, 0] = ny
        shapes[cat.codes, 1] = nx
    elif micrograph_shape is not None:
        shapes[:] = np.asarray(micrograph_shape, dtype=np.int64)
    psize = np.full(k, np.nan)
    if "pixel_size_A" in table.columns:
        psize[cat.codes] = table["pixel_size_A"].to_numpy(dtype=np.float64)
    return MicrographFields(cat.codes, list(cat.categories), np.arange(1, k + 1), shapes, psize)


def _new_fields(table: pd.DataFrame, mic: MicrographFields | None, micrograph_shape) -> tuple[list, MicrographFields | None]:
    tc = table.columns
    fields: list[tuple] = [("uid", "<u8")]
    if "x_px" in tc and "y_px" in tc:
        if mic is None:
            mic = _micrograph_fields_of_table(table, micrograph_shape)
        width = max([1] + [len(p.encode()) for p in mic.paths])
        fields += [("location/micrograph_uid", "<u8"), ("location/exp_group_id", "<u4"),
                   ("location/micrograph_path", f"S{width}"), ("location/micrograph_shape", "<u4", (2,)),
                   ("location/center_x_frac", "<f4"), ("location/center_y_frac", "<f4"),
                   ("location/min_dist_A", "<f4"), ("location/micrograph_psize_A", "<f4")]
    for c, f in (("ncc", "pick_stats/ncc_score"), ("power", "pick_stats/power"), ("defocus_u_A", "ctf/df1_A"),
                 ("defocus_v_A", "ctf/df2_A"), ("voltage_kV", "ctf/accel_kv"), ("cs_mm", "ctf/cs_mm"),
                 ("amplitude_contrast", "ctf/amp_contrast")):
        if c in tc:
            fields.append((f, "<f4"))
    if "defocus_angle_deg" in tc:
        fields.append(("ctf/df_angle_rad", "<f4"))
    if "image_path" in tc:
        width = max([1] + [len(str(p).encode()) for p in pd.unique(table["image_path"].astype(str))])
        fields += [("blob/path", f"S{width}"), ("blob/idx", "<u4")]
        if "pixel_size_A" in tc:
            fields.append(("blob/psize_A", "<f4"))
    if {"rot_deg", "tilt_deg", "psi_deg"} <= set(tc):
        fields.append(("alignments3D/pose", "<f4", (3,)))
    if "class" in tc:
        fields.append(("alignments3D/class", "<u4"))
    return fields, mic


def _fill_new(out: np.ndarray, table: pd.DataFrame, rows: np.ndarray, mic: MicrographFields | None,
              rng: np.random.Generator, path) -> None:
    """Fill the records ``out`` of ``rows`` of ``table`` (see :func:`write_cs`)."""
    tc = table.columns
    names = out.dtype.names
    n = len(out)
    out["uid"] = rng.integers(1, 2**63, size=n, dtype=np.uint64)

    def col(c, dtype=np.float64):
        return table[c].to_numpy()[rows].astype(dtype, copy=False)

    if "location/center_x_frac" in names:
        code = mic.codes[rows]
        shape = mic.shapes[code]
        out["location/micrograph_uid"] = mic.uids[code]
        paths = np.array([p.encode() for p in mic.paths], dtype=out.dtype["location/micrograph_path"])
        out["location/micrograph_path"] = paths[code]
        out["location/micrograph_shape"] = shape
        out["location/center_x_frac"] = col("x_px") / shape[:, 1]
        out["location/center_y_frac"] = col("y_px") / shape[:, 0]
        ps = mic.psize_A[code]
        if "pixel_size_A" in tc:
            ps = np.where(np.isfinite(ps), ps, col("pixel_size_A"))
        out["location/micrograph_psize_A"] = np.where(np.isfinite(ps), ps, 0.0)
    for c, f in (("ncc", "pick_stats/ncc_score"), ("power", "pick_stats/power"), ("defocus_u_A", "ctf/df1_A"),
                 ("defocus_v_A", "ctf/df2_A"), ("voltage_kV", "ctf/accel_kv"), ("cs_mm", "ctf/cs_mm"),
                 ("amplitude_contrast", "ctf/amp_contrast")):
        if f in names:
            out[f] = col(c)
    if "ctf/df_angle_rad" in names:
        out["ctf/df_angle_rad"] = np.radians(col("defocus_angle_deg"))
    if "blob/path" in names:
        out["blob/path"] = np.char.encode(table["image_path"].astype(str).to_numpy()[rows].astype(str))
        if "image_index" in tc:
            out["blob/idx"] = col("image_index", np.int64).astype(np.uint32)
        if "blob/psize_A" in names:
            out["blob/psize_A"] = col("pixel_size_A")
    if "alignments3D/pose" in names:
        out["alignments3D/pose"] = _rotvec_from_euler(col("rot_deg"), col("tilt_deg"), col("psi_deg")) if n else \
            np.zeros((0, 3))
    if "alignments3D/class" in names:
        out["alignments3D/class"] = col("class", np.int64)


def check_cs_shapes(table: pd.DataFrame, rows, micrographs: MicrographFields | None, micrograph_shape, path) -> None:
    """Refuse (before anything is written) new pick records whose micrograph shape is unknown."""
    if not ("x_px" in table.columns and "y_px" in table.columns) or not len(rows):
        return
    mic = micrographs if micrographs is not None else _micrograph_fields_of_table(table, micrograph_shape)
    code = mic.codes[np.asarray(rows)]
    bad = (mic.shapes[code] <= 0).any(axis=1)
    if bad.any():
        name = mic.paths[code[int(np.argmax(bad))]]
        raise CryodiagInputError(
            "writing picks to .cs needs each micrograph's shape (location/micrograph_shape = [ny, nx]); "
            f"unknown for {int(bad.sum())} picks (e.g. on {name!r}): open the micrographs or give "
            "micrograph_shape=(ny, nx)", path)


def write_cs(path, table: pd.DataFrame, source=None, *, overwrite: bool = False, protect: Iterable = (),
             micrograph_shape=None, rows=None, micrographs: MicrographFields | None = None,
             chunk_rows: int = 1_000_000) -> Path:
    """Write a table as a NumPy-format ``.cs`` (atomically; never over the source).

    When the table came from a ``.cs`` (``source`` or ``table.attrs["source"]``), the rows named
    by ``source_row`` are taken from it with all their other fields (micrograph uids and paths
    included), and the canonical columns (locations from ``x_px``/``y_px`` with the table's
    ``flip_y``, scores, CTF) are written back. Otherwise new records are built in cryoSPARC's
    pick schema (``uid``, ``location/*``, ``pick_stats/*``, ``ctf/*`` ...): ``micrographs``
    (:class:`MicrographFields`) gives each micrograph's path, uid, shape and pixel size; without
    it they come from the table (``micrograph_name``, ``micrograph_ny/nx`` or
    ``micrograph_shape=(ny, nx)``). ``rows`` (positions) writes only those rows. Records are
    written ``chunk_rows`` at a time.
    """
    src = source
    if src is None and table.attrs.get("format") == "cs":
        src = table.attrs.get("source")
    protect = list(protect) + [p for p in (src, table.attrs.get("source")) if p]
    rows = np.arange(len(table)) if rows is None else np.asarray(rows, dtype=np.int64)
    n = len(rows)
    if src is not None:
        base = read_cs_array(src, mmap=True)
        if "source_row" not in table.columns:
            raise CryodiagInputError("table has no source_row column to select rows of the source .cs", src)
        src_rows = table["source_row"].to_numpy(dtype=np.int64)[rows]
        if n and (src_rows.min() < 0 or src_rows.max() >= len(base)):
            raise CryodiagInputError(f"source_row values out of range for the source .cs ({len(base)} rows)", src)
        dtype = base.dtype
        flip = bool(table.attrs.get("flip_y", False))

        def chunk(lo, hi):
            out = np.array(base[src_rows[lo:hi]])
            _update_from_table(out, table, flip, rows[lo:hi])
            return out
    else:
        fields, mic = _new_fields(table, micrographs, micrograph_shape)
        dtype = np.dtype(fields)
        rng = np.random.default_rng()

        def chunk(lo, hi):
            out = np.zeros(hi - lo, dtype=dtype)
            _fill_new(out, table, rows[lo:hi], mic, rng, path)
            return out
        check_cs_shapes(table, rows, micrographs, micrograph_shape, path)

    def _write(tmp: Path):
        from numpy.lib import format as npf

        header = {"descr": npf.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
        with open(tmp, "wb") as f:
            try:
                npf.write_array_header_1_0(f, header)
            except ValueError:  # a header over 64 KiB
                npf.write_array_header_2_0(f, header)
            for lo in range(0, n, chunk_rows):
                f.write(chunk(lo, min(n, lo + chunk_rows)).tobytes())

    return atomic_write(path, _write, overwrite=overwrite, protect=protect)
