"""Helpers shared by the subcommands: output arguments, number types, the output plan.

No state is kept here between calls: each subcommand builds its own
:class:`~napari_cryodiag.io.outputs.OutputPlan` with :func:`output_plan` (inputs protected,
outputs declared) and checks it before any computation.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from ..errors import CryodiagInputError
from ..io.outputs import OutputPlan


def add_output_args(parser: argparse.ArgumentParser, default_json: str = "results.json") -> None:
    """``--out DIR`` (figures and JSON go there), ``--format``, ``--json NAME``, ``--overwrite``."""
    parser.add_argument("-o", "--out", default="cryodiag-out", help="output folder (created)")
    parser.add_argument(
        "--format", default="png", help="figure formats, comma separated (png,pdf,svg)"
    )
    parser.add_argument("--json", default=default_json, help="name of the JSON of the numbers (in --out)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace existing output files (never an input file)",
    )


def one_line(text: str, limit: int = 600) -> str:
    """A message on one readable line: line breaks and runs of spaces as one space, at most
    ``limit`` characters (the file name comes first and stays)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _number(kind, test, what):
    def parse(text):
        try:
            v = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not (math.isfinite(v) and test(v)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return v
    parse.__name__ = f"{kind.__name__} {what}"
    return parse


#: argparse ``type=`` for numbers that must be > 0 or >= 0 (bad values: exit 2 with the option named)
positive_float = _number(float, lambda v: v > 0, "> 0")
nonnegative_float = _number(float, lambda v: v >= 0, ">= 0")
positive_int = _number(int, lambda v: v > 0, "> 0")
nonnegative_int = _number(int, lambda v: v >= 0, ">= 0")


#: arguments that name outputs (never counted as inputs)
OUTPUT_ARGS = frozenset({"out", "json", "format", "export_star", "export_cs", "export_coords", "select_out", "map_name",
                         "func", "plan",
                         "command"})


def input_files(args) -> list[Path]:
    """Every existing file named by an argument of ``args`` (except the output arguments)."""
    files = []
    for key, value in vars(args).items():
        if key in OUTPUT_ARGS:
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)) and os.fspath(v) and os.path.isfile(v):
                files.append(Path(v))
    return files


def files_of(arg) -> list[str]:
    """The files a path argument stands for: itself, or the tables (``.star``, ``.cs``, ``.cbox``)
    and micrographs (``.mrc``) a folder or glob holds. Nothing found: an empty list (the reader
    of the argument gives the error)."""
    from ..io.mrc import list_mrc_files
    from ..io.paths import expand_table_paths

    if arg is None:
        return []
    p = os.fspath(arg)
    if os.path.isfile(p):
        return [p]
    found = []
    if os.path.isdir(p) or any(c in p for c in "*?["):
        for expand in (expand_table_paths, list_mrc_files):
            try:
                found += expand(p)
            except CryodiagInputError:
                pass
    return found


def output_plan(args, *, folder=True, inputs=()) -> OutputPlan:
    """The output plan of a subcommand: ``--out`` (unless ``folder=False``), ``--overwrite``,
    ``--format``; every file named by an argument (and the files of ``inputs``) protected."""
    plan = OutputPlan(getattr(args, "out", None) if folder else None,
                      overwrite=bool(getattr(args, "overwrite", False)),
                      formats=getattr(args, "format", None))
    plan.protect(input_files(args), list(inputs))
    return plan
