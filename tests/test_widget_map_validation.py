"""The "Map validation" dock in a viewer (under Xvfb), driven through its magicgui widgets as a
user drives it: half-map choosers (two different maps by default, masks only in the mask
chooser), Compute in a worker (one job at a time, cancel), the curves, diagnosis and summary,
mask/sharpened/Fourier/projection layers, what-if sharpening, a renamed layer, a
postprocess.star from the open tables, and the exports; screenshots are written for inspection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.viewer

SHOT_DIR = Path(os.environ.get("CRYODIAG_SCREENSHOTS", "/tmp"))


@pytest.fixture(scope="module")
def sim():
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    return simulate_half_maps(box=64, pathology="micelle", resolution_A=4.5)


def _add(viewer, sim, names=("half1", "half2")):
    meta = {"cryodiag": {"kind": "map", "pixel_size_A": sim.pixel_size_A}}
    return [viewer.add_image(getattr(sim, h), name=n, scale=(sim.pixel_size_A,) * 3, metadata=dict(meta))
            for h, n in zip(("half1", "half2"), names)]


def _dock(viewer):
    from napari_cryodiag.widgets.map_validation import MapValidationWidget

    w = MapValidationWidget(viewer)
    viewer.window.add_dock_widget(w, name="Map validation", area="right")
    return w


def _compute(w):
    worker = w.compute()
    assert worker is not None, w.status.value
    w.wait()
    assert not w.busy
    return worker

def _sharpening(viewer, sim, view: str | None = None):
    """The dock computed on the simulated half maps, a sharpened layer, an explicit B (and
    ``view`` shown): returns the dock and the layer."""
    _add(viewer, sim)
    w = _dock(viewer)
    _compute(w)
    layer = w.sharpen.add_sharpened_layer()
    w.sharpen.form.use_fitted_bfactor.value = False
    w.sharpen.wait()
    if view is not None:
        w.plots.view.value = view
    return w, layer



def _sharpened_curve(s, bfactor):
    """The sharpened Guinier curve by its definition, coefficient by coefficient: the filter of
    ``bfactor`` (FSC weighting with the corrected curve, zeroing) applied to the transform of the
    half-map average under the corrected curve's mask."""
    from napari_cryodiag.compute.fourier import rfftn, shell_index
    from napari_cryodiag.compute.maps.guinier import guinier_curve
    from napari_cryodiag.compute.maps.sharpen import shell_filter

    hm = s.halfmaps
    n, apix = hm.n, hm.pixel_size_A
    ft = rfftn(hm.average() * s.fsc.masks[s.fsc.corrected_mask])
    idx = shell_index(hm.shape)
    kz = np.fft.fftfreq(n, apix) ** 2
    s2 = kz[:, None, None] + kz[None, :, None] + np.fft.rfftfreq(n, apix)[None, None, :] ** 2
    h = shell_filter(n, apix, s.fsc.curves["corrected"])[idx] * np.exp(-bfactor * s2 / 4)
    return guinier_curve(ft * h, hm.shape, apix, s.guinier_curve.quantity)


