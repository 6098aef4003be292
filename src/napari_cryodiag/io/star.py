"""RELION STAR files: picks and particles (RELION 3.0, 3.1+ with optics, 5), postprocess.star,
writing.

The parser is a small block scanner that hands each loop's data lines to pandas' C reader
(``sep=r"\\s+"``), with name columns (micrograph/image names) always read as strings so that
a micrograph called ``0003`` stays ``"0003"``.

Canonical table (docs/ARCHITECTURE.md): RELION labels with a canonical meaning are renamed
(``rlnCoordinateX`` -> ``x_px``, ``rlnDefocusU`` -> ``defocus_u_A`` ...); every other column
keeps its RELION label without the ``rln`` prefix removed (``rlnAutopickFigureOfMerit``).
Optics-group values (RELION >= 3.1) are merged per row. Coordinates are used as they are
(``x_px = rlnCoordinateX``, ``y_px = rlnCoordinateY``, pixel centres at integers).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError
from ..micrographs import categorical_names_and_keys, micrograph_key
from .paths import expand_table_paths
from .atomic import atomic_write

__all__ = [
    "read_star",
    "read_star_table",
    "read_postprocess",
    "write_star",
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
_OPTICS_TO_CANONICAL = {
    "rlnVoltage": "voltage_kV",
    "rlnSphericalAberration": "cs_mm",
    "rlnAmplitudeContrast": "amplitude_contrast",
}
_STRING_LABEL = re.compile(r"(Name|Image|Zernike|Movie|File|Coordinates|Path)$|^rlnImageName|^rlnMicrograph", re.I)
_NUMERIC_MICROGRAPH = {"rlnMicrographPixelSize", "rlnMicrographOriginalPixelSize", "rlnMicrographId",
                       "rlnMicrographBinning", "rlnMicrographDoseRate", "rlnMicrographPreExposure",
                       "rlnMicrographStartFrame", "rlnMicrographEndFrame", "rlnMicrographFrameNumber"}
_DATA_RE = re.compile(rb"(?m)^[ \t]*data_(\S*)[ \t]*\r?$")
_BLANK_RE = re.compile(rb"\n[ \t\r]*(?:\n|$)")


# --------------------------------------------------------------------------- parsing


def _is_string_label(label: str) -> bool:
    return bool(_STRING_LABEL.search(label)) and label not in _NUMERIC_MICROGRAPH


def _parse_value(tok: str):
    tok = tok.strip()
    if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "\"'":
        return tok[1:-1]
    try:
        v = int(tok)
        return v
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok


def _block_starts(buf: bytes) -> list[tuple[int, int, str]]:
    """(start, end of the ``data_name`` token, name) of each block; ``data_`` must begin a line
    (after optional blanks). Uses ``bytes.find`` (fast on big files) instead of a regex scan."""
    out = []
    pos = 0
    while True:
        i = buf.find(b"data_", pos)
        if i < 0:
            return out
        j = i
        while j > 0 and buf[j - 1] in b" \t":
            j -= 1
        if j == 0 or buf[j - 1] in b"\r\n":
            m = _DATA_RE.match(buf, j)
            if m:
                out.append((m.start(), m.end(), m.group(1).decode(errors="replace")))
                pos = m.end()
                continue
        pos = i + 5


def read_star(path, *, blocks: Iterable[str] | None = None) -> dict[str, "pd.DataFrame | dict"]:
    """Read a STAR file into ``{block name: DataFrame (loops) | dict (key-value pairs)}``.

    The block ``data_`` has the name ``""``. ``blocks`` limits which blocks are parsed.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise CryodiagInputError("file not found", path) from None
    except IsADirectoryError:
        raise CryodiagInputError("is a folder, not a STAR file", path) from None
    starts = _block_starts(buf)
    if not starts:
        raise CryodiagInputError("not a STAR file: no 'data_' block", path)
    want = None if blocks is None else set(blocks)
    out: dict = {}
    for i, (s, e, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(buf)
        if want is not None and name not in want:
            continue
        out[name] = _parse_block(buf, e, end, path, name)
    return out


def _parse_block(buf: bytes, pos: int, end: int, path: str, name: str):
    pairs: dict = {}
    labels: list[str] = []
    in_loop = False
    while pos < end:
        nl = buf.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl
        line = buf[pos:line_end].decode(errors="replace").strip()
        if not line or line.startswith("#"):
            pos = line_end + 1
            continue
        if line.startswith("loop_"):
            in_loop = True
            labels = []
            pos = line_end + 1
            continue
        if line.startswith("_"):
            parts = line.split(None, 1)
            label = parts[0][1:]
            if in_loop:
                labels.append(label)
            else:
                val = parts[1].split("#")[0] if len(parts) > 1 else ""
                pairs[label] = _parse_value(val) if val.strip() else ""
            pos = line_end + 1
            continue
        if in_loop:
            # data lines run to the first blank line (or the block's end)
            m = _BLANK_RE.search(buf, pos, end)
            data_end = m.start() + 1 if m else end
            return _read_loop(buf[pos:data_end], labels, path, name)
        raise CryodiagInputError(f"unexpected line in block data_{name}: {line[:60]!r}", path)
    if in_loop:
        return pd.DataFrame({lab: pd.Series(dtype=str if _is_string_label(lab) else float) for lab in labels})
    return pairs


def _read_loop(data: bytes, labels: list[str], path: str, name: str) -> pd.DataFrame:
    if not labels:
        raise CryodiagInputError(f"loop without labels in block data_{name}", path)
    dtypes = {lab: object for lab in labels if _is_string_label(lab)}
    try:
        df = pd.read_csv(
            io.BytesIO(data),
            sep=r"\s+",
            header=None,
            names=labels,
            dtype=dtypes,
            quotechar='"',
            engine="c",
            na_values=["<NA>", "nan", "NaN"],
            keep_default_na=False,
            comment=None,
        )
    except (pd.errors.ParserError, ValueError) as err:
        raise CryodiagInputError(f"cannot parse the loop of block data_{name}: {err}", path) from None
    _check_loop(df, labels, path, name)
    return df


def _check_loop(df: pd.DataFrame, labels: list[str], path: str, name: str) -> None:
    """Rows with fewer values than labels, and words in the numeric columns cryodiag uses, are errors.

    The C parser pads a short row with empty strings (``keep_default_na=False``), so a short row
    shows as ``""`` in the last column; only that column is scanned (and only when it is not numeric).
    """
    if not len(df):
        return
    last = df[labels[-1]]
    if not pd.api.types.is_numeric_dtype(last.dtype):
        short = (last.astype(object) == "").to_numpy()
        if short.any():
            i = int(np.argmax(short))
            raise CryodiagInputError(
                f"row {i + 1} of the loop of block data_{name} has fewer values than its {len(labels)} labels "
                "(truncated or hand-edited file?)", path)
    for lab in labels:
        if lab in RLN_TO_CANONICAL and not _is_string_label(lab) and not pd.api.types.is_numeric_dtype(df[lab].dtype):
            bad = pd.to_numeric(df[lab], errors="coerce").isna().to_numpy() & df[lab].notna().to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                raise CryodiagInputError(
                    f"_{lab} has a value that is not a number ({df[lab].iloc[i]!r}) in row {i + 1} of the loop "
                    f"of block data_{name}", path)


# --------------------------------------------------------------------------- tables


def _pick_block(blocks: dict, path: str) -> tuple[str, pd.DataFrame]:
    loops = {k: v for k, v in blocks.items() if isinstance(v, pd.DataFrame) and k != "optics"}
    for pref in ("particles", "", "coordinates", "micrographs", "images"):
        if pref in loops:
            return pref, loops[pref]
    if loops:
        k = next(iter(loops))
        return k, loops[k]
    raise CryodiagInputError("STAR file has no table (loop_) of picks or particles", path)


def _pixel_size_columns(df: pd.DataFrame) -> pd.Series | None:
    for lab in ("rlnMicrographPixelSize", "rlnImagePixelSize", "rlnMicrographOriginalPixelSize", "rlnPixelSize"):
        if lab in df.columns:
            return pd.to_numeric(df[lab], errors="coerce")
    if "rlnDetectorPixelSize" in df.columns and "rlnMagnification" in df.columns:
        det = pd.to_numeric(df["rlnDetectorPixelSize"], errors="coerce")
        mag = pd.to_numeric(df["rlnMagnification"], errors="coerce")
        return det * 1e4 / mag  # detector pixel (µm) / magnification -> Å
    return None


def _canonical(df: pd.DataFrame, optics: pd.DataFrame | None, path: str, *, file_name_key: str | None = None) -> pd.DataFrame:

    n = len(df)
    out = df.copy()
    derived: list[str] = []
    optics_cols: list[str] = []
    # optics groups -> per-row values
    if optics is not None and len(optics) and "rlnOpticsGroup" in optics.columns:
        if "rlnOpticsGroup" not in out.columns:
            if len(optics) == 1:
                out["rlnOpticsGroup"] = int(optics["rlnOpticsGroup"].iloc[0])
            else:
                raise CryodiagInputError(
                    f"{len(optics)} optics groups but the table has no rlnOpticsGroup column", path
                )
        opt = optics.set_index("rlnOpticsGroup")
        grp = pd.to_numeric(out["rlnOpticsGroup"], errors="coerce")
        missing = set(grp.dropna().unique()) - set(opt.index)
        if missing:
            raise CryodiagInputError(
                f"rows refer to optics groups {sorted(missing)} missing from data_optics", path
            )
        for lab in opt.columns:
            if lab in out.columns or lab == "rlnOpticsGroupName":
                continue
            if lab in ("rlnOddZernike", "rlnEvenZernike"):
                continue
            vals = pd.to_numeric(opt[lab], errors="coerce") if lab not in ("rlnOpticsGroupName",) else opt[lab]
            if vals.isna().all():
                continue
            out[lab] = grp.map(vals).to_numpy()
            optics_cols.append(lab)
    # pixel size
    ps = _pixel_size_columns(out)
    if ps is not None:
        out["pixel_size_A"] = ps.to_numpy(dtype=float)
        derived.append("pixel_size_A")
    # renames
    rename = {k: v for k, v in RLN_TO_CANONICAL.items() if k in out.columns}
    out = out.rename(columns=rename)
    optics_cols = [rename.get(c, c) for c in optics_cols]
    if "micrograph_name" in out.columns:
        out["micrograph_name"], out["micrograph"] = categorical_names_and_keys(
            out["micrograph_name"].to_numpy(dtype=object))
        derived.append("micrograph")
    elif file_name_key is not None:
        out["micrograph"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8),
                                                      categories=pd.Index([file_name_key], dtype=object))
        derived.append("micrograph")
    if "defocus_u_A" in out.columns and "defocus_v_A" in out.columns:
        out["defocus_A"] = (out["defocus_u_A"].astype(float) + out["defocus_v_A"].astype(float)) / 2
        derived.append("defocus_A")
    elif "defocus_u_A" in out.columns:
        out["defocus_A"] = out["defocus_u_A"].astype(float)
        derived.append("defocus_A")
    # RELION < 3.1 origins in pixels -> Å
    if "shift_x_A" not in out.columns and "rlnOriginX" in out.columns:
        img_ps = None
        for lab in ("rlnImagePixelSize",):
            if lab in out.columns:
                img_ps = out[lab].astype(float)
        if img_ps is None and "pixel_size_A" in out.columns:
            img_ps = out["pixel_size_A"]
        if img_ps is not None:
            out["shift_x_A"] = out["rlnOriginX"].astype(float) * img_ps
            derived.append("shift_x_A")
            if "rlnOriginY" in out.columns:
                out["shift_y_A"] = out["rlnOriginY"].astype(float) * img_ps
                derived.append("shift_y_A")
    if "rlnImageName" in out.columns:
        idx, paths = _split_image_names(out["rlnImageName"].to_numpy(dtype=object))
        out["image_index"] = idx
        out["image_path"] = paths
        derived += ["image_index", "image_path"]
    if "rlnRandomSubset" in out.columns:
        out["split"] = pd.to_numeric(out["rlnRandomSubset"], errors="coerce") - 1
        derived.append("split")
    for col in list(out.columns):
        if col.startswith("cryodiag_"):  # written by write_star for columns RELION has no label for
            out = out.rename(columns={col: col[len("cryodiag_"):]})
    out["source_row"] = np.arange(n, dtype=np.int64)
    out.attrs = {
        "source": path,
        "format": "star",
        "convention": STAR_CONVENTION,
        "optics": optics,
        "derived_columns": derived,
        "optics_columns": optics_cols,
    }
    return out


