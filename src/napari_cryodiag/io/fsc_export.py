"""FSC exports: CSV, EMDB FSC XML and a RELION-style ``postprocess.star``.

All writes are atomic (:mod:`napari_cryodiag.io.atomic`) and refuse to replace inputs.

- CSV: one row per shell: ``shell, frequency_invA, resolution_A`` and one column per curve.
- EMDB FSC XML (the deposition format): ``<fsc title=... xaxis="Resolution (A-1)"
  yaxis="Correlation Coefficient">`` with one ``<coordinate><x/><y/></coordinate>`` per shell;
  one file per curve (the corrected curve by default).
- ``postprocess.star``: blocks ``general`` (key/value), ``fsc`` and ``guinier`` with RELION's
  labels, readable by ``starfile.read`` and :func:`napari_cryodiag.io.star.read_postprocess`.
  RELION's Guinier columns are ln mean |F| (amplitudes), so this writer takes that curve.

The CSV and STAR texts are formatted here (the same text as pandas' ``to_csv`` and
``starfile.write`` gave, tested), so that ``cryodiag fsc`` needs neither pandas nor starfile;
:func:`fsc_table` and :func:`postprocess_blocks` still give pandas tables to callers that want them.
"""

from __future__ import annotations

import os
from xml.sax.saxutils import quoteattr

import numpy as np

from .atomic import atomic_write_text

CURVE_ORDER = ("no_mask", "spherical", "loose", "tight", "user", "phase_randomised", "corrected")


def _fsc_columns(result) -> dict[str, np.ndarray]:
    f = np.asarray(result.frequency_invA, float)
    with np.errstate(divide="ignore"):
        res = np.where(f > 0, 1.0 / np.where(f > 0, f, 1), np.inf)
    cols = {"shell": np.arange(len(f)), "frequency_invA": f, "resolution_A": res}
    for name in CURVE_ORDER:
        if name in result.curves:
            cols[f"fsc_{name}"] = np.asarray(result.curves[name], float)
    return cols


def fsc_table(result):
    """All curves of an :class:`~napari_cryodiag.compute.maps.fsc.FSCResult` as a per-shell table
    (a pandas DataFrame: the columns of :func:`write_fsc_csv`)."""
    import pandas as pd

    return pd.DataFrame(_fsc_columns(result))


def _text_column(values, float_format: str, na_rep: str) -> list[str]:
    """One column as text, as pandas' ``to_csv(float_format=...)`` writes it: integers as
    integers, floats through ``float_format`` (``inf`` as ``inf``), NaN as ``na_rep``."""
    v = np.asarray(values)
    if v.dtype.kind in "iub":
        return [str(x) for x in v.tolist()]
    return [na_rep if x != x else float_format % x for x in v.astype(float).tolist()]


def _table_lines(columns: dict, sep: str, float_format: str, na_rep: str) -> list[str]:
    texts = [_text_column(c, float_format, na_rep) for c in columns.values()]
    return [sep.join(row) for row in zip(*texts)]


def fsc_csv_text(result) -> str:
    """The text of :func:`write_fsc_csv`: a header line, then one line per shell (``%.6g``)."""
    cols = _fsc_columns(result)
    return "".join(line + "\n" for line in [",".join(cols), *_table_lines(cols, ",", "%.6g", "")])


def write_fsc_csv(path, result, *, overwrite: bool = False, protect=()):
    return atomic_write_text(path, fsc_csv_text(result), overwrite=overwrite, protect=protect)


def fsc_xml_text(frequency_invA, curve, title: str = "FSC") -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<fsc title={quoteattr(title)} xaxis="Resolution (A-1)" yaxis="Correlation Coefficient">',
    ]
    for x, y in zip(np.asarray(frequency_invA, float), np.asarray(curve, float)):
        lines.append(f"  <coordinate>\n    <x>{x:.6f}</x>\n    <y>{y:.6f}</y>\n  </coordinate>")
    lines.append("</fsc>")
    return "\n".join(lines) + "\n"


def write_fsc_xml(path, result, curve: str = "corrected", title: str | None = None, *, overwrite: bool = False, protect=()):
    """EMDB FSC XML of one curve of ``result``."""
    if title is None:
        title = f"{curve} FSC, {result.box} px box, {result.pixel_size_A:.4g} A/px"
    text = fsc_xml_text(result.frequency_invA, result.curves[curve], title)
    return atomic_write_text(path, text, overwrite=overwrite, protect=protect)


def read_fsc_xml(path) -> tuple[np.ndarray, np.ndarray, str]:
    """Read back an EMDB FSC XML: ``(x_invA, y, title)``."""
    import xml.etree.ElementTree as ET

    root = ET.parse(os.fspath(path)).getroot()
    xs = [float(c.findtext("x")) for c in root.iter("coordinate")]
    ys = [float(c.findtext("y")) for c in root.iter("coordinate")]
    return np.array(xs), np.array(ys), root.get("title", "")


