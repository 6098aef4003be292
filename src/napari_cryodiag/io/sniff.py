"""What a path is, from a bounded look at it (a few KB of text, an MRC or ``.cs`` header).

:func:`sniff` never parses a table: it reads at most :data:`SNIFF_BYTES` of a STAR file (block
names and loop labels), only the header of an MRC (``io.mrc.read_header``) or NumPy ``.cs``
(``io.cs.read_cs_header``), and only the names in a folder or glob. :func:`napari_cryodiag.io.opened.open_path`
then parses the file once, with the reader its kind needs.

Kinds: ``"micrograph"``, ``"map"``, ``"stack"`` (MRC), ``"micrographs"`` (a folder, glob or list
of MRC files), ``"picks"`` (STAR/``.cs``/``.cbox`` with coordinates), ``"particles"`` (a table
without coordinates), ``"ctf"`` (a table of micrographs with their defocus),
``"coordinate_index"`` (RELION 4/5 ``autopick.star``), ``"postprocess"``, ``"model"``,
``"tables"`` (a folder, glob or list of table files).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CryodiagInputError
from .paths import TABLE_SUFFIXES

__all__ = ["Sniffed", "sniff", "SNIFF_BYTES", "MRC_SUFFIXES", "mrc_kind"]

#: bytes of a STAR file looked at (more only when a block's labels run past them, up to 1 MiB)
SNIFF_BYTES = 64 * 1024
MRC_SUFFIXES = (".mrc", ".mrcs", ".map", ".rec", ".st", ".ali")
_BLOCK = re.compile(rb"(?m)^[ \t]*data_(\S*)[ \t]*\r?$")
_LABEL = re.compile(rb"(?m)^[ \t]*_(\S+)")


@dataclass
class Sniffed:
    """What :func:`sniff` found: ``kind``, the ``paths`` it stands for, and what was seen on the
    way (``blocks``/``labels`` of a STAR, the MRC ``header``, the ``.cs`` ``header``)."""

    kind: str
    paths: list[str]
    format: str = ""  #: "mrc", "star", "cs", "cbox"
    detail: dict = field(default_factory=dict)


def _is_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def mrc_kind(hdr) -> str:
    """``"micrograph"``, ``"stack"`` or ``"map"``: :attr:`napari_cryodiag.io.mrc.MrcHeader.kind`
    (one section; ``.mrcs``, space group 0 or few sections for the image size; a volume, a cubic
    box whatever its space group) in the names of the typed results."""
    return {"image": "micrograph", "stack": "stack", "volume": "map"}[hdr.kind]


def _star_kind(path: str) -> Sniffed:
    size = os.path.getsize(path)
    n = SNIFF_BYTES
    with open(path, "rb") as f:
        head = f.read(n)
        # a loop header longer than the first look: look further (bounded)
        while len(head) == n and n < (1 << 20) and not re.search(rb"(?m)^[ \t]*[^_#\s\r\n]", head[head.rfind(b"loop_"):]
                                                                   if b"loop_" in head else head):
            n *= 4
            f.seek(0)
            head = f.read(n)
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    blocks = [m.group(1).decode(errors="replace") for m in _BLOCK.finditer(head)]
    labels = {m.group(1).split(b"#")[0].decode(errors="replace") for m in _LABEL.finditer(head)}
    detail = {"blocks": blocks, "labels": sorted(labels), "bytes_seen": min(size, len(head))}
    if not blocks:
        raise CryodiagInputError("not a STAR file: no 'data_' block", path)
    if "model_general" in blocks:
        return Sniffed("model", [path], "star", detail)
    if "fsc" in blocks and "general" in blocks:
        return Sniffed("postprocess", [path], "star", detail)
    if "rlnMicrographCoordinates" in labels and "rlnCoordinateX" not in labels:
        return Sniffed("coordinate_index", [path], "star", detail)
    if "rlnCoordinateX" in labels:
        return Sniffed("picks", [path], "star", detail)
    if "rlnImageName" in labels:
        return Sniffed("particles", [path], "star", detail)
    if "rlnMicrographName" in labels and ("rlnDefocusU" in labels or "rlnCtfImage" in labels):
        return Sniffed("ctf", [path], "star", detail)
    if "general" in blocks and size <= len(head):
        return Sniffed("postprocess", [path], "star", detail)  # read_postprocess says what is missing
    return Sniffed("particles", [path], "star", detail)


def _cs_kind(path: str) -> Sniffed:
    from .cs import cs_format, read_cs_header

    if cs_format(path) == "csdat":
        return Sniffed("particles", [path], "cs", {"compressed": True})
    hdr = read_cs_header(path)
    names = set(hdr.names)
    detail = {"header": hdr, "n_rows": hdr.n}
    if {"location/center_x_frac", "location/center_y_frac"} <= names:
        return Sniffed("picks", [path], "cs", detail)
    if "blob/path" in names or any(n.startswith(("alignments", "blob/")) for n in names):
        return Sniffed("particles", [path], "cs", detail)
    if any(n.startswith("ctf/") for n in names) and any(n.startswith(("micrograph_blob", "movie_blob", "exposure"))
                                                           for n in names):
        return Sniffed("ctf", [path], "cs", detail)
    return Sniffed("particles", [path], "cs", detail)


def _files_of(source) -> list[str]:
    if isinstance(source, (list, tuple)):
        return [os.fspath(p) for p in source]
    p = os.fspath(source)
    if os.path.isdir(p):
        return sorted(os.path.join(p, n) for n in os.listdir(p))
    return sorted(glob.glob(p))


def sniff(path_or_paths) -> Sniffed:
    """The kind of a file, folder, glob or list of files (see the module docstring); a path
    cryodiag does not read is a :class:`CryodiagInputError` that says what it reads."""
    if isinstance(path_or_paths, (list, tuple)) or os.path.isdir(os.fspath(path_or_paths)) or \
            _is_glob(os.fspath(path_or_paths)):
        label = os.fspath(path_or_paths) if not isinstance(path_or_paths, (list, tuple)) else (
            os.fspath(path_or_paths[0]) if path_or_paths else "")
        if isinstance(path_or_paths, (list, tuple)) and len(path_or_paths) == 1:
            return sniff(path_or_paths[0])
        files = [f for f in _files_of(path_or_paths) if os.path.isfile(f) or isinstance(path_or_paths, (list, tuple))]
        mrcs = [f for f in files if f.lower().endswith(MRC_SUFFIXES)]
        tables = [f for f in files if f.lower().endswith(TABLE_SUFFIXES)]
        if not files:
            raise CryodiagInputError("no files found", label)
        if isinstance(path_or_paths, (list, tuple)):
            if len(mrcs) == len(files):
                return Sniffed("micrographs", files, "mrc")
            if len(tables) == len(files):
                return Sniffed("tables", files, "table")
            raise CryodiagInputError("a list of files must be all MRC micrographs or all tables (.star, .cs, .cbox)",
                                     label)
        mics = [f for f in mrcs if f.lower().endswith(".mrc")]
        if mics:
            return Sniffed("micrographs", mics, "mrc", {"source": label})
        if tables:
            return Sniffed("tables", tables, "table", {"source": label})
        raise CryodiagInputError(f"no micrographs (.mrc) or tables ({', '.join(TABLE_SUFFIXES)}) found", label)
    p = os.fspath(path_or_paths)
    if not os.path.exists(p):
        raise CryodiagInputError("file not found", p)
    suffix = Path(p).suffix.lower()
    if suffix in MRC_SUFFIXES:
        from . import mrc

        hdr = mrc.read_header(p)
        return Sniffed(mrc_kind(hdr), [p], "mrc", {"header": hdr})
    if suffix == ".star":
        return _star_kind(p)
    if suffix == ".cs":
        return _cs_kind(p)
    if suffix == ".cbox":
        return Sniffed("picks", [p], "cbox")
    raise CryodiagInputError(
        f"not a file cryodiag reads: suffix '{suffix}' (tables: {', '.join(TABLE_SUFFIXES)}; images and maps: "
        f"{', '.join(MRC_SUFFIXES)})", p)
