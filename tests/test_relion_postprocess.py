"""Map validation against RELION 3.1's own ``relion_postprocess``, on half maps the test makes.

RELION is run once per data set (module fixtures); the tests compare its ``postprocess.star``
(FSC columns, phase-randomised FSC, final resolution, B-factor) with ours in RELION's mode
(``randomise_from="relion"``, ``wait_shells=2``, Guinier window ``"relion"``, ln|F|).

Two data sets, box 100 at 1.05 Å/px (RELION randomises from ~4.4 Å, shell 24):

- ``natural``: the simulator's half maps. Beyond the resolution the FSC is noise around 0, so the
  shell where RELION's FSC weighting stops (the first corrected FSC below 1e-4) depends on the
  random phases: RELION's own B-factor moves by up to ±10 % between its ``--random_seed`` values
  on these maps. Used for the curves, the randomisation shell and for the Guinier procedure with
  RELION's own corrected curve (no randomness left: exact).
- ``pinned``: the same half maps with half 2's coefficients set to minus half 1's from shell 34 on
  (FSC = -1 there), so that the FSC weighting ends at the same shell for any random phases; the
  end-to-end B-factor and final resolution are compared on it (RELION's seed spread: ~1 %).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from napari_cryodiag.compute.fourier import irfftn, rfftn, shell_index
from napari_cryodiag.compute.maps.fsc import fsc_family
from napari_cryodiag.compute.maps.guinier import fit_guinier, fsc_weighted_curve, guinier_window
from napari_cryodiag.compute.maps.phase_randomisation import randomise_phases, randomised_coefficients
from napari_cryodiag.compute.maps.sharpen import ValidationSession
from napari_cryodiag.io.mrc import write_mrc
from napari_cryodiag.io.star import read_postprocess
from napari_cryodiag.simulate.half_maps import simulate_half_maps

RELION = shutil.which("relion_postprocess")
needs_relion = pytest.mark.skipif(RELION is None, reason="RELION 3.1 (relion_postprocess) is not installed")
BOX, APIX = 100, 1.05
PIN_SHELL = 34
RELION_MODE = dict(randomise_from="relion", wait_shells=2, guinier_window_rule="relion", guinier_quantity="amplitude")


def _run_relion(folder, h1, h2, mask):
    for name, vol in (("h1.mrc", h1), ("h2.mrc", h2), ("mask.mrc", mask)):
        write_mrc(folder / name, vol, APIX, overwrite=True)
    # RELION 3.1 ends with an error about Ghostscript (the PDF log) after writing its outputs
    subprocess.run([RELION, "--i", "h1.mrc", "--i2", "h2.mrc", "--mask", "mask.mrc", "--angpix", str(APIX),
                    "--auto_bfac", "--autob_lowres", "10", "--o", "pp"], cwd=folder, capture_output=True, text=True,
                   timeout=300)
    star = folder / "pp.star"
    assert star.is_file(), "relion_postprocess wrote no pp.star"
    return read_postprocess(star)


@pytest.fixture(scope="module")
def natural(tmp_path_factory):
    if RELION is None:
        pytest.skip("RELION 3.1 (relion_postprocess) is not installed")
    sim = simulate_half_maps(box=BOX, pixel_size_A=APIX, resolution_A=3.4, bfactor_A2=80.0, seed=3)
    pp = _run_relion(tmp_path_factory.mktemp("relion_natural"), sim.half1, sim.half2, sim.mask)
    return sim.half1, sim.half2, sim.mask, pp


@pytest.fixture(scope="module")
def pinned(tmp_path_factory, natural):
    h1, h2, mask, _ = natural
    f1, f2 = rfftn(h1), rfftn(h2)
    beyond = shell_index(h1.shape) >= PIN_SHELL
    f2[beyond] = -f1[beyond]
    h2p = irfftn(f2, h1.shape)
    pp = _run_relion(tmp_path_factory.mktemp("relion_pinned"), h1, h2p, mask)
    return h1, h2p, mask, pp


def _relion_column(pp, name):
    return pp["fsc"][name].to_numpy(float)


@needs_relion
def test_fsc_columns_equal_relion(natural):
    h1, h2, mask, pp = natural
    r = fsc_family(h1, h2, APIX, mask=mask, randomise_from="relion", wait_shells=2)
    np.testing.assert_allclose(r.curves["no_mask"][1:], _relion_column(pp, "rlnFourierShellCorrelationUnmaskedMaps")[1:],
                               atol=1e-4)
    np.testing.assert_allclose(r.curves["user"][1:], _relion_column(pp, "rlnFourierShellCorrelationMaskedMaps")[1:],
                               atol=1e-4)
    # the same randomisation shell (RELION writes it in Å)
    assert r.randomise_from_A == pytest.approx(float(pp["general"]["rlnRandomiseFrom"]), rel=1e-4)


@needs_relion
def test_randomised_fsc_at_the_randomisation_shell_as_relion(natural):
    """RELION randomises |k| >= shell: the randomisation shell keeps half its coefficients, so its
    randomised FSC stays high (0.83 here); randomising the whole shell gives ~0.55."""
    h1, h2, mask, pp = natural
    relion = _relion_column(pp, "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps")
    for seed in (0, 1):
        r = fsc_family(h1, h2, APIX, mask=mask, randomise_from="relion", wait_shells=2, seed=seed)
        k = r.randomise_shell
        assert r.randomise_convention == "radius"
        assert relion[k] > 0.75
        assert r.curves["phase_randomised"][k] == pytest.approx(relion[k], abs=0.06)
        # below the shell nothing is randomised: the masked curve, as RELION's (the mask mixes a
        # little of the randomised shells into the last ones)
        np.testing.assert_allclose(r.curves["phase_randomised"][1:k], relion[1:k], atol=5e-3)
        # beyond it both are noise around 0
        assert abs(float(np.mean(r.curves["phase_randomised"][k + 2 :]))) < 0.03
        np.testing.assert_allclose(r.curves["corrected"][1:], _relion_column(pp, "rlnFourierShellCorrelationCorrected")[1:],
                                   atol=0.12)
    # the whole-shell convention of the other rules randomises shell k too: far lower there
    whole = fsc_family(h1, h2, APIX, mask=mask, randomise_from=float(r.randomise_from_A), wait_shells=2)
    assert whole.randomise_shell == k and whole.randomise_convention == "shell"
    assert whole.curves["phase_randomised"][k] < relion[k] - 0.15


@needs_relion
def test_relion_guinier_procedure_with_relions_own_fsc_is_exact(natural):
    """With RELION's corrected curve, our FSC-weighted unmasked Guinier fit gives RELION's B."""
    h1, h2, _, pp = natural
    corrected = _relion_column(pp, "rlnFourierShellCorrelationCorrected")
    ft = (rfftn(h1) + rfftn(h2)) * np.float32(0.5)
    curve = fsc_weighted_curve(ft, h1.shape, APIX, corrected, "amplitude")
    lo, hi, rule = guinier_window("relion", corrected, APIX, BOX)
    fit = fit_guinier(curve, lo, hi, rule)
    relion_b = float(pp["general"]["rlnBfactorUsedForSharpening"])
    assert fit.sharpening_bfactor_A2 == pytest.approx(relion_b, rel=0.005)
    assert fit.slope == pytest.approx(float(pp["general"]["rlnFittedSlopeGuinierPlot"]), rel=0.005)
    # the weighted curve is RELION's rlnLogAmplitudesWeighted up to a constant (FFT normalisation)
    g = pp["guinier"]
    yr = g["rlnLogAmplitudesWeighted"].to_numpy(float)
    ok = yr > -99
    ours = curve.y[: len(yr)][ok]
    np.testing.assert_allclose(ours - ours.mean(), yr[ok] - yr[ok].mean(), atol=2e-3)
    # and the map decay from the masked average (the seed page's map) is not RELION's number
    s = ValidationSession(h1, h2, APIX).compute(mask=natural[2], randomise_from="relion", wait_shells=2,
                                               guinier_window_rule=(lo, hi), guinier_quantity="amplitude")
    assert abs(s.guinier.sharpening_bfactor_A2 - relion_b) > 0.05 * abs(relion_b)


@needs_relion
def test_sharpened_guinier_curve_is_relions(natural):
    """With RELION's corrected curve and B-factor, the sharpened Guinier curve (FSC weighting and
    B applied to the unmasked average's transform, from per-shell moments) is RELION's
    rlnLogAmplitudesSharpened up to a constant (FFT normalisation); and a ValidationSession in
    RELION's mode gives the same curve for its own filter."""
    from napari_cryodiag.compute.maps.filtered_guinier import FilteredGuinier
    from napari_cryodiag.compute.maps.sharpen import SharpenParams, shell_filter

    h1, h2, mask, pp = natural
    corrected = _relion_column(pp, "rlnFourierShellCorrelationCorrected")
    relion_b = float(pp["general"]["rlnBfactorUsedForSharpening"])
    ft = (rfftn(h1) + rfftn(h2)) * np.float32(0.5)
    fg = FilteredGuinier(lambda: ft, h1.shape, APIX, "amplitude")
    curve = fg.curve(shell_filter(BOX, APIX, corrected), relion_b)
    g = pp["guinier"]
    yr = g["rlnLogAmplitudesSharpened"].to_numpy(float)
    ok = yr > -99
    assert ok.sum() > 20
    ours = curve.y[: len(yr)][ok]
    np.testing.assert_allclose(ours - ours.mean(), yr[ok] - yr[ok].mean(), atol=2e-3)
    # each coefficient gets its own exp(-B s^2 / 4): shifting RELION's weighted curve by the
    # shell's -B s_i^2 / 4 misses its sharpened one by more than that tolerance
    yw = g["rlnLogAmplitudesWeighted"].to_numpy(float)
    x = g["rlnResolutionSquared"].to_numpy(float)
    both = ok & (yw > -99)
    assert np.abs(yw[both] - relion_b / 4 * x[both] - yr[both]).max() > 5e-3

    s = ValidationSession(h1, h2, APIX).compute(mask=mask, **RELION_MODE)
    m = s.sharpen(SharpenParams(bfactor_A2=relion_b), lazy=True)
    mine = s.sharpened_guinier(m)
    direct = FilteredGuinier(lambda: ft, h1.shape, APIX, "amplitude").curve(
        shell_filter(BOX, APIX, s.fsc.curves["corrected"]), relion_b)
    np.testing.assert_allclose(mine.y, direct.y, atol=1e-6, equal_nan=True)
    assert not m.computed  # the curve needed no map


