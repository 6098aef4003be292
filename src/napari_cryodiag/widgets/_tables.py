"""Tables that are open in a viewer without being layers.

A CTF table (RELION ``micrographs_ctf.star``), a particle set without pick coordinates (a
cryoSPARC refinement ``.cs``), a ``model.star`` or a ``postprocess.star`` has nothing to draw on a
micrograph: napari's File > Open reads it into the viewer's :class:`OpenTables` (no empty Points
layer), says so in a notification, and the dock widgets offer it in their choosers (CTF tables to
Inspect Picks' calibration, particle sets to Classes and Orientations, model.star to Classes and
Noise model, postprocess.star to Map validation). Pick sets are layers; :func:`table_choices`
offers both.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from psygnal import Signal

from ._layers import is_picks, meta

__all__ = ["OpenTable", "OpenTables", "tables_of", "table_choices", "refined_poses", "open_table_file", "KINDS"]

#: what an open table is
KINDS = ("ctf", "particles", "postprocess", "relion_model", "picks")

_REGISTRIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass(eq=False)
class OpenTable:
    """A table open in the viewer: ``kind`` (:data:`KINDS`), its file, the canonical table
    (``table``) and, for postprocess/model files, their blocks (``data``)."""

    name: str
    kind: str
    path: str | None = None
    table: pd.DataFrame | None = None
    data: dict = field(default_factory=dict)
    layer: object = None  #: the picks layer, for pick sets

    @property
    def label(self) -> str:
        n = "" if self.table is None else f", {len(self.table):,} rows"
        what = {"ctf": "CTF table", "particles": "particles", "postprocess": "postprocess",
                "relion_model": "model.star", "picks": "picks layer"}.get(self.kind, self.kind)
        return f"{self.name} ({what}{n})"

    @property
    def images_box(self) -> int | None:
        """Box (px) of the particle images held with the table (``data["images"]``, as the sample
        data give them), or None."""
        images = self.data.get("images") if self.data else None
        return int(np.shape(images)[-1]) if images is not None and np.ndim(images) == 3 else None

    def __repr__(self) -> str:
        return f"OpenTable({self.label})"


class OpenTables:
    """The tables open in one viewer; ``changed`` is emitted when one is added or removed."""

    changed = Signal()

    def __init__(self):
        self._items: list[OpenTable] = []

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: OpenTable) -> OpenTable:
        """Add (or replace the table of the same file and kind)."""
        for i, old in enumerate(self._items):
            if item.path and old.path == item.path and old.kind == item.kind:
                self._items[i] = item
                break
        else:
            self._items.append(item)
        self.changed.emit()
        return item

    def remove(self, item: OpenTable) -> None:
        if item in self._items:
            self._items.remove(item)
            self.changed.emit()

    def of_kind(self, *kinds: str) -> list[OpenTable]:
        return [t for t in self._items if t.kind in kinds]

    def find(self, path) -> OpenTable | None:
        p = str(Path(path))
        return next((t for t in self._items if t.path and str(Path(t.path)) == p), None)


def tables_of(viewer) -> OpenTables:
    """The viewer's open tables (made on first use)."""
    reg = _REGISTRIES.get(viewer)
    if reg is None:
        reg = OpenTables()
        _REGISTRIES[viewer] = reg
    return reg


_PICK_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _picks_as_tables(viewer) -> list[OpenTable]:
    """One :class:`OpenTable` per picks layer (the same object each time: choosers keep it)."""
    out = []
    for ly in viewer.layers:
        if is_picks(ly):
            item = _PICK_TABLES.get(ly)
            if item is None:
                item = _PICK_TABLES[ly] = OpenTable(name=ly.name, kind="picks", path=meta(ly).get("path"), layer=ly)
            item.name = ly.name
            item.table = meta(ly).get("table")
            out.append(item)
    return out


def refined_poses(table) -> bool:
    """``usable`` for the pose docks: rot/tilt not one pose for every particle (judged on the first
    100,000 rows: the choosers rank their choices at every layer change)."""
    from ..compute.particles.orientation_diagnostics import has_refined_poses

    return has_refined_poses(table, rows=100_000)


def table_choices(viewer, *kinds: str, with_picks: bool = False, needs=(), usable=None):
    """The ``choices`` callable of a magicgui chooser of open tables of ``kinds`` (and the pick
    layers' tables when ``with_picks``): a list of ``(label, OpenTable)``. Tables the dock can use
    come first: every column of ``needs`` (e.g. ``("class",)`` for class diagnostics) and, when
    given, ``usable(table)`` true (e.g. poses that are not all 0); among them opened particle sets
    before pick layers, so that the default choice is one the dock can use."""

    def ok(t) -> bool:
        return t.table is not None and set(needs) <= set(t.table.columns) and (usable is None or usable(t.table))

    def choices(_widget=None):
        items = list(tables_of(viewer).of_kind(*kinds)) if viewer is not None else []
        if with_picks and viewer is not None:
            items = _picks_as_tables(viewer) + items
        if needs or usable is not None:
            items.sort(key=lambda t: (0 if ok(t) else 1, 1 if t.kind == "picks" else 0))
        return [(t.label, t) for t in items]

    return choices


def open_table_file(viewer, path, kind: str = "particles") -> OpenTable:
    """Read the file ``path`` as a table of ``kind`` and add it to the viewer's open tables (a file
    picker of a dock does this, so that a file chosen there is offered like an opened one).

    ``particles``/``ctf``: the canonical table (``io.picks.read_table``); ``relion_model``: the read
    model (``data["model"]``); ``postprocess``: its blocks (``data``). Returns the open table
    (the one already open for that file and kind is replaced). Bad files raise
    :class:`~napari_cryodiag.errors.CryodiagInputError` naming the file.
    """
    import os

    from ..errors import CryodiagInputError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CryodiagInputError("file not found", path)
    name = Path(path).name
    if kind in ("particles", "ctf"):
        from ..io.picks import read_table

        item = OpenTable(name=name, kind=kind, path=path, table=read_table(path))
    elif kind == "relion_model":
        from ..io.relion_model import read_model_star

        item = OpenTable(name=name, kind=kind, path=path, data={"model": read_model_star(path)})
    elif kind == "postprocess":
        from ..io.star import read_postprocess

        item = OpenTable(name=name, kind=kind, path=path, data=read_postprocess(path))
    else:
        raise ValueError(f"unknown table kind {kind!r}; one of {KINDS}")
    return tables_of(viewer).add(item)
