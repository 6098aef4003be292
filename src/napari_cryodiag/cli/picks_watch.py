"""``cryodiag picks --watch DIR``: the pick inspection rerun on a session as it is written.

DIR is a RELION or cryoSPARC project (or job folder), or a plain folder of micrographs, pick files
and a CTF table; it is followed with :class:`~napari_cryodiag.workflows.live.LiveSource` (a file is
read once it is complete; a micrograph's picks wait for its CTF row when the session has a CTF
table; every pick arrives once). Every ``--interval`` seconds (default 30) what has arrived is
taken and, when new picks came, ``cryodiag picks`` runs on all picks so far with the command's
other flags (thresholds, calibration, duplicates, ``--export-*``) and rewrites its outputs
atomically. ``--max-runs N`` stops after N intervals; Ctrl-C stops after the last complete run.

Outputs: an output that exists when the watch starts is replaced only with ``--overwrite`` (as
for every command); the files the watch itself wrote are rewritten at each run. Nothing is ever
written into DIR: an output there is refused up front.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import CryodiagInputError

#: flags that read picks or micrographs another way than from the watched session
_NOT_WITH_WATCH = ("picks", "pick", "score", "session", "micrographs", "denoised", "ctf")


def add_watch_args(parser) -> None:
    g = parser.add_argument_group("following a live session")
    g.add_argument("--watch", metavar="DIR", help="follow a RELION/cryoSPARC project or a folder while a session "
                                                  "writes into it, rerunning at each --interval")
    g.add_argument("--interval", type=float, default=30.0, metavar="S",
                   help="--watch: seconds between looks at DIR (default 30)")
    g.add_argument("--max-runs", type=int, default=0, metavar="N", help="--watch: stop after N intervals (0: until Ctrl-C)")


def watch(args, run_once, plan, log, warn) -> int:
    """The watch loop (module docstring): ``run_once(args, live=update)`` is ``cryodiag picks`` on
    the picks so far (``update.table``, ``update.exposures``)."""
    from ..workflows.live import LiveSource, concat_tables

    given = [f"--{n.replace('_', '-')}" if n != "picks" else "pick files" for n in _NOT_WITH_WATCH if getattr(args, n)]
    if given:
        raise CryodiagInputError(f"--watch reads the picks from the session: not with {', '.join(given)}", args.watch)
    if args.interval <= 0 or args.max_runs < 0:
        raise CryodiagInputError("--interval must be > 0 s and --max-runs >= 0", args.watch)
    src = LiveSource(args.watch)
    p = plan(args)
    inside = [o for o in (Path(os.path.abspath(f)) for f in p.outputs) if o == src.root or src.root in o.parents]
    if inside:
        raise CryodiagInputError(f"an output inside the watched folder ({inside[0]}): nothing is written into it; "
                                 "choose --out and --export-* elsewhere", src.root)
    p.check()  # an output already there: only with --overwrite
    frames, runs, last_n = [], 0, 0
    again = argparse.Namespace(**vars(args))
    try:
        while True:
            up = src.poll()
            for note in up.notes:
                warn(note)
            if up.picks is not None:
                frames.append(up.picks)
            n = sum(len(f) for f in frames)
            log(f"look {src.polls} at {src.root}: {up.describe()}; {n:,} picks on {len(src.micrographs)} "
                f"micrographs so far" + (f" ({src.waiting:,} waiting for their CTF)" if src.waiting else ""))
            if n > last_n:
                table = concat_tables(frames)
                summary = {"folder": str(src.root), "layout": src.layout, "looks": src.polls,
                           "n_micrographs": len(src.micrographs), "n_picks": n, "waiting_for_ctf": src.waiting}
                run_once(again, live=_Arrived(table, src.exposures, summary))
                again.overwrite = True  # from now on the outputs are this watch's own
                last_n = n
            runs += 1
            if args.max_runs and runs >= args.max_runs:
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        log("stopped (Ctrl-C)")
    if not last_n:
        log(f"no picks arrived in {src.root}: nothing written")
    return 0


@dataclass
class _Arrived:
    """What a watch run takes: the picks so far and the session's CTF rows (None: no CTF table)."""

    table: pd.DataFrame
    exposures: pd.DataFrame | None
    summary: dict  #: for the JSON: the watched folder, its layout, looks so far, micrographs arrived