def test_widget_end_to_end(make_napari_viewer, qtbot, sim, tmp_path):
    from napari_cryodiag.workflows.maps import MapValidation, MapValidationOptions, load_half_maps

    viewer = make_napari_viewer(show=True)
    _add(viewer, sim)
    w = _dock(viewer)
    assert (w.inputs.half1.value.name, w.inputs.half2.value.name) == ("half1", "half2")
    assert w.inputs.mask.value is None  # the automatic masks unless the user gives one
    _compute(w)
    s = w.session
    assert [f.code for f in s.flags] == ["micelle_dip"]
    # the numbers are the workflow's on the same arrays and options
    ref = MapValidation(load_half_maps(sim.half1, sim.half2, voxel_sizes_A=(sim.pixel_size_A,) * 2)).compute(
        MapValidationOptions())
    np.testing.assert_allclose(s.fsc.curves["corrected"], ref.fsc.curves["corrected"], atol=1e-6)
    assert s.fsc.resolution_A == pytest.approx(ref.fsc.resolution_A)
    text = w.summary.value
    assert f"{s.fsc.resolution_A:.2f} Å" in text and "FSC dip" in text
    # the legend (below the axes, off the curves) gives each curve's resolution in Å
    fig = w.plots.canvas.figure
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    fig.canvas.draw()
    legend_box = fig.legends[0].get_window_extent()
    axes_box = fig.axes[0].get_window_extent()
    assert legend_box.y1 < axes_box.y0  # wholly below the plot area
    assert legend_box.x0 >= 0 and legend_box.x1 <= fig.bbox.width  # and inside the figure
    tight = s.fsc.resolution("tight").interpolated_A
    assert f"Tight ({tight:.2f} Å)" in labels and any(lab.startswith("Corrected (") for lab in labels)
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "map_validation_widget.png"))

    # layers: masks, sharpened map, Fourier volume, projections
    masks = w.sharpen.add_mask_layers()
    assert [m.name for m in masks] == ["mask spherical", "mask loose", "mask tight"]
    np.testing.assert_array_equal(viewer.layers["mask tight"].data, s.fsc.masks["tight"])
    sharp = w.sharpen.add_sharpened_layer()
    assert sharp.data.shape == sim.half1.shape
    assert s.sharpen_used.bfactor_A2 == pytest.approx(s.guinier.sharpening_bfactor_A2)
    assert w.sharpen.form.bfactor_A2.value == pytest.approx(s.guinier.sharpening_bfactor_A2, abs=0.05)
    four = w.sharpen.add_fourier_layer()
    assert four.data.shape == sim.half1.shape and four.data.dtype == np.float32
    proj = w.sharpen.add_projection_layers()
    assert [p.data.shape for p in proj] == [(64, 64)] * 3
    np.testing.assert_allclose(proj[2].data, s.halfmaps.average().sum(axis=0), rtol=1e-5, atol=1e-3)
    # masks (and only masks) join the mask chooser; computed layers are never half maps
    w.reset_choices()
    assert set(w.inputs.mask.choices) == {None, *masks}
    assert set(w.inputs.half1.choices) == set(viewer.layers[n] for n in ("half1", "half2"))

    # what-if: a new B (set in the form) re-filters only
    f1 = s.halfmaps.transforms[0]
    before = sharp.data.copy()
    s.recomputed = []
    w.sharpen.form.use_fitted_bfactor.value = False
    w.sharpen.form.bfactor_A2.value = -20.0
    w.sharpen.wait()
    assert s.recomputed[-1] == "sharpen" and "fsc" not in s.recomputed
    assert s.sharpen_used.bfactor_A2 == -20.0
    assert not np.allclose(before, viewer.layers["sharpened"].data)
    np.testing.assert_allclose(viewer.layers["sharpened"].data, w.validation.sharpen(w.sharpen.options()), atol=1e-6)
    w.plots.view.value = "Guinier"
    lines = w.plots.canvas.figure.axes[0].get_lines()
    assert len(lines) == 3  # curve, sharpened, fit
    # the next B redraws the sharpened curve only (blitted), with the workflow's numbers
    w.sharpen.form.bfactor_A2.value = -60.0
    w.sharpen.wait()
    qtbot.wait(20)
    shown = w.plots._sharp_line.get_ydata()
    curve = w.validation.sharpened_curve
    ok = np.isfinite(curve.y) & (np.asarray(curve.x_invA2) > 0)
    np.testing.assert_allclose(shown, np.asarray(curve.y)[ok])
    assert s.sharpen_used.bfactor_A2 == -60.0
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "map_validation_widget_guinier.png"))

    # a mask parameter changes: masks/FSC recomputed, half maps' transforms kept
    w.options.masks.tight_dilate_A.value = 8.0
    w.options.masks.tight_soft_A.value = 16.0
    _compute(w)
    assert "masks" in s.recomputed and w.session.fsc.mask_params.tight_dilate_A == 8.0
    assert s.halfmaps.transforms[0] is f1
    for view in ("slices", "projections", "Fourier slices", "FSC"):
        w.plots.view.value = view
        assert len(w.plots.canvas.figure.axes) >= 1
    viewer.window._qt_window.resize(1400, 1000)
    viewer.reset_view()
    qtbot.wait(200)
    viewer.screenshot(str(SHOT_DIR / "map_validation_viewer.png"), canvas_only=False)

    # saving
    w.plots.save_figure.value = tmp_path / "fsc.pdf"
    assert (tmp_path / "fsc.pdf").stat().st_size > 5_000
    paths = w.export(tmp_path / "export", formats="png")
    names = {p.name for p in paths}
    assert {"fsc.png", "guinier.png", "slices.png", "fourier_slices.png", "fsc.csv", "fsc_corrected.xml",
            "postprocess.star", "fsc.json"} <= names
    j = json.loads((tmp_path / "export" / "fsc.json").read_text())
    assert j["sharpen"]["bfactor_A2"] == -60.0 and j["flags"][0]["code"] == "micelle_dip"
    # the Export button writes there too, and refuses to replace files without 'replace'
    w.files.export_folder.value = tmp_path / "export"
    w.files.export_button.clicked.emit()
    assert "exists" in w.status.value
    w.files.overwrite.value = True
    w.files.export_button.clicked.emit()
    assert "wrote" in w.status.value


