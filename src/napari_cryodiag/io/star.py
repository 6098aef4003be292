"""RELION STAR files: picks and particles (RELION 3.0, 3.1+ with optics, 5), postprocess.star,
writing.

The text layer (blocks, quoting, the loop parser and the chunked writer) is
:mod:`napari_cryodiag.io.star_text`; this module gives the tables their RELION meaning.

Canonical table (docs/ARCHITECTURE.md): RELION labels with a canonical meaning are renamed
(``rlnCoordinateX`` -> ``x_px``, ``rlnDefocusU`` -> ``defocus_u_A`` ...); every other column
keeps its RELION label (``rlnAutopickFigureOfMerit``). Optics-group values (RELION >= 3.1) are
merged per row. Coordinates are used as they are (``x_px = rlnCoordinateX``,
``y_px = rlnCoordinateY``, pixel centres at integers).

Columns are kept compact and exact: micrograph names are categoricals (one copy per distinct
name), a float column is float32 when float32 holds every value exactly (integer coordinates,
halves...; the numbers are then the same as in float64, and the writer, printing the shortest
text of each value, writes back what was read), integers are int32 when they fit. Text columns (names, paths) stay text even when
they look like numbers (a micrograph called ``0003`` stays ``"0003"``, one called ``nan`` stays
``"nan"``).

Refused (``CryodiagInputError`` naming the file, block and row): see :mod:`.star_text` for the
text-level cases; here a number column with words or ``-`` in it, comma decimals, an optics
group that is not an integer or not in ``data_optics``, two blocks of the same name, several
pick blocks that do not say which micrograph they belong to. Rows whose coordinates are NaN,
±inf or negative (off every micrograph) are dropped with a note that counts them
(``table.attrs["notes"]``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..micrographs import categorical_names_and_keys, micrograph_key
from .atomic import atomic_write
from .paths import expand_table_paths
from .star_text import Block, clip, read_blocks, write_loop, write_pairs

__all__ = [
    "read_star",
    "read_star_blocks",
    "read_star_table",
    "read_postprocess",
    "write_star",
    "write_star_blocks",
    "relion_frame",
    "compact_numeric",
    "drop_bad_coordinates",
    "star_table_from_blocks",
    "RLN_TO_CANONICAL",
    "STAR_CONVENTION",
]

STAR_CONVENTION = (
    "RELION STAR: x_px = rlnCoordinateX, y_px = rlnCoordinateY (micrograph pixels, "
    "column/row of the micrograph array as mrcfile reads it)"
)

# RELION label -> canonical column (1:1 renames; the writer maps them back).
RLN_TO_CANONICAL = {
    "rlnMicrographName": "micrograph_name",
    "rlnCoordinateX": "x_px",
    "rlnCoordinateY": "y_px",
    "rlnDefocusU": "defocus_u_A",
    "rlnDefocusV": "defocus_v_A",
    "rlnDefocusAngle": "defocus_angle_deg",
    "rlnVoltage": "voltage_kV",
    "rlnSphericalAberration": "cs_mm",
    "rlnAmplitudeContrast": "amplitude_contrast",
    "rlnClassNumber": "class",
    "rlnMaxValueProbDistribution": "class_posterior",
    "rlnAngleRot": "rot_deg",
    "rlnAngleTilt": "tilt_deg",
    "rlnAnglePsi": "psi_deg",
    "rlnOriginXAngst": "shift_x_A",
    "rlnOriginYAngst": "shift_y_A",
}
CANONICAL_TO_RLN = {v: k for k, v in RLN_TO_CANONICAL.items()}
_STRING_LABEL = re.compile(r"(Name|Image|Zernike|Movie|File|Coordinates|Path|Metadata|Spectrum)$|^rlnImageName"
                           r"|^rlnMicrograph"
                           # a pipeline's aliases ("None" when unset), status/type labels and edges are text
                           r"|^rlnPipeLine(ProcessAlias|.*Label$|Edge)", re.I)
_NUMERIC_MICROGRAPH = {"rlnMicrographPixelSize", "rlnMicrographOriginalPixelSize", "rlnMicrographId",
                       "rlnMicrographBinning", "rlnMicrographDoseRate", "rlnMicrographPreExposure",
                       "rlnMicrographStartFrame", "rlnMicrographEndFrame", "rlnMicrographFrameNumber",
                       "rlnMicrographShiftX", "rlnMicrographShiftY", "rlnMicrographTiltAngle",
                       "rlnMicrographTiltAxisDirection", "rlnMicrographTiltAxisOutOfPlane"}
#: text columns with few distinct values, read as categoricals
_CATEGORY_LABELS = {"rlnMicrographName", "rlnMicrographMovieName", "rlnCtfImage", "rlnOpticsGroupName",
                    "rlnMtfFileName", "rlnGroupName", "rlnMicrographMetadata", "rlnCtfPowerSpectrum",
                    "rlnMicrographGainName", "rlnMicrographDefectFile", "rlnTomoName"}
#: RELION number labels whose values cryodiag uses: words in them are refused, never read as text
_NUMBER_LABELS = set(RLN_TO_CANONICAL) - {"rlnMicrographName"} | {
    "rlnOpticsGroup", "rlnRandomSubset", "rlnAutopickFigureOfMerit", "rlnMicrographPixelSize",
    "rlnImagePixelSize", "rlnMicrographOriginalPixelSize", "rlnPixelSize", "rlnDetectorPixelSize",
    "rlnMagnification", "rlnOriginX", "rlnOriginY", "rlnNrOfSignificantSamples", "rlnLogLikeliContribution",
    "rlnCtfFigureOfMerit", "rlnCtfMaxResolution", "rlnImageSize", "rlnGroupNumber", "rlnSpectralIndex",
    "rlnResolution", "rlnAngstromResolution", "rlnSigma2Noise", "rlnSsnrMap", "rlnGoldStandardFsc",
    "rlnClassDistribution", "rlnHelicalTubeID", "rlnCtfBfactor", "rlnCtfScalefactor", "rlnPhaseShift",
    "rlnAccuracyRotations", "rlnAccuracyTranslations", "rlnAccuracyTranslationsAngst", "rlnEstimatedResolution",
    "rlnOverallFourierCompleteness", "rlnResolutionSquared", "rlnReferenceSigma2", "rlnReferenceTau2",
    "rlnSpectralOrientabilityContribution", "rlnFourierCompleteness",
}
_OPTICS_TO_CANONICAL = {
    "rlnVoltage": "voltage_kV",
    "rlnSphericalAberration": "cs_mm",
    "rlnAmplitudeContrast": "amplitude_contrast",
}
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+(?:[eE][+-]?\d+)?$")


def _is_string_label(label: str) -> bool:
    return bool(_STRING_LABEL.search(label)) and label not in _NUMERIC_MICROGRAPH


def _is_category_label(label: str) -> bool:
    return label in _CATEGORY_LABELS


# --------------------------------------------------------------------------- compact columns


def float32_exact(values: np.ndarray) -> bool:
    """True when float32 holds every value exactly (the same number, not a rounding of it):
    integers below 2^24, halves, quarters... A column read as float32 then gives the same
    numbers as float64 would, and the writer writes back the text it was read from."""
    v = np.asarray(values)
    if v.dtype == np.float32:
        return True
    return bool(np.array_equal(v.astype(np.float32).astype(np.float64), v, equal_nan=True))


def compact_numeric(s: pd.Series) -> pd.Series:
    """``s`` as float32 when :func:`float32_exact`, int32 when its integers fit; else as is."""
    kind = s.dtype.kind
    if kind == "f" and s.dtype.itemsize > 4 and float32_exact(s.to_numpy()):
        return s.astype(np.float32)
    if kind in "iu" and s.dtype.itemsize > 4 and len(s):
        lo, hi = s.min(), s.max()
        if -(2**31) <= lo and hi < 2**31:
            return s.astype(np.int32)
    return s


def _type_loop(df: pd.DataFrame, blk: Block, path: str, run_blocks=None) -> pd.DataFrame:
    """Number columns checked and made compact; refuses a word in a number column, naming the
    first row (comma decimals are named as such). ``run_blocks``: the blocks whose rows ``df``
    holds one after the other (rows are then named within their block)."""

    def where_row(i: int) -> tuple[str, int]:
        if run_blocks:
            for b in run_blocks:
                if b.rows[0] <= i < b.rows[1]:
                    return b.name, i - b.rows[0]
        return blk.name, i

    out = {}
    for lab in df.columns:
        s = df[lab]
        if _is_string_label(lab):
            out[lab] = s
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            s = s.astype(np.int8)
        if pd.api.types.is_numeric_dtype(s.dtype):
            if len(s) and s.dtype.kind == "f" and s.isna().all():
                blk.notes.append(f"_{lab} has no values (all {len(s)} missing) in block data_{blk.name}")
            out[lab] = compact_numeric(s)
            continue
        obj = s.astype(object)
        num = pd.to_numeric(obj, errors="coerce")
        bad = (num.isna() & obj.notna()).to_numpy()
        if not bad.any():
            if len(num) and num.isna().all():
                blk.notes.append(f"_{lab} has no values (all {len(num)} missing) in block data_{blk.name}")
            out[lab] = compact_numeric(num.astype(np.float64) if num.dtype == object else num)
            continue
        i = int(np.argmax(bad))
        v = obj.iloc[i]
        bname, r = where_row(i)
        where = f"_{lab} in row {r + 1} of the loop of block data_{bname}"
        if isinstance(v, str) and _COMMA_DECIMAL.match(v.strip()):
            raise CryodiagInputError(f"{clip(v)} in {where}: a comma as the decimal separator; STAR numbers use a "
                                     "point (1.5, not 1,5)", path)
        if bad.all() and lab not in _NUMBER_LABELS:
            out[lab] = s  # a text column under a label cryodiag does not know
            continue
        raise CryodiagInputError(f"{clip(v)} in {where} is not a number", path)
    return pd.DataFrame(out, index=df.index, copy=False)


# --------------------------------------------------------------------------- reading


def read_star_blocks(path, *, names: Iterable[str] | None = None) -> list[Block]:
    """Every block of a STAR file in file order (:class:`~.star_text.Block`), loops typed."""
    path = os.fspath(path)
    blocks = read_blocks(path, string_label=_is_string_label, category_label=_is_category_label, names=names)
    typed = set()
    for b in blocks:
        if b.run is not None:
            if id(b.run) not in typed:  # blocks read together are typed together
                typed.add(id(b.run))
                b.run.df = _type_loop(b.run.df, b, path, run_blocks=b.run.blocks)
        elif b.loop is not None:
            b.loop = _type_loop(b.loop, b, path)
    return blocks


def read_star(path, *, blocks: Iterable[str] | None = None) -> dict[str, "pd.DataFrame | dict"]:
    """Read a STAR file into ``{block name: DataFrame (loops) | dict (key-value pairs)}``.

    The block ``data_`` has the name ``""``. ``blocks`` limits which blocks are parsed. Two
    blocks of the same name are refused (which one is meant cannot be told), except ``data_``
    loops with the same labels (concatenated files), whose rows are given one after the other.
    """
    path = os.fspath(path)
    out: dict = {}
    lines: dict = {}
    unnamed: list[Block] = []
    for b in read_star_blocks(path, names=blocks):
        if not b.name and b.is_loop:
            unnamed.append(b)
        if b.name in out:
            same = not b.name and b.is_loop and all(u.labels == b.labels for u in unnamed)
            if not same:
                raise CryodiagInputError(f"two blocks named data_{b.name} (lines {lines[b.name]} and {b.line}); "
                                         "which one is meant cannot be told", path)
            continue
        out[b.name] = b.loop if b.is_loop else b.pairs
        lines[b.name] = b.line
    if len(unnamed) > 1:  # concatenated files (data_ blocks with the same labels): their rows one after the other
        out[""] = pd.concat([u.loop.astype({c: object for c in u.loop.columns
                                            if isinstance(u.loop[c].dtype, pd.CategoricalDtype)})
                             for u in unnamed], ignore_index=True)
    return out


def _pixel_size_columns(df: pd.DataFrame) -> pd.Series | None:
    for lab in ("rlnMicrographPixelSize", "rlnImagePixelSize", "rlnMicrographOriginalPixelSize", "rlnPixelSize"):
        if lab in df.columns:
            return pd.to_numeric(df[lab], errors="coerce")
    if "rlnDetectorPixelSize" in df.columns and "rlnMagnification" in df.columns:
        det = pd.to_numeric(df["rlnDetectorPixelSize"], errors="coerce").astype(np.float64)
        mag = pd.to_numeric(df["rlnMagnification"], errors="coerce").astype(np.float64)
        return det * 1e4 / mag  # detector pixel (µm) / magnification -> Å
    return None


def _group_codes(values: pd.Series, path: str, what: str) -> np.ndarray:
    """Optics-group numbers as int64; a missing or non-integer group is refused naming the row."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v) | (v != np.round(v))
    if bad.any():
        i = int(np.argmax(bad))
        raise CryodiagInputError(f"rlnOpticsGroup {clip(values.iloc[i])} in row {i + 1} of {what} is not an "
                                 "optics-group number", path)
    return v.astype(np.int64)


