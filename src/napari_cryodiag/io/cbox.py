"""crYOLO ``.cbox`` files (a STAR-like file with a ``data_cryolo`` loop).

Convention: crYOLO writes the lower-left corner of each box, so the pick centre is
``x_px = CoordinateX + Width / 2`` and ``y_px = CoordinateY + Height / 2`` (napari-boxmanager does
the same). ``<NA>`` values become NaN. ``Confidence`` is kept under its own name;
``diameter_px`` is the mean of ``EstWidth`` and ``EstHeight`` when crYOLO estimated them, else the
box ``Width``. The micrograph is named after the file (``mic_frames_sum.cbox`` -> key ``mic``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..micrographs import micrograph_key

__all__ = ["read_cbox", "CBOX_CONVENTION"]

CBOX_CONVENTION = (
    "crYOLO .cbox: x_px = CoordinateX + Width/2, y_px = CoordinateY + Height/2 "
    "(box corner + half box, micrograph pixels)"
)


def read_cbox(path, *, min_confidence: float | None = None) -> pd.DataFrame:
    """Read a crYOLO ``.cbox`` file into the canonical table."""
    from .star import read_star

    path = os.fspath(path)
    blocks = read_star(path)
    df = blocks.get("cryolo")
    if not isinstance(df, pd.DataFrame):
        raise CryodiagInputError("not a crYOLO .cbox file: no data_cryolo table", path)
    for need in ("CoordinateX", "CoordinateY"):
        if need not in df.columns:
            raise CryodiagInputError(f"crYOLO .cbox table lacks the column {need}", path)
    df = df.apply(lambda s: pd.to_numeric(s, errors="coerce") if s.dtype == object else s)
    df = df.dropna(axis=1, how="all") if len(df) else df
    n = len(df)
    w = df["Width"].astype(float) if "Width" in df.columns else pd.Series(np.zeros(n))
    h = df["Height"].astype(float) if "Height" in df.columns else w
    out = pd.DataFrame(index=df.index)
    name = os.path.basename(path)
    out["micrograph_name"] = np.full(n, os.path.splitext(name)[0], dtype=object)
    out["micrograph"] = np.full(n, micrograph_key(name), dtype=object)
    out["x_px"] = df["CoordinateX"].astype(float) + w / 2
    out["y_px"] = df["CoordinateY"].astype(float) + h / 2
    if "EstWidth" in df.columns and "EstHeight" in df.columns:
        est = (df["EstWidth"].astype(float) + df["EstHeight"].astype(float)) / 2
        out["diameter_px"] = est.where(np.isfinite(est), w)
    elif "Width" in df.columns:
        out["diameter_px"] = w
    for c in df.columns:
        if c not in ("CoordinateX", "CoordinateY"):
            out[c] = df[c].to_numpy()
    out["source_row"] = np.arange(n, dtype=np.int64)
    if min_confidence is not None and "Confidence" in out.columns:
        out = out[out["Confidence"] >= min_confidence].reset_index(drop=True)
    out.attrs = {
        "source": path,
        "format": "cbox",
        "convention": CBOX_CONVENTION,
        "optics": None,
        "has_locations": True,
        "general": blocks.get("global") if isinstance(blocks.get("global"), dict) else {},
    }
    return out
