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
    from napari_cryodiag.picks_layer import get_picks_controller, link_viewer
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


def test_thresholds_counts_points_table_export(setup, qtbot, tmp_path):
    from napari_cryodiag.picks_layer import KEPT_COLOR, REJECTED_COLOR

    viewer, w, layer, ctrl, table = setup
    assert w.layer is layer and w.inspection is not None
    assert (w.inspection.x_feature, w.inspection.y_feature) == ("ncc", "power")
    t = dataclasses.replace(w.thresholds)
    assert t.method.startswith("suggested")
    shown = f"mic_{ctrl.current_index():02d}"
    m0 = _expected(table, t.x_min, t.y_min, t.y_max)
    for part in _counts_text(m0, table, shown):
        assert part in w.counts_label.text()

    # move the NCC slider: counts follow exactly
    w.x_slider.setValue(0.30)
    x_min = w.thresholds.x_min
    assert x_min == pytest.approx(0.30, abs=2e-3)
    m1 = _expected(table, x_min, t.y_min, t.y_max)
    assert m1.sum() != m0.sum()
    for part in _counts_text(m1, table, shown):
        assert part in w.counts_label.text(), (part, w.counts_label.text())
    assert w.result.n_kept == m1.sum()
    assert not w.result.mask[3]  # NaN score is rejected
    # the shown micrograph's points: rejected ones dimmed
    rows = ctrl.rows_shown()
    assert len(layer.data) == len(rows) == (table["micrograph"] == shown).sum()
    colors = np.asarray(layer.border_color)
    np.testing.assert_allclose(colors[m1[rows]], np.tile(KEPT_COLOR, (m1[rows].sum(), 1)), atol=1e-6)
    np.testing.assert_allclose(colors[~m1[rows]], np.tile(REJECTED_COLOR, ((~m1[rows]).sum(), 1)), atol=1e-6)
    # hide rejected: only kept picks stay in the layer
    w.rejected_combo.setCurrentText("hide")
    assert len(layer.data) == m1[rows].sum() > 0
    np.testing.assert_allclose(layer.data[:, 1:], table[["y_px", "x_px"]].to_numpy()[rows][m1[rows]])

    # the power range slider (log axis: slider in log10 units)
    assert w.inspection.log_y is False or w.y_slider_label.text().endswith("(log)")
    lo, hi = w.y_slider.value()
    w.y_slider.setValue((lo + 0.25 * (hi - lo), hi))
    m2 = _expected(table, w.thresholds.x_min, w.thresholds.y_min, w.thresholds.y_max)
    assert w.thresholds.y_min > t.y_min and m2.sum() < m1.sum()
    assert f"kept {m2.sum():,} / {len(table):,}" in w.counts_label.text()

    # ---- the per-micrograph table follows and drives the slider
    w.rejected_combo.setCurrentText("dim")
    tb = w.mic_table
    assert tb.rowCount() == N_MICS
    names = [tb.item(r, 0).text() for r in range(N_MICS)]
    assert names == [f"mic_{i:02d}" for i in range(N_MICS)]
    picks = [int(tb.item(r, 2).text()) for r in range(N_MICS)]
    assert picks == table.groupby("micrograph").size().tolist()
    r = 4
    tb.cellClicked.emit(r, 0)
    assert ctrl.current_index() == 4 and viewer.dims.current_step[0] == 4
    assert "shown micrograph mic_04" in w.counts_label.text()
    assert len(layer.data) == (table["micrograph"] == "mic_04").sum()
    # moving the viewer's slider selects the micrograph's row
    viewer.dims.set_current_step(0, 1)
    assert ctrl.current_index() == 1
    assert tb.selectedItems() and tb.selectedItems()[0].row() == 1
    assert "shown micrograph mic_01" in w.counts_label.text()
    # kept column follows a threshold change (after the debounce)
    w.set_threshold("x_min", 0.3)
    qtbot.waitUntil(lambda: int(tb.item(0, 3).text()) == int(w.result.kept_per_micrograph[0]), timeout=2000)
    sub = table[table.micrograph == "mic_00"]
    exp0 = _expected(sub, 0.3, w.thresholds.y_min, w.thresholds.y_max).sum()
    assert int(tb.item(0, 3).text()) == exp0

    # ---- export kept (and rejected) picks with the thresholds in a side JSON
    from napari_cryodiag.io.picks import read_table

    w.set_threshold("x_min", 0.3)
    out = tmp_path / "kept.star"
    paths = w.export(out, rejected=True)
    assert [p.name for p in paths] == ["kept.star", "kept_rejected.star", "kept.star.cryodiag.json"]
    kept = read_table(out)
    rej = read_table(tmp_path / "kept_rejected.star")
    assert len(kept) == w.result.n_kept and len(rej) == len(table) - w.result.n_kept
    np.testing.assert_allclose(np.sort(kept["ncc"]), np.sort(table["ncc"][w.result.mask]), rtol=1e-5)
    info = json.loads((tmp_path / "kept.star.cryodiag.json").read_text())
    assert info["thresholds"]["x_min"] == pytest.approx(0.3)
    assert info["n_kept"] == w.result.n_kept and info["x_units"] == "raw"
    # no silent overwrite, and a refused export writes nothing
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / "again.star.cryodiag.json").write_text("{}")
    assert w.export(tmp_path / "again.star") == []
    assert "exists" in w.status.text() and not (tmp_path / "again.star").exists()
    assert w.export(out) == []
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    # .cs: locations as fractions of the shown micrographs' shape
    paths = w.export(tmp_path / "kept.cs", rejected=False)
    assert [p.name for p in paths] == ["kept.cs", "kept.cs.cryodiag.json"]
    kept_cs = read_table(tmp_path / "kept.cs")
    assert len(kept_cs) == w.result.n_kept
    np.testing.assert_allclose(np.sort(kept_cs["x_px"]), np.sort(table["x_px"][w.result.mask]), atol=1e-3)

    # ---- any numeric column on an axis
    w.y_combo.setCurrentText("defocus_A")
    assert w.inspection.y_feature == "defocus_A"
    assert w._plot.ax.get_ylabel().startswith("defocus_A")
    t = w.thresholds
    m = _expected(table, t.x_min, t.y_min, t.y_max, y=table["defocus_A"].to_numpy())
    assert w.result.n_kept == m.sum()


