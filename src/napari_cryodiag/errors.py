"""Errors raised for bad input.

Every message names the file and the problem, so that the napari face can show it in a
notification and the command line can print it on stderr without a traceback.
"""

from __future__ import annotations

import contextlib
import os


class CryodiagInputError(ValueError):
    """A file (or a set of inputs) cannot be used as given.

    ``str(err)`` reads ``"<path>: <problem>"`` when a path is known.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


@contextlib.contextmanager
def about(path: str | os.PathLike | None):
    """Within this block, a :class:`CryodiagInputError` that names no file is about ``path``:
    it is raised again naming it (the numerics get arrays, the workflow knows their file)."""
    try:
        yield
    except CryodiagInputError as err:
        if err.path is None and path is not None:
            raise CryodiagInputError(err.problem, path) from None
        raise
