"""The shared parts of the dock widgets: forms split over tabs, choosers, open tables from a
file picker, the volume filter, and errors of a job reported (not raised in the GUI thread)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.errors import CryodiagInputError

pytestmark = pytest.mark.viewer


@dataclasses.dataclass
class _Opts:
    radius_px: Annotated[float, {"min": 0.0, "max": 100.0, "label": "radius (px)", "special": "auto"}] = 0.0
    n: Annotated[int, {"min": 1, "max": 9, "label": "n"}] = 3
    lowpass_A: float | None = None


def test_forms_split_over_tabs_merge_back(qtbot):
    from napari_cryodiag.widgets._forms import options_form

    a = options_form(_Opts, include=("radius_px",))
    b = options_form(_Opts, exclude=("radius_px",))
    assert [w.name for w in a] == ["radius_px"] and [w.name for w in b] == ["n", "lowpass_A"]
    assert a.radius_px.native.specialValueText() == "auto" and a.radius_px.native.text() == "auto"
    a.radius_px.value = 12.5
    b.n.value = 7
    assert a.field_values() == {"radius_px": 12.5}
    assert b.field_values() == {"n": 7, "lowpass_A": None}
    assert _Opts(**a.field_values(), **b.field_values()) == _Opts(radius_px=12.5, n=7)
    assert a.value == _Opts(radius_px=12.5)  # the fields a form does not show keep their defaults


def test_choosers_name_the_empty_choice_first(make_napari_viewer):
    from napari_cryodiag.widgets._layers import chooser, is_volume, layer_choices, volume_choices

    viewer = make_napari_viewer()
    c = chooser(layer_choices(viewer, volume_choices), label="map", none="no map")
    assert c.value is None and c.native.itemText(0) == "no map"
    vol = viewer.add_image(np.zeros((16, 16, 16), np.float32), name="a volume")
    stack = viewer.add_image(np.zeros((4, 64, 64), np.float32), name="four images")
    c.reset_choices()
    assert [c.native.itemText(i) for i in range(c.native.count())] == ["no map", "a volume"]
    assert is_volume(vol) and not is_volume(stack)  # a stack of 2D images is not a map
    vol.name = "renamed"
    c.reset_choices()
    c.value = vol
    assert c.native.currentText() == "renamed"


def test_open_table_file_joins_the_open_tables(make_napari_viewer, shared_data, tmp_path):
    from napari_cryodiag.widgets._tables import open_table_file, table_choices, tables_of

    viewer = make_napari_viewer()
    d = shared_data / "relion13-tutorial" / "Class2D"
    p = open_table_file(viewer, d / "manual_it025_data.star", "particles")
    m = open_table_file(viewer, d / "manual_it025_model.star", "relion_model")
    pp = open_table_file(viewer, shared_data / "relion-postprocess" / "postprocess.star", "postprocess")
    assert len(p.table) == 1099 and m.data["model"].pixel_size_A == pytest.approx(3.54)
    assert "fsc" in pp.data and list(tables_of(viewer)) == [p, m, pp]
    assert [t for _, t in table_choices(viewer, "relion_model")()] == [m]
    with pytest.raises(CryodiagInputError, match="missing.star"):
        open_table_file(viewer, tmp_path / "missing.star", "particles")
    with pytest.raises(CryodiagInputError, match="manual_it025_data.star"):
        open_table_file(viewer, d / "manual_it025_data.star", "postprocess")


def test_dock_reports_job_errors_and_follows_new_tables(make_napari_viewer, qtbot):
    from magicgui.widgets import Container

    from napari_cryodiag.widgets._dock import Dock, JobControls
    from napari_cryodiag.widgets._layers import chooser
    from napari_cryodiag.widgets._tables import OpenTable, table_choices, tables_of

    viewer = make_napari_viewer()
    dock = Dock(viewer)
    c = chooser(table_choices(viewer, "particles"), label="particles", none="none")
    dock.track(Container(widgets=[c]))
    first = tables_of(viewer).add(OpenTable("a", "particles", table=pd.DataFrame({"x": [1]})))
    assert c.value is first  # a table just opened is chosen
    c.value = None
    tables_of(viewer).add(OpenTable("b", "ctf", table=pd.DataFrame({"x": [1]})))
    assert c.value is None  # another kind: the choice stays

    def job():
        yield (0, 1)
        raise CryodiagInputError("the problem", "/data/file.star")

    controls = JobControls()
    worker = dock.run(job, controls=controls, description="a job")
    assert worker is not None and dock.run(job) is None  # one job at a time
    qtbot.waitUntil(lambda: not dock.busy, timeout=10_000)  # (a signal may have come before a wait began)
    dock.wait()
    assert "a job: /data/file.star: the problem" == dock.status.value
    assert not dock.busy and controls.native.isHidden()


def test_quiet_label_wraps_at_its_width_and_a_new_text_repaints_only_itself(qtbot):
    """A QuietLabel in a tab page: a long text wraps at the page's width (never widens it), the
    height follows the number of lines, and a new text of the same height asks nothing of the
    page's layout (a QTabWidget repaints its whole page on a layout request)."""
    from magicgui.widgets import Container, Label
    from qtpy.QtCore import QEvent, QObject
    from qtpy.QtWidgets import QTabWidget

    from napari_cryodiag.widgets._dock import QuietLabel

    lab = QuietLabel("short")
    page = Container(widgets=[Label(value="above"), lab, Label(value="below")])
    tabs = QTabWidget()
    tabs.addTab(page.native, "tab")
    tabs.resize(240, 400)
    qtbot.addWidget(tabs)
    tabs.show()
    qtbot.waitExposed(tabs)
    one_line = lab.text_widget.height()
    assert lab.value == "short" and one_line > 0
    lab.value = "a long sentence that needs several lines in a narrow dock " * 4
    qtbot.waitUntil(lambda: lab.text_widget.height() > 2 * one_line, timeout=2000)
    assert lab.text_widget.width() <= page.native.width() and tabs.width() == 240
    assert "several lines" in lab.value

    class Requests(QObject):
        n = 0

        def eventFilter(self, obj, ev):  # noqa: N802 - Qt API
            if ev.type() == QEvent.Type.LayoutRequest and obj in (page.native, tabs):
                Requests.n += 1
            return False

    lab.value = "kept 9 of 1,000,000 picks"  # one line again: the page lays out once
    qtbot.waitUntil(lambda: lab.text_widget.height() == one_line, timeout=2000)
    f = Requests()
    page.native.installEventFilter(f)
    tabs.installEventFilter(f)
    for k in range(5):  # one line each: the label alone
        lab.value = f"kept {k:,} of 1,000,000 picks"
        qtbot.wait(5)
    assert Requests.n == 0 and lab.value == "kept 4 of 1,000,000 picks"
    assert lab.text_widget.height() == one_line


