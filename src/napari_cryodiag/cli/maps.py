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

import numpy as np

from ..errors import CryodiagInputError
from ._common import add_output_args, nonnegative_float, nonnegative_int, output_dir, positive_float, save_figure, write_json


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
    p.set_defaults(func=run_fsc)

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
    g.set_defaults(func=run_guinier)

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
    s.set_defaults(func=run_sharpen)

    v = subparsers.add_parser("views", help="central slices, projections and Fourier slices of a map (triptychs)")
    v.add_argument("map")
    add_output_args(v, default_json="views.json")
    v.set_defaults(func=run_views)


# --------------------------------------------------------------------------- helpers


def _pair(text: str, name: str):
    try:
        a, b = (float(t) for t in str(text).split(","))
    except ValueError:
        raise CryodiagInputError(f"{name} needs two numbers A,B, got {text!r}") from None
    return a, b


def _mask_params(args):
    from ..compute.maps.masks import MaskParams

    ld, ls = _pair(args.loose, "--loose")
    td, ts = _pair(args.tight, "--tight")
    return MaskParams(sphere_inner_fraction=args.sphere_inner, threshold_fraction=args.threshold,
                      lowpass_A=args.mask_lowpass, loose_dilate_A=ld, loose_soft_A=ls, tight_dilate_A=td, tight_soft_A=ts)


def _window(text: str):
    if text in ("fsc143", "relion"):
        return text
    return _pair(text, "--guinier-window")


def read_volume(path, memory_factor: float = 1.0):
    """``(data, voxel_size_zyx_A or None, path)`` of a map file (refused when ``memory_factor``
    float32 copies of it would not fit in the available memory)."""
    from ..io.mrc import read_map

    m = read_map(path, memory_factor=memory_factor)
    if m.data.ndim != 3:
        raise CryodiagInputError(f"expected a 3D map, got shape {m.data.shape}", path)
    return m.data, m.voxel_size_A, str(path)


def load_half_maps(h1_path, h2_path, pixel_size=None):
    from ..compute.maps.fsc import MEMORY_FACTOR, check_half_maps, check_not_identical

    h1, v1, _ = read_volume(h1_path, MEMORY_FACTOR)
    h2, v2, _ = read_volume(h2_path)
    apix = check_half_maps(h1, h2, v1, v2, h1_path, h2_path)
    check_not_identical(h1, h2, h1_path, h2_path)
    for vol, p in ((h1, h1_path), (h2, h2_path)):
        if vol.size and vol.min() == vol.max():  # an FSC of it would fail later, without the file's name
            raise CryodiagInputError(f"half map is constant (every voxel is {float(vol.flat[0]):g}): an empty map?", p)
    if pixel_size:
        apix = float(pixel_size)
    if not apix:
        raise CryodiagInputError("voxel size is 0 (unknown) in both headers; give --pixel-size", h1_path)
    return h1, h2, apix


def _session(args, h1_path, h2_path):
    from ..compute.maps.masks import check_user_mask
    from ..compute.maps.sharpen import ValidationSession

    h1, h2, apix = load_half_maps(h1_path, h2_path, args.pixel_size)
    mask = None
    if args.mask:
        m, mv, _ = read_volume(args.mask)
        mask = check_user_mask(m, h1.shape, args.mask, voxel_size_A=mv, expected_voxel_size_A=apix)
    s = ValidationSession(h1, h2, apix, h1_path, h2_path)
    s.compute(mask=mask, mask_path=args.mask, mask_params=_mask_params(args), randomise_from=args.randomise_from,
              wait_shells=args.wait_shells, seed=args.seed, guinier_window_rule=_window(args.guinier_window),
              guinier_quantity=args.quantity)
    return s


def _protect(args):
    return [p for p in (getattr(args, "half1", None), getattr(args, "half2", None), getattr(args, "mask", None),
                        getattr(args, "map", None)) if p]


# --------------------------------------------------------------------------- subcommands


