"""``cryodiag picks``: Inspect Picks headless: score, pick, calibrate, threshold, dedupe, export.

One command runs the steps that its flags ask for, in this order:

1. **input**: pick files (``.star``/``.cs``/``.cbox``, folders, globs), or ``--pick`` on
   ``--micrographs`` (blob of ``--diameter-A``, or ``--templates`` class averages);
2. **score** (``--score``): NCC and power for every pick on its micrograph (dask; threads or
   ``--scheduler ADDRESS``), on ``--denoised`` micrographs when given;
3. **defocus** from the picks or a CTF table (``--ctf``), then **calibrate** the two axes'
   scores against defocus (``--calibrate both|x|y|none``, ``--calibration-mode``,
   ``--calibration-method``); without defocus calibration is disabled with a message;
4. **threshold**: ``--x-min/--x-max/--y-min/--y-max`` (in the units shown: calibrated when
   calibrated), a thresholds JSON (``--thresholds``), or suggested defaults;
5. **dedupe** (``--dedupe-A D``) among the kept picks, keeping the higher score
   (``--dedupe-keep first`` for RELION's rule);
6. **export** the kept picks (``--export-star`` RELION particle STAR, ``--export-coords`` RELION
   coordinate files + index, ``--export-cs``; ``--export-rejected`` adds ``*_rejected`` files)
   with a side JSON of the settings, atomically, never over an input (``io.selection``).

Writes into ``--out``: ``pick_histogram.<fmt>``, ``calibration.<fmt>`` (when calibrated) and
``picks.json`` (per-micrograph medians and defocus, calibration fits, thresholds, counts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ._common import add_output_args, files_of, nonnegative_float, output_plan, positive_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "picks",
        help="inspect picks: NCC x power histogram, calibration, thresholds, duplicates, export",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("picks", nargs="*", help="pick files, folders or globs (.star, .cs, .cbox)")
    g = p.add_argument_group("micrographs, scoring and picking")
    g.add_argument("--micrographs", metavar="DIR|GLOB", help="micrographs (2D MRC) for --score / --pick")
    g.add_argument("--denoised", metavar="DIR|GLOB", help="denoised/low-passed micrographs to score on (same order)")
    g.add_argument("--score", action="store_true", help="compute NCC and power for the picks")
    g.add_argument("--pick", action="store_true", help="pick the micrographs (blob or --templates)")
    g.add_argument("--diameter-A", type=positive_float, help="particle diameter in Å (blob; power annulus)")
    g.add_argument("--diameter-px", type=positive_float, help="particle diameter in micrograph pixels")
    g.add_argument("--min-diameter-A", type=nonnegative_float, help="inner diameter of the power annulus (default 0)")
    g.add_argument("--max-diameter-A", type=positive_float, help="outer diameter of the power annulus (default: diameter)")
    g.add_argument("--templates", metavar="MRCS", help="2D class averages (protein bright) for NCC / picking")
    g.add_argument("--template-pixel-size-A", type=positive_float, help="pixel size of the templates (default: header)")
    g.add_argument("--n-angles", type=positive_int, default=36, help="in-plane angles per template (default 36)")
    g.add_argument("--lowpass-A", type=nonnegative_float, help="low-pass for scoring (default: automatic, see docs)")
    g.add_argument("--contrast", choices=["dark", "bright"], default="dark",
                   help="particles dark (raw micrographs, default) or bright")
    g.add_argument("--pick-ncc-min", type=float, default=None,
                   help="picker: lowest NCC kept (default -0.1 for the blob picker, 0.1 with --templates)")
    g.add_argument("--min-distance-A", type=positive_float, help="picker: minimum distance between picks (default: diameter)")
    g.add_argument("--pixel-size-A", type=positive_float, help="micrograph pixel size (overrides headers/tables)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="dask.distributed scheduler address (default: local threads)")
    g.add_argument("--workers", type=positive_int, help="local threads (default: all cores)")
    g.add_argument("--flip-y", action="store_true", help=".cs picks: y = ny - y (pyem-converted data)")
    c = p.add_argument_group("axes and calibration")
    c.add_argument("--x-feature", help="column on the x axis (default: ncc, else a picker's score)")
    c.add_argument("--y-feature", help="column on the y axis (default: power)")
    c.add_argument("--ctf", metavar="FILE", help="CTF table (micrographs_ctf.star, .cs) for defocus per micrograph")
    c.add_argument("--calibrate", choices=["both", "x", "y", "none"], default="both",
                   help="calibrate these axes against defocus (default both)")
    c.add_argument("--calibration-mode", choices=["ratio", "difference"], default="ratio")
    c.add_argument("--calibration-method", choices=["theil-sen", "huber", "siegel", "ols"], default="theil-sen")
    c.add_argument("--calibration-scale", choices=["linear", "log"], default="linear",
                   help="fit the line to the scores (linear) or to their logarithm (log: stays positive)")
    t = p.add_argument_group("thresholds, duplicates, export")
    t.add_argument("--x-min", type=float)
    t.add_argument("--x-max", type=float)
    t.add_argument("--y-min", type=float)
    t.add_argument("--y-max", type=float)
    t.add_argument("--thresholds", metavar="JSON", help="thresholds saved by the widget or a previous run")
    t.add_argument("--no-suggest", action="store_true", help="do not suggest thresholds that were not given")
    t.add_argument("--dedupe-A", type=nonnegative_float, default=0.0,
                   help="remove duplicates closer than this (Å) among kept picks (cryoSPARC 20, RELION 30; 0 = off)")
    t.add_argument("--dedupe-keep", choices=["higher", "first"], default="higher")
    t.add_argument("--dedupe-score", help="score ranking duplicates (default: the x feature)")
    t.add_argument("--export-star", metavar="PATH", help="write kept picks as RELION STAR")
    t.add_argument("--export-cs", metavar="PATH", help="write kept picks as cryoSPARC .cs")
    t.add_argument("--export-coords", metavar="INDEX.star",
                   help="write kept picks as RELION coordinate files (<micrograph>_<suffix>.star beside INDEX, "
                        "mirroring the micrograph names) and the RELION 4/5 coordinate index INDEX")
    t.add_argument("--coord-suffix", default="autopick", help="suffix of the coordinate files (default autopick)")
    t.add_argument("--micrograph-shape", nargs=2, type=positive_int, metavar=("NY", "NX"),
                   help="micrograph size for .cs export when neither the picks nor --micrographs give it")
    t.add_argument("--export-rejected", action="store_true", help="also write the rejected picks (*_rejected)")
    t.add_argument("--bins", type=positive_int, default=100, help="histogram bins per axis")
    add_output_args(p, default_json="picks.json")
    p.set_defaults(func=run, plan=plan)


def _log(msg: str) -> None:
    print(f"cryodiag picks: {msg}", file=sys.stderr)


def _warn(msg: str, path=None) -> None:
    """One warning line on stderr that names the file."""
    _log(f"warning: {path}: {msg}" if path else f"warning: {msg}")


def _read_thresholds(path):
    """Thresholds saved by the widget or a previous run; unreadable or malformed JSON is an input error."""
    from ..compute.picks.thresholds import Thresholds

    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CryodiagInputError("file not found", path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise CryodiagInputError(f"cannot read the thresholds file: {err}", path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CryodiagInputError(f"not a JSON file: {err}", path) from None
    if not isinstance(data, dict):
        raise CryodiagInputError("not a thresholds JSON: expected an object with x_feature, x_min, ...", path)
    if isinstance(data.get("thresholds"), dict):  # a previous run's picks.json or an export's side JSON
        data = data["thresholds"]
    known = set(Thresholds.__dataclass_fields__)
    if not known & set(data):
        raise CryodiagInputError(
            f"not a thresholds JSON: none of the fields {', '.join(sorted(known))} (found: "
            f"{', '.join(list(data)[:8])})", path)
    try:
        return Thresholds.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CryodiagInputError(f"not a thresholds JSON: {err}", path) from None


def _check_scores(table: pd.DataFrame, x_feature, y_feature, info: dict, *, skip_unmatched: int = 0) -> None:
    """Scores that are all NaN are an input error; some NaN a warning (naming the pick file)."""
    from ..compute.picks.thresholds import default_features

    source = table.attrs.get("source")
    dx, dy = default_features(table)
    for feature in dict.fromkeys(f for f in (x_feature or dx, y_feature or dy) if f):
        if feature not in table.columns:
            continue  # PickInspection says which columns exist
        v = pd.to_numeric(table[feature], errors="coerce").to_numpy(dtype=float)
        n_bad = int((~np.isfinite(v)).sum())
        if n_bad == len(v):
            raise CryodiagInputError(f"the score {feature!r} is NaN (or not a number) for all {len(v)} picks",
                                     source)
        if n_bad > skip_unmatched:  # the picks on unmatched micrographs were already reported
            msg = (f"{n_bad} of {len(v)} picks have no {feature} value (NaN); they are left out of the "
                   "histogram and rejected by any threshold on that axis")
            info["notes"].append(msg)
            _warn(msg, source)


def _progress(label):
    def cb(done, total):
        print(f"\r{label}: {done}/{total} micrographs", end="" if done < total else "\n", file=sys.stderr)
    return cb


def _read_picks(args) -> pd.DataFrame:
    from ..io.picks import read_table

    opts = {"flip_y": True} if args.flip_y else {}
    paths = list(args.picks)
    try:
        table = read_table(paths[0] if len(paths) == 1 else paths, **opts)
    except TypeError:
        table = read_table(paths[0] if len(paths) == 1 else paths)
    return table


def _attach_ctf(table: pd.DataFrame, ctf_path: str | None) -> list[str]:
    """Add per-micrograph ``defocus_A`` (and pixel size) from a CTF table; returns notes."""
    notes = []
    if not ctf_path:
        return notes
    from ..io.picks import read_table

    ctf = read_table(ctf_path)
    if "micrograph" not in ctf.columns or "defocus_A" not in ctf.columns:
        raise CryodiagInputError("the CTF table has no micrograph names and defocus", ctf_path)
    if "micrograph" not in table.columns:
        raise CryodiagInputError("the picks have no micrograph names to join the CTF table on",
                                 table.attrs.get("source"))
    per = ctf.groupby("micrograph")["defocus_A"].median()
    df = table["micrograph"].astype(str).map(per)
    n_missing = int(df.isna().sum())
    if n_missing:
        notes.append(f"{n_missing} picks are on micrographs absent from the CTF table (no defocus)")
    table["defocus_A"] = df.to_numpy(dtype=np.float64)
    if "pixel_size_A" not in table.columns and "pixel_size_A" in ctf.columns:
        table["pixel_size_A"] = table["micrograph"].astype(str).map(
            ctf.groupby("micrograph")["pixel_size_A"].median()).to_numpy(dtype=np.float64)
    return notes


def _pixel_size(args, table, stack) -> float | None:
    if args.pixel_size_A:
        return float(args.pixel_size_A)
    if stack is not None and stack.pixel_size_A:
        return float(stack.pixel_size_A)
    if table is not None and "pixel_size_A" in table.columns:
        v = pd.to_numeric(table["pixel_size_A"], errors="coerce")
        if np.isfinite(v).any():
            return float(np.nanmedian(v))
    return None


def _diameter_px(args, apix, where) -> float:
    if args.diameter_px:
        return float(args.diameter_px)
    if args.diameter_A:
        if not apix:
            raise CryodiagInputError("--diameter-A needs a pixel size (--pixel-size-A, or in the headers)", where)
        return float(args.diameter_A) / apix
    raise CryodiagInputError("give the particle diameter (--diameter-A or --diameter-px)", where)


def _score_kwargs(args, apix, d_px) -> dict:
    kw = dict(n_angles=args.n_angles, particle_contrast=args.contrast)
    if apix:
        kw["pixel_size_A"] = apix
    if args.lowpass_A is not None:
        kw["lowpass_A"] = args.lowpass_A
    for name in ("min_diameter_A", "max_diameter_A"):
        v = getattr(args, name)
        if v:
            if not apix:
                raise CryodiagInputError(f"--{name.replace('_', '-')} needs a pixel size", args.micrographs)
            kw[name.replace("_A", "_px")] = v / apix
    if args.templates:
        from ..io.mrc import read_stack

        st = read_stack(args.templates)
        kw["templates"] = np.asarray(st.data, dtype=np.float32)
        tp = args.template_pixel_size_A or getattr(st, "pixel_size_A", None)
        if tp:
            kw["template_pixel_size_A"] = float(tp)
    return kw


def _export_targets(args) -> list[tuple[str, Path]]:
    """``(kind, path)`` of every export (``io.selection`` kinds: particles, cs, coordinates)."""
    return [(kind, Path(given)) for kind, given in (("particles", args.export_star), ("cs", args.export_cs),
                                                    ("coordinates", args.export_coords)) if given]


def plan(args):
    """Every input (pick files, also those found in folders or globs, micrographs, CTF table,
    thresholds, templates) protected; figures, the JSON and every export (with ``_rejected`` and
    the side JSON) planned. (The per-micrograph files of ``--export-coords`` are checked by the
    writer before it writes any.)"""
    from ..io.selection import selection_destinations

    inputs = [f for a in args.picks for f in files_of(a)]
    inputs += files_of(args.micrographs) + files_of(args.denoised)
    p = output_plan(args, inputs=inputs)
    p.figure("pick_histogram")
    p.figure("calibration")
    p.file(args.json, "JSON of the numbers")
    for kind, dest in _export_targets(args):
        flag = {"particles": "star", "cs": "cs", "coordinates": "coords"}[kind]
        kept, rej, side = selection_destinations(dest, args.export_rejected)
        p.file(kept, f"kept picks (--export-{flag})", in_folder=False)
        if rej is not None:
            p.file(rej, f"rejected picks (--export-{flag} --export-rejected)", in_folder=False)
        p.file(side, "settings of an export", in_folder=False)
    return p


def _export(table, mask, args, out_info: dict, out, settings: dict, *, refs=(), extra=None, left_out=None) -> None:
    """Kept (and rejected) picks through the one selection writer (``io.selection``)."""
    from ..io.selection import selection_destinations, write_selection

    for kind, dest in _export_targets(args):
        for f in selection_destinations(dest, args.export_rejected):
            if f is not None:
                kw = out.writer_kwargs(f)
        res = write_selection(dest, table, mask, kind=kind, rejected=args.export_rejected, settings=settings,
                              left_out=left_out, micrographs=list(refs), extra_columns=extra,
                              coord_suffix=args.coord_suffix, micrograph_shape=out_info.get("micrograph_shape"),
                              **kw)
        for note in res.notes:
            _warn(note, res.kept)
        parts = [(res.kept, "kept", res.counts["kept"])]
        if res.rejected is not None:
            parts.append((res.rejected, "rejected", res.counts["rejected_written"]))
        for path, label, n in parts:
            out_info.setdefault("exports", []).append({"file": str(path), "settings": str(res.side_json),
                                                       "selection": label, "n_rows": n, "kind": kind})
            more = f" and {len(res.coordinate_files)} coordinate files" if kind == "coordinates" and label == "kept" else ""
            _log(f"wrote {n} {label} picks to {path}{more}")


def run(args) -> int:
    from ..compute.picks.calibration import per_micrograph_medians
    from ..compute.picks.duplicates import find_duplicates
    from ..compute.picks.thresholds import PickInspection, Thresholds

    out = plan(args).check()
    info: dict = {"command": "cryodiag picks", "notes": []}
    read_notes: list[str] = []
    stack = None
    if args.micrographs:
        from ..io.mrc import open_micrograph_stack

        stack = open_micrograph_stack(args.micrographs)
        out.protect(list(stack.paths))
        info["micrographs"] = {"source": args.micrographs, "n": len(stack), "shape_yx": list(stack.shape[1:]),
                               "pixel_size_A": stack.pixel_size_A}
        info["micrograph_shape"] = list(stack.shape[1:])
    denoised = None
    if args.denoised:
        from ..io.mrc import open_micrograph_stack

        denoised = open_micrograph_stack(args.denoised)
        out.protect(list(denoised.paths))

    # 1. picks
    if args.pick:
        if stack is None:
            raise CryodiagInputError("--pick needs --micrographs")
        if args.picks:
            raise CryodiagInputError("give either pick files or --pick, not both")
        from ..compute.picks.jobs import pick_micrographs

        apix = _pixel_size(args, None, stack)
        d_px = _diameter_px(args, apix, args.micrographs)
        kw = _score_kwargs(args, apix, d_px)
        if args.min_distance_A:
            if not apix:
                raise CryodiagInputError("--min-distance-A needs a pixel size", args.micrographs)
            kw["min_distance_px"] = args.min_distance_A / apix
        table = pick_micrographs(
            stack, diameter_px=d_px, score_micrographs=denoised, client=args.scheduler,
            num_workers=args.workers, ncc_min=args.pick_ncc_min, progress=_progress("picking"), **kw,
        )
        table.attrs["source"] = str(args.micrographs)
        info["picking"] = dict(table.attrs.get("picker", {}), n_picks=int(len(table)))
        _log(f"picked {len(table)} particles on {len(stack)} micrographs")
    else:
        if not args.picks:
            raise CryodiagInputError("give pick files, or --pick with --micrographs")
        table = _read_picks(args)
        out.protect([str(p) for p in (table.attrs.get("sources") or [table.attrs.get("source")]) if p])
        read_notes = list(table.attrs.get("notes", []) or [])  # picks left out or read with care
        info["notes"] += read_notes
        from ..io.picks import has_coordinates

        if len(table) and not has_coordinates(table):
            raise CryodiagInputError(
                "no pick coordinates (rlnCoordinateX/Y, location/center_x_frac, or .cbox x/y): "
                f"not a picks file (fields: {', '.join(map(str, list(table.columns)[:12]))})",
                table.attrs.get("source"),
            )
    if args.export_cs and not args.micrograph_shape and stack is None and not (
        {"micrograph_ny", "micrograph_nx"} <= set(table.columns) or table.attrs.get("format") == "cs"
    ):
        raise CryodiagInputError(
            "--export-cs needs the micrograph shape: give --micrographs or --micrograph-shape NY NX",
            table.attrs.get("source"),
        )
    if args.micrograph_shape:
        info["micrograph_shape"] = [int(v) for v in args.micrograph_shape]
    info["picks"] = {"source": table.attrs.get("source"), "n": int(len(table))}
    if len(table) == 0:
        raise CryodiagInputError("no picks in the input", table.attrs.get("source"))

    # 2. scores
    if args.score:
        if stack is None:
            raise CryodiagInputError("--score needs --micrographs")
        from ..compute.picks.jobs import score_picks

        apix = _pixel_size(args, table, stack)
        d_px = _diameter_px(args, apix, args.micrographs)
        table = score_picks(
            stack, table, diameter_px=d_px, score_micrographs=denoised, client=args.scheduler,
            num_workers=args.workers, progress=_progress("scoring"), **_score_kwargs(args, apix, d_px),
        )
        sc = table.attrs.get("cryodiag_scoring", {})
        info["scoring"] = sc
        n_un = int(sc.get("n_unmatched") or 0)
        if n_un:
            names = table.loc[~np.isfinite(pd.to_numeric(table.get("ncc", pd.Series(np.nan, index=table.index)),
                                                          errors="coerce")), "micrograph"] \
                if "micrograph" in table.columns else pd.Series([], dtype=object)
            example = f" (e.g. {names.astype(str).iloc[0]})" if len(names) else ""
            if n_un >= len(table):
                raise CryodiagInputError(
                    f"none of the {len(table)} picks are on a micrograph of --micrographs {args.micrographs}"
                    f"{example}; check the micrograph names or the folder", table.attrs.get("source"),
                )
            msg = (f"{n_un} of {len(table)} picks are on micrographs not found in --micrographs{example}; "
                   "their scores are NaN")
            info["notes"].append(msg)
            _warn(msg, table.attrs.get("source"))

    # 3. defocus and calibration
    info["notes"] += _attach_ctf(table, args.ctf)
    cal_x = args.calibrate in ("both", "x")
    cal_y = args.calibrate in ("both", "y")
    thresholds = None
    if args.thresholds:
        thresholds = _read_thresholds(args.thresholds)
    x_feature = args.x_feature or (thresholds.x_feature if thresholds else None)
    y_feature = args.y_feature or (thresholds.y_feature if thresholds else None)
    if y_feature is None and "power" not in table.columns:
        # no power-like score (RELION/crYOLO picks without --score): show the pick score on
        # both axes rather than an unrelated column (angles, classes)
        from ..compute.picks.thresholds import default_features

        x_feature = x_feature or default_features(table)[0]
        y_feature = x_feature
        info["notes"].append(f"no power score in the picks: {x_feature} on both axes (use --score for power)")
    if y_feature is not None and y_feature == x_feature:
        cal_y = cal_x  # the same score on both axes, in the same units
    _check_scores(table, x_feature, y_feature, info, skip_unmatched=int(info.get("scoring", {}).get("n_unmatched") or 0))
    insp = PickInspection(
        table, x_feature, y_feature,
        calibrate_x=cal_x, calibrate_y=cal_y, mode=args.calibration_mode,
        method=args.calibration_method, scale=args.calibration_scale, bins=args.bins, thresholds=thresholds,
    )
    for axis, err in insp.calibration_errors.items():
        msg = f"{axis} axis: {err}"
        info["notes"].append(msg)
        _log(msg)
    for axis, cal in insp.calibrations.items():
        for w in cal.warnings:
            msg = f"{axis} axis calibration ({cal.score}): {w}"
            info["notes"].append(msg)
            _log(msg)

    # 4. thresholds
    t = insp.thresholds
    given = {k: getattr(args, k) for k in ("x_min", "x_max", "y_min", "y_max") if getattr(args, k) is not None}
    if args.no_suggest and thresholds is None:
        t = Thresholds(x_feature=insp.x_feature, y_feature=insp.y_feature, x_units=insp.x_units,
                       y_units=insp.y_units, method="manual")
    if given:
        for k, v in given.items():
            setattr(t, k, v)
        t.method = "manual" if args.no_suggest else f"{t.method}; set by hand: {', '.join(given)}"
    res = insp.evaluate(t)
    kept = res.mask.copy()

    # 5. duplicates among the kept picks
    dup_info = {"distance_A": None, "n_removed": 0}
    if args.dedupe_A and args.dedupe_A > 0:
        score = args.dedupe_score or insp.x_feature
        apix = _pixel_size(args, table, stack)
        dup = find_duplicates(table, args.dedupe_A, score=score, keep=args.dedupe_keep,
                              pixel_size_A=None if "pixel_size_A" in table.columns and not args.pixel_size_A else apix,
                              mask=kept)
        kept = dup.keep
        dup_info = dup.to_dict()
        _log(f"removed {dup.n_removed} duplicates within {args.dedupe_A:g} Å")

    # figures
    from ..plots.pick_histogram import plot_pick_histogram

    xl = insp.x_feature + ("" if insp.x_units == "raw" else f" ({insp.x_units})")
    yl = insp.y_feature + ("" if insp.y_units == "raw" else f" ({insp.y_units})")
    plot = plot_pick_histogram(None, insp.hist, thresholds=t, n_kept=int(kept.sum()), n_total=len(table),
                               x_label=xl, y_label=yl,
                               extra_title=(f"{dup_info['n_removed']} duplicates removed" if dup_info["n_removed"] else ""))
    figs = {"pick_histogram": out.save_figure(plot.fig, "pick_histogram")}
    cals = [insp.calibrations[a] for a in ("x", "y") if a in insp.calibrations]
    if cals:
        from ..plots.calibration import plot_calibration

        figs["calibration"] = out.save_figure(plot_calibration(cals), "calibration")

    # numbers
    per_mic = None
    for feature in dict.fromkeys((insp.x_feature, insp.y_feature)):
        try:
            pm = per_micrograph_medians(table, feature) if "defocus_A" in table.columns else None
        except CryodiagInputError:
            pm = None
        if pm is None:
            g = pd.to_numeric(table[feature], errors="coerce").groupby(table["micrograph"].astype(str)
                                                                      if "micrograph" in table.columns else np.zeros(len(table)))
            pm = pd.DataFrame({"micrograph": g.median().index.astype(str), "defocus_A": np.nan,
                               "n_picks": g.size().to_numpy(), "median": g.median().to_numpy()})
        pm = pm.rename(columns={"median": f"median_{feature}"})
        per_mic = pm if per_mic is None else per_mic.merge(pm[["micrograph", f"median_{feature}"]], on="micrograph", how="outer")
    summ = insp.summary(res.mask)
    kept_after = pd.Series(kept).groupby(insp.codes).sum().reindex(range(len(insp.names)), fill_value=0)
    per_mic = per_mic.merge(
        pd.DataFrame({"micrograph": summ["micrograph"].astype(str), "kept_threshold": summ["kept"],
                      "kept": kept_after.to_numpy(),
                      f"median_x_shown ({insp.x_feature}, {insp.x_units})": summ["median_x"],
                      f"median_y_shown ({insp.y_feature}, {insp.y_units})": summ["median_y"]}),
        on="micrograph", how="left",
    )
    report = insp.report(res)
    info.update(
        x_feature=insp.x_feature, y_feature=insp.y_feature, x_units=insp.x_units, y_units=insp.y_units,
        thresholds=t.to_dict(),
        calibration={a: {k: v for k, v in c.to_dict().items() if k != "per_micrograph"} for a, c in insp.calibrations.items()},
        calibration_errors=dict(insp.calibration_errors),
        counts={"total": int(len(table)), "kept_by_thresholds": int(res.n_kept),
                "rejected_by_thresholds": int(res.n_rejected), "duplicates_removed": int(dup_info["n_removed"]),
                "kept": int(kept.sum()), "rejected": int(len(table) - kept.sum()),
                "without_value": report.get("n_without_value", 0)},
        duplicates=dup_info,
        per_micrograph=per_mic.to_dict(orient="list"),
        figures={k: [str(p) for p in v] for k, v in figs.items()},
    )

    # 6. export
    settings = {
        "source": table.attrs.get("source"), "x_feature": insp.x_feature, "y_feature": insp.y_feature,
        "x_units": insp.x_units, "y_units": insp.y_units, "thresholds": t.to_dict(),
        "calibration": info["calibration"], "duplicates": dup_info,
    }
    if args.export_star or args.export_cs or args.export_coords:
        extra = {}  # calibrated scores written beside, without a copy of the table
        if insp.x_units != "raw":
            extra[f"{insp.x_feature}_calibrated"] = insp.x
        if insp.y_units != "raw" and insp.y_feature != insp.x_feature:
            extra[f"{insp.y_feature}_calibrated"] = insp.y
        from ..io.selection import MicrographRefs

        refs = []
        if args.ctf:  # the micrograph STAR's names first, then the opened files'
            from ..io.picks import read_table

            refs.append(MicrographRefs.from_table(read_table(args.ctf)))
        if stack is not None:
            refs.append(MicrographRefs.from_stack(stack))
        _export(table, kept, args, info, out, settings, refs=refs, extra=extra,
                left_out={"thresholds": int(res.n_rejected), "duplicates": int(dup_info["n_removed"])})
    info.pop("micrograph_shape", None)
    js = out.write_json(args.json, info)
    for note in read_notes:  # said once the run succeeded (an error is one line)
        _warn(note, table.attrs.get("source"))
    _log(f"kept {int(kept.sum())} of {len(table)} picks; wrote {js}")
    return 0
