"""Atomic, non-destructive file writes.

All writers in the package go through :func:`atomic_write`: the content is written to a
temporary file in the destination folder and renamed into place, so a crash never leaves a
half-written file, and an existing file is only replaced when ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from ..errors import CryodiagInputError


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
    if dest.exists() and not overwrite:
        raise CryodiagInputError("file exists; pass overwrite=True (--overwrite) to replace it", dest)
    if not dest.parent.is_dir():
        raise CryodiagInputError("output folder does not exist", dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
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
