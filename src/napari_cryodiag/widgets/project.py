"""The Project dock: the jobs of a RELION or cryoSPARC project (newest first) to open one, and a
live session followed while a microscope writes into a project or folder (issue 13).

- **Project**: a folder (a project, one of its job folders, or a plain folder of micrographs and
  picks), or the project the layers came from (File > Open on a project stamps each layer with
  ``metadata["cryodiag"]["project"]``). *Scan* lists every job found
  (:func:`~napari_cryodiag.io.projects.open_project`) with what it holds
  (:func:`~napari_cryodiag.workflows.project.job_holds`), newest first. *Open* opens the chosen
  job as File > Open on its folder does (:func:`~napari_cryodiag.workflows.project.job_view` and
  the reader's :func:`~napari_cryodiag._reader.project_layers`): its picks on their micrographs
  with their CTF, its half maps and mask, its particles, its 2D classes.
- **Follow live**: every *interval* seconds a napari ``thread_worker`` polls a
  :class:`~napari_cryodiag.workflows.live.LiveSource` off the GUI thread; each update is applied
  in the GUI thread: new micrographs extend the micrograph layer's lazy stack (only their headers
  are read), new picks join the picks layer's pick set (``PicksController.append_picks``: the
  current thresholds apply to them; Inspect Picks' histogram, counts and tables follow through
  its ``on_edit`` signal), new CTF rows join the open CTF table. What is loaded already (the
  layers a project was opened into) is not read again (``LiveSource.skip``); a file still being
  written is not read until it is complete. Unticking stops at once (an update that arrives
  afterwards is dropped; following again starts from what the layers hold). Export in Inspect
  Picks writes the set as it is at any time.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, Container, FileEdit, FloatSpinBox, PushButton
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..errors import CryodiagInputError
from ._dock import Dock, note
from ._layers import is_micrographs, is_picks, meta
from ._tables import OpenTable, tables_of

__all__ = ["ProjectWidget"]

COLUMNS = ("job", "type", "holds", "time")


def _under(path, root: Path) -> bool:
    try:
        Path(os.path.abspath(os.fspath(path))).relative_to(root)
        return True
    except ValueError:
        return False


def _when(t: float | None) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t)) if t else ""


def _open_stack(paths):
    """New micrographs as a lazy stack (their headers read)."""
    from ..io.mrc import open_micrograph_stack

    return open_micrograph_stack([os.fspath(p) for p in paths])


def _rescan(src):
    """The followed project's jobs again (None for a plain folder, or when it cannot be read now)."""
    if src.layout == "folder":
        return None
    from ..io.projects import open_project

    try:
        return open_project(src.root)
    except (CryodiagInputError, OSError):
        return None