def test_dragging_lines_and_polygon_on_the_histogram(setup, qtbot):
    from matplotlib.backend_bases import MouseEvent

    viewer, w, layer, ctrl, table = setup
    canvas = w.hist_canvas.canvas
    ax = w._plot.ax
    canvas.draw()
    t = dataclasses.replace(w.thresholds)
    y_mid = np.sqrt(t.y_min * t.y_max) if w.inspection.log_y else 0.5 * (t.y_min + t.y_max)

    def ev(name, xd, yd, button=1):
        x, y = ax.transData.transform((xd, yd))
        e = MouseEvent(name, canvas, x, y, button=button)
        canvas.callbacks.process(name, e)

    # grab the NCC line, drag it to 0.2, release
    ev("button_press_event", t.x_min, y_mid)
    assert w._dragging == "x_min"
    ev("motion_notify_event", 0.25, y_mid)
    ev("motion_notify_event", 0.20, y_mid)
    ev("button_release_event", 0.20, y_mid)
    assert w._dragging is None
    assert w.thresholds.x_min == pytest.approx(0.20, abs=1e-6)
    assert w.x_slider.value() == pytest.approx(0.20, abs=1e-3)
    assert w._plot.lines["x_min"].get_xdata()[0] == pytest.approx(0.20)
    m = _expected(table, 0.20, t.y_min, t.y_max)
    assert w.result.n_kept == m.sum()
    assert f"kept {m.sum():,} / {len(table):,}" in w._plot.ax.get_title()
    # grab the power minimum line and move it up
    xm = 0.5 * sum(ax.get_xlim())
    new_y = t.y_min * 1.5
    ev("button_press_event", xm, t.y_min)
    assert w._dragging == "y_min"
    ev("motion_notify_event", xm, new_y)
    ev("button_release_event", xm, new_y)
    assert w.thresholds.y_min == pytest.approx(new_y, rel=1e-6)
    assert w.result.n_kept == _expected(table, 0.20, new_y, t.y_max).sum()
    # a press far from any line does not start a drag
    ev("button_press_event", xm, np.sqrt(new_y * t.y_max) if w.inspection.log_y else 0.5 * (new_y + t.y_max))
    assert w._dragging is None

    # ---- a polygon drawn on the histogram
    from napari_cryodiag.compute.picks.thresholds import points_in_polygon

    w.set_threshold("x_min", None)
    w.set_threshold("y_min", None)
    w.set_threshold("y_max", None)
    assert w.result.n_kept == len(table)  # no cut at all: even the NaN-score pick stays
    poly = [(0.25, 10.0), (0.7, 10.0), (0.7, 60.0), (0.25, 60.0)]
    # the polygon tool hands its vertices to set_polygon
    w.polygon_button.setChecked(True)
    assert w._poly_selector is not None
    w._poly_selector.onselect(poly)
    inside = points_in_polygon(table["ncc"], table["power"], poly, log_y=w.inspection.log_y)
    assert w.result.n_kept == inside.sum() > 0
    assert w._plot.polygon is not None and w._plot.polygon.get_visible()
    w.polygon_button.setChecked(False)
    w.set_polygon(None)
    assert w.result.n_kept == len(table)



