"""One dask path for chunked work: local threads or a ``dask.distributed`` cluster.

Scoring and picking (one task per micrograph), the noise model and class half-set averages (one
task per chunk of particles) all build a list of ``dask.delayed`` tasks and hand it to
:func:`run_tasks`, which

- computes them on dask's threaded scheduler (``num_workers`` threads; NumPy/SciPy release the
  GIL), or on a :class:`distributed.Client` given as ``client`` (or the address of a running
  scheduler, ``"tcp://host:8786"``, for which a client is opened and closed again);
- yields ``(done, total)`` after each task, so that napari's ``thread_worker`` shows progress
  and its ``quit()`` (closing the generator) stops the run: no new task starts (threads), the
  remaining futures are cancelled (distributed);
- returns the results in task order (``StopIteration.value``).

A job that runs its tasks in several rounds (the noise model and the class averages add the
partial sums of each round before starting the next, so memory stays flat in the number of
particles) uses a :class:`TaskRunner`: one client for the whole job, objects shared by every
round sent to the cluster once (:meth:`TaskRunner.share`).

What travels in the graph: the tasks' own arguments, and whatever :func:`shared` wraps once for
all tasks (options, template stacks, a projector). Inputs from files are read *inside* the tasks,
from paths: a :class:`~napari_cryodiag.io.mrc.MicrographStack` chunk is a read task that names
its file, a particle-image source (``read(rows)``) carries paths, so on a cluster every worker
reads its own micrographs and particle images from the shared file system and no image array
is sent from the client. Results (scores, partial sums) travel back.

Reduction order: results come back in task order and are combined by the caller in that order,
so a run gives the same numbers on threads and on a cluster (bit for bit for scoring and picking,
where nothing is summed across tasks; the noise model's sums are added in task order too).
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Callable

import numpy as np

__all__ = ["JobCancelled", "TaskRunner", "run_tasks", "shared", "open_client", "task_key", "scheduler_name"]

_counter = itertools.count()


class JobCancelled(RuntimeError):
    """The run was cancelled before all tasks were done."""


def task_key(prefix: str) -> Callable[[int], str]:
    """Unique, readable dask keys for one run: ``task_key("cryodiag-score")(i)``."""
    run = next(_counter)
    return lambda i: f"{prefix}-{run}-{i}"


class TaskRunner:
    """One job's scheduler: ``with TaskRunner(client, num_workers) as runner:`` then
    ``node = runner.share(big)`` and ``results = yield from runner.run(delayeds)`` per round.

    ``client`` is ``None`` (local threads), a :class:`distributed.Client` or a scheduler
    address (opened here and closed on exit).
    """

    def __init__(self, client=None, num_workers: int | None = None, *, cancel: threading.Event | None = None,
                 cancelled: type[Exception] = JobCancelled, what: str = "tasks"):
        self._given = client
        self.client = None
        self._owned = False
        self.num_workers = num_workers
        self.cancel = cancel
        self.cancelled = cancelled
        self.what = what

    def __enter__(self) -> "TaskRunner":
        self.client, self._owned = open_client(self._given)
        return self

    def __exit__(self, *exc):
        if self._owned and self.client is not None:
            self.client.close()
        self.client = None
        return False

    @property
    def scheduler(self) -> str:
        return scheduler_name(self.client)

    @property
    def n_workers(self) -> int:
        """Threads that run tasks at once (all workers' threads on a cluster)."""
        if self.client is not None:
            info = self.client.scheduler_info().get("workers", {})
            return max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))
        import os

        return max(1, self.num_workers or os.cpu_count() or 1)

    def share(self, obj, name: str | None = None):
        """``obj`` once for every task of every round: scattered to the workers (a cluster) or
        one node of the graph (threads)."""
        if self.client is not None:
            return self.client.scatter(obj, broadcast=True, hash=False)
        return shared(obj, name)

    def run(self, delayeds: list):
        """Generator: one round (see :func:`run_tasks`)."""
        return run_tasks(delayeds, client=self.client, num_workers=self.num_workers, cancel=self.cancel,
                         cancelled=self.cancelled, what=self.what)

    def run_items(self, delayeds: list, sizes, done: int, total: int):
        """Generator: one round whose tasks hold ``sizes`` items (particles) each, after ``done``
        items of ``total``; yields ``(items done, total)`` after each task, returns the results."""
        ends = done + np.cumsum(np.asarray(sizes, dtype=np.int64))
        gen = self.run(delayeds)
        while True:
            try:
                k, _ = next(gen)
            except StopIteration as stop:
                return stop.value
            yield int(ends[k - 1]), total


