"""Half-set class averages and class FRC on simulated particles with known poses and classes."""

from __future__ import annotations

import mrcfile
import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.particles.class_averages import (
    align_images,
    compute_class_averages,
    rotate_images,
)
from napari_cryodiag.io.particle_images import locate_particle_stacks as locate_particle_images
from napari_cryodiag.workflows.classes import class_diagnostics
from napari_cryodiag.compute.ctf import ctf_2d
from napari_cryodiag.compute.projection import FourierProjector, euler_to_matrix
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.simulate.classes import simulate_classes
from napari_cryodiag.simulate.density import gaussian_atoms_density


def _corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def sim():
    return simulate_classes(seed=0)


def test_alignment_inverts_relion_in_plane_model():
    """A projection at (rot, tilt, psi) displaced by -origin aligns back to the psi = 0 view."""
    vol = gaussian_atoms_density(box=48, pixel_size_A=3.0, seed=3)
    proj = FourierProjector(vol)
    ref = proj.project(euler_to_matrix(30.0, 60.0, 0.0))[0]
    psi = np.array([0.0, 37.0, 123.0, 290.0])
    origin = np.array([[0.0, 0.0], [2.5, -1.0], [-3.0, 4.0], [1.0, 1.0]])  # px, RELION origin
    imgs = proj.project(euler_to_matrix(30.0, 60.0, psi), shifts_px=-origin)
    aligned = align_images(imgs, psi, origin)
    for a in aligned:
        assert _corr(a, ref) > 0.98
    # the opposite rotation sense or shift sign does not align
    wrong = align_images(imgs, -psi, origin)
    assert _corr(wrong[2], ref) < 0.8
    wrong = align_images(imgs, psi, -origin)
    assert _corr(wrong[2], ref) < 0.9


def test_rotated_ctf_has_angle_plus_psi():
    """CTF(R^T k) of an astigmatic CTF is the CTF with astigmatism angle + psi."""
    n, apix = 128, 2.0
    for a, psi in [(20.0, 35.0), (100.0, -70.0)]:
        c = np.fft.fftshift(ctf_2d((n, n), apix, 12000, 8000, a, rfft=False))
        rot = rotate_images(c[None], [psi], order=1)[0]
        right = np.fft.fftshift(ctf_2d((n, n), apix, 12000, 8000, a + psi, rfft=False))
        wrong = np.fft.fftshift(ctf_2d((n, n), apix, 12000, 8000, a - psi, rfft=False))
        g = np.arange(n) - n // 2
        inner = np.hypot(g[:, None], g[None, :]) < 0.3 * n  # the corners rotate out of the box
        assert _corr(rot[inner], right[inner]) > 0.98
        assert _corr(rot[inner], wrong[inner]) < 0.5


def test_simulated_averages_match_truth_and_junk_has_worst_frc(sim):
    ca = sim.truth["class_averages"]
    good, junk = sim.truth["good_classes"], sim.truth["junk_classes"]
    assert len(junk) == 2 and sim.averages.shape == (6, 64, 64) and sim.averages.dtype == np.float32
    for k in good:
        assert _corr(sim.averages[k - 1], sim.truth["clean_views"][k - 1]) > 0.7
    res = dict(zip(ca.labels.tolist(), ca.frc_resolution_A))
    worst_good = max(res[k] for k in good)
    assert min(res[k] for k in junk) > 1.5 * worst_good
    # good classes reach well beyond 20 Å on 3 Å/px data, the empty class does not reach 60 Å
    assert worst_good < 20
    empty = [k for k, v in sim.truth["junk_kinds"].items() if v == "empty"][0]
    assert res[empty] > 60


def test_simulated_table_posteriors(sim):
    t = sim.table
    k = sim.posteriors.shape[1]
    np.testing.assert_allclose(t["class_ess"], 1 / (sim.posteriors**2).sum(1))
    np.testing.assert_allclose(t["class_posterior"], sim.posteriors.max(1))
    assert (t["class"].to_numpy() == sim.posteriors.argmax(1) + 1).all()
    assert t["class_ess"].between(1, k).all()
    med = t.groupby("class")["class_ess"].median()
    assert med[sim.truth["junk_classes"]].min() > med[sim.truth["good_classes"]].max()