def test_calibration_toggles_switch_units_and_screenshots(setup, qtbot):
    from napari_cryodiag.compute.picks.calibration import fit_calibration

    viewer, w, layer, ctrl, table = setup
    raw_edges = w.inspection.hist.x_edges.copy()
    w.cal_x_check.setChecked(True)
    assert w.inspection.x_units == "calibrated (ratio)"
    assert "calibrated (ratio)" in w._plot.ax.get_xlabel()
    assert w.inspection.hist.x_edges[0] < 1.0 < w.inspection.hist.x_edges[-1] < raw_edges[-1] + 2
    cx = fit_calibration(table, "ncc").apply(table).to_numpy()
    np.testing.assert_allclose(w.inspection.x, cx, equal_nan=True)
    t = w.thresholds
    assert w.result.n_kept == _expected(table, t.x_min, t.y_min, t.y_max, x=cx).sum()
    assert "ncc: median =" in w.cal_label.text()
    w.cal_mode_combo.setCurrentText("difference")
    assert w.inspection.x_units == "calibrated (difference)"
    assert w.inspection.hist.x_edges[0] < 0.0 < w.inspection.hist.x_edges[-1]
    w.cal_x_check.setChecked(False)
    assert w.inspection.x_units == "raw"
    np.testing.assert_allclose(w.inspection.hist.x_edges, raw_edges)

    # ---- look at it: screenshots to /tmp
    viewer.window._qt_window.resize(1400, 900)
    w.cal_x_check.setChecked(True)
    w.cal_y_check.setChecked(True)
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
    assert isinstance(w2, InspectPicksWidget) and w2.layer is layer and w2.result.n_total == len(table)



def test_real_relion_autopicks_then_ctf_table(make_napari_viewer, qtbot, shared_data):
    """Real RELION 1.3 autopicks (FOM only, no defocus): calibration is disabled with a
    message; opening the CTF table of the same micrographs enables it."""
    from napari_cryodiag._reader import get_reader
    from napari_cryodiag.compute.picks.calibration import fit_calibration
    from napari_cryodiag.io.picks import read_table
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

    tut = shared_data / "relion13-tutorial"
    viewer = make_napari_viewer()

    def open_with_reader(path):
        for data, kwargs, kind in get_reader(str(path))(str(path)):
            getattr(viewer, f"add_{kind}")(data, **kwargs)

    open_with_reader(tut / "autopick")
    w = InspectPicksWidget(viewer)
    picks = read_table(tut / "autopick")
    assert w.inspection.x_feature == "rlnAutopickFigureOfMerit"
    assert w.result.n_total == len(picks) == 9470
    t = w.thresholds
    fom = picks["rlnAutopickFigureOfMerit"].to_numpy()
    y = picks[w.inspection.y_feature].to_numpy(dtype=float)
    assert w.result.n_kept == _expected(picks, t.x_min, t.y_min, t.y_max, x=fom, y=y).sum()
    w.cal_x_check.setChecked(True)
    assert not w.cal_x_check.isChecked() and "no defocus" in w.cal_label.text()
    assert w.inspection.x_units == "raw"

    open_with_reader(tut / "all_micrographs_ctf.star")  # CTFFIND results of the same micrographs
    assert w.inspection.defocus is not None and "all_micrographs_ctf.star" in w.status.text()
    w.cal_x_check.setChecked(True)
    assert w.cal_x_check.isChecked() and w.inspection.x_units == "calibrated (ratio)"
    ctf = read_table(tut / "all_micrographs_ctf.star")
    per = ctf.groupby("micrograph")["defocus_A"].median()
    cal = fit_calibration(picks, "rlnAutopickFigureOfMerit", defocus=per)
    np.testing.assert_allclose(w.inspection.x, cal.apply(picks, defocus=per).to_numpy(), equal_nan=True)
    tb = w.mic_table
    assert tb.rowCount() == 15
    d = {tb.item(r, 0).text(): float(tb.item(r, 1).text()) for r in range(15)}
    for key, v in d.items():
        assert v == pytest.approx(per[key], rel=1e-3)
    assert "rlnAutopickFigureOfMerit: median =" in w.cal_label.text()