def _split_image_names(names: np.ndarray):
    """``"000042@stack.mrcs"`` -> (41, "stack.mrcs") for every row, with pandas' C parser."""
    n = len(names)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.array([], dtype=object)
    text = "\n".join(str(v) for v in names) if n < 1000 else "\n".join(names.astype(str).tolist())
    if "@" not in text:
        return np.zeros(n, dtype=np.int64), names.astype(str).astype(object)
    parts = pd.read_csv(io.StringIO(text), sep="@", header=None, names=["i", "p"], dtype={"i": object, "p": object},
                        engine="c", na_filter=False, quoting=3)
    if len(parts) != n:  # a name with a newline or quotes: fall back to Python
        parts = pd.DataFrame([str(v).split("@", 1) if "@" in str(v) else ["", str(v)] for v in names], columns=["i", "p"])
    no_at = parts["p"].eq("") & ~pd.Series(names).astype(str).str.contains("@", regex=False) if (parts["p"] == "").any() else None
    idx = pd.to_numeric(parts["i"], errors="coerce")
    paths = parts["p"].to_numpy(dtype=object)
    if no_at is not None and no_at.any():
        paths[no_at.to_numpy()] = parts["i"].to_numpy(dtype=object)[no_at.to_numpy()]
        idx[no_at.to_numpy()] = np.nan
    idx = idx - 1
    return (idx.astype("Int64") if idx.isna().any() else idx.astype(np.int64)).to_numpy(), paths


