"""The main job (scripts/demo.sh): napari on the sample data with every widget docked."""

import pytest

pytest.importorskip("napari")

from napari_cryodiag import demo  # noqa: E402


@pytest.mark.viewer
def test_picks_workflow_shows_micrographs_picks_and_histogram(make_napari_viewer):
    viewer = make_napari_viewer()
    _, docks = demo.build_viewer("picks", viewer=viewer)
    kinds = {layer.metadata.get("cryodiag", {}).get("kind") for layer in viewer.layers}
    assert {"micrographs", "picks"} <= kinds
    assert set(docks) == set(demo.WIDGETS)
    inspect = docks["Inspect Picks"].widget()
    assert inspect.inspection is not None  # the histogram is built at once
    counts = inspect.inspection.evaluate()
    # suggested thresholds keep most picks and reject some (the sample has junk and empty picks)
    assert counts.n_total == len(inspect.inspection.table) > 500
    assert 0.5 * counts.n_total < counts.n_kept < counts.n_total


@pytest.mark.viewer
@pytest.mark.parametrize("workflow", ["maps", "classes", "particles"])
def test_other_workflows_compute_their_diagnostics(make_napari_viewer, qtbot, workflow):
    viewer = make_napari_viewer()
    _, docks = demo.build_viewer(workflow, viewer=viewer)
    qtbot.waitUntil(lambda: not demo._is_busy(docks), timeout=120_000)
    widget = docks[demo.WORKFLOWS[workflow][1]].widget()
    if workflow == "maps":
        text = widget.summary.value  # the dock's summary line, as the user reads it
        assert "Resolution" in text and "Å" in text
    elif workflow == "classes":
        summary = widget.classes.sorted_summary()  # the rows the class table shows
        assert len(summary) == 6 and summary["count"].sum() == 600
    else:  # Orientations on the refined particles: uniform poses, no preferred orientation
        assert widget.result is not None and widget.result.n_particles == 1000
        assert "SCF* = " in widget.status.value and "(≥ 0.81)" in widget.status.value
