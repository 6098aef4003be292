"""Simulated particles: the noise has the spectrum the simulator claims, and the shift
convention is RELION's (the table's shift is the one that centres the particle)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.fourier import n_shells, shell_counts, shell_index, shell_sums
from napari_cryodiag.simulate.particles import (
    make_noise,
    noise_spectrum,
    simulate_particles,
    write_particle_set,
)


@pytest.mark.parametrize("kind", ["white", "coloured"])
def test_noise_images_have_the_stated_spectrum(kind):
    box, n = 48, 300
    spec = noise_spectrum(kind, box, sigma=2.0)
    noise = make_noise(n, box, spec, np.random.default_rng(5))
    idx = shell_index((box, box))
    power = (np.abs(np.fft.rfft2(noise)) ** 2).mean(axis=0) / box**2
    measured = shell_sums(power, idx, box) / shell_counts(idx, box)
    # relative statistical error of a shell mean ~ 1/sqrt(n * count); 5 sigma, DC is one real coefficient
    tol = 5 * np.sqrt(2.0) / np.sqrt(n * shell_counts(idx, box))
    assert np.all(np.abs(measured / spec - 1) < tol)
    # the per-pixel convention: white noise of variance sigma^2 reads sigma^2 in every shell
    if kind == "white":
        np.testing.assert_allclose(spec, 4.0)
        assert abs(noise.var() / 4.0 - 1) < 0.01
    else:
        assert spec.max() / spec.min() > 3  # a real colour, not a flat line
        counts = shell_counts(idx, box)
        assert np.sum(spec * counts) / counts.sum() == pytest.approx(4.0)


def test_table_columns_and_reproducibility():
    a = simulate_particles(n=20, box=32, pixel_size_A=3.0, seed=4)
    b = simulate_particles(n=20, box=32, pixel_size_A=3.0, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    for col in ("rot_deg", "tilt_deg", "psi_deg", "shift_x_A", "shift_y_A", "defocus_u_A",
                "defocus_v_A", "defocus_angle_deg", "voltage_kV", "cs_mm", "amplitude_contrast",
                "pixel_size_A", "image_index"):
        assert col in a.table.columns
    assert a.images.shape == (20, 32, 32) and a.images.dtype == np.float32
    assert len(a.noise_spectrum) == n_shells(32)
    c = simulate_particles(n=20, box=32, pixel_size_A=3.0, seed=5)
    assert not np.allclose(a.images, c.images)


def test_shift_is_the_relion_origin():
    """A particle whose origin is (+dx, +dy) Å sits at (-dx, -dy) Å from the box centre."""
    box, apix = 64, 2.0
    sim = simulate_particles(n=1, box=box, pixel_size_A=apix, noise="none", apply_ctf=False,
                             max_shift_A=0.0, seed=1)
    centred = sim.images[0]
    from napari_cryodiag.compute.projection import FourierProjector, euler_to_matrix

    t = sim.table.iloc[0]
    a = euler_to_matrix(t.rot_deg, t.tilt_deg, t.psi_deg)
    proj = FourierProjector(sim.volume)
    dx_A, dy_A = 10.0, -6.0
    moved = proj.project(a[None], -np.array([[dx_A, dy_A]]) / apix)[0]

    def com(img):
        y, x = np.mgrid[:box, :box]
        w = np.clip(img, 0, None)
        return np.array([(x * w).sum() / w.sum(), (y * w).sum() / w.sum()])

    np.testing.assert_allclose(com(moved) - com(centred), [-dx_A / apix, -dy_A / apix], atol=0.15)


def test_write_particle_set(tmp_path):
    import mrcfile
    import starfile

    sim = simulate_particles(n=12, box=32, pixel_size_A=2.5, seed=2)
    paths = write_particle_set(sim, tmp_path)
    with mrcfile.open(paths["stack"]) as m:
        np.testing.assert_array_equal(m.data, sim.images)
        assert m.voxel_size.x == pytest.approx(2.5)
    star = starfile.read(paths["star"])
    parts = star["particles"]
    assert list(parts["rlnImageName"][:2]) == ["000001@particles.mrcs", "000002@particles.mrcs"]
    np.testing.assert_allclose(parts["rlnOriginXAngst"], sim.table["shift_x_A"], rtol=0, atol=1e-9)
    assert float(star["optics"]["rlnImagePixelSize"][0]) == pytest.approx(2.5)
    from napari_cryodiag.errors import CryodiagInputError

    with pytest.raises(CryodiagInputError, match="file exists"):
        write_particle_set(sim, tmp_path)  # never overwrite without asking


def test_chunked_simulation_into_out_array():
    whole = simulate_particles(n=30, box=32, noise="none", seed=8)
    out = np.zeros((30, 32, 32), np.float32)
    chunked = simulate_particles(n=30, box=32, noise="none", seed=8, chunk_size=7, out=out)
    assert chunked.images is out
    np.testing.assert_allclose(out, whole.images, rtol=1e-6, atol=1e-6)
