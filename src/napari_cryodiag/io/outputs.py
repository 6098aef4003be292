"""The output plan of a command: every file it reads is protected, every file it writes is known
and checked before anything is computed.

:class:`OutputPlan` is built first (inputs from :meth:`~OutputPlan.protect`, outputs from
:meth:`~OutputPlan.file` / :meth:`~OutputPlan.figure`), then :meth:`~OutputPlan.check` refuses, with
one clear message naming the file:

- an output that is one of the inputs (same file, also through a link), whatever ``overwrite`` says;
- an output that exists, unless ``overwrite``;
- an output named twice, or that is a folder;
- an output folder that cannot be created or written into (read-only, permission denied).

It also removes leftovers of killed writers (:func:`napari_cryodiag.io.atomic.remove_stale_temps`)
from the output folders. The writes then go through the plan (:meth:`~OutputPlan.write`,
:meth:`~OutputPlan.write_json`, :meth:`~OutputPlan.save_figure`), atomically, and refuse any file
that was not planned. Used by every ``cryodiag`` subcommand and by the widgets' exports.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import CryodiagInputError
from .atomic import atomic_write, remove_stale_temps, temp_prefix
from .jsonfile import write_json

__all__ = ["OutputPlan", "figure_formats"]


def figure_formats(formats) -> list[str]:
    """The formats of ``formats`` (``"png,pdf"`` or a list), checked against what matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    fmts = [str(f).strip().lower().lstrip(".") for f in items if str(f).strip()]
    bad = [f for f in fmts if f not in supported]
    if bad or not fmts:
        raise CryodiagInputError(
            f"--format: unknown figure format {', '.join(map(repr, bad)) or repr(formats)}; "
            f"use one or more of {', '.join(sorted(supported))} (comma separated)"
        )
    return list(dict.fromkeys(fmts))


