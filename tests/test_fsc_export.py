"""Exports: postprocess.star read back by starfile (and our reader), EMDB XML, CSV; atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import starfile

from napari_cryodiag.compute.maps.fsc import fsc_family
from napari_cryodiag.compute.maps.guinier import fit_guinier, guinier_curve_of_map
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io.fsc_export import read_fsc_xml, write_fsc_csv, write_fsc_xml, write_postprocess_star


@pytest.fixture(scope="module")
def result():
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=48, pixel_size_A=2.0, resolution_A=7.0)
    return sim, fsc_family(sim.half1, sim.half2, sim.pixel_size_A)


def test_postprocess_star_roundtrip(tmp_path, result):
    sim, r = result
    g = guinier_curve_of_map((sim.half1 + sim.half2) / 2, 2.0, "amplitude", mask=r.masks["tight"])
    fit = fit_guinier(g, 14.0, 6.0)
    path = write_postprocess_star(tmp_path / "postprocess.star", r, g, fit, half1_name="h1.mrc", half2_name="h2.mrc")
    blocks = starfile.read(path)
    assert set(blocks) == {"general", "fsc", "guinier"}
    gen = blocks["general"]
    assert gen["rlnFinalResolution"] == pytest.approx(r.resolution("corrected").shell_edge_A, abs=1e-5)
    assert gen["rlnRandomiseFrom"] == pytest.approx(r.randomise_from_A, abs=1e-5)
    assert gen["rlnUnfilteredMapHalf1"] == "h1.mrc"
    fsc = blocks["fsc"]
    np.testing.assert_allclose(fsc["rlnFourierShellCorrelationCorrected"], r.curves["corrected"], atol=1e-6)
    np.testing.assert_allclose(fsc["rlnFourierShellCorrelationMaskedMaps"], r.curves["tight"], atol=1e-6)
    np.testing.assert_allclose(fsc["rlnResolution"], r.frequency_invA, atol=1e-6)
    assert len(blocks["guinier"]) > 5 and "rlnLogAmplitudesIntercept" in blocks["guinier"]
    from napari_cryodiag.io.star import read_postprocess

    assert len(read_postprocess(path)["fsc"]) == len(r.frequency_invA)
    # atomic & non-destructive
    with pytest.raises(CryodiagInputError, match="exists"):
        write_postprocess_star(path, r, g, fit)


def test_xml_and_csv(tmp_path, result):
    _, r = result
    x, y, title = read_fsc_xml(write_fsc_xml(tmp_path / "fsc.xml", r))
    np.testing.assert_allclose(x, r.frequency_invA, atol=1e-6)
    np.testing.assert_allclose(y, r.curves["corrected"], atol=1e-6)
    assert "corrected" in title
    text = (tmp_path / "fsc.xml").read_text()
    assert 'xaxis="Resolution (A-1)"' in text and 'yaxis="Correlation Coefficient"' in text
    t = pd.read_csv(write_fsc_csv(tmp_path / "fsc.csv", r))
    assert list(t.columns[:3]) == ["shell", "frequency_invA", "resolution_A"]
    for name in ("no_mask", "spherical", "loose", "tight", "phase_randomised", "corrected"):
        np.testing.assert_allclose(t[f"fsc_{name}"], r.curves[name], atol=1e-5)
    with pytest.raises(CryodiagInputError, match="input"):
        write_fsc_csv(tmp_path / "fsc.csv", r, overwrite=True, protect=[tmp_path / "fsc.csv"])


def test_texts_as_pandas_and_starfile_wrote_them(tmp_path, result):
    """The CSV and STAR are formatted without pandas/starfile: the same text as before, to the byte
    (the STAR's first line, a comment with the time, names this package)."""
    import dataclasses

    from napari_cryodiag.io.fsc_export import fsc_csv_text, fsc_table, postprocess_blocks, postprocess_star_text

    sim, r = result
    g = guinier_curve_of_map((sim.half1 + sim.half2) / 2, 2.0, "amplitude", mask=r.masks["tight"])
    g.y[3] = np.nan  # a shell left out of the Guinier block
    fit = fit_guinier(g, 14.0, 6.0)
    ys = g.y.copy()
    ys[5] = np.inf  # written as -99, as RELION
    sharpened = dataclasses.replace(g, y=ys)
    assert fsc_csv_text(r) == fsc_table(r).to_csv(index=False, float_format="%.6g")
    kw = dict(half1_name="h 1.mrc", half2_name="h2.mrc", mask_name="", bfactor_used_A2=-50.0, sharpened_curve=sharpened)
    starfile.write(postprocess_blocks(r, g, fit, **kw), tmp_path / "ref.star", float_format="%.6f")
    ref = (tmp_path / "ref.star").read_text()
    ours = postprocess_star_text(r, g, fit, **kw)
    assert ours.split("\n", 1)[1] == ref.split("\n", 1)[1]
    assert ours.startswith("# Created by napari-cryodiag")
    assert '"h 1.mrc"' in ours and "-99.000000" in ours


@pytest.mark.parametrize("name", ["#1_half2.mrc", "_half2.mrc", "data_half2.mrc", "half 2.mrc"])
def test_postprocess_star_quotes_names_that_would_not_read_as_names(tmp_path, result, name):
    """A map name that would read as a comment, a label or a block (or holds a blank) is quoted
    as the project's STAR writer quotes it, and reads back whole (starfile and our reader), with
    every block after it."""
    from napari_cryodiag.io.star import read_postprocess

    _, r = result
    path = write_postprocess_star(tmp_path / "postprocess.star", r, half1_name="h1.mrc", half2_name=name)
    assert f'"{name}"' in path.read_text()
    assert starfile.read(path)["general"]["rlnUnfilteredMapHalf2"] == name
    back = read_postprocess(path)
    assert back["general"]["rlnUnfilteredMapHalf2"] == name
    assert len(back["fsc"]) == len(r.frequency_invA)