def read_star_table(path, *, block: str | None = None, require_coordinates: bool = False) -> pd.DataFrame:
    """Read picks or particles from a STAR file, a list, folder or glob of STAR files.

    Several files (RELION autopick writes one per micrograph) become one table; a file without
    ``rlnMicrographName`` gets its micrograph from the file name (``mic_autopick.star`` ->
    ``mic``) and the column ``source_file``. ``require_coordinates=True`` raises when the table
    has no ``rlnCoordinateX/Y`` (a particle table cannot be shown as picks).
    """

    if isinstance(path, (list, tuple)) or os.path.isdir(os.fspath(path)) or any(c in os.fspath(path) for c in "*?["):
        if isinstance(path, (list, tuple)):
            files = [os.fspath(p) for p in path]
        else:
            files = [f for f in expand_table_paths(os.fspath(path)) if f.lower().endswith(".star")]
        if not files:
            raise CryodiagInputError("no STAR files", path)
        tables = []
        for f in files:
            tables.append(read_star_table(f, block=block, require_coordinates=require_coordinates))
        out = pd.concat(tables, ignore_index=True, sort=False)
        out["source_file"] = np.concatenate([np.full(len(t), f, dtype=object) for f, t in zip(files, tables)])
        out.attrs = dict(tables[0].attrs)
        out.attrs["source"] = os.fspath(path) if not isinstance(path, (list, tuple)) else files[0]
        out.attrs["sources"] = files
        optics = [t.attrs.get("optics") for t in tables if t.attrs.get("optics") is not None]
        out.attrs["optics"] = optics[0] if optics else None
        return out
    path = os.fspath(path)
    blocks = read_star(path)
    if _looks_like_postprocess(blocks):
        raise CryodiagInputError(
            "this is a RELION postprocess.star (FSC/Guinier), not a table of picks; "
            "use read_postprocess", path
        )
    name, df = _pick_block(blocks, path) if block is None else (block, blocks.get(block))
    if df is None or not isinstance(df, pd.DataFrame):
        raise CryodiagInputError(f"STAR file has no loop block data_{block}", path)
    optics = blocks.get("optics") if isinstance(blocks.get("optics"), pd.DataFrame) else None
    if "rlnMicrographCoordinates" in df.columns and "rlnCoordinateX" not in df.columns:
        return _read_coordinate_index(path, df, optics)
    key = None if "rlnMicrographName" in df.columns else micrograph_key(os.path.basename(path))
    table = _canonical(df, optics, path, file_name_key=key)
    table.attrs["block"] = name
    if require_coordinates and not ("x_px" in table.columns and "y_px" in table.columns):
        raise CryodiagInputError(
            "STAR table has no rlnCoordinateX/rlnCoordinateY: nothing to place on micrographs "
            "(it can still be read as a particle table)", path
        )
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
    tables, missing = [], []
    for _, row in df.iterrows():
        rel = str(row["rlnMicrographCoordinates"])
        f = _resolve_relion_path(path, rel)
        if f is None:
            missing.append(rel)
            continue
        blocks = read_star(f)
        try:
            _, loop = _pick_block(blocks, f)
        except CryodiagInputError:
            continue  # a micrograph without picks may have an empty file
        loop = loop.copy()
        if "rlnMicrographName" not in loop.columns and "rlnMicrographName" in df.columns:
            loop["rlnMicrographName"] = str(row["rlnMicrographName"])
        loop["source_file"] = f
        tables.append(loop)
    if not tables:
        raise CryodiagInputError(
            f"coordinate index lists {len(df)} files but none was found "
            f"(paths are relative to the RELION project folder; first: {missing[:1]})", path
        )
    merged = pd.concat(tables, ignore_index=True, sort=False)
    src = merged.pop("source_file").to_numpy(dtype=object)
    table = _canonical(merged, optics, path)
    table["source_file"] = src
    table.attrs["block"] = "coordinate index"
    table.attrs["has_locations"] = "x_px" in table.columns
    table.attrs["sources"] = sorted(set(src))
    if missing:
        table.attrs["note"] = f"{len(missing)} coordinate files listed in the index were not found"
    return table


