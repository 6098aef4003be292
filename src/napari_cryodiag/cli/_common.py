"""Helpers shared by the subcommands: output folder, figures, JSON of the numbers."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import CryodiagInputError
from ..io.atomic import atomic_write, atomic_write_text


def add_output_args(parser: argparse.ArgumentParser, default_json: str = "results.json") -> None:
    """``--out DIR`` (figures and JSON go there), ``--format``, ``--json NAME``, ``--overwrite``."""
    parser.add_argument("-o", "--out", default="cryodiag-out", help="output folder (created)")
    parser.add_argument(
        "--format", default="png", help="figure formats, comma separated (png,pdf,svg)"
    )
    parser.add_argument("--json", default=default_json, help="name of the JSON of the numbers")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing output files"
    )


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


def make_output_dir(path) -> Path:
    """Create the output folder ``path``; a file in the way (or no permission) is an input error."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise CryodiagInputError("output folder is an existing file; choose a folder", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file somewhere along the path
        raise CryodiagInputError("cannot create the output folder: a parent is a file", out) from None
    except PermissionError:
        raise CryodiagInputError("cannot create the output folder: permission denied", out) from None
    return out


def figure_formats(formats: str) -> list[str]:
    """The formats of ``--format`` (comma separated), checked against what matplotlib can write."""
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    fmts = [f.strip().lower().lstrip(".") for f in str(formats).split(",") if f.strip()]
    bad = [f for f in fmts if f not in supported]
    if bad or not fmts:
        raise CryodiagInputError(
            f"--format: unknown figure format {', '.join(map(repr, bad)) or repr(formats)}; "
            f"use one or more of {', '.join(sorted(supported))} (comma separated)"
        )
    return fmts


#: arguments that name outputs (never counted as inputs)
OUTPUT_ARGS = {"out", "json", "format", "export_star", "export_cs", "select_out", "map_name", "func", "command"}

#: the input files of the running command (set by :func:`output_dir`); the JSON and figures
#: written through this module never replace one of them, whatever ``--overwrite`` says
_INPUTS: list[Path] = []


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


def output_dir(args) -> Path:
    """The output folder of ``--out`` (created); also checks ``--format`` before any work is done
    and records the command's input files, which the writers here refuse to replace."""
    if getattr(args, "format", None) is not None:
        figure_formats(args.format)
    _INPUTS[:] = input_files(args)
    out = make_output_dir(args.out)
    name = getattr(args, "json", None)
    if name:
        dest = out / name
        for p in _INPUTS:  # say so now rather than after the computation
            if dest.exists() and dest.samefile(p):
                raise CryodiagInputError("--json would overwrite an input file; choose another name", dest)
    return out


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None  # JSON has no NaN/inf
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _to_jsonable(obj.to_dict())
    return obj


def write_json(path, data, *, overwrite: bool = True, protect=()) -> Path:
    """Write ``data`` (dicts, lists, numpy values; NaN -> null) as indented JSON, atomically.

    ``protect``: input files that must never be replaced, whatever ``overwrite`` says.
    """
    text = json.dumps(_to_jsonable(data), indent=2)
    return atomic_write_text(path, text + "\n", overwrite=overwrite, protect=[*protect, *_INPUTS])


def save_figure(fig, out: Path, stem: str, formats: str = "png", *, overwrite: bool = True) -> list[Path]:
    """Save a matplotlib figure as ``out/stem.<fmt>`` for each format, atomically."""
    paths = []
    for fmt in figure_formats(formats):
        dest = out / f"{stem}.{fmt}"
        atomic_write(dest, lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=120), overwrite=overwrite,
                     protect=_INPUTS)
        paths.append(dest)
    return paths
