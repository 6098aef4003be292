"""Progress generators: the one pattern of long computations in ``compute`` and ``workflows``.

A long computation is a generator function named ``iter_<what>`` that yields
``(done, total)`` tuples between chunks and *returns* its result; the napari worker forwards the
tuples to a progress bar and stops the generator at a yield when the user cancels. The plain
function of the same computation drains the generator with :func:`run_steps`.
"""

from __future__ import annotations

from typing import Callable, Generator, TypeVar

T = TypeVar("T")


def run_steps(
    gen: Generator[tuple[int, int], None, T],
    progress: Callable[[int, int], None] | None = None,
    *,
    cancel=None,
    cancelled: type[Exception] = RuntimeError,
) -> T:
    """Drive a ``(done, total)`` generator to completion, calling ``progress``; return its value.

    ``cancel`` (a :class:`threading.Event`) is checked after each step: when set, the generator is
    closed (it stops at its yield) and ``cancelled`` is raised.
    """
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(*step)
        if cancel is not None and cancel.is_set():
            gen.close()
            raise cancelled(f"cancelled after {step[0]} of {step[1]}")


__all__ = ["run_steps"]
