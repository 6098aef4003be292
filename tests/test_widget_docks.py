"""All seven plugin docks added from the Plugins menu (napari's own way, not tabbed) on the sample
data fit a 1920×1200 screen: each dock asks for little height (its body scrolls)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.viewer

DOCKS = ("Inspect Picks", "Map validation", "Classes", "Orientations", "Noise model", "Micrograph display", "Project")
SHOT_DIR = Path(os.environ.get("CRYODIAG_SCREENSHOTS", "/tmp"))


def _docked_alone(make_napari_viewer, qtbot, sample: str, name: str):
    """A viewer with one sample and one dock added from the Plugins menu, in an 1800×1100 window."""
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryodiag", sample)
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodiag", name)
    w.window().resize(1800, 1100)
    for _ in range(30):
        QApplication.processEvents()
    qtbot.wait(200)
    return viewer, w


def test_every_dock_fits_a_1920x1200_screen(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    from napari_cryodiag.widgets._dock import Dock

    viewer = make_napari_viewer(show=True)
    for key in ("micrographs", "half_maps", "class_averages", "refined_particles"):
        viewer.open_sample("napari-cryodiag", key)
    widgets = []
    for name in DOCKS:
        _, w = viewer.window.add_plugin_dock_widget("napari-cryodiag", name)
        widgets.append(w)
    window = widgets[0].window()  # the viewer's main window (public Qt API)
    window.resize(1800, 1100)
    for _ in range(30):
        QApplication.processEvents()
    qtbot.wait(200)
    size = window.frameGeometry()
    assert size.height() <= 1200 and size.width() <= 1920, (size.width(), size.height())
    assert window.minimumSizeHint().height() <= 1200
    for name, w in zip(DOCKS, widgets):
        if isinstance(w, Dock):
            assert w.minimumSizeHint().height() <= Dock.MIN_HEIGHT, name
    # every dock is docked (not tabbed) and shows something
    assert all(w.isVisible() for w in widgets)
    # each particle dock defaults to the particle set it can use: Classes to the 2D classification,
    # Orientations and Noise model to the refinement (not to the 2D classification's particles,
    # whose poses are all 0, nor to the picks layer), Noise model to the map of the particles' box
    docks = dict(zip(DOCKS, widgets))
    assert docks["Classes"].inputs.particles.value.name == "simulated particles"
    assert docks["Orientations"].particles.value.name == "simulated refined particles"
    assert docks["Noise model"].particles.value.name == "simulated refined particles"
    assert docks["Noise model"].map.value.name == "simulated refined map"
    viewer.screenshot(str(SHOT_DIR / "six_docks.png"), canvas_only=False, flash=False)


def test_docks_fit_their_width_without_scrolling_sideways(make_napari_viewer, qtbot):
    """In a 1600×1000 window with the docks tabbed (the demo's layout), no dock's content is wider
    than the dock: nothing is cut off at the right or needs a horizontal scroll bar."""
    from qtpy.QtWidgets import QApplication

    from napari_cryodiag.widgets._dock import Dock

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryodiag", "micrographs")
    widgets = [viewer.window.add_plugin_dock_widget("napari-cryodiag", name, tabify=True)[1] for name in DOCKS]
    widgets[0].window().resize(1600, 1000)
    for _ in range(30):
        QApplication.processEvents()
    qtbot.wait(200)
    for name, w in zip(DOCKS, widgets):
        if not isinstance(w, Dock):
            continue
        tabs = getattr(w, "tabs", None)
        pages = range(tabs.count()) if tabs is not None else [None]
        for i in pages:  # every tab page, as the user opens it
            if i is not None:
                tabs.setCurrentIndex(i)
                QApplication.processEvents()
            need = w.body.minimumSizeHint().width()
            assert need <= w.width(), (name, None if i is None else tabs.tabText(i), need, w.width())


def test_a_plot_docked_alone_takes_the_spare_height_up_to_its_aspect(make_napari_viewer, qtbot):
    """Noise model docked alone in an 1800×1100 window: its plot grows past its minimum height into
    the dock's spare height, up to 1.2 × its width (not a tall strip), the toolbar stays on top of
    the figure, and the summary sits right under the plot (the spare height goes below both).
    Docked beside six others, the same plot shrinks back to its minimum."""
    from qtpy.QtWidgets import QApplication

    viewer, w = _docked_alone(make_napari_viewer, qtbot, "refined_particles", "Noise model")
    c = w.canvas
    bar = c.toolbar.height()
    assert c.canvas.height() > c.min_height + 100, (c.canvas.height(), c.min_height)
    assert c.canvas.height() <= round(1.2 * c.width()) + 1, (c.canvas.height(), c.width())
    assert c.toolbar.geometry().bottom() < c.canvas.geometry().top() <= c.toolbar.geometry().bottom() + 2
    assert c.height() <= bar + round(1.2 * c.width()) + 2
    summary = w.summary.native
    gap = summary.mapTo(w, summary.rect().topLeft()).y() - c.mapTo(w, c.rect().bottomLeft()).y()
    assert 0 <= gap <= 12, gap
    alone = c.canvas.height()
    for name in DOCKS:
        if name != "Noise model":
            viewer.window.add_plugin_dock_widget("napari-cryodiag", name)
    for _ in range(30):
        QApplication.processEvents()
    qtbot.wait(200)
    assert c.canvas.height() < alone and c.canvas.height() <= c.min_height + 4, (c.canvas.height(), alone)


def test_nested_rows_of_a_form_sit_close_together(make_napari_viewer, qtbot):
    """Inspect Picks docked alone: a row of controls nested in the form (the log-y checkbox and
    the bins, the two rows of buttons) sits right under the row above it, not below a blank band
    of the nested containers' own margins (about 30 px before), so the histogram gets the height."""
    _, w = _docked_alone(make_napari_viewer, qtbot, "micrographs", "Inspect Picks")
    th = w.thresholds
    assert th.polygon_button.enabled  # two scores (NCC, power): a polygon can be drawn

    def gap(upper, lower):
        a, b = upper.native, lower.native
        return b.mapTo(w, b.rect().topLeft()).y() - a.mapTo(w, a.rect().bottomLeft()).y()

    pairs = [(th.x_feature, th.y_feature), (th.y_feature, th.log_y), (th.log_y, th.histogram_of),
             (th.suggest_button, th.polygon_button)]
    gaps = [gap(a, b) for a, b in pairs]
    assert all(0 <= g <= 12 for g in gaps), gaps
    # the empty proposal line takes no height: the counts follow the buttons
    assert gap(th.polygon_button, th.counts) <= 12, gap(th.polygon_button, th.counts)
