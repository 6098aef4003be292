"""Per-micrograph scoring and picking over a whole micrograph set, through dask.

One dask task per micrograph: it reads the micrograph's chunk (a
:class:`~napari_cryodiag.io.mrc.MicrographStack` reads a file only when its chunk is
computed, on the worker that runs the task) and scores the picks on it
(:func:`~.scores.score_micrograph`) or picks it (:func:`~.picker.pick_micrograph`). The tasks run
through the project's one dask path, :func:`napari_cryodiag.compute.scheduling.run_tasks`:

- default: dask's threaded scheduler (``num_workers`` threads; NumPy/SciPy release the GIL);
- ``client=``: a :class:`distributed.Client`, or the address of a running scheduler
  (``"tcp://host:8786"``) for which a client is opened and closed again. Micrographs of a
  ``MicrographStack`` travel as paths (each worker reads its own from the shared file system);
  the :class:`~.scores.ScoreOptions` (templates included) are one shared node of the graph.

Progress and cancellation, for the napari widget and the command line:

- ``iter_score_picks`` / ``iter_pick_micrographs`` are generators that yield ``(done, total)``
  after each micrograph and *return* the result (``StopIteration.value``); napari's
  ``thread_worker`` passes the yields to a progress bar and the return value to ``returned``.
  Closing the generator (napari's ``worker.quit()``) cancels the remaining micrographs.
- ``score_picks`` / ``pick_micrographs`` run them to the end, calling ``progress(done, total)``
  and checking ``cancel`` (a :class:`threading.Event`) between micrographs; a cancelled run
  raises :class:`PickJobCancelled`.

Micrographs are matched to picks by key (:func:`napari_cryodiag.micrographs.match_to_micrographs`
on the table's ``micrograph`` column; a ``micrograph_index`` column is used when the stack has
no keys). Picks on micrographs that are not in the stack get NaN scores and are counted in
``result.attrs["cryodiag_scoring"]``.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError
from ..progress import run_steps
from ..scheduling import JobCancelled, run_tasks, scheduler_name, shared, task_key
from .scores import ScoreOptions

__all__ = [
    "PickJobCancelled",
    "score_picks",
    "iter_score_picks",
    "pick_micrographs",
    "iter_pick_micrographs",
]


class PickJobCancelled(JobCancelled):
    """The run was cancelled before all micrographs were done."""


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------

def _as_blocks(micrographs):
    """``(blocks, keys, names, pixel_size_A, shape)``: one dask Delayed (or array) per micrograph."""
    import dask.array as da

    keys = names = None
    apix = None
    data = micrographs
    if hasattr(micrographs, "data") and hasattr(micrographs, "keys") and not isinstance(micrographs, dict):
        # a micrograph stack's memory-mapped chunks where it has them (each file read in place)
        data = getattr(micrographs, "mapped", None)
        data = micrographs.data if data is None else data
        keys = list(micrographs.keys)
        names = list(getattr(micrographs, "names", keys))
        apix = getattr(micrographs, "pixel_size_A", None)
    if isinstance(data, (list, tuple)):
        blocks = [np.asarray(a) if not hasattr(a, "dask") else a for a in data]
        shape = (len(blocks),) + tuple(np.shape(blocks[0])) if blocks else (0, 0, 0)
        return [_Block(b, False) for b in blocks], keys, names, apix, shape
    if isinstance(data, da.Array):
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(f"micrographs must be (n, ny, nx), got shape {data.shape}")
        if data.chunks[1] != (data.shape[1],) or data.chunks[2] != (data.shape[2],) or any(c != 1 for c in data.chunks[0]):
            data = data.rechunk((1, -1, -1))
        blocks = [_Block(d, True) for d in data.to_delayed().ravel()]
        return blocks, keys, names, apix, tuple(data.shape)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"micrographs must be (n, ny, nx), got shape {arr.shape}")
    return [_Block(a, False) for a in arr], keys, names, apix, tuple(arr.shape)


class _Block:
    """One micrograph: a Delayed chunk ``(1, ny, nx)`` or an in-memory 2D array."""

    def __init__(self, obj, chunk: bool):
        self.obj = obj
        self.chunk = chunk


def _plane(block):
    a = np.asarray(block)
    return a[0] if a.ndim == 3 else a


def _rows_per_micrograph(table: pd.DataFrame, keys, n: int, micrograph_column: str):
    """Row positions per micrograph index, and a match report dict."""
    if keys is not None and micrograph_column in table.columns:
        from ...micrographs import match_to_micrographs

        idx, report = match_to_micrographs(table.rename(columns={micrograph_column: "micrograph"})
                                           if micrograph_column != "micrograph" else table, keys)
        report = dict(report)
    elif "micrograph_index" in table.columns:
        idx = pd.to_numeric(table["micrograph_index"], errors="coerce").fillna(-1).to_numpy(np.int64)
        idx = np.where((idx >= 0) & (idx < n), idx, -1)
        report = {"n_rows": len(table), "n_matched": int((idx >= 0).sum()), "n_unmatched": int((idx < 0).sum())}
    elif n == 1:
        idx = np.zeros(len(table), dtype=np.int64)
        report = {"n_rows": len(table), "n_matched": len(table), "n_unmatched": 0}
    else:
        raise CryodiagInputError(
            "cannot match picks to micrographs: the table has no micrograph names "
            f"('{micrograph_column}') or 'micrograph_index', and the stack has {n} micrographs",
            table.attrs.get("source"),
        )
    order = np.argsort(idx, kind="stable")
    bounds = np.searchsorted(idx[order], np.arange(n + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n)], idx, report


def _run(tasks, client, num_workers, cancel):
    return run_tasks(tasks, client=client, num_workers=num_workers, cancel=cancel, cancelled=PickJobCancelled,
                     what="micrographs")


def _options(options, diameter_px, apix, kwargs) -> ScoreOptions:
    """The run's :class:`ScoreOptions`: ``options`` with the keywords, the diameter and (when the
    options do not say) the stack's pixel size."""
    if diameter_px is not None:
        kwargs["diameter_px"] = float(diameter_px)
    if apix and "pixel_size_A" not in kwargs and (options is None or options.pixel_size_A is None):
        kwargs["pixel_size_A"] = apix
    return ScoreOptions.build(options, **kwargs)


