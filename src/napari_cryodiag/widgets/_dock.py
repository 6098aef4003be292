"""The base of the plugin's dock widgets.

A :class:`Dock` is what napari's Plugins menu docks. It gives every widget the same frame:

- a scrollable body, so that all the plugin's docks fit one screen when they are docked together
  (a dock asks napari for little height; its content scrolls);
- ``reset_choices``: napari calls it when layers are added, removed or reordered, and the dock
  passes it to every magicgui container it holds; renamed layers and tables opened without a
  layer (``_tables.tables_of``) refresh the choosers too;
- ``run``: long work in a napari ``thread_worker`` with a magicgui progress bar and Cancel,
  the dock's action buttons disabled while it runs (a double click starts one job, not two);
- ``report``: the status line and a napari notification, from one message;
- the viewer's theme for its matplotlib canvases.
"""

from __future__ import annotations

import weakref
from typing import Callable, Iterable

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from ..errors import CryodiagInputError

__all__ = ["Dock", "JobControls", "page", "note", "QuietLabel"]


def note(value: str = "", rich: bool = False) -> Label:
    """A magicgui Label for messages: wraps at the dock's width (a long path or sentence never
    widens the dock), selectable; ``rich`` for HTML."""
    lab = Label(value=value)
    q = lab.native
    q.setWordWrap(True)
    q.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    q.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if rich:
        q.setTextFormat(Qt.TextFormat.RichText)
    return lab


class _QuietText(QWidget):
    """A word-wrapped QLabel in a holder without a layout: a new text repaints the label alone.

    Qt relayouts every ancestor of a QLabel whose text changes (``updateGeometry``), and a
    QTabWidget repaints its whole page then: every control and canvas of the tab (under Xvfb
    20-40 ms, as much as the change itself). Here the label's layout request stops at the holder,
    which asks its layout for a new height only when the wrapped text needs one.
    """

    def __init__(self):
        super().__init__()
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._height = 0

    def _needed(self) -> int:
        if not self.label.text():
            return 0
        return int(self.label.heightForWidth(max(self.width(), 1)))

    def _fit(self) -> None:
        h = self._needed()
        self.label.setGeometry(0, 0, self.width(), max(h, self.height()))
        if h != self._height:
            self._height = h
            self.updateGeometry()

    def set_text(self, text: str) -> None:
        if text != self.label.text():
            self.label.setText(text)
            self._fit()

    def resizeEvent(self, event):  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()

    def sizeHint(self):  # noqa: N802 - Qt API
        return QSize(1, self._height)

    def minimumSizeHint(self):  # noqa: N802 - Qt API
        return QSize(0, self._height)


class QuietLabel(Container):
    """A message line (magicgui, ``value`` like a Label) for texts that change at every step of
    a slider or micrograph: wraps at the dock's width, and a new text repaints only itself
    (:class:`_QuietText`)."""

    def __init__(self, value: str = "", **kwargs):
        super().__init__(labels=False, **kwargs)
        self.text_widget = _QuietText()
        lay = self.native.layout()
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.text_widget)
        self.value = value

    @property
    def value(self) -> str:
        return self.text_widget.label.text()

    @value.setter
    def value(self, text) -> None:
        self.text_widget.set_text(str(text))


def flush_nested(widget) -> None:
    """Containers inside a magicgui ``Container`` get no margins of their own (recursively): each
    level of nesting otherwise adds the layout's default margins (about 9 px a side), and a row
    of buttons or checkboxes in a form stands apart from the rows around it by a blank band."""
    if not isinstance(widget, Container):
        return
    for child in widget:
        if isinstance(child, Container):
            child.margins = (0, 0, 0, 0)
            flush_nested(child)


def page(*widgets, stretch=None, margins: int = 2) -> QWidget:
    """A tab page (or section) of magicgui/Qt widgets stacked vertically; ``stretch`` (one of
    them) takes the spare height up to its maximum height, and the page ends with a stretch that
    takes what is left (the widgets stay together at the top)."""
    out = QWidget()
    lay = QVBoxLayout(out)
    lay.setContentsMargins(margins, margins, margins, margins)
    lay.setSpacing(3)
    for w in widgets:
        flush_nested(w)
        lay.addWidget(getattr(w, "native", w), 1 if w is stretch else 0)
    lay.addStretch(1 if stretch is None else 0)
    return out


