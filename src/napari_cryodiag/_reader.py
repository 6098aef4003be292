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
  (:mod:`napari_cryodiag.widgets._tables`) that the dock widgets offer, with a notification.
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
    """npe2 reader hook: a callable for the paths this plugin reads, else None."""
    if isinstance(path, (list, tuple)):
        paths = [os.fspath(p) for p in path]
        if not paths:
            return None
        sufs = {_suffix(p) for p in paths}
        if sufs <= set(MAP_SUFFIXES) and all(os.path.isfile(p) for p in paths):
            return _reader_of(lambda: [_micrograph_stack_layer(paths)])
        if sufs <= set(TABLE_SUFFIXES):
            return _reader_of(lambda: _table_layers(paths))
        return None
    p = os.fspath(path)
    if os.path.isdir(p):
        names = [n.lower() for n in os.listdir(p)]
        if any(n.endswith(".mrc") for n in names):
            return _reader_of(lambda: [_micrograph_stack_layer(p)])
        if any(n.endswith(TABLE_SUFFIXES) for n in names):
            return _reader_of(lambda: _table_layers(p))
        return None
    if _is_glob(p):
        if _suffix(p) in MAP_SUFFIXES:
            return _reader_of(lambda: [_micrograph_stack_layer(p)])
        if _suffix(p) in TABLE_SUFFIXES:
            return _reader_of(lambda: _table_layers(p))
        return None
    suf = _suffix(p)
    if suf in MAP_SUFFIXES or suf in STACK_SUFFIXES:
        return _reader_of(lambda: [_mrc_layer(p)])
    if suf in TABLE_SUFFIXES:
        return _reader_of(lambda: _table_layers(p))
    return None


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


def _is_stack(hdr, path: str) -> bool:
    # io.mrc.MrcHeader.kind: .mrcs is a stack, a cubic box a volume, then ispg 0 or few sections a stack
    return hdr.shape[0] > 1 and (_suffix(path) in STACK_SUFFIXES or hdr.kind == "stack")


def _mrc_layer(path: str):
    from .io import mrc
    from .micrographs import micrograph_key

    hdr = mrc.read_header(path)
    name = Path(path).name
    if hdr.shape[0] == 1:
        img = mrc.read_image(path)
        ps = img.pixel_size_A
        meta = _image_meta("micrograph", [path], [micrograph_key(name)], ps, names=[path], shape=img.data.shape)
        return micrograph_layer_data(img.data, ps, meta["cryodiag"], name)
    if _is_stack(hdr, path):
        big = hdr.nbytes > 512 * 1024 * 1024
        st = mrc.read_stack(path, mmap=big)
        ps = st.pixel_size_A
        scale = (1.0, ps, ps) if ps else (1.0, 1.0, 1.0)
        meta = _image_meta("stack", [path], [micrograph_key(name)], ps, n_images=st.data.shape[0])
        return (st.data, {"name": name, "scale": scale, "contrast_limits": mrc.contrast_limits(st.data[0]),
                          "colormap": "gray", "metadata": meta}, "image")
    m = mrc.read_map(path)
    vs = m.voxel_size_A or (1.0, 1.0, 1.0)
    lo, hi = float(np.nanmin(m.data)), float(np.nanmax(m.data))
    meta = _image_meta("map", [path], [micrograph_key(name)], m.pixel_size_A, voxel_size_A=m.voxel_size_A,
                       origin_A=m.origin_A, value_range=(lo, hi))
    kwargs = {"name": name, "scale": tuple(vs), "translate": tuple(m.origin_A),
              "contrast_limits": (lo, hi if hi > lo else lo + 1), "colormap": "gray", "metadata": meta}
    if lo >= -1e-6 and hi <= 1 + 1e-6 and hi > lo:  # a mask: over the map, not instead of it
        kwargs.update(colormap="magenta", blending="additive", opacity=0.4)
    return (m.data, kwargs, "image")


def _micrograph_stack_layer(source):
    from .io import mrc

    st = mrc.open_micrograph_stack(source)
    ps = st.pixel_size_A
    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else os.path.dirname(st.paths[0])
    name = Path(label.rstrip("/")).name or "micrographs"
    if len(st) == 1:
        meta = _image_meta("micrograph", st.paths, st.keys, ps, names=st.names)
        return micrograph_layer_data(st.read(0), ps, meta["cryodiag"], name)
    for note in st.notes:
        _notify("warning", f"cryodiag: {label}: {note}")
    meta = _image_meta("micrographs", st.paths, st.keys, ps, names=st.names)
    return micrograph_layer_data(st.data, ps, meta["cryodiag"], name)


# --------------------------------------------------------------------------- tables


def _table_kind(table) -> str:
    """``"ctf"`` for one row per micrograph with defocus and no particle images, else ``"particles"``."""
    cols = set(table.columns)
    if "defocus_A" in cols and "micrograph" in cols and not ({"image_path", "rot_deg", "class"} & cols):
        if len(table) and table["micrograph"].nunique() >= 0.9 * len(table):
            return "ctf"
    return "particles"


def _register(kind: str, name: str, path, *, table=None, data=None) -> bool:
    """Add a table to the current viewer's open tables (True when there is a viewer)."""
    v = _current_viewer()
    if v is None:
        return False
    from .widgets._tables import OpenTable, tables_of

    tables_of(v).add(OpenTable(name=name, kind=kind, path=os.fspath(path) if path else None, table=table,
                               data=data or {}))
    return True


def _table_layers(source):
    from .io import picks as pk
    from .io import star as st

    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else os.fspath(source[0])
    fname = Path(label.rstrip("/")).name
    v = _current_viewer()
    if v is not None:  # several files of one File > Open become one pick set: the batch waits for this one
        from .widgets.picks_layer import note_reading

        note_reading(v)
    if isinstance(source, (str, os.PathLike)) and _suffix(label) == ".star" and not _is_glob(label):
        blocks = st.read_star(label)
        if st._looks_like_postprocess(blocks):
            pp = st.read_postprocess(label)
            res = pp["general"].get("rlnFinalResolution")
            _register("postprocess", fname, label, data=pp)
            _notify("info", f"cryodiag: {fname}: RELION postprocess (FSC, Guinier"
                    + (f"; final resolution {res:.2f} Å" if isinstance(res, (int, float)) else "")
                    + "): choose it in Map validation to plot it")
            return NO_LAYER
        if "model_general" in blocks:
            _register("relion_model", fname, label, data={"blocks": [b for b in blocks if b]})
            _notify("info", f"cryodiag: {fname}: a RELION model.star (class distribution, resolution, noise "
                    "spectra): choose it in Classes or Noise model")
            return NO_LAYER
    table = pk.read_table(source if not isinstance(source, (list, tuple)) else list(source))
    name = fname
    if not pk.has_coordinates(table) or (len(table) == 0 and not table.attrs.get("has_locations", False)):
        kind = _table_kind(table)
        _register(kind, name, label, table=table)
        what = ("a CTF table of {n} micrographs: Inspect Picks takes their defocus for calibration" if kind == "ctf"
                else "{n} particles without pick coordinates: choose them in Classes or Orientations")
        _notify("info", f"cryodiag: {name}: " + what.format(n=f"{len(table):,}"))
        return NO_LAYER
    out = [picks_layer_data(table, label, name=name)]
    if v is not None and not _has_micrographs(v, table):
        out.insert(0, placeholder_layer_data(table, name))
    _link_current_viewer()
    return out


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