def _canonical(df: pd.DataFrame, optics: pd.DataFrame | None, path: str, *, file_name_key: str | None = None,
               what: str = "the table") -> pd.DataFrame:
    n = len(df)
    ren = {c: c[len("cryodiag_"):] for c in df.columns if c.startswith("cryodiag_") and c[len("cryodiag_"):] not in df}
    out = df.rename(columns=ren) if ren else df  # columns written by write_star under _cryodiag_<name>
    derived: list[str] = []
    optics_cols: list[str] = []
    notes: list[str] = []
    cols: dict = {}
    if optics is not None and len(optics) and "rlnOpticsGroup" in optics.columns:
        ogroups = _group_codes(optics["rlnOpticsGroup"], path, "data_optics")
        if len(set(ogroups)) < len(ogroups):
            raise CryodiagInputError("data_optics lists an optics group twice", path)
        if "rlnOpticsGroup" in out.columns:
            grp = _group_codes(out["rlnOpticsGroup"], path, what)
        elif len(optics) == 1:
            grp = np.full(n, ogroups[0], dtype=np.int64)
            cols["rlnOpticsGroup"] = grp.astype(np.int32)
        else:
            raise CryodiagInputError(f"{len(optics)} optics groups but the table has no rlnOpticsGroup column", path)
        lookup = pd.Index(ogroups)
        idx = lookup.get_indexer(grp)
        if (idx < 0).any():
            missing = sorted(set(grp[idx < 0].tolist()))
            raise CryodiagInputError(f"rows refer to optics groups {missing[:10]} missing from data_optics", path)
        for lab in optics.columns:
            if lab in out.columns or lab in ("rlnOpticsGroupName", "rlnOpticsGroup", "rlnOddZernike",
                                             "rlnEvenZernike"):
                continue
            vals = optics[lab]
            if not pd.api.types.is_numeric_dtype(vals.dtype) or vals.isna().all():
                continue
            cols[lab] = vals.to_numpy()[idx]
            optics_cols.append(lab)
    if cols:
        out = out.assign(**cols)
    ps = _pixel_size_columns(out)
    if ps is not None:
        out = out.assign(pixel_size_A=compact_numeric(ps.astype(np.float64)).to_numpy())
        derived.append("pixel_size_A")
    rename = {k: v for k, v in RLN_TO_CANONICAL.items() if k in out.columns}
    out = out.rename(columns=rename)
    optics_cols = [rename.get(c, c) for c in optics_cols]
    add: dict = {}
    if "micrograph_name" in out.columns:
        names = out["micrograph_name"]
        if isinstance(names.dtype, pd.CategoricalDtype):
            codes = names.cat.codes.to_numpy()
            uniques = names.cat.categories.to_numpy(dtype=object)
            if (codes < 0).any():
                uniques = np.append(uniques, "")
                codes = np.where(codes < 0, len(uniques) - 1, codes)
            add["micrograph_name"], add["micrograph"] = categorical_names_and_keys(codes=codes, uniques=uniques)
        else:
            add["micrograph_name"], add["micrograph"] = categorical_names_and_keys(names.to_numpy(dtype=object))
        derived.append("micrograph")
    elif file_name_key is not None:
        add["micrograph"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8),
                                                      categories=pd.Index([file_name_key], dtype=object))
        derived.append("micrograph")
    if "defocus_u_A" in out.columns:
        u = out["defocus_u_A"].to_numpy(dtype=np.float64)
        v = out["defocus_v_A"].to_numpy(dtype=np.float64) if "defocus_v_A" in out.columns else u
        add["defocus_A"] = (u + v) / 2
        derived.append("defocus_A")
    if "shift_x_A" not in out.columns and "rlnOriginX" in out.columns:  # RELION < 3.1: origins in pixels
        img_ps = (out["rlnImagePixelSize"].to_numpy(dtype=np.float64) if "rlnImagePixelSize" in out.columns
                  else add.get("pixel_size_A", out["pixel_size_A"].to_numpy(dtype=np.float64)
                               if "pixel_size_A" in out.columns else None))
        if img_ps is not None:
            add["shift_x_A"] = out["rlnOriginX"].to_numpy(dtype=np.float64) * img_ps
            derived.append("shift_x_A")
            if "rlnOriginY" in out.columns:
                add["shift_y_A"] = out["rlnOriginY"].to_numpy(dtype=np.float64) * img_ps
                derived.append("shift_y_A")
    if "rlnImageName" in out.columns:
        add["image_index"], add["image_path"] = _split_image_names(out["rlnImageName"], path)
        derived += ["image_index", "image_path"]
    if "rlnRandomSubset" in out.columns:
        add["split"] = pd.to_numeric(out["rlnRandomSubset"], errors="coerce") - 1
        derived.append("split")
    add["source_row"] = np.arange(n, dtype=np.int64)
    out = out.assign(**add)
    _check_values(out, path, what)
    out, dropped = drop_bad_coordinates(out, path)
    notes += dropped
    out.attrs = {
        "source": path,
        "format": "star",
        "convention": STAR_CONVENTION,
        "optics": optics,
        "derived_columns": derived,
        "optics_columns": optics_cols,
        "notes": notes,
    }
    return out


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    i = int(np.argmax(bad))
    n = int(np.count_nonzero(bad))
    return f"{values[i]:g} (row {i + 1}" + (f"; {n} rows in all)" if n > 1 else ")")


