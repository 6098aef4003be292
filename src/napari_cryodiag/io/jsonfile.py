"""JSON of the numbers: numpy values, NaN and paths made JSON-able, written atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import CryodiagInputError
from .atomic import atomic_write_text

__all__ = ["to_jsonable", "write_json", "loads_finite"]


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


def loads_finite(text: str, path=None, *, what: str = "JSON file"):
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (Python's json writes them;
    JSON has no such numbers and a NaN threshold would keep nothing): a :class:`CryodiagInputError`
    naming ``path``. Malformed JSON is refused the same way (``not a <what>: …``)."""
    def refuse(const):
        raise CryodiagInputError(
            f"{what} holds {const}, which is not a number (JSON has no NaN or Infinity): "
            "write a number, or null for none", path)

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as err:
        raise CryodiagInputError(f"not a {what}: {err}", path) from None
