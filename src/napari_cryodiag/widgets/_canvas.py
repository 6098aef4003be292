"""A matplotlib canvas for dock widgets (Qt backend), and a figure-replacing helper.

Plots are built by functions in :mod:`napari_cryodiag.plots` that take a ``Figure`` (or
create one); the canvas shows whichever figure it is given, so the widget and the command
line draw the very same plot.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from qtpy.QtWidgets import QVBoxLayout, QWidget


class MplCanvas(QWidget):
    """A figure canvas with the standard matplotlib toolbar (zoom, pan, save)."""

    def __init__(self, parent=None, figsize=(5, 4), toolbar: bool = True):
        super().__init__(parent)
        self.figure = Figure(figsize=figsize, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if toolbar:
            self.toolbar = NavigationToolbar2QT(self.canvas, self)
            layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        self.canvas.setMinimumHeight(250)

    def clear(self) -> Figure:
        """Clear and return the figure, for a plot function to draw into."""
        self.figure.clear()
        return self.figure

    def draw(self) -> None:
        self.canvas.draw_idle()

    def save(self, path: str) -> None:
        self.figure.savefig(path, dpi=150)
