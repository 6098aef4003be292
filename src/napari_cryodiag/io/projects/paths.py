"""Names in a project's files -> files in the project, or a report of why not.

RELION writes paths relative to the project folder (``MotionCorr/job002/Movies/mic.mrc``),
cryoSPARC relative to the project folder too (``J2/motioncorrected/…mrc``), with ``>`` before
an absolute path it imported. :class:`ProjectPaths` resolves such names inside ``root`` and
keeps what it could not use: a name that leads **outside** the project folder (``/data/x.mrc``,
``../other/x.mrc``) is not followed; a name whose file is **missing** is not used. Both are
counted per list so that a job can say e.g. "3 of 120 micrographs listed in … are missing
(first: …)".

"Inside" is decided on the names (``..`` collapsed), not by following symbolic links: a link
inside the project (RELION's ``Movies -> /data/session``) is the user's own layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

__all__ = ["ProjectPaths", "Resolved", "clean_name", "within"]


def clean_name(name) -> str:
    """A file name as a project's file holds it, made a path: bytes decoded, quotes, cryoSPARC's
    ``>`` and RELION's ``:mrc`` type suffix (``file.ctf:mrc``) removed."""
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    s = str(name).strip().strip('"').strip("'")
    if s.startswith(">"):
        s = s[1:]
    if ":" in s and not (len(s) > 1 and s[1] == ":"):  # not a Windows drive letter
        head, _, tail = s.rpartition(":")
        if tail and "/" not in tail and len(tail) <= 5:
            s = head
    return s


def within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or below it (on the names)."""
    try:
        Path(path).relative_to(root)
        return True
    except ValueError:
        return False


@dataclass
class Resolved:
    """Names of one list resolved: ``paths`` (one per name: a file in the project, or None),
    and the names that were ``outside`` the project or ``missing``."""

    paths: list[Path | None]
    outside: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def found(self) -> list[Path]:
        return [p for p in self.paths if p is not None]

    def notes(self, what: str, where: str) -> list[str]:
        """Sentences for the job's notes (empty when everything was found)."""
        out = []
        n = len(self.paths)
        if self.outside:
            out.append(f"{len(self.outside)} of {n} {what} listed in {where} are outside the project folder "
                       f"and were not followed (first: {self.outside[0]})")
        if self.missing:
            out.append(f"{len(self.missing)} of {n} {what} listed in {where} are missing (first: {self.missing[0]})")
        return out


class ProjectPaths:
    """Resolves names inside one project folder (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(os.path.abspath(os.fspath(root)))
        self._listing: dict[str, set[str] | None] = {}

    def path_of(self, name, *, base: Path | None = None) -> tuple[Path | None, str]:
        """``(path, "")`` for a name inside the project, else ``(None, "outside")``; existence is
        not checked. Relative names are relative to ``base`` (default: the project folder)."""
        s = clean_name(name)
        if not s:
            return None, "missing"
        p = Path(s)
        if not p.is_absolute():
            p = (base or self.root) / p
        p = Path(os.path.normpath(p))
        if not within(p, self.root):
            return None, "outside"
        return p, ""

    def exists(self, path: Path) -> bool:
        """Is ``path`` a file (one listing per folder, cached: thousands of micrographs cost one
        ``scandir`` per folder)."""
        d = str(path.parent)
        if d not in self._listing:
            try:
                with os.scandir(d) as it:
                    self._listing[d] = {e.name for e in it if e.is_file()}
            except OSError:
                self._listing[d] = None
        names = self._listing[d]
        return names is not None and path.name in names

    def resolve(self, names: Iterable, *, base: Path | None = None, check: bool = True) -> Resolved:
        """Resolve every name (see :class:`Resolved`); ``check=False`` skips the existence test."""
        out = Resolved(paths=[])
        for name in names:
            p, why = self.path_of(name, base=base)
            if p is None:
                (out.outside if why == "outside" else out.missing).append(clean_name(name))
                out.paths.append(None)
            elif check and not self.exists(p):
                out.missing.append(str(p.relative_to(self.root)))
                out.paths.append(None)
            else:
                out.paths.append(p)
        return out

    def one(self, name, *, base: Path | None = None) -> tuple[Path | None, str]:
        """One name: ``(path, "")``, or ``(None, "outside" | "missing")``."""
        p, why = self.path_of(name, base=base)
        if p is None:
            return None, why
        return (p, "") if p.is_file() else (None, "missing")
