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


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="cryodiag",
        description="cryo-EM diagnostics for picks, maps and particle sets (headless).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
