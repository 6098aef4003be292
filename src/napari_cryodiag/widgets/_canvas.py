"""A matplotlib canvas for dock widgets: napari's theme, a compact toolbar, and blitting.

Plots are built by functions in :mod:`napari_cryodiag.plots` that take a ``Figure``; the canvas
shows whichever figure it is given, so the widget and the command line draw the very same plot.
The widget draws inside :meth:`MplCanvas.plotting`, which clears the figure and applies the
viewer's theme (colours of napari's dark or light theme) while the plot's artists are made.

:class:`Blitter` redraws only a few moving artists over a saved background (a threshold line
dragged across a histogram costs a few ms instead of a full redraw).
"""

from __future__ import annotations

import contextlib

import matplotlib
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

__all__ = ["MplCanvas", "Blitter", "CompactToolbar", "theme_style"]


def theme_style(theme_name: str | None) -> dict:
    """matplotlib rcParams for napari's theme ``theme_name`` (``None``: matplotlib's defaults)."""
    if not theme_name:
        return {}
    try:
        from napari.utils.theme import get_theme

        t = get_theme(theme_name)
    except Exception:  # noqa: BLE001 - an unknown theme draws with matplotlib's defaults
        return {}

    def hexcolor(c):
        return c.as_hex() if hasattr(c, "as_hex") else str(c)

    bg, fg, text = hexcolor(t.background), hexcolor(t.foreground), hexcolor(t.text)
    grid = hexcolor(t.highlight)
    return {
        "figure.facecolor": bg,
        "figure.edgecolor": bg,
        "savefig.facecolor": bg,
        "axes.facecolor": fg,
        "axes.edgecolor": grid,
        "axes.labelcolor": text,
        "axes.titlecolor": text,
        "text.color": text,
        "xtick.color": text,
        "ytick.color": text,
        "grid.color": grid,
        "legend.facecolor": bg,
        "legend.edgecolor": grid,
        "legend.labelcolor": text,
        "font.size": 8.0,
        "axes.titlesize": 9.0,
        "axes.labelsize": 8.0,
        "legend.fontsize": 7.0,
        "xtick.labelsize": 7.0,
        "ytick.labelsize": 7.0,
    }


class _Readout(QWidget):
    """The toolbar's cursor readout (matplotlib's "x=… y=…"): a QLabel in a holder without a
    layout. Its text changes at every mouse move over the plot (a threshold line dragged); a
    plain QLabel there relaid out the toolbar and every ancestor, and the dock's QTabWidget
    repainted its whole page at each move."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)

    def sizeHint(self):  # noqa: N802 - Qt API
        return QSize(0, 0)

    def minimumSizeHint(self):  # noqa: N802 - Qt API
        return QSize(0, 0)

    def resizeEvent(self, event):  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self.label.setGeometry(self.rect())

    def text(self) -> str:
        return self.label.text()

    def set_text(self, text: str) -> None:
        if text != self.label.text():
            self.label.setText(text)


class _TitleLine(_Readout):
    """A plot's title that changes at every step (kept counts while a threshold moves), shown in Qt
    over the figure: matplotlib (3.11) lays out and rasterises a title glyph by glyph, about 7 ms
    a step on a 2-core VM, against well under 1 ms for this label. Its height changes only with
    its number of lines (no relayout of the dock at each step); hidden while empty."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._lines = 0
        self.setVisible(False)

    def _height(self) -> int:
        return self._lines * self.label.fontMetrics().lineSpacing() + (4 if self._lines else 0)

    def sizeHint(self):  # noqa: N802 - Qt API
        return QSize(0, self._height())

    def minimumSizeHint(self):  # noqa: N802 - Qt API
        return QSize(0, self._height())

    def set_text(self, text: str) -> None:
        super().set_text(text)
        lines = text.count("\n") + 1 if text else 0
        if lines != self._lines:
            self._lines = lines
            self.setFixedHeight(self._height())
            self.setVisible(bool(lines))


