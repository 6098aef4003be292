"""FSC core: against a direct computation, limits (identical / independent maps), resolution
conventions, RELION's corrected column, phase randomisation, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.fourier import rfftn, shell_counts, shell_index
from napari_cryodiag.compute.maps.fsc import (
    check_half_maps,
    corrected_fsc,
    fsc,
    fsc_family,
    randomisation_shell,
    resolution_at,

)
from napari_cryodiag.compute.maps.phase_randomisation import randomise_phases
from napari_cryodiag.errors import CryodiagInputError


def direct_fsc(a, b):
    """Plain-loop FSC over the non-negative-x half of the full complex128 fftn (RELION's half sums)."""
    n = a.shape[0]
    fa, fb = np.fft.fftn(a.astype(np.float64)), np.fft.fftn(b.astype(np.float64))
    m = n // 2 + 1
    num, pa, pb = np.zeros(m), np.zeros(m), np.zeros(m)
    for z in range(n):
        for y in range(n):
            for x in range(n // 2 + 1):
                kz = z if z <= n // 2 else z - n  # fftfreq convention (n/2 -> -n/2 has the same |k|)
                ky = y if y <= n // 2 else y - n
                r = int(round(np.sqrt(kz * kz + ky * ky + x * x)))
                if r >= m:
                    continue
                u, v = fa[z, y, x], fb[z, y, x]
                num[r] += (u * np.conj(v)).real
                pa[r] += abs(u) ** 2
                pb[r] += abs(v) ** 2
    out = num / np.sqrt(pa * pb)
    out[0] = 1.0
    return out


def test_fsc_matches_direct_loop():
    rng = np.random.default_rng(3)
    n = 14
    common = rng.normal(size=(n, n, n))
    a = (common + 0.8 * rng.normal(size=common.shape)).astype(np.float32)
    b = (common + 0.8 * rng.normal(size=common.shape)).astype(np.float32)
    mask = rng.uniform(0.2, 1.0, size=a.shape).astype(np.float32)
    np.testing.assert_allclose(fsc(a, b), direct_fsc(a, b), atol=2e-5)
    np.testing.assert_allclose(fsc(a, b, mask), direct_fsc(a * mask, b * mask), atol=2e-5)
    # odd box too
    a7, b7 = a[:13, :13, :13].copy(), b[:13, :13, :13].copy()
    np.testing.assert_allclose(fsc(a7, b7), direct_fsc(a7, b7), atol=2e-5)


def test_identical_maps_give_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(32, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(fsc(a, a), 1.0, atol=1e-5)
    r = fsc_family(a, a.copy(), 2.0)
    for name in ("no_mask", "spherical", "loose", "tight"):
        np.testing.assert_allclose(r.curves[name], 1.0, atol=1e-4, err_msg=name)
        assert r.resolution(name).nyquist_limited
    # the diagnosis says what it is (and gives no "larger box" advice); the command line refuses it
    from napari_cryodiag.compute.maps.diagnosis import diagnose
    from napari_cryodiag.compute.maps.fsc import check_not_identical

    assert [f.code for f in diagnose(r)] == ["identical"]
    with pytest.raises(CryodiagInputError, match=r"identical \(h\.mrc and h\.mrc\)"):
        check_not_identical(a, a.copy(), "h.mrc", "h.mrc")


def test_independent_noise_within_three_sigma():
    rng = np.random.default_rng(1)
    n = 48
    a = rng.normal(size=(n, n, n)).astype(np.float32)
    b = rng.normal(size=(n, n, n)).astype(np.float32)
    c = fsc(a, b)
    counts = shell_counts(shell_index(a.shape), n)
    band = 3 / np.sqrt(counts[1:])
    assert np.all(np.abs(c[1:]) < band)
    assert abs(c[1:].mean()) < 3 / np.sqrt(counts[1:].sum())
    assert c[0] == 1.0


def test_resolution_conventions():
    n, apix = 40, 2.0  # shell i at 80/i Å
    curve = np.linspace(1, 0, n // 2 + 1)  # 21 shells, drop 0.05 per shell
    r = resolution_at(curve, n, apix, 0.143)
    first_below = int(np.nonzero(curve < 0.143)[0][0])
    assert r.shell == first_below - 1
    assert r.shell_edge_A == pytest.approx(80 / (first_below - 1))
    t = (curve[first_below - 1] - 0.143) / (curve[first_below - 1] - curve[first_below])
    assert r.interpolated_A == pytest.approx(80 / (first_below - 1 + t))
    assert not r.nyquist_limited
    high = np.full(n // 2 + 1, 0.9)
    rn = resolution_at(high, n, apix)
    assert rn.nyquist_limited and rn.shell_edge_A == pytest.approx(2 * apix)
    # RELION's rule: the first drop counts, even if the curve comes back
    bumpy = np.array([1, 0.9, 0.1, 0.9, 0.9, 0.05] + [0.0] * 15)
    assert resolution_at(bumpy, n, apix).shell == 1


def test_relion_corrected_column_and_resolution(shared_data):
    from napari_cryodiag.io.star import read_postprocess

    pp = read_postprocess(shared_data / "relion-postprocess" / "postprocess.star")
    t = pp["fsc"]
    masked = t["rlnFourierShellCorrelationMaskedMaps"].to_numpy(float)
    rand = t["rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps"].to_numpy(float)
    unmasked = t["rlnFourierShellCorrelationUnmaskedMaps"].to_numpy(float)
    n, apix = 96, 7.5
    # RELION's rule for the randomisation shell gives its rlnRandomiseFrom (32.73 Å = shell 22)
    shell = randomisation_shell("relion", n, apix, fsc_unmasked=unmasked)
    assert n * apix / shell == pytest.approx(float(pp["general"]["rlnRandomiseFrom"]), rel=1e-4)
    corr = corrected_fsc(masked, rand, shell, wait_shells=2)
    np.testing.assert_allclose(corr, t["rlnFourierShellCorrelationCorrected"].to_numpy(float), atol=2e-6)
    res = resolution_at(corr, n, apix, 0.143)
    assert res.shell_edge_A == pytest.approx(16.3636, abs=1e-3)
    assert res.shell_edge_A == pytest.approx(float(pp["general"]["rlnFinalResolution"]), abs=1e-4)
    assert 16.0 < res.interpolated_A < 16.3636


def test_randomisation_rules():
    n, apix = 100, 1.0
    f = np.arange(n // 2 + 1)
    tight = 1 / (1 + np.exp((f - 40) / 2.0))  # crosses 0.143 near shell 43.6
    unmasked = 1 / (1 + np.exp((f - 25) / 2.0))
    r_t = resolution_at(tight, n, apix)
    assert randomisation_shell("tight75", n, apix, fsc_tight=tight) == round(0.75 * n * apix / r_t.interpolated_A)
    assert randomisation_shell("relion", n, apix, fsc_unmasked=unmasked) == int(np.nonzero(unmasked < 0.8)[0][0])
    assert randomisation_shell("nomask143", n, apix, fsc_unmasked=unmasked) == int(np.nonzero(unmasked < 0.143)[0][0])
    assert randomisation_shell(5.0, n, apix) == 20
    assert randomisation_shell("5", n, apix) == 20
    with pytest.raises(CryodiagInputError):
        randomisation_shell("sometimes", n, apix)


def test_phase_randomisation_keeps_amplitudes_and_decorrelates_beyond_shell():
    rng = np.random.default_rng(2)
    n, start = 40, 9
    a = rng.normal(size=(n, n, n)).astype(np.float32)
    f = rfftn(a)
    idx = shell_index(a.shape)
    g = randomise_phases(f, a.shape, start, seed=7, index=idx)
    # amplitudes kept to float32 rounding (|a (cos, sin)| = a up to a few ulp)
    np.testing.assert_allclose(np.abs(g), np.abs(f), rtol=1e-5, atol=0)
    below = idx < start
    np.testing.assert_array_equal(g[below], f[below])
    # a real map: the round trip keeps the randomised transform (Hermitian planes handled)
    back = rfftn(np.fft.irfftn(g, s=a.shape).astype(np.float32))
    np.testing.assert_allclose(back, g, atol=1e-3 * np.abs(f).max())
    # phases beyond the shell are decorrelated: FSC(original, randomised) ~ 0 there, 1 below
    from napari_cryodiag.compute.maps.fsc import fsc_from_transforms

    c = fsc_from_transforms(f, g, idx, n)
    counts = shell_counts(idx, n)
    assert np.allclose(c[:start], 1.0, atol=1e-6)
    assert np.all(np.abs(c[start:]) < 3 * np.sqrt(2) / np.sqrt(counts[start:]))
    # seeded: repeats
    np.testing.assert_array_equal(g, randomise_phases(f, a.shape, start, seed=7, index=idx))
    assert not np.array_equal(g, randomise_phases(f, a.shape, start, seed=8, index=idx))



def test_phase_randomisation_in_threads_equals_one_thread(monkeypatch):
    """The slabs filled in worker threads give the randomised transform of one thread, bit for bit:
    the angles are one stream drawn in order, whatever the thread count."""
    from napari_cryodiag.compute.maps import phase_randomisation as pr

    n, start = 36, 7
    a = np.random.default_rng(3).normal(size=(n, n, n)).astype(np.float32)
    f, idx = rfftn(a), shell_index(a.shape)
    monkeypatch.setattr(pr, "RANDOMISE_SLAB_ELEMENTS", n * (n // 2 + 1) * 3)  # 12 slabs of 3 planes
    got = {}
    for workers in (1, 2, 3):
        monkeypatch.setattr(pr, "FFT_WORKERS", workers)
        got[workers] = randomise_phases(f, a.shape, start, seed=11, index=idx)
    assert np.array_equal(got[1].view(np.uint64), got[2].view(np.uint64))
    assert np.array_equal(got[1].view(np.uint64), got[3].view(np.uint64))
    # and one slab of the whole array draws the same stream too
    monkeypatch.setattr(pr, "RANDOMISE_SLAB_ELEMENTS", f.size)
    assert np.array_equal(randomise_phases(f, a.shape, start, seed=11, index=idx), got[1])

def test_corrected_equals_masked_before_randomisation_shell():
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=64, seed=4)
    r = fsc_family(sim.half1, sim.half2, sim.pixel_size_A, seed=1)
    s = r.randomise_shell
    np.testing.assert_array_equal(r.curves["corrected"][:s], r.curves["tight"][:s])
    # beyond the shell the randomised maps only correlate through the mask: small for a soft mask
    rs = r.resolution("tight").shell
    assert abs(r.curves["phase_randomised"][rs]) < 0.1 < r.curves["tight"][rs]
    r2 = fsc_family(sim.half1, sim.half2, sim.pixel_size_A, seed=1)
    np.testing.assert_array_equal(r.curves["corrected"], r2.curves["corrected"])
    rw = fsc_family(sim.half1, sim.half2, sim.pixel_size_A, seed=1, wait_shells=2)
    np.testing.assert_array_equal(rw.curves["corrected"][: s + 2], r.curves["tight"][: s + 2])
    # with a user mask the corrected curve uses it
    ru = fsc_family(sim.half1, sim.half2, sim.pixel_size_A, mask=sim.mask)
    assert ru.corrected_mask == "user" and "user" in ru.curves
    np.testing.assert_array_equal(ru.curves["corrected"][: ru.randomise_shell], ru.curves["user"][: ru.randomise_shell])


def test_half_map_checks_name_both_files():
    a = np.zeros((8, 8, 8), np.float32)
    with pytest.raises(CryodiagInputError, match=r"different grids.*h1\.mrc and h2\.mrc"):
        check_half_maps(a, np.zeros((8, 8, 10), np.float32), 1.0, 1.0, "h1.mrc", "h2.mrc")
    with pytest.raises(CryodiagInputError, match=r"different voxel sizes.*h1\.mrc and h2\.mrc.*1\.0000 Å and 1\.1000 Å"):
        check_half_maps(a, a, 1.0, 1.1, "h1.mrc", "h2.mrc")
    with pytest.raises(CryodiagInputError, match="cubic"):
        check_half_maps(np.zeros((8, 8, 10)), np.zeros((8, 8, 10)), 1.0, 1.0, "a", "b")
    bad = a.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(CryodiagInputError, match="NaN"):
        check_half_maps(a, bad, 1.0, 1.0, "a.mrc", "b.mrc")
    assert check_half_maps(a, a, (1.2, 1.2, 1.2), 1.2) == pytest.approx(1.2)


def test_lean_run_gives_the_same_curves_and_frees_the_half_maps():
    """The command line's lean run (masked curves first, masks dropped after use, real half maps
    freed before the randomisation) computes what the widget's full session computes."""
    from napari_cryodiag.compute.maps.fsc import HalfMaps
    from napari_cryodiag.compute.maps.sharpen import ValidationSession
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=48, pixel_size_A=1.5, resolution_A=5.0, seed=4)
    full = ValidationSession(sim.half1, sim.half2, 1.5).compute(mask=sim.mask)
    lean = ValidationSession(sim.half1.copy(), sim.half2.copy(), 1.5, lean=True, keep_masks=()).compute(mask=sim.mask)
    for name, curve in full.fsc.curves.items():
        np.testing.assert_allclose(lean.fsc.curves[name], curve, atol=2e-3, err_msg=name)
    assert lean.fsc.randomise_shell == full.fsc.randomise_shell
    assert lean.guinier.bfactor_A2 == pytest.approx(full.guinier.bfactor_A2, rel=1e-3)
    assert set(lean.fsc.masks) == {"user"} and set(full.fsc.masks) == {"spherical", "loose", "tight", "user"}
    assert lean.halfmaps.half1 is None and lean.halfmaps.half2 is None
    np.testing.assert_allclose(lean.sharpen(), full.sharpen(), atol=1e-4)
    with pytest.raises(RuntimeError, match="lean"):
        lean.compute(mask=None)
    # without a user mask the corrected curve's (tight) mask is the one kept
    hm = HalfMaps(sim.half1.copy(), sim.half2.copy(), 1.5, lean=True)
    r = fsc_family(None, None, 1.5, halfmaps=hm, keep_masks=())
    assert set(r.masks) == {"tight"} and list(r.curves)[:2] == ["no_mask", "spherical"]
    # masks not kept are made in the second work transform and overwritten by their curve's
    # product: the same curves, bit for bit, as masks kept in arrays of their own
    for mask in (None, sim.mask):
        runs = [fsc_family(None, None, 1.5, halfmaps=HalfMaps(sim.half1.copy(), sim.half2.copy(), 1.5, lean=True),
                           mask=mask, keep_masks=keep) for keep in ((), ("spherical", "loose", "tight"))]
        assert set(runs[1].masks) >= {"spherical", "loose", "tight"} and "loose" not in runs[0].masks
        for name, curve in runs[1].curves.items():
            assert np.array_equal(runs[0].curves[name], curve), name


@pytest.mark.parametrize("n, k", [(32, 5), (33, 7), (40, 3)])
def test_pruned_forward_transform_is_the_corner_of_rfftn(n, k):
    from napari_cryodiag.compute.maps.masks import _rfftn_corner

    v = np.random.default_rng(n).normal(size=(n, n, n)).astype(np.float32)
    both = np.r_[0 : k + 1, n - k : n]
    np.testing.assert_array_equal(_rfftn_corner(v, k), rfftn(v)[np.ix_(both, both, np.arange(k + 1))])


@pytest.mark.parametrize("n", [8, 9, 24, 33])
def test_shell_sums_fsc_folded_equal_coefficient_sums(n):
    """The folded shell sums (mirrored planes and rows added before binning) equal the sums of every
    coefficient of the half transform in double precision, for even and odd boxes, and the unfolded
    path (any shape) gives the same."""
    import importlib

    from napari_cryodiag.compute.fourier import shell_sums

    fsc_mod = importlib.import_module("napari_cryodiag.compute.maps.fsc")
    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, n, n)).astype(np.float32)
    b = (a + rng.normal(size=a.shape)).astype(np.float32)
    f1, f2 = rfftn(a), rfftn(b)
    idx = shell_index(a.shape)
    c1, c2 = f1.astype(np.complex128), f2.astype(np.complex128)
    want = [shell_sums((c1 * np.conj(c2)).real, idx, n), shell_sums(np.abs(c1) ** 2, idx, n),
            shell_sums(np.abs(c2) ** 2, idx, n)]
    for got in (fsc_mod.shell_sums_fsc(f1, f2, idx, n), fsc_mod._shell_sums_fsc_rows(f1, f2, idx, n)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9 * np.abs(w).max())


@pytest.mark.parametrize("n", [10, 15])
def test_shell_means_folded_equal_unfolded(n):
    """Guinier's shell means through the folded sums equal the per-coefficient sums (any quantity
    set); a copy of the index (not shell_index's own) takes the unfolded path."""
    from napari_cryodiag.compute.fourier import foldable, shell_means, shell_sums

    rng = np.random.default_rng(n)
    f = rfftn(rng.normal(size=(n, n, n)).astype(np.float32))
    idx = shell_index((n, n, n))
    counts = np.maximum(shell_counts(idx, n), 1)
    p = np.abs(f.astype(np.complex128)) ** 2
    want = {"amplitude2": shell_sums(p, idx, n) / counts, "amplitude": shell_sums(np.sqrt(p), idx, n) / counts}
    assert foldable(f.shape, idx) and not foldable(f.shape, idx.copy())
    for quantities in (("amplitude2", "amplitude"), ("amplitude2",), ("amplitude",)):
        for index in (idx, idx.copy()):
            got = shell_means(f, index, n, quantities)
            assert set(got) == set(quantities)
            for q in quantities:
                np.testing.assert_allclose(got[q], want[q], rtol=1e-6)


def test_maps_known_finite_are_not_counted_again():
    """check_half_maps(finite=...) spares the maps said to be finite their count of NaN/inf voxels,
    and only those."""
    from napari_cryodiag.compute.maps.fsc import check_half_maps
    from napari_cryodiag.errors import CryodiagInputError

    a = np.ones((8, 8, 8), np.float32)
    b = np.ones((8, 8, 8), np.float32)
    a[1, 2, 3] = np.nan
    check_half_maps(a, b, finite=(True, False))  # taken on trust
    with pytest.raises(CryodiagInputError, match="1 NaN"):
        check_half_maps(a, b)
    with pytest.raises(CryodiagInputError, match="1 NaN"):
        check_half_maps(a, b, finite=(False, True))


@pytest.mark.parametrize("box", [48, 45])
def test_masked_average_guinier_from_the_masked_half_transforms(box):
    """The Guinier plot's masked average comes from the corrected curve's two masked half
    transforms (the transform is linear), with no transform of its own: its per-shell means equal
    those of the masked average's own transform to float32 rounding, on an even box (folded shell
    sums) and an odd one, and the family's run leaves them cached for its corrected mask."""
    from napari_cryodiag.compute.fourier import rfftn, shell_means, shell_means_of_average
    from napari_cryodiag.compute.maps.fsc import HalfMaps
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    sim = simulate_half_maps(box=box, pixel_size_A=1.5, resolution_A=5.0, seed=3)
    idx = shell_index(sim.half1.shape)
    counts = shell_counts(idx, box)
    m = sim.mask.astype(np.float32)
    direct = shell_means(rfftn((sim.half1 + sim.half2) * np.float32(0.5) * m), idx, box, counts=counts)
    pair = shell_means_of_average(rfftn(sim.half1 * m), rfftn(sim.half2 * m), idx, box, counts=counts)
    for q in ("amplitude2", "amplitude"):
        np.testing.assert_allclose(pair[q], direct[q], rtol=2e-5, err_msg=q)
    for lean in (True, False):
        hm = HalfMaps(sim.half1.copy(), sim.half2.copy(), 1.5, lean=lean)
        r = fsc_family(None, None, 1.5, halfmaps=hm, keep_masks=())
        tight = r.masks["tight"]
        cached = hm._average_means[id(tight)]
        assert cached[0] is tight  # computed on the way, for the corrected curve's mask
        ref = shell_means(rfftn((sim.half1 + sim.half2) * np.float32(0.5) * tight), idx, box, counts=counts)
        np.testing.assert_allclose(hm.masked_average_means(tight)["amplitude2"], ref["amplitude2"], rtol=2e-5)
