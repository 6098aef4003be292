"""Follow a live session: what is new in a project or folder a session is writing into.

:class:`LiveSource` watches a RELION project, a cryoSPARC project, or a plain folder of
micrographs and pick files, and at each :meth:`LiveSource.poll` says what has arrived since the
last one (:class:`LiveUpdate`): the new micrographs (complete MRC files), the new picks (with
their micrograph's CTF) and the new per-micrograph CTF rows.

- What to watch is found as :mod:`.project` finds it (the picks job, the micrographs it is on,
  its CTF job), again at each poll, so that a job that appears during the session is followed;
  a folder: ``*.mrc`` are micrographs, ``*ctf*.star`` / an exposure ``.cs`` the CTF table, other
  ``.star`` / ``.cbox`` / ``.cs`` files picks.
- A file is read once it is complete (:class:`~napari_cryodiag.io.watch.FileWatch`: MRC and
  ``.cs`` hold every byte their header declares; text files have the same size twice in a row
  and end with a whole row). A file already read is not read again unless it changes; a table
  rewritten with more rows (``micrographs_ctf.star``, cryoSPARC's pick ``.cs``) gives only the
  rows of micrographs not delivered before, so that **every pick arrives once**.
- When the source has a CTF table, a micrograph's picks wait for its CTF row (they are counted
  in :attr:`LiveSource.waiting`); without one, picks arrive as they are read.

Nothing is written into the watched folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..io.watch import FileWatch

__all__ = ["LiveSource", "LiveUpdate", "extend_stack", "folder_files", "concat_tables"]

_TABLES = (".star", ".cbox", ".cs")


@dataclass
class LiveUpdate:
    """What one poll brought: ``micrographs`` (new complete files, in arrival order), ``picks``
    (new picks, canonical table with CTF joined; None when none), ``exposures`` (new CTF rows),
    ``pending`` (files seen but not complete yet), ``notes``."""

    micrographs: list[Path] = field(default_factory=list)
    picks: pd.DataFrame | None = None
    exposures: pd.DataFrame | None = None
    pending: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_picks(self) -> int:
        return 0 if self.picks is None else len(self.picks)

    def __bool__(self) -> bool:
        return bool(self.micrographs) or self.n_picks > 0 or (self.exposures is not None and len(self.exposures) > 0)

    def describe(self) -> str:
        parts = []
        if self.micrographs:
            parts.append(f"{len(self.micrographs)} micrographs")
        if self.n_picks:
            parts.append(f"{self.n_picks:,} picks")
        if self.exposures is not None and len(self.exposures):
            parts.append(f"CTF of {len(self.exposures)} micrographs")
        text = ("new: " + ", ".join(parts)) if parts else "nothing new"
        if self.pending:
            text += f"; {len(self.pending)} files still being written"
        return text


def concat_tables(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows of ``frames`` one after the other, with the first one's ``attrs`` (pandas compares
    attrs when concatenating, which fails on the DataFrames they hold)."""
    attrs = dict(frames[0].attrs)
    bare = []
    for f in frames:
        f = f.copy(deep=False)
        f.attrs = {}
        bare.append(f)
    out = pd.concat(bare, ignore_index=True, sort=False)
    out.attrs = attrs
    return out


_concat = concat_tables


def folder_files(folder: Path, depth: int = 2) -> tuple[list[Path], list[Path], list[Path]]:
    """A plain folder's (micrographs, pick tables, CTF tables), down to ``depth`` levels."""
    mics, picks, ctf = [], [], []

    def walk(d: Path, level: int):
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                if level < depth:
                    walk(Path(e.path), level + 1)
                continue
            p = Path(e.path)
            low = e.name.lower()
            if low.endswith(".mrc"):
                mics.append(p)
            elif low.endswith(".star") and ("ctf" in low or low.startswith("micrographs")):
                ctf.append(p)
            elif low.endswith(".cs") and "exposure" in low:
                ctf.append(p)
            elif low.endswith(_TABLES) and not low.endswith(".cryodiag.json"):
                picks.append(p)

    walk(Path(folder), 0)
    return mics, picks, ctf


