"""The ``cryodiag`` command line: every diagnostic headless, writing figures and a JSON.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds one or
more sub-parsers and sets ``func`` (called with the parsed ``args``; returns an exit code).
Input errors (:class:`~napari_cryodiag.errors.CryodiagInputError`) are printed on stderr
without a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import CryodiagInputError
from ._common import one_line

#: Modules that register subcommands, in the order they appear in ``--help``.
SUBCOMMAND_MODULES = (
    "napari_cryodiag.cli.info",      # cryodiag info
    "napari_cryodiag.cli.sample",    # cryodiag sample
    "napari_cryodiag.cli.open",      # cryodiag open
    "napari_cryodiag.cli.picks",     # cryodiag picks ...
    "napari_cryodiag.cli.maps",      # cryodiag fsc / guinier / sharpen / views
    "napari_cryodiag.cli.classes",   # cryodiag classes
    "napari_cryodiag.cli.orientations",  # cryodiag orientations
    "napari_cryodiag.cli.noise",     # cryodiag noise
    "napari_cryodiag.cli.report",    # cryodiag report
)
#: the module of each subcommand: ``cryodiag fsc ...`` imports only ``cli.maps`` (and what it needs),
#: not every subcommand's libraries (pandas, matplotlib, dask ...). A command missing here is found
#: by building the whole parser.
COMMAND_MODULES = (
    ("info", "napari_cryodiag.cli.info"), ("sample", "napari_cryodiag.cli.sample"),
    ("open", "napari_cryodiag.cli.open"), ("picks", "napari_cryodiag.cli.picks"),
    ("fsc", "napari_cryodiag.cli.maps"), ("guinier", "napari_cryodiag.cli.maps"),
    ("sharpen", "napari_cryodiag.cli.maps"), ("views", "napari_cryodiag.cli.maps"),
    ("classes", "napari_cryodiag.cli.classes"), ("orientations", "napari_cryodiag.cli.orientations"),
    ("noise", "napari_cryodiag.cli.noise"), ("report", "napari_cryodiag.cli.report"),
)


def build_parser(modules=SUBCOMMAND_MODULES) -> argparse.ArgumentParser:
    """The ``cryodiag`` parser with the subcommands of ``modules`` (default: all)."""
    return _build(modules)[0]


def _build(modules):
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="cryodiag",
        description="cryo-EM diagnostics for picks, maps and particle sets (headless).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser, set(sub.choices)


def _parser_for(argv: list[str] | None) -> argparse.ArgumentParser:
    """The parser of the command in ``argv`` alone when its module is known, else the whole one."""
    args = sys.argv[1:] if argv is None else list(argv)
    module = dict(COMMAND_MODULES).get(args[0]) if args else None
    if module is not None:
        parser, commands = _build((module,))
        if args[0] in commands:
            return parser
    return build_parser()


def main(argv: list[str] | None = None) -> int:
    parser = _parser_for(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except CryodiagInputError as err:
        print(f"cryodiag {args.command}: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except PermissionError as err:  # an unreadable input (outputs are checked before the work)
        where = f"{err.filename}: " if err.filename else ""
        print(f"cryodiag {args.command}: error: {one_line(where + 'permission denied')}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
