"""``cryodiag orientations PARTICLES [--half1 H1 --half2 H2] -o OUT``.

Viewing-direction distribution, Fourier sampling and posterior precision maps, SCF/SCF*
(and cFAR from half maps when given): figures plus a JSON with the histogram edges and counts,
SCF, SCF*, cFAR and the sampling maps (with a summary).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import CryodiagInputError
from ._common import add_output_args, output_dir, positive_float, positive_int, save_figure, write_json


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
    p.set_defaults(func=run)


def _read_half_maps(args):
    if bool(args.half1) != bool(args.half2):
        raise CryodiagInputError("cFAR needs both --half1 and --half2", args.half1 or args.half2)
    if not args.half1:
        return None, None, None
    from ..io.mrc import read_map

    from ..compute.maps.fsc import check_half_maps

    m1 = read_map(args.half1)
    m2 = read_map(args.half2)
    # same grid, cubic, same voxel size, finite (the error names both files)
    apix = check_half_maps(m1.data, m2.data, m1.voxel_size_A, m2.voxel_size_A, args.half1, args.half2)
    return m1.data, m2.data, apix


def _drop_rows_without_angles(table, src):
    """Particles without a finite rot/tilt (NaN in the file) are left out with a warning on stderr;
    when none has angles the diagnostics raise (naming the file)."""
    if not {"rot_deg", "tilt_deg"} <= set(table.columns):
        return table
    ok = (np.isfinite(np.asarray(table["rot_deg"], dtype=np.float64))
          & np.isfinite(np.asarray(table["tilt_deg"], dtype=np.float64)))
    if ok.all() or not ok.any():
        return table
    print(f"cryodiag orientations: warning: {src}: {int((~ok).sum())} of {len(table)} particles have no finite "
          "rot/tilt angle (NaN); they are left out", file=sys.stderr)
    attrs = dict(table.attrs)
    table = table[ok].reset_index(drop=True)
    table.attrs = attrs
    return table


def run(args) -> int:
    from ..compute.particles.orientation_diagnostics import orientation_diagnostics
    from ..io.picks import read_table
    from ..plots.orientations import (
        plot_conical_fsc,
        plot_directional_map,
        plot_orientations_overview,
        plot_scf_cfar,
        plot_viewing_directions,
    )

    src = Path(args.particles)
    if not src.exists():
        raise CryodiagInputError("file not found", src)
    table = _drop_rows_without_angles(read_table(src), src)
    h1, h2, half_apix = _read_half_maps(args)
    res = orientation_diagnostics(
        table,
        radius_px=args.radius_px,
        box_px=args.box_px,
        pixel_size_A=args.pixel_size,
        resolution_A=args.resolution,
        n_azimuth=args.n_azimuth,
        n_elevation=args.n_elevation,
        noise_variance=args.noise_variance,
        half1=h1,
        half2=h2,
        half_pixel_size_A=half_apix,
        n_cones=args.n_cones,
        cone_half_angle_deg=args.cone_angle,
        method=args.method,
    )
    out = output_dir(args)
    inputs = {Path(p).resolve() for p in (src, args.half1, args.half2) if p}
    if (out / args.json).resolve() in inputs:
        raise CryodiagInputError("the JSON output would overwrite an input", out / args.json)
    written = []
    written += save_figure(plot_viewing_directions(res.histogram), out, "viewing_directions", args.format, overwrite=args.overwrite)
    written += save_figure(plot_directional_map(res.maps, "fourier_sampling", scf=res.scf), out, "fourier_sampling", args.format, overwrite=args.overwrite)
    if res.maps.posterior_precision is not None:
        written += save_figure(plot_directional_map(res.maps, "posterior_precision"), out, "posterior_precision", args.format, overwrite=args.overwrite)
    written += save_figure(plot_scf_cfar(res.scf, res.cfsc), out, "scf_cfar", args.format, overwrite=args.overwrite)
    if res.cfsc is not None:
        written += save_figure(plot_conical_fsc(res.cfsc), out, "conical_fsc", args.format, overwrite=args.overwrite)
    written += save_figure(plot_orientations_overview(res.histogram, res.maps, res.scf, res.cfsc), out, "orientations_overview", args.format, overwrite=args.overwrite)
    data = res.to_dict()
    data["inputs"] = {"particles": str(src), "half1": args.half1, "half2": args.half2}
    data["figures"] = [str(p) for p in written]
    json_path = write_json(out / args.json, data, overwrite=args.overwrite)
    s = res.scf
    print(f"{res.n_particles} particles; R = {res.radius_px:g} voxels ({res.radius_source})")
    print(f"SCF = {s.scf:.3f}, SCF* = {s.scf_star:.3f} (< 0.81: preferred orientation)")
    if res.cfsc is not None:
        print(f"cFAR = {res.cfsc.cfar:.3f} (< 0.5: anisotropic)")
    print(f"wrote {len(written)} figures and {json_path}")
    return 0