def test_widget_user_mask_and_bad_inputs(make_napari_viewer, qtbot, sim, tmp_path):
    from napari_cryodiag.io.mrc import write_mrc

    for name, data, apix in (("a.mrc", sim.half1, 1.5), ("b.mrc", sim.half2, 1.5), ("m.mrc", sim.mask, 1.5),
                             ("c.mrc", sim.half2[:60, :60, :60], 1.5)):
        write_mrc(tmp_path / name, data, apix)
    viewer = make_napari_viewer()
    w = _dock(viewer)
    w.inputs.open_maps.value = [tmp_path / "a.mrc", tmp_path / "b.mrc", tmp_path / "m.mrc"]
    assert (w.inputs.half1.value.name, w.inputs.half2.value.name) == ("a.mrc", "b.mrc")
    assert w.inputs.mask.value.name == "m.mrc"
    assert viewer.layers["m.mrc"] not in w.inputs.half1.choices  # a mask is never a half map
    _compute(w)
    assert w.session.fsc.corrected_mask == "user"
    # a half map on another grid: the error names both layers
    w.inputs.open_maps.value = [tmp_path / "a.mrc", tmp_path / "c.mrc"]
    assert w.inputs.half2.value.name == "c.mrc"
    assert w.compute() is None
    text = w.summary.value
    assert "different grids" in text and "a.mrc" in text and "c.mrc" in text
    # a mask on another grid is refused naming it
    w.inputs.half1.value, w.inputs.half2.value = viewer.layers["a.mrc"], viewer.layers["b.mrc"]
    viewer.add_image(sim.mask[:60, :60, :60], name="small mask",
                     metadata={"cryodiag": {"kind": "mask", "pixel_size_A": 1.5}})
    w.inputs.mask.value = viewer.layers["small mask"]
    assert w.compute() is None and "small mask" in w.summary.value and "grid" in w.summary.value


