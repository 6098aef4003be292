"""All seven plugin docks added from the Plugins menu (napari's own way, not tabbed) on the sample
data fit a 1920×1200 screen: each dock asks for little height (its body scrolls)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.viewer

DOCKS = ("Inspect Picks", "Map validation", "Classes", "Orientations", "Noise model", "Micrograph display", "Project")
SHOT_DIR = Path(os.environ.get("CRYODIAG_SCREENSHOTS", "/tmp"))


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
