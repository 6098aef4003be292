"""Atomic, non-destructive file writes.

All writers in the package go through :func:`atomic_write`: the content is written to a
temporary file in the destination folder and renamed into place, so a crash never leaves a
half-written file, and an existing file is only replaced when ``overwrite=True``.

Temporary files are named ``.<stem>.cryodiag-<pid>@<host>-<random>.tmp<suffix>`` (hidden, next to
the destination). A process killed while writing (``kill -9``) leaves one behind; the next write
into that folder removes it (:func:`remove_stale_temps`): on this host when the process that
made it is gone, from another host (a shared file system) when it is older than a day.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from ..errors import CryodiagInputError

__all__ = ["atomic_write", "atomic_write_text", "remove_stale_temps", "temp_prefix", "TEMP_PATTERN"]

#: name of a temporary file of :func:`atomic_write` (``pid``, ``host``)
TEMP_PATTERN = re.compile(r"^\..*\.cryodiag-(?P<pid>\d+)@(?P<host>[A-Za-z0-9._-]+)-[A-Za-z0-9_]+\.tmp(\.[^/]*)?$")
#: a temporary file of another host is removed when older than this (s)
FOREIGN_TEMP_AGE_S = 24 * 3600


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname() or "host")[:64]


def temp_prefix(dest: Path) -> str:
    """Prefix of this process's temporary files for ``dest`` (see the module doc)."""
    return f".{dest.stem}.cryodiag-{os.getpid()}@{_host()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


def remove_stale_temps(folder) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` left in ``folder`` by writers that were
    killed; returns the removed paths. Live writers' files are left alone."""
    removed = []
    host, now = _host(), time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = TEMP_PATTERN.match(e.name)
        if m is None:
            continue
        pid = int(m["pid"])
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            if m["host"] == host:
                stale = pid != os.getpid() and not _alive(pid)
            else:
                stale = now - e.stat(follow_symlinks=False).st_mtime > FOREIGN_TEMP_AGE_S
            if stale:
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[Path], None],
    *,
    overwrite: bool = False,
    protect: Iterable[str | os.PathLike] = (),
) -> Path:
    """Write ``path`` atomically.

    Parameters
    ----------
    path
        Destination.
    write
        Called with a temporary path (same folder, same suffix) that it must create.
    overwrite
        Replace an existing ``path``. Without it an existing file raises.
    protect
        Input files that must never be replaced (e.g. the file the data was read from),
        whatever ``overwrite`` says.
    """
    dest = Path(path).expanduser().absolute()
    for p in protect:
        with contextlib.suppress(OSError):
            if dest.exists() and dest.samefile(p):
                raise CryodiagInputError(
                    "refusing to overwrite an input file; choose another output name", dest
                )
    if dest.is_dir():
        raise CryodiagInputError("is a folder; give a file name", dest)
    if dest.exists() and not overwrite:
        raise CryodiagInputError("file exists; pass overwrite=True (--overwrite) to replace it", dest)
    if not dest.parent.is_dir():
        raise CryodiagInputError("output folder does not exist", dest.parent)
    remove_stale_temps(dest.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dest), suffix=f".tmp{dest.suffix}", dir=dest.parent)
    except PermissionError:
        raise CryodiagInputError("cannot write into this folder: permission denied", dest.parent) from None
    except OSError as err:
        raise CryodiagInputError(f"cannot write into this folder: {err.strerror or err}", dest.parent) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        tmp_path.unlink()  # let the writer create it (some libraries refuse existing files)
        write(tmp_path)
        if not tmp_path.exists():
            raise RuntimeError(f"writer did not create {tmp_path}")
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
    return dest


def atomic_write_text(path, text: str, **kwargs) -> Path:
    """Atomically write a text file (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_text(text), **kwargs)