# ----------------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------------

def _score_task(block, score_block, x, y, options):
    from .scores import prepare_micrograph

    img = _plane(block)
    simg = None if score_block is None else _plane(score_block)
    ncc, power, coverage = prepare_micrograph(img, options, score_image=simg).scores(x, y, return_coverage=True)
    return ncc, power, int(np.sum((coverage < 1) & np.isfinite(ncc)))


def iter_score_picks(
    micrographs,
    table: pd.DataFrame,
    *,
    options: ScoreOptions | None = None,
    diameter_px: float | None = None,
    keys: Iterable[str] | None = None,
    score_micrographs=None,
    client=None,
    num_workers: int | None = None,
    cancel: threading.Event | None = None,
    columns: tuple[str, str] = ("ncc", "power"),
    micrograph_column: str = "micrograph",
    **score_kwargs,
):
    """Generator version of :func:`score_picks` (yields ``(done, total)``, returns the table)."""
    import dask

    blocks, stack_keys, _, apix, shape = _as_blocks(micrographs)
    keys = list(keys) if keys is not None else stack_keys
    n = len(blocks)
    if diameter_px is None and options is None:
        if "diameter_px" in table.columns and np.isfinite(pd.to_numeric(table["diameter_px"], errors="coerce")).any():
            diameter_px = float(np.nanmedian(pd.to_numeric(table["diameter_px"], errors="coerce")))
        else:
            raise CryodiagInputError("give the particle diameter (diameter_px) to score picks", table.attrs.get("source"))
    opts = _options(options, diameter_px, apix, score_kwargs)
    sblocks = None
    if score_micrographs is not None:
        sblocks, _, _, _, sshape = _as_blocks(score_micrographs)
        if len(sblocks) != n:
            raise CryodiagInputError(
                f"the score (denoised) stack has {len(sblocks)} micrographs, the raw stack {n}", None
            )
    for c in ("x_px", "y_px"):
        if c not in table.columns:
            raise CryodiagInputError(f"the picks have no '{c}' column: nothing to score", table.attrs.get("source"))
    rows_per, idx, report = _rows_per_micrograph(table, keys, n, micrograph_column)
    x = pd.to_numeric(table["x_px"], errors="coerce").to_numpy(np.float64)
    y = pd.to_numeric(table["y_px"], errors="coerce").to_numpy(np.float64)
    key = task_key("cryodiag-score")
    node = shared(opts)
    tasks, which = [], []
    for i, rows in enumerate(rows_per):
        if len(rows) == 0:
            continue
        b = blocks[i].obj
        sb = None if sblocks is None else sblocks[i].obj
        tasks.append(dask.delayed(_score_task, pure=False)(b, sb, x[rows], y[rows], node, dask_key_name=key(i)))
        which.append(rows)
    results = yield from _run(tasks, client, num_workers, cancel)
    ncc = np.full(len(table), np.nan)
    power = np.full(len(table), np.nan)
    n_cut = 0
    for rows, (c, p, k) in zip(which, results):
        ncc[rows] = c
        power[rows] = p
        n_cut += k
    out = table.copy()
    out[columns[0]] = ncc
    out[columns[1]] = power
    matched = idx >= 0
    out.attrs = dict(table.attrs)
    record = opts.record()
    out.attrs["cryodiag_scoring"] = {
        "diameter_px": float(opts.diameter_px),
        "columns": list(columns),
        "n_picks": int(len(table)),
        "n_unmatched": int((~matched).sum()),
        "unmatched_micrographs": report.get("unmatched_micrographs", {}),
        "n_nan": int((matched & ~np.isfinite(ncc)).sum()),
        "n_edge": int(n_cut),
        "n_micrographs_scored": len(tasks),
        "scheduler": scheduler_name(client),
        "options": {k: v for k, v in record.items() if k not in ("diameter_px", "templates")},
        "templates": record["templates"],
    }
    return out


