"""npe2 reader: MRC micrographs, maps, stacks, folders of micrographs, STAR/.cs/.cbox tables.

``get_reader(path)`` returns a reader only for what this plugin reads; errors in a file are
shown as a napari notification naming the file and the problem (the reader then returns None).

What becomes what (docs/ARCHITECTURE.md, "The napari face"):

- 2D micrograph, folder / glob / list of 2D MRC files -> ONE image layer (a lazy dask stack,
  axis 0 = micrograph), shown binned and low-passed (20 Å) so particles are visible; the raw
  stack is in ``metadata["cryodiag"]["raw"]`` (scoring reads it; the Micrograph display dock
  turns the filter off);
- 3D map -> image with voxel size as ``scale`` and the header origin as ``translate`` (its value
  range in the metadata: a map valued in [0, 1] is offered as a mask);
- MRCS (or an MRC whose header says image stack) -> stack image layer;
- STAR / .cs / .cbox with coordinates -> a picks layer (Points ``(micrograph, y, x)`` in pixels,
  ``scale`` = pixel size) holding only the shown micrograph's picks
  (:mod:`napari_cryodiag.widgets.picks_layer`); without open micrographs, an empty canvas of the
  micrographs' size stands in for them so every micrograph is reachable;
- several pick files opened together (File > Open with several files, drag and drop) -> one pick
  set, as opening their folder does;
- tables without coordinates (CTF tables, particle sets without picks, ``model.star``,
  ``postprocess.star``) -> no layer: they join the viewer's open tables
  (:mod:`napari_cryodiag.widgets._tables`) that the dock widgets offer, with a notification;
- a RELION or cryoSPARC project folder, or a job (type) folder of one
  (:func:`napari_cryodiag.io.projects.is_project`) -> what
  :func:`napari_cryodiag.workflows.project.project_view` chooses: the micrographs the newest picks
  are on as ONE stack, those picks (with their micrograph's CTF) as one pick set, the CTF table in
  the open tables, ``postprocess.star`` / ``model.star`` in the open tables, and the half maps and
  mask as map layers when there are no micrographs to show (a map's z axis would take over the
  micrograph slider: opening the PostProcess/refinement job folder shows them); a notification
  says what came from which job. Nothing is written into the project.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import CryodiagInputError
from .widgets.layer_data import (  # noqa: F401 - the reader's layer builders (also used by tests)
    default_point_size_px,
    micrograph_layer_data,
    numeric_features,
    picks_layer_data,
    placeholder_layer_data,
)

MAP_SUFFIXES = (".mrc", ".map", ".rec", ".st", ".ali")
STACK_SUFFIXES = (".mrcs",)
TABLE_SUFFIXES = (".star", ".cs", ".cbox")
#: the reader's sentinel for "read, but no layer to add" (napari's convention)
NO_LAYER = [(None,)]


def _notify(level: str, msg: str) -> None:
    try:
        from napari.utils import notifications

        {"error": notifications.show_error, "warning": notifications.show_warning,
         "info": notifications.show_info}[level](msg)
    except Exception:  # pragma: no cover - no napari  # noqa: BLE001
        import warnings

        warnings.warn(msg, stacklevel=3)


def _notify_error(msg: str) -> None:
    _notify("error", msg)


def _suffix(p: str) -> str:
    return Path(p).suffix.lower()


def _is_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def get_reader(path):
    """npe2 reader hook: a callable for the paths this plugin reads, else None (decided from the
    names alone; the file is looked at and parsed once, by :func:`napari_cryodiag.io.open_path`)."""
    if isinstance(path, (list, tuple)):
        paths = [os.fspath(p) for p in path]
        if not paths:
            return None
        sufs = {_suffix(p) for p in paths}
        if sufs <= set(MAP_SUFFIXES) and all(os.path.isfile(p) for p in paths):
            return _reader_of(lambda: _read(paths))
        if sufs <= set(TABLE_SUFFIXES):
            return _reader_of(lambda: _read(paths))
        return None
    p = os.fspath(path)
    if (os.path.isdir(p) or os.path.basename(p) == "default_pipeline.star") and _is_project(p):
        return _reader_of(lambda: _read_project(p))
    if os.path.isdir(p):
        names = [n.lower() for n in os.listdir(p)]
        if any(n.endswith(".mrc") for n in names) or any(n.endswith(TABLE_SUFFIXES) for n in names):
            return _reader_of(lambda: _read(p))
        return None
    if _is_glob(p):
        if _suffix(p) in MAP_SUFFIXES or _suffix(p) in TABLE_SUFFIXES:
            return _reader_of(lambda: _read(p))
        return None
    suf = _suffix(p)
    if suf in MAP_SUFFIXES or suf in STACK_SUFFIXES or suf in TABLE_SUFFIXES:
        return _reader_of(lambda: _read(p))
    return None


def _read(source):
    """Open ``source`` once (:func:`napari_cryodiag.io.open_path`: a bounded look says what it is,
    one parse gives a typed result) and map the result to layers."""
    from .io.opened import open_path

    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else os.fspath(source[0])
    v = _current_viewer()
    tables = _suffix(label) in TABLE_SUFFIXES or (not isinstance(source, (list, tuple)) and os.path.isdir(label)
                                                  and not any(n.lower().endswith(".mrc") for n in os.listdir(label)))
    if v is not None and tables:  # several files of one File > Open become one pick set: the batch waits
        from .widgets.picks_layer import note_reading

        note_reading(v)
    res = open_path(source)
    fname = Path(label.rstrip("/")).name
    for note in res.notes:
        _notify("warning", f"cryodiag: {fname}: {note}")
    return _layers_of(res, source, label, fname, v)


def _layers_of(res, source, label: str, fname: str, v):
    """The layers of one :func:`~napari_cryodiag.io.open_path` result (tables without
    coordinates join the open tables: :data:`NO_LAYER`)."""
    if res.kind == "micrograph":
        return [_micrograph_layer(res.path, res.image)]
    if res.kind == "micrographs":
        return [_micrograph_stack_layer(source, res.stack)]
    if res.kind == "stack":
        return [_stack_layer(res.path, res.stack)]
    if res.kind == "map":
        return [_map_layer(res.path, res.map)]
    if res.kind == "postprocess":
        pp = {"general": res.general, "fsc": res.fsc, "guinier": res.guinier}
        resolution = res.general.get("rlnFinalResolution")
        _register("postprocess", fname, res.path, data=pp)
        _notify("info", f"cryodiag: {fname}: RELION postprocess (FSC, Guinier"
                + (f"; final resolution {resolution:.2f} Å" if isinstance(resolution, (int, float)) else "")
                + "): choose it in Map validation to plot it")
        return NO_LAYER
    if res.kind == "model":
        _register("relion_model", fname, res.path, data={"model": res.model})
        _notify("info", f"cryodiag: {fname}: a RELION model.star (class distribution, resolution, noise "
                "spectra): choose it in Classes or Noise model")
        return NO_LAYER
    table = res.table
    if res.kind in ("ctf", "particles"):
        _register(res.kind, fname, label, table=table)
        what = ("a CTF table of {n} micrographs: Inspect Picks takes their defocus for calibration"
                if res.kind == "ctf" else "{n} particles without pick coordinates: choose them in Classes or Orientations")
        _notify("info", f"cryodiag: {fname}: " + what.format(n=f"{len(table):,}"))
        return NO_LAYER
    out = [picks_layer_data(table, label, name=fname)]
    if v is not None and not _has_micrographs(v, table):
        out.insert(0, placeholder_layer_data(table, fname))
    _link_current_viewer()
    return out


def _is_project(p: str) -> bool:
    from .io.projects import is_project

    return is_project(p)


def _read_project(path: str):
    """A project (module docstring): the layers of :func:`~napari_cryodiag.workflows.project.project_view`."""
    from .workflows.project import open_project, project_view

    return project_layers(project_view(open_project(path)))


def project_layers(view):
    """The layers (LayerData) of a :class:`~napari_cryodiag.workflows.project.ProjectView` (File >
    Open on a project or a job folder, the Project dock's Open on a chosen job); the tables without
    layers join the current viewer's open tables. Each layer's ``metadata["cryodiag"]`` says the
    ``project`` (its folder) and the ``job`` it came from."""
    from .io.opened import open_path
    from .workflows.project import read_exposures, read_particles, read_pick_source

    v = _current_viewer()
    root = view.project.root
    out = []

    def stamp(layer_data, job):
        layer_data[1].setdefault("metadata", {}).setdefault("cryodiag", {}).update(
            project=str(root), layout=view.project.layout, job=job.id if job is not None else None)
        return layer_data

    if view.micrographs:
        res = open_path([str(m) for m in view.micrographs])
        data, kwargs, kind = (_micrograph_layer(res.path, res.image) if res.kind == "micrograph"  # only one
                              else _micrograph_stack_layer(res.path, res.stack))
        kwargs["name"] = f"micrographs ({view.micrographs_job.id})"
        out.append(stamp((data, kwargs, kind), view.micrographs_job))
    exposures = None
    if view.picks is not None:
        picks = read_pick_source(view.picks)
        for note in picks.notes:
            _notify("warning", f"cryodiag: {view.picks.job.id}: {note}")
        exposures = picks.exposures
        out.append(stamp(picks_layer_data(picks.table, str(view.picks.picks.path), name=f"picks ({view.picks.job.id})"),
                         view.picks.job))
        if not view.micrographs and v is not None and not _has_micrographs(v, picks.table):
            out.insert(0, placeholder_layer_data(picks.table, f"picks ({view.picks.job.id})"))
    if view.ctf is not None:
        table = exposures if exposures is not None else read_exposures(view.ctf)
        _register("ctf", f"{view.ctf.path.name} ({view.ctf_job.id})", view.ctf.path, table=table)
    hint = ""
    if view.maps is not None:
        for f in (view.maps.half1, view.maps.half2, view.maps.mask) if not view.micrographs else ():
            if f is not None:
                data, kwargs, kind = _layers_of(open_path(str(f)), str(f), str(f), f.name, v)[0]
                kwargs["name"] = str(f.relative_to(root))
                out.append(stamp((data, kwargs, kind), view.maps.job))
        if view.micrographs:
            hint = f" (half maps not added over the micrographs: open {view.maps.job.id} for Map validation)"
        for f in (view.maps.postprocess, view.model):
            if f is not None:
                _layers_of(open_path(str(f)), str(f), str(f), f"{f.name} ({f.parent.relative_to(root)})", v)
    if view.class2d is not None:
        job, it = view.class2d
        for f in (it.classes, it.model):
            if f is not None:
                for ld in _layers_of(open_path(str(f)), str(f), str(f), f"{f.name} ({job.id})", v):
                    if ld[0] is not None:
                        ld[1]["name"] = f"{f.name} ({job.id})"
                        out.append(stamp(ld, job))
        from .io.projects import ParticleSet

        table = read_particles(ParticleSet(path=it.path, passthrough=it.passthrough, stage="class2d"))
        _register("particles", f"{it.path.name} ({job.id})", it.path, table=table)
    elif view.particles is not None:
        ps = view.particles
        _register("particles", f"{ps.particles.path.name} ({ps.job.id})", ps.particles.path,
                  table=read_particles(ps.particles))
    _notify("info", f"cryodiag: {view.describe()}{hint}")
    if view.picks is not None:
        _link_current_viewer()
    return out or NO_LAYER


def _reader_of(make):
    def reader(_path):
        try:
            return make()
        except CryodiagInputError as err:
            _notify_error(f"cryodiag: {err}")
            return None

    return reader


def _current_viewer():
    try:
        import napari

        return napari.current_viewer()
    except Exception:  # noqa: BLE001 - headless use of the reader
        return None


# --------------------------------------------------------------------------- images


def _image_meta(kind: str, paths, keys, pixel_size_A, **extra) -> dict:
    d = {"kind": kind, "paths": list(paths), "keys": list(keys), "pixel_size_A": pixel_size_A}
    d.update(extra)
    return {"cryodiag": d}


def _micrograph_layer(path: str, img):
    from .micrographs import micrograph_key

    name = Path(path).name
    meta = _image_meta("micrograph", [path], [micrograph_key(name)], img.pixel_size_A, names=[path],
                       shape=img.data.shape)
    return micrograph_layer_data(img.data, img.pixel_size_A, meta["cryodiag"], name)


def _stack_layer(path: str, st):
    from .io import mrc
    from .micrographs import micrograph_key

    name = Path(path).name
    ps = st.pixel_size_A
    scale = (1.0, ps, ps) if ps else (1.0, 1.0, 1.0)
    meta = _image_meta("stack", [path], [micrograph_key(name)], ps, n_images=st.data.shape[0])
    return (st.data, {"name": name, "scale": scale, "contrast_limits": mrc.contrast_limits(st.data[0]),
                      "colormap": "gray", "metadata": meta}, "image")


def _map_layer(path: str, m):
    from .micrographs import micrograph_key

    name = Path(path).name
    vs = m.voxel_size_A or (1.0, 1.0, 1.0)
    lo, hi = float(np.nanmin(m.data)), float(np.nanmax(m.data))
    meta = _image_meta("map", [path], [micrograph_key(name)], m.pixel_size_A, voxel_size_A=m.voxel_size_A,
                       origin_A=m.origin_A, value_range=(lo, hi))
    kwargs = {"name": name, "scale": tuple(vs), "translate": tuple(m.origin_A),
              "contrast_limits": (lo, hi if hi > lo else lo + 1), "colormap": "gray", "metadata": meta}
    if lo >= -1e-6 and hi <= 1 + 1e-6 and hi > lo:  # a mask: over the map, not instead of it
        kwargs.update(colormap="magenta", blending="additive", opacity=0.4)
    return (m.data, kwargs, "image")


def _micrograph_stack_layer(source, st):
    ps = st.pixel_size_A
    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else os.path.dirname(st.paths[0])
    name = Path(label.rstrip("/")).name or "micrographs"
    if len(st) == 1:
        meta = _image_meta("micrograph", st.paths, st.keys, ps, names=st.names)
        return micrograph_layer_data(st.read(0), ps, meta["cryodiag"], name)
    meta = _image_meta("micrographs", st.paths, st.keys, ps, names=st.names)
    return micrograph_layer_data(st.data, ps, meta["cryodiag"], name)


# --------------------------------------------------------------------------- tables


def _register(kind: str, name: str, path, *, table=None, data=None) -> bool:
    """Add a table to the current viewer's open tables (True when there is a viewer)."""
    v = _current_viewer()
    if v is None:
        return False
    from .widgets._tables import OpenTable, tables_of

    tables_of(v).add(OpenTable(name=name, kind=kind, path=os.fspath(path) if path else None, table=table,
                               data=data or {}))
    return True


def _has_micrographs(viewer, table) -> bool:
    from .widgets._layers import is_micrographs, meta

    if "micrograph" not in table.columns:
        return any(is_micrographs(ly) for ly in viewer.layers)
    keys = set(table["micrograph"].astype(str).unique()[:1000])
    for ly in viewer.layers:
        if (is_micrographs(ly) or meta(ly).get("kind") == "placeholder") and keys & set(map(str, meta(ly).get("keys", []))):
            return True
    return False


def _link_current_viewer():
    v = _current_viewer()
    if v is not None:
        from .widgets.picks_layer import link_viewer

        link_viewer(v)
