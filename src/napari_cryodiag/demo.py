"""The main job: napari with the plugin on the built-in simulated sample data.

    python -m napari_cryodiag.demo [--screenshot PATH] [--no-widgets]

Opens the simulated micrographs with their picks, the half maps and the 2D classes, and docks
every cryodiag widget. ``--screenshot`` saves a picture of the whole window and exits (used for
the README and for checking the GUI under Xvfb).
"""

from __future__ import annotations

import argparse
import sys

PLUGIN = "napari-cryodiag"
SAMPLES = ["micrographs", "half_maps", "class_averages"]
WIDGETS = ["Inspect Picks", "Map validation", "Classes", "Orientations", "Noise model"]


def build_viewer(widgets=WIDGETS, samples=SAMPLES):
    import napari

    viewer = napari.Viewer(title="napari-cryodiag demo")
    # Maps and classes first, micrographs last so they are on top and selected.
    for key in reversed(samples):
        viewer.open_sample(PLUGIN, key)
    for layer in list(viewer.layers):
        kind = layer.metadata.get("cryodiag", {}).get("kind")
        if kind in ("map", "mask", "class_averages", "stack") or layer.ndim == 3 and kind is None:
            layer.visible = False
    docked = []
    for name in widgets:
        dock, _ = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
        docked.append(dock)
    if docked:
        docked[0].raise_()
    viewer.dims.set_current_step(0, 0)
    return viewer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_cryodiag.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", help="save a screenshot of the window to this PNG and exit")
    parser.add_argument("--no-widgets", action="store_true", help="do not dock the widgets")
    args = parser.parse_args(argv)

    import napari

    viewer = build_viewer(widgets=[] if args.no_widgets else WIDGETS)
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        viewer.window._qt_window.resize(1600, 1000)
        for _ in range(5):
            QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=False, flash=False)
        viewer.close()
        return 0
    napari.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
