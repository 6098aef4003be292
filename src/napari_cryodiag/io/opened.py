"""``open_path``: recognise what a path is (:mod:`.sniff`, a bounded look), then parse it once,
and return a small typed result that the napari reader maps to layers.

=========================  ====================================================================
result                     what it holds
=========================  ====================================================================
:class:`Micrograph`        one 2D MRC image (``image``: :class:`~.mrc.MapData` ``[y, x]``)
:class:`Map`               a 3D map (``map``: :class:`~.mrc.MapData` ``[z, y, x]``, voxel size, origin)
:class:`ImageStack`        an ``.mrcs`` stack (``stack``: :class:`~.mrc.MapData`; memory-mapped when big)
:class:`Micrographs`       a folder, glob or list of micrographs (``stack``: lazy
                           :class:`~.mrc.MicrographStack`, headers only read)
:class:`PickTable`         picks with coordinates (``table``: the canonical table)
:class:`ParticleTable`     a particle table without coordinates (``table``)
:class:`CtfTable`          micrographs with their CTF (``table``: ``micrograph``, ``defocus_*``)
:class:`PostProcess`       RELION ``postprocess.star`` (``general``, ``fsc``, ``guinier``)
:class:`RelionModel`       RELION ``*_model.star`` (``model``: :class:`~.relion_model.ModelStar`)
=========================  ====================================================================

Every result has ``kind``, ``path`` and ``notes`` (what was left out or read with care, to show
the user). Bad input is a :class:`~napari_cryodiag.errors.CryodiagInputError` naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from ..errors import CryodiagInputError
from .sniff import Sniffed, sniff

__all__ = ["open_path", "Micrograph", "Map", "ImageStack", "Micrographs", "PickTable", "ParticleTable", "CtfTable",
           "PostProcess", "RelionModel", "Opened", "STACK_MMAP_BYTES"]

#: stacks larger than this are memory-mapped instead of read
STACK_MMAP_BYTES = 512 * 1024 * 1024


@dataclass
class Opened:
    path: str
    notes: list[str] = field(default_factory=list)
    kind = ""


@dataclass
class Micrograph(Opened):
    image: object = None  #: MapData [y, x]
    kind = "micrograph"


@dataclass
class Map(Opened):
    map: object = None  #: MapData [z, y, x]
    kind = "map"


@dataclass
class ImageStack(Opened):
    stack: object = None  #: MapData (n, y, x)
    kind = "stack"


@dataclass
class Micrographs(Opened):
    stack: object = None  #: MicrographStack (lazy)
    kind = "micrographs"


@dataclass
class PickTable(Opened):
    table: pd.DataFrame = None
    kind = "picks"


@dataclass
class ParticleTable(Opened):
    table: pd.DataFrame = None
    kind = "particles"


@dataclass
class CtfTable(Opened):
    table: pd.DataFrame = None
    kind = "ctf"


@dataclass
class PostProcess(Opened):
    general: dict = field(default_factory=dict)
    fsc: pd.DataFrame = None
    guinier: pd.DataFrame = None
    kind = "postprocess"


@dataclass
class RelionModel(Opened):
    model: object = None  #: ModelStar
    kind = "model"


def _table_result(table: pd.DataFrame, path: str, sniffed_kind: str) -> Opened:
    from .picks import has_coordinates

    notes = list(table.attrs.get("notes", []) or [])
    located = has_coordinates(table) or (len(table) == 0 and bool(table.attrs.get("has_locations", False)))
    if located:
        return PickTable(path=path, notes=notes, table=table)
    if sniffed_kind == "ctf" or ("defocus_A" in table.columns and "micrograph" in table.columns
                                 and "image_path" not in table.columns and table.attrs.get("format") == "star"
                                 and table["micrograph"].nunique() == len(table)):
        return CtfTable(path=path, notes=notes, table=table)
    return ParticleTable(path=path, notes=notes, table=table)


def _open_mrc(s: Sniffed) -> Opened:
    from . import mrc

    p = s.paths[0]
    hdr = s.detail["header"]
    if s.kind == "micrograph":
        img = mrc.read_image(p)
        return Micrograph(path=p, notes=list(img.header.notes) if img.header else [], image=img)
    if s.kind == "stack":
        st = mrc.read_stack(p, mmap=hdr.nbytes > STACK_MMAP_BYTES)
        return ImageStack(path=p, notes=list(st.header.notes) if st.header else [], stack=st)
    m = mrc.read_map(p)
    return Map(path=p, notes=list(m.header.notes) if m.header else [], map=m)


def _open_star(s: Sniffed, opts: dict) -> Opened:
    from . import star

    p = s.paths[0]
    blocks = star.read_star_blocks(p)  # the one parse
    if s.kind == "postprocess" or (s.kind not in ("model",) and star.looks_like_postprocess(blocks)):
        pp = star.read_postprocess(p, blocks=blocks)
        return PostProcess(path=p, notes=[n for b in blocks for n in b.notes], general=pp["general"], fsc=pp["fsc"],
                           guinier=pp["guinier"])
    if s.kind == "model" or any(b.name == "model_general" for b in blocks):
        from .relion_model import read_model_star

        model = read_model_star(p, blocks=blocks)
        return RelionModel(path=p, notes=list(model.notes), model=model)
    table = star.star_table_from_blocks(blocks, p)
    return _table_result(table, p, s.kind)


def open_path(path_or_paths, *, flip_y: bool = False) -> Opened:
    """Open a file, folder, glob or list of files as cryodiag reads it (see the module
    docstring). Each file is parsed once; ``flip_y`` applies to ``.cs`` picks (``ny - y``)."""
    s = sniff(path_or_paths)
    label = os.fspath(path_or_paths) if not isinstance(path_or_paths, (list, tuple)) else s.paths[0]
    opts = {"flip_y": True} if flip_y else {}
    if s.kind == "micrographs":
        from . import mrc

        source = path_or_paths if not isinstance(path_or_paths, (list, tuple)) else list(s.paths)
        st = mrc.open_micrograph_stack(source)
        return Micrographs(path=label, notes=list(st.notes), stack=st)
    if s.format == "mrc":
        return _open_mrc(s)
    if s.kind == "tables":
        from .picks import read_table

        files = s.paths
        src = path_or_paths if not isinstance(path_or_paths, (list, tuple)) else files
        table = read_table(src, **({"flip_y": True} if flip_y and all(f.lower().endswith(".cs") for f in files) else {}))
        return _table_result(table, label, "tables")
    p = s.paths[0]
    if s.format == "star":
        return _open_star(s, opts)
    if s.format == "cs":
        from .cs import read_cs

        return _table_result(read_cs(p, **opts), p, s.kind)
    if s.format == "cbox":
        from .cbox import read_cbox

        return _table_result(read_cbox(p), p, s.kind)
    raise CryodiagInputError(f"cannot open a {s.kind}", p)  # pragma: no cover - sniff covers every kind
