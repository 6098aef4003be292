"""The layers the plugin makes, as napari LayerData tuples ``(data, kwargs, layer_type)``:
micrographs shown filtered, pick sets, and the empty stand-in for micrographs that are not open.
Shared by the npe2 reader, the sample data and the widgets (docs/ARCHITECTURE.md, "The napari
face", for the ``metadata["cryodiag"]`` contract)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["micrograph_layer_data", "picks_layer_data", "placeholder_layer_data", "default_point_size_px",
           "numeric_features", "BORDER_WIDTH", "EDGE_COLOR", "DEFAULT_DIAMETER_A", "DEFAULT_DIAMETER_PX"]

DEFAULT_DIAMETER_A = 100.0
DEFAULT_DIAMETER_PX = 64.0
EDGE_COLOR = "#00ff7f"
#: border width of the pick circles, as a fraction of their size (thin: the particle edge stays visible)
BORDER_WIDTH = 0.05


def micrograph_layer_data(raw, pixel_size_A, meta: dict, name: str, *, filtered: bool = True):
    """LayerData of micrographs (2D, or a stack with axis 0 = micrograph): shown binned and
    low-passed (the raw data in ``meta["raw"]``); shared by the reader and the sample data."""
    from ..workflows.micrographs import DisplaySettings
    from .display import display_layer_kwargs

    settings = DisplaySettings(enabled=filtered)
    kw = display_layer_kwargs(raw, pixel_size_A, settings, token=f"{name}-{id(raw)}")
    md = dict(meta)
    md.update(raw=raw, raw_shape=tuple(int(s) for s in np.shape(raw)[-2:]), display=kw["display"],
              pixel_size_A=pixel_size_A)
    kwargs = {"name": name, "scale": kw["scale"], "translate": kw["translate"],
              "contrast_limits": kw["contrast_limits"], "colormap": "gray", "metadata": {"cryodiag": md}}
    if np.ndim(raw) == 3:
        kwargs["multiscale"] = False
        kwargs["axis_labels"] = ("micrograph", "y", "x")  # the slider is named for what it moves through
    return (kw["data"], kwargs, "image")


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
    :class:`napari_cryodiag.widgets.picks_layer.PicksController` once it is in a viewer; picks
    are drawn as thin circles of their diameter.
    """
    import pandas as pd

    size = default_point_size_px(table)
    ps = None
    if "pixel_size_A" in table.columns and len(table):
        v = float(np.nanmedian(pd.to_numeric(table["pixel_size_A"], errors="coerce").to_numpy(dtype=float)))
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
        "border_width": BORDER_WIDTH,
        "border_width_is_relative": True,
        "features": features,
        "metadata": meta,
        "out_of_slice_display": False,
        "axis_labels": ("micrograph", "y", "x"),
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


def placeholder_layer_data(table, name: str):
    """An empty lazy stack standing in for the micrographs of ``table`` that are not open: one
    blank micrograph per micrograph of the picks, of their size (the ``.cs`` micrograph shape, else
    the picks' extent), so the slider reaches every micrograph."""
    import dask.array as da
    import pandas as pd

    keys = [str(k) for k in pd.unique(table["micrograph"].astype(str))] if "micrograph" in table.columns else ["micrograph"]
    ny = nx = None
    if {"micrograph_ny", "micrograph_nx"} <= set(table.columns):
        ny = int(np.nanmax(pd.to_numeric(table["micrograph_ny"], errors="coerce")))
        nx = int(np.nanmax(pd.to_numeric(table["micrograph_nx"], errors="coerce")))
    if not ny or not nx:
        ymax = float(np.nanmax(pd.to_numeric(table["y_px"], errors="coerce"))) if len(table) else 512
        xmax = float(np.nanmax(pd.to_numeric(table["x_px"], errors="coerce"))) if len(table) else 512
        # round the extent up to a common camera size step (the picks rarely reach the very edge)
        ny, nx = (int(np.ceil((v + 1) / 256.0) * 256) for v in (ymax, xmax))
    ps = None
    if "pixel_size_A" in table.columns:
        v = pd.to_numeric(table["pixel_size_A"], errors="coerce").to_numpy(dtype=float)
        v = v[np.isfinite(v) & (v > 0)]
        ps = float(np.median(v)) if v.size else None
    data = da.zeros((len(keys), ny, nx), chunks=(1, ny, nx), dtype=np.uint8)
    meta = {"cryodiag": {"kind": "placeholder", "keys": keys, "names": keys, "paths": [], "pixel_size_A": ps,
                         "for": name}}
    kwargs = {"name": f"{name}: micrographs not open", "scale": (1.0, ps or 1.0, ps or 1.0),
              "contrast_limits": (0, 1), "colormap": "gray", "metadata": meta, "opacity": 1.0,
              "axis_labels": ("micrograph", "y", "x")}
    return (data, kwargs, "image")