def extend_stack(stack, paths):
    """A :class:`~napari_cryodiag.io.mrc.MicrographStack` with ``paths`` appended (``stack`` None:
    a new one); only the new files' headers are read."""
    from ..io.mrc import MicrographStack, open_micrograph_stack

    new = open_micrograph_stack([os.fspath(p) for p in paths])
    if stack is None or len(stack) == 0:
        return new
    import dask.array as da

    if tuple(new.shape[1:]) != tuple(stack.shape[1:]):
        raise CryodiagInputError(f"new micrographs are {new.shape[2]}x{new.shape[1]} px, the open ones "
                                 f"{stack.shape[2]}x{stack.shape[1]}", new.paths[0])
    return MicrographStack(data=da.concatenate([stack.data, new.data], axis=0), paths=stack.paths + new.paths,
                           names=stack.names + new.names, keys=stack.keys + new.keys,
                           pixel_size_A=stack.pixel_size_A or new.pixel_size_A,
                           headers=list(stack.headers) + list(new.headers), skipped=stack.skipped + new.skipped,
                           notes=stack.notes + new.notes)


class LiveSource:
    """Follows ``path`` (a RELION or cryoSPARC project or job folder, or a plain folder) while a
    session writes into it (module docstring)."""

    def __init__(self, path, *, wait_for_ctf: bool = True):
        from ..io.projects import project_root

        self.path = Path(os.path.abspath(os.fspath(path)))
        if not self.path.is_dir():
            raise CryodiagInputError("not a folder to watch", self.path)
        found = project_root(self.path)
        self.layout = found[0] if found else "folder"
        self.root = found[1] if found else self.path
        self.wait_for_ctf = wait_for_ctf
        self.watch = FileWatch()
        self.micrographs: list[Path] = []
        self.exposures: pd.DataFrame | None = None
        self.n_picks = 0
        self.notes: list[str] = []
        self._mics: set[Path] = set()
        self._ctf_keys: set[str] = set()
        self._pick_keys: set[str] = set()  # micrographs whose picks were delivered (or are waiting)
        self._waiting: dict[str, pd.DataFrame] = {}
        self._name_of: dict[str, str] = {}  # coordinate file -> micrograph name (RELION)
        self._ctf_path: Path | None = None
        self.polls = 0

    @property
    def waiting(self) -> int:
        """Picks read whose micrograph's CTF has not arrived yet."""
        return sum(len(t) for t in self._waiting.values())

    def skip(self, *, micrographs=(), picks: pd.DataFrame | None = None, exposures: pd.DataFrame | None = None,
             files=()) -> None:
        """What is loaded already (the layers a project was opened into), so that it is not
        delivered again: those ``micrographs`` (paths), the picks of the micrographs ``picks`` has
        (its ``micrograph`` keys), the CTF rows of ``exposures`` (kept to join later picks with);
        ``files`` (read completely: micrographs, per-micrograph coordinate files) are not read
        again unless they change. Lists that grow (a micrograph STAR, a CTF table, a cryoSPARC
        ``.cs``) are read at the next poll for their new rows only."""
        for m in micrographs:
            m = Path(os.path.abspath(os.fspath(m)))
            if m not in self._mics:
                self._mics.add(m)
                self.micrographs.append(m)
        if picks is not None and "micrograph" in picks.columns:
            self._pick_keys |= set(pd.unique(picks["micrograph"].astype(str)))
        if exposures is not None and len(exposures) and "micrograph" in exposures.columns:
            keys = exposures["micrograph"].astype(str)
            new = exposures[~keys.isin(self._ctf_keys)]
            if len(new):
                self._ctf_keys |= set(new["micrograph"].astype(str))
                self.exposures = new.reset_index(drop=True) if self.exposures is None else _concat([self.exposures, new])
        self.watch.mark_done([Path(os.path.abspath(os.fspath(f))) for f in files])

    # ------------------------------------------------------------------ what to look at
    def _candidates(self) -> tuple[list[Path], list[Path], Path | None]:
        if self.layout == "folder":
            mics, picks, ctf = folder_files(self.root)
            return mics, picks, ctf[0] if ctf else None
        from .project import open_project, pick_source

        project = open_project(self.path)
        src = pick_source(project)
        if src is None:
            _, mset = project.latest("micrographs")
            _, ctf = project.latest("ctf")
            return (list(mset.micrographs) if mset else []), [], (ctf.path if ctf else None)
        mics: list[Path] = []
        seen: set[Path] = set()
        sets = [src.micrographs] + [j.output("micrographs") for j in [src.job, *project.upstream(src.job)]]
        for s in sets:
            for m in (s.micrographs if s is not None else []):
                if m not in seen:
                    seen.add(m)
                    mics.append(m)
        if src.picks.style == "cryosparc":
            picks = [src.picks.path]
        else:
            picks = list(src.picks.coordinate_files)
            self._name_of.update({str(f): n for f, n in zip(src.picks.coordinate_files, src.picks.micrograph_names)})
        return mics, picks, (src.ctf.path if src.ctf is not None else None)

    # ------------------------------------------------------------------ one poll
    def poll(self) -> LiveUpdate:
        """What has arrived since the last poll (see the module docstring)."""
        self.polls += 1
        up = LiveUpdate()
        try:
            mics, picks, ctf = self._candidates()
        except CryodiagInputError as err:  # a list being rewritten as we read it: next time
            up.notes.append(str(err))
            return up
        if ctf is not None:
            self._ctf_path = ctf
        files = list(mics) + list(picks) + ([ctf] if ctf is not None else [])
        seen = self.watch.poll(files)
        up.pending = list(seen.pending)
        arrived = seen.new + seen.changed
        mic_set = set(mics)
        new_mics = [p for p in seen.new if p in mic_set and p not in self._mics]
        for p in new_mics:
            self._mics.add(p)
            self.micrographs.append(p)
        up.micrographs = new_mics
        if ctf is not None and ctf in arrived:
            up.exposures = self._read_ctf(ctf, up)
        pick_files = [p for p in arrived if p in set(picks)]
        if pick_files:
            self._read_picks(pick_files, up)
        up.picks = self._release(up)
        if up.picks is not None:
            self.n_picks += len(up.picks)
        return up

    def _read_ctf(self, path: Path, up: LiveUpdate) -> pd.DataFrame | None:
        from ..io.exposures import read_exposures

        try:
            t = read_exposures(path)
        except CryodiagInputError as err:
            up.notes.append(str(err))
            self.watch.forget(path)  # look again at the next poll
            return None
        keys = t["micrograph"].astype(str)
        new = t[~keys.isin(self._ctf_keys)].reset_index(drop=True)
        if not len(new):
            return None
        new.attrs = dict(t.attrs)
        self._ctf_keys |= set(new["micrograph"].astype(str))
        self.exposures = new if self.exposures is None else _concat([self.exposures, new])
        return new

    def _read_picks(self, files: list[Path], up: LiveUpdate) -> None:
        from ..io.picks import read_table
        from ..micrographs import categorical_names_and_keys

        for f in files:
            try:
                t = read_table(f)
            except CryodiagInputError as err:
                up.notes.append(str(err))
                continue
            name = self._name_of.get(str(f))
            if name is not None:
                t["micrograph_name"], t["micrograph"] = categorical_names_and_keys(np.full(len(t), name, dtype=object))
            if "micrograph" not in t.columns:
                up.notes.append(f"{f}: no micrograph name; left out")
                continue
            t["source_file"] = str(f)
            keys = t["micrograph"].astype(str)
            fresh = ~keys.isin(self._pick_keys)
            if not fresh.all() and f.suffix.lower() != ".cs":
                up.notes.append(f"{f.name} changed after it was read: its new picks are not taken")
            for key, rows in t[fresh.to_numpy()].groupby(keys[fresh].to_numpy(), sort=False):
                rows = rows.copy()
                rows.attrs = dict(t.attrs)
                self._waiting[str(key)] = rows
                self._pick_keys.add(str(key))

    def _release(self, up: LiveUpdate) -> pd.DataFrame | None:
        """The waiting picks whose CTF is there (or all of them when the source has no CTF)."""
        from .project import join_exposures

        hold = self.wait_for_ctf and self._ctf_path is not None
        ready = [k for k in self._waiting if not hold or k in self._ctf_keys]
        if not ready:
            return None
        parts = [self._waiting.pop(k) for k in ready]
        out = _concat(parts)
        for c in ("micrograph_name", "micrograph"):
            if c in out.columns and out[c].dtype == object:
                out[c] = out[c].astype(str)
        out.attrs["source"] = str(self.path)
        if self.exposures is not None and "micrograph" in out.columns:
            up.notes += join_exposures(out, self.exposures)
        return out
