"""Curating exposures in Inspect Picks, as a user does it: File > Open on a simulated RELION or
cryoSPARC project, Inspect Picks from the Plugins menu, the Micrographs tab, a maximum on the CTF
fit resolution set in its spin box: the micrographs whose simulated fit resolution is worse are
dropped with their picks (counts, histogram, table rows, scatter colours), a click on a point or a
row shows its micrograph, Export writes the picks and the kept micrographs' rows, File > Save
writes the same picks. Checked against the project's truth per micrograph.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.viewer


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    from napari_cryodiag.simulate.project import write_sample_project

    base = tmp_path_factory.mktemp("widget_exposures")
    kw = dict(n_micrographs=5, shape=(384, 384), classes=False, refinement=False, postprocess=False)
    return {layout: write_sample_project(base / layout, layout, **kw) for layout in ("relion", "cryosparc")}


def _click(canvas, ax, x, y):
    from matplotlib.backend_bases import MouseEvent

    px, py = ax.transData.transform((x, y))
    MouseEvent("button_press_event", canvas, px, py, button=1)._process()


@pytest.mark.parametrize("layout", ["relion", "cryosparc"])
def test_curate_exposures_in_inspect_picks(make_napari_viewer, qtbot, projects, layout, tmp_path):
    from napari_cryodiag import _reader, _writer
    from napari_cryodiag.io.exposures import read_exposures
    from napari_cryodiag.io.picks import read_table

    sp = projects[layout]
    truth = sp.exposures.set_index("micrograph")
    viewer = make_napari_viewer()
    viewer.open(str(sp.folder), plugin="napari-cryodiag")
    [pts] = [ly for ly in viewer.layers if type(ly).__name__ == "Points"]
    _, w = viewer.window.add_plugin_dock_widget("napari-cryodiag", "Inspect Picks")
    assert w.layer is pts
    n_all = int(truth["n_picks"].sum())
    assert w.result.n_rows == n_all

    # the Micrographs tab: every statistic per micrograph, from the project's CTF job
    w.tabs.setCurrentIndex(1)
    model, e = w.table.model, w.exposures
    qtbot.waitUntil(lambda: model.rowCount() == len(truth), timeout=5000)
    head = list(model.headers)
    for h in ("picks", "kept", "defocus (Å)", "astigmatism (Å)", "CTF fit to (Å)", "CTF FOM", "kept fraction"):
        assert h in head, head
    col = head.index("CTF fit to (Å)") - 1
    got = dict(zip(map(str, model.names), np.asarray(model.values[col], float)))
    np.testing.assert_allclose([got[k] for k in truth.index], truth["max_resolution_A"], rtol=1e-6)
    assert e.x.value == "defocus_A" and e.y.value == "ctf_max_resolution_A"
    assert len(e._points) == len(truth)

    # a maximum on the CTF fit resolution, set in its spin box (the bound switches on by itself)
    v = np.sort(truth["max_resolution_A"].to_numpy())
    limit = float(0.5 * (v[-3] + v[-2]))  # the two worst micrographs go
    worse = sorted(truth.index[truth["max_resolution_A"] > limit])
    n_worse = int(truth.loc[worse, "n_picks"].sum())
    e.stat.value = "ctf_max_resolution_A"
    e.max.value = limit
    assert e.use_max.value
    qtbot.waitUntil(lambda: w.result.n_dropped_with_micrograph == n_worse, timeout=5000)
    sel = w.result
    assert sel.n_kept == n_all - n_worse - sel.n_rejected_by_thresholds
    assert sorted(sel.exposures.names[~sel.exposures.keep]) == worse
    mic = pts.metadata["cryodiag"]["table"]["micrograph"].astype(str).to_numpy()
    assert not pts.metadata["cryodiag"]["kept"][np.isin(mic, worse)].any()  # the viewer's kept picks too
    # the counts and the histogram of kept picks
    w.tabs.setCurrentIndex(0)
    h = w.thresholds
    qtbot.waitUntil(lambda: f"{sel.n_kept:,} of {n_all:,} picks kept" in h.counts.value, timeout=5000)
    insp = w.inspection
    assert insp.hist.counts(sel.kept).sum() + insp.hist.counts(~sel.kept).sum() == insp.hist.counts(
        np.ones(len(sel.kept), bool)).sum()
    assert int(insp.hist.counts(sel.kept).sum()) == int((sel.kept & ~insp.hist.missing).sum())
    # the table marks the dropped rows and says why; the scatter colours them
    w.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: model.dropped.sum() == len(worse), timeout=5000)
    names = [str(n) for n in model.names]
    assert sorted(np.asarray(names)[model.dropped]) == worse
    why = np.asarray(model.values[head_index(model, "dropped because")], dtype=object)
    assert all(why[names.index(k)].startswith("ctf_max_resolution_A") for k in worse)
    kept_col = np.asarray(model.values[head_index(model, "kept")], float)
    assert all(kept_col[names.index(k)] == 0 for k in worse)
    assert f"{len(truth) - len(worse)} of {len(truth)} micrographs kept" in e.summary.value
    # a click on a point shows its micrograph; a click on a row too
    ctrl = w.controller
    row = names.index(worse[0])
    _click(e.canvas.canvas, e._ax, truth.loc[worse[0], "defocus_A"], truth.loc[worse[0], "max_resolution_A"])
    qtbot.waitUntil(lambda: ctrl.key_of_index(ctrl.current_index()) == worse[0], timeout=5000)
    other = names.index(next(k for k in truth.index if k not in worse))
    w.table.view.clicked.emit(w.table.proxy.mapFromSource(model.index(other, 0)))
    assert ctrl.key_of_index(ctrl.current_index()) == names[other]
    assert row != other
    # min above max: refused with a message, nothing changes
    e.use_min.value = True
    e.min.value = limit * 2
    qtbot.waitUntil(lambda: "above its max" in w.status.value, timeout=5000)
    assert w.result.n_dropped_with_micrograph == n_worse
    e.use_min.value = False

    # Export: the picks and the kept micrographs' rows of the CTF table
    w.tabs.setCurrentIndex(4)
    ex = w.export_panel
    assert not ex.micrographs.native.isHidden() and ex.micrographs.value
    assert f"the {len(truth) - len(worse)} kept micrographs" in ex.summary.value
    dest = tmp_path / ("kept.star" if layout == "relion" else "kept.cs")
    written = w.export(dest)
    subset = dest.with_name(dest.stem + ("_micrographs.star" if layout == "relion" else "_exposures.cs"))
    assert subset in written and dest in written
    back = read_table(str(dest))
    assert len(back) == sel.n_kept and not back["micrograph"].astype(str).isin(worse).any()
    assert sorted(read_exposures(subset)["micrograph"].astype(str)) == sorted(set(truth.index) - set(worse))
    side = json.loads(dest.with_name(dest.name + ".cryodiag.json").read_text())
    assert side["counts"]["left_out_by"]["dropped_with_micrograph"] == n_worse
    assert side["exposure_thresholds"] == {"ctf_max_resolution_A": {"min": None, "max": e.max.value}}  # as shown
    # File > Save writes the same picks (the viewer's kept mask, micrographs dropped included)
    meta = {"metadata": pts.metadata, "name": pts.name, "scale": pts.scale}
    saved = _writer.write_points_star(str(tmp_path / "saved.star"), pts.data, meta)
    back2 = read_table(saved[0])
    assert len(back2) == sel.n_kept
    side2 = json.loads((tmp_path / "saved.star.cryodiag.json").read_text())
    assert side2["selection"]["n_dropped_with_micrograph"] == n_worse
    assert _reader is not None

    # Clear: every micrograph back
    w.tabs.setCurrentIndex(1)
    e.clear()
    assert w.result.n_dropped_with_micrograph == 0 and w.result.n_kept == n_all - w.result.n_rejected_by_thresholds


def head_index(model, header: str) -> int:
    return list(model.headers).index(header) - 1
