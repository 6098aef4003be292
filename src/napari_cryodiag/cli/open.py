"""``cryodiag open PATH``: what a RELION or cryoSPARC project (or one of its job folders) holds.

Prints the jobs newest first with what each holds, what could not be used (names that lead
outside the project folder, listed files that are missing) and the inputs each diagnostic would
take (the picks with their micrographs and CTF job, the half maps and mask, the refined particles,
the last 2D classification). ``--json`` prints the same as JSON. Nothing is read beyond the
pipeline, ``job.json``, the micrograph and coordinate lists and file headers; nothing is written.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "open",
        help="list what a RELION or cryoSPARC project or job folder holds",
        description="List the jobs of a RELION project (default_pipeline.star, <Type>/jobNNN folders) or a "
        "cryoSPARC project (P*/J*/job.json), newest first, with what each holds and the inputs each "
        "diagnostic would take. Nothing is written.",
    )
    p.add_argument("path", metavar="PATH", help="project folder, job folder (AutoPick/job004, J7) or default_pipeline.star")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run, plan=plan)


def plan(args):
    """Nothing is written: an empty plan (every named file protected)."""
    from ._common import output_plan

    return output_plan(args, folder=False)


def _inputs_lines(summary: dict) -> list[str]:
    ins = summary["inputs"]
    out = ["inputs:"]
    ps = ins["inspect_picks"]
    if ps:
        out.append(f"  Inspect Picks: picks of {ps['picks_job']} on {ps['n_micrographs']} micrographs of "
                   f"{ps['micrographs_job'] or '(none)'}, CTF from {ps['ctf_job'] or '(none)'}")
    mv = ins["map_validation"]
    if mv:
        out.append(f"  Map validation: {mv['half1']}, {mv['half2']}" + (f", mask {mv['mask']}" if mv["mask"] else ""))
    o = ins["orientations"]
    if o:
        out.append(f"  Orientations: {o['particles']['path']} ({o['job']})")
    c = ins["classes"]
    if c:
        out.append(f"  Classes: {c['path']} (iteration {c['iteration']} of {c['job']})")
    return out if len(out) > 1 else []


def run(args) -> int:
    import json

    from ..io.jsonfile import to_jsonable
    from ..workflows.project import open_project, project_summary

    plan(args).check()
    project = open_project(args.path)
    summary = project_summary(project)
    if args.json:
        print(json.dumps(to_jsonable(summary), indent=2))
        return 0
    for line in project.describe() + _inputs_lines(summary):
        print(line)
    return 0