def score_picks(
    micrographs,
    table: pd.DataFrame,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    **kwargs,
) -> pd.DataFrame:
    """NCC and power for every pick of ``table`` on its micrograph, one dask task per micrograph.

    Parameters
    ----------
    micrographs
        A :class:`~napari_cryodiag.io.mrc.MicrographStack`, a dask or NumPy array ``(n, ny, nx)``,
        or a list of 2D arrays (then give ``keys``, or a ``micrograph_index`` column).
    table
        Canonical pick table (``x_px``, ``y_px``, ``micrograph``).
    diameter_px
        Particle diameter (pixels); default: the table's ``diameter_px`` column.
    keys
        Micrograph keys of an array stack (``MicrographStack`` brings its own).
    score_micrographs
        A denoised/low-passed stack in the same order, scored instead of the raw one
        (coordinates stay on the raw micrographs; it may be binned).
    client
        ``distributed.Client`` or scheduler address; default: threads.
    num_workers
        Threads of the local scheduler (default: dask's, the number of cores).
    progress, cancel
        ``progress(done, total)`` after each micrograph; a set ``threading.Event`` stops the run
        (:class:`PickJobCancelled`).
    columns
        Names of the two output columns (default ``("ncc", "power")``; pass others to keep a
        picker's own scores).
    options, **kwargs
        :class:`~.scores.ScoreOptions`, or its fields as keywords (``templates``, ``lowpass_A``,
        ...; ``pixel_size_A`` defaults to the stack's).

    Returns
    -------
    A copy of ``table`` with the two score columns; picks on micrographs not in the stack, or
    off their micrograph, get NaN (picks whose box crosses the edge are scored and counted as
    ``n_edge``). ``attrs["cryodiag_scoring"]`` records counts and options.
    """
    return run_steps(iter_score_picks(micrographs, table, cancel=cancel, **kwargs), progress, cancel=cancel,
                     cancelled=PickJobCancelled)


