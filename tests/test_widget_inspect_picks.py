"""The "Inspect Picks" dock widget on a viewer with a micrograph stack and a picks layer.

The layers are built as the reader builds them (``_reader.picks_layer_data``, micrograph
metadata) and wired by ``picks_layer.link_viewer``. Counts are checked against numbers computed
here independently from the table.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.viewer

N_MICS = 5
SHAPE = (200, 200)


def _table(seed=0):
    """Picks on N_MICS micrographs with ncc/power scaled by a defocus gain, truth-labelled."""
    rng = np.random.default_rng(seed)
    defocus = np.array([9000.0, 14000.0, 19000.0, 24000.0, 29000.0])
    parts = []
    for i, d in enumerate(defocus):
        g = 0.45 + d / 27000.0
        n_p, n_e = 60 + 5 * i, 12
        parts.append(pd.DataFrame({
            "micrograph_name": f"mic_{i:02d}.mrc",
            "micrograph": f"mic_{i:02d}",
            "x_px": rng.uniform(15, SHAPE[1] - 15, n_p + n_e),
            "y_px": rng.uniform(15, SHAPE[0] - 15, n_p + n_e),
            "defocus_A": d,
            "pixel_size_A": 2.0,
            "diameter_px": 14.0,
            "ncc": g * np.concatenate([rng.normal(0.35, 0.04, n_p), rng.normal(0.12, 0.04, n_e)]),
            "power": g * np.concatenate([rng.lognormal(np.log(20), 0.25, n_p), rng.lognormal(np.log(6), 0.3, n_e)]),
            "truth": ["particle"] * n_p + ["empty"] * n_e,
        }))
    t = pd.concat(parts, ignore_index=True)
    t.loc[3, "ncc"] = np.nan  # a pick without a score
    t.attrs = {"source": "/nonexistent/sim_picks.star", "format": "star", "convention": "test"}
    return t


@pytest.fixture
def setup(make_napari_viewer, tmp_path):
    from napari_cryodiag._reader import picks_layer_data
    from napari_cryodiag.widgets.picks_layer import get_picks_controller, link_viewer
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

    viewer = make_napari_viewer()
    table = _table()
    keys = [f"mic_{i:02d}" for i in range(N_MICS)]
    rng = np.random.default_rng(1)
    viewer.add_image(
        rng.normal(size=(N_MICS, *SHAPE)).astype(np.float32), name="micrographs", scale=(1, 2.0, 2.0),
        metadata={"cryodiag": {"kind": "micrographs", "paths": [f"/data/{k}.mrc" for k in keys],
                               "keys": keys, "pixel_size_A": 2.0}},
    )
    data, kwargs, _ = picks_layer_data(table, "/nonexistent/sim_picks.star", name="picks")
    layer = viewer.add_points(data, **kwargs)
    link_viewer(viewer)
    widget = InspectPicksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspect Picks", area="right")
    ctrl = get_picks_controller(layer)
    return viewer, widget, layer, ctrl, table


def _expected(table, x_min=None, y_min=None, y_max=None, x=None, y=None):
    x = table["ncc"].to_numpy() if x is None else x
    y = table["power"].to_numpy() if y is None else y
    m = np.ones(len(table), bool)
    with np.errstate(invalid="ignore"):
        if x_min is not None:
            m &= x >= x_min
        if y_min is not None:
            m &= y >= y_min
        if y_max is not None:
            m &= y <= y_max
    return m


def _counts_text(mask, table, shown_key):
    on = (table["micrograph"] == shown_key).to_numpy()
    return f"kept {mask.sum():,} / {len(table):,}", f"shown micrograph {shown_key}: {mask[on].sum():,} / {on.sum():,}"


def _counts_text(mask, table, shown_key):
    on = (table["micrograph"] == shown_key).to_numpy()
    return f"{mask.sum():,} of {len(table):,} picks kept", f"Shown micrograph {shown_key}: {mask[on].sum():,} / {on.sum():,}"


def test_thresholds_counts_points_table_export(setup, qtbot, tmp_path):
    from napari_cryodiag.widgets.picks_layer import KEPT_COLOR, REJECTED_COLOR

    viewer, w, layer, ctrl, table = setup
    h = w.thresholds
    assert w.layer is layer and w.inspection is not None and w.picks.value is layer
    assert (w.inspection.x_feature, w.inspection.y_feature) == ("ncc", "power")
    assert (h.x_feature.value, h.y_feature.value) == ("ncc", "power")
    t = dataclasses.replace(w.inspection.thresholds)
    assert t.method.startswith("suggested")  # NCC x power: the suggestion is the default rule
    shown = f"mic_{ctrl.current_index():02d}"
    m0 = _expected(table, t.x_min, t.y_min, t.y_max)
    for part in _counts_text(m0, table, shown):
        assert part in h.counts.value, (part, h.counts.value)

    # move the NCC slider (a magicgui value): counts follow exactly
    h.x_range.value = (0.30, h.x_range.max)
    x_min = w.inspection.thresholds.x_min
    assert x_min == pytest.approx(0.30, abs=2e-3) and w.inspection.thresholds.x_max is None
    m1 = _expected(table, x_min, t.y_min, t.y_max)
    assert m1.sum() != m0.sum()
    for part in _counts_text(m1, table, shown):
        assert part in h.counts.value, (part, h.counts.value)
    assert w.result.n_kept == m1.sum()
    assert not w.result.kept[3]  # NaN score is rejected
    # the shown micrograph's points: rejected ones dimmed
    rows = ctrl.rows_shown()
    assert len(layer.data) == len(rows) == (table["micrograph"] == shown).sum()
    colors = np.asarray(layer.border_color)
    np.testing.assert_allclose(colors[m1[rows]], np.tile(KEPT_COLOR, (m1[rows].sum(), 1)), atol=1e-6)
    np.testing.assert_allclose(colors[~m1[rows]], np.tile(REJECTED_COLOR, ((~m1[rows]).sum(), 1)), atol=1e-6)
    # hide rejected: only kept picks stay in the layer
    w.rejected.value = "hide"
    assert len(layer.data) == m1[rows].sum() > 0
    np.testing.assert_allclose(layer.data[:, 1:], table[["y_px", "x_px"]].to_numpy()[rows][m1[rows]])

    # the power range slider (log axis: slider in log10 units)
    assert w.inspection.log_y is False or h.y_range.label.endswith("(log10)")
    lo, hi = h.y_range.value
    h.y_range.value = (lo + 0.25 * (hi - lo), hi)
    th = w.inspection.thresholds
    m2 = _expected(table, th.x_min, th.y_min, th.y_max)
    assert th.y_min > t.y_min and m2.sum() < m1.sum()
    assert f"{m2.sum():,} of {len(table):,} picks kept" in h.counts.value
    # a min above its max is refused with a message, and changes nothing
    before = w.result.n_kept
    w.set_threshold("y_min", th.y_max * 2)
    assert w.inspection.thresholds.y_min == th.y_min and w.result.n_kept == before
    assert "inconsistent thresholds" in w.status.value and "above its max" in w.status.value

    # ---- the per-micrograph table (its tab shown, as a user clicks it) follows and drives the slider
    w.rejected.value = "dim"
    tb = w.table
    model = tb.model
    w.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: model.rowCount() == N_MICS, timeout=2000)
    assert model.rowCount() == N_MICS
    assert [str(n) for n in model.names] == [f"mic_{i:02d}" for i in range(N_MICS)]
    assert list(model.values[1]) == table.groupby("micrograph").size().tolist()
    tb.view.clicked.emit(tb.proxy.index(4, 0))
    assert ctrl.current_index() == 4 and viewer.dims.current_step[0] == 4
    assert "Shown micrograph mic_04" in h.counts.value
    assert len(layer.data) == (table["micrograph"] == "mic_04").sum()
    # moving the viewer's slider selects the micrograph's row
    viewer.dims.set_current_step(0, 1)
    assert ctrl.current_index() == 1
    sel = tb.view.selectionModel().selectedRows()
    assert sel and tb.proxy.mapToSource(sel[0]).row() == 1
    assert "Shown micrograph mic_01" in h.counts.value
    # kept column follows a threshold change (after the debounce)
    w.set_threshold("x_min", 0.3)
    qtbot.waitUntil(lambda: int(model.values[2][0]) == int(w.result.kept_per_micrograph[0]), timeout=2000)
    sub = table[table.micrograph == "mic_00"]
    th = w.inspection.thresholds
    assert int(model.values[2][0]) == _expected(sub, 0.3, th.y_min, th.y_max).sum()

    # ---- export kept (and rejected) picks with the settings beside each file
    from napari_cryodiag.io.picks import read_table

    out = tmp_path / "kept.star"
    paths = w.export(out, rejected=True)
    assert [p.name for p in paths] == ["kept.star", "kept_rejected.star", "kept.star.cryodiag.json"]
    kept = read_table(out)
    rej = read_table(tmp_path / "kept_rejected.star")
    assert len(kept) == w.result.n_kept and len(rej) == len(table) - w.result.n_kept
    np.testing.assert_allclose(np.sort(kept["ncc"]), np.sort(table["ncc"][w.result.kept]), rtol=1e-5)
    info = json.loads((tmp_path / "kept.star.cryodiag.json").read_text())
    assert info["thresholds"]["x_min"] == pytest.approx(0.3)
    assert info["selection"]["n_kept"] == w.result.n_kept and info["x_units"] == "raw"
    assert info["selection"]["n_rejected_by_thresholds"] == len(table) - w.result.n_kept
    assert info["counts"]["kept"] == w.result.n_kept and info["counts"]["rejected_written"] == len(rej)
    assert info["counts"]["left_out_by"]["thresholds"] == len(table) - w.result.n_kept
    assert f"wrote {w.result.n_kept:,} picks" in w.status.value
    # no silent overwrite, and a refused export writes nothing
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / "again.star.cryodiag.json").write_text("{}")
    assert w.export(tmp_path / "again.star") == []
    assert "exists" in w.status.value and not (tmp_path / "again.star").exists()
    assert w.export(out) == []
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    # .cs: locations as fractions of the shown micrographs' shape
    paths = w.export(tmp_path / "kept.cs")
    assert [p.name for p in paths] == ["kept.cs", "kept.cs.cryodiag.json"]
    kept_cs = read_table(tmp_path / "kept.cs")
    assert len(kept_cs) == w.result.n_kept
    np.testing.assert_allclose(np.sort(kept_cs["x_px"]), np.sort(table["x_px"][w.result.kept]), atol=1e-3)

    # ---- any numeric column on an axis (offered after the scores, never chosen by default)
    assert h.y_feature.choices[:3] == ("(none: 1D)", "ncc", "power")
    h.y_feature.value = "defocus_A"
    assert w.inspection.y_feature == "defocus_A"
    assert w.thresholds._plot.ax.get_ylabel().startswith("defocus_A")
    th = w.inspection.thresholds
    m = _expected(table, th.x_min, th.y_min, th.y_max, y=table["defocus_A"].to_numpy())
    assert w.result.n_kept == m.sum()


def test_dragging_lines_and_polygon_on_the_histogram(setup, qtbot, tmp_path):
    from matplotlib.backend_bases import MouseEvent

    viewer, w, layer, ctrl, table = setup
    h = w.thresholds
    canvas = h.canvas.canvas
    ax = h._plot.ax
    canvas.draw()
    t = dataclasses.replace(w.inspection.thresholds)
    y_mid = np.sqrt(t.y_min * t.y_max) if w.inspection.log_y else 0.5 * (t.y_min + t.y_max)

    def ev(name, xd, yd, button=1):
        x, y = ax.transData.transform((xd, yd))
        e = MouseEvent(name, canvas, x, y, button=button)
        canvas.callbacks.process(name, e)

    # grab the NCC line, drag it to 0.2, release
    ev("button_press_event", t.x_min, y_mid)
    assert h._dragging == "x_min"
    ev("motion_notify_event", 0.25, y_mid)
    ev("motion_notify_event", 0.20, y_mid)
    ev("button_release_event", 0.20, y_mid)
    assert h._dragging is None
    assert w.inspection.thresholds.x_min == pytest.approx(0.20, abs=1e-6)
    assert h.x_range.value[0] == pytest.approx(0.20, abs=1e-3)
    assert h._plot.lines["x_min"].get_xdata()[0] == pytest.approx(0.20)
    m = _expected(table, 0.20, t.y_min, t.y_max)
    assert w.result.n_kept == m.sum()
    # the counts are the plot's title, shown over the figure (a Qt label) and put in the figure
    # when it is saved
    assert f"kept {m.sum():,} / {len(table):,}" in h.canvas.title.label.text() and not h.canvas.title.isHidden()
    assert h._plot.ax.get_title() == "" and h._plot.ax.title not in h.blitter.artists
    with h.canvas.titled():
        assert f"kept {m.sum():,} / {len(table):,}" in h._plot.ax.get_title()
    assert h._plot.ax.get_title() == ""
    # saving the figure leaves the plot in the dock as it was (axes and colour bar where they were)
    boxes = [(a.get_position(original=True).bounds, a.get_position().bounds) for a in h._plot.fig.axes]
    h.canvas.save(str(tmp_path / "histogram.png"))
    assert (tmp_path / "histogram.png").stat().st_size > 10_000
    assert [(a.get_position(original=True).bounds, a.get_position().bounds) for a in h._plot.fig.axes] == boxes
    assert h._plot.ax.get_title() == ""
    # grab the power minimum line and move it up
    xm = 0.5 * sum(ax.get_xlim())
    new_y = t.y_min * 1.5
    ev("button_press_event", xm, t.y_min)
    assert h._dragging == "y_min"
    ev("motion_notify_event", xm, new_y)
    ev("button_release_event", xm, new_y)
    assert w.inspection.thresholds.y_min == pytest.approx(new_y, rel=1e-6)
    assert w.result.n_kept == _expected(table, 0.20, new_y, t.y_max).sum()
    # a press far from any line does not start a drag
    ev("button_press_event", xm, np.sqrt(new_y * t.y_max) if w.inspection.log_y else 0.5 * (new_y + t.y_max))
    assert h._dragging is None

    # ---- a polygon drawn on the histogram
    from napari_cryodiag.compute.picks.thresholds import points_in_polygon

    w.set_threshold("x_min", None)
    w.set_threshold("y_min", None)
    w.set_threshold("y_max", None)
    assert w.result.n_kept == len(table)  # no cut at all: even the NaN-score pick stays
    poly = [(0.25, 10.0), (0.7, 10.0), (0.7, 60.0), (0.25, 60.0)]
    # the polygon tool hands its vertices to the session
    h.polygon_button.clicked.emit()
    assert h._poly_selector is not None and "polygon" in w.status.value
    h._poly_selector.onselect(poly)
    inside = points_in_polygon(table["ncc"], table["power"], poly, log_y=w.inspection.log_y)
    assert w.result.n_kept == inside.sum() > 0
    assert h._plot.polygon is not None and h._plot.polygon.get_visible()
    assert h._poly_selector is None and "polygon" not in w.status.value  # the hint goes with the mode
    h.clear_polygon_button.clicked.emit()
    assert w.result.n_kept == len(table)


def test_calibration_toggles_switch_units_and_screenshots(setup, qtbot):
    from napari_cryodiag.compute.picks.calibration import fit_calibration

    viewer, w, layer, ctrl, table = setup
    raw_edges = w.inspection.hist.x_edges.copy()
    form = w.calibration.form
    w.tabs.setCurrentIndex(2)  # the Calibration tab, as a user opens it
    qtbot.wait(10)
    ax0 = w.thresholds._plot.ax
    form.calibrate_x.value = True
    assert w.inspection.x_units == "calibrated (ratio)"
    assert "calibrated (ratio)" in w.thresholds._plot.ax.get_xlabel()
    assert w.inspection.hist.x_edges[0] < 1.0 < w.inspection.hist.x_edges[-1] < raw_edges[-1] + 2
    # the calibrated histogram is drawn in the figure there was (no new figure per toggle): its
    # bins are the calibrated ones, and the figure holds the axes and the colour bar only
    plot = w.thresholds._plot
    assert plot.ax is ax0 and len(plot.fig.axes) == 2
    np.testing.assert_allclose(plot.mesh.get_coordinates()[0, :, 0], w.inspection.hist.x_edges)
    assert plot.colorbar.mappable is plot.mesh
    cx = fit_calibration(table, "ncc").apply(table).to_numpy()
    np.testing.assert_allclose(w.inspection.x, cx, equal_nan=True)
    t = w.inspection.thresholds
    assert w.result.n_kept == _expected(table, t.x_min, t.y_min, t.y_max, x=cx).sum()
    assert "ncc: median =" in w.calibration.note.value
    form.mode.value = "difference"
    assert w.inspection.x_units == "calibrated (difference)"
    assert w.inspection.hist.x_edges[0] < 0.0 < w.inspection.hist.x_edges[-1]
    form.calibrate_x.value = False
    assert w.inspection.x_units == "raw"
    np.testing.assert_allclose(w.inspection.hist.x_edges, raw_edges)
    np.testing.assert_allclose(w.thresholds._plot.mesh.get_coordinates()[0, :, 0], raw_edges)
    # a new theme: a new figure in its colours
    face = w.thresholds._plot.ax.get_facecolor()
    viewer.theme = "light" if viewer.theme == "dark" else "dark"
    qtbot.wait(10)
    assert w.thresholds._plot.ax is not ax0 and w.thresholds._plot.ax.get_facecolor() != face

    # ---- look at it: screenshots to /tmp
    viewer.window._qt_window.resize(1400, 900)
    form.calibrate_x.value = True
    form.calibrate_y.value = True
    w.tabs.setCurrentIndex(0)
    qtbot.wait(50)
    img = viewer.screenshot(canvas_only=False, flash=False)
    assert img.ndim == 3 and img.shape[0] > 300
    import imageio.v3 as iio  # napari's dependency

    iio.imwrite("/tmp/inspect_picks_viewer.png", img)
    assert w.grab().save("/tmp/inspect_picks_widget.png")
    w.tabs.setCurrentIndex(1)
    assert w.grab().save("/tmp/inspect_picks_table.png")
    w.tabs.setCurrentIndex(2)
    assert w.grab().save("/tmp/inspect_picks_calibration.png")

    # ---- the same widget through the plugin manifest (Plugins menu)
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

    _, w2 = viewer.window.add_plugin_dock_widget("napari-cryodiag", "Inspect Picks")
    assert isinstance(w2, InspectPicksWidget) and w2.layer is layer and w2.result.n_rows == len(table)


def test_real_relion_autopicks_then_ctf_table(make_napari_viewer, qtbot, shared_data):
    """Real RELION 1.3 autopicks (FOM only, no defocus): a 1D view that keeps every pick,
    calibration disabled with a message; opening the CTF table of the same micrographs (a table,
    not a layer) enables it."""
    from napari_cryodiag.compute.picks.calibration import fit_calibration
    from napari_cryodiag.io.picks import read_table
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

    tut = shared_data / "relion13-tutorial"
    viewer = make_napari_viewer()
    viewer.open(str(tut / "autopick"), plugin="napari-cryodiag")
    w = InspectPicksWidget(viewer)
    picks = read_table(tut / "autopick")
    assert w.inspection.x_feature == "rlnAutopickFigureOfMerit" and w.inspection.one_d
    assert w.result.n_rows == len(picks) == 9470
    assert w.result.n_kept == 9470  # no silent default on a single score
    # the thresholds are said in words under the slider; its handles carry no value labels (at an
    # end of the slider a handle's label was clipped by the dock's edge: ").493" for 0.493)
    sl = w.thresholds.x_range.native
    assert sl.handleLabelPosition() == type(sl).LabelPosition.NoLabel
    assert w.thresholds.y_values.value == "rlnAutopickFigureOfMerit: no cut"
    w.thresholds.x_range.value = (0.8, w.thresholds.x_range.max)
    assert w.thresholds.y_values.value.startswith("rlnAutopickFigureOfMerit ≥ 0.8")
    assert w.result.n_kept == int((picks["rlnAutopickFigureOfMerit"] >= w.thresholds.x_range.value[0]).sum())
    w.thresholds.keep_all()
    assert w.result.n_kept == 9470
    form = w.calibration.form
    w.tabs.setCurrentIndex(2)
    qtbot.wait(10)
    form.calibrate_x.value = True
    assert not form.calibrate_x.value and "no defocus" in w.calibration.note.value
    assert w.inspection.x_units == "raw"

    n_layers = len(viewer.layers)
    viewer.open(str(tut / "all_micrographs_ctf.star"), plugin="napari-cryodiag")  # CTFFIND results
    assert len(viewer.layers) == n_layers  # a table, not an empty layer
    assert w.inspection.defocus is not None and "all_micrographs_ctf.star" in w.calibration.source.value
    form.calibrate_x.value = True
    assert form.calibrate_x.value and w.inspection.x_units == "calibrated (ratio)"
    ctf = read_table(tut / "all_micrographs_ctf.star")
    per = ctf.groupby("micrograph")["defocus_A"].median()
    cal = fit_calibration(picks, "rlnAutopickFigureOfMerit", defocus=per)
    np.testing.assert_allclose(w.inspection.x, cal.apply(picks, defocus=per).to_numpy(), equal_nan=True)
    model = w.table.model
    w.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: model.rowCount() == 15, timeout=2000)
    for name, v in zip(model.names, model.values[0]):
        assert v == pytest.approx(per[str(name)], rel=1e-3)
    assert "rlnAutopickFigureOfMerit: median =" in w.calibration.note.value


def test_picks_without_scores_disable_the_threshold_controls(make_napari_viewer, qtbot, shared_data):
    """RELION Class2D particles (coordinates, no pick score): the histogram says there is nothing
    to inspect, and the controls that act on scores are disabled with a tooltip that says why (a
    click on them did nothing). Choosing picks with a score enables them again."""
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

    tut = shared_data / "relion13-tutorial"
    viewer = make_napari_viewer()
    viewer.open(str(tut / "Class2D" / "manual_it025_data.star"), plugin="napari-cryodiag")
    w = InspectPicksWidget(viewer)
    h = w.thresholds
    controls = [h.x_feature, h.y_feature, h.log_y, h.bins, h.histogram_of, h.x_range, h.y_range,
                h.suggest_button, h.keep_all_button, h.polygon_button, h.clear_polygon_button]
    assert w.inspection is None and w.session.pickset is not None
    for c in controls:
        assert not c.enabled, c
        assert "no numeric score" in c.tooltip and "Jobs tab" in c.tooltip
    assert h.bins.tooltip != "bins per axis; 0 = automatic"

    viewer.open(str(tut / "autopick"), plugin="napari-cryodiag")
    w.picks.value = viewer.layers[-1]
    qtbot.waitUntil(lambda: w.inspection is not None, timeout=5000)
    assert w.inspection.x_feature == "rlnAutopickFigureOfMerit"
    for c in controls:
        if c in (h.log_y, h.polygon_button, h.clear_polygon_button):  # 1D: no y axis to act on
            assert not c.enabled
        else:
            assert c.enabled, c
    assert h.bins.tooltip == "bins per axis; 0 = automatic" and h.suggest_button.tooltip is None


def test_jobs_scores_picker_and_duplicates(make_napari_viewer, qtbot, tmp_path):
    """Compute scores in a worker (the set's scores replaced, values = score_micrograph on that
    micrograph), pick the shown micrograph, remove duplicates at export (planted ones go, none
    closer than the distance stays), one job at a time, cancel."""
    from napari_cryodiag._reader import picks_layer_data
    from napari_cryodiag.compute.picks.scores import score_micrograph
    from napari_cryodiag.io.picks import read_table
    from napari_cryodiag.simulate.micrographs import simulate_micrographs
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget
    from napari_cryodiag.widgets.picks_layer import link_viewer

    sim = simulate_micrographs(n_micrographs=2, shape=(320, 320), particles_per_micrograph=20, box=48,
                               seed=3, score=False)
    apix = sim.pixel_size_A
    table = sim.truth.copy()
    table.attrs["source"] = "/nonexistent/sim.star"
    viewer = make_napari_viewer()
    viewer.add_image(sim.images, name="micrographs", scale=(1, apix, apix),
                     metadata={"cryodiag": {"kind": "micrographs", "paths": sim.names, "keys": sim.keys,
                                            "pixel_size_A": apix}})
    data, kwargs, _ = picks_layer_data(table, "/nonexistent/sim.star", name="picks")
    layer = viewer.add_points(data, **kwargs)
    link_viewer(viewer)
    w = InspectPicksWidget(viewer)
    assert w.jobs.micrographs.value.name == "micrographs"
    assert w.jobs.templates.choices == (None,)  # the micrographs are not templates
    w.jobs.scoring.diameter_A.value = sim.particle_diameter_A

    # ---- scores, in a worker; one job at a time (a double click starts one)
    n_layers = len(viewer.layers)
    worker = w.compute_scores()
    assert worker is not None and not w.jobs.score_button.enabled
    assert w.compute_scores() is None
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    assert w.jobs.score_button.enabled and len(viewer.layers) == n_layers  # no layer piled on top
    scored = w.inspection.table
    assert w.layer is layer and (w.inspection.x_feature, w.inspection.y_feature) == ("ncc", "power")
    on0 = (scored["micrograph"] == sim.keys[0]).to_numpy()
    ncc0, pow0 = score_micrograph(sim.images[0], scored["x_px"][on0], scored["y_px"][on0],
                                  diameter_px=w.jobs.scoring.diameter_A.value / apix, pixel_size_A=apix)
    np.testing.assert_allclose(scored["ncc"][on0], ncc0, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(scored["power"][on0], pow0, rtol=1e-6, equal_nan=True)
    med = scored.groupby("truth")["ncc"].median()
    assert med["particle"] > med["empty"]  # scores mean something on the simulated truth
    assert "scored" in w.jobs.note.value

    # ---- duplicates: plant 6 near-copies (3 px away, lower NCC) of particle picks
    part = scored.index[(scored["truth"] == "particle").to_numpy() & np.isfinite(scored["ncc"]).to_numpy()][:6]
    dup = scored.loc[part].drop(columns=["manual"]).copy()
    dup["x_px"] += 3.0
    dup["ncc"] -= 0.05
    with_dups = pd.concat([scored.drop(columns=["manual"]), dup], ignore_index=True)
    with_dups.attrs = dict(scored.attrs)
    w.add_picks_layer(with_dups, "with duplicates")
    w.thresholds.keep_all_button.clicked.emit()
    w.export_panel.dedupe.distance_A.value = 20.0
    w.export_panel.count_button.clicked.emit()
    summary = w.export_panel.summary.value
    assert "duplicates within 20 Å" in summary
    paths = w.export(tmp_path / "nodup.star")
    out = read_table(paths[0])
    info = json.loads(paths[1].read_text())
    n_removed = info["selection"]["n_duplicates"]
    assert n_removed == len(with_dups) - len(out) >= 6
    for _key, g in out.groupby("micrograph"):  # no two kept picks closer than 20 Å
        xy = g[["x_px", "y_px"]].to_numpy() * apix
        d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
        assert d.min() >= 20.0
    kept_keys = set(map(tuple, out[["x_px", "y_px"]].round(3).to_numpy()))
    for r in part:  # the originals (higher NCC) were kept, the copies removed
        assert (round(scored.loc[r, "x_px"], 3), round(scored.loc[r, "y_px"], 3)) in kept_keys
        assert (round(scored.loc[r, "x_px"] + 3.0, 3), round(scored.loc[r, "y_px"], 3)) not in kept_keys

    # ---- picker on the shown micrograph
    viewer.dims.set_current_step(0, 1)
    w.jobs.picker.diameter_A.value = sim.particle_diameter_A
    worker = w.run_picker(all_micrographs=False)
    assert worker is not None
    qtbot.waitUntil(lambda: w.layer is not None and w.layer.name == "picks (micrographs)", timeout=30000)
    picks = w.inspection.table
    assert len(picks) > 5 and set(picks["micrograph"]) == {sim.keys[1]}
    assert {"ncc", "power", "defocus_A"} <= set(picks.columns)  # defocus from the open table
    assert np.allclose(picks["defocus_A"], sim.defocus_A[1])
    assert w.result.n_rows == len(picks)

    # ---- a cancelled job changes nothing
    n_layers = len(viewer.layers)
    before = w.inspection.table["ncc"].to_numpy().copy()
    worker = w.compute_scores()
    assert w.jobs.controls.cancel.enabled
    w.jobs.controls.cancel.clicked.emit()
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    assert "cancelled" in w.status.value
    assert len(viewer.layers) == n_layers
    np.testing.assert_array_equal(w.inspection.table["ncc"].to_numpy(), before)


def test_calibration_of_a_large_table_is_fitted_off_the_gui_thread(setup, qtbot, monkeypatch):
    """Above BACKGROUND_FIT_ROWS picks (1e7 in use; a few hundred here) ticking a calibration fits
    its line in a worker thread, with the form disabled and a note saying so; the view is then
    calibrated exactly as it is synchronously, and turning it off and on again fits nothing new."""
    import threading

    from napari_cryodiag.compute.picks import calibration
    from napari_cryodiag.widgets.inspect_picks import calibration_panel

    viewer, w, layer, ctrl, table = setup
    fits = []
    real = calibration.fit_calibration

    def slow_fit(*a, **k):
        import time

        fits.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.3)
        return real(*a, **k)

    monkeypatch.setattr(calibration, "fit_calibration", slow_fit)
    monkeypatch.setattr(calibration_panel, "BACKGROUND_FIT_ROWS", 10)
    cal = w.calibration
    cal.form.calibrate_x.value = True
    assert cal.fitting and not cal.form.enabled and "fitting ncc" in cal.note.value
    assert w.inspection.x_units == "raw"  # not yet: the GUI thread is free meanwhile
    cal.wait()
    assert not cal.fitting and cal.form.enabled and fits == [False]
    assert w.inspection.x_units == "calibrated (ratio)"
    ref = real(w.inspection.table, "ncc").apply(w.inspection.table, "ncc").to_numpy(float)
    np.testing.assert_allclose(w.inspection.x, ref, equal_nan=True)
    cal.form.calibrate_x.value = False
    assert w.inspection.x_units == "raw"
    cal.form.calibrate_x.value = True  # the kept fit: at once, no thread
    assert not cal.fitting and w.inspection.x_units == "calibrated (ratio)" and fits == [False]
