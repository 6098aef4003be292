"""``cryodiag classes``: 2D class diagnostics, headless.

    cryodiag classes PARTICLES [--averages MRCS] [--model MODEL.star] [--stack S ...] -o OUT

Writes ``class_histograms.<fmt>`` (best-class probability and class ESS, or RELION's
analogues), ``class_grid.<fmt>`` (class averages labelled with count, FRC resolution at 0.5 and
median ESS), ``class_frc.<fmt>`` (when particle images were found) and a JSON with the numbers
(per-class count, FRC resolution, median ESS; histogram edges and counts; FRC curves).
``--select 1,4,7 --select-out good.star`` also writes the particles of those classes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import CryodiagInputError
from ._common import add_output_args, files_of, output_plan, positive_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "classes",
        help="2D classes: posterior/ESS histograms, class grid with count/FRC/median ESS, selection",
        description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("particles", help="particles with classes: RELION _data.star or cryoSPARC .cs")
    p.add_argument("--averages", help="class averages (MRCS); default: the model's, or computed from images")
    p.add_argument("--model", help="RELION _model.star (class distribution, pixel size, averages)")
    p.add_argument("--stack", action="append", default=[],
                   help="particle stack file or folder (repeatable); default: as named in the table")
    p.add_argument("--posteriors", help=".cs with alignments3D_multi/class_posterior (full posteriors)")
    p.add_argument("--pixel-size", type=positive_float, help="particle/average pixel size in Å (overrides files)")
    p.add_argument("--ctf", choices=["phase_flip", "wiener", "none"], default="phase_flip",
                   help="CTF correction of the half-set averages (default phase_flip)")
    p.add_argument("--halves", choices=["auto", "split", "alternate"], default="auto",
                   help="half sets: the split column (auto when present) or alternating rows")
    p.add_argument("--no-frc", action="store_true", help="do not build half-set averages")
    p.add_argument("--workers", type=positive_int, default=None, help="threads for the half-set averages "
                   "(default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask.distributed scheduler address: the half-set averages run on its workers, which "
                        "read the particle stacks (default: local threads)")
    p.add_argument("--sort", choices=["count", "resolution", "median_ess", "class"], default="count",
                   help="order of the class grid (default count)")
    p.add_argument("--bins", type=positive_int, default=50, help="histogram bins (default 50)")
    p.add_argument("--select", help="classes to export, comma separated (as numbered in the file)")
    p.add_argument("--select-out", help="where to write the selected particles (.star or .cs)")
    add_output_args(p, default_json="classes.json")
    p.set_defaults(func=run, plan=plan)


def _parse_classes(text: str) -> list[int]:
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError as err:
        raise CryodiagInputError(f"--select must be comma-separated class numbers, got {text!r}") from err


def plan(args):
    from ..workflows.classes import plan_outputs

    p = output_plan(args, inputs=[*files_of(args.particles), *(f for s in args.stack for f in _stack_files(s))])
    plan_outputs(p, json_name=args.json)
    if args.select_out:
        p.file(args.select_out, "selection (--select-out)", in_folder=False)
    return p


def _stack_files(path) -> list[str]:
    """The stack files of a --stack argument (a file, or the MRC stacks of a folder)."""
    import os

    if os.path.isdir(path):
        return [os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith((".mrcs", ".mrc"))]
    return [path]


def run(args) -> int:
    from ..workflows.classes import ClassesOptions, class_diagnostics, export, write_selection

    if bool(args.select) != bool(args.select_out):
        raise CryodiagInputError("--select and --select-out go together")
    selected = _parse_classes(args.select) if args.select else None
    for given in (*args.stack, args.averages, args.model, args.posteriors):
        if given and not Path(given).exists():  # a file named on the command line must be there
            raise CryodiagInputError("file or folder not found", given)
    out = plan(args).check()
    options = ClassesOptions(ctf=args.ctf, halves=args.halves, compute_frc=not args.no_frc, bins=args.bins,
                             sort_by=args.sort, pixel_size_A=args.pixel_size or 0.0)
    diag = class_diagnostics(args.particles, options, averages=args.averages, model=args.model,
                             posteriors=args.posteriors if args.posteriors else "auto", stacks=args.stack,
                             client=args.scheduler, num_workers=args.workers)
    out.protect(diag.table.attrs.get("sources") or [])  # the files a folder or glob stood for
    n_without = int(diag.table["class"].isna().sum()) if "class" in diag.table.columns else 0
    if n_without == len(diag.table) and n_without:
        raise CryodiagInputError(f"none of the {n_without} particles has a class number (all NaN)", args.particles)
    if n_without:
        print(f"cryodiag classes: warning: {args.particles}: {n_without} of {len(diag.table)} particles have no "
              "class number (NaN); they are left out of the per-class numbers", file=sys.stderr)
    for path, message in diag.warnings:
        print(f"cryodiag classes: warning: {path or args.particles}: {message}", file=sys.stderr)
    extra = {"n_without_class": n_without}
    written = []
    if selected is not None:
        path, n = write_selection(diag.table, selected, args.select_out, **out.writer_kwargs(args.select_out))
        extra["selection"] = {"classes": selected, "path": str(path), "n_particles": n}
        written.append(path)
    written = export(diag, out, sort_by=args.sort, json_name=args.json, extra=extra) + written
    s = diag.summary
    print(f"{Path(args.particles).name}: {len(diag.table):,} particles in {int((s['count'] > 0).sum())} classes "
          f"({diag.posterior.source} posteriors)")
    if diag.frc_reason:
        print(f"FRC: {diag.frc_reason}")
    for p in written:
        print(f"wrote {p}")
    return 0
