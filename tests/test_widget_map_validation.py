"""The "Map validation" dock widget in a viewer (under Xvfb): half-map layers in, worker with
progress, curves + diagnosis, mask/sharpened/Fourier layers, what-if sharpening, exports;
screenshots are written for inspection."""

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


def _add(viewer, sim):
    meta = {"cryodiag": {"kind": "map", "pixel_size_A": sim.pixel_size_A}}
    viewer.add_image(sim.half1, name="half1", scale=(sim.pixel_size_A,) * 3, metadata=meta)
    viewer.add_image(sim.half2, name="half2", scale=(sim.pixel_size_A,) * 3, metadata=meta)


def test_widget_end_to_end(make_napari_viewer, qtbot, sim, tmp_path):
    from napari_cryodiag.widgets.map_validation import MapValidationWidget

    viewer = make_napari_viewer(show=True)
    _add(viewer, sim)
    w = MapValidationWidget(viewer)
    viewer.window.add_dock_widget(w, name="Map validation", area="right")
    assert (w.half1_combo.currentText(), w.half2_combo.currentText()) == ("half1", "half2")
    assert w.compute() is not None
    qtbot.waitUntil(lambda: w.session is not None and w.session.fsc is not None and w.compute_btn.isEnabled(),
                    timeout=60_000)
    s = w.session
    assert [f.code for f in s.flags] == ["micelle_dip"]
    text = w.summary.text()
    assert f"{s.fsc.resolution_A:.2f} Å" in text and "FSC dip" in text
    # the legend gives each curve's resolution in Å
    ax = w.canvas.figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    tight = s.fsc.resolution("tight").interpolated_A
    assert f"Tight ({tight:.2f} Å)" in labels and any(lab.startswith("Corrected (") for lab in labels)
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "map_validation_widget.png"))

    # layers: masks, sharpened map, Fourier volume
    masks = w.add_mask_layers()
    assert [m.name for m in masks] == ["mask spherical", "mask loose", "mask tight"]
    np.testing.assert_array_equal(viewer.layers["mask tight"].data, s.fsc.masks["tight"])
    sharp = w.add_sharpened_layer()
    assert sharp.data.shape == sim.half1.shape
    assert s.sharpen_used.bfactor_A2 == pytest.approx(s.guinier.sharpening_bfactor_A2)
    four = w.add_fourier_layer()
    assert four.data.shape == sim.half1.shape and four.data.dtype == np.float32
    proj = w.add_projection_layers()
    assert [p.data.shape for p in proj] == [(64, 64)] * 3
    np.testing.assert_allclose(proj[2].data, s.halfmaps.average().sum(axis=0), rtol=1e-5, atol=1e-3)

    # what-if: a new B re-filters only
    f1 = s.halfmaps.transforms[0]
    before = sharp.data.copy()
    s.recomputed = []
    w.fitted_check.setChecked(False)
    w.b_spin.setValue(-20.0)
    assert s.recomputed[-1] == "sharpen" and "fsc" not in s.recomputed
    assert s.sharpen_used.bfactor_A2 == -20.0
    assert not np.allclose(before, viewer.layers["sharpened"].data)
    w.view_combo.setCurrentText("Guinier")
    assert len(w.canvas.figure.axes[0].get_lines()) == 3  # curve, sharpened, fit
    qtbot.wait(100)
    w.grab().save(str(SHOT_DIR / "map_validation_widget_guinier.png"))
    # a mask parameter changes: masks/FSC recomputed, half maps' transforms kept
    w.tight_in.setValue(8.0)
    w.tight_out.setValue(16.0)
    w.compute()
    qtbot.waitUntil(lambda: w.compute_btn.isEnabled() and "masks" in s.recomputed, timeout=60_000)
    qtbot.waitUntil(lambda: w.session.fsc.mask_params.tight_dilate_A == 8.0, timeout=60_000)
    assert s.halfmaps.transforms[0] is f1
    for view in ("slices", "projections", "Fourier slices", "FSC"):
        w.view_combo.setCurrentText(view)
        assert len(w.canvas.figure.axes) >= 1
    viewer.window._qt_window.resize(1400, 1000)
    viewer.reset_view()
    qtbot.wait(200)
    viewer.screenshot(str(SHOT_DIR / "map_validation_viewer.png"), canvas_only=False)

    # saving
    assert w.save_figure(tmp_path / "fsc.pdf").stat().st_size > 5_000
    paths = w.export(tmp_path / "export", formats="png")
    names = {p.name for p in paths}
    assert {"fsc.png", "guinier.png", "slices.png", "fourier_slices.png", "fsc.csv", "fsc_corrected.xml",
            "postprocess.star", "fsc.json"} <= names
    j = json.loads((tmp_path / "export" / "fsc.json").read_text())
    assert j["sharpen"]["bfactor_A2"] == -20.0 and j["flags"][0]["code"] == "micelle_dip"


def test_widget_user_mask_and_bad_inputs(make_napari_viewer, qtbot, sim, tmp_path):
    from napari_cryodiag.io.mrc import write_mrc
    from napari_cryodiag.widgets.map_validation import MapValidationWidget

    for name, data, apix in (("a.mrc", sim.half1, 1.5), ("b.mrc", sim.half2, 1.5), ("m.mrc", sim.mask, 1.5),
                             ("c.mrc", sim.half2[:60, :60, :60], 1.5)):
        write_mrc(tmp_path / name, data, apix)
    viewer = make_napari_viewer()
    w = MapValidationWidget(viewer)
    w.set_files(tmp_path / "a.mrc", tmp_path / "b.mrc", tmp_path / "m.mrc")
    assert w.mask_combo.currentText() == "m.mrc"
    w.compute()
    qtbot.waitUntil(lambda: w.session is not None and w.session.fsc is not None and w.compute_btn.isEnabled(),
                    timeout=60_000)
    assert w.session.fsc.corrected_mask == "user"
    # a half map on another grid: the error names both layers
    w.set_files(tmp_path / "a.mrc", tmp_path / "c.mrc")
    assert w.half2_combo.currentText() == "c.mrc"
    assert w.compute() is None
    assert "different grids" in w.summary.text() and "a.mrc" in w.summary.text() and "c.mrc" in w.summary.text()
