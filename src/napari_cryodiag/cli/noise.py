"""``cryodiag noise``: noise model from particle residuals, and RELION's noise spectra.

    cryodiag noise --particles particles.star --map map.mrc [--stack particles.mrcs] -o OUT
    cryodiag noise --model run_it025_model.star -o OUT

Writes ``noise_basic``, ``noise_advanced`` (and ``relion_sigma2``) figures and ``noise.json``
with the per-shell numbers (frequency in 1/Å, resolution in Å, noise variance per pixel,
RELION-convention sigma2, signal power, statistical error, scale).
"""

from __future__ import annotations

import sys

from ..errors import CryodiagInputError
from ._common import add_output_args, files_of, output_plan, positive_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "noise",
        help="noise model: per-shell noise from particle residuals; RELION rlnSigma2Noise spectra",
        description=(
            "Per-shell noise variance of particle images against CTF-modulated projections of a "
            "map at each particle's pose and shift (basic and 2D advanced plots), and/or the "
            "per-group rlnSigma2Noise spectra of a RELION model.star."
        ),
    )
    p.add_argument("--particles", help="particle table (.star or .cs) with poses, shifts, CTF, images")
    p.add_argument("--map", dest="map_path", help="map (MRC) the particles were aligned to")
    p.add_argument("--stack", help="particle stack (MRCS) indexed by the table's image index "
                   "(default: the stacks named in the table)")
    p.add_argument("--model", help="RELION *_model.star: plot its per-group rlnSigma2Noise")
    p.add_argument("--pixel-size", type=positive_float, default=None, help="particle pixel size (Å) if the table lacks it")
    p.add_argument("--map-pixel-size", type=positive_float, default=None, help="map voxel size (Å) if the header lacks it")
    p.add_argument("--scale", default="global",
                   help="map-to-image amplitude: global (least squares, default), per_image, none, or a number")
    p.add_argument("--no-ctf", action="store_true", help="do not multiply projections by the CTF")
    p.add_argument("--max-particles", type=positive_int, default=None,
                   help="use a random subset of this many particles (seed 0)")
    p.add_argument("--chunk-size", type=positive_int, default=256, help="particles per dask task")
    p.add_argument("--workers", type=positive_int, default=None, help="threads (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask.distributed scheduler address: chunks run on its workers, which read the stacks "
                        "(default: local threads)")
    p.add_argument("--per-pixel", action="store_true",
                   help="plot RELION spectra as 2 N^2 sigma2 (per-pixel convention) instead of RELION units")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_output_args(p, default_json="noise.json")
    p.set_defaults(func=run, plan=plan)


def _scale_arg(text: str):
    if text in ("global", "per_image", "none"):
        return text
    try:
        return float(text)
    except ValueError:
        raise CryodiagInputError(f"--scale must be global, per_image, none or a number, got {text!r}") from None


def plan(args):
    from ..workflows.noise import plan_outputs

    p = output_plan(args, inputs=files_of(args.particles))
    plan_outputs(p, particles=bool(args.particles), model=bool(args.model), json_name=args.json)
    return p


def run(args) -> int:
    from ..workflows import noise as wf

    if not args.particles and not args.model:
        raise CryodiagInputError("give --particles and --map, and/or --model")
    if args.particles and not args.map_path:
        raise CryodiagInputError("--particles needs --map (the map the particles were aligned to)")
    scale = _scale_arg(args.scale)
    out = plan(args).check()
    nm = relion = inputs = None
    if args.particles:
        import threading

        def progress(done, total):
            if not args.quiet:
                print(f"\rnoise model: {done:,}/{total:,} particles", end="", file=sys.stderr, flush=True)

        from ..compute.progress import run_steps
        from ..io.picks import read_table

        table = wf.subset(read_table(args.particles), args.max_particles or 0)
        images = wf.image_source(table, stack=args.stack)
        out.protect(images.files)  # the stacks the table names are inputs too
        options = wf.NoiseOptions(apply_ctf=not args.no_ctf, chunk_size=args.chunk_size,
                                  pixel_size_A=args.pixel_size or 0.0, map_pixel_size_A=args.map_pixel_size or 0.0)
        gen = wf.iter_noise_model(table, args.map_path, options, images=images, scale=scale,
                                  num_workers=args.workers, cancel=threading.Event(), client=args.scheduler)
        nm = run_steps(gen, progress)
        if not args.quiet:
            print(file=sys.stderr)
        inputs = {"particles": str(args.particles), "map": str(args.map_path), "stack": args.stack,
                  "map_pixel_size_A": _map_pixel_size(args)}
        d = nm.to_dict()
        print(f"noise model: {nm.n_images:,} particles, box {nm.box} px at {nm.pixel_size_A:.4g} Å/px, "
              f"scale {d.get('scale', 'per image')}")
        warned = {m for _, m in nm.warnings}
        for note in nm.notes:
            if note not in warned:
                print(f"  note: {note}")
        for path, message in nm.warnings:
            print(f"cryodiag noise: warning: {path or args.particles}: {message}", file=sys.stderr)
    if args.model:
        relion = wf.relion_spectra(args.model)
        for message in getattr(relion["spectra"], "notes", []):
            print(f"cryodiag noise: warning: {args.model}: {message}", file=sys.stderr)
        print(f"RELION noise spectra: {len(relion['spectra'])} {relion['model'].group_kind}s from {args.model}")
    written = wf.export(out, nm, relion, inputs=inputs, per_pixel=args.per_pixel, json_name=args.json)
    for p in written:
        print(f"wrote {p}")
    return 0


def _map_pixel_size(args):
    """The map voxel size used (Å): ``--map-pixel-size``, else the header's."""
    if args.map_pixel_size:
        return args.map_pixel_size
    from ..io.mrc import read_header

    return read_header(args.map_path).pixel_size_A
