"""Particle images named by a particle table: find the stack files, read only the rows asked for.

A particle table names each particle's image as ``image_path`` (the stack file, as written in the
table: RELION paths are relative to the project folder, cryoSPARC's may start with ``>``) and
``image_index`` (0-based index into that stack). Two readers, both memory-mapping the stacks
(:func:`napari_cryodiag.io.mrc.read_data`), so that only the images read are paged in:

- :func:`locate_particle_stacks` -> :class:`StackImages` (``get(image_path, index)``): stacks
  searched in ``search_dirs``, among ``stacks`` (files or folders), next to the table and in its
  two parent folders; missing stacks give ``(None, "no particle images: <why>")`` (the class
  averages then report the reason instead of an FRC).
- :class:`TableStacks` (``read(rows)``): the image of each table row (the noise model), from
  ``image_path`` resolved by :func:`resolve_image_path`, or from one ``stack`` indexed by
  ``image_index``; headers are checked first (indices in range, one square box).

Both provide what :mod:`napari_cryodiag.compute.particles` expects of an image source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from .mrc import read_data, read_header, read_stack

__all__ = ["StackImages", "TableStacks", "locate_particle_stacks", "resolve_image_path"]


def _strip_cs(path: str) -> str:
    return path[1:] if path.startswith(">") else path


@dataclass
class StackImages:
    """Particle images in stack files: ``files`` maps each ``image_path`` of the table to the file."""

    files: dict[str, Path] = field(default_factory=dict)
    pixel_size_A: float | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    array = None  #: (the image source protocol: no in-memory stack)

    def __getstate__(self):
        """Pickled (sent to dask workers) without the open memory maps: paths travel, and each
        worker maps the stacks itself."""
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def box(self) -> int:
        first = next(iter(self.files.values()))
        return int(self._stack(first).shape[-1])

    def _stack(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            st = read_stack(path, mmap=True)
            data = st.data if st.data.ndim == 3 else st.data[None]
            self._cache[path] = data
            if self.pixel_size_A is None and st.pixel_size_A:
                self.pixel_size_A = float(st.pixel_size_A)
        return self._cache[path]

    def get(self, image_path: str | None, index: np.ndarray) -> np.ndarray:
        """Images ``index`` of the stack of ``image_path`` (float32, in the order of ``index``)."""
        data = self._stack(self.files[str(image_path)])
        if index.size and (index.min() < 0 or index.max() >= data.shape[0]):
            raise CryodiagInputError(
                f"image index {int(index.max()) + 1} out of range (stack holds {data.shape[0]} images)",
                self.files[str(image_path)],
            )
        order = np.argsort(index, kind="stable")
        out = np.empty((index.size,) + data.shape[1:], dtype=np.float32)
        out[order] = data[index[order]]
        return out


def locate_particle_stacks(
    table: pd.DataFrame,
    *,
    stacks: Sequence[str | os.PathLike] = (),
    search_dirs: Sequence[str | os.PathLike] = (),
) -> tuple[StackImages | None, str]:
    """Find the particle stacks of a table; returns ``(source, reason)``.

    ``source`` is ``None`` when stacks are missing; ``reason`` then reads
    ``"no particle images: <why>"`` (empty string when all were found).
    """
    stacks = [Path(s) for s in stacks]
    for s in stacks:
        if not s.exists():
            return None, f"no particle images: {s} does not exist"
    if "image_path" not in table or not table["image_path"].notna().any():
        if len(stacks) == 1 and stacks[0].is_file():
            return StackImages(files={"": stacks[0]}), ""
        return None, "no particle images: the table names no image stacks (no rlnImageName / blob/path)"
    wanted = [str(p) for p in pd.unique(table["image_path"].dropna())]
    src = table.attrs.get("source")
    roots: list[Path] = [Path(d) for d in search_dirs]
    for s in stacks:
        if s.is_dir():
            roots.append(s)
    if src:
        here = Path(os.fspath(src)).resolve().parent
        roots += [here, here.parent, here.parent.parent]
    by_name = {s.name: s for s in stacks if s.is_file()}
    found: dict[str, Path] = {}
    missing: list[str] = []
    for w in wanted:
        rel = Path(_strip_cs(w))
        hit = None
        if rel.is_absolute() and rel.is_file():
            hit = rel
        if hit is None and rel.name in by_name:
            hit = by_name[rel.name]
        if hit is None:
            for r in roots:
                for cand in (r / rel, r / rel.name):
                    if cand.is_file():
                        hit = cand
                        break
                if hit is not None:
                    break
        if hit is None and len(stacks) == 1 and stacks[0].is_file() and len(wanted) == 1:
            hit = stacks[0]
        if hit is None:
            missing.append(w)
        else:
            found[w] = hit
    if missing:
        where = ", ".join(str(r) for r in dict.fromkeys(roots)) or "nowhere (no search folders)"
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return None, (
            f"no particle images: {len(missing)} of {len(wanted)} stack files not found "
            f"({missing[0]}{more}; searched {where})"
        )
    return StackImages(files=found), ""


def resolve_image_path(path: str, source: str | os.PathLike | None = None) -> Path:
    """Find a stack named in a particle table: as given, then relative to the table's folder
    and up to three of its parents (RELION paths are relative to the project folder)."""
    p = Path(str(path))
    if p.is_file():
        return p
    if source is not None and not p.is_absolute():
        base = Path(source).resolve().parent
        for folder in [base, *list(base.parents)[:3]]:
            if (folder / p).is_file():
                return folder / p
        if (base / p.name).is_file():
            return base / p.name
    raise CryodiagInputError(f"particle stack {path!s} not found (looked next to the table too)", source)


class TableStacks:
    """The image of each row of a particle table, read from MRC stacks by chunk of rows.

    ``stack``: one stack indexed by ``image_index`` (else the stacks of ``image_path``).
    Attributes: ``box`` (px), ``header_pixel_size_A`` (of the first stack; 0 = unknown),
    ``paths`` (the resolved stack of every row).
    """

    def __init__(self, table: pd.DataFrame, stack=None, source=None):
        self.source = source if source is not None else table.attrs.get("source")
        source = self.source
        if "image_index" not in table.columns:
            raise CryodiagInputError("particle table has no image_index (no particle images)", source)
        self.index = pd.to_numeric(table["image_index"], errors="coerce").to_numpy()
        if np.isnan(self.index).any():
            raise CryodiagInputError("particle table has rows without an image index", source)
        self.index = self.index.astype(np.int64)
        if stack is not None:
            p = Path(stack)
            if not p.is_file():
                raise CryodiagInputError("particle stack not found", p)
            self.paths = np.array([str(p)] * len(table), dtype=object)
        else:
            if "image_path" not in table.columns:
                raise CryodiagInputError("particle table has no image_path; pass the stack", source)
            names = table["image_path"].astype(str).to_numpy()
            uniq = {u: str(resolve_image_path(u, source)) for u in pd.unique(names)}
            self.paths = np.array([uniq[u] for u in names], dtype=object)
        shapes = {}
        for path in pd.unique(self.paths):
            hdr = read_header(path)  # CryodiagInputError naming the file when unreadable
            vs = hdr.voxel_size_xyz_A
            shapes[path] = (hdr.shape, float(vs[0]) if vs is not None else 0.0)
            sel = self.index[self.paths == path]
            if sel.min() < 0 or sel.max() >= hdr.shape[0]:
                raise CryodiagInputError(
                    f"image index {int(sel.max()) + 1} beyond the {hdr.shape[0]} images of the stack", path
                )
        boxes = {s[0][1:] for s in shapes.values()}
        if len(boxes) != 1 or len(next(iter(boxes))) != 2 or len(set(next(iter(boxes)))) != 1:
            raise CryodiagInputError(f"particle stacks must hold square images of one size, got {boxes}", source)
        self.box = int(next(iter(boxes))[0])
        self.header_pixel_size_A = next(iter(shapes.values()))[1]
        self.n = len(table)

    def __len__(self) -> int:
        return self.n

    @property
    def files(self) -> list[str]:
        """The stack files read (resolved paths)."""
        return [str(p) for p in pd.unique(self.paths)]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Images of table rows ``rows`` (float32 ``(len(rows), box, box)``)."""
        out = np.empty((len(rows), self.box, self.box), dtype=np.float32)
        paths = self.paths[rows]
        for path in pd.unique(paths):
            where = np.nonzero(paths == path)[0]
            idx = self.index[rows[where]]
            order = np.argsort(idx, kind="stable")
            data = read_data(read_header(path), mmap=True)  # memory map: reads only these images
            out[where[order]] = data[idx[order]]
        return out