def _looks_like_postprocess(blocks: dict) -> bool:
    return "fsc" in blocks and isinstance(blocks.get("fsc"), pd.DataFrame) and "general" in blocks


def read_postprocess(path) -> dict:
    """RELION ``postprocess.star`` -> ``{"general": dict, "fsc": DataFrame, "guinier": DataFrame}``.

    Columns keep their RELION labels (``rlnResolution`` in 1/Å, ``rlnAngstromResolution``,
    ``rlnFourierShellCorrelationCorrected`` ...; Guinier ``rlnResolutionSquared`` and
    ``rlnLogAmplitudes*``). ``general`` holds e.g. ``rlnFinalResolution``.
    """
    path = os.fspath(path)
    blocks = read_star(path)
    if "fsc" not in blocks or not isinstance(blocks["fsc"], pd.DataFrame):
        raise CryodiagInputError("not a RELION postprocess.star: no data_fsc table", path)
    general = blocks.get("general")
    if not isinstance(general, dict):
        general = {}
    guinier = blocks.get("guinier")
    if not isinstance(guinier, pd.DataFrame):
        guinier = pd.DataFrame()
    return {"general": general, "fsc": blocks["fsc"], "guinier": guinier, "path": path}


# --------------------------------------------------------------------------- writing


def _fmt_series(s: pd.Series) -> pd.Series:
    if s.dtype.kind == "f":
        return s.map(lambda v: "%.6f" % v if np.isfinite(v) else "nan") if len(s) < 2000 else pd.Series(
            np.char.mod("%.6f", s.to_numpy(dtype=float)), index=s.index)
    if s.dtype.kind in "iu":
        return s.astype(str)
    if s.dtype.kind == "b":
        return s.astype(int).astype(str)
    vals = s.astype(str)
    return vals.where(~vals.str.contains(r"\s", regex=True), '"' + vals + '"')