def _check_values(t: pd.DataFrame, path: str, what: str) -> None:
    """Class numbers that are not whole numbers >= 0 and best-class probabilities outside
    [0, 1] are refused naming the first row and how many there are (a wrong column, not a
    class or a probability)."""
    if "class" in t.columns and len(t):
        c = pd.to_numeric(t["class"], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isfinite(c) & ((c < 0) | (c != np.round(c)))
        if bad.any():
            raise CryodiagInputError(f"class number {_first_bad(c, bad)} of {what} is not a class (whole "
                                     "numbers from 0)", path)
    if "class_posterior" in t.columns and len(t):
        p = pd.to_numeric(t["class_posterior"], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isfinite(p) & ((p < -1e-6) | (p > 1 + 1e-6))
        if bad.any():
            raise CryodiagInputError(f"best-class probability {_first_bad(p, bad)} of {what} is not a "
                                     "probability in [0, 1]", path)


def drop_bad_coordinates(t: pd.DataFrame, path=None, *, shape_yx=None,
                         shape_source: str = "") -> tuple[pd.DataFrame, list[str]]:
    """Rows whose coordinates are NaN, ±inf or below -0.5 (before the first pixel: off every
    micrograph) are left out, with a note that counts them; when no row is left, the table is
    refused.

    ``shape_yx = (ny, nx)`` (px), when the micrographs' size is known (the opened micrographs'
    headers): rows with ``x_px > nx - 0.5`` or ``y_px > ny - 0.5`` (past the last pixel; pixel
    centres at integers) are left out too, with a note that counts them and says where the size
    came from (``shape_source``)."""
    if "x_px" not in t.columns or "y_px" not in t.columns or not len(t):
        return t, []
    x = t["x_px"].to_numpy(dtype=np.float64)
    y = t["y_px"].to_numpy(dtype=np.float64)
    nonfinite = ~(np.isfinite(x) & np.isfinite(y))
    negative = ~nonfinite & ((x < -0.5) | (y < -0.5))  # pixel centres at integers: the first pixel starts at -0.5
    beyond = np.zeros(len(t), dtype=bool)
    if shape_yx is not None:
        ny, nx = (float(v) for v in shape_yx)
        beyond = ~nonfinite & ~negative & ((x > nx - 0.5) | (y > ny - 0.5))
    notes = []
    if nonfinite.any():
        notes.append(f"{int(nonfinite.sum())} of {len(t)} picks have no finite coordinates (NaN or ±inf): left out")
    if negative.any():
        notes.append(f"{int(negative.sum())} of {len(t)} picks have negative coordinates (before the first pixel, off "
                     "the micrograph): left out")
    if beyond.any():
        notes.append(f"{int(beyond.sum())} of {len(t)} picks are beyond the micrograph's width or height "
                     f"({nx:.0f} x {ny:.0f} px{', ' + shape_source if shape_source else ''}; x or y past the last "
                     "pixel): left out")
    bad = nonfinite | negative | beyond
    if not bad.any():
        return t, []
    if bad.all():
        hint = " (picks of larger or unbinned micrographs?)" if beyond.any() else ""
        raise CryodiagInputError("no pick has coordinates on a micrograph: " + "; ".join(notes) + hint, path)
    keep = t.loc[~bad].reset_index(drop=True)
    keep.attrs = dict(t.attrs)
    return keep, notes


def _split_image_names(names: pd.Series, path: str):
    """``"000042@stack.mrcs"`` -> (41, "stack.mrcs"); a name without ``@`` is a single image
    (index 0). Returns (int64 index array, categorical of paths)."""
    n = len(names)
    if n == 0:
        return np.zeros(0, dtype=np.int64), pd.Categorical([])
    s = names.astype(object).astype(str)
    has_at = s.str.contains("@", regex=False).to_numpy()
    parts = s.str.split("@", n=1, expand=True) if has_at.any() else None
    if parts is None:
        return np.zeros(n, dtype=np.int64), pd.Categorical(s.to_numpy(dtype=object))
    idx_txt = parts[0].where(has_at, "1")
    pth = parts[1].where(has_at, s) if parts.shape[1] > 1 else s
    idx = pd.to_numeric(idx_txt, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(idx) | (idx < 1) | (idx != np.round(idx))
    if bad.any():
        i = int(np.argmax(bad))
        raise CryodiagInputError(f"rlnImageName {clip(s.iloc[i])} in row {i + 1}: the part before '@' is not an "
                                 "image number (1, 2, ...)", path)
    return idx.astype(np.int64) - 1, pd.Categorical(pth.to_numpy(dtype=object))


def _loop_blocks(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.is_loop and b.name != "optics"]


def _has_xy(b: Block) -> bool:
    return "rlnCoordinateX" in b.labels and "rlnCoordinateY" in b.labels


def _pick_block(blocks: list[Block], path: str, block: str | None) -> tuple[str, pd.DataFrame, list[str]]:
    """The table of a STAR file: the named block, the one loop of picks/particles, or all pick
    blocks merged (a file of many ``data_<micrograph>`` blocks, e.g. concatenated autopick files)."""
    loops = _loop_blocks(blocks)
    notes = [n for b in blocks for n in b.notes]
    if block is not None:
        sel = [b for b in loops if b.name == block]
        if not sel:
            raise CryodiagInputError(f"STAR file has no loop block data_{block}", path)
        if len(sel) > 1:
            raise CryodiagInputError(f"two blocks named data_{block} (lines {sel[0].line} and {sel[1].line})", path)
        return block, sel[0].loop, notes
    if not loops:
        raise CryodiagInputError("STAR file has no table (loop_) of picks or particles", path)
    picks = [b for b in loops if _has_xy(b)]
    seen: dict = {}
    for b in loops:
        if b.name in seen:
            if not b.name and len(picks) > 1:
                break  # concatenated files of picks (data_ blocks): read whole when each says its micrograph
            raise CryodiagInputError(f"two blocks named data_{b.name} (lines {seen[b.name]} and {b.line}); which "
                                     "one is meant (or whether both are) cannot be told", path)
        seen[b.name] = b.line
    if len(picks) > 1:
        return "all pick blocks", _merge_pick_blocks(picks, path), notes
    if picks:
        return picks[0].name, picks[0].loop, notes
    for pref in ("particles", "", "coordinates", "micrographs", "images"):
        for b in loops:
            if b.name == pref:
                return b.name, b.loop, notes
    return loops[0].name, loops[0].loop, notes


def _merge_pick_blocks(picks: list[Block], path: str) -> pd.DataFrame:
    has_name = ["rlnMicrographName" in b.labels for b in picks]
    if not all(has_name):
        names = [b.name for b in picks]
        if any(not n for n in names) or len(set(names)) < len(names):
            raise CryodiagInputError(
                f"{len(picks)} blocks of picks, but they neither have rlnMicrographName nor distinct block names: "
                "which micrograph each block's picks are on cannot be told (one file per micrograph, "
                "or a rlnMicrographName column)", path)
    runs = {id(b.run) for b in picks}
    if len(runs) == 1 and picks[0].run is not None and picks[0].run.blocks == picks:
        merged = picks[0].run.df  # read together: one table already
        counts = np.array([b.rows[1] - b.rows[0] for b in picks])
    else:
        frames = []
        for b in picks:
            df = b.loop
            for c in df.columns:
                if isinstance(df[c].dtype, pd.CategoricalDtype):
                    df = df.assign(**{c: df[c].astype(object)})
            frames.append(df)
        merged = pd.concat(frames, ignore_index=True, sort=False)
        counts = np.array([len(f) for f in frames])
    if not all(has_name):
        names = pd.Categorical.from_codes(np.repeat(np.arange(len(picks)), counts),
                                          categories=pd.Index([b.name for b in picks], dtype=object))
        return merged.assign(rlnMicrographName=names)
    col = merged["rlnMicrographName"]
    return merged if isinstance(col.dtype, pd.CategoricalDtype) else merged.assign(
        rlnMicrographName=pd.Categorical(col.astype(str)))


def read_star_table(path, *, block: str | None = None, require_coordinates: bool = False) -> pd.DataFrame:
    """Read picks or particles from a STAR file, a list, folder or glob of STAR files.

    Several files (RELION autopick writes one per micrograph) become one table; a file without
    ``rlnMicrographName`` gets its micrograph from the file name (``mic_autopick.star`` ->
    ``mic``) and the column ``source_file``. A file of many pick blocks is read whole (each
    block's picks on the micrograph its ``rlnMicrographName`` or block name says).
    ``require_coordinates=True`` raises when the table has no ``rlnCoordinateX/Y`` (a particle
    table cannot be shown as picks).
    """
    if isinstance(path, (list, tuple)) or os.path.isdir(os.fspath(path)) or any(c in os.fspath(path) for c in "*?["):
        if isinstance(path, (list, tuple)):
            files = [os.fspath(p) for p in path]
        else:
            files = [f for f in expand_table_paths(os.fspath(path)) if f.lower().endswith(".star")]
        if not files:
            raise CryodiagInputError("no STAR files", path)
        tables = [read_star_table(f, block=block, require_coordinates=require_coordinates) for f in files]
        return _concat_tables(tables, files, os.fspath(path) if not isinstance(path, (list, tuple)) else files[0])
    path = os.fspath(path)
    return star_table_from_blocks(read_star_blocks(path), path, block=block, require_coordinates=require_coordinates)


def _concat_tables(tables: list[pd.DataFrame], files: list[str], label: str) -> pd.DataFrame:
    for t in tables:
        for c in ("micrograph_name", "micrograph", "image_path"):
            if c in t.columns and isinstance(t[c].dtype, pd.CategoricalDtype):
                t[c] = t[c].astype(object)
    out = pd.concat(tables, ignore_index=True, sort=False)
    for c in ("micrograph_name", "micrograph", "image_path"):
        if c in out.columns:
            out[c] = pd.Categorical(out[c].astype(object).where(out[c].notna(), "").astype(str))
    out["source_file"] = pd.Categorical.from_codes(
        np.concatenate([np.full(len(t), i, dtype=np.int32) for i, t in enumerate(tables)]) if tables else [],
        categories=pd.Index(files, dtype=object))
    out.attrs = dict(tables[0].attrs)
    out.attrs["source"] = label
    out.attrs["sources"] = files
    optics = [t.attrs.get("optics") for t in tables if t.attrs.get("optics") is not None]
    out.attrs["optics"] = optics[0] if optics else None
    out.attrs["notes"] = [f"{Path(f).name}: {n}" for f, t in zip(files, tables) for n in t.attrs.get("notes", [])]
    if out.attrs["notes"]:
        out.attrs["note"] = "; ".join(out.attrs["notes"])
    return out


def star_table_from_blocks(blocks: list[Block], path: str, *, block: str | None = None,
                           require_coordinates: bool = False) -> pd.DataFrame:
    """The canonical table of already-read STAR blocks (see :func:`read_star_table`)."""
    if looks_like_postprocess(blocks):
        raise CryodiagInputError(
            "this is a RELION postprocess.star (FSC/Guinier), not a table of picks; use read_postprocess", path)
    name, df, notes = _pick_block(blocks, path, block)
    optics_blocks = [b for b in blocks if b.name == "optics" and b.is_loop]
    if len(optics_blocks) > 1:
        raise CryodiagInputError(f"two data_optics blocks (lines {optics_blocks[0].line} and {optics_blocks[1].line})",
                                 path)
    optics = optics_blocks[0].loop if optics_blocks else None
    if "rlnMicrographCoordinates" in df.columns and "rlnCoordinateX" not in df.columns:
        return _read_coordinate_index(path, df, optics)
    key = None if "rlnMicrographName" in df.columns else micrograph_key(os.path.basename(path))
    table = _canonical(df, optics, path, file_name_key=key, what=f"block data_{name}")
    table.attrs["block"] = name
    table.attrs["notes"] = notes + table.attrs["notes"]
    if table.attrs["notes"]:
        table.attrs["note"] = "; ".join(table.attrs["notes"])
    if require_coordinates and not ("x_px" in table.columns and "y_px" in table.columns):
        raise CryodiagInputError(
            "STAR table has no rlnCoordinateX/rlnCoordinateY: nothing to place on micrographs "
            "(it can still be read as a particle table)", path)
    table.attrs["has_locations"] = "x_px" in table.columns and "y_px" in table.columns
    return table


def _resolve_relion_path(index_path: str, rel: str) -> str | None:
    """RELION writes paths relative to the project folder: try the index file's ancestors."""
    if os.path.isabs(rel):
        return rel if os.path.isfile(rel) else None
    d = os.path.dirname(os.path.abspath(index_path))
    for _ in range(6):
        cand = os.path.join(d, rel)
        if os.path.isfile(cand):
            return cand
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return None


def _read_coordinate_index(path: str, df: pd.DataFrame, optics) -> pd.DataFrame:
    """RELION >= 3.1 ``autopick.star`` / ``manualpick.star``: a list of micrographs and their
    coordinate files; read every coordinate file into one table (micrograph from the index)."""
    tables, missing, notes = [], [], []
    mics = df["rlnMicrographName"].astype(object).astype(str).tolist() if "rlnMicrographName" in df.columns else None
    for i, rel in enumerate(df["rlnMicrographCoordinates"].astype(object).astype(str).tolist()):
        f = _resolve_relion_path(path, rel)
        if f is None:
            missing.append(rel)
            continue
        blocks = read_star_blocks(f)
        loops = [b for b in _loop_blocks(blocks) if _has_xy(b)]
        if not loops:
            continue  # a micrograph without picks may have an empty file
        if len(loops) > 1:
            raise CryodiagInputError(f"{len(loops)} blocks of picks in one coordinate file", f)
        loop = loops[0].loop
        notes += [f"{os.path.basename(f)}: {n}" for b in blocks for n in b.notes]
        if mics is not None:
            loop = loop.assign(rlnMicrographName=mics[i])
        loop = loop.assign(source_file=f)
        tables.append(loop)
    if not tables:
        raise CryodiagInputError(
            f"coordinate index lists {len(df)} files but none was found "
            f"(paths are relative to the RELION project folder; first: {missing[:1]})", path)
    for t in tables:
        for c in t.columns:
            if isinstance(t[c].dtype, pd.CategoricalDtype):
                t[c] = t[c].astype(object)
    merged = pd.concat(tables, ignore_index=True, sort=False)
    src = merged.pop("source_file").to_numpy(dtype=object)
    table = _canonical(merged, optics, path)
    table["source_file"] = pd.Categorical(src[table["source_row"].to_numpy()])
    table.attrs["block"] = "coordinate index"
    table.attrs["has_locations"] = "x_px" in table.columns
    table.attrs["sources"] = sorted(set(src))
    if missing:
        notes.append(f"{len(missing)} coordinate files listed in the index were not found")
    table.attrs["notes"] = notes + table.attrs["notes"]
    if table.attrs["notes"]:
        table.attrs["note"] = "; ".join(table.attrs["notes"])
    return table


def looks_like_postprocess(blocks) -> bool:
    if isinstance(blocks, dict):
        return "fsc" in blocks and isinstance(blocks.get("fsc"), pd.DataFrame) and "general" in blocks
    names = {b.name: b for b in blocks}
    return "fsc" in names and names["fsc"].is_loop and "general" in names


def read_postprocess(path, *, blocks: list[Block] | None = None) -> dict:
    """RELION ``postprocess.star`` -> ``{"general": dict, "fsc": DataFrame, "guinier": DataFrame}``.

    Columns keep their RELION labels (``rlnResolution`` in 1/Å, ``rlnAngstromResolution``,
    ``rlnFourierShellCorrelationCorrected`` ...; Guinier ``rlnResolutionSquared`` and
    ``rlnLogAmplitudes*``). ``general`` holds e.g. ``rlnFinalResolution``. A truncated or
    damaged file (shells missing or out of order, FSC values that are not finite, a RELION file
    without its Guinier table) is refused naming the shell.
    """
    path = os.fspath(path)
    if blocks is None:
        blocks = read_star_blocks(path)
    by = {}
    for b in blocks:
        if b.name in by:
            raise CryodiagInputError(f"two blocks named data_{b.name} (lines {by[b.name].line} and {b.line})", path)
        by[b.name] = b
    fsc_b = by.get("fsc")
    if fsc_b is None or not fsc_b.is_loop:
        raise CryodiagInputError("not a RELION postprocess.star: no data_fsc table", path)
    fsc = fsc_b.loop
    if len(fsc) < 2 or "rlnResolution" not in fsc.columns:
        raise CryodiagInputError(f"data_fsc has {len(fsc)} shells"
                                 + ("" if "rlnResolution" in fsc.columns else " and no rlnResolution column")
                                 + ": truncated file?", path)
    res = fsc["rlnResolution"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(res) | (res < 0)
    bad[1:] |= np.diff(res) <= 0
    if bad.any():
        i = int(np.argmax(bad))
        raise CryodiagInputError(f"data_fsc shell {i} (row {i + 1}): rlnResolution {res[i]!r} is not a frequency "
                                 "above the previous shell's", path)
    if "rlnSpectralIndex" in fsc.columns:
        si = fsc["rlnSpectralIndex"].to_numpy(dtype=np.float64)
        wrong = si != np.arange(len(si))
        if wrong.any():
            i = int(np.argmax(wrong))
            raise CryodiagInputError(f"data_fsc row {i + 1} is shell {si[i]!r}, expected {i}: shells missing or "
                                     "out of order", path)
    for c in fsc.columns:
        if "FourierShellCorrelation" in c:
            v = pd.to_numeric(fsc[c], errors="coerce").to_numpy(dtype=np.float64)
            nf = ~np.isfinite(v)
            if nf.any():
                i = int(np.argmax(nf))
                raise CryodiagInputError(f"data_fsc shell {i}: _{c} is {fsc[c].iloc[i]!r}, not a finite FSC value",
                                         path)
    general_b = by.get("general")
    general = general_b.pairs if general_b is not None else {}
    guinier_b = by.get("guinier")
    if guinier_b is not None and guinier_b.is_loop:
        guinier = guinier_b.loop
    else:
        with open(path, "rb") as f:
            relion_wrote_it = f.read(64).lstrip(b"\xef\xbb\xbf").startswith(b"# RELION postprocess")
        if relion_wrote_it:
            raise CryodiagInputError("RELION writes a data_guinier table after data_fsc; it is missing "
                                     f"(truncated file? data_fsc has {len(fsc)} shells)", path)
        if general_b is not None and "rlnFittedSlopeGuinierPlot" in general:
            raise CryodiagInputError("data_general has the Guinier fit but the data_guinier table is missing "
                                     "(truncated file?)", path)
        guinier = pd.DataFrame()
    return {"general": general, "fsc": fsc, "guinier": guinier, "path": path}


# --------------------------------------------------------------------------- writing


def relion_frame(table: pd.DataFrame, *, with_optics: bool, optics: pd.DataFrame | None = None) -> dict:
    """RELION label -> column values (array, Series or Categorical; nothing copied that need not
    be) for the rows of a canonical table, in RELION's order of labels."""
    derived = set(table.attrs.get("derived_columns", []))
    optics_cols = set(table.attrs.get("optics_columns", [])) if with_optics else set()
    if with_optics and optics is not None:  # values carried by the optics block, not per particle
        optics_cols |= {RLN_TO_CANONICAL.get(c, c) for c in optics.columns if c != "rlnOpticsGroup"}
    src_format = table.attrs.get("format")
    cols: dict = {}
    for c in table.columns:
        if c in ("source_row", "source_file", "micrograph", "image_index", "image_path"):
            continue
        if c in optics_cols:
            continue
        if src_format == "star" and c in derived:
            continue  # recomputed from the RELION labels kept beside it
        s = table[c]
        if c == "split":
            cols["rlnRandomSubset"] = (pd.to_numeric(s, errors="coerce") + 1).astype("Int64")
            continue
        if c in ("pixel_size_A", "defocus_A"):
            if c == "pixel_size_A" and not with_optics:
                cols["rlnImagePixelSize" if "image_path" in table.columns else "rlnMicrographPixelSize"] = s
            if c == "defocus_A" and "defocus_u_A" not in table.columns and "defocus_v_A" not in table.columns:
                # only a mean defocus is known: write it as a non-astigmatic CTF, not drop it
                cols["rlnDefocusU"] = s
                cols["rlnDefocusV"] = s
            continue
        if c in CANONICAL_TO_RLN:
            cols[CANONICAL_TO_RLN[c]] = s
        elif c.startswith("rln"):
            cols[c] = s
        else:
            if s.dtype == object and len(s) and not isinstance(s.iloc[0], str):
                continue
            if s.dtype.kind not in "iufb" and not isinstance(s.dtype, pd.CategoricalDtype) and s.dtype != object \
                    and not pd.api.types.is_string_dtype(s.dtype):
                continue
            cols["cryodiag_" + re.sub(r"\s", "_", c)] = s
    if "image_path" in table.columns and "rlnImageName" not in cols:
        idx = pd.to_numeric(table.get("image_index", pd.Series(0, index=table.index)),
                            errors="coerce").fillna(0).astype(np.int64) + 1
        cols["rlnImageName"] = idx.map(lambda i: "%06d" % i) + "@" + table["image_path"].astype(str)
    if "rlnMicrographName" not in cols and "micrograph" in table.columns:
        cols["rlnMicrographName"] = table["micrograph"]
    order = ["rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY"]
    return {k: cols[k] for k in order if k in cols} | {k: v for k, v in cols.items() if k not in order}


def optics_from_table(table: pd.DataFrame, optics=None) -> pd.DataFrame | None:
    """The optics block for a table: given, kept from the source (``attrs["optics"]``), or one
    group per distinct (pixel size, voltage, Cs, amplitude contrast) when all four are columns."""
    if optics is not None:
        return optics
    opt = table.attrs.get("optics")
    if isinstance(opt, pd.DataFrame) and len(opt):
        return opt
    need = ["pixel_size_A", "voltage_kV", "cs_mm", "amplitude_contrast"]
    if all(c in table.columns for c in need) and len(table):
        g = table[need].astype(np.float64).drop_duplicates().reset_index(drop=True)
        if len(g) > 64:
            return None
        opt = pd.DataFrame({
            "rlnOpticsGroupName": [f"opticsGroup{i + 1}" for i in range(len(g))],
            "rlnOpticsGroup": np.arange(1, len(g) + 1),
            "rlnMicrographPixelSize": g["pixel_size_A"],
            "rlnVoltage": g["voltage_kV"],
            "rlnSphericalAberration": g["cs_mm"],
            "rlnAmplitudeContrast": g["amplitude_contrast"],
        })
        if "image_path" in table.columns:
            opt["rlnImagePixelSize"] = g["pixel_size_A"]
        return opt
    return None


def optics_groups_of_rows(table: pd.DataFrame, opt: pd.DataFrame) -> np.ndarray:
    """``rlnOpticsGroup`` of each row: the table's own, the only group, or the group whose
    (pixel size, voltage, Cs, amplitude contrast) the row has."""
    if "rlnOpticsGroup" in table.columns:
        return table["rlnOpticsGroup"].to_numpy()
    if len(opt) == 1:
        return np.full(len(table), int(opt["rlnOpticsGroup"].iloc[0]), dtype=np.int32)
    need = ["pixel_size_A", "voltage_kV", "cs_mm", "amplitude_contrast"]
    key = pd.MultiIndex.from_frame(table[need].astype(np.float64))
    ref = pd.MultiIndex.from_arrays([opt["rlnMicrographPixelSize"].astype(np.float64), opt["rlnVoltage"].astype(np.float64),
                                     opt["rlnSphericalAberration"].astype(np.float64),
                                     opt["rlnAmplitudeContrast"].astype(np.float64)])
    return opt["rlnOpticsGroup"].to_numpy()[ref.get_indexer(key)]


def _frame_column(values, rows):
    """Values of ``rows`` (a slice or an index array) of one column, without copying the rest."""
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype):
            return pd.Categorical.from_codes(values.cat.codes.to_numpy()[rows], dtype=values.dtype)
        return values.to_numpy()[rows] if values.dtype != object else values.to_numpy(dtype=object)[rows]
    if isinstance(values, pd.Categorical):
        return pd.Categorical.from_codes(values.codes[rows], dtype=values.dtype)
    if np.isscalar(values):
        n = (rows.stop - rows.start) if isinstance(rows, slice) else len(rows)
        return np.full(n, values)
    return np.asarray(values)[rows]


def write_star_blocks(path, blocks: list[tuple[str, object]], *, rows=None, overwrite: bool = False,
                      protect: Iterable = (), chunk_rows: int = 200_000) -> Path:
    """Write STAR blocks atomically: ``(name, dict)`` for key-value blocks, ``(name, {label:
    column})`` (or a DataFrame) for loops. ``rows`` (an index array into every loop column of
    the *last* block, e.g. the kept picks) selects rows without building a copy of the table;
    text is formatted ``chunk_rows`` rows at a time."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            for k, (name, content) in enumerate(blocks):
                last = k == len(blocks) - 1
                if isinstance(content, dict) and not any(isinstance(v, (pd.Series, np.ndarray, pd.Categorical))
                                                         for v in content.values()):
                    write_pairs(out, name, content)
                    continue
                cols = dict(content.items()) if isinstance(content, dict) else {c: content[c] for c in content.columns}
                labels = list(cols)
                n_all = _n_rows(cols)
                sel = rows if (last and rows is not None) else None
                n = n_all if sel is None else len(sel)
                vals = [cols[lab] for lab in labels]

                def column(j, lo, hi, vals=vals, sel=sel):
                    r = slice(lo, hi) if sel is None else sel[lo:hi]
                    return _frame_column(vals[j], r)

                try:
                    write_loop(out, name, labels, n, column, chunk_rows=chunk_rows)
                except ValueError as err:
                    raise CryodiagInputError(f"cannot write block data_{name}: {err}", path) from None

    return atomic_write(path, write, overwrite=overwrite, protect=protect)


def _n_rows(cols: dict) -> int:
    for v in cols.values():
        if not np.isscalar(v):
            return len(v)
    return 1


def write_star(path, table: pd.DataFrame, optics: pd.DataFrame | None = None, *, overwrite: bool = False,
               protect: Iterable = (), rows=None) -> Path:
    """Write a canonical table as a RELION STAR file (atomically).

    With optics (given, kept from the source in ``table.attrs["optics"]``, or derivable from
    per-row ``pixel_size_A``/``voltage_kV``/``cs_mm``/``amplitude_contrast``) the file is
    RELION 3.1 style: ``data_optics`` then ``data_particles`` with ``rlnOpticsGroup``.
    Otherwise a single ``data_`` block (RELION 3.0 style). Canonical columns get their RELION
    labels back; columns RELION has no label for are written as ``_cryodiag_<name>`` (read back
    by this module under their own names). ``rows`` (row positions) writes only those rows.
    Values are written exactly (see :mod:`.star_text`); text with blanks is quoted. The source
    file (``table.attrs["source"]``) is never overwritten.
    """
    opt = optics_from_table(table, optics)
    protect = list(protect) + [p for p in [table.attrs.get("source")] + list(table.attrs.get("sources", []) or []) if p]
    frame = relion_frame(table, with_optics=opt is not None, optics=opt)
    if opt is not None:
        if "rlnOpticsGroup" not in frame:
            frame["rlnOpticsGroup"] = optics_groups_of_rows(table, opt)
        blocks = [("optics", opt), ("particles", frame)]
    else:
        blocks = [("", frame)]
    return write_star_blocks(path, blocks, rows=rows, overwrite=overwrite, protect=protect)