def _key(path: Path):
    """Identity of an existing file (device, inode): the same file through any link or name."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class OutputPlan:
    """What a command reads and writes (see the module doc).

    ``folder``: the output folder (``--out``), created by :meth:`check`; file names given to
    :meth:`file` without a folder go there. ``overwrite``: existing outputs may be replaced (never
    an input). ``formats``: figure formats of :meth:`figure`.
    """

    def __init__(self, folder=None, *, overwrite: bool = False, formats="png"):
        self.folder = None if folder is None else Path(folder).expanduser()
        self.overwrite = bool(overwrite)
        self.formats = figure_formats(formats) if formats else []
        self._inputs: dict = {}  # (dev, ino) -> path
        self._input_paths: set[Path] = set()  # absolute paths (also of inputs that do not exist yet)
        self._outputs: dict[Path, str] = {}  # absolute path -> what it is
        self._written: set[Path] = set()  # outputs written through the plan (absolute)
        self.checked = False

    # ------------------------------------------------------------------ inputs
    def protect(self, *paths) -> "OutputPlan":
        """Add input files (paths or iterables of paths; folders are ignored: pass the files found
        in them). Files that do not exist (yet) are protected by name."""
        for p in paths:
            if p is None:
                continue
            if isinstance(p, (list, tuple, set)) or (hasattr(p, "__iter__") and not isinstance(p, (str, bytes, os.PathLike))):
                self.protect(*p)
                continue
            path = Path(os.fspath(p)).expanduser()
            if path.is_dir():
                continue
            self._input_paths.add(path.absolute())
            k = _key(path)
            if k is not None:
                self._inputs[k] = path
        if self.checked:  # inputs found after the check (e.g. files a table names): check again
            self._check_outputs()
        return self

    def is_input(self, path) -> bool:
        path = Path(path).expanduser()
        k = _key(path)
        return (k is not None and k in self._inputs) or path.absolute() in self._input_paths

    @property
    def inputs(self) -> list[Path]:
        return sorted(set(self._inputs.values()))

    # ------------------------------------------------------------------ outputs
    def _resolve(self, name, in_folder: bool = True) -> Path:
        p = Path(os.fspath(name)).expanduser()
        if in_folder and self.folder is not None:
            p = self.folder / p  # an absolute name stays as it is
        return p

    def file(self, name, what: str = "output", *, in_folder: bool = True) -> Path:
        """Plan one output file: ``name`` in the output folder, or (``in_folder=False``) a path as
        given (e.g. ``--export-star PATH``, relative to the working folder)."""
        p = self._resolve(name, in_folder)
        a = p.absolute()
        if a in self._outputs:
            raise CryodiagInputError(f"named twice as an output ({self._outputs[a]} and {what}); "
                                     "choose different names", p)
        self._outputs[a] = what
        return p

    def figure(self, stem: str) -> list[Path]:
        """Plan the figure ``stem`` in every format; returns the paths."""
        return [self.file(f"{stem}.{fmt}", f"figure {stem}") for fmt in self.formats]

    @property
    def outputs(self) -> list[Path]:
        return list(self._outputs)

    # ------------------------------------------------------------------ the check
    def check(self, *, create: bool = True) -> "OutputPlan":
        """Refuse what cannot be written (see the module doc); create the output folder.

        ``create=False``: only the outputs against the inputs and existing files (nothing is
        created; a folder that does not exist yet is not checked further).
        """
        if self.folder is not None and create:
            _make_folder(self.folder)
        folders = {p.parent for p in self._outputs}
        if self.folder is not None:
            folders.add(self.folder.absolute())
        for f in sorted(folders):
            if not f.is_dir():
                if not create and (self.folder is None or f.is_relative_to(self.folder.absolute())):
                    continue
                raise CryodiagInputError("output folder does not exist", f)
            if create:
                _check_writable(f)
                remove_stale_temps(f)
        self._check_outputs()
        self.checked = create
        return self

    def _check_outputs(self) -> None:
        # an input in the way is said first: --overwrite would not help there
        for p, what in self._outputs.items():
            if self.is_input(p):
                raise CryodiagInputError(
                    f"the {what} would overwrite an input file; choose another output name or folder "
                    "(--overwrite never replaces an input)", p)
        for p, what in self._outputs.items():
            if p in self._written:
                continue
            if p.is_dir():
                raise CryodiagInputError(f"the {what} is an existing folder; choose a file name", p)
            if p.exists() and not self.overwrite:
                raise CryodiagInputError(
                    f"the {what} exists; pass --overwrite to replace it, or choose another output folder", p)

    # ------------------------------------------------------------------ writing
    def _planned(self, path) -> Path:
        p = Path(os.fspath(path)).expanduser()
        if p.absolute() not in self._outputs:
            p = self._resolve(path)
        if p.absolute() not in self._outputs:
            raise RuntimeError(f"{p} is not in the output plan (plan every output before the check)")
        if self.is_input(p):  # a link made since the check
            raise CryodiagInputError("refusing to overwrite an input file; choose another output name", p)
        return p

    def write(self, path, write: Callable[[Path], None]) -> Path:
        """Write a planned file atomically (``write(tmp_path)`` creates it)."""
        p = self._planned(path)
        out = atomic_write(p, write, overwrite=self.overwrite)
        self._written.add(p.absolute())
        return out

    def write_text(self, path, text: str) -> Path:
        return self.write(path, lambda p: p.write_text(text))

    def write_json(self, path, data) -> Path:
        """A planned JSON of the numbers (NaN -> null), atomically."""
        p = self._planned(path)
        out = write_json(p, data, overwrite=self.overwrite)
        self._written.add(p.absolute())
        return out

    def save_figure(self, fig, stem: str, *, dpi: int = 120) -> list[Path]:
        """Save a matplotlib figure as ``<folder>/<stem>.<fmt>`` for each planned format."""
        out = []
        for fmt in self.formats:
            out.append(self.write(f"{stem}.{fmt}", lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=dpi)))
        return out

    def writer_kwargs(self, path) -> dict:
        """``overwrite``/``protect`` for an io writer that does its own atomic write (e.g.
        :func:`napari_cryodiag.io.star.write_star`), after checking ``path`` is planned."""
        self._written.add(self._planned(path).absolute())
        return {"overwrite": self.overwrite, "protect": self.inputs}


def _make_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CryodiagInputError("output folder is an existing file; choose a folder", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file somewhere along the path
        raise CryodiagInputError("cannot create the output folder: a parent is a file", out) from None
    except PermissionError:
        raise CryodiagInputError("cannot create the output folder: permission denied", out) from None
    except OSError as err:
        raise CryodiagInputError(f"cannot create the output folder: {err.strerror or err}", out) from None


def _check_writable(folder: Path) -> None:
    """Create and remove a temporary file in ``folder`` (the only reliable test, also for root on
    a read-only file system)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(folder / "write-test"), suffix=".tmp", dir=folder)
    except PermissionError:
        raise CryodiagInputError("output folder is not writable (permission denied); choose another "
                                 "folder", folder) from None
    except OSError as err:
        raise CryodiagInputError(f"output folder is not writable ({err.strerror or err}); choose another "
                                 "folder", folder) from None
    os.close(fd)
    os.unlink(tmp)

