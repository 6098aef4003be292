"""npe2 reader: MRC micrographs, maps, stacks, folders of micrographs, STAR/.cs/.cbox picks.

``get_reader(path)`` returns a reader only for what this plugin reads; errors in a file are
shown as a napari notification naming the file and the problem (the reader then returns None).

Layers (docs/ARCHITECTURE.md, "The napari face"):
- 2D micrograph -> image, ``scale`` = pixel size (Å), contrast limits from a subsample.
- folder / glob / list of 2D MRC files -> ONE lazy dask stack (axis 0 = micrograph), contrast
  limits from the first micrograph only.
- 3D map -> image with voxel size as ``scale`` and the header origin as ``translate``.
- MRCS (or an MRC whose header says image stack, or few sections compared with the image
  size) -> stack image layer.
- STAR / .cs / .cbox with coordinates -> a Points layer ``(micrograph index, y, x)`` in pixels
  with ``scale`` = pixel size, holding only the shown micrograph's picks (see
  :mod:`napari_cryodiag.picks_layer`); the full table is in ``metadata["cryodiag"]["table"]``.
- tables without coordinates -> an empty Points layer of kind ``"particles"``;
  ``postprocess.star`` -> an empty Points layer of kind ``"postprocess"`` with its tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import CryodiagInputError

MAP_SUFFIXES = (".mrc", ".map", ".rec", ".st", ".ali")
STACK_SUFFIXES = (".mrcs",)
TABLE_SUFFIXES = (".star", ".cs", ".cbox")
DEFAULT_DIAMETER_A = 100.0
DEFAULT_DIAMETER_PX = 64.0
EDGE_COLOR = "#00ff7f"


def _notify_error(msg: str) -> None:
    try:
        from napari.utils.notifications import show_error

        show_error(msg)
    except Exception:  # pragma: no cover - no napari
        import warnings

        warnings.warn(msg, stacklevel=2)


def _notify_info(msg: str) -> None:
    try:
        from napari.utils.notifications import show_info

        show_info(msg)
    except Exception:  # pragma: no cover
        pass


def _notify_warning(msg: str) -> None:
    try:
        from napari.utils.notifications import show_warning

        show_warning(msg)
    except Exception:  # pragma: no cover
        pass


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
    from .io.picks import micrograph_key

    hdr = mrc.read_header(path)
    name = Path(path).name
    if hdr.shape[0] == 1:
        img = mrc.read_image(path)
        ps = img.pixel_size_A
        scale = (ps, ps) if ps else (1.0, 1.0)
        meta = _image_meta("micrograph", [path], [micrograph_key(name)], ps, shape=img.data.shape)
        return (img.data, {"name": name, "scale": scale, "contrast_limits": mrc.contrast_limits(img.data),
                           "colormap": "gray", "metadata": meta}, "image")
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
    lo, hi = float(m.data.min()), float(m.data.max())
    meta = _image_meta("map", [path], [micrograph_key(name)], m.pixel_size_A, voxel_size_A=m.voxel_size_A,
                       origin_A=m.origin_A)
    return (m.data, {"name": name, "scale": tuple(vs), "translate": tuple(m.origin_A),
                     "contrast_limits": (lo, hi if hi > lo else lo + 1), "colormap": "gray",
                     "metadata": meta}, "image")


def _micrograph_stack_layer(source):
    from .io import mrc

    st = mrc.open_micrograph_stack(source)
    # contrast from a subsample of the first micrograph only (memory-mapped rows)
    limits = st.contrast_limits(0)
    ps = st.pixel_size_A
    scale = (1.0, ps, ps) if ps else (1.0, 1.0, 1.0)
    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else os.path.dirname(st.paths[0])
    name = Path(label.rstrip("/")).name or "micrographs"
    if len(st) == 1:
        meta = _image_meta("micrograph", st.paths, st.keys, ps, names=st.names)
        return (st.read(0), {"name": name, "scale": scale[1:], "contrast_limits": limits,
                        "colormap": "gray", "metadata": meta}, "image")
    for note in st.notes:
        _notify_warning(f"cryodiag: {label}: {note}")
    meta = _image_meta("micrographs", st.paths, st.keys, ps, names=st.names)
    return (st.data, {"name": name, "scale": scale, "contrast_limits": limits,
                      "colormap": "gray", "multiscale": False, "metadata": meta}, "image")


# --------------------------------------------------------------------------- tables


def default_point_size_px(table) -> float:
    """Symbol size when the table has no diameter: 100 Å in pixels, else 64 px."""
    if "pixel_size_A" in table.columns and len(table):
        ps = float(np.nanmedian(table["pixel_size_A"].to_numpy(dtype=float)))
        if np.isfinite(ps) and ps > 0:
            return DEFAULT_DIAMETER_A / ps
    return DEFAULT_DIAMETER_PX


def numeric_features(table, rows=None):
    """The numeric columns of ``table`` (rows ``rows``) as a features DataFrame."""
    cols = [c for c in table.columns if table[c].dtype.kind in "iufb"]
    sub = table[cols] if rows is None else table.iloc[rows][cols] if len(cols) else table.iloc[rows][[]]
    return sub.reset_index(drop=True)


def picks_layer_data(table, path: str, *, name: str | None = None):
    """Layer data tuple for a pick table: an (initially empty) 3D Points layer, kind "picks".

    The layer is filled with one micrograph's picks by
    :class:`napari_cryodiag.picks_layer.PicksOnMicrographs` once it is in a viewer.
    """
    import pandas as pd

    size = default_point_size_px(table)
    ps = None
    if "pixel_size_A" in table.columns and len(table):
        v = float(np.nanmedian(table["pixel_size_A"].to_numpy(dtype=float)))
        ps = v if np.isfinite(v) and v > 0 else None
    scale = (1.0, ps, ps) if ps else (1.0, 1.0, 1.0)
    cols = [c for c in table.columns if table[c].dtype.kind in "iufb"]
    features = pd.DataFrame({c: pd.Series(dtype=table[c].dtype) for c in cols})
    meta = {"cryodiag": {
        "kind": "picks", "table": table, "path": path, "convention": table.attrs.get("convention", ""),
        "pixel_size_A": ps, "default_size_px": size, "kept": None,
        "n_rows": len(table), "n_micrographs": int(table["micrograph"].nunique()) if "micrograph" in table.columns else 1,
    }}
    kwargs = {
        "name": name or Path(path.rstrip("/")).name,
        "ndim": 3,
        "scale": scale,
        "size": size,
        "face_color": "transparent",
        "border_color": EDGE_COLOR,
        "border_width": 0.08,
        "border_width_is_relative": True,
        "features": features,
        "metadata": meta,
        "out_of_slice_display": False,
    }
    # until a viewer's controller takes over, show the first micrograph's picks at index 0
    data = np.zeros((0, 3))
    if len(table) and "x_px" in table.columns:
        if "micrograph" in table.columns:
            key = table["micrograph"].iloc[0]
            rows = np.flatnonzero((table["micrograph"] == key).to_numpy())
        else:
            rows = np.arange(len(table))
        data = np.column_stack([np.zeros(len(rows)), table["y_px"].to_numpy(dtype=float)[rows],
                                table["x_px"].to_numpy(dtype=float)[rows]])
        kwargs["features"] = numeric_features(table, rows)
        if "diameter_px" in table.columns:
            d = table["diameter_px"].to_numpy(dtype=float)[rows]
            kwargs["size"] = np.where(np.isfinite(d), d, size)
        meta["cryodiag"]["initial_rows"] = rows
    return (data, kwargs, "points")


def _table_layers(source):
    import pandas as pd

    from .io import picks as pk
    from .io import star as st

    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else os.fspath(source[0])
    if isinstance(source, (str, os.PathLike)) and _suffix(label) == ".star" and not _is_glob(label):
        blocks = st.read_star(label)
        if st._looks_like_postprocess(blocks):
            pp = st.read_postprocess(label)
            res = pp["general"].get("rlnFinalResolution")
            _notify_info(f"cryodiag: {Path(label).name}: RELION postprocess (FSC, Guinier"
                         + (f"; final resolution {res:.2f} Å" if isinstance(res, (int, float)) else "")
                         + "); use the Map validation widget to plot it")
            meta = {"cryodiag": {"kind": "postprocess", "path": label, **pp}}
            return [(np.zeros((0, 2)), {"name": Path(label).name, "metadata": meta, "visible": False}, "points")]
        if "model_general" in blocks:
            _notify_info(f"cryodiag: {Path(label).name}: a RELION model.star (class distribution, "
                         "resolution, noise spectra); use the Classes widget with it")
            meta = {"cryodiag": {"kind": "relion_model", "path": label,
                                 "blocks": [b for b in blocks if b]}}
            return [(np.zeros((0, 2)), {"name": Path(label).name, "metadata": meta, "visible": False}, "points")]
    table = pk.read_table(source if not isinstance(source, (list, tuple)) else list(source))
    name = Path(label.rstrip("/")).name
    if not pk.has_coordinates(table) or (len(table) == 0 and not table.attrs.get("has_locations", False)):
        _notify_info(
            f"cryodiag: {label}: {len(table)} particles without pick coordinates; "
            "nothing to place on micrographs (the table is kept for the particle-set widgets)"
        )
        cols = [c for c in table.columns if table[c].dtype.kind in "iufb"]
        meta = {"cryodiag": {"kind": "particles", "table": table, "path": label,
                             "convention": table.attrs.get("convention", ""), "n_rows": len(table)}}
        return [(np.zeros((0, 2)), {"name": name, "metadata": meta,
                                    "features": pd.DataFrame({c: pd.Series(dtype=table[c].dtype) for c in cols})},
                 "points")]
    data = picks_layer_data(table, label, name=name)
    _link_current_viewer()
    return [data]


def _link_current_viewer():
    try:
        import napari

        from .picks_layer import link_viewer

        v = napari.current_viewer()
        if v is not None:
            link_viewer(v)
    except Exception:  # pragma: no cover - headless use of the reader
        pass
