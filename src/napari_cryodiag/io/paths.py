"""Which files a path argument stands for: a file, a folder or a glob of pick tables."""

from __future__ import annotations

import glob
import os

from ..errors import CryodiagInputError

__all__ = ["TABLE_SUFFIXES", "expand_table_paths"]

#: suffixes of the pick/particle tables cryodiag reads
TABLE_SUFFIXES = (".star", ".cs", ".cbox")


def expand_table_paths(p: str) -> list[str]:
    """The table files (sorted) of a folder or a glob ``p``; none found is an input error."""
    if os.path.isdir(p):
        files = [os.path.join(p, n) for n in os.listdir(p) if n.lower().endswith(TABLE_SUFFIXES)]
    else:
        files = [f for f in glob.glob(p) if f.lower().endswith(TABLE_SUFFIXES)]
    files = sorted(f for f in files if os.path.isfile(f))
    if not files:
        raise CryodiagInputError(f"no {', '.join(TABLE_SUFFIXES)} files found", p)
    return files
