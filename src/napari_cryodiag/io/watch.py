"""Files that a running session is writing: which are new, and which are complete.

A microscope session (RELION's scheduler, cryoSPARC Live, a script) writes micrographs, pick
files and CTF tables while we look. :class:`FileWatch` polls a set of files and hands each one
over once it is **complete**:

- MRC (``.mrc``, ``.mrcs``): its header parses and the file holds every byte the header
  declares (``data_offset + nbytes``);
- NumPy ``.cs``: its header parses and the file holds every record the header declares;
- anything else (STAR, ``.cbox``, text): its size and modification time are the same on two
  polls in a row, it is not empty, and it ends with a line break (a STAR row written halfway has
  none); a STAR file must also have a ``data_`` block and, when its last block is a loop, a last
  row with as many values as the loop has labels.

Files that change after they were handed over (a table rewritten as the session goes on, e.g.
``micrographs_ctf.star``) are handed over again once complete, as ``changed``; files that have
not changed are never looked at again beyond a ``stat``. Hidden files (``.name``: temporary files
of atomic writers) are ignored. Nothing is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FileWatch", "Poll", "is_complete"]

_MRC = (".mrc", ".mrcs", ".map", ".st")


def _mrc_complete(path: Path, size: int) -> bool:
    from .mrc import read_header

    try:
        hdr = read_header(path)
    except Exception:  # noqa: BLE001 - a header being written is not an error yet
        return False
    return size >= hdr.data_offset + hdr.nbytes


def _cs_complete(path: Path, size: int) -> bool:
    from numpy.lib import format as npf

    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                return False  # compressed .cs: no size in its header; the stable-size rule applies
            f.seek(0)
            version = npf.read_magic(f)
            reader = npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0
            shape, _, dtype = reader(f, max_header_size=2**30)
            offset = f.tell()
    except (OSError, ValueError, EOFError):
        return False
    n = 1
    for s in shape:
        n *= int(s)
    return size >= offset + n * dtype.itemsize


def _tail(path: Path, size: int, n: int = 65536) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, size - n))
        return f.read(n)


def _text_complete(path: Path, size: int) -> bool:
    if size == 0:
        return False
    try:
        tail = _tail(path, size)
    except OSError:
        return False
    if not tail.endswith((b"\n", b"\r")):
        return False
    if path.suffix.lower() != ".star":
        return True
    head = tail if size <= len(tail) else None
    if head is None:
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError:
            return False
    if b"data_" not in head and b"data_" not in tail:
        return False
    # the last loop's last row has as many values as the loop has labels
    text = tail.decode(errors="replace")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        return False
    if "loop_" in text:
        after = text[text.rfind("loop_"):].splitlines()[1:]
        labels = [ln for ln in after if ln.strip().startswith("_")]
        rows = [ln for ln in after if ln.strip() and not ln.strip().startswith(("_", "#"))]
        if labels and rows and not rows[-1].strip().startswith("data_"):
            import shlex

            try:
                values = shlex.split(rows[-1])
            except ValueError:
                return False
            return len(values) == len(labels)
    return True


def is_complete(path: str | os.PathLike, size: int | None = None) -> bool:
    """Is ``path`` complete by its own content (MRC and ``.cs``: every declared byte is there;
    text: ends with a line break, a STAR loop's last row whole)? The stable-size rule of
    :class:`FileWatch` comes on top for text files."""
    p = Path(path)
    try:
        size = p.stat().st_size if size is None else size
    except OSError:
        return False
    suf = p.suffix.lower()
    if suf in _MRC:
        return _mrc_complete(p, size)
    if suf == ".cs":
        return _cs_complete(p, size)
    return _text_complete(p, size)


@dataclass
class Poll:
    """What one :meth:`FileWatch.poll` found: files ``new`` (complete, never handed over),
    ``changed`` (complete again after a change), and ``pending`` (seen, not complete yet)."""

    new: list[Path] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)
    pending: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new or self.changed)


class FileWatch:
    """Hands over each watched file once it is complete (module docstring).

    ``files()``, called at every poll, says which files to look at (a folder's listing, the
    micrographs a project's lists name ...); :meth:`poll` stats them, and checks the content only
    of files whose size or time changed since the last poll.
    """

    def __init__(self):
        self._seen: dict[Path, tuple[int, int]] = {}  #: path -> (size, mtime_ns) at the last poll
        self._done: dict[Path, tuple[int, int]] = {}  #: path -> (size, mtime_ns) when handed over

    @property
    def handed_over(self) -> set[Path]:
        return set(self._done)

    def forget(self, path) -> None:
        p = Path(path)
        self._seen.pop(p, None)
        self._done.pop(p, None)

    def mark_done(self, paths) -> None:
        """Files read already (complete) by someone else: not handed over unless they change."""
        for p in paths:
            p = Path(p)
            try:
                st = p.stat()
            except OSError:
                continue
            self._seen[p] = self._done[p] = (st.st_size, st.st_mtime_ns)

    def poll(self, paths) -> Poll:
        """Look at ``paths`` once (see the class docstring)."""
        out = Poll()
        for p in paths:
            p = Path(p)
            if p.name.startswith("."):
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            sig = (st.st_size, st.st_mtime_ns)
            done = self._done.get(p)
            if done == sig:
                continue
            last = self._seen.get(p)
            self._seen[p] = sig
            suf = p.suffix.lower()
            if suf in _MRC or suf == ".cs" and _is_npy(p):
                ok = is_complete(p, st.st_size)
            else:  # text: the same size and time twice, and whole by its content
                ok = last == sig and is_complete(p, st.st_size)
            if ok:
                (out.changed if done is not None else out.new).append(p)
                self._done[p] = sig
            else:
                out.pending.append(p)
        return out


def _is_npy(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(6) == b"\x93NUMPY"
    except OSError:
        return False