def _loop_text(name: str, df: pd.DataFrame) -> str:
    lines = [f"\n# version 30001\n\ndata_{name}\n\nloop_\n"]
    for i, c in enumerate(df.columns, 1):
        lines.append(f"_{c} #{i}\n")
    head = "".join(lines)
    if len(df) == 0:
        return head + "\n"
    cols = [_fmt_series(df[c]).to_numpy(dtype=object) for c in df.columns]
    body = pd.DataFrame(dict(enumerate(cols))).to_csv(sep=" ", header=False, index=False, quoting=3, lineterminator="\n")
    return head + body + "\n"


def _to_relion_frame(table: pd.DataFrame, *, with_optics: bool, optics: pd.DataFrame | None = None) -> pd.DataFrame:
    derived = set(table.attrs.get("derived_columns", []))
    optics_cols = set(table.attrs.get("optics_columns", [])) if with_optics else set()
    if with_optics and optics is not None:  # values carried by the optics block, not per particle
        optics_cols |= {RLN_TO_CANONICAL.get(c, c) for c in optics.columns if c != "rlnOpticsGroup"}
    src_format = table.attrs.get("format")
    cols = {}
    for c in table.columns:
        if c in ("source_row", "source_file", "micrograph"):
            continue
        if c in optics_cols:
            continue
        if src_format == "star" and c in derived and c not in ("shift_x_A", "shift_y_A"):
            continue  # recomputed from the RELION labels kept beside it
        if c in ("shift_x_A", "shift_y_A") and src_format == "star" and c in derived:
            continue  # pre-3.1 origins (rlnOriginX in px) are kept as they were
        s = table[c]
        if c == "image_index" or c == "image_path":
            continue
        if c == "split":
            cols["rlnRandomSubset"] = (pd.to_numeric(s, errors="coerce") + 1).astype("Int64")
            continue
        if c == "pixel_size_A" or c == "defocus_A":
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
            if s.dtype.kind not in "iufb" and c not in ("image_path",):
                if s.dtype == object and len(s) and not isinstance(s.iloc[0], str):
                    continue
            cols["cryodiag_" + re.sub(r"\s", "_", c)] = s
    if "image_path" in table.columns and "rlnImageName" not in cols:
        idx = pd.to_numeric(table.get("image_index", pd.Series(0, index=table.index)), errors="coerce").fillna(0).astype(np.int64) + 1
        cols["rlnImageName"] = idx.map(lambda i: "%06d" % i) + "@" + table["image_path"].astype(str)
    if "rlnMicrographName" not in cols and "micrograph" in table.columns:
        cols["rlnMicrographName"] = table["micrograph"].astype(str)
    return pd.DataFrame(cols, index=table.index)


