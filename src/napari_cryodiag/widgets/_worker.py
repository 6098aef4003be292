"""Run long work off the GUI thread with progress and cancel.

``start_worker`` wraps napari's ``thread_worker``: the function may be a generator that
yields ``(done, total)`` progress tuples and finally returns its result. The widget passes a
``QProgressBar`` and a cancel ``QPushButton``; cancel asks the worker to quit at its next
yield (work in compute modules yields between chunks, e.g. between micrographs).
"""

from __future__ import annotations

from typing import Callable

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info


def start_worker(
    func: Callable,
    *args,
    on_done: Callable | None = None,
    progress_bar=None,
    cancel_button=None,
    description: str = "",
    **kwargs,
):
    """Start ``func(*args, **kwargs)`` in a thread; returns the napari worker."""
    worker = thread_worker(func, start_thread=False)(*args, **kwargs)

    def _progress(value):
        if progress_bar is not None and isinstance(value, tuple) and len(value) == 2:
            done, total = value
            progress_bar.setMaximum(max(int(total), 1))
            progress_bar.setValue(int(done))

    def _finished():
        if progress_bar is not None:
            progress_bar.setVisible(False)
        if cancel_button is not None:
            cancel_button.setEnabled(False)

    def _errored(exc):
        show_error(f"{description or 'cryodiag'}: {exc}")

    def _aborted():
        show_info(f"{description or 'cryodiag'}: cancelled")

    worker.yielded.connect(_progress)
    worker.finished.connect(_finished)
    worker.errored.connect(_errored)
    worker.aborted.connect(_aborted)
    if on_done is not None:
        worker.returned.connect(on_done)
    if progress_bar is not None:
        progress_bar.setValue(0)
        progress_bar.setVisible(True)
    if cancel_button is not None:
        cancel_button.setEnabled(True)
        try:
            cancel_button.clicked.disconnect()
        except (TypeError, RuntimeError):
            pass
        cancel_button.clicked.connect(worker.quit)
    worker.start()
    return worker