def run_fsc(args) -> int:
    from ..compute.maps.guinier import fit_guinier
    from ..io.fsc_export import write_fsc_csv, write_fsc_xml, write_postprocess_star
    from ..plots.fsc import plot_fsc
    from ..plots.guinier import plot_guinier

    if args.postprocess:
        return _run_fsc_postprocess(args)
    if not (args.half1 and args.half2):
        raise CryodiagInputError("give two half maps (HALF1 HALF2), or --postprocess postprocess.star")
    out = output_dir(args)
    s = _session(args, args.half1, args.half2)
    r = s.fsc
    written = []
    written += save_figure(plot_fsc(r, flags=s.flags), out, "fsc", args.format, overwrite=args.overwrite)
    written += save_figure(plot_guinier(s.guinier_curve, s.guinier), out, "guinier", args.format, overwrite=args.overwrite)
    protect = _protect(args)
    written.append(write_fsc_csv(out / "fsc.csv", r, overwrite=args.overwrite, protect=protect))
    written.append(write_fsc_xml(out / "fsc_corrected.xml", r, overwrite=args.overwrite, protect=protect))
    ga = s.rule_guinier_curve("amplitude")
    fa = fit_guinier(ga, s.guinier.low_A, s.guinier.high_A, s.guinier.window_rule) if s.guinier is not None else None
    if s.guinier is None:
        print(f"cryodiag fsc: warning: {args.half1}: no Guinier B-factor: {s.guinier_error}", file=sys.stderr)
    written.append(write_postprocess_star(out / "postprocess.star", r, ga, fa, overwrite=args.overwrite, protect=protect,
                                          half1_name=args.half1, half2_name=args.half2, mask_name=args.mask or ""))
    if args.write_masks:
        from ..io.mrc import write_mrc

        for name, m in r.masks.items():
            if name != "user":
                written.append(write_mrc(out / f"mask_{name}.mrc", m, r.pixel_size_A, overwrite=args.overwrite, protect=protect))
    data = _fsc_json(s, args)
    data["files"] = [str(p) for p in written]
    write_json(out / args.json, data, overwrite=args.overwrite)
    res = r.resolution("corrected")
    print(f"corrected FSC 0.143: {res.interpolated_A:.2f} Å (interpolated), {res.shell_edge_A:.2f} Å (shell edge)"
          + (" [Nyquist-limited]" if res.nyquist_limited else ""))
    for fl in s.flags:
        print(f"flag {fl.code}: {fl.one_line()}")
    return 0


def _run_fsc_postprocess(args) -> int:
    from ..compute.maps.fsc import fsc_result_from_relion
    from ..compute.maps.diagnosis import diagnose
    from ..io.fsc_export import write_fsc_csv, write_fsc_xml
    from ..io.star import read_postprocess
    from ..plots.fsc import plot_fsc

    out = output_dir(args)
    r = fsc_result_from_relion(read_postprocess(args.postprocess), args.postprocess)
    flags = diagnose(r)
    written = save_figure(plot_fsc(r, flags=flags, convention="shell_edge",
                                   title=f"FSC from {Path(args.postprocess).name} (0.143, shell edge as RELION)"),
                          out, "fsc", args.format, overwrite=args.overwrite)
    written.append(write_fsc_csv(out / "fsc.csv", r, overwrite=args.overwrite, protect=[args.postprocess]))
    written.append(write_fsc_xml(out / "fsc_corrected.xml", r, overwrite=args.overwrite, protect=[args.postprocess]))
    d = {"inputs": {"postprocess": args.postprocess}}
    d.update(r.to_dict())
    d["flags"] = [f.to_dict() for f in flags]
    d["files"] = [str(p) for p in written]
    write_json(out / args.json, d, overwrite=args.overwrite)
    res = r.resolution("corrected")
    print(f"corrected FSC 0.143: {res.shell_edge_A:.2f} Å (shell edge), {res.interpolated_A:.2f} Å (interpolated)")
    for fl in flags:
        print(f"flag {fl.code}: {fl.one_line()}")
    return 0


