"""``cryodiag orientations PARTICLES [--half1 H1 --half2 H2] -o OUT``.

Viewing-direction distribution, Fourier sampling and posterior precision maps, SCF/SCF*
(and cFAR from half maps when given): figures plus a JSON with the histogram edges and counts,
SCF, SCF*, cFAR and the sampling maps (with a summary).
"""

from __future__ import annotations

import argparse
import sys

from ._common import add_output_args, files_of, output_plan, positive_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "orientations",
        help="viewing directions, Fourier sampling, posterior precision, SCF*, cFAR",
        description=(
            "Orientation diagnostics of a refined particle set (RELION STAR or cryoSPARC .cs): "
            "equal-area viewing-direction histogram, Fourier sampling and posterior precision "
            "directional maps, SCF/SCF* (Baldwin & Lyumkis 2020; < 0.81 signals preferred "
            "orientation) and, with two half maps, cFAR (< 0.5 signals anisotropy)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("particles", help="particle file (.star or .cs) with 3D poses")
    p.add_argument("--half1", help="first half map (MRC), for cFAR")
    p.add_argument("--half2", help="second half map (MRC), for cFAR")
    p.add_argument("--radius-px", type=positive_float, default=None,
                   help="Fourier shell radius (voxels) of the sampling computations "
                        "(default: box*apix/resolution, else box/4, else 32)")
    p.add_argument("--box-px", type=positive_int, default=None, help="particle box size (px) if the file does not say")
    p.add_argument("--pixel-size", type=positive_float, default=None, help="particle pixel size (Å) if the file does not say")
    p.add_argument("--resolution", type=positive_float, default=None,
                   help="resolution (Å) of the shell considered (sets the radius from box and pixel size)")
    p.add_argument("--noise-variance", type=positive_float, default=1.0, help="noise variance σ² of the posterior precision")
    p.add_argument("--n-azimuth", type=positive_int, default=72, help="azimuth bins")
    p.add_argument("--n-elevation", type=positive_int, default=36, help="elevation bins (uniform in sin(elevation))")
    p.add_argument("--n-cones", type=positive_int, default=256, help="cone axes of cFAR (on a hemisphere)")
    p.add_argument("--cone-angle", type=positive_float, default=20.0, help="cone half-angle (°) of cFAR")
    p.add_argument("--method", choices=("auto", "binned", "direct"), default="auto",
                   help="SCF/sampling computation: binned directions (fast) or particle by particle")
    add_output_args(p, default_json="orientations.json")
    p.set_defaults(func=run, plan=plan)


def plan(args):
    from ..workflows.orientations import plan_outputs

    p = output_plan(args, inputs=files_of(args.particles))
    plan_outputs(p, json_name=args.json)
    return p


def run(args) -> int:
    from ..workflows.orientations import OrientationsOptions, export, load_particles, orientation_diagnostics

    out = plan(args).check()
    table, warnings = load_particles(args.particles)
    for w in warnings:
        print(f"cryodiag orientations: warning: {w}", file=sys.stderr)
    options = OrientationsOptions(
        radius_px=args.radius_px or 0.0, box_px=args.box_px or 0, pixel_size_A=args.pixel_size or 0.0,
        resolution_A=args.resolution or 0.0, noise_variance=args.noise_variance, n_azimuth=args.n_azimuth,
        n_elevation=args.n_elevation, n_cones=args.n_cones, cone_half_angle_deg=args.cone_angle, method=args.method,
    )
    res = orientation_diagnostics(table, options, half1=args.half1, half2=args.half2)
    written = export(res, out, json_name=args.json, extra={
        "inputs": {"particles": str(args.particles), "half1": args.half1, "half2": args.half2}})
    s = res.scf
    print(f"{res.n_particles} particles; R = {res.radius_px:g} voxels ({res.radius_source})")
    print(f"SCF = {s.scf:.3f}, SCF* = {s.scf_star:.3f} (< 0.81: preferred orientation)")
    if res.cfsc is not None:
        print(f"cFAR = {res.cfsc.cfar:.3f} (< 0.5: anisotropic)")
    print(f"wrote {len(written) - 1} figures and {written[-1]}")
    return 0
