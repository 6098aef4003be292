"""The main job: napari with the plugin on the built-in simulated sample data.

    python -m napari_cryodiag.demo [--screenshot PATH] [--no-widgets]

Opens the simulated micrographs with their picks (``--workflow maps``: the half maps;
``--workflow classes``: the 2D classes; ``--workflow particles``: the refined particles and their
map, in Orientations and Noise model) and docks every cryodiag widget. ``--screenshot`` saves a picture of the whole window and exits (used for
the README and for checking the GUI under Xvfb).
"""

from __future__ import annotations

import argparse
import sys

PLUGIN = "napari-cryodiag"
WIDGETS = ["Inspect Picks", "Map validation", "Classes", "Orientations", "Noise model", "Micrograph display", "Project"]
#: what each workflow opens (sample keys of napari.yaml) and which widget it shows first
WORKFLOWS = {
    "picks": (["micrographs"], "Inspect Picks"),
    "maps": (["half_maps"], "Map validation"),
    "classes": (["class_averages"], "Classes"),
    "particles": (["refined_particles"], "Orientations"),
}


def build_viewer(workflow: str = "picks", widgets=WIDGETS, viewer=None):
    """A viewer with the workflow's sample data and every widget docked (its own widget in front).

    Returns ``(viewer, docks)`` with ``docks`` mapping widget names to their dock widgets.

    The micrograph stack, the half maps and the class averages have different axes (micrograph
    index, z, class), so each workflow opens its own sample; the other widgets can still load
    files through their file choosers.
    """
    import napari

    samples, front = WORKFLOWS[workflow]
    if viewer is None:
        viewer = napari.Viewer(title=f"napari-cryodiag demo: {workflow}")
    for key in samples:
        viewer.open_sample(PLUGIN, key)
    for layer in viewer.layers:  # the mask would hide the map under a grey box
        if layer.metadata.get("cryodiag", {}).get("role") == "mask":
            layer.visible = False
    docks = {}
    for name in widgets:
        docks[name], _ = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
    if front in docks:
        docks[front].show()
        docks[front].raise_()
        if workflow != "picks":  # Inspect Picks shows its histogram at once; the others compute on demand
            docks[front].widget().compute()
    viewer.reset_view()
    if viewer.dims.ndim > 2:  # first micrograph / class; the central slice of a map
        viewer.dims.set_current_step(0, viewer.dims.nsteps[0] // 2 if workflow == "maps" else 0)
    return viewer, docks


def _is_busy(docks) -> bool:
    """True while a job runs in one of the docked widgets (its Cancel button is enabled)."""
    from qtpy.QtWidgets import QPushButton

    for d in docks.values():
        w = d.widget()
        if getattr(w, "busy", False):
            return True
        if any(b.isEnabled() and b.text().lower().startswith("cancel") for b in w.findChildren(QPushButton)):
            return True
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_cryodiag.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", help="save a screenshot of the window to this PNG and exit")
    parser.add_argument("--workflow", choices=sorted(WORKFLOWS), default="picks",
                        help="which sample data to open (default: micrographs and picks)")
    parser.add_argument("--no-widgets", action="store_true", help="do not dock the widgets")
    args = parser.parse_args(argv)

    import napari

    viewer, docks = build_viewer(args.workflow, widgets=[] if args.no_widgets else WIDGETS)
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        import time

        viewer.window.resize(1600, 1000)
        deadline = time.time() + 120  # let the workers started by the widgets finish
        while time.time() < deadline:
            QApplication.processEvents()
            if not _is_busy(docks):
                break
            time.sleep(0.1)
        for _ in range(5):
            QApplication.processEvents()
        viewer.reset_view()
        QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=False, flash=False)
        viewer.close()
        return 0
    napari.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