class CompactToolbar(NavigationToolbar2QT):
    """matplotlib's toolbar (home, back, forward, pan, zoom, subplots, save) with a cursor readout
    that repaints only itself (:class:`_Readout`), and its icons drawn once per palette
    (matplotlib's icons render their SVG file again at every paint of a button: read, parse and
    draw 8 files whenever the toolbar is repainted)."""

    ICON_PX = 16

    def __init__(self, canvas, parent=None):
        super().__init__(canvas, parent, coordinates=False)
        self.setIconSize(QSize(self.ICON_PX, self.ICON_PX))
        self.readout = _Readout(self)
        self.addWidget(self.readout)
        self._svg_icons = [(a, a.icon()) for a in self.actions() if not a.icon().isNull()]
        self._freeze_icons()

    def _freeze_icons(self) -> None:
        from qtpy.QtGui import QIcon

        size = QSize(self.ICON_PX, self.ICON_PX)
        for action, icon in self._svg_icons:
            frozen = QIcon()
            for mode in (QIcon.Mode.Normal, QIcon.Mode.Disabled, QIcon.Mode.Active, QIcon.Mode.Selected):
                for state in (QIcon.State.Off, QIcon.State.On):
                    frozen.addPixmap(icon.pixmap(size, mode, state), mode, state)
            action.setIcon(frozen)

    def changeEvent(self, event):  # noqa: N802 - Qt API
        from qtpy.QtCore import QEvent

        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange) and getattr(self, "_svg_icons", None):
            self._freeze_icons()  # the icons follow a light or dark theme

    def set_message(self, s):
        self.readout.set_text(s)

    def save_figure(self, *args):
        """matplotlib's Save, with the canvas's live title put in the figure while it is saved."""
        titled = getattr(self.parent(), "titled", None)
        with (titled() if titled is not None else contextlib.nullcontext()):
            return super().save_figure(*args)


