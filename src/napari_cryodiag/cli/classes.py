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
from pathlib import Path

from ._common import add_output_args, output_dir, positive_float, positive_int, save_figure, write_json


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
    p.add_argument("--sort", choices=["count", "resolution", "median_ess", "class"], default="count",
                   help="order of the class grid (default count)")
    p.add_argument("--bins", type=positive_int, default=50, help="histogram bins (default 50)")
    p.add_argument("--select", help="classes to export, comma separated (as numbered in the file)")
    p.add_argument("--select-out", help="where to write the selected particles (.star or .cs)")
    add_output_args(p, default_json="classes.json")
    p.set_defaults(func=run)


def _parse_classes(text: str) -> list[int]:
    from ..errors import CryodiagInputError

    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError as err:
        raise CryodiagInputError(f"--select must be comma-separated class numbers, got {text!r}") from err


def run(args) -> int:
    from ..compute.particles.class_diagnostics import class_diagnostics, write_selection
    from ..errors import CryodiagInputError
    from ..plots.classes import (
        ESS_SHORT,
        RELION_GRID_NOTE,
        plot_class_grid,
        plot_frc_curves,
        plot_posterior_histograms,
    )

    if bool(args.select) != bool(args.select_out):
        raise CryodiagInputError("--select and --select-out go together")
    for given in (*args.stack, args.averages, args.model, args.posteriors):
        if given and not Path(given).exists():  # a file named on the command line must be there
            raise CryodiagInputError("file or folder not found", given)
    out = output_dir(args)
    diag = class_diagnostics(
        args.particles,
        averages=args.averages,
        model=args.model,
        posteriors=args.posteriors if args.posteriors else "auto",
        stacks=args.stack,
        pixel_size_A=args.pixel_size,
        compute_frc=not args.no_frc,
        ctf=args.ctf,
        halves=args.halves,
        bins=args.bins,
    )
    name = Path(args.particles).name
    n_without = int(diag.table["class"].isna().sum()) if "class" in diag.table.columns else 0
    if n_without == len(diag.table) and n_without:
        raise CryodiagInputError(f"none of the {n_without} particles has a class number (all NaN)", args.particles)
    if n_without:
        import sys

        print(f"cryodiag classes: warning: {args.particles}: {n_without} of {len(diag.table)} particles have no "
              "class number (NaN); they are left out of the per-class numbers", file=sys.stderr)
    written = []
    fig = plot_posterior_histograms(diag.histograms, title=name, source=diag.posterior.source)
    written += save_figure(fig, out, "class_histograms", args.format, overwrite=args.overwrite)
    foot = f"averages: {diag.averages_source}"
    if diag.frc_reason:
        foot += f"; FRC: {diag.frc_reason}"
    ess_name = ESS_SHORT.get(diag.posterior.source, "ESS")
    if ess_name != "ESS":
        foot = f"{RELION_GRID_NOTE}; {foot}"
    fig = plot_class_grid(diag.summary, diag.averages, sort_by=args.sort, title=name, footnote=foot,
                          ess_name=ess_name)
    written += save_figure(fig, out, "class_grid", args.format, overwrite=args.overwrite)
    if diag.class_averages is not None:
        fig = plot_frc_curves(diag.class_averages)
        written += save_figure(fig, out, "class_frc", args.format, overwrite=args.overwrite)
    data = diag.to_json()
    data["sort_by"] = args.sort
    data["n_without_class"] = n_without
    if args.select:
        path, n = write_selection(diag.table, _parse_classes(args.select), args.select_out,
                                  overwrite=args.overwrite)
        data["selection"] = {"classes": _parse_classes(args.select), "path": str(path), "n_particles": n}
        written.append(path)
    js = write_json(out / args.json, data, overwrite=args.overwrite)
    written.append(js)
    s = diag.summary
    print(f"{name}: {len(diag.table):,} particles in {int((s['count'] > 0).sum())} classes "
          f"({diag.posterior.source} posteriors)")
    if diag.frc_reason:
        print(f"FRC: {diag.frc_reason}")
    for p in written:
        print(f"wrote {p}")
    return 0