def test_jobs_scores_picker_and_duplicates(make_napari_viewer, qtbot):
    """Compute scores in a worker (new layer, values = score_micrograph on that micrograph),
    pick the shown micrograph, remove duplicates (planted ones go, none closer than the
    distance stays)."""
    from napari_cryodiag._reader import picks_layer_data
    from napari_cryodiag.compute.picks.scores import score_micrograph
    from napari_cryodiag.picks_layer import link_viewer
    from napari_cryodiag.simulate.micrographs import simulate_micrographs
    from napari_cryodiag.widgets.inspect_picks import InspectPicksWidget

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
    viewer.add_points(data, **kwargs)
    link_viewer(viewer)
    w = InspectPicksWidget(viewer)
    assert w.mic_layer_combo.currentText() == "micrographs"
    w.diameter_spin.setValue(sim.particle_diameter_A)

    # ---- scores, in a worker
    worker = w.compute_scores()
    assert worker is not None
    qtbot.waitUntil(lambda: w.layer is not None and w.layer.name == "picks (scored)", timeout=30000)
    scored = w.inspection.table
    assert (w.inspection.x_feature, w.inspection.y_feature) == ("ncc", "power")
    assert "picks" in viewer.layers  # the input layer is kept
    on0 = (scored["micrograph"] == sim.keys[0]).to_numpy()
    ncc0, pow0 = score_micrograph(sim.images[0], scored["x_px"][on0], scored["y_px"][on0],
                                  diameter_px=w.diameter_spin.value() / apix, pixel_size_A=apix)
    np.testing.assert_allclose(scored["ncc"][on0], ncc0, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(scored["power"][on0], pow0, rtol=1e-6, equal_nan=True)
    med = scored.groupby("truth")["ncc"].median()
    assert med["particle"] > med["empty"]  # scores mean something on the simulated truth
    assert "scored" in w.jobs_label.text()

    # ---- duplicates: plant 6 near-copies (3 px away, lower NCC) of particle picks
    part = scored.index[(scored["truth"] == "particle").to_numpy() & np.isfinite(scored["ncc"]).to_numpy()][:6]
    dup = scored.loc[part].copy()
    dup["x_px"] += 3.0
    dup["ncc"] -= 0.05
    with_dups = pd.concat([scored, dup], ignore_index=True)
    with_dups.attrs = dict(scored.attrs)
    w.add_picks_layer(with_dups, "with duplicates")
    res = w.remove_duplicates(20.0)
    assert res is not None and w.layer.name == "with duplicates (no duplicates)"
    out = w.inspection.table
    assert res.n_removed == len(with_dups) - len(out) >= 6
    assert f"removed {res.n_removed:,} duplicate picks within 20 Å" in w.dup_label.text()
    for key, g in out.groupby("micrograph"):  # no two kept picks closer than 20 Å
        xy = g[["x_px", "y_px"]].to_numpy() * apix
        d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
        assert d.min() >= 20.0
    kept_keys = set(map(tuple, out[["x_px", "y_px"]].round(6).to_numpy()))
    for r in part:  # the originals (higher NCC) were kept, the copies removed
        assert (round(scored.loc[r, "x_px"], 6), round(scored.loc[r, "y_px"], 6)) in kept_keys
        assert (round(scored.loc[r, "x_px"] + 3.0, 6), round(scored.loc[r, "y_px"], 6)) not in kept_keys

    # ---- picker on the shown micrograph
    viewer.dims.set_current_step(0, 1)
    worker = w.run_picker(all_micrographs=False)
    assert worker is not None
    qtbot.waitUntil(lambda: w.layer is not None and w.layer.name == "picks (micrographs)", timeout=30000)
    picks = w.inspection.table
    assert len(picks) > 5 and set(picks["micrograph"]) == {sim.keys[1]}
    assert {"ncc", "power", "defocus_A"} <= set(picks.columns)  # defocus from the open table
    assert np.allclose(picks["defocus_A"], sim.defocus_A[1])
    assert w.result.n_total == len(picks)

    # ---- a cancelled job adds nothing
    n_layers = len(viewer.layers)
    worker = w.compute_scores()
    assert w.cancel_button.isEnabled()
    w.cancel_button.click()
    qtbot.waitUntil(lambda: worker not in w._workers, timeout=30000)
    assert "cancelled" in w.jobs_label.text()
    assert len(viewer.layers) == n_layers
