"""Noise model on simulated particles with a known noise spectrum.

Tolerance: each shell value is a mean of ``n_images * count`` exponential powers, so its
relative standard error is about ``1/sqrt(n_images * count)``
(:meth:`NoiseModel.relative_standard_error` computes it exactly for the half transform). We
require every shell within 4.5 of those standard errors (33 shells: a false alarm has a chance
below 1e-3 per test; the seeds are fixed anyway) and the count-weighted mean within 4 standard
errors of the total, which detects a bias of a fraction of a percent.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest

from napari_cryodiag.compute.particles.noise_model import (
    NoiseModelCancelled,
    estimate_noise_model,
    full_from_half,
    iter_noise_model,
    match_map_to_images,
)
from napari_cryodiag.compute.projection import FourierProjector
from napari_cryodiag.workflows.noise import estimate_noise_model as estimate_noise_model_from_files
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.simulate.density import gaussian_atoms_density
from napari_cryodiag.simulate.particles import make_noise, simulate_particles, write_particle_set

N, BOX = 200, 64


@functools.lru_cache(maxsize=1)
def _vol_proj():
    """One map and its projector for the box-64 sets (the projector's set-up is the slow part)."""
    vol = gaussian_atoms_density(box=BOX, pixel_size_A=2.0, seed=0)
    return vol, FourierProjector(vol)


def _check_matches(nm, truth):
    rel = nm.noise_variance / truth - 1
    se = nm.relative_standard_error()
    assert np.all(np.abs(rel) < 4.5 * se), np.round(rel / se, 2)
    w = nm.counts
    assert abs(np.sum(rel * w) / w.sum()) < 4 / np.sqrt(N * w.sum())


@pytest.fixture(scope="module")
def white():
    vol, proj = _vol_proj()
    return simulate_particles(n=N, box=BOX, pixel_size_A=2.0, noise="white", seed=11, volume=vol, projector=proj)


@pytest.fixture(scope="module")
def coloured():
    vol, proj = _vol_proj()
    return simulate_particles(n=N, box=BOX, pixel_size_A=2.0, noise="coloured", seed=12, volume=vol,
                              projector=proj)


def test_white_noise_matches_truth(white):
    nm = estimate_noise_model(white.table, white.volume, images=white.images, chunk_size=64, projector=_vol_proj()[1])
    _check_matches(nm, white.noise_spectrum)
    assert nm.scale == pytest.approx(1.0, abs=0.02)
    # per-pixel convention: the shells read the real-space variance of the added noise
    assert np.sum(nm.noise_variance * nm.counts) / nm.counts.sum() == pytest.approx(
        white.noise_sigma**2, rel=0.01)
    # the 2D map before ring averaging has the same expectation everywhere for white noise
    full = nm.full_map()
    assert np.isnan(full[0, 0])  # corner beyond Nyquist
    assert np.nanmean(full) == pytest.approx(white.noise_sigma**2, rel=0.02)


def test_coloured_noise_matches_truth(coloured):
    nm = estimate_noise_model(coloured.table, coloured.volume, images=coloured.images, chunk_size=64, projector=_vol_proj()[1])
    _check_matches(nm, coloured.noise_spectrum)
    assert np.corrcoef(nm.noise_variance, coloured.noise_spectrum)[0, 1] > 0.99


def test_zero_noise_gives_zero():
    sim = simulate_particles(n=40, box=48, noise="none", seed=3)
    nm = estimate_noise_model(sim.table, sim.volume, images=sim.images)
    assert nm.scale == pytest.approx(1.0, abs=1e-4)
    assert np.all(nm.noise_variance < 1e-5 * nm.signal_power)


def test_wrong_defocus_makes_the_residual_grow(coloured):
    good = estimate_noise_model(coloured.table, coloured.volume, images=coloured.images, projector=_vol_proj()[1])
    bad_table = coloured.table.copy()
    for c in ("defocus_u_A", "defocus_v_A", "defocus_A"):
        bad_table[c] = bad_table[c] * 1.3
    bad = estimate_noise_model(bad_table, coloured.volume, images=coloured.images, projector=_vol_proj()[1])
    no_ctf = estimate_noise_model(coloured.table, coloured.volume, images=coloured.images, projector=_vol_proj()[1],
                                  apply_ctf=False)
    # with signal power at SNR 0.1 the low/mid shells carry strong signal: a wrong CTF leaves it
    # in the residual
    # (excess over the truth far beyond the statistical error, shell by shell)
    # shells 5-19 (0.04-0.15 1/Å) span the first CTF zeros (0.045-0.08 1/Å for 8-25 kÅ); below,
    # a 30 % defocus error barely changes the CTF
    mid = slice(5, 20)
    se = good.relative_standard_error()[mid]
    assert np.all(bad.noise_variance[mid] / coloured.noise_spectrum[mid] - 1 > 5 * se)
    assert np.all(no_ctf.noise_variance[mid] / coloured.noise_spectrum[mid] - 1 > 5 * se)
    assert np.sum(bad.noise_variance * bad.counts) > 1.05 * np.sum(good.noise_variance * good.counts)
    # the correct model explains the signal: residual within statistics of the truth
    _check_matches(good, coloured.noise_spectrum)


def test_wrong_shift_sign_makes_the_residual_grow(white):
    flipped = white.table.copy()
    flipped[["shift_x_A", "shift_y_A"]] *= -1
    good = estimate_noise_model(white.table, white.volume, images=white.images, projector=_vol_proj()[1])
    bad = estimate_noise_model(flipped, white.volume, images=white.images, projector=_vol_proj()[1])
    assert np.sum(bad.noise_variance * bad.counts) > 1.05 * np.sum(good.noise_variance * good.counts)


def test_scales_global_and_per_image():
    sim = simulate_particles(n=120, box=48, noise="none", seed=7)
    rng = np.random.default_rng(0)
    s_i = rng.uniform(0.5, 2.0, size=len(sim.images)).astype(np.float32)
    sigma = 0.2  # signal variance ~0.16: each per-image scale is then known to ~1 %
    noise = make_noise(len(s_i), 48, np.full(25, sigma**2), rng)
    # one global amplitude of 2.5 (e.g. a map on another grey scale)
    g = estimate_noise_model(sim.table, sim.volume, images=2.5 * sim.images + noise)
    assert g.scale == pytest.approx(2.5, rel=0.01)
    assert np.sum(g.noise_variance * g.counts) / g.counts.sum() == pytest.approx(sigma**2, rel=0.02)
    # per-image amplitudes (e.g. per-micrograph contrast): recovered image by image
    imgs = s_i[:, None, None] * sim.images + noise
    p = estimate_noise_model(sim.table, sim.volume, images=imgs, scale="per_image")
    np.testing.assert_allclose(p.scale, s_i, rtol=0.05)
    assert np.sum(p.noise_variance * p.counts) / p.counts.sum() == pytest.approx(sigma**2, rel=0.02)
    # a global fit cannot absorb varying amplitudes: more residual than the per-image fit
    assert np.sum(estimate_noise_model(sim.table, sim.volume, images=imgs).noise_variance) > \
        1.05 * np.sum(p.noise_variance)
    # a fixed scale is used as given
    f = estimate_noise_model(sim.table, sim.volume, images=2.5 * sim.images + noise, scale=2.5)
    assert f.scale == 2.5


def test_reads_stacks_by_chunks_like_memory(tmp_path, white):
    sub = simulate_particles(n=50, box=32, noise="white", seed=4)
    paths = write_particle_set(sub, tmp_path)
    table = sub.table.copy()
    table["image_path"] = "particles.mrcs"  # relative: resolved next to the table's source
    table.attrs["source"] = str(paths["star"])
    from_disk = estimate_noise_model_from_files(table, sub.volume, chunk_size=7)
    in_mem = estimate_noise_model(sub.table, sub.volume, images=sub.images, chunk_size=50)
    np.testing.assert_allclose(from_disk.noise_variance, in_mem.noise_variance, rtol=1e-6)
    # --stack with image_index only, synchronous scheduler: same numbers
    t2 = sub.table.drop(columns=[c for c in ("image_path",) if c in sub.table])
    via_stack = estimate_noise_model_from_files(t2, sub.volume, stack=paths["stack"], scheduler="sync")
    np.testing.assert_allclose(via_stack.noise_variance, in_mem.noise_variance, rtol=1e-6)
    # two stacks, rows interleaved
    table2 = table.copy()
    (tmp_path / "b").mkdir()
    paths_b = write_particle_set(sub, tmp_path / "b")
    table2.loc[table2.index[1::2], "image_path"] = str(paths_b["stack"])
    both = estimate_noise_model_from_files(table2, sub.volume, chunk_size=9)
    np.testing.assert_allclose(both.noise_variance, in_mem.noise_variance, rtol=1e-6)


def test_progress_and_cancel(white):
    seen = []
    estimate_noise_model(white.table, white.volume, images=white.images, chunk_size=16, projector=_vol_proj()[1],
                         num_workers=1, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (N, N) and all(a[0] < b[0] for a, b in zip(seen, seen[1:])) and len(seen) > 2
    ev = threading.Event()

    def stop(done, total):
        ev.set()

    with pytest.raises(NoiseModelCancelled):
        estimate_noise_model(white.table, white.volume, images=white.images, chunk_size=16, projector=_vol_proj()[1],
                             num_workers=1, progress=stop, cancel=ev)
    gen = iter_noise_model(white.table, white.volume, images=white.images, chunk_size=100, projector=_vol_proj()[1])
    steps = list(gen)
    assert steps[-1] == (N, N)


def test_bad_input_names_the_problem(tmp_path, white):
    with pytest.raises(CryodiagInputError, match="rot_deg"):
        estimate_noise_model(white.table.drop(columns=["rot_deg"]), white.volume, images=white.images, projector=_vol_proj()[1])
    t = white.table.drop(columns=["defocus_u_A", "defocus_v_A", "defocus_A"])
    with pytest.raises(CryodiagInputError, match="defocus"):
        estimate_noise_model(t, white.volume, images=white.images)
    with pytest.raises(CryodiagInputError, match="images for"):
        estimate_noise_model(white.table, white.volume, images=white.images[:5], projector=_vol_proj()[1])
    sub = simulate_particles(n=5, box=32, seed=1)
    paths = write_particle_set(sub, tmp_path)
    t = sub.table.copy()
    t.loc[4, "image_index"] = 9
    with pytest.raises(CryodiagInputError, match="beyond") as err:
        estimate_noise_model_from_files(t, sub.volume, stack=paths["stack"])
    assert "particles.mrcs" in str(err.value)
    t = sub.table.copy()
    t["image_path"] = "missing.mrcs"
    with pytest.raises(CryodiagInputError, match="not found"):
        estimate_noise_model_from_files(t, sub.volume)
    with pytest.raises(CryodiagInputError, match="pixel size"):
        match_map_to_images(sub.volume, 2.0, 32, 5.0)  # 12.8 px: no integer box within 1 %


def test_map_on_another_grid_is_matched(white):
    """A map given at twice the pixel size (half the box) is Fourier-resampled; the low shells,
    where the coarse map holds all information, still give the true noise."""
    vol = white.volume
    ft = np.fft.fftshift(np.fft.fftn(vol))
    c = BOX // 2
    small = np.real(np.fft.ifftn(np.fft.ifftshift(ft[c - 16:c + 16, c - 16:c + 16, c - 16:c + 16]))) / 8
    nm = estimate_noise_model(white.table, small.astype(np.float32), images=white.images,
                              map_pixel_size_A=4.0, projector=_vol_proj()[1])
    assert nm.box == BOX
    low = slice(1, 12)
    rel = nm.noise_variance[low] / white.noise_spectrum[low] - 1
    assert np.all(np.abs(rel) < 4.5 * nm.relative_standard_error()[low])
    # a bigger box at the same pixel size is cropped
    big = np.pad(vol, 8)
    nm2 = estimate_noise_model(white.table, big, images=white.images)  # own projector: cropped map
    _check_matches(nm2, white.noise_spectrum)


def test_full_map_layout_and_relion_convention():
    rng = np.random.default_rng(1)
    img = rng.standard_normal((32, 32))
    half = np.abs(np.fft.rfft2(img)) ** 2
    full = np.fft.fftshift(np.abs(np.fft.fft2(img)) ** 2)
    np.testing.assert_allclose(full_from_half(half, 32), full, rtol=1e-10)
    # RELION: forward FFT divided by N^2 and the variance of one real component
    sim = simulate_particles(n=60, box=32, noise="white", seed=9, noise_sigma=1.5)
    nm = estimate_noise_model(sim.table, sim.volume, images=sim.images)
    np.testing.assert_allclose(nm.relion_sigma2(), nm.noise_variance / (2 * 32**2))
    assert np.sum(nm.relion_sigma2() * nm.counts) / nm.counts.sum() == pytest.approx(
        1.5**2 / (2 * 32**2), rel=0.03)


def test_phase_shift_columns_are_used():
    """A phase-plate set (90° phase shift): the CTF must include it, whichever column names it."""
    sim = simulate_particles(n=60, box=48, noise="none", seed=5, amplitude_contrast=0.1)
    from napari_cryodiag.compute.ctf import ctf_2d
    from napari_cryodiag.compute.projection import FourierProjector, euler_to_matrix

    t = sim.table
    proj = FourierProjector(sim.volume)
    ft = proj.project_ft(euler_to_matrix(t.rot_deg, t.tilt_deg, t.psi_deg),
                         -t[["shift_x_A", "shift_y_A"]].to_numpy() / 2.0)
    for i in range(len(t)):
        ft[i] *= ctf_2d((48, 48), 2.0, t.defocus_u_A[i], t.defocus_v_A[i], t.defocus_angle_deg[i],
                        phase_shift_deg=90.0)
    imgs = np.fft.fftshift(np.fft.irfft2(ft, s=(48, 48)), axes=(-2, -1)).astype(np.float32)
    none = estimate_noise_model(t, sim.volume, images=imgs)
    assert np.sum(none.noise_variance) > 0.1 * np.sum(none.signal_power)  # ignored: poor fit
    for col, value in (("phase_shift_deg", 90.0), ("rlnPhaseShift", 90.0), ("ctf/phase_shift_rad", np.pi / 2)):
        t2 = t.copy()
        t2[col] = value
        nm = estimate_noise_model(t2, sim.volume, images=imgs)
        assert np.all(nm.noise_variance < 1e-5 * nm.signal_power), col


def test_distributed_cluster_reads_the_stacks_and_gives_the_same_model(tmp_path, monkeypatch):
    """Two worker processes (a LocalCluster) read the particle images from the stack files
    themselves and give the threads' numbers bit for bit (partial sums added in chunk order)."""
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    from napari_cryodiag.compute import scheduling

    sent = []
    share = scheduling.TaskRunner.share

    def spy(self, obj, name=None):
        sent.append(len(cloudpickle.dumps(obj)))
        return share(self, obj, name)

    monkeypatch.setattr(scheduling.TaskRunner, "share", spy)
    sub = simulate_particles(n=120, box=32, noise="coloured", seed=21)
    paths = write_particle_set(sub, tmp_path)
    table = sub.table.copy()
    table["image_path"] = str(paths["stack"])
    from napari_cryodiag.workflows.noise import estimate_noise_model as from_files  # images read from the stack

    threads = from_files(table, sub.volume, chunk_size=16, num_workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        seen = []
        dist = from_files(table, sub.volume, chunk_size=16, client=client, progress=lambda d, t: seen.append(d))
        assert len(client.scheduler_info()["workers"]) == 2
    # what is sent once (image source, projector, parameters, mask) holds no image array: the
    # image source is paths and indices (the images are 120 x 32² float32 = 480 kB)
    assert len(sent) == 8 and sent[4] < 0.05 * sub.images.nbytes  # sent[4]: the image source
    np.testing.assert_array_equal(dist.noise_variance, threads.noise_variance)
    np.testing.assert_array_equal(dist.power_map, threads.power_map)
    assert dist.scale == threads.scale and seen[-1] == 120 and len(seen) == 8


def test_particles_without_pose_or_ctf_are_left_out_with_a_note(white):
    t = white.table.copy()
    t.loc[t.index[[3, 50]], "tilt_deg"] = np.nan
    t["defocus_u_A"] = t["defocus_u_A"].astype(object)
    t.loc[t.index[7], "defocus_u_A"] = "n/a"
    t.attrs["source"] = "run_data.star"
    keep = np.setdiff1d(np.arange(N), [3, 7, 50])
    nm = estimate_noise_model(t, white.volume, images=white.images, projector=_vol_proj()[1], chunk_size=64)
    ref = estimate_noise_model(white.table.iloc[keep], white.volume, images=white.images[keep],
                               projector=_vol_proj()[1], chunk_size=64)
    assert nm.n_images == N - 3
    np.testing.assert_allclose(nm.noise_variance, ref.noise_variance, rtol=1e-10)
    assert any(n.startswith("3 of 200 particles have missing or non-numeric tilt_deg, defocus_u_A (first: row 4)")
               for n in nm.notes), nm.notes
    # without the CTF, a bad defocus does not matter
    no_ctf = estimate_noise_model(t, white.volume, images=white.images, projector=_vol_proj()[1], apply_ctf=False)
    assert no_ctf.n_images == N - 2
    t["tilt_deg"] = np.nan
    with pytest.raises(CryodiagInputError, match="run_data.star") as err:
        estimate_noise_model(t, white.volume, images=white.images, projector=_vol_proj()[1])
    assert "all 200 have missing or non-numeric tilt_deg" in str(err.value)