def test_identical_halves_are_nyquist_limited_and_noise_is_not(sim):
    # every particle twice, once in each half: the two half averages are identical
    t = sim.table.iloc[:240].copy()
    t2 = pd.concat([t, t], ignore_index=True)
    t2["split"] = np.r_[np.zeros(len(t), int), np.ones(len(t), int)]
    t2.attrs = dict(t.attrs)
    ca = compute_class_averages(t2, images=sim.images, ctf="none")
    assert ca.halves == "split"
    np.testing.assert_allclose(ca.frc[:, 1:], 1.0, atol=1e-6)
    assert ca.frc_nyquist_limited.all()
    np.testing.assert_allclose(ca.frc_resolution_A, 2 * sim.pixel_size_A)
    # pure noise images: FRC ~ 0 past the first shells, very poor resolution
    rng = np.random.default_rng(5)
    noise = rng.normal(size=sim.images.shape).astype(np.float32)
    t = sim.table
    ca = compute_class_averages(t, images=noise, ctf="none")
    assert np.abs(np.nanmean(ca.frc[:, 5:])) < 0.05
    assert np.all(ca.frc_resolution_A > 64 * sim.pixel_size_A / 4)


def test_wiener_and_alternating_halves(sim):
    ca = compute_class_averages(sim.table, images=sim.images, ctf="wiener")
    assert ca.ctf_mode == "wiener" and ca.halves == "alternate"
    assert np.all(np.abs(ca.counts[:, 0] - ca.counts[:, 1]) <= 1)
    for k in sim.truth["good_classes"]:
        assert _corr(ca.averages[k - 1], sim.truth["clean_views"][k - 1]) > 0.7
    res = dict(zip(ca.labels.tolist(), ca.frc_resolution_A))
    assert min(res[k] for k in sim.truth["junk_classes"]) > max(res[k] for k in sim.truth["good_classes"])


