"""``cryodiag report``: every diagnostic, headless, on the sample data or a dataset folder.

This is the main job where there is no display (``scripts/demo.sh`` falls back to it). It
writes the simulated sample dataset (``cryodiag sample``) unless ``--data`` names one, then
runs ``picks``, ``fsc``, ``classes``, ``orientations`` and ``noise`` on it, each into its own
subfolder of ``--out``, and finishes with ``report.json`` (each step's command, status and
outputs) and ``index.html`` (every figure on one page).
"""

from __future__ import annotations

import html
import time
import traceback
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="run every diagnostic headless on the sample data (or a sample-layout folder)",
        description=__doc__,
    )
    p.add_argument("-o", "--out", default="cryodiag-report", help="output folder (created)")
    p.add_argument("--data", help="a folder written by 'cryodiag sample' (default: simulate one into OUT/data)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated sample (default 0)")
    p.add_argument("--format", default="png", help="figure formats, comma separated (png,pdf,svg)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    p.set_defaults(func=run, plan=plan)


def _steps(data: Path, out: Path, fmt: str, overwrite: bool) -> list[tuple[str, list[str]]]:
    """The diagnostics to run: (name, argv for cryodiag)."""
    common = ["--format", fmt] + (["--overwrite"] if overwrite else [])
    steps = [
        (
            "picks",
            [
                "picks", str(data / "picks.star"), "--micrographs", str(data / "micrographs"),
                "--calibrate", "both", "--dedupe-A", "20",
                "--export-star", str(out / "picks" / "picks_kept.star"),
                "-o", str(out / "picks"), *common,
            ],
        ),
        (
            "fsc",
            ["fsc", str(data / "half_maps" / "half1.mrc"), str(data / "half_maps" / "half2.mrc"),
             "-o", str(out / "maps"), *common],
        ),
        (
            "classes",
            ["classes", str(data / "classes" / "particles.star"),
             "--averages", str(data / "classes" / "class_averages.mrcs"), "-o", str(out / "classes"), *common],
        ),
        (
            "orientations",
            ["orientations", str(data / "refinement" / "particles.star"),
             "--half1", str(data / "half_maps" / "half1.mrc"), "--half2", str(data / "half_maps" / "half2.mrc"),
             "-o", str(out / "orientations"), *common],
        ),
        (
            "noise",
            ["noise", "--particles", str(data / "refinement" / "particles.star"),
             "--map", str(data / "refinement" / "particles_map.mrc"), "--quiet",
             "-o", str(out / "noise"), *common],
        ),
    ]
    return steps


def plan(args):
    """``report.json`` and ``index.html`` in ``--out`` (the steps plan their own outputs)."""
    from ._common import files_of, output_plan

    data_files = []
    if args.data and Path(args.data).is_dir():
        data_files = [str(p) for p in Path(args.data).rglob("*") if p.is_file()]
    p = output_plan(args, inputs=[*data_files, *files_of(args.data)])
    p.file("report.json", "report JSON")
    p.file("index.html", "report page")
    return p


def _check_steps(steps) -> None:
    """Every step's output plan, checked before anything is simulated or computed."""
    from . import build_parser

    parser = build_parser()
    for _, argv in steps:
        ns = parser.parse_args(argv)
        ns.plan(ns).check(create=False)


def run(args) -> int:
    from . import main as cryodiag_main

    from ..errors import CryodiagInputError

    if args.data and not Path(args.data).is_dir():
        raise CryodiagInputError(
            "dataset folder not found (give a folder written by 'cryodiag sample')"
            if not Path(args.data).exists() else "not a folder (give a folder written by 'cryodiag sample')",
            args.data,
        )
    out_plan = plan(args)
    out = Path(args.out).expanduser()
    data = Path(args.data) if args.data else out / "data"
    steps = _steps(data, out, args.format, args.overwrite)
    out_plan.check(create=False)
    _check_steps(steps)
    out_plan.check()
    if not args.data:
        from ..simulate.dataset import write_sample_dataset

        print(f"report: simulating the sample dataset into {data}/ (seed {args.seed})")
        write_sample_dataset(data, seed=args.seed, overwrite=args.overwrite)

    results = []
    for name, argv in steps:
        print(f"report: cryodiag {' '.join(argv)}")
        t0 = time.perf_counter()
        try:
            code = cryodiag_main(argv)
            error = None if code == 0 else f"exit status {code}"
        except Exception as exc:  # keep going: one failing diagnostic must not hide the others
            code, error = 1, f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        folder = out / {"fsc": "maps"}.get(name, name)
        results.append(
            {
                "step": name,
                "command": ["cryodiag", *argv],
                "status": "ok" if code == 0 else "failed",
                "error": error,
                "seconds": round(time.perf_counter() - t0, 2),
                "figures": sorted(str(p.relative_to(out)) for p in folder.glob("*.png")) if folder.is_dir() else [],
                "json": sorted(str(p.relative_to(out)) for p in folder.glob("*.json")) if folder.is_dir() else [],
            }
        )
        print(f"report: {name}: {results[-1]['status']} ({results[-1]['seconds']} s)")

    out_plan.write_json("report.json", {"data": str(data), "steps": results})
    _write_index(out_plan, results)
    failed = [r["step"] for r in results if r["status"] != "ok"]
    print(f"report: wrote {out / 'index.html'} and {out / 'report.json'}"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _write_index(plan, results: list[dict]) -> None:
    parts = ["<!doctype html><meta charset='utf-8'><title>cryodiag report</title>",
             "<style>body{font-family:sans-serif;margin:2em}img{max-width:48%;margin:4px;border:1px solid #ccc}</style>",
             "<h1>napari-cryodiag report</h1>"]
    for r in results:
        parts.append(f"<h2>{html.escape(r['step'])} — {html.escape(r['status'])}</h2>")
        parts.append(f"<p><code>{html.escape(' '.join(r['command']))}</code></p>")
        if r["error"]:
            parts.append(f"<p style='color:#a00'>{html.escape(r['error'])}</p>")
        for j in r["json"]:
            parts.append(f"<p>numbers: <a href='{html.escape(j)}'>{html.escape(j)}</a></p>")
        for f in r["figures"]:
            parts.append(f"<a href='{html.escape(f)}'><img src='{html.escape(f)}' alt='{html.escape(f)}'></a>")
    plan.write_text("index.html", "\n".join(parts) + "\n")


__all__ = ["register", "run"]