def test_canvas_readout_follows_the_mouse_and_repaints_only_itself(qtbot):
    """The plot toolbar's cursor readout shows the data coordinates under the mouse, and a mouse
    move over the plot (a threshold line dragged) asks nothing of the tab page's layout."""
    from matplotlib.backend_bases import MouseEvent
    from qtpy.QtCore import QEvent, QObject
    from qtpy.QtWidgets import QTabWidget, QVBoxLayout, QWidget

    from napari_cryodiag.widgets._canvas import MplCanvas

    page = QWidget()
    c = MplCanvas(page, figsize=(3, 2))
    QVBoxLayout(page).addWidget(c)
    tabs = QTabWidget()
    tabs.addTab(page, "plot")
    tabs.resize(320, 360)
    qtbot.addWidget(tabs)
    with c.plotting() as fig:
        ax = fig.add_subplot(111)
        ax.plot([0, 10], [0, 5])
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 5)
    tabs.show()
    qtbot.waitExposed(tabs)
    c.draw_now()
    qtbot.wait(50)  # the first layout and paint done

    class Requests(QObject):
        n = 0

        def eventFilter(self, obj, ev):  # noqa: N802 - Qt API
            if ev.type() == QEvent.Type.LayoutRequest and obj in (page, tabs):
                Requests.n += 1
            return False

    f = Requests()
    page.installEventFilter(f)
    tabs.installEventFilter(f)
    for xd in (2.0, 4.0, 6.0, 8.0):
        px, py = ax.transData.transform((xd, 2.5))
        c.canvas.callbacks.process("motion_notify_event", MouseEvent("motion_notify_event", c.canvas, px, py))
        qtbot.wait(5)
    text = c.toolbar.readout.text()
    assert "8.0" in text and "2.5" in text, text
    assert Requests.n == 0


def test_canvas_toolbar_icons_are_drawn_once_not_at_every_paint(qtbot, monkeypatch):
    """The plot toolbar's icons are pictures made once (per palette): painting the toolbar reads
    no icon file (matplotlib's icons read and render their SVG at every paint)."""
    import pathlib

    from napari_cryodiag.widgets._canvas import MplCanvas

    c = MplCanvas(figsize=(3, 2), theme="dark")
    qtbot.addWidget(c)
    c.show()
    qtbot.waitExposed(c)
    icons = [a.icon() for a in c.toolbar.actions() if not a.icon().isNull()]
    assert len(icons) >= 7 and all(not i.pixmap(16, 16).isNull() for i in icons)
    reads = []
    read_bytes = pathlib.Path.read_bytes
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: (reads.append(self), read_bytes(self))[1])
    for _ in range(3):
        img = c.toolbar.grab().toImage()
    assert reads == [] and not img.isNull()
    # something is drawn where the first button is (an icon, not an empty button)
    px = {img.pixel(x, y) for x in range(2, 22) for y in range(2, min(22, img.height()))}
    assert len(px) > 2
