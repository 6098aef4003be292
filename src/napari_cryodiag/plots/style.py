"""Colours that follow the figure's theme: the widgets build figures under napari's dark or light
theme (``widgets._canvas.MplCanvas.plotting``), the command line under matplotlib's defaults.
Builders use these instead of fixed black/white so that every line and label reads on both."""

from __future__ import annotations

import matplotlib as mpl
from matplotlib.colors import to_rgb

__all__ = ["ink", "paper", "muted", "is_dark"]


def ink() -> str:
    """The colour of text and of the main reference lines (black on white, light on dark)."""
    return mpl.rcParams["text.color"]


def paper():
    """The plot background (for boxes behind text)."""
    return mpl.rcParams["axes.facecolor"]


def is_dark() -> bool:
    r, g, b = to_rgb(paper())
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5


def muted(level: float = 0.5) -> str:
    """A grey between the background (0) and the ink (1)."""
    v = level if not is_dark() else 1.0 - level
    return str(round(1.0 - v, 3))
