"""Each diagnosis flag fires on simulated half maps built to show it, and stays quiet on clean ones."""

from __future__ import annotations

from functools import lru_cache

import pytest

from napari_cryodiag.compute.maps.fsc import fsc_family
from napari_cryodiag.compute.maps.diagnosis import TEXT, diagnose
from napari_cryodiag.simulate.half_maps import simulate_half_maps

BOX = 80  # smaller than the default 96 to keep the suite fast; the flags hold at both
USER_MASK = {"tight_mask", "offset_mask"}


@lru_cache(maxsize=None)
def run(pathology, seed=0):
    sim = simulate_half_maps(box=BOX, pathology=pathology, seed=seed)
    r = fsc_family(sim.half1, sim.half2, sim.pixel_size_A, mask=sim.mask if pathology in USER_MASK else None)
    return sim, r, diagnose(r)


def codes(pathology, seed=0):
    return {f.code for f in run(pathology, seed)[2]}


@pytest.mark.parametrize("seed", [0, 1])
def test_clean_case_is_quiet(seed):
    sim, r, flags = run(None, seed)
    assert flags == [], [f.code for f in flags]
    # and its resolution is sensible: below Nyquist, masks help, corrected ~ tight
    assert r.resolution("no_mask").interpolated_A == pytest.approx(sim.truth["resolution_A"], rel=0.06)
    assert r.resolution_A < r.resolution("no_mask").interpolated_A
    assert not r.resolution("corrected").nyquist_limited


@pytest.mark.parametrize(
    "pathology, expected",
    [
        ("nyquist", "nyquist"),
        ("duplicates", "duplicates"),
        ("ctf_oscillation", "oscillation"),
        ("micelle", "micelle_dip"),
        ("tight_mask", "mask_too_tight"),
        ("tight_mask", "randomised_high"),
        ("offset_mask", "unmasked_better"),
    ],
)
def test_flag_fires_on_its_pathology(pathology, expected):
    found = codes(pathology)
    assert expected in found, found


def test_flags_are_specific():
    # the shape flags do not leak into each other
    assert "duplicates" not in codes("nyquist")
    assert "micelle_dip" not in codes("ctf_oscillation")
    assert "oscillation" not in codes("micelle")
    assert codes("duplicates") == {"duplicates"}
    assert codes("micelle") == {"micelle_dip"}


def test_flag_texts_and_details():
    _, _, flags = run("micelle")
    f = flags[0]
    assert f.explanation and f.advice and f.title == TEXT["micelle_dip"][0]
    assert 4.5 <= f.details["dip_A"] <= 10.0
    _, _, flags = run("duplicates")
    assert "duplicate" in flags[0].advice.lower()
    _, _, flags = run("nyquist")
    assert "larger box" in flags[0].advice
    _, _, flags = run("ctf_oscillation")
    osc = [f for f in flags if f.code == "oscillation"][0]
    assert "pixel size" in osc.advice and len(osc.details["dips_A"]) >= 2


def test_prominent_minima_match_scipy():
    import numpy as np
    from scipy.signal import find_peaks

    from napari_cryodiag.compute.maps.diagnosis import _prominent_minima

    rng = np.random.default_rng(0)
    for _ in range(20):
        c = np.cumsum(rng.normal(size=60)) * 0.1 + rng.normal(size=60) * 0.05
        for prom in (0.05, 0.2):
            ours_i, ours_p = _prominent_minima(c, prom)
            ref_i, props = find_peaks(-c, prominence=prom)
            np.testing.assert_array_equal(ours_i, ref_i)
            np.testing.assert_allclose(ours_p, props["prominences"])


# --------------------------------------------------------------------------------------------
# clean half maps of realistic maps: a map plus independent white or coloured noise, no pathology

@lru_cache(maxsize=None)
def _clean_map(name):
    from napari_cryodiag.simulate.density import gaussian_atoms_density
    from napari_cryodiag.simulate.half_maps import particle_density
    from napari_cryodiag.simulate.protein_map import secondary_structure_map

    if name == "secondary_structure":  # helices + β-sandwich: the spectrum of a real protein map
        return secondary_structure_map(80, 1.3, seed=1), 1.3
    if name == "sample_half_maps":  # the signal of the sample dataset's half maps
        return particle_density(96, 1.5, seed=0), 1.5
    return gaussian_atoms_density(64, 2.0), 2.0  # the sample dataset's density.mrc


CLEAN = [("secondary_structure", "white", 4.0), ("secondary_structure", "white", 6.5),
         ("secondary_structure", "coloured", 4.0), ("secondary_structure", "coloured", 6.5),
         ("sample_half_maps", "white", 5.0), ("sample_half_maps", "coloured", 7.0),
         ("sample_density", "white", 6.0), ("sample_density", "coloured", 9.0)]


@pytest.mark.parametrize("name, noise, resolution_A", CLEAN)
def test_every_flag_quiet_on_clean_half_maps_of_realistic_maps(name, noise, resolution_A):
    from napari_cryodiag.simulate.half_maps import noisy_half_maps

    vol, apix = _clean_map(name)
    for seed in (0, 1):
        sim = noisy_half_maps(vol, apix, resolution_A, noise=noise, bfactor_A2=50.0, seed=seed)
        r = fsc_family(sim.half1, sim.half2, apix)
        assert not r.resolution("corrected").nyquist_limited  # a case with a resolution to report
        flags = diagnose(r)
        assert flags == [], [(f.code, f.details) for f in flags]


def test_protein_spectrum_dip_is_not_a_micelle():
    """The secondary-structure map's FSC with white noise does dip between 9 and 5 Å (its spectrum's
    6-7 Å minimum), deep enough for the shape rule; the noise power stays flat, so no micelle flag.
    The simulated micelle's dip comes with extra noise power and is flagged."""
    import numpy as np

    from napari_cryodiag.compute.maps.diagnosis import DiagnosisParams, _dips, _noise_excess
    from napari_cryodiag.simulate.half_maps import noisy_half_maps

    vol, apix = _clean_map("secondary_structure")
    sim = noisy_half_maps(vol, apix, 5.0, noise="coloured", bfactor_A2=50.0, seed=0)
    r = fsc_family(sim.half1, sim.half2, apix)
    c = r.curves["tight"]
    dips, prom = _dips(c, DiagnosisParams().dip_prominence)
    res = r.box * apix / np.maximum(dips, 1)
    inside = [d for d, a in zip(dips, res) if 4.5 <= a <= 10.0]
    assert len(dips) == 1 and inside  # the shape rule alone would call it a micelle
    excess, drop = _noise_excess(c, r.spectra["tight"], inside[0])
    assert drop > 1.0 and excess < 0.25 * drop
    _, rm, flags = run("micelle")
    d = [f for f in flags if f.code == "micelle_dip"][0].details
    assert d["noise_excess_log"] > 0.8 * d["snr_drop_log"]
