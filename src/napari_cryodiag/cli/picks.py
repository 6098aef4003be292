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
5. **curate exposures** (``--exposure SPEC``, repeatable): thresholds on per-micrograph
   statistics drop whole micrographs with their picks: ``NAME<=MAX``, ``NAME>=MIN`` or
   ``NAME:MIN..MAX`` on ``defocus_A``, ``astigmatism_A`` (|dU-dV|), ``ctf_max_resolution_A``,
   ``ctf_figure_of_merit`` (from ``--ctf`` or the picks), ``n_picks``, ``median_<score>`` and
   ``median_<score>_calibrated`` (e.g. ``median_ncc``), ``kept_fraction`` (of the pick
   thresholds); a micrograph without a value is not judged (kept). Quote them in the shell:
   ``--exposure 'ctf_max_resolution_A<=6' --exposure 'defocus_A:5000..30000'``;
6. **dedupe** (``--dedupe-A D``) among the kept picks, keeping the higher score
   (``--dedupe-keep first`` for RELION's rule);
7. **export** the kept picks (``--export-star`` RELION particle STAR, ``--export-coords`` RELION
   coordinate files + index, ``--export-cs``; ``--export-rejected`` adds ``*_rejected`` files)
   with a side JSON of the settings, atomically, never over an input (``io.selection``); with
   ``--exposure``, the kept micrographs' rows of the micrograph table beside each export
   (``<stem>_micrographs.star`` from a RELION CTF STAR, optics kept; ``<stem>_exposures.cs`` from
   a cryoSPARC exposure file).

``--watch DIR`` follows a RELION/cryoSPARC project or a folder while a session writes into it
and reruns these steps on the picks that have arrived every ``--interval`` seconds
(:mod:`.picks_watch`).

Writes into ``--out``: ``pick_histogram.<fmt>``, ``calibration.<fmt>`` (when calibrated),
``exposures.<fmt>`` (with ``--exposure``: the first statistic thresholded against defocus, kept
and dropped micrographs) and ``picks.json`` (per-micrograph medians and defocus, calibration fits, thresholds, counts).
"""

from __future__ import annotations

import argparse
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
    t.add_argument("--session", metavar="JSON", help="a session saved by Inspect Picks (pick files, settings and "
                                                    "the picks deleted, moved or added by hand)")
    t.add_argument("--no-suggest", action="store_true", help="do not suggest thresholds that were not given")
    t.add_argument("--exposure", action="append", default=[], metavar="SPEC",
                   help="drop whole micrographs (with their picks) outside a bound on a per-micrograph statistic: "
                        "'NAME<=MAX', 'NAME>=MIN' or 'NAME:MIN..MAX' (repeatable), NAME one of defocus_A, "
                        "astigmatism_A, ctf_max_resolution_A, ctf_figure_of_merit, n_picks, median_<score>[_calibrated], "
                        "kept_fraction; e.g. --exposure 'ctf_max_resolution_A<=6' --exposure 'defocus_A:5000..30000'; "
                        "the kept micrographs' rows of the micrograph table (--ctf) are written beside each export")
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
    from .picks_watch import add_watch_args

    add_watch_args(p)
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
    from ..io.jsonfile import loads_finite

    data = loads_finite(text, path, what="thresholds JSON")
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
    kw.update(_annulus_kwargs(args, apix))
    if args.templates:
        from ..io.mrc import read_stack

        st = read_stack(args.templates)
        kw["templates"] = np.asarray(st.data, dtype=np.float32)
        tp = args.template_pixel_size_A or getattr(st, "pixel_size_A", None)
        if tp:
            kw["template_pixel_size_A"] = float(tp)
    return kw


def _flag(kind: str) -> str:
    return {"particles": "star", "cs": "cs", "coordinates": "coords"}[kind]


def _export_targets(args) -> list[tuple[str, Path]]:
    """``(kind, path)`` of every export (``io.selection`` kinds: particles, cs, coordinates)."""
    return [(kind, Path(given)) for kind, given in (("particles", args.export_star), ("cs", args.export_cs),
                                                    ("coordinates", args.export_coords)) if given]


def plan(args):
    """Every input (pick files, also those found in folders or globs, micrographs, CTF table,
    thresholds, session, templates) protected; figures, the JSON and every export (with
    ``_rejected`` and the side JSON) planned. (The per-micrograph files of ``--export-coords`` are
    checked by the writer before it writes any.)"""
    from ..workflows.picks import selection_paths

    inputs = [f for a in args.picks for f in files_of(a)]
    inputs += files_of(args.micrographs) + files_of(args.denoised)
    p = output_plan(args, inputs=inputs)
    p.figure("pick_histogram")
    p.figure("calibration")
    if getattr(args, "exposure", None):
        p.figure("exposures")
    p.file(args.json, "JSON of the numbers")
    for kind, dest in _export_targets(args):
        for f in selection_paths(dest, rejected=args.export_rejected):
            what = "settings of an export" if f.name.endswith(".cryodiag.json") else f"picks (--export-{_flag(kind)})"
            p.file(f, what, in_folder=False)
        for f in _subset_paths(args, dest):
            p.file(f, "kept micrographs (--exposure)", in_folder=False)
    return p


def _subset_paths(args, dest) -> list[Path]:
    """The micrograph subsets an export may get (--exposure): the format of --ctf, else either."""
    if not getattr(args, "exposure", None):
        return []
    from ..io.exposures import exposure_subset_path

    suffix = Path(args.ctf).suffix.lower() if args.ctf else ""
    fmts = ["cs"] if suffix == ".cs" else (["star"] if suffix == ".star" else ["star", "cs"])
    return [exposure_subset_path(dest, f) for f in fmts]


def _scoring_options(args, apix) -> tuple:
    """ScoringOptions (Å) and the templates of the command's flags."""
    from ..workflows.picks import ScoringOptions

    d_A = args.diameter_A
    if args.diameter_px:
        if not apix:
            raise CryodiagInputError("--diameter-px needs a pixel size to convert (--pixel-size-A)", args.micrographs)
        d_A = args.diameter_px * apix
    opts = ScoringOptions(diameter_A=d_A, lowpass_A=args.lowpass_A, n_angles=args.n_angles, contrast=args.contrast,
                          scheduler=args.scheduler or "")
    templates = tpx = None
    if args.templates:
        from ..io.mrc import read_stack

        st = read_stack(args.templates)
        templates = np.asarray(st.data, dtype=np.float32)
        tpx = args.template_pixel_size_A or getattr(st, "pixel_size_A", None)
    return opts, templates, tpx


def _annulus_kwargs(args, apix) -> dict:
    kw = {}
    for name in ("min_diameter_A", "max_diameter_A"):
        v = getattr(args, name)
        if v:
            if not apix:
                raise CryodiagInputError(f"--{name.replace('_', '-')} needs a pixel size", args.micrographs)
            kw[name.replace("_A", "_px")] = v / apix
    return kw


def _drive(gen, label):
    """Run a workflow generator with a progress line on stderr."""
    from ..compute.progress import run_steps

    return run_steps(gen, _progress(label))


def run(args, *, live=None) -> int:
    """One run (``live``: the picks that arrived in a watched session, :mod:`.picks_watch`)."""
    if getattr(args, "watch", None) and live is None:
        from .picks_watch import watch

        return watch(args, run, plan, _log, _warn)
    from ..compute.picks.calibration import per_micrograph_medians
    from ..compute.picks.thresholds import Thresholds
    from ..workflows import picks as wf
    from ..workflows.picks import selection_paths

    out = plan(args).check()
    info: dict = {"command": "cryodiag picks", "notes": []}
    read_notes: list[str] = []
    stack = denoised = None
    if args.micrographs:
        from ..io.mrc import open_micrograph_stack

        stack = open_micrograph_stack(args.micrographs)
        out.protect(list(stack.paths))
        info["micrographs"] = {"source": args.micrographs, "n": len(stack), "shape_yx": list(stack.shape[1:]),
                               "pixel_size_A": stack.pixel_size_A}
    if args.denoised:
        from ..io.mrc import open_micrograph_stack

        denoised = open_micrograph_stack(args.denoised)
        out.protect(list(denoised.paths))
    session = None
    if args.session:
        if args.picks or args.pick:
            raise CryodiagInputError("give either --session or pick files / --pick, not both", args.session)

    # 1. picks
    if live is not None:
        table = live.table
    elif args.pick:
        if stack is None:
            raise CryodiagInputError("--pick needs --micrographs")
        if args.picks:
            raise CryodiagInputError("give either pick files or --pick, not both")
        apix = _pixel_size(args, None, stack)
        sopts, templates, tpx = _scoring_options(args, apix)
        popts = wf.PickerOptions(diameter_A=sopts.diameter_A, min_distance_A=args.min_distance_A,
                                 max_picks=100_000, ncc_min=args.pick_ncc_min)
        if not popts.diameter_A:
            raise CryodiagInputError("give the particle diameter (--diameter-A or --diameter-px)", args.micrographs)
        table = _drive(wf.iter_pick(stack, popts, sopts, pixel_size_A=apix, score_micrographs=denoised,
                                    templates=templates, template_pixel_size_A=tpx, num_workers=args.workers),
                       "picking")
        table.attrs["source"] = str(args.micrographs)
        info["picking"] = dict(table.attrs.get("picker", {}), n_picks=int(len(table)))
        _log(f"picked {len(table)} particles on {len(stack)} micrographs")
    elif not args.picks and not args.session:
        raise CryodiagInputError("give pick files, or --pick with --micrographs, or --session")
    if args.session and live is None:  # the pick files read again; the edits are replayed on the set below
        session = wf.read_session(args.session)
        out.protect([f for p in session["picks"] for f in files_of(p)], session.get("ctf"))
        table = wf.read_picks(session["picks"], flip_y=bool(session.get("flip_y")))
    elif not args.pick and live is None:
        table = wf.read_picks(list(args.picks), flip_y=args.flip_y)
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
    shape = tuple(int(v) for v in args.micrograph_shape) if args.micrograph_shape else (
        tuple(stack.shape[1:]) if stack is not None else None)
    if shape is not None and not args.pick and len(table) and "micrograph_nx" not in table.columns:
        # STAR/.cbox picks past the micrographs' last pixel (a .cs bounds its own by its shapes)
        from ..io.star import drop_bad_coordinates

        where = "--micrograph-shape" if args.micrograph_shape else f"the micrographs of --micrographs {args.micrographs}"
        table, beyond = drop_bad_coordinates(table, table.attrs.get("source"), shape_yx=shape, shape_source=where)
        read_notes += beyond
        info["notes"] += beyond
    if args.export_cs and shape is None and not (
        {"micrograph_ny", "micrograph_nx"} <= set(table.columns) or table.attrs.get("format") == "cs"
    ):
        raise CryodiagInputError(
            "--export-cs needs the micrograph shape: give --micrographs or --micrograph-shape NY NX",
            table.attrs.get("source"),
        )
    info["picks"] = {"source": table.attrs.get("source"), "n": int(len(table))}
    if live is not None:
        info["watch"] = live.summary
    if len(table) == 0:
        raise CryodiagInputError("no picks in the input", table.attrs.get("source"))

    # 2. scores
    if args.score:
        if stack is None:
            raise CryodiagInputError("--score needs --micrographs")
        apix = _pixel_size(args, table, stack)
        sopts, templates, tpx = _scoring_options(args, apix)
        if not sopts.diameter_A and "diameter_px" not in table.columns:
            raise CryodiagInputError("give the particle diameter (--diameter-A or --diameter-px)", args.micrographs)
        from ..compute.picks.jobs import iter_score_picks

        d_px = sopts.diameter_A / apix if sopts.diameter_A else None
        kw = dict(wf.score_kwargs(sopts, apix, templates=templates, template_pixel_size_A=tpx),
                  **_annulus_kwargs(args, apix))
        table = _drive(iter_score_picks(stack, table, diameter_px=d_px, score_micrographs=denoised,
                                        client=args.scheduler, num_workers=args.workers, **kw), "scoring")
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
    ctf_path = args.ctf or (session or {}).get("ctf")
    ctf = wf.read_ctf_table(ctf_path) if ctf_path else (live.exposures if live is not None else None)
    if ctf is not None:
        info["notes"] += wf.attach_defocus(table, ctf)
    exposures = _exposure_table(ctf_path, ctf)
    cal_x = args.calibrate in ("both", "x")
    cal_y = args.calibrate in ("both", "y")
    thresholds = _read_thresholds(args.thresholds) if args.thresholds else None
    if session is not None and thresholds is None and session.get("thresholds"):
        try:
            thresholds = Thresholds.from_dict(session["thresholds"]).check(args.session)
        except (TypeError, AttributeError, ValueError) as err:
            raise CryodiagInputError(f"malformed session thresholds: {err}", args.session) from None
    x_feature = args.x_feature or (thresholds.x_feature if thresholds else None) or (session or {}).get("x_feature")
    y_feature = args.y_feature or (thresholds.y_feature if thresholds else None) or (session or {}).get("y_feature")
    from ..compute.picks.thresholds import default_features

    dx, dy = default_features(table)
    if (y_feature or (dy if not x_feature else None)) is None:
        shown = x_feature or dx
        if cal_y:  # calibrate what can be (the one score, on x) and say why y is not
            msg = (f"--calibrate {args.calibrate}: y is not calibrated: the picks have one score ({shown}), "
                   f"shown on x, and no y axis (use --score for NCC and power, or --y-feature); "
                   f"calibrating {shown} on x" + (" instead" if args.calibrate == "y" else ""))
            cal_x = True
            info["notes"].append(msg)
            _log(msg)
        info["notes"].append(f"one score ({shown}): a 1D histogram (use --score for NCC and power)")
        cal_y = False
    _check_scores(table, x_feature, y_feature, info, skip_unmatched=int(info.get("scoring", {}).get("n_unmatched") or 0))
    if session is not None:
        ps_kw = {k: session["calibration"][k] for k in ("mode", "method", "scale") if k in session["calibration"]}
    else:
        ps_kw = {}
    cal = wf.CalibrationOptions(calibrate_x=cal_x, calibrate_y=cal_y,
                                mode=ps_kw.get("mode", args.calibration_mode),
                                method=ps_kw.get("method", args.calibration_method),
                                scale=ps_kw.get("scale", args.calibration_scale))
    edits = (session or {}).get("edits")
    ps = wf.open_pick_set(table, calibration=cal, x_feature=x_feature, y_feature=y_feature, bins=args.bins,
                          thresholds=thresholds, suggest=(False if args.no_suggest else None))
    if exposures is not None:
        ps.set_exposures(exposures)
    if edits:
        applied = ps.apply_edits(edits)
        info["session"] = {"file": str(args.session), "edits": applied}
        if applied.get("not_found"):
            _warn(f"{applied['not_found']} edited picks of the session are no longer in the pick files",
                  args.session)
    insp = ps.inspection
    if insp is None:
        raise CryodiagInputError(f"{ps.no_scores}; use --score with --micrographs", table.attrs.get("source"))
    for axis, err in insp.calibration_errors.items():
        msg = f"{axis} axis: {err}"
        info["notes"].append(msg)
        _log(msg)
    for axis, c in insp.calibrations.items():
        for w in c.warnings:
            msg = f"{axis} axis calibration ({c.score}): {w}"
            info["notes"].append(msg)
            _log(msg)

    # 4. thresholds (the suggestion is applied on a single score too when asked for with no flags:
    # a headless run has no one to apply a proposal)
    t = insp.thresholds
    given = {k: getattr(args, k) for k in ("x_min", "x_max", "y_min", "y_max") if getattr(args, k) is not None}
    if thresholds is None and not args.no_suggest and not insp.suggests_by_default:
        t = insp.suggest()
    if given:
        for k, v in given.items():
            setattr(t, k, v)
        t.method = "manual" if args.no_suggest or not t.method.startswith("suggested") else f"{t.method}; set by hand: {', '.join(given)}"
    t.check(args.thresholds or table.attrs.get("source"))
    insp.thresholds = t
    if args.exposure:  # 5. exposures: whole micrographs dropped (with their picks)
        from ..compute.picks.exposures import ExposureThresholds

        ps.set_exposure_thresholds(ExposureThresholds.parse(args.exposure))
    dedupe = wf.DedupeOptions(distance_A=args.dedupe_A or 0.0, keep=args.dedupe_keep)
    apix = _pixel_size(args, table, stack)
    res = ps.evaluate()
    sel = ps.selection(dedupe_A=dedupe.distance_A or None, dedupe_keep=dedupe.keep, dedupe_score=args.dedupe_score,
                       pixel_size_A=None if "pixel_size_A" in table.columns and not args.pixel_size_A else apix)
    kept = sel.kept
    dup_info = sel.duplicates or {"distance_A": None, "n_removed": 0}
    if sel.duplicates:
        _log(f"removed {sel.n_duplicates} duplicates within {dedupe.distance_A:g} Å")

    # figures
    from ..plots.pick_histogram import plot_pick_histogram

    xl = insp.x_feature + ("" if insp.x_units == "raw" else f" ({insp.x_units})")
    yl = "" if insp.one_d else insp.y_feature + ("" if insp.y_units == "raw" else f" ({insp.y_units})")
    plot = plot_pick_histogram(None, insp.hist, thresholds=t, n_kept=int(kept.sum()), n_total=sel.n_rows,
                               x_label=xl, y_label=yl,
                               extra_title=(f"{sel.n_duplicates} duplicates removed" if sel.n_duplicates else ""))
    figs = {"pick_histogram": out.save_figure(plot.fig, "pick_histogram")}
    cals = [insp.calibrations[a] for a in ("x", "y") if a in insp.calibrations]
    if cals:
        from ..plots.calibration import plot_calibration

        figs["calibration"] = out.save_figure(plot_calibration(cals), "calibration")

    # numbers
    table = ps.table
    per_mic = None
    for feature in [f for f in dict.fromkeys((insp.x_feature, insp.y_feature)) if f]:
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
    summ = insp.summary(res.kept)
    kept_after = pd.Series(kept).groupby(insp.codes).sum().reindex(range(len(insp.names)), fill_value=0)
    cols = {"micrograph": summ["micrograph"].astype(str), "kept_threshold": summ["kept"],
            "kept": kept_after.to_numpy(),
            f"median_x_shown ({insp.x_feature}, {insp.x_units})": summ["median_x"]}
    if not insp.one_d:
        cols[f"median_y_shown ({insp.y_feature}, {insp.y_units})"] = summ["median_y"]
    per_mic = per_mic.merge(pd.DataFrame(cols), on="micrograph", how="left")
    report = insp.report()
    info.update(
        x_feature=insp.x_feature, y_feature=insp.y_feature, x_units=insp.x_units, y_units=insp.y_units,
        thresholds=t.to_dict(),
        calibration={a: {k: v for k, v in c.to_dict().items() if k != "per_micrograph"} for a, c in insp.calibrations.items()},
        calibration_errors=dict(insp.calibration_errors),
        counts={"total": int(sel.n_rows), "kept_by_thresholds": int(res.n_kept),
                "rejected_by_thresholds": int(res.n_rejected_by_thresholds), "duplicates_removed": int(sel.n_duplicates),
                "kept": int(kept.sum()), "rejected": int(sel.n_rows - kept.sum()),
                "removed_by_hand": int(sel.n_removed_by_hand), "added_by_hand": int(sel.n_added_by_hand),
                "dropped_with_micrograph": int(sel.n_dropped_with_micrograph),
                "without_value": report.get("n_without_value", 0)},
        selection=sel.to_dict(),
        duplicates=dup_info,
        per_micrograph=per_mic.to_dict(orient="list"),
        figures={k: [str(p) for p in v] for k, v in figs.items()},
    )
    if args.exposure:
        stats = ps.micrograph_statistics(sel)
        info["exposures"] = dict(sel.exposures.to_dict(), micrograph_table=(
            None if exposures is None else str(exposures.attrs.get("source"))))
        info["micrograph_statistics"] = stats.to_dict(orient="list")
        from ..plots.exposures import plot_exposure_scatter

        first = next(iter(ps.exposure_thresholds.bounds))
        x_stat = "defocus_A" if "defocus_A" in stats.columns and first != "defocus_A" else "n_picks"
        fig, _, _ = plot_exposure_scatter(stats, x_stat, first, keep=stats["keep"].to_numpy(bool),
                                          bounds=ps.exposure_thresholds.bounds)
        info["figures"]["exposures"] = [str(p) for p in out.save_figure(fig, "exposures")]
        if wf.micrograph_subset_path(ps, "x.star") is None and _export_targets(args):
            msg = ("--exposure: no micrograph table (give --ctf micrographs_ctf.star or an exposure .cs): the kept "
                   "micrographs are not written beside the picks")
            info["notes"].append(msg)
            _warn(msg)

    # 6. export (one writer for the CLI, the widget and File > Save)
    settings = {
        "source": table.attrs.get("source"), "x_feature": insp.x_feature, "y_feature": insp.y_feature,
        "x_units": insp.x_units, "y_units": insp.y_units, "thresholds": t.to_dict(),
        "calibration": info["calibration"], "duplicates": dup_info,
    }
    refs = []
    if args.export_star or args.export_cs or args.export_coords:
        from ..io.selection import MicrographRefs

        if ctf is not None and "micrograph_name" in ctf.columns:  # the micrograph STAR's names first
            refs.append(MicrographRefs.from_table(ctf))
        if stack is not None:
            refs.append(MicrographRefs.from_stack(stack))
    for kind, dest in _export_targets(args):
        kw = {}
        for f in selection_paths(dest, rejected=args.export_rejected):
            kw = out.writer_kwargs(f)
        for f in _subset_paths(args, dest):
            kw = out.writer_kwargs(f)
        subset = bool(args.exposure) and wf.micrograph_subset_path(ps, dest) is not None
        res, _ = wf.write_selection(ps, dest, selection=sel, kind=kind, rejected=args.export_rejected,
                                    micrographs=refs, micrograph_shape=shape, settings=settings,
                                    coord_suffix=args.coord_suffix, micrograph_subset=subset, **kw)
        if subset:
            f = wf.micrograph_subset_path(ps, dest)
            n_mic = sel.exposures.n_kept if sel.exposures is not None else None
            info.setdefault("exposure_exports", []).append({"file": str(f), "n_micrographs": n_mic, "for": str(dest)})
            _log(f"wrote the {n_mic} kept micrographs to {f}")
        for note in res.notes:
            _warn(note, res.kept)
        parts = [(res.kept, "kept", res.counts["kept"])]
        if res.rejected is not None:
            parts.append((res.rejected, "rejected", res.counts["rejected_written"]))
        for path, label, n in parts:
            info.setdefault("exports", []).append({"file": str(path), "settings": str(res.side_json),
                                                   "selection": label, "n_rows": int(n), "kind": kind})
            more = f" and {len(res.coordinate_files)} coordinate files" if kind == "coordinates" and label == "kept" else ""
            _log(f"wrote {int(n)} {label} picks to {path}{more}")
    js = out.write_json(args.json, info)
    if args.exposure:
        _log(sel.exposures.explain())
    for note in read_notes:  # said once the run succeeded (an error is one line)
        _warn(note, table.attrs.get("source"))
    _log(f"{sel.explain()}; wrote {js}")
    return 0


def _exposure_table(ctf_path, ctf):
    """The micrograph table for curating exposures: ``--ctf`` read as a micrograph table (its rows
    are what a micrograph subset holds), else the CTF table at hand (statistics only)."""
    if ctf_path:
        from ..io.exposures import read_exposures

        try:
            return read_exposures(ctf_path)
        except CryodiagInputError:
            return ctf  # a particle table as --ctf: its CTF, no micrograph rows to write
    return ctf