def test_two_different_half_maps_by_default(make_napari_viewer, qtbot, sim, tmp_path):
    """Opening half1 then half2 (as File > Open does, one after the other) preselects both."""
    from napari_cryodiag.io.mrc import write_mrc

    write_mrc(tmp_path / "run_half1_class001_unfil.mrc", sim.half1, 1.5)
    write_mrc(tmp_path / "run_half2_class001_unfil.mrc", sim.half2, 1.5)
    write_mrc(tmp_path / "mask.mrc", sim.mask, 1.5)
    viewer = make_napari_viewer()
    w = _dock(viewer)
    viewer.open(str(tmp_path / "run_half1_class001_unfil.mrc"), plugin="napari-cryodiag")
    assert w.inputs.half1.value.name == "run_half1_class001_unfil.mrc"
    viewer.open(str(tmp_path / "mask.mrc"), plugin="napari-cryodiag")
    viewer.open(str(tmp_path / "run_half2_class001_unfil.mrc"), plugin="napari-cryodiag")
    h1, h2 = w.inputs.half1.value, w.inputs.half2.value
    assert (h1.name, h2.name) == ("run_half1_class001_unfil.mrc", "run_half2_class001_unfil.mrc")
    assert w.inputs.mask.choices == (None, viewer.layers["mask.mrc"])
    # a choice the user made is kept when other maps are opened
    w.inputs.half1.value, w.inputs.half2.value = h2, h1
    viewer.add_image(sim.half1 * 2, name="another map", scale=(1.5,) * 3)
    assert (w.inputs.half1.value, w.inputs.half2.value) == (h2, h1)
    # a dock opened after the maps chooses the pair too
    w2 = _dock(viewer)
    assert (w2.inputs.half1.value, w2.inputs.half2.value) == (h1, h2)


def test_rename_then_compute_double_click_and_cancel(make_napari_viewer, qtbot, sim, tmp_path):
    viewer = make_napari_viewer()
    l1, l2 = _add(viewer, sim)
    w = _dock(viewer)
    computed = []
    w.map_session.computed.connect(lambda: computed.append(1))
    # renaming a layer never breaks Compute (the choosers hold the layers, not their names)
    l1.name, l2.name = "first half", "second half"
    assert (w.inputs.half1.value, w.inputs.half2.value) == (l1, l2)
    assert "first half" in [w.inputs.half1.native.itemText(i) for i in range(w.inputs.half1.native.count())]
    # a double click starts one job
    w.compute_button.clicked.emit()
    assert w.busy and not w.compute_button.enabled
    w.compute_button.clicked.emit()
    assert w.compute() is None
    w.wait()
    assert len(computed) == 1 and w.session.fsc is not None and "first half" in w.status.value
    w.files.export_folder.value = tmp_path / "out"
    w.files.export_button.clicked.emit()
    j = json.loads((tmp_path / "out" / "fsc.json").read_text())
    assert j["inputs"] == {"half1": "first half", "half2": "second half", "mask": None}
    # rename after computing: the same validation is kept (nothing recomputed)
    l2.name = "renamed again"
    _compute(w)
    assert w.session.recomputed == [] and len(computed) == 2
    # cancel: a new computation (new mask parameters) stops; the former curves stay
    fsc = w.session.fsc
    w.options.masks.loose_dilate_A.value = 20.0
    worker = w.compute()
    assert w.controls.cancel.enabled and not w.controls.native.isHidden()
    with qtbot.waitSignal(worker.aborted, timeout=60_000):
        w.controls.cancel.clicked.emit()
    w.wait()
    assert w.summary.value == "cancelled" and "cancelled" in w.status.value
    assert w.compute_button.enabled and w.controls.native.isHidden() and len(computed) == 2
    assert w.session.fsc is fsc