def test_averages_from_stack_files_equal_in_memory(sim, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    stack = tmp_path / "elsewhere" / "particles.mrcs"
    with mrcfile.new(stack) as m:
        m.set_data(sim.images)
        m.voxel_size = sim.pixel_size_A
    t = sim.table.copy()
    t["image_path"] = "Extract/particles.mrcs"  # as written relative to a project folder
    t.attrs = dict(sim.table.attrs)
    t.attrs["source"] = str(tmp_path / "Class2D" / "run_data.star")
    src, reason = locate_particle_images(t)
    assert src is None and reason.startswith("no particle images:") and "Extract/particles.mrcs" in reason
    src, reason = locate_particle_images(t, stacks=[stack])
    assert reason == "" and src.files == {"Extract/particles.mrcs": stack}
    mem = compute_class_averages(sim.table, images=sim.images)
    progress = []
    files = compute_class_averages(t, source=src, progress=lambda d, n: progress.append((d, n)))
    np.testing.assert_allclose(files.averages, mem.averages, atol=1e-5)
    np.testing.assert_allclose(files.frc_resolution_A, mem.frc_resolution_A, rtol=1e-6)
    assert progress[0] == (0, len(t)) and progress[-1] == (len(t), len(t))
    with pytest.raises(CryodiagInputError, match="no particle images"):
        compute_class_averages(t)


def test_class_diagnostics_on_simulation_uses_computed_averages(sim):
    d = class_diagnostics(sim.table, images=sim.images)
    assert d.averages_source.startswith("computed from the particles")
    s = d.summary
    assert s["class"].tolist() == [1, 2, 3, 4, 5, 6]
    assert (s["frc_note"] == "").all() and s["frc_resolution_A"].notna().all()
    js = d.to_json()
    assert js["frc"]["available"] and set(js["frc"]["curves"]) == {"1", "2", "3", "4", "5", "6"}
    assert len(js["frc"]["frequency_invA"]) == 33


def test_vectorised_particle_ctfs_equal_ctf_2d():
    from napari_cryodiag.compute.particles.class_averages import _particle_ctfs

    rows = pd.DataFrame({"defocus_u_A": [15000.0, 22000.0], "defocus_v_A": [14000.0, 21500.0],
                         "defocus_angle_deg": [30.0, 160.0], "voltage_kV": [300.0, 200.0],
                         "cs_mm": [2.7, 2.0], "amplitude_contrast": [0.1, 0.07],
                         "phase_shift_deg": [0.0, 90.0]})
    got = _particle_ctfs(rows, 48, 1.5, extra_angle_deg=[10.0, -20.0])
    for i, r in rows.iterrows():
        ref = ctf_2d((48, 48), 1.5, r.defocus_u_A, r.defocus_v_A, r.defocus_angle_deg + [10.0, -20.0][i],
                     r.voltage_kV, r.cs_mm, r.amplitude_contrast, r.phase_shift_deg)
        # the batch is evaluated in float32 (chi up to ~100 rad): agreement to 1e-4 of a [-1, 1] value
        np.testing.assert_allclose(got[i], ref, atol=1e-4)
        assert np.corrcoef(got[i].ravel(), ref.ravel())[0, 1] > 0.999999


def test_unusable_images_leave_a_reason_not_a_crash(sim, tmp_path):
    stack = tmp_path / "wrong_size.mrcs"
    with mrcfile.new(stack) as m:
        m.set_data(np.zeros((3, 16, 16), dtype=np.float32))  # too few images for the table
    t = sim.table.iloc[:50].copy()
    t.attrs = dict(sim.table.attrs)
    d = class_diagnostics(t, stacks=[stack])
    assert d.class_averages is None
    assert d.frc_reason.startswith("FRC not computed:") and "out of range" in d.frc_reason
    assert (d.summary["frc_note"] == d.frc_reason).all()
    assert d.summary["count"].sum() == 50


def test_frc_weighting_keeps_signal_and_damps_noise():
    from napari_cryodiag.compute.particles.class_averages import frc_weighted

    rng = np.random.default_rng(11)
    img = rng.normal(size=(2, 32, 32)).astype(np.float32)
    from napari_cryodiag.compute.fourier import shell_index

    # F = 1: w = 1 inside the Nyquist circle; the corners beyond it are dropped
    ft = np.fft.rfft2(np.fft.ifftshift(img, axes=(-2, -1)))
    ft[:, shell_index((32, 32)) >= 17] = 0
    inside = np.fft.fftshift(np.fft.irfft2(ft, s=(32, 32)), axes=(-2, -1))
    ones = np.ones((2, 17))
    np.testing.assert_allclose(frc_weighted(img, ones), inside, atol=1e-5)
    zeros = np.zeros((2, 17))
    zeros[:, 0] = 1.0  # only the DC ring kept
    out = frc_weighted(img, zeros)
    np.testing.assert_allclose(out, img.mean(axis=(1, 2), keepdims=True) * np.ones_like(img), atol=1e-5)
    nan = np.full((2, 17), np.nan)
    np.testing.assert_array_equal(frc_weighted(img, nan), img)  # no FRC: unfiltered


def test_distributed_cluster_reads_the_stacks_and_gives_the_same_averages(sim, tmp_path):
    """Half-set class averages on a LocalCluster of two worker processes, images read by the
    workers from the stack file: the threads' averages and FRC bit for bit (sums in batch order);
    the image source travels as a path (its memory maps are not pickled)."""
    distributed = pytest.importorskip("distributed")
    import pickle

    stack = tmp_path / "particles.mrcs"
    with mrcfile.new(stack) as m:
        m.set_data(sim.images)
        m.voxel_size = sim.pixel_size_A
    t = sim.table.copy()
    t["image_path"] = "particles.mrcs"
    t.attrs = dict(sim.table.attrs)
    src, reason = locate_particle_images(t, stacks=[stack])
    assert reason == ""
    threads = compute_class_averages(t, source=src, batch_size=64, num_workers=2, ctf="wiener")
    assert src._cache  # the stack is mapped in this process ...
    assert len(pickle.dumps(src)) < 2000 < sim.images.nbytes  # ... but travels as its path
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        progress = []
        dist = compute_class_averages(t, source=src, batch_size=64, client=client, ctf="wiener",
                                      progress=lambda d, n: progress.append(d))
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(dist.averages, threads.averages)
    np.testing.assert_array_equal(dist.half1, threads.half1)
    np.testing.assert_array_equal(dist.frc_resolution_A, threads.frc_resolution_A)
    assert progress[0] == 0 and progress[-1] == len(t) and len(progress) == 1 + -(-len(t) // 64)