def _optics_from_table(table: pd.DataFrame, optics) -> pd.DataFrame | None:
    if optics is not None:
        return optics
    opt = table.attrs.get("optics")
    if isinstance(opt, pd.DataFrame) and len(opt):
        return opt
    need = ["pixel_size_A", "voltage_kV", "cs_mm", "amplitude_contrast"]
    if all(c in table.columns for c in need) and len(table):
        g = table[need].astype(float).drop_duplicates().reset_index(drop=True)
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


def write_star(path, table: pd.DataFrame, optics: pd.DataFrame | None = None, *, overwrite: bool = False,
               protect: Iterable = ()) -> Path:
    """Write a canonical table as a RELION STAR file (atomically).

    With optics (given, kept from the source in ``table.attrs["optics"]``, or derivable from
    per-row ``pixel_size_A``/``voltage_kV``/``cs_mm``/``amplitude_contrast``) the file is
    RELION 3.1 style: ``data_optics`` then ``data_particles`` with ``rlnOpticsGroup``.
    Otherwise a single ``data_`` block (RELION 3.0 style). Canonical columns get their RELION
    labels back; columns RELION has no label for are written as ``_cryodiag_<name>`` (read back
    by this module under their own names). The source file (``table.attrs["source"]``) is never
    overwritten.
    """
    opt = _optics_from_table(table, optics)
    protect = list(protect) + [p for p in [table.attrs.get("source")] + list(table.attrs.get("sources", []) or []) if p]
    frame = _to_relion_frame(table, with_optics=opt is not None, optics=opt)
    if opt is not None:
        opt = opt.copy()
        if "rlnOpticsGroup" not in frame.columns:
            if "rlnOpticsGroup" in table.columns:
                frame["rlnOpticsGroup"] = table["rlnOpticsGroup"].to_numpy()
            elif len(opt) == 1:
                frame["rlnOpticsGroup"] = int(opt["rlnOpticsGroup"].iloc[0])
            else:
                need = ["pixel_size_A", "voltage_kV", "cs_mm", "amplitude_contrast"]
                key = pd.MultiIndex.from_frame(table[need].astype(float))
                ref = pd.MultiIndex.from_arrays([opt["rlnMicrographPixelSize"], opt["rlnVoltage"],
                                                 opt["rlnSphericalAberration"], opt["rlnAmplitudeContrast"]])
                frame["rlnOpticsGroup"] = opt["rlnOpticsGroup"].to_numpy()[ref.get_indexer(key)]
        text = _loop_text("optics", opt) + _loop_text("particles", frame)
    else:
        text = _loop_text("", frame)
    return atomic_write(path, lambda p: p.write_text(text), overwrite=overwrite, protect=protect)