def test_postprocess_star_from_the_open_tables(make_napari_viewer, qtbot, shared_data):
    from napari_cryodiag.workflows.maps import fsc_from_postprocess

    path = shared_data / "relion-postprocess" / "postprocess.star"
    fsc, flags = fsc_from_postprocess(path)
    viewer = make_napari_viewer()
    w = _dock(viewer)
    viewer.open(str(path), plugin="napari-cryodiag")  # File > Open: no layer, an open table
    assert len(viewer.layers) == 0
    item = w.files.postprocess.value
    assert item is not None and item.path == str(path)  # the table just opened is chosen
    assert w.plots.view.value == "postprocess FSC"
    ax = w.plots.canvas.figure.axes[0]
    labels = [t.get_text() for t in w.plots.canvas.figure.legends[0].get_texts()]
    assert f"Corrected ({fsc.resolution_A:.2f} Å)" in labels
    corrected = next(ln for ln in ax.get_lines() if ln.get_label().startswith("Corrected"))
    np.testing.assert_allclose(corrected.get_ydata(), fsc.curves["corrected"])
    assert f"{fsc.resolution_A:.2f} Å" in w.status.value
    qtbot.wait(50)
    w.grab().save(str(SHOT_DIR / "map_validation_postprocess.png"))
    # none: the view goes back to the half maps' views
    w.files.postprocess.value = None
    assert "postprocess FSC" not in w.plots.view.choices
    # the file picker opens one too
    w2 = _dock(make_napari_viewer())
    w2.files.postprocess_file.value = path
    assert w2.files.postprocess.value.path == str(path) and w2.plots.view.value == "postprocess FSC"


def test_the_first_b_step_prepares_the_guinier_view_in_the_thread(make_napari_viewer, qtbot, sim, monkeypatch):
    """Sharpening with the FSC view shown makes the sharpened curves' moments once, in the
    sharpening thread; the Guinier view, shown afterwards, draws the sharpened curve without
    making them again (on the GUI thread), and the curve is the definition's."""
    import threading

    from napari_cryodiag.compute.maps import sharpen as sharpen_module

    made = []
    real = sharpen_module.FilteredGuinier

    def counted(*a, **k):
        made.append(threading.current_thread() is threading.main_thread())
        return real(*a, **k)

    monkeypatch.setattr(sharpen_module, "FilteredGuinier", counted)
    viewer = make_napari_viewer(show=True)
    w, layer = _sharpening(viewer, sim, "FSC")
    w.sharpen.form.bfactor_A2.value = -40.0
    w.sharpen.wait()
    s = w.session
    assert s.filtered_guinier_ready and w.sharpen.shown_bfactor_A2 == -40.0
    assert made == [False]  # once, not on the GUI thread
    w.plots.view.value = "Guinier"
    qtbot.wait(20)
    assert made == [False]
    curve = _sharpened_curve(s, -40.0)
    ok = np.isfinite(curve.y) & (np.asarray(curve.x_invA2) > 0)
    np.testing.assert_allclose(w.plots._sharp_line.get_ydata(), np.asarray(curve.y)[ok], rtol=1e-4, atol=1e-4)