def _postprocess_parts(result, guinier_amplitude=None, fit_amplitude=None, *, half1_name="", half2_name="",
                       mask_name="", bfactor_used_A2: float = 0.0, sharpened_curve=None):
    """``(general, fsc columns, guinier columns or None)`` of a postprocess.star (column dicts)."""
    f = np.asarray(result.frequency_invA, float)
    with np.errstate(divide="ignore"):
        ang = np.where(f > 0, 1.0 / np.where(f > 0, f, 1), 999.0)
    masked_name = result.corrected_mask
    fsc = {
        "rlnSpectralIndex": np.arange(len(f)),
        "rlnResolution": f,
        "rlnAngstromResolution": ang,
        "rlnFourierShellCorrelationCorrected": result.curves["corrected"],
        "rlnFourierShellCorrelationUnmaskedMaps": result.curves["no_mask"],
        "rlnFourierShellCorrelationMaskedMaps": result.curves[masked_name],
        "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps": result.curves["phase_randomised"],
    }
    general = {
        "rlnFinalResolution": float(result.resolution("corrected", 0.143).shell_edge_A),
        "rlnBfactorUsedForSharpening": float(bfactor_used_A2),
        "rlnUnfilteredMapHalf1": str(half1_name) or "half1",
        "rlnUnfilteredMapHalf2": str(half2_name) or "half2",
        "rlnMaskName": str(mask_name) or f"auto_{masked_name}",
        "rlnRandomiseFrom": float(result.randomise_from_A),
    }
    gcols = None
    if guinier_amplitude is not None:
        g = guinier_amplitude
        sel = np.isfinite(g.y)
        gcols = {"rlnResolutionSquared": g.x_invA2[sel], "rlnLogAmplitudesOriginal": g.y[sel]}
        if sharpened_curve is not None:
            ys = np.asarray(sharpened_curve.y)[sel]
            gcols["rlnLogAmplitudesSharpened"] = np.where(np.isfinite(ys), ys, -99.0)
        if fit_amplitude is not None:
            gcols["rlnLogAmplitudesIntercept"] = fit_amplitude.line(g.x_invA2[sel])
            general.update(
                {
                    "rlnFittedSlopeGuinierPlot": float(fit_amplitude.slope),
                    "rlnFittedInterceptGuinierPlot": float(fit_amplitude.intercept),
                    "rlnCorrelationFitGuinierPlot": float(fit_amplitude.correlation),
                }
            )
    return general, fsc, gcols


def postprocess_blocks(result, guinier_amplitude=None, fit_amplitude=None, **kwargs) -> dict:
    """The ``general``, ``fsc`` and ``guinier`` blocks (dict and DataFrames) of a postprocess.star
    (keyword arguments: the names, ``bfactor_used_A2``, ``sharpened_curve``)."""
    import pandas as pd

    general, fsc, gcols = _postprocess_parts(result, guinier_amplitude, fit_amplitude, **kwargs)
    blocks = {"general": general, "fsc": pd.DataFrame(fsc)}
    if gcols is not None:
        blocks["guinier"] = pd.DataFrame(gcols)
    return blocks


def _star_value(v) -> str:
    """A key/value STAR entry: text as the project's STAR writer quotes it
    (:func:`~napari_cryodiag.io.star_text.quote_value`: when empty, with blanks, or when it would
    read as a label, comment or block), numbers as Python prints them (as starfile wrote them)."""
    from .star_text import quote_value

    return quote_value(v) if isinstance(v, str) else f"{v}"


def postprocess_star_text(result, guinier_amplitude=None, fit_amplitude=None, **kwargs) -> str:
    """The text of :func:`write_postprocess_star`: the layout ``starfile.write(blocks,
    float_format="%.6f")`` gives (tab-separated loops, ``_name #i`` headers, two blank lines
    after each block), with a header comment naming this package."""
    from datetime import datetime

    from .. import __version__

    general, fsc, gcols = _postprocess_parts(result, guinier_amplitude, fit_amplitude, **kwargs)
    now = datetime.now()
    lines = [f"# Created by napari-cryodiag (version {__version__}) at {now:%H:%M:%S} on {now:%d/%m/%Y}", "", ""]
    lines += ["data_general", ""] + [f"_{k}\t\t\t{_star_value(v)}" for k, v in general.items()] + ["", ""]
    for name, cols in (("fsc", fsc), ("guinier", gcols)):
        if cols is None:
            continue
        lines += [f"data_{name}", "", "loop_"] + [f"_{c} #{i}" for i, c in enumerate(cols, 1)]
        lines += _table_lines(cols, "\t", "%.6f", "<NA>") + ["", ""]
    return "".join(line + "\n" for line in lines)


def write_postprocess_star(path, result, guinier_amplitude=None, fit_amplitude=None, *, overwrite: bool = False,
                           protect=(), **kwargs):
    """Write a RELION-style postprocess.star (see :func:`postprocess_blocks` for the contents)."""
    text = postprocess_star_text(result, guinier_amplitude, fit_amplitude, **kwargs)
    return atomic_write_text(path, text, overwrite=overwrite, protect=protect)