def _fsc_json(s, args) -> dict:
    d = {"inputs": {"half1": args.half1, "half2": args.half2, "mask": args.mask}}
    d.update(s.to_dict())
    return d


def _read_fsc_curve(path):
    """Corrected FSC curve from a postprocess.star or a cryodiag fsc.csv: ``(freq_invA, fsc)``."""
    p = Path(path)
    if p.suffix == ".star":
        from ..io.star import read_postprocess

        t = read_postprocess(p)["fsc"]
        col = "rlnFourierShellCorrelationCorrected"
        if col not in t:
            raise CryodiagInputError(f"no {col} column", path)
        return t["rlnResolution"].to_numpy(float), t[col].to_numpy(float)
    import pandas as pd

    try:
        t = pd.read_csv(p)
    except Exception as err:  # noqa: BLE001
        raise CryodiagInputError(f"cannot read FSC table: {err}", path) from None
    for col in ("fsc_corrected", "fsc_tight", "fsc_user"):
        if col in t:
            return t["frequency_invA"].to_numpy(float), t[col].to_numpy(float)
    raise CryodiagInputError("no fsc_corrected column (expected a cryodiag fsc.csv)", path)


def run_guinier(args) -> int:
    from ..compute.maps.guinier import fit_guinier, guinier_curve_of_map
    from ..plots.guinier import plot_guinier

    out = output_dir(args)
    from ..compute.maps.fsc import check_cubic
    from ..io.mrc import MapData

    vol, vs, _ = read_volume(args.map, 4.0)
    check_cubic(vol, args.map)
    apix = args.pixel_size or MapData(vol, vs, (0.0,) * 3, args.map).isotropic_voxel_size_A()
    if not apix:
        raise CryodiagInputError("voxel size is 0 (unknown) in the header; give --pixel-size", args.map)
    mask = None
    if args.mask:
        from ..compute.maps.masks import check_user_mask

        m, mv, _ = read_volume(args.mask)
        mask = check_user_mask(m, vol.shape, args.mask, voxel_size_A=mv, expected_voxel_size_A=apix)
    window = _window(args.guinier_window)
    info = {"map": args.map, "voxel_size_A": apix, "box": int(vol.shape[0])}
    weighting = None  # RELION's window: the FSC-weighted map (curve per shell of this box)
    if isinstance(window, tuple):
        lo, hi, rule = max(window), min(window), "explicit"
    elif args.half1 and args.half2:
        s = _session(args, args.half1, args.half2)
        from ..compute.maps.guinier import guinier_window

        weighting = s.weighting_fsc()[0] if window == "relion" else None
        lo, hi, rule = guinier_window(window, weighting if weighting is not None else s.fsc.curves["corrected"],
                                      s.fsc.pixel_size_A, s.fsc.box)
        info["fsc_source"] = "half maps"
        info["resolution_A"] = s.fsc.resolution_A
    elif args.fsc:
        freq, curve = _read_fsc_curve(args.fsc)
        info["fsc_source"] = args.fsc
        if window == "fsc143":
            below = np.nonzero(curve[1:] < 0.143)[0]
            i = int(below[0]) + 1 if below.size else len(curve) - 1
            if below.size:
                t = (curve[i - 1] - 0.143) / (curve[i - 1] - curve[i])
                hi = 1.0 / (freq[i - 1] + t * (freq[i] - freq[i - 1]))
            else:
                hi = 1.0 / freq[-1]
        else:
            from ..compute.maps.guinier import relion_last_weighted_shell

            hi = 1.0 / freq[max(relion_last_weighted_shell(curve), 1)]
            weighting = curve
        lo, rule = 10.0, window
        info["resolution_A"] = float(hi) if window == "fsc143" else None
    else:
        raise CryodiagInputError("give --fsc, or --half1 and --half2, or an explicit --guinier-window LOW,HIGH")
    if weighting is not None and len(weighting) != vol.shape[0] // 2 + 1:
        raise CryodiagInputError(f"the FSC has {len(weighting)} shells but RELION's FSC weighting of this "
                                 f"{vol.shape[0]}-voxel box needs {vol.shape[0] // 2 + 1}", args.fsc or args.half1)
    if weighting is not None:
        info["map_weighting"] = "FSC-weighted as relion_postprocess (sqrt(2F/(1+F)), 0 from F < 1e-4)"
    curve = guinier_curve_of_map(vol, apix, args.quantity, mask=mask, weighting_fsc=weighting)
    try:
        fit = fit_guinier(curve, lo, hi, rule)
    except CryodiagInputError as err:  # the fit's message names no file
        raise CryodiagInputError(err.problem, err.path or args.map) from None
    written = save_figure(plot_guinier(curve, fit, title=f"Guinier plot of {Path(args.map).name}"), out, "guinier",
                          args.format, overwrite=args.overwrite)
    info["guinier"] = dict(fit.to_dict(), x_invA2=curve.x_invA2, y=curve.y)
    info["files"] = [str(p) for p in written]
    write_json(out / args.json, info, overwrite=args.overwrite)
    print(f"B-factor (map decay) {fit.bfactor_A2:.1f} Å^2; sharpening B (RELION sign) {fit.sharpening_bfactor_A2:.1f} Å^2; "
          f"window {fit.low_A:.1f}-{fit.high_A:.2f} Å")
    return 0