def test_what_if_steps_show_that_bs_map_and_curve_and_redraw_the_figure_once_b_rests(make_napari_viewer, qtbot,
                                                                                      sim, monkeypatch):
    """B stepped quickly with the Guinier view shown (a user holding the spin box's arrow): the
    sharpened layer ends with compute.maps.sharpen's map for the last B, the blitted curve is that
    B's filter on the masked average's transform, and the whole figure is drawn once B rests, not
    between the steps."""
    from napari_cryodiag.compute.maps.sharpen import sharpen_map
    from napari_cryodiag.widgets.map_validation.plots_panel import SETTLE_MS

    viewer = make_napari_viewer(show=True)
    w, layer = _sharpening(viewer, sim, "Guinier")
    qtbot.wait(SETTLE_MS + 100)
    validation = w.sharpen.session.validation
    curve_of = validation.sharpened_curve_of  # the thread's work: the curve

    def slow_curve_of(sharpened_map):  # a step longer than the settle delay (a big map on a busy machine)
        import time

        time.sleep(1.5 * SETTLE_MS / 1000)
        return curve_of(sharpened_map)

    monkeypatch.setattr(validation, "sharpened_curve_of", slow_curve_of)
    full_draws = []
    w.plots.canvas.canvas.mpl_connect("draw_event", full_draws.append)
    for b in (-10.0, -30.0, -50.0, -70.0):
        w.sharpen.form.bfactor_A2.value = b
        w.sharpen.wait()
        qtbot.wait(SETTLE_MS // 4)  # the next step comes before B rests
    assert full_draws == []  # only the sharpened curve was blitted
    s = w.session
    assert s.sharpen_used.bfactor_A2 == -70.0 and w.sharpen.shown_bfactor_A2 == -70.0
    hm = s.halfmaps
    ref = sharpen_map(hm.average(), hm.pixel_size_A, -70.0, s.fsc.curves["corrected"])
    np.testing.assert_allclose(layer.data, ref, atol=1e-5 * np.abs(ref).max())
    curve = _sharpened_curve(s, -70.0)
    ok = np.isfinite(curve.y) & (np.asarray(curve.x_invA2) > 0)
    np.testing.assert_allclose(w.plots._sharp_line.get_ydata(), np.asarray(curve.y)[ok], rtol=1e-5, atol=1e-5)
    qtbot.waitUntil(lambda: len(full_draws) >= 1, timeout=SETTLE_MS + 3000)  # B rests: the whole figure


def _shown_plane(layer, viewer):
    """The plane the 2D canvas shows, read back pixel by pixel through the layer's public
    get_value (data coordinates), as an array over the displayed axes."""
    ax0, ax1 = viewer.dims.displayed
    pos = np.array(viewer.dims.current_step, dtype=float)
    out = np.empty((layer.data.shape[ax0], layer.data.shape[ax1]), np.float32)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            pos[ax0], pos[ax1] = i, j
            out[i, j] = layer.get_value(pos)
    return out


def test_what_if_in_2d_computes_the_shown_plane_and_the_whole_map_only_when_needed(make_napari_viewer, qtbot,
                                                                                   sim, tmp_path):
    """The sharpened layer shown in 2D: a new B in the form shows compute.maps.sharpen's plane for
    that B (and its contrast) without computing the whole map; scrolling to another z, and looking
    along y, show those planes of the same map; the 3D display shows the whole map, and a B set in
    3D computes it in the thread; saving the layer (napari's writer: the plugin's MRC) writes the
    whole map; the session keeps the whole map for the exports."""
    from napari_cryodiag.compute.maps.sharpen import sharpen_map
    from napari_cryodiag.io.mrc import read_map
    from napari_cryodiag.widgets.map_validation.sharpen_panel import SharpenedLayerData

    viewer = make_napari_viewer(show=True)
    w, layer = _sharpening(viewer, sim)
    s = w.session
    hm = s.halfmaps

    def ref(b):
        return sharpen_map(hm.average(), hm.pixel_size_A, b, s.fsc.curves["corrected"])

    assert viewer.dims.ndisplay == 2 and isinstance(layer.data, SharpenedLayerData)
    data = layer.data
    viewer.dims.set_current_step(0, 32)
    w.sharpen.form.bfactor_A2.value = -35.0
    w.sharpen.wait()
    r = ref(-35.0)
    tol = 1e-5 * np.abs(r).max()
    assert layer.data is data and w.sharpen.shown_bfactor_A2 == -35.0 and s.sharpen_used.bfactor_A2 == -35.0
    assert not data.map.computed  # the plane only
    np.testing.assert_allclose(_shown_plane(layer, viewer), r[32], atol=tol)
    np.testing.assert_allclose(layer.contrast_limits, np.percentile(r[32], [0.1, 99.9]), rtol=1e-4, atol=tol)
    assert layer.metadata["cryodiag"]["bfactor_A2"] == -35.0
    # scrolling: the plane of the same B
    viewer.dims.set_current_step(0, 10)
    qtbot.wait(10)
    np.testing.assert_allclose(_shown_plane(layer, viewer), r[10], atol=tol)
    # looking along y (axes z, x shown)
    viewer.dims.order = (1, 0, 2)
    viewer.dims.set_current_step(1, 40)
    qtbot.wait(10)
    np.testing.assert_allclose(_shown_plane(layer, viewer), r[:, 40, :], atol=tol)
    assert not data.map.computed
    viewer.dims.order = (0, 1, 2)

    # 3D: the whole map, then a B set in 3D is computed in the thread, whole
    viewer.dims.ndisplay = 3
    qtbot.wait(10)
    assert data.map.computed
    np.testing.assert_allclose(np.asarray(layer.data), r, atol=tol)
    w.sharpen.form.bfactor_A2.value = -50.0
    w.sharpen.wait()
    assert w.sharpen.shown_bfactor_A2 == -50.0 and layer.data.map.computed
    np.testing.assert_allclose(np.asarray(layer.data), ref(-50.0), atol=tol)

    # back in 2D, a new B; saving the layer writes the whole map of that B
    viewer.dims.ndisplay = 2
    w.sharpen.form.bfactor_A2.value = -65.0
    w.sharpen.wait()
    assert not layer.data.map.computed
    written = layer.save(str(tmp_path / "sharpened.mrc"))
    saved = read_map(written[0] if isinstance(written, list) else written)
    r65 = ref(-65.0)
    np.testing.assert_allclose(saved.data, r65, atol=tol)
    assert saved.voxel_size_A == pytest.approx((hm.pixel_size_A,) * 3)
    # the session's map is the whole map of that B, identical to what the eager path computes
    assert s.sharpened is layer.data.map.full()
    np.testing.assert_array_equal(s.sharpened, w.validation.sharpen(w.sharpen.options()))


def test_a_b_set_while_the_curve_is_computed_shows_its_plane_at_once(make_napari_viewer, qtbot, sim, monkeypatch):
    """Guinier view, layer in 2D, the thread slow (a big map): a second B set while the first B's
    curve is computed is shown at once (its plane), the first B's curve does not bring the first B
    back, and once done the layer, the curve and the session are the second B's."""
    from napari_cryodiag.compute.maps.sharpen import sharpen_map

    viewer = make_napari_viewer(show=True)
    w, layer = _sharpening(viewer, sim, "Guinier")
    validation = w.validation
    curve_of = validation.sharpened_curve_of
    computed = []

    def slow_curve_of(sharpened_map):
        import time

        time.sleep(0.5)
        computed.append(sharpened_map.bfactor_A2)
        return curve_of(sharpened_map)

    monkeypatch.setattr(validation, "sharpened_curve_of", slow_curve_of)
    s, hm = w.session, w.session.halfmaps
    viewer.dims.set_current_step(0, 30)
    w.sharpen.form.bfactor_A2.value = -25.0
    assert not w.sharpen.idle and w.sharpen.shown_bfactor_A2 == -25.0  # the plane at once, the curve in the thread
    w.sharpen.form.bfactor_A2.value = -75.0
    assert w.sharpen.shown_bfactor_A2 == -75.0 and computed == []  # shown while -25's curve is computed
    ref = sharpen_map(hm.average(), hm.pixel_size_A, -75.0, s.fsc.curves["corrected"])
    np.testing.assert_allclose(_shown_plane(layer, viewer), ref[30], atol=1e-5 * np.abs(ref).max())
    w.sharpen.wait()
    assert computed == [-25.0, -75.0]
    assert w.sharpen.shown_bfactor_A2 == -75.0 and s.sharpen_used.bfactor_A2 == -75.0
    np.testing.assert_allclose(_shown_plane(layer, viewer), ref[30], atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(np.asarray(layer.data), ref, atol=1e-5 * np.abs(ref).max())
    curve = _sharpened_curve(s, -75.0)
    ok = np.isfinite(curve.y) & (np.asarray(curve.x_invA2) > 0)
    np.testing.assert_allclose(w.plots._sharp_line.get_ydata(), np.asarray(curve.y)[ok], rtol=1e-4, atol=1e-4)
