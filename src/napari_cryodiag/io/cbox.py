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


#: crYOLO's number columns: a word in one of them is refused (never read as NaN)
_NUMBERS = ("CoordinateX", "CoordinateY", "CoordinateZ", "Width", "Height", "Depth", "EstWidth", "EstHeight",
            "Confidence", "NumBoxes", "Angle")


def read_cbox(path, *, min_confidence: float | None = None) -> pd.DataFrame:
    """Read a crYOLO ``.cbox`` file into the canonical table.

    Refused naming the row: a row with more or fewer values than labels, a word (``-``) in a
    number column. Without a ``Width`` column the box corner cannot be moved to the centre: the
    coordinates are then used as centres, and a note says so. Picks whose coordinates are NaN,
    ±inf or negative are left out with a note.
    """
    from .star import drop_bad_coordinates, read_star

    path = os.fspath(path)
    blocks = read_star(path)
    df = blocks.get("cryolo")
    if not isinstance(df, pd.DataFrame):
        raise CryodiagInputError("not a crYOLO .cbox file: no data_cryolo table", path)
    for need in ("CoordinateX", "CoordinateY"):
        if need not in df.columns:
            raise CryodiagInputError(f"crYOLO .cbox table lacks the column {need}", path)
    for c in _NUMBERS:
        if c in df.columns and not pd.api.types.is_numeric_dtype(df[c].dtype):
            v = pd.to_numeric(df[c].astype(object), errors="coerce")
            bad = (v.isna() & df[c].notna()).to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                raise CryodiagInputError(f"{str(df[c].iloc[i])[:40]!r} in _{c} in row {i + 1} of data_cryolo is not "
                                         "a number", path)
            df = df.assign(**{c: v.astype(np.float64)})
    notes: list[str] = []
    n = len(df)
    if "Width" in df.columns:
        w = df["Width"].to_numpy(dtype=np.float64)
    else:
        w = np.zeros(n)
        notes.append("no Width column: the box size is unknown, so CoordinateX/Y are used as the pick centres "
                     "(crYOLO writes the box corner: x = CoordinateX + Width/2)")
    h = df["Height"].to_numpy(dtype=np.float64) if "Height" in df.columns else w
    cols = {}
    name = os.path.basename(path)
    cols["micrograph_name"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8),
                                                        categories=pd.Index([os.path.splitext(name)[0]], dtype=object))
    cols["micrograph"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8),
                                                   categories=pd.Index([micrograph_key(name)], dtype=object))
    cols["x_px"] = df["CoordinateX"].to_numpy(dtype=np.float64) + w / 2
    cols["y_px"] = df["CoordinateY"].to_numpy(dtype=np.float64) + h / 2
    if "EstWidth" in df.columns and "EstHeight" in df.columns:
        est = (df["EstWidth"].to_numpy(dtype=np.float64) + df["EstHeight"].to_numpy(dtype=np.float64)) / 2
        cols["diameter_px"] = np.where(np.isfinite(est), est, w) if "Width" in df.columns else est
    elif "Width" in df.columns:
        cols["diameter_px"] = w
    for c in df.columns:
        if c in ("CoordinateX", "CoordinateY") or c in cols:
            continue
        if len(df) and df[c].isna().all():
            continue  # crYOLO's <NA> columns (CoordinateZ, Depth, NumBoxes, Angle of 2D picks)
        cols[c] = df[c].to_numpy()
    cols["source_row"] = np.arange(n, dtype=np.int64)
    out = pd.DataFrame(cols)
    out, dropped = drop_bad_coordinates(out, path)
    notes += dropped
    if min_confidence is not None and "Confidence" in out.columns:
        out = out[out["Confidence"] >= min_confidence].reset_index(drop=True)
    out.attrs = {
        "source": path,
        "format": "cbox",
        "convention": CBOX_CONVENTION + ("" if "Width" in df.columns else "; no Width: coordinates used as centres"),
        "optics": None,
        "has_locations": True,
        "general": blocks.get("global") if isinstance(blocks.get("global"), dict) else {},
        "notes": notes,
        "note": "; ".join(notes),
    }
    return out