def shared(obj, name: str | None = None):
    """``obj`` as one node of the graph, shared by every task that takes it (sent to a cluster
    once, not once per task). The node gets a fresh name: ``obj`` is never hashed (an image stack
    in memory would be read whole to tokenize it)."""
    import dask

    return dask.delayed(obj, pure=True, name=name or f"cryodiag-shared-{next(_counter)}-{type(obj).__name__}")


def open_client(client):
    """``(client, owned)``: a given client as it is, an address opened (and to be closed)."""
    if client is None:
        return None, False
    if isinstance(client, str):
        from distributed import Client

        return Client(client), True
    return client, False


def scheduler_name(client) -> str:
    """``"threads"`` or ``"distributed"`` (for records)."""
    return "threads" if client is None else "distributed"


def run_tasks(delayeds: list, *, client=None, num_workers: int | None = None,
              cancel: threading.Event | None = None, cancelled: type[Exception] = JobCancelled,
              what: str = "tasks"):
    """Generator: compute ``delayeds``, yield ``(done, total)`` after each, return the results in order.

    ``cancel`` (a :class:`threading.Event`) stops the run between tasks, raising ``cancelled``.
    """
    total = len(delayeds)
    if total == 0:
        return []
    cancel = cancel or threading.Event()
    cl, owned = open_client(client)
    if cl is not None:
        from distributed import as_completed

        try:
            futures = cl.compute(delayeds)
            done = 0
            try:
                for _ in as_completed(futures):
                    done += 1
                    if cancel.is_set():
                        raise cancelled(f"cancelled after {done} of {total} {what}")
                    yield done, total
            except BaseException:
                cl.cancel(futures)
                raise
            return cl.gather(futures)
        finally:
            if owned:
                cl.close()

    import dask
    from dask.callbacks import Callback

    wanted = {d.key for d in delayeds}
    q: queue.Queue = queue.Queue()
    stop = threading.Event()  # set when the caller goes away or cancels

    class _Progress(Callback):
        def _pretask(self, key, dsk, state):
            if stop.is_set() or cancel.is_set():
                raise cancelled("cancelled")

        def _posttask(self, key, result, dsk, state, worker_id):
            if key in wanted:
                q.put(("done", key))

    def _work():
        try:
            # callbacks passed to this computation only (not registered globally), so that
            # other dask work in the process (napari reading lazy layers) is never affected
            res = dask.compute(*delayeds, scheduler="threads", num_workers=num_workers,
                               callbacks=[_Progress()._callback])
            q.put(("result", res))
        except BaseException as err:  # delivered to the caller
            q.put(("error", err))

    th = threading.Thread(target=_work, name="cryodiag-dask-run", daemon=True)
    th.start()
    done = 0
    finished = False
    try:
        while True:
            kind, val = q.get()
            if kind == "done":
                done += 1
                if cancel.is_set():
                    raise cancelled(f"cancelled after {done} of {total} {what}")
                yield done, total
            elif kind == "result":
                finished = True
                return list(val)
            else:
                finished = True
                raise val
    finally:
        if not finished:  # closed early (GeneratorExit) or cancelled: stop starting new tasks
            stop.set()
