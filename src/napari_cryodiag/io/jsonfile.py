"""JSON of the numbers: numpy values, NaN and paths made JSON-able, written atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text

__all__ = ["to_jsonable", "write_json"]


def to_jsonable(obj):
    """``obj`` with numpy arrays/scalars as lists/numbers, NaN/inf as ``None``, paths as strings,
    objects with ``to_dict()`` as their dict (recursively)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None  # JSON has no NaN/inf
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    return obj


def write_json(path, data, *, overwrite: bool = False, protect=()) -> Path:
    """Write ``data`` as indented JSON (see :func:`to_jsonable`), atomically.

    An existing ``path`` is replaced only with ``overwrite``; a file of ``protect`` never.
    """
    text = json.dumps(to_jsonable(data), indent=2)
    return atomic_write_text(path, text + "\n", overwrite=overwrite, protect=protect)
