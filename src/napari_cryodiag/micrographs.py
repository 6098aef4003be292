"""Micrograph names: matching keys, and picks matched to micrographs by key (a leaf module: the
readers of :mod:`napari_cryodiag.io`, the pick table and the per-micrograph jobs of
:mod:`napari_cryodiag.compute.picks` use it).

A micrograph is known by many names: ``Micrographs/mic_001_frames_sum.mrc`` in a STAR file,
``mic_001_autopick.star`` for its picks, a cryoSPARC uid-prefixed path in a ``.cs`` file. The
*key* drops folders, extensions, cryoSPARC's uid prefix and the suffixes that pickers and motion
correction append, so that all of them give ``mic_001``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a table is built: `cryodiag fsc` reads maps without it
    import pandas as pd

__all__ = ["micrograph_key", "micrograph_keys", "categorical_names_and_keys", "MatchReport", "match_to_micrographs",
           "group_rows", "cryosparc_uid"]

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
#: extensions and suffixes (lower case) by length, longest first: a name's ending is looked up
#: once per length instead of tried against every ending
_ENDINGS = tuple(sorted({e.lower() for e in _EXTENSIONS + _SUFFIXES}, key=len, reverse=True))
_ENDINGS_BY_LEN = tuple((n, frozenset(e for e in _ENDINGS if len(e) == n))
                        for n in sorted({len(e) for e in _ENDINGS}, reverse=True))
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
    low = s.lower()
    while True:  # extensions and suffixes, repeatedly (mic_DW.mrc.bz2 -> mic), never the whole name
        size = len(low)
        for n, ends in _ENDINGS_BY_LEN:
            if n < size and low[-n:] in ends:
                low = low[:-n]
                break
        else:
            break
    s = s[: len(low)]
    m = _CS_UID_RE.match(s)
    if m and len(s) > m.end():
        s = s[m.end():]
    return s


def cryosparc_uid(name) -> int | None:
    """The exposure uid cryoSPARC puts in front of the files it writes
    (``J5/motioncorrected/012345678901234567890_mic_001_patch_aligned_doseweighted.mrc`` ->
    ``12345678901234567890``), or ``None``."""
    s = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    m = _CS_UID_RE.match(s)
    if not m:
        return None
    v = int(s[: m.end() - 1])
    return v if 0 < v < 2**64 else None


def micrograph_keys(names) -> np.ndarray:
    """Vectorised :func:`micrograph_key` (computes each distinct name once)."""
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(names, dtype=object), use_na_sentinel=False)
    keys = np.array([micrograph_key(u) for u in uniques], dtype=object)
    return keys[codes] if len(keys) else np.array([], dtype=object)


def categorical_names_and_keys(names=None, *, codes=None, uniques=None):
    """Micrograph names and their matching keys as pandas Categoricals.

    Pass ``names`` (one per row) or ``codes`` (row -> index into ``uniques``) with ``uniques``
    (distinct names). Each distinct name is normalised once, so 1e7 rows on 1e4 micrographs cost
    one factorisation; the categoricals keep memory small and grouping fast.
    """
    import pandas as pd

    if codes is None:
        codes, uniques = pd.factorize(np.asarray(names, dtype=object), use_na_sentinel=False)
    uniques = np.asarray(uniques, dtype=object)
    # de-duplicate and sort the categories, so that groupby and np.unique agree on the order
    ucodes, uu = pd.factorize(uniques, use_na_sentinel=False, sort=True)
    small = np.int16 if len(uu) < 2**15 else np.int32
    codes = np.asarray(codes)
    codes = ucodes.astype(small)[codes] if len(ucodes) else codes.astype(small)
    keys = np.array([micrograph_key(u) for u in uu], dtype=object)
    kcodes, kuniq = pd.factorize(keys, use_na_sentinel=False, sort=True)
    kc = kcodes.astype(small)[codes] if len(kcodes) else codes
    # the codes are in range by construction: no validation pass over 1e7 rows
    name_cat = pd.Categorical.from_codes(codes, categories=pd.Index(np.asarray(uu, dtype=object), dtype=object),
                                         validate=False)
    key_cat = pd.Categorical.from_codes(kc, categories=pd.Index(np.asarray(kuniq, dtype=object), dtype=object),
                                        validate=False)
    return name_cat, key_cat


class MatchReport(dict):
    """Outcome of :func:`match_to_micrographs` (a dict with a readable ``summary()``).

    Keys: ``n_rows``, ``n_matched``, ``n_unmatched``, ``unmatched_micrographs`` (table keys with
    no open micrograph -> number of picks), ``micrographs_without_picks`` (open keys with no
    pick), ``picks_per_micrograph`` (counts per open micrograph).
    """

    def summary(self, max_names: int = 5) -> str:
        parts = [f"{self['n_matched']} of {self['n_rows']} picks placed on "
                 f"{len(self['picks_per_micrograph']) - len(self['micrographs_without_picks'])} micrographs"]
        um = self["unmatched_micrographs"]
        if um:
            names = ", ".join(list(um)[:max_names]) + (" ..." if len(um) > max_names else "")
            parts.append(f"{self['n_unmatched']} picks on {len(um)} micrographs that are not open ({names})")
        nw = self["micrographs_without_picks"]
        if nw:
            names = ", ".join(nw[:max_names]) + (" ..." if len(nw) > max_names else "")
            parts.append(f"{len(nw)} open micrographs have no picks ({names})")
        return "; ".join(parts)


def match_to_micrographs(table: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, MatchReport]:
    """Index of each row's micrograph in ``keys`` (-1 when not open) and a report.

    Rows are matched by the ``micrograph`` key column (see :func:`micrograph_key`); ``keys``
    are normalised with the same function, so raw file names work too. When no key matches
    exactly, a case-insensitive match is tried.
    """
    import pandas as pd

    keys = [micrograph_key(k) for k in keys]
    n = len(table)
    if "micrograph" not in table.columns:
        if len(keys) == 1:  # single micrograph, single-file picks without a name: place them
            idx = np.zeros(n, dtype=np.int64)
        else:
            idx = np.full(n, -1, dtype=np.int64)
        col = None
    else:
        col = table["micrograph"]
        lookup: dict[str, int] = {}
        for i, k in enumerate(keys):  # duplicate keys (mic.mrc and mic_DW.mrc): the first wins
            lookup.setdefault(k, i)
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = [str(c) for c in col.cat.categories]
            codes = col.cat.codes.to_numpy()
        else:
            codes, uniq = pd.factorize(col.to_numpy(dtype=object), use_na_sentinel=True)
            cats = [str(c) for c in uniq]
        cat_idx = np.array([lookup.get(c, -1) for c in cats], dtype=np.int64)
        if len(cats) and (cat_idx < 0).all():
            low: dict[str, int] = {}
            for i, k in enumerate(keys):
                low.setdefault(k.lower(), i)
            cat_idx = np.array([low.get(c.lower(), -1) for c in cats], dtype=np.int64)
        codes = np.asarray(codes)
        if len(cat_idx):
            idx = np.where(codes >= 0, cat_idx[np.maximum(codes, 0)], -1).astype(np.int64)
        else:
            idx = np.full(n, -1, dtype=np.int64)
    counts = np.bincount(idx[idx >= 0], minlength=len(keys)) if len(keys) else np.zeros(0, int)
    unmatched = {}
    if col is not None and (idx < 0).any():
        vc = pd.Series(np.asarray(col.to_numpy(), dtype=object)[idx < 0]).astype(str).value_counts()
        unmatched = {str(k): int(v) for k, v in vc.items()}
    report = MatchReport(
        n_rows=int(n),
        n_matched=int((idx >= 0).sum()),
        n_unmatched=int((idx < 0).sum()),
        unmatched_micrographs=unmatched,
        micrographs_without_picks=[k for k, c in zip(keys, counts) if c == 0],
        picks_per_micrograph=[int(c) for c in counts],
    )
    return idx, report


def group_rows(index_per_row: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices per group (``index_per_row`` in ``[0, n_groups)``, -1 ignored), O(N log N)."""
    idx = np.asarray(index_per_row)
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    bounds = np.searchsorted(sorted_idx, np.arange(n_groups + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_groups)]
