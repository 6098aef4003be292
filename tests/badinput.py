"""Shared checks for the bad-input corpus (``tests/test_bad_input_*.py``).

A bad input must give a clean error (exit status 2, one line ``cryodiag <cmd>: error: <file>:
<problem>``, no traceback) or a right reading (exit 0, a warning naming the file when the input was
usable only in part), and never change an input file. Each corpus file builds its own bad files
and calls :func:`run_cli_case` / :func:`check_reader_case`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from napari_cryodiag.cli import main
from napari_cryodiag.errors import CryodiagInputError


def fingerprint(p: Path):
    """sha256 of a file (size, inode and mtime for files over 1 MiB: a rewrite or rename changes them)."""
    st = p.stat()
    if st.st_size > 1 << 20:
        return (st.st_size, st.st_ino, st.st_mtime_ns)
    return hashlib.sha256(p.read_bytes()).hexdigest()


def hashes(folder: Path) -> dict[str, object]:
    """Fingerprint of every file under ``folder``."""
    return {str(p.relative_to(folder)): fingerprint(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def run_cli_case(capsys, argv: list[str], expect: str, names=(), *, inputs=()) -> tuple[int, str]:
    """Run ``cryodiag argv`` in-process and check the outcome.

    ``expect``: ``"error"`` (exit 2, one clean line naming every path of ``names``), ``"warn"``
    (exit 0 and a warning naming them) or ``"ok"`` (exit 0). ``inputs``: folders whose files
    must not change.
    """
    before = {Path(f): hashes(Path(f)) for f in inputs}
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    for folder, h in before.items():
        assert hashes(folder) == h, f"an input file changed under {folder}"
    assert "Traceback" not in err, err
    if expect == "error":
        assert code == 2, (code, err)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith(f"cryodiag {argv[0]}: error: "), err
        assert len(lines[0]) < 1000, f"message too long ({len(lines[0])} characters)"
        for p in names:
            assert str(p) in lines[0] or Path(p).name in lines[0], (p, err)
    else:
        assert code == 0, err
        if expect == "warn":
            assert "warning" in err.lower(), err
            for p in names:
                assert Path(p).name in err, (p, err)
    return code, err


def check_reader_case(read, path, expect: str = "error"):
    """Call ``read(path)``: ``"error"`` means a :class:`CryodiagInputError` naming the file (and no
    other exception); ``"ok"`` returns what ``read`` returned."""
    before = fingerprint(Path(path))
    try:
        out = read(path)
    except CryodiagInputError as err:
        assert expect == "error", f"{path}: unexpected refusal: {err}"
        assert Path(path).name in str(err), f"the message does not name the file: {err}"
        assert len(str(err)) < 1000, f"message too long ({len(str(err))} characters)"
        out = err
    else:
        assert expect == "ok", f"{path}: read without complaint"
    assert fingerprint(Path(path)) == before, f"{path} changed"
    return out
