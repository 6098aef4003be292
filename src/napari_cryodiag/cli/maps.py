"""``cryodiag fsc | guinier | sharpen | views``: map validation headless.

    cryodiag fsc HALF1 HALF2 [--mask M] [--randomise-from tight75|relion|nomask143|Å] -o OUT
    cryodiag guinier MAP [--fsc postprocess.star|fsc.csv | --half1 H1 --half2 H2] [--mask M] -o OUT
    cryodiag sharpen HALF1 HALF2 [--mask M] [--bfactor B] [--lowpass Å] -o OUT
    cryodiag views MAP -o OUT

``fsc`` writes ``fsc.png``, ``guinier.png``, ``fsc.json`` (voxel size, box, per-shell frequency
and every curve, randomisation shell, resolutions per curve shell-edge and interpolated, the
diagnosis flags, the Guinier fit), ``fsc.csv``, ``fsc_corrected.xml`` (EMDB) and
``postprocess.star`` (RELION-style); ``--write-masks`` adds the automatic masks as MRC.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import CryodiagInputError
from ._common import add_output_args, nonnegative_float, nonnegative_int, output_plan, positive_float


def _add_fsc_options(p) -> None:
    p.add_argument("--mask", help="user mask (MRC, same grid, values in [0, 1]); the corrected curve uses it")
    p.add_argument("--pixel-size", type=positive_float, default=None, help="voxel size (Å) when the headers lack it")
    p.add_argument("--randomise-from", default="tight75",
                   help="phase randomisation start: tight75 (default: 75%% of the tight 0.143 frequency), "
                        "relion (unmasked FSC < 0.8), nomask143 (no-mask FSC < 0.143), or a resolution in Å")
    p.add_argument("--wait-shells", type=nonnegative_int, default=0,
                   help="shells after the randomisation shell that keep the masked value (RELION: 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the phase randomisation")
    g = p.add_argument_group("automatic masks (cryoSPARC presets)")
    g.add_argument("--threshold", type=float, default=0.5, help="fraction of the low-passed average's maximum")
    g.add_argument("--mask-lowpass", type=nonnegative_float, default=15.0, help="low-pass (Å) before thresholding; 0 = none")
    g.add_argument("--loose", default="25,40", help="loose mask: 1 within A Å, 0 from B Å (A,B)")
    g.add_argument("--tight", default="6,12", help="tight mask: 1 within A Å, 0 from B Å (A,B)")
    g.add_argument("--sphere-inner", type=float, default=0.85, help="spherical mask inner/outer radius")
    p.add_argument("--guinier-window", default="fsc143",
                   help="Guinier fit window: fsc143 (10 Å to the 0.143 resolution), relion "
                        "(10 Å to where FSC weighting zeroes shells), or LOW,HIGH in Å")
    p.add_argument("--quantity", default="amplitude2", choices=("amplitude2", "amplitude"),
                   help="Guinier y: ln mean |F|^2 (default, cryoSPARC) or ln mean |F| (RELION)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fsc", help="FSC family (no mask, spherical, loose, tight, corrected), resolution, diagnosis, Guinier",
        description="FSC of two half maps with automatic masks and the phase-randomisation-corrected curve; "
                    "resolution at 0.143 and 0.5; curve diagnosis; Guinier B-factor; CSV/EMDB XML/postprocess.star.",
    )
    p.add_argument("half1", nargs="?")
    p.add_argument("half2", nargs="?")
    p.add_argument("--postprocess", help="instead of half maps: plot and diagnose the curves of a RELION postprocess.star")
    _add_fsc_options(p)
    p.add_argument("--write-masks", action="store_true", help="write the automatic masks as MRC files")
    add_output_args(p, default_json="fsc.json")
    p.set_defaults(func=run_fsc, plan=plan_fsc)

    g = subparsers.add_parser(
        "guinier", help="Guinier plot and B-factor of a map",
        description="ln structure factor against 1/d^2 with a line fitted between 10 Å and the FSC 0.143 "
                    "resolution (from --fsc, or from --half1/--half2), or an explicit --guinier-window.",
    )
    g.add_argument("map")
    g.add_argument("--fsc", help="postprocess.star (corrected column) or a cryodiag fsc.csv")
    g.add_argument("--half1")
    g.add_argument("--half2")
    _add_fsc_options(g)
    add_output_args(g, default_json="guinier.json")
    g.set_defaults(func=run_guinier, plan=plan_guinier)

    s = subparsers.add_parser("sharpen", help="sharpen the half-map average (fitted or given B-factor)")
    s.add_argument("half1")
    s.add_argument("half2")
    _add_fsc_options(s)
    s.add_argument("--bfactor", type=float, default=None,
                   help="sharpening B-factor (Å^2, negative sharpens); default: minus the fitted decay")
    s.add_argument("--no-fsc-weighting", action="store_true")
    s.add_argument("--lowpass", type=nonnegative_float, default=None, help="low-pass (Å) with a raised-cosine edge")
    s.add_argument("--apply-mask", action="store_true", help="multiply the result by the mask of the corrected curve")
    s.add_argument("--map-name", default="sharpened.mrc")
    add_output_args(s, default_json="sharpen.json")
    s.set_defaults(func=run_sharpen, plan=plan_sharpen)

    v = subparsers.add_parser("views", help="central slices, projections and Fourier slices of a map (triptychs)")
    v.add_argument("map")
    add_output_args(v, default_json="views.json")
    v.set_defaults(func=run_views, plan=plan_views)


# --------------------------------------------------------------------------- options


def _pair(text: str, name: str):
    try:
        a, b = (float(t) for t in str(text).split(","))
    except ValueError:
        raise CryodiagInputError(f"{name} needs two numbers A,B, got {text!r}") from None
    return a, b


def options(args):
    """The :class:`~napari_cryodiag.workflows.maps.MapValidationOptions` of the arguments."""
    from ..workflows.maps import MapValidationOptions

    ld, ls = _pair(args.loose, "--loose")
    td, ts = _pair(args.tight, "--tight")
    o = MapValidationOptions(wait_shells=args.wait_shells, seed=args.seed, threshold_fraction=args.threshold,
                             mask_lowpass_A=args.mask_lowpass, loose_dilate_A=ld, loose_soft_A=ls,
                             tight_dilate_A=td, tight_soft_A=ts, sphere_inner_fraction=args.sphere_inner,
                             guinier_quantity=args.quantity)
    if args.randomise_from in ("tight75", "relion", "nomask143"):
        o.randomise_from = args.randomise_from
    else:
        try:
            o.randomise_from, o.randomise_from_A = "explicit", float(args.randomise_from)
        except ValueError:
            raise CryodiagInputError(f"--randomise-from must be tight75, relion, nomask143 or a resolution in Å, "
                                     f"got {args.randomise_from!r}") from None
    if args.guinier_window in ("fsc143", "relion"):
        o.guinier_window = args.guinier_window
    else:
        o.guinier_window = "explicit"
        o.guinier_low_A, o.guinier_high_A = _pair(args.guinier_window, "--guinier-window")
    return o


def _validation(args, h1_path, h2_path):
    from ..workflows.maps import MapValidation, load_half_maps

    # one-shot: a lean session keeps only the masks written out (and the corrected curve's)
    v = MapValidation(load_half_maps(h1_path, h2_path, args.mask, pixel_size_A=args.pixel_size), lean=True,
                      keep_masks=None if getattr(args, "write_masks", False) else ())
    v.compute(options(args))
    return v


# --------------------------------------------------------------------------- subcommands


def plan_fsc(args):
    from ..workflows.maps import plan_exports

    plan = output_plan(args)
    if args.postprocess:
        plan.figure("fsc")
        plan.file("fsc.csv")
        plan.file("fsc_corrected.xml")
        plan.file(args.json, "JSON of the numbers")
    else:
        plan_exports(plan, masks=args.write_masks, json_name=args.json)
    return plan


def run_fsc(args) -> int:
    if not args.postprocess and not (args.half1 and args.half2):
        raise CryodiagInputError("give two half maps (HALF1 HALF2), or --postprocess postprocess.star")
    options(args)  # bad option values before any work
    plan = plan_fsc(args).check()
    if args.postprocess:
        return _run_fsc_postprocess(args, plan)
    v = _validation(args, args.half1, args.half2)
    s = v.session
    if s.guinier is None:
        print(f"cryodiag fsc: warning: {args.half1}: no Guinier B-factor: {s.guinier_error}", file=sys.stderr)
    v.export(plan, masks=args.write_masks, json_name=args.json)
    res = s.fsc.resolution("corrected")
    print(f"corrected FSC 0.143: {res.interpolated_A:.2f} Å (interpolated), {res.shell_edge_A:.2f} Å (shell edge)"
          + (" [Nyquist-limited]" if res.nyquist_limited else ""))
    for fl in s.flags:
        print(f"flag {fl.code}: {fl.one_line()}")
    return 0


def _run_fsc_postprocess(args, plan) -> int:
    from ..io.fsc_export import write_fsc_csv, write_fsc_xml
    from ..plots.fsc import plot_fsc
    from ..workflows.maps import fsc_from_postprocess

    r, flags = fsc_from_postprocess(args.postprocess)
    written = plan.save_figure(plot_fsc(r, flags=flags, convention="shell_edge",
                                        title=f"FSC from {Path(args.postprocess).name} (0.143, shell edge as RELION)"),
                               "fsc")
    for name, write in (("fsc.csv", write_fsc_csv), ("fsc_corrected.xml", write_fsc_xml)):
        p = plan.folder / name
        written.append(write(p, r, **plan.writer_kwargs(p)))
    d = {"inputs": {"postprocess": args.postprocess}}
    d.update(r.to_dict())
    d["flags"] = [f.to_dict() for f in flags]
    d["files"] = [str(p) for p in written]
    plan.write_json(args.json, d)
    res = r.resolution("corrected")
    print(f"corrected FSC 0.143: {res.shell_edge_A:.2f} Å (shell edge), {res.interpolated_A:.2f} Å (interpolated)")
    for fl in flags:
        print(f"flag {fl.code}: {fl.one_line()}")
    return 0


def plan_guinier(args):
    plan = output_plan(args)
    plan.figure("guinier")
    plan.file(args.json, "JSON of the numbers")
    return plan


def run_guinier(args) -> int:
    from ..plots.guinier import plot_guinier
    from ..workflows.maps import guinier_of_map

    opts = options(args)
    plan = plan_guinier(args).check()
    g = guinier_of_map(args.map, opts, pixel_size_A=args.pixel_size, mask=args.mask, fsc=args.fsc,
                       half1=args.half1, half2=args.half2)
    fit, info = g["fit"], g["info"]
    written = plan.save_figure(plot_guinier(g["curve"], fit, title=f"Guinier plot of {Path(args.map).name}"), "guinier")
    info["files"] = [str(p) for p in written]
    plan.write_json(args.json, info)
    print(f"B-factor (map decay) {fit.bfactor_A2:.1f} Å^2; sharpening B (RELION sign) {fit.sharpening_bfactor_A2:.1f} Å^2; "
          f"window {fit.low_A:.1f}-{fit.high_A:.2f} Å")
    return 0


def plan_sharpen(args):
    plan = output_plan(args)
    plan.file(args.map_name, "sharpened map")
    plan.file(args.json, "JSON of the numbers")
    return plan


def run_sharpen(args) -> int:
    from ..io.mrc import write_mrc
    from ..workflows.maps import SharpenOptions

    options(args)  # bad option values before any work
    plan = plan_sharpen(args).check()
    v = _validation(args, args.half1, args.half2)
    s = v.session
    vol = v.sharpen(SharpenOptions(use_fitted_bfactor=args.bfactor is None, bfactor_A2=args.bfactor or 0.0,
                                   fsc_weighting=not args.no_fsc_weighting, lowpass_A=args.lowpass or 0.0,
                                   apply_mask=args.apply_mask))
    dest = plan.folder / args.map_name
    path = write_mrc(dest, vol, s.fsc.pixel_size_A, **plan.writer_kwargs(dest))
    plan.write_json(args.json, {"map": str(path), "sharpen": s.sharpen_used.to_dict(),
                                "guinier": s.guinier.to_dict() if s.guinier is not None else {"skipped": s.guinier_error},
                                "resolution_A": s.fsc.resolution_A})
    print(f"sharpened with B = {s.sharpen_used.bfactor_A2:.1f} Å^2 -> {path}")
    return 0


def plan_views(args):
    plan = output_plan(args)
    for key in ("slices", "projections", "fourier"):
        plan.figure(f"views_{key}")
    plan.file(args.json, "JSON of the numbers")
    return plan


def run_views(args) -> int:
    from ..workflows.maps import map_views

    plan = plan_views(args).check()
    v = map_views(args.map)
    for w in v["warnings"]:
        print(f"cryodiag views: warning: {w}", file=sys.stderr)
    written = []
    for stem, fig in v["figures"].items():
        written += plan.save_figure(fig, stem)
    plan.write_json(args.json, dict(v["info"], files=[str(p) for p in written]))
    return 0
