"""Viewer tests: a lazy micrograph folder and picks that follow the micrograph slider."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.io import mrc, star

pytestmark = pytest.mark.viewer

N_MIC = 6
BOX = 256
PSIZE = 2.0


def _make_folder(tmp_path, rng):
    """6 micrographs of 256² with bright discs at known positions; picks on them as STAR."""
    folder = tmp_path / "mics"
    folder.mkdir()
    rows = []
    yy, xx = np.mgrid[:BOX, :BOX]
    for i in range(N_MIC):
        img = rng.normal(0, 1, (BOX, BOX)).astype(np.float32)
        n = 3 + i  # a different number of picks per micrograph
        for _ in range(n):
            x, y = rng.uniform(30, BOX - 30, 2)
            img += 8 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 5.0**2))
            rows.append((f"Micrographs/mic_{i:03d}.mrc", x, y, float(i)))
        mrc.write_mrc(folder / f"mic_{i:03d}_frames_sum.mrc", img, PSIZE)
    table = pd.DataFrame(rows, columns=["micrograph_name", "x_px", "y_px", "rlnAutopickFigureOfMerit"])
    star_path = tmp_path / "picks.star"
    star.write_star(star_path, table)
    return folder, star_path, table


def test_picks_follow_slider(make_napari_viewer, tmp_path):
    from napari_cryodiag import picks_layer

    rng = np.random.default_rng(0)
    folder, star_path, table = _make_folder(tmp_path, rng)
    viewer = make_napari_viewer(show=True)
    img_layers = viewer.open(str(folder), plugin="napari-cryodiag")
    assert len(img_layers) == 1
    img = img_layers[0]
    assert img.data.shape == (N_MIC, BOX, BOX)
    assert img.metadata["cryodiag"]["kind"] == "micrographs"
    assert tuple(img.scale) == (1.0, PSIZE, PSIZE)
    pts = viewer.open(str(star_path), plugin="napari-cryodiag")[0]
    ctrl = picks_layer.get_picks_controller(pts)
    assert ctrl is not None and ctrl.image_layer is img
    assert ctrl.report["n_matched"] == len(table)
    for i in (0, 3, 5, 2):
        ctrl.show_micrograph(i)
        assert ctrl.current_index() == i
        assert viewer.dims.current_step[0] == i
        expected = np.flatnonzero(table["micrograph_name"].str.contains(f"mic_{i:03d}"))
        np.testing.assert_array_equal(np.sort(ctrl.rows_shown()), expected)
        assert len(pts.data) == 3 + i
        np.testing.assert_allclose(pts.data[:, 0], i)
        np.testing.assert_allclose(np.sort(pts.data[:, 2]), np.sort(table["x_px"].to_numpy()[expected]), rtol=1e-5)
        np.testing.assert_allclose(pts.features["rlnAutopickFigureOfMerit"], i)
        # each pick sits on a bright disc of the shown micrograph
        mic = np.asarray(img.data[i])
        vals = [mic[int(round(y)), int(round(x))] for _, y, x in pts.data]
        assert np.min(vals) > 4.0
    # kept / rejected
    kept = np.ones(len(table), bool)
    kept[ctrl.rows_of(2)[:2]] = False
    ctrl.rejected_mode = "hide"
    ctrl.set_kept(kept)
    assert len(pts.data) == 3 + 2 - 2
    ctrl.rejected_mode = "dim"
    ctrl.set_kept(kept)
    assert len(pts.data) == 5
    assert (pts.border_color[:, 3] < 0.5).sum() == 2
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True)
    assert shot.ndim == 3 and shot[..., :3].std() > 5
    from imageio import imwrite  # napari dependency

    imwrite("/tmp/cryodiag_picks_screenshot.png", shot)