def run_sharpen(args) -> int:
    from ..compute.maps.sharpen import SharpenParams
    from ..io.mrc import write_mrc

    out = output_dir(args)
    s = _session(args, args.half1, args.half2)
    params = SharpenParams(bfactor_A2=args.bfactor, fsc_weighting=not args.no_fsc_weighting, lowpass_A=args.lowpass,
                           apply_mask=args.apply_mask)
    vol = s.sharpen(params)
    path = write_mrc(out / args.map_name, vol, s.fsc.pixel_size_A, overwrite=args.overwrite, protect=_protect(args))
    write_json(out / args.json, {"map": str(path), "sharpen": s.sharpen_used.to_dict(), "guinier": s.guinier.to_dict() if s.guinier is not None else {"skipped": s.guinier_error},
                                 "resolution_A": s.fsc.resolution_A}, overwrite=args.overwrite)
    print(f"sharpened with B = {s.sharpen_used.bfactor_A2:.1f} Å^2 -> {path}")
    return 0


def run_views(args) -> int:
    from ..compute.maps.views import all_views
    from ..plots.volume_views import plot_triptych

    out = output_dir(args)
    vol, vs, _ = read_volume(args.map, 4.0)
    if vs is not None and not all(v > 0 for v in vs):
        print(f"cryodiag views: warning: {args.map}: voxel size unknown along some axes {vs}; plotted in pixels",
              file=sys.stderr)
        vs = None
    views = all_views(vol)
    written = []
    titles = {"slices": "central slices", "projections": "projections (sums)", "fourier": "Fourier slices, log |F|"}
    from ..plots.volume_views import fourier_spacing

    for key, title in titles.items():
        spacing = vs
        if key == "fourier" and vs is not None:
            spacing = fourier_spacing(vol.shape, vs)
        fig = plot_triptych(views[key], title=f"{Path(args.map).name}: {title}", cmap="magma" if key == "fourier" else "gray",
                            spacing_zyx=spacing)
        written += save_figure(fig, out, f"views_{key}", args.format, overwrite=args.overwrite)
    write_json(out / args.json, {"map": args.map, "shape": vol.shape, "voxel_size_A": vs, "files": [str(p) for p in written],
                                 "planes": "z-y (x = n//2), z-x (y = n//2), y-x (z = n//2)"}, overwrite=args.overwrite)
    return 0