class MplCanvas(QWidget):
    """A figure canvas with the matplotlib toolbar (zoom, pan, save), sized for a dock.

    The canvas is at least ``min_height`` tall and takes the spare height of its page (placed with
    ``page(..., stretch=canvas)``), up to ``max_aspect`` times its width when that is given: a
    plot fills a dock docked alone, without being stretched into a tall strip, and shrinks to its
    minimum when several docks share the side of the window.
    """

    def __init__(self, parent=None, figsize=(4.0, 3.0), toolbar: bool = True, min_height: int = 220,
                 theme: str | None = None, max_aspect: float | None = None):
        super().__init__(parent)
        self.theme = theme
        self.min_height = int(min_height)
        self.max_aspect = max_aspect
        self.figure = Figure(figsize=figsize, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.toolbar = None
        if toolbar:
            self.toolbar = CompactToolbar(self.canvas, self)
            layout.addWidget(self.toolbar)
        #: the live title (:meth:`set_live_title`), between the toolbar and the figure
        self.title = _TitleLine(self)
        self._title_axes = None
        self._title_kw: dict = {}
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        self.canvas.setMinimumHeight(min_height)
        self._apply_face()

    def resizeEvent(self, event):  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self.max_aspect and event.size().width() != event.oldSize().width():
            # the whole widget is capped (toolbar and canvas stay together): the page's stretch
            # takes what is left below it
            bar = self.toolbar.sizeHint().height() if self.toolbar is not None else 0
            self.setMaximumHeight(bar + max(self.min_height, round(event.size().width() * self.max_aspect)))

    def set_theme(self, theme: str | None) -> None:
        self.theme = theme
        self._apply_face()

    def _apply_face(self):
        st = theme_style(self.theme)
        if st:
            self.figure.set_facecolor(st["figure.facecolor"])

    @contextlib.contextmanager
    def plotting(self, draw: bool = True):
        """Clear the figure and build a plot in it under the viewer's theme; draws at the end
        (``draw=False``: the caller draws it, e.g. when taking a blitting background: a second,
        idle full draw would double the cost of a new plot)."""
        with matplotlib.rc_context(theme_style(self.theme)):
            self.figure.clear()
            self._apply_face()
            yield self.figure
        if draw:
            self.canvas.draw_idle()

    def clear(self) -> Figure:
        """Clear and return the figure (for callers that apply the theme themselves)."""
        self.figure.clear()
        self._apply_face()
        return self.figure

    def draw(self) -> None:
        self.canvas.draw_idle()

    def draw_now(self) -> None:
        self.canvas.draw()

    def set_live_title(self, text: str, ax=None, **title_kw) -> None:
        """Show ``text`` as the title of ``ax`` in a Qt label over the figure (a title that changes
        at every step of a slider), not in the figure; saving the figure (:meth:`save`, the
        toolbar's Save) puts it in the figure as ``ax``'s title (``title_kw``: its font size...)."""
        if ax is not None:
            self._title_axes = ax
            self._title_kw = dict(title_kw)
        self.title.set_text(text)

    @contextlib.contextmanager
    def titled(self):
        """The live title put in the figure (laid out again with it) while the body runs, then the
        figure as it was (title, layout engine, axes positions)."""
        fig, ax, text = self.figure, self._title_axes, self.title.text()
        if ax is None or not text or ax.figure is not fig:
            yield
            return
        # both positions of each axes: a colour bar's active box is its original one shrunk to
        # its aspect at each draw (restoring the active box alone would shrink it once more)
        positions = [(a.get_position(original=True), a.get_position()) for a in fig.axes]
        # the dock lays a figure out once and then keeps its positions (engine "none")
        was_none = isinstance(fig.get_layout_engine(), (type(None), PlaceHolderLayoutEngine))
        old = ax.get_title()
        with matplotlib.rc_context(theme_style(self.theme)):
            ax.set_title(text, **self._title_kw)
        fig.set_layout_engine("constrained")
        try:
            yield
        finally:
            ax.set_title(old)
            if was_none:
                fig.set_layout_engine("none")
                for a, (orig, active) in zip(fig.axes, positions):
                    a.set_position(orig, which="original")
                    a.set_position(active, which="active")

    def save(self, path: str) -> None:
        with self.titled():
            self.figure.savefig(path, dpi=150)


class Blitter:
    """Redraw a few moving ``artists`` over a saved background (the rest of the figure).

    The artists stay ordinary artists (every full draw shows them); the background, without them,
    is taken at the first :meth:`update` after :meth:`invalidate` (one full draw), then each
    update restores it and draws only the artists: a few milliseconds.
    """

    def __init__(self, canvas: FigureCanvasQTAgg):
        self.canvas = canvas
        self.artists: list = []
        self._bg = None

    @property
    def active(self) -> bool:
        return bool(self.artists) and getattr(self.canvas, "supports_blit", False)

    def start(self, artists) -> bool:
        """Blit these artists from now on (the background is taken at the next update)."""
        self.artists = [a for a in artists if a is not None]
        self._bg = None
        return self.active

    def _take_background(self) -> None:
        for a in self.artists:
            a.set_animated(True)
        try:
            self.canvas.draw()
            self._bg = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
        finally:
            for a in self.artists:
                a.set_animated(False)

    def update(self) -> None:
        if not self.active:
            self.canvas.draw_idle()
            return
        if self._bg is None or self.canvas.figure.bbox.width != getattr(self, "_bg_width", None):
            self._take_background()
            self._bg_width = self.canvas.figure.bbox.width
        self.canvas.restore_region(self._bg)
        fig = self.canvas.figure
        for a in self.artists:
            if a.get_visible():
                fig.draw_artist(a)
        # the Agg buffer now holds the frame: let Qt paint it with the rest of the window in the
        # next paint (matplotlib's blit() repaints at once, a second composite of the whole window
        # next to the viewer's own repaint of the recoloured picks)
        self.canvas.update()

    def invalidate(self) -> None:
        """The rest of the figure changed (counts, size): take a new background next time."""
        self._bg = None

    def stop(self, redraw: bool = True) -> None:
        self._bg = None
        self.artists = []
        if redraw:
            self.canvas.draw_idle()
