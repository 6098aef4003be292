"""Micrograph-name matching keys (a leaf module: every reader and the pick table use it).

A micrograph is known by many names: ``Micrographs/mic_001_frames_sum.mrc`` in a STAR file,
``mic_001_autopick.star`` for its picks, a cryoSPARC uid-prefixed path in a ``.cs`` file. The
*key* drops folders, extensions, cryoSPARC's uid prefix and the suffixes that pickers and motion
correction append, so that all of them give ``mic_001``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["micrograph_key", "micrograph_keys", "categorical_names_and_keys"]

_EXTENSIONS = (
    ".mrc", ".mrcs", ".map", ".tif", ".tiff", ".eer", ".st", ".star", ".cbox", ".box", ".cs",
    ".txt", ".coords", ".json", ".ctf", ".bz2", ".gz", ".xml", ".npy", ".png", ".jpg",
)
# Suffixes that pickers, motion correction and exports append to a micrograph's name.
_SUFFIXES = (
    "_patch_aligned_doseweighted", "_patch_aligned", "_rigid_aligned", "_aligned_doseweighted",
    "_frames_sum", "_doseweighted", "_dose_weighted", "_fractions", "_frames", "_aligned",
    "_manualpick", "_autopick", "_particles", "_extract", "_denoised", "_shiny", "_picks",
    "_coords", "_sum", "_ali", "_dw", "_pick", "_ctf", "_fft", "_ps", "_mic",
)
_SUFFIX_RE = re.compile("(" + "|".join(re.escape(s) for s in _SUFFIXES) + ")$", re.IGNORECASE)
_CS_UID_RE = re.compile(r"^\d{15,}_")  # cryoSPARC prefixes imported/motion-corrected files with a uid


def micrograph_key(name) -> str:
    """Matching key of a micrograph name or path.

    Drops folders, extensions (``.mrc``, ``.tif``, ``.star``, ``:mrc`` ...), cryoSPARC's
    numeric uid prefix, and (repeatedly) suffixes that pickers and motion correction append
    (``_frames_sum``, ``_doseweighted``, ``_DW``, ``_autopick``, ``_patch_aligned`` ...).
    ``"Micrographs/mic_001_frames_sum.mrc"``, ``"mic_001_autopick.star"`` and
    ``"J5/motioncorrected/012345678901234567890_mic_001_patch_aligned_doseweighted.mrc"``
    all give ``"mic_001"``.
    """
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    s = str(name).strip()
    if ":" in s and not re.match(r"^[A-Za-z]:[\\/]", s):  # "file.ctf:mrc"
        s = s.split(":", 1)[0]
    if "@" in s:  # "000001@stack.mrcs"
        s = s.split("@", 1)[1]
    s = s.replace("\\", "/").rsplit("/", 1)[-1]
    changed = True
    while changed:
        changed = False
        low = s.lower()
        for ext in _EXTENSIONS:
            if low.endswith(ext) and len(s) > len(ext):
                s = s[: -len(ext)]
                changed = True
                break
        m = _SUFFIX_RE.search(s)
        if m and m.start() > 0:
            s = s[: m.start()]
            changed = True
    m = _CS_UID_RE.match(s)
    if m and len(s) > m.end():
        s = s[m.end():]
    return s


def micrograph_keys(names) -> np.ndarray:
    """Vectorised :func:`micrograph_key` (computes each distinct name once)."""
    codes, uniques = pd.factorize(np.asarray(names, dtype=object), use_na_sentinel=False)
    keys = np.array([micrograph_key(u) for u in uniques], dtype=object)
    return keys[codes] if len(keys) else np.array([], dtype=object)


def categorical_names_and_keys(names=None, *, codes=None, uniques=None):
    """Micrograph names and their matching keys as pandas Categoricals.

    Pass ``names`` (one per row) or ``codes`` (row -> index into ``uniques``) with ``uniques``
    (distinct names). Each distinct name is normalised once, so 1e7 rows on 1e4 micrographs cost
    one factorisation; the categoricals keep memory small and grouping fast.
    """
    if codes is None:
        codes, uniques = pd.factorize(np.asarray(names, dtype=object), use_na_sentinel=False)
    uniques = np.asarray(uniques, dtype=object)
    # de-duplicate and sort the categories, so that groupby and np.unique agree on the order
    ucodes, uu = pd.factorize(uniques, use_na_sentinel=False, sort=True)
    codes = ucodes[np.asarray(codes)] if len(ucodes) else np.asarray(codes)
    keys = np.array([micrograph_key(u) for u in uu], dtype=object)
    kcodes, kuniq = pd.factorize(keys, use_na_sentinel=False, sort=True)
    kc = kcodes[codes] if len(kcodes) else np.asarray(codes)
    name_cat = pd.Categorical.from_codes(codes, categories=pd.Index(np.asarray(uu, dtype=object), dtype=object))
    key_cat = pd.Categorical.from_codes(kc, categories=pd.Index(np.asarray(kuniq, dtype=object), dtype=object))
    return name_cat, key_cat