# ----------------------------------------------------------------------------------------------
# picking
# ----------------------------------------------------------------------------------------------

def _pick_task(block, score_block, options, pick_kwargs):
    from .picker import pick_micrograph

    img = _plane(block)
    simg = None if score_block is None else _plane(score_block)
    return pick_micrograph(img, options, score_image=simg, **pick_kwargs)


#: keywords of :func:`~.picker.pick_micrograph` that are not scoring options
_PICK_ONLY = ("detector", "min_distance_px", "select", "ncc_min", "energy_sigmas", "junk_mads", "pick_lowpass_A",
              "max_picks", "workers")


def iter_pick_micrographs(
    micrographs,
    *,
    options: ScoreOptions | None = None,
    diameter_px: float | None = None,
    keys: Iterable[str] | None = None,
    names: Iterable[str] | None = None,
    score_micrographs=None,
    client=None,
    num_workers: int | None = None,
    cancel: threading.Event | None = None,
    **pick_kwargs,
):
    """Generator version of :func:`pick_micrographs`."""
    import dask

    blocks, stack_keys, stack_names, apix, shape = _as_blocks(micrographs)
    n = len(blocks)
    keys = list(keys) if keys is not None else (stack_keys or [f"micrograph_{i:05d}" for i in range(n)])
    names = list(names) if names is not None else (stack_names or keys)
    picker = {k: pick_kwargs.pop(k) for k in _PICK_ONLY if k in pick_kwargs}
    if diameter_px is None and options is None:
        raise CryodiagInputError("give the particle diameter (diameter_px) to pick")
    opts = _options(options, diameter_px, apix, pick_kwargs)
    sblocks = None
    if score_micrographs is not None:
        sblocks = _as_blocks(score_micrographs)[0]
        if len(sblocks) != n:
            raise CryodiagInputError(f"the score (denoised) stack has {len(sblocks)} micrographs, the raw stack {n}")
    key = task_key("cryodiag-pick")
    node = shared(opts)
    tasks = [
        dask.delayed(_pick_task, pure=False)(
            blocks[i].obj, None if sblocks is None else sblocks[i].obj, node, picker, dask_key_name=key(i),
        )
        for i in range(n)
    ]
    results = yield from _run(tasks, client, num_workers, cancel)
    parts = []
    for i, df in enumerate(results):
        df = df.copy()
        df.insert(0, "micrograph_index", i)
        df.insert(0, "micrograph", keys[i])
        df.insert(0, "micrograph_name", names[i])
        parts.append(df)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["micrograph_name", "micrograph", "micrograph_index", "x_px", "y_px", "ncc", "power"]
    )
    if opts.pixel_size_A:
        out["pixel_size_A"] = float(opts.pixel_size_A)
    out["diameter_px"] = float(opts.diameter_px)
    out.attrs = {
        "source": "cryodiag picker",
        "format": "picker",
        "convention": "x_px = column, y_px = row of the micrograph array",
        "picker": dict(results[0].attrs.get("picker", {})) if results else {},
    }
    return out


def pick_micrographs(
    micrographs,
    *,
    diameter_px: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Pick every micrograph (blob or templates), one dask task per micrograph.

    ``micrographs``, ``keys``, ``score_micrographs``, ``client``, ``num_workers``, ``progress``
    and ``cancel`` as in :func:`score_picks`; other keyword arguments go to
    :func:`~.picker.pick_micrograph` (``templates``, ``ncc_min``, ``min_distance_px``, ...).

    Returns the canonical pick table: ``micrograph_name``, ``micrograph`` (key),
    ``micrograph_index``, ``x_px``, ``y_px``, ``ncc``, ``power``, ``template_index``,
    ``angle_deg``, ``diameter_px`` (and ``pixel_size_A`` when known).
    """
    return run_steps(iter_pick_micrographs(micrographs, diameter_px=diameter_px, cancel=cancel, **kwargs), progress,
                     cancel=cancel, cancelled=PickJobCancelled)
