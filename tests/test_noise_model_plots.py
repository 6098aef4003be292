"""The noise-model figures draw the numbers they are given (curve data, 2D maps, axes)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.compute.particles.noise_model import estimate_noise_model, relion_noise_spectra
from napari_cryodiag.plots.noise_model import (
    plot_noise_advanced,
    plot_noise_basic,
    plot_noise_overview,
    plot_relion_sigma2,
)
from napari_cryodiag.simulate.particles import simulate_particles


@pytest.fixture(scope="module")
def nm_and_truth():
    sim = simulate_particles(n=50, box=32, pixel_size_A=3.0, noise="coloured", seed=13)
    return estimate_noise_model(sim.table, sim.volume, images=sim.images), sim.noise_spectrum


def test_basic_plot_shows_the_per_shell_values(nm_and_truth, tmp_path):
    nm, truth = nm_and_truth
    fig = plot_noise_basic(nm, truth=truth)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    est = next(v for k, v in lines.items() if k.startswith("noise variance"))
    np.testing.assert_allclose(est.get_xdata(), nm.frequency_invA)
    np.testing.assert_allclose(est.get_ydata(), nm.noise_variance)
    np.testing.assert_allclose(lines["true noise spectrum"].get_ydata(), truth)
    assert ax.get_yscale() == "log" and "1/Å" in ax.get_xlabel()
    assert ax.get_xlim()[1] == pytest.approx(1 / (2 * 3.0))
    fig.savefig(tmp_path / "b.png")


def test_advanced_plot_shows_2d_maps(nm_and_truth, tmp_path):
    nm, _ = nm_and_truth
    fig = plot_noise_advanced(nm)
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == 2
    before = np.ma.filled(images[0].get_array(), np.nan)
    after = np.ma.filled(images[1].get_array(), np.nan)
    np.testing.assert_allclose(before, nm.full_map(), equal_nan=True)
    np.testing.assert_allclose(after, nm.full_map(ring_average=True), equal_nan=True)
    # extent in 1/Å, DC at the centre pixel
    ext = images[0].get_extent()
    df = 1 / (32 * 3.0)
    assert ext[0] == pytest.approx(-16.5 * df) and ext[1] == pytest.approx(15.5 * df)
    # the ring-averaged map is constant on each shell and equals the 1D values there
    assert after[16, 16] == pytest.approx(nm.noise_variance[0])
    assert after[16, 16 + 5] == pytest.approx(nm.noise_variance[5])
    assert after[16 - 5, 16] == pytest.approx(nm.noise_variance[5])
    plot_noise_overview(nm).savefig(tmp_path / "o.png")


def test_relion_plot_values(shared_data):
    from napari_cryodiag.io.relion_model import read_model_star

    model = read_model_star(shared_data / "relion13-tutorial/Class2D/manual_it025_model.star")
    spectra = relion_noise_spectra(model)
    fig = plot_relion_sigma2(spectra)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    first = spectra[next(iter(spectra))]
    np.testing.assert_allclose(lines[0].get_ydata(), first["sigma2_noise"])
    assert lines[0].get_ydata()[0] == pytest.approx(1.482587e-04)
    fig2 = plot_relion_sigma2(spectra, per_pixel=True)
    np.testing.assert_allclose(fig2.axes[0].get_lines()[0].get_ydata(), 2 * 100**2 * first["sigma2_noise"])
    # many groups: thin lines and a bold median
    many = {f"g{i}": first for i in range(15)}
    fig3 = plot_relion_sigma2(many)
    assert fig3.axes[0].get_lines()[-1].get_label() == "median of 15 groups"


def test_relion_spectra_that_are_nan_everywhere(shared_data, tmp_path):
    """A model.star whose rlnSigma2Noise is NaN: one group is left out with a note; all of them
    is an error naming the file (no empty plot)."""
    from napari_cryodiag.errors import CryodiagInputError
    from napari_cryodiag.io.relion_model import read_model_star

    src = (shared_data / "relion13-tutorial/Class2D/manual_it025_model.star").read_text().splitlines()
    model = read_model_star(shared_data / "relion13-tutorial/Class2D/manual_it025_model.star")
    first = next(iter(model.groups))
    # NaN in every shell of every group: rewrite the sigma2 column of each model_group block
    out, block, col, ncols = [], None, None, 0
    for line in src:
        t = line.strip()
        if t.startswith("data_"):
            block, col, ncols = t, None, 0
        elif t.startswith("_rln"):
            if t.split()[0] == "_rlnSigma2Noise":
                col = ncols
            ncols += 1
        elif block and block.startswith("data_model_group_") and col is not None and t and not t.startswith(("loop_", "#")):
            parts = t.split()
            if len(parts) == ncols:
                parts[col] = "nan"
                line = " ".join(parts)
        out.append(line)
    bad = tmp_path / "nan_model.star"
    bad.write_text("\n".join(out) + "\n")
    with pytest.raises(CryodiagInputError, match="nan_model.star") as err:
        relion_noise_spectra(read_model_star(bad))
    assert "NaN in every shell of all 3 groups" in str(err.value)
    # only one group NaN: the others are shown, the note says which was left out
    one = read_model_star(shared_data / "relion13-tutorial/Class2D/manual_it025_model.star")
    one.groups[first] = one.groups[first].assign(sigma2_noise=np.nan)
    spectra = relion_noise_spectra(one)
    assert first not in spectra and len(spectra) == 2
    assert spectra.notes == [f"rlnSigma2Noise is NaN in every shell of group(s) {first}: left out"]
