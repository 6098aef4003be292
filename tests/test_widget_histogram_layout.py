"""Inspect Picks' histogram laid out once per figure: calibration off and on again takes the
positions found by the layout engine for the same figure, and they are the engine's."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.viewer


def test_calibration_toggled_back_keeps_the_engines_layout(make_napari_viewer, qtbot, monkeypatch):
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from test_widget_inspect_picks import N_MICS, SHAPE, _table

    from napari_cryodiag._reader import picks_layer_data
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget
    from napari_cryodiag.widgets.picks_layer import link_viewer

    viewer = make_napari_viewer(show=True)
    table = _table()
    keys = [f"mic_{i:02d}" for i in range(N_MICS)]
    viewer.add_image(np.zeros((N_MICS, *SHAPE), np.float32), name="micrographs", scale=(1, 2.0, 2.0),
                     metadata={"cryodiag": {"kind": "micrographs", "paths": [f"/data/{k}.mrc" for k in keys],
                                            "keys": keys, "pixel_size_A": 2.0}})
    data, kwargs, _ = picks_layer_data(table, "/nonexistent/sim_picks.star", name="picks")
    viewer.add_points(data, **kwargs)
    link_viewer(viewer)
    w = InspectPicksWidget(viewer)
    viewer.window.add_dock_widget(w, name="Inspect Picks", area="right")
    qtbot.wait(50)
    h = w.thresholds
    form = w.calibration.form

    def positions():
        return np.array([ax.get_position().bounds for ax in h._plot.fig.axes])

    def same(a, b):  # within a pixel's fraction of the canvas (the engine iterates to a tolerance)
        return a.shape == b.shape and np.allclose(a, b, atol=1.0 / max(h.canvas.canvas.width(), 1))

    def engine_positions():  # a fresh constrained layout of the figure as it is
        fig = h._plot.fig
        fig.set_layout_engine("constrained")
        fig.canvas.draw()
        fig.set_layout_engine("none")
        return positions()

    first = {}
    for on in (False, True):
        form.calibrate_x.value = on
        assert ("calibrated" in h._plot.ax.get_xlabel()) is on
        first[on] = positions()
        assert same(first[on], engine_positions())
    runs = []
    execute = ConstrainedLayoutEngine.execute
    monkeypatch.setattr(ConstrainedLayoutEngine, "execute", lambda self, fig: (runs.append(1), execute(self, fig)))
    for on in (False, True, False, True):
        runs.clear()
        form.calibrate_x.value = on
        assert runs == []  # laid out before: the engine did not run
        assert ("calibrated" in h._plot.ax.get_xlabel()) is on
        assert same(positions(), first[on])  # the positions found for this figure
        assert same(positions(), engine_positions())