@needs_relion
def test_relion_mode_bfactor_and_resolution_end_to_end(pinned):
    h1, h2, mask, pp = pinned
    relion_b = float(pp["general"]["rlnBfactorUsedForSharpening"])
    s = ValidationSession(h1, h2, APIX)
    for seed in (0, 1, 2):
        s.compute(mask=mask, seed=seed, **RELION_MODE)
        assert s.guinier.sharpening_bfactor_A2 == pytest.approx(relion_b, rel=0.03), seed
        assert s.fsc.resolution("corrected").shell_edge_A == pytest.approx(float(pp["general"]["rlnFinalResolution"]),
                                                                         rel=1e-4)
    assert "FSC-weighted" in s.to_dict()["guinier"]["map"]


@needs_relion
def test_cli_relion_mode_matches_relion(pinned, tmp_path, capsys):
    import json

    from napari_cryodiag.cli import main

    h1, h2, mask, pp = pinned
    for name, vol in (("h1.mrc", h1), ("h2.mrc", h2), ("mask.mrc", mask)):
        write_mrc(tmp_path / name, vol, APIX)
    code = main(["fsc", str(tmp_path / "h1.mrc"), str(tmp_path / "h2.mrc"), "--mask", str(tmp_path / "mask.mrc"),
                 "--randomise-from", "relion", "--wait-shells", "2", "--guinier-window", "relion",
                 "--quantity", "amplitude", "-o", str(tmp_path / "out")])
    assert code == 0
    d = json.loads((tmp_path / "out" / "fsc.json").read_text())
    assert d["guinier"]["sharpening_bfactor_A2"] == pytest.approx(float(pp["general"]["rlnBfactorUsedForSharpening"]),
                                                                  rel=0.03)
    assert d["resolutions"]["corrected"]["0.143"]["shell_edge_A"] == pytest.approx(
        float(pp["general"]["rlnFinalResolution"]), rel=1e-4)
    assert "|k| >= shell" in d["randomisation"]["convention"]


@pytest.mark.parametrize("n", [16, 17])
def test_radius_convention_selects_k_at_least_shell(n):
    idx = shell_index((n, n, n))
    k = [np.fft.fftfreq(n, 1 / n), np.fft.fftfreq(n, 1 / n), np.arange(n // 2 + 1)]
    k2 = k[0][:, None, None] ** 2 + k[1][None, :, None] ** 2 + k[2][None, None, :] ** 2
    for s in (1, 4, 7):
        np.testing.assert_array_equal(randomised_coefficients(idx, (n,) * 3, s, "radius"), k2 >= s * s)
        np.testing.assert_array_equal(randomised_coefficients(idx, (n,) * 3, s, "shell"), idx >= s)
    # amplitudes survive, the kept coefficients are untouched, the map stays real
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, n, n)).astype(np.float32)
    f = rfftn(a)
    g = randomise_phases(f, a.shape, 4, seed=1, index=idx, convention="radius")
    kept = k2 < 16
    np.testing.assert_array_equal(g[kept], f[kept])
    back = rfftn(irfftn(g, a.shape))
    np.testing.assert_allclose(np.abs(back), np.abs(f), rtol=1e-3, atol=1e-3 * np.abs(f).max())