class JobControls(Container):
    """A progress bar and a Cancel button (magicgui), hidden while no job runs."""

    def __init__(self, **kwargs):
        self.progress = ProgressBar(value=0, min=0, max=1, label="")
        self.cancel = PushButton(text="Cancel", enabled=False)
        super().__init__(widgets=[self.progress, self.cancel], layout="horizontal", labels=False, **kwargs)
        self.visible = False


class Dock(QWidget):
    """Base class of the dock widgets (see the module docstring)."""

    #: title used in messages ("Inspect Picks: …")
    title = "cryodiag"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._containers: list[Container] = []
        self._action_buttons: list = []
        self._workers: list = []
        self._renamed_layers: set[int] = set()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self._scroll = QScrollArea(self)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(4, 4, 4, 4)
        self.body_layout.setSpacing(4)
        self._scroll.setWidget(self.body)
        outer.addWidget(self._scroll)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.status = note()
        layers = napari_viewer.layers
        layers.events.inserted.connect(self._on_layer_inserted)
        # napari resets the choices of the widgets it docks; a dock used on its own (a script, a
        # test) follows the layers too
        for ev in (layers.events.inserted, layers.events.removed, layers.events.reordered):
            ev.connect(self.reset_choices)
        # tables opened without a layer (CTF tables, particle sets, model.star, postprocess.star)
        from ._tables import tables_of

        self._seen_tables = weakref.WeakSet(tables_of(napari_viewer))
        tables_of(napari_viewer).changed.connect(self._on_tables_changed)
        for ly in layers:
            self._watch_name(ly)
        self.theme = getattr(napari_viewer, "theme", None)
        try:
            napari_viewer.events.theme.connect(self._on_theme)
        except AttributeError:  # pragma: no cover - older napari
            pass

    # ------------------------------------------------------------------ layout
    #: the most height a dock asks for; it can shrink to ``MIN_HEIGHT`` (its body scrolls)
    MAX_HINT_HEIGHT = 720
    MIN_HEIGHT = 160

    def minimumSizeHint(self):  # noqa: N802 - Qt API
        hint = super().minimumSizeHint()
        hint.setHeight(min(hint.height(), self.MIN_HEIGHT))
        return hint

    def sizeHint(self):  # noqa: N802 - Qt API
        hint = self.body.sizeHint()
        hint.setHeight(min(hint.height() + 8, self.MAX_HINT_HEIGHT))
        hint.setWidth(max(hint.width() + self._scroll.verticalScrollBar().sizeHint().width(), 360))
        return hint

    def add(self, widget, stretch: int = 0) -> None:
        """Add a magicgui widget/container or a Qt widget to the body."""
        if isinstance(widget, Container):
            self.track(widget)
            flush_nested(widget)
        self.body_layout.addWidget(getattr(widget, "native", widget), stretch)

    def arrange(self, *top, tabs=None) -> None:
        """The usual body: the ``top`` widgets (inputs, the action row, a summary), then the tabs
        taking the spare height, then the status line."""
        for w in top:
            self.add(w)
        if tabs is not None:
            self.add(tabs, stretch=1)
        self.add(self.status)

    @staticmethod
    def action_row(*widgets) -> Container:
        """Buttons (and job controls) side by side."""
        return Container(widgets=list(widgets), layout="horizontal", labels=False)

    def open_layers(self, paths) -> list:
        """Open files as napari's File > Open does (each on its own); returns the new layers, or
        an empty list after reporting why nothing could be opened."""
        paths = [str(p) for p in ([paths] if isinstance(paths, (str, bytes)) or not hasattr(paths, "__iter__")
                                  else paths) if str(p) not in ("", ".")]
        if not paths:
            return []
        before = set(map(id, self.viewer.layers))
        try:
            self.viewer.open(paths, plugin="napari-cryodiag", stack=False)
        except Exception as err:  # noqa: BLE001 - the reader's message names the file
            self.error(f"could not open {', '.join(paths)}: {err}")
            return []
        self.reset_choices()
        return [ly for ly in self.viewer.layers if id(ly) not in before]

    def track(self, *containers: Container) -> None:
        """Containers whose choosers follow the layer list (``reset_choices``)."""
        for c in containers:
            if c not in self._containers:
                self._containers.append(c)

    def actions(self, *buttons) -> None:
        """Buttons disabled while a job runs."""
        self._action_buttons.extend(buttons)

    # ------------------------------------------------------------------ choices
    def reset_choices(self, *_args) -> None:
        """Refresh every chooser (napari calls this when the layer list changes)."""
        for c in self._containers:
            c.reset_choices()
        self.on_layers_changed()

    def on_layers_changed(self) -> None:
        """Hook for subclasses: the layer list changed (after the choosers were refreshed)."""

    def _on_tables_changed(self, *_):
        """A table was opened: the choosers follow, and those that offer it choose it (the file
        just opened is the one to look at)."""
        from ._tables import tables_of

        tables = list(tables_of(self.viewer))
        new = [t for t in tables if t not in self._seen_tables]
        self._seen_tables = weakref.WeakSet(tables)
        self.reset_choices()
        if not new:
            return
        for w in self._choosers():
            offered = [t for t in new if t in (w.choices or ())]
            if offered:
                w.value = offered[-1]

    def _choosers(self):
        def walk(c):
            for w in c:
                if isinstance(w, Container):
                    yield from walk(w)
                elif isinstance(w, ComboBox):
                    yield w
        for c in self._containers:
            yield from walk(c)

    def _on_layer_inserted(self, event=None):
        if event is not None:
            self._watch_name(event.value)

    def _watch_name(self, layer) -> None:
        if id(layer) in self._renamed_layers:
            return
        self._renamed_layers.add(id(layer))
        layer.events.name.connect(self.reset_choices)

    def _on_theme(self, event=None):
        self.theme = getattr(self.viewer, "theme", None)
        self.on_theme_changed()

    def on_theme_changed(self) -> None:
        """Hook for subclasses: redraw plots in the new theme."""

    # ------------------------------------------------------------------ messages
    def report(self, message, level: str = "info") -> None:
        """Show ``message`` (text or an exception) in the status line and as a notification."""
        text = str(message)
        self.status.value = text
        show = {"info": show_info, "warning": show_warning, "error": show_error}[level]
        show(f"{self.title}: {text}")

    def error(self, err) -> None:
        self.report(err, "error")

    # ------------------------------------------------------------------ jobs
    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def run(self, job: Callable, *, on_done: Callable | None = None, controls: JobControls | None = None,
            description: str = "", disable: Iterable = ()):
        """Run the generator function ``job`` (yielding ``(done, total)``, returning its result)
        in a thread with progress and Cancel; ``on_done(result)`` runs in the GUI thread.
        Returns the napari worker, or None when a job of this dock is already running."""
        if self.busy:
            self.report(f"{description or 'a job'}: another job is running; wait for it or cancel it", "warning")
            return None
        # errors go to ``errored`` (reported below), not re-raised in the GUI thread
        worker = thread_worker(job, start_thread=False, ignore_errors=True)()
        buttons = [*self._action_buttons, *disable]
        for b in buttons:
            b.enabled = False
        if controls is not None:
            controls.progress.value = 0
            controls.visible = True
            controls.cancel.enabled = True
            controls.cancel.changed.disconnect()
            controls.cancel.changed.connect(worker.quit)

        def progress(value):
            if controls is not None and isinstance(value, tuple) and len(value) == 2:
                done, total = value
                controls.progress.max = max(int(total), 1)
                controls.progress.value = min(int(done), controls.progress.max)

        running = f"{description}: running …" if description else "running …"

        def finished():
            if worker in self._workers:
                self._workers.remove(worker)
            if self.status.value == running:  # nothing said the outcome: do not say it still runs
                self.status.value = ""
            for b in buttons:
                b.enabled = True
            if controls is not None:
                controls.visible = False
                controls.cancel.enabled = False

        def errored(exc):
            if isinstance(exc, CryodiagInputError):
                self.error(f"{description}: {exc}" if description else exc)
            else:
                self.error(f"{description or 'job'} failed: {type(exc).__name__}: {exc}")

        worker.yielded.connect(progress)
        worker.finished.connect(finished)
        worker.errored.connect(errored)
        worker.aborted.connect(lambda: self.report(f"{description or 'job'}: cancelled"))
        if on_done is not None:
            worker.returned.connect(on_done)
        self._workers.append(worker)
        self.status.value = running
        worker.start()
        return worker

    def wait(self, timeout_ms: int = 60_000) -> None:
        """Block until this dock's jobs are done (tests and scripts)."""
        from qtpy.QtCore import QCoreApplication, QElapsedTimer, QThread

        t = QElapsedTimer()
        t.start()
        while self._workers and t.elapsed() < timeout_ms:
            QCoreApplication.processEvents()
            QThread.msleep(5)
        QCoreApplication.processEvents()

    def closeEvent(self, event):  # noqa: N802 - Qt API
        for w in list(self._workers):
            w.quit()
        super().closeEvent(event)
