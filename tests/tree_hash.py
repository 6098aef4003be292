"""A fingerprint of a folder tree, to check that opening or watching a project writes nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_hash(folder: Path) -> str:
    """Names, sizes, modes and contents of every file and folder under ``folder``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for n in sorted(filenames) + [f"{d}/" for d in dirnames]:
            p = Path(dirpath) / n.rstrip("/")
            st = p.lstat()
            h.update(f"{p.relative_to(folder)}|{st.st_mode}|{st.st_size if p.is_file() else 0}|{st.st_mtime_ns}".encode())
            if p.is_file():
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()