class ProjectWidget(Dock):
    """The Project dock (see the module docstring)."""

    title = "Project"

    def minimumSizeHint(self):  # noqa: N802 - Qt API
        """As much height as a dock may ask for (the folder, the buttons and two job rows show
        when it is docked under a tall dock), never more: all docks still fit one screen."""
        hint = super().minimumSizeHint()
        hint.setHeight(self.MIN_HEIGHT)
        return hint

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.folder = FileEdit(label="folder", mode="d", tooltip="a RELION or cryoSPARC project, one of its job "
                               "folders, or a folder a session writes micrographs and picks into")
        self.from_layers = PushButton(text="From layers", tooltip="the project the open layers came from")
        self.scan = PushButton(text="Scan", tooltip="list the project's jobs, newest first")
        self.open = PushButton(text="Open job", tooltip="open the chosen job's micrographs, picks, CTF, maps, "
                               "particles or classes (double-click a row does the same)")
        self.inputs = Container(widgets=[self.folder])
        self.track(self.inputs)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        head = self.table.horizontalHeader()
        for i, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Interactive,
                                  QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.ResizeToContents)):
            head.setSectionResizeMode(i, mode)
        self.table.setColumnWidth(1, 90)
        head.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())  # wrapped 'holds' rows
        self.table.setMinimumHeight(120)
        self.follow = CheckBox(text="Follow live", value=False,
                               tooltip="poll the folder while a session writes into it: new micrographs, picks "
                               "and CTF join the open layers")
        self.interval = FloatSpinBox(label="every (s)", value=5.0, min=0.5, max=3600.0, step=0.5)
        self.live = Container(widgets=[self.follow, self.interval], layout="horizontal", labels=True)
        self.live_status = note()
        self.add(self.inputs)
        self.add(self.action_row(self.from_layers, self.scan, self.open))
        self.add(self.table, stretch=1)
        self.add(self.live)
        self.add(self.live_status)
        self.add(self.status)

        self.project = None
        self.jobs: list = []
        self.source = None  #: the LiveSource being followed
        self._worker = None
        self._stop: threading.Event | None = None
        self._layers: dict = {}  # "micrographs" / "picks" -> the layer the session grows
        self._picks_job: str | None = None
        self.arrived = {"micrographs": 0, "picks": 0, "ctf": 0, "polls": 0}

        self.from_layers.changed.connect(lambda *_: self.use_layers_project())
        self.scan.changed.connect(lambda *_: self.scan_project())
        self.open.changed.connect(lambda *_: self.open_job())
        self.table.cellDoubleClicked.connect(lambda row, _col: (self.table.selectRow(row), self.open_job()))
        self.follow.changed.connect(self._on_follow)
        self.on_layers_changed()

    # ------------------------------------------------------------------ the project
    def folder_path(self) -> Path | None:
        v = str(self.folder.value or "")
        return None if v in ("", ".") else Path(os.path.abspath(v))

    def layers_project(self) -> Path | None:
        """The project the newest layer opened from a project came from."""
        from ..io.projects import project_root

        for ly in reversed(list(self.viewer.layers)):
            md = meta(ly)
            if md.get("project"):
                return Path(md["project"])
        for ly in reversed(list(self.viewer.layers)):
            md = meta(ly)
            for p in (md.get("paths") or [])[:1] + ([md["path"]] if md.get("path") else []):
                try:
                    found = project_root(p) if p else None
                except OSError:
                    found = None
                if found is not None:
                    return found[1]
        return None

    def use_layers_project(self) -> bool:
        root = self.layers_project()
        if root is None:
            self.report("no open layer came from a RELION or cryoSPARC project", "warning")
            return False
        self.folder.value = str(root)
        return self.scan_project()

    def on_layers_changed(self) -> None:
        if self.folder_path() is None and not self.follow.value:
            root = self.layers_project()
            if root is not None:
                self.folder.value = str(root)
                self.scan_project(quiet=True)

    def scan_project(self, quiet: bool = False) -> bool:
        """List the jobs of the folder's project, newest first."""
        from ..io.projects import is_project, open_project

        path = self.folder_path()
        self.project, self.jobs = None, []
        self.table.setRowCount(0)
        if path is None:
            if not quiet:
                self.report("choose a project folder first", "warning")
            return False
        if not is_project(path):
            self.status.value = f"{path.name}: a plain folder (no RELION or cryoSPARC jobs): Follow live reads " \
                                "its micrographs, pick files and CTF table"
            return False
        try:
            project = open_project(path)
        except CryodiagInputError as err:
            self.error(err)
            return False
        self._show_project(project)
        return True

    def _show_project(self, project) -> None:
        """List ``project``'s jobs (the chosen job stays chosen when it is still there)."""
        if self.project is not None and Path(self.project.root) != Path(project.root) and self.jobs:
            return  # a session followed elsewhere does not replace the jobs shown
        chosen = self.selected_job.id if self.selected_job is not None else None
        self.project = project
        self.jobs = list(project.jobs)  # newest first (the highest job number: the order the project made them)
        self._fill()
        if chosen in self.job_ids:
            self.select_job(chosen)
        what = {"relion": "RELION", "cryosparc": "cryoSPARC"}.get(project.layout, project.layout)
        self.status.value = f"{what} project {project.root.name}: {len(self.jobs)} jobs, newest first"

    def _fill(self) -> None:
        from ..workflows.project import job_holds

        t = self.table
        t.setRowCount(len(self.jobs))
        focus = set(self.project.focus) if self.project is not None else set()
        for r, job in enumerate(self.jobs):
            when = job.time
            if when is None:
                try:
                    when = job.folder.stat().st_mtime
                except OSError:
                    when = None
            kind = job.type if job.type and job.type not in job.id else ""
            cells = (job.id, kind, job_holds(job), _when(when))
            tip = "\n".join(job.describe(self.project.root) + ([job.label] if job.label else []))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                t.setItem(r, c, item)
        # the type column only when the ids do not say it (cryoSPARC's J3 is a blob_picker_gpu)
        t.setColumnHidden(1, not any(t.item(r, 1).text() for r in range(t.rowCount())))
        t.resizeRowsToContents()
        if self.jobs:
            first = next((i for i, j in enumerate(self.jobs) if j.id in focus), 0)
            t.selectRow(first)

    @property
    def job_ids(self) -> list[str]:
        """The jobs as listed (newest first)."""
        return [j.id for j in self.jobs]

    def select_job(self, job_id: str) -> None:
        ids = self.job_ids
        if job_id not in ids and self.project is not None:
            j = self.project.job(job_id)
            job_id = j.id if j is not None else job_id
        self.table.selectRow(ids.index(job_id))

    @property
    def selected_job(self):
        rows = self.table.selectionModel().selectedRows()
        return self.jobs[rows[0].row()] if rows and self.jobs else None

    def open_job(self, job=None) -> list:
        """Open ``job`` (default: the chosen one) as File > Open on its folder does; returns the
        layers added."""
        from napari.layers import Layer

        from .._reader import NO_LAYER, project_layers
        from ..workflows.project import job_view
        from .picks_layer import link_viewer

        job = job if job is not None else self.selected_job
        if job is None or self.project is None:
            self.report("scan a project and choose a job first", "warning")
            return []
        if isinstance(job, str):
            job = self.project.job(job)
        try:
            out = project_layers(job_view(self.project, job))
        except CryodiagInputError as err:
            self.error(err)
            return []
        added = []
        for ld in ([] if out is NO_LAYER else out):
            if ld[0] is None:
                continue
            added.append(self.viewer.add_layer(Layer.create(*ld)))
        if any(is_picks(ly) for ly in added):
            link_viewer(self.viewer)
            self.viewer.layers.selection.active = next(ly for ly in added if is_picks(ly))
        self.reset_choices()
        self.status.value = f"opened {job.id}: " + (", ".join(ly.name for ly in added) if added else
                                                     "tables only (see the other docks' choosers)")
        return added

    # ------------------------------------------------------------------ following
    def _on_follow(self, on) -> None:
        if on:
            if not self.start_following():
                self.follow.value = False
        else:
            self.stop_following()

    def _make_source(self):
        """A LiveSource on the folder, told what the open layers hold already."""
        from ..workflows.live import LiveSource

        path = self.folder_path()
        if path is None:
            path = self.layers_project()
            if path is None:
                raise CryodiagInputError("choose a folder to follow")
            self.folder.value = str(path)
        src = LiveSource(path)
        self._picks_job = None
        if src.layout != "folder":
            from ..workflows.project import open_project, pick_source

            ps = pick_source(open_project(src.root))
            self._picks_job = ps.job.id if ps is not None else None
        self._layers = {}
        self.arrived = {"micrographs": 0, "picks": 0, "ctf": 0, "polls": 0}
        mics = self._find_layer("micrographs", src)
        picks = self._find_layer("picks", src)
        files: list = []
        kw: dict = {}
        if mics is not None:
            self._layers["micrographs"] = mics
            kw["micrographs"] = list(meta(mics).get("paths") or [])
            files += kw["micrographs"]
        if picks is not None:
            from .picks_layer import pickset_of

            self._layers["picks"] = picks
            table = pickset_of(picks).table
            kw["picks"] = table
            sources = list(table.attrs.get("sources") or [])
            if "source_file" in table.columns:
                sources += [str(s) for s in pd.unique(table["source_file"].astype(str))]
            files += [s for s in dict.fromkeys(sources) if s and not s.lower().endswith(".cs") and os.path.isfile(s)]
        ctf = self._ctf_table(src)
        if ctf is not None and (mics is not None or picks is not None):
            kw["exposures"] = ctf.table
        if kw:
            src.skip(files=files, **kw)
        return src

    def _find_layer(self, which: str, src):
        """The open layer the session grows: the micrographs (picks) opened from this project (for
        picks: of the job the session follows), or under this folder."""
        test = is_micrographs if which == "micrographs" else is_picks
        for ly in reversed(list(self.viewer.layers)):
            if not test(ly):
                continue
            md = meta(ly)
            if src.layout != "folder":
                if md.get("project") and Path(md["project"]) == src.root and (
                        which == "micrographs" or md.get("job") in (None, self._picks_job)):
                    return ly
            else:
                paths = md.get("paths") or ([md["path"]] if md.get("path") else [])
                if paths and all(_under(p, src.root) for p in paths[:3]):
                    return ly
        return None

    def _ctf_table(self, src):
        for item in reversed(tables_of(self.viewer).of_kind("ctf")):
            if item.path and _under(item.path, src.root):
                return item
        return None

    def start_following(self) -> bool:
        """Follow the folder in a thread, polling every ``interval`` s (the first poll at once)."""
        from napari.qt.threading import thread_worker

        self.stop_following(quiet=True)
        try:
            src = self._make_source()
        except CryodiagInputError as err:
            self.error(err)
            return False
        self.source = src
        stop = self._stop = threading.Event()
        interval = float(self.interval.value)

        def job():  # the file work in this thread: the poll, the new micrographs' headers, the jobs again
            while not stop.is_set():
                up = src.poll()
                stack = _open_stack(up.micrographs) if up.micrographs else None
                project = _rescan(src) if up else None
                yield src, up, stack, project
                if stop.wait(interval):
                    return

        worker = thread_worker(job, start_thread=False, ignore_errors=True)()
        worker.yielded.connect(self._on_yielded)
        worker.errored.connect(lambda err: (self.error(f"following {src.path.name}: {type(err).__name__}: {err}"),
                                            setattr(self.follow, "value", False)))
        self._worker = worker
        self.live_status.value = f"following {src.path} every {interval:g} s …"
        worker.start()
        return True

    def stop_following(self, quiet: bool = False) -> None:
        """Stop at once: the worker is told to end and any update still on its way is dropped."""
        if self._stop is not None:
            self._stop.set()
        if self._worker is not None:
            self._worker.quit()
        was = self.source is not None
        self._worker, self._stop, self.source = None, None, None
        if was and not quiet:
            self.live_status.value = f"stopped; {self._totals()}"

    def _on_yielded(self, value) -> None:
        src, up, stack, project = value
        if src is not self.source:  # stopped (or restarted) meanwhile
            return
        self.apply_update(up, stack=stack)
        if project is not None:
            self._show_project(project)

    def poll_now(self):
        """One poll in the GUI thread (the source made on first use) and its update applied;
        returns the update (scripts and tests)."""
        if self.source is None:
            self.source = self._make_source()
        up = self.source.poll()
        self.apply_update(up)
        if up:
            project = _rescan(self.source)
            if project is not None:
                self._show_project(project)
        return up

    # ------------------------------------------------------------------ applying an update
    def apply_update(self, up, stack=None) -> None:
        """Apply one poll's update in the GUI thread (``stack``: its micrographs opened already)."""
        src = self.source
        self.arrived["polls"] += 1
        try:
            if up.micrographs:
                self._add_micrographs(src, stack if stack is not None else _open_stack(up.micrographs))
            if up.exposures is not None and len(up.exposures):
                self._add_ctf(src, up.exposures)
            if up.n_picks:
                self._add_picks(src, up.picks)
        except CryodiagInputError as err:
            self.error(err)
            self.follow.value = False
            return
        parts = []
        if up.micrographs:
            parts.append(f"+{len(up.micrographs)} micrographs")
        if up.n_picks:
            parts.append(f"+{up.n_picks:,} picks")
        if up.exposures is not None and len(up.exposures):
            parts.append(f"+CTF of {len(up.exposures)}")
        if up.pending:
            parts.append(f"{len(up.pending)} file{'s' if len(up.pending) != 1 else ''} still being written")
        if src is not None and src.waiting:
            parts.append(f"{src.waiting:,} picks waiting for their CTF")
        head = ", ".join(parts) if parts else "nothing new"
        a = self.arrived
        since = f"since following: +{a['micrographs']} micrographs, +{a['picks']:,} picks. " \
            if a["micrographs"] or a["picks"] else ""
        self.live_status.value = f"{time.strftime('%H:%M:%S')} {head}. {since}{self._totals()}"
        for n in up.notes:
            self.report(n, "warning")

    def _totals(self) -> str:
        mics = self._layers.get("micrographs")
        picks = self._layers.get("picks")
        n_m = int(mics.data.shape[0]) if mics is not None and mics in self.viewer.layers and mics.ndim == 3 else \
            (1 if mics is not None else 0)
        n_p = len(meta(picks)["pickset"].table) if picks is not None and "pickset" in meta(picks) else 0
        return f"Open: {n_m} micrographs, {n_p:,} picks"

    def _add_micrographs(self, src, new) -> None:
        from napari.layers import Layer

        from .layer_data import micrograph_layer_data

        self.arrived["micrographs"] += len(new)
        layer = self._layers.get("micrographs")
        if layer is not None and layer not in self.viewer.layers:
            layer = None
        if layer is None:
            md = {"kind": "micrographs", "paths": list(new.paths), "keys": list(new.keys), "names": list(new.names),
                  "pixel_size_A": new.pixel_size_A, "project": str(src.root) if src.layout != "folder" else None,
                  "live": True}
            name = f"micrographs ({src.root.name}, live)"
            layer = self.viewer.add_layer(Layer.create(*micrograph_layer_data(new.data, new.pixel_size_A, md, name)))
            self._layers["micrographs"] = layer
        else:
            self._extend_micrographs(layer, new)
        ctrl = self._controller()
        if ctrl is not None:  # the new micrographs' keys: their picks (arrived before them, or next) find them
            ctrl.bind_image(self._layers["micrographs"], notify=False)

    def _extend_micrographs(self, layer, new) -> None:
        """Append ``new`` (a MicrographStack) to ``layer``'s lazy stack: the raw stack and the
        displayed (filtered) view; the old micrographs are not read again."""
        import dask.array as da

        from ..workflows.micrographs import display_stack
        from .display import display_settings

        md = meta(layer)
        raw = md.get("raw")
        if raw is None or np.ndim(raw) == 2:  # one micrograph: a stack of it (lazily, from its file)
            from ..io.mrc import open_micrograph_stack

            raw = open_micrograph_stack(list(md.get("paths") or [])).data
        if tuple(raw.shape[1:]) != tuple(new.data.shape[1:]):
            raise CryodiagInputError(f"new micrographs are {new.data.shape[2]}x{new.data.shape[1]} px, the open ones "
                                     f"{raw.shape[2]}x{raw.shape[1]}", new.paths[0])
        raw = da.concatenate([raw if isinstance(raw, da.Array) else da.from_array(raw, chunks=(1,) + raw.shape[1:]),
                              new.data], axis=0)
        for k, extra in (("paths", new.paths), ("keys", new.keys), ("names", new.names)):
            md[k] = list(md.get(k) or []) + list(extra)
        md["raw"] = raw
        if layer.ndim == 2:  # a 2D layer cannot become a stack: replaced by one, in place in the list
            from napari.layers import Layer

            from .layer_data import micrograph_layer_data

            md["kind"] = "micrographs"
            index = list(self.viewer.layers).index(layer)
            data = micrograph_layer_data(raw, md.get("pixel_size_A"), {k: v for k, v in md.items() if k != "raw"},
                                         layer.name, filtered=display_settings(layer).enabled)
            new_layer = Layer.create(*data)
            self.viewer.layers.remove(layer)
            self.viewer.layers.insert(index, new_layer)
            self._layers["micrographs"] = new_layer
            return
        settings = display_settings(layer)
        data, _ = display_stack(raw, md.get("pixel_size_A"), settings, token=f"{layer.name}-{id(raw)}")
        layer.data = data

    def _controller(self):
        from .picks_layer import get_picks_controller

        layer = self._layers.get("picks")
        if layer is None or layer not in self.viewer.layers:
            return None
        return get_picks_controller(layer)

    def _add_picks(self, src, table: pd.DataFrame) -> None:
        from napari.layers import Layer

        from .layer_data import picks_layer_data
        from .picks_layer import link_viewer

        self.arrived["picks"] += len(table)
        ctrl = self._controller()
        if ctrl is not None:
            ctrl.append_picks(table)
            return
        job = self._picks_job
        name = f"picks ({job or src.root.name}, live)"
        data = picks_layer_data(table, str(src.path), name=name)
        data[1]["metadata"]["cryodiag"].update(project=str(src.root) if src.layout != "folder" else None, job=job,
                                               live=True)
        layer = self.viewer.add_layer(Layer.create(*data))
        self._layers["picks"] = layer
        link_viewer(self.viewer)
        mics = self._layers.get("micrographs")
        ctrl = self._controller()
        if ctrl is not None and mics is not None and ctrl.image_layer is not mics:
            ctrl.bind_image(mics, notify=False)

    def _add_ctf(self, src, rows: pd.DataFrame) -> None:
        from ..workflows.live import concat_tables

        self.arrived["ctf"] += len(rows)
        item = self._ctf_table(src)
        if item is None:
            path = src._ctf_path if src._ctf_path is not None else src.root
            tables_of(self.viewer).add(OpenTable(name=f"{Path(path).name} (live)", kind="ctf", path=str(path),
                                                 table=src.exposures))
            return
        item.table = rows if item.table is None else concat_tables([item.table, rows])
        tables_of(self.viewer).changed.emit()

    def closeEvent(self, event):  # noqa: N802 - Qt API
        self.stop_following(quiet=True)
        super().closeEvent(event)
