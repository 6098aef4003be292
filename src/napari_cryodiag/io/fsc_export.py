"""FSC exports: CSV, EMDB FSC XML and a RELION-style ``postprocess.star``.

All writes are atomic (:mod:`napari_cryodiag.io.atomic`) and refuse to replace inputs.

- CSV: one row per shell: ``shell, frequency_invA, resolution_A`` and one column per curve.
- EMDB FSC XML (the deposition format): ``<fsc title=... xaxis="Resolution (A-1)"
  yaxis="Correlation Coefficient">`` with one ``<coordinate><x/><y/></coordinate>`` per shell;
  one file per curve (the corrected curve by default).
- ``postprocess.star``: blocks ``general`` (key/value), ``fsc`` and ``guinier`` with RELION's
  labels, readable by ``starfile.read`` and :func:`napari_cryodiag.io.star.read_postprocess`.
  RELION's Guinier columns are ln mean |F| (amplitudes), so this writer takes that curve.
"""

from __future__ import annotations

import os
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from .atomic import atomic_write, atomic_write_text

CURVE_ORDER = ("no_mask", "spherical", "loose", "tight", "user", "phase_randomised", "corrected")


def fsc_table(result) -> pd.DataFrame:
    """All curves of an :class:`~napari_cryodiag.compute.maps.fsc.FSCResult` as a per-shell table."""
    f = np.asarray(result.frequency_invA, float)
    with np.errstate(divide="ignore"):
        res = np.where(f > 0, 1.0 / np.where(f > 0, f, 1), np.inf)
    df = pd.DataFrame({"shell": np.arange(len(f)), "frequency_invA": f, "resolution_A": res})
    for name in CURVE_ORDER:
        if name in result.curves:
            df[f"fsc_{name}"] = np.asarray(result.curves[name], float)
    return df


def write_fsc_csv(path, result, *, overwrite: bool = False, protect=()):
    text = fsc_table(result).to_csv(index=False, float_format="%.6g")
    return atomic_write_text(path, text, overwrite=overwrite, protect=protect)


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


def postprocess_blocks(result, guinier_amplitude=None, fit_amplitude=None, *, half1_name="", half2_name="", mask_name="",
                       bfactor_used_A2: float = 0.0, sharpened_curve=None) -> dict:
    """The ``general``, ``fsc`` and ``guinier`` blocks (dict and DataFrames) of a postprocess.star."""
    f = np.asarray(result.frequency_invA, float)
    with np.errstate(divide="ignore"):
        ang = np.where(f > 0, 1.0 / np.where(f > 0, f, 1), 999.0)
    masked_name = result.corrected_mask
    fsc = pd.DataFrame(
        {
            "rlnSpectralIndex": np.arange(len(f)),
            "rlnResolution": f,
            "rlnAngstromResolution": ang,
            "rlnFourierShellCorrelationCorrected": result.curves["corrected"],
            "rlnFourierShellCorrelationUnmaskedMaps": result.curves["no_mask"],
            "rlnFourierShellCorrelationMaskedMaps": result.curves[masked_name],
            "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps": result.curves["phase_randomised"],
        }
    )
    general = {
        "rlnFinalResolution": float(result.resolution("corrected", 0.143).shell_edge_A),
        "rlnBfactorUsedForSharpening": float(bfactor_used_A2),
        "rlnUnfilteredMapHalf1": str(half1_name) or "half1",
        "rlnUnfilteredMapHalf2": str(half2_name) or "half2",
        "rlnMaskName": str(mask_name) or f"auto_{masked_name}",
        "rlnRandomiseFrom": float(result.randomise_from_A),
    }
    blocks = {"general": general, "fsc": fsc}
    if guinier_amplitude is not None:
        g = guinier_amplitude
        sel = np.isfinite(g.y)
        gdf = pd.DataFrame({"rlnResolutionSquared": g.x_invA2[sel], "rlnLogAmplitudesOriginal": g.y[sel]})
        if sharpened_curve is not None:
            ys = np.asarray(sharpened_curve.y)[sel]
            gdf["rlnLogAmplitudesSharpened"] = np.where(np.isfinite(ys), ys, -99.0)
        if fit_amplitude is not None:
            gdf["rlnLogAmplitudesIntercept"] = fit_amplitude.line(g.x_invA2[sel])
            general.update(
                {
                    "rlnFittedSlopeGuinierPlot": float(fit_amplitude.slope),
                    "rlnFittedInterceptGuinierPlot": float(fit_amplitude.intercept),
                    "rlnCorrelationFitGuinierPlot": float(fit_amplitude.correlation),
                }
            )
        blocks["guinier"] = gdf
    return blocks


def write_postprocess_star(path, result, guinier_amplitude=None, fit_amplitude=None, *, overwrite: bool = False,
                           protect=(), **kwargs):
    """Write a RELION-style postprocess.star (see :func:`postprocess_blocks` for the contents)."""
    import starfile

    blocks = postprocess_blocks(result, guinier_amplitude, fit_amplitude, **kwargs)
    return atomic_write(
        path, lambda p: starfile.write(blocks, p, float_format="%.6f"), overwrite=overwrite, protect=protect
    )
