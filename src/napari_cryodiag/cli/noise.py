"""``cryodiag noise``: noise model from particle residuals, and RELION's noise spectra.

    cryodiag noise --particles particles.star --map map.mrc [--stack particles.mrcs] -o OUT
    cryodiag noise --model run_it025_model.star -o OUT

Writes ``noise_basic``, ``noise_advanced`` (and ``relion_sigma2``) figures and ``noise.json``
with the per-shell numbers (frequency in 1/Å, resolution in Å, noise variance per pixel,
RELION-convention sigma2, signal power, statistical error, scale).
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from ..errors import CryodiagInputError
from ._common import add_output_args, output_dir, positive_float, positive_int, save_figure, write_json


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
    p.add_argument("--per-pixel", action="store_true",
                   help="plot RELION spectra as 2 N^2 sigma2 (per-pixel convention) instead of RELION units")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_output_args(p, default_json="noise.json")
    p.set_defaults(func=run)


def _scale_arg(text: str):
    if text in ("global", "per_image", "none"):
        return text
    try:
        return float(text)
    except ValueError:
        raise CryodiagInputError(f"--scale must be global, per_image, none or a number, got {text!r}") from None


def run(args) -> int:
    if not args.particles and not args.model:
        raise CryodiagInputError("give --particles and --map, and/or --model")
    if args.particles and not args.map_path:
        raise CryodiagInputError("--particles needs --map (the map the particles were aligned to)")
    out = output_dir(args)
    result: dict = {}
    written = []

    if args.particles:
        from ..compute.particles.noise_model import estimate_noise_model
        from ..io.mrc import read_map
        from ..io.picks import read_table
        from ..plots.noise_model import plot_noise_advanced, plot_noise_basic

        table = read_table(args.particles)
        source = table.attrs.get("source", args.particles)
        if args.max_particles and len(table) > args.max_particles:
            keep = np.sort(np.random.default_rng(0).choice(len(table), args.max_particles, replace=False))
            attrs = dict(table.attrs)
            table = table.iloc[keep].reset_index(drop=True)
            table.attrs = attrs
        vmap = read_map(args.map_path)
        map_apix = args.map_pixel_size or vmap.pixel_size_A

        def progress(done, total):
            if not args.quiet:
                print(f"\rnoise model: {done:,}/{total:,} particles", end="", file=sys.stderr, flush=True)

        nm = estimate_noise_model(
            table, vmap.data, stack=args.stack, pixel_size_A=args.pixel_size, map_pixel_size_A=map_apix,
            scale=_scale_arg(args.scale), apply_ctf=not args.no_ctf, chunk_size=args.chunk_size,
            num_workers=args.workers, progress=progress, cancel=threading.Event(), source=source,
        )
        if not args.quiet:
            print(file=sys.stderr)
        result["noise_model"] = nm.to_dict()
        result["inputs"] = {"particles": str(args.particles), "map": str(args.map_path),
                            "stack": args.stack, "map_pixel_size_A": map_apix}
        written += save_figure(plot_noise_basic(nm), out, "noise_basic", args.format, overwrite=args.overwrite)
        written += save_figure(plot_noise_advanced(nm), out, "noise_advanced", args.format,
                               overwrite=args.overwrite)
        print(f"noise model: {nm.n_images:,} particles, box {nm.box} px at {nm.pixel_size_A:.4g} Å/px, "
              f"scale {result['noise_model'].get('scale', 'per image')}")
        for note in nm.notes:
            print(f"  note: {note}")

    if args.model:
        from ..compute.particles.noise_model import relion_noise_spectra
        from ..io.relion_model import read_model_star
        from ..plots.noise_model import plot_relion_sigma2

        model = read_model_star(args.model)
        spectra = relion_noise_spectra(model)
        if not spectra:
            raise CryodiagInputError("the model has no rlnSigma2Noise spectra", args.model)
        counts = group_particle_counts(model)
        result["relion_sigma2_noise"] = {
            "model": str(args.model),
            "pixel_size_A": model.pixel_size_A,
            "image_size_px": model.image_size_px,
            "group_kind": model.group_kind,
            "per_pixel_convention": "per_pixel = 2 * N^2 * sigma2_noise (N = rlnOriginalImageSize)",
            "groups": {name: {**s, "particles": counts.get(name)} for name, s in spectra.items()},
        }
        fig = plot_relion_sigma2(spectra, per_pixel=args.per_pixel, counts=counts)
        written += save_figure(fig, out, "relion_sigma2", args.format, overwrite=args.overwrite)
        print(f"RELION noise spectra: {len(spectra)} {model.group_kind}s from {args.model}")

    written.append(write_json(out / args.json, result, overwrite=args.overwrite))
    for p in written:
        print(f"wrote {p}")
    return 0


def group_particle_counts(model) -> dict:
    """``{group name: rlnGroupNrParticles}`` when the model lists them (RELION < 3.1)."""
    gt = getattr(model, "group_table", None)
    if gt is None or "rlnGroupName" not in gt or "rlnGroupNrParticles" not in gt:
        return {}
    return {str(n): int(c) for n, c in zip(gt["rlnGroupName"], gt["rlnGroupNrParticles"])}
