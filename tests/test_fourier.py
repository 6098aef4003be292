import numpy as np
import pytest

from napari_cryodiag.compute import fourier


def test_shell_index_matches_direct_computation():
    n = 12
    idx = fourier.shell_index((n, n, n))
    assert idx.shape == (n, n, n // 2 + 1)
    # direct: every coefficient of the full fftn, restricted to the rfft half
    k = np.fft.fftfreq(n, 1 / n)
    kz, ky, kx = np.meshgrid(k, k, np.fft.rfftfreq(n, 1 / n), indexing="ij")
    direct = np.rint(np.sqrt(kx**2 + ky**2 + kz**2)).astype(int)
    direct[direct > n // 2] = n // 2 + 1
    np.testing.assert_array_equal(idx, direct)
    assert idx[0, 0, 0] == 0 and idx[0, 0, n // 2] == n // 2


def test_shell_sums_and_counts():
    n = 16
    idx = fourier.shell_index((n, n))
    counts = fourier.shell_counts(idx, n)
    assert counts[0] == 1 and counts.sum() == (idx <= n // 2).sum()
    np.testing.assert_allclose(fourier.shell_sums(np.ones(idx.shape), idx, n), counts)
    z = fourier.shell_sums(np.full(idx.shape, 1 + 2j), idx, n)
    np.testing.assert_allclose(z, counts * (1 + 2j))


def test_shell_frequencies_and_resolution():
    f = fourier.shell_frequencies_invA(100, 2.0)
    assert f[50] == pytest.approx(1 / 4.0)  # Nyquist = 2 * pixel size
    res = fourier.shell_resolution_A(100, 2.0)
    assert np.isinf(res[0]) and res[10] == pytest.approx(20.0)


def test_non_cubic_box_is_refused():
    with pytest.raises(ValueError, match="cubic"):
        fourier.shell_index((8, 8, 10))


@pytest.mark.parametrize("shape", [(32, 32, 32), (33, 33, 33), (20, 22, 17), (24, 26)])
def test_transforms_into_given_arrays_are_bit_identical(shape):
    """rfftn/irfftn with ``out`` (and the in-place c2c + last-axis c2r of ``overwrite``) give the
    numbers of scipy.fft.rfftn / irfftn, bit for bit, in the arrays given."""
    import scipy.fft

    a = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    ref = scipy.fft.rfftn(a)
    out = np.empty_like(ref)
    assert fourier.rfftn(a, out=out) is out
    assert np.array_equal(out.view(np.uint64), ref.view(np.uint64))
    back = scipy.fft.irfftn(ref, s=shape).astype(np.float32)
    for overwrite in (False, True):
        f = ref.copy()
        r = np.empty(shape, np.float32)
        assert fourier.irfftn(f, shape, out=r, overwrite=overwrite) is r
        assert np.array_equal(r.view(np.uint32), back.view(np.uint32))
        if not overwrite:
            assert np.array_equal(f, ref)  # the input is kept
    # an unusable out (wrong dtype) still gets the right numbers
    r64 = np.empty(shape, np.float64)
    np.testing.assert_array_equal(fourier.irfftn(ref, shape, out=r64), back)


@pytest.mark.parametrize("shape", [(32, 32, 32), (33, 33, 33), (20, 22, 17), (24, 26), (31,)])
def test_transforms_in_place_are_bit_identical(shape):
    """A map written into the padded real view of a complex array and transformed over itself (and
    back) gives the numbers of scipy.fft.rfftn / irfftn, bit for bit, in that one array."""
    import scipy.fft

    a = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    ref = scipy.fft.rfftn(a)
    g = np.full(ref.shape, np.nan, np.complex64)  # the padding holds garbage: it must not leak in
    x = fourier.padded_real(g, shape)
    assert x.shape == a.shape and np.shares_memory(x, g)
    x[...] = a
    assert fourier.rfftn_inplace(g, shape) is g
    assert np.array_equal(g.view(np.uint64), ref.view(np.uint64))
    back = fourier.irfftn_inplace(g, shape)
    assert back.shape == shape and np.shares_memory(back, g)
    want = scipy.fft.irfftn(ref, s=shape).astype(np.float32)
    assert np.array_equal(back.view(np.uint32), want.view(np.uint32))
    with pytest.raises(ValueError, match="complex64"):
        fourier.padded_real(np.empty(ref.shape, np.complex128), shape)


@pytest.mark.parametrize("n", [32, 33])
def test_folded_shell_sums_in_threads_equal_the_plain_sums(n, monkeypatch):
    """The folded per-shell sums of the FSC, shared out in 1, 2 or 3 threads, equal the plain
    bincount over every coefficient (float32 products: to float32 rounding), and one another to
    float64 rounding; so do the folded shell means."""
    from napari_cryodiag.compute.maps.fsc import _shell_sums_fsc_rows, shell_sums_fsc

    monkeypatch.setattr(fourier, "FOLD_SLAB_ELEMENTS", n * (n // 2 + 1))  # one plane per slab: many slabs
    rng = np.random.default_rng(5)
    a = rng.normal(size=(n, n, n)).astype(np.float32)
    f1 = fourier.rfftn(a)
    f2 = fourier.rfftn(a + rng.normal(size=a.shape).astype(np.float32))
    index = fourier.shell_index(a.shape)
    assert fourier.foldable(f1.shape, index)
    plain = np.array(_shell_sums_fsc_rows(f1, f2, index, n))
    direct = np.array([fourier.shell_sums((f1 * np.conj(f2)).real.astype(np.float64), index, n),
                       fourier.shell_sums(np.abs(f1.astype(np.complex128)) ** 2, index, n),
                       fourier.shell_sums(np.abs(f2.astype(np.complex128)) ** 2, index, n)])
    np.testing.assert_allclose(plain, direct, rtol=1e-5)
    by_workers = {}
    for workers in (1, 2, 3):
        monkeypatch.setattr(fourier, "FFT_WORKERS", workers)
        by_workers[workers] = np.array(shell_sums_fsc(f1, f2, index, n))
        np.testing.assert_allclose(by_workers[workers], plain, rtol=1e-5)
        means = fourier.shell_means(f1, index, n)
        np.testing.assert_allclose(means["amplitude2"] * fourier.shell_counts(index, n), direct[1], rtol=1e-5)
    np.testing.assert_allclose(by_workers[2], by_workers[1], rtol=1e-12)
    np.testing.assert_allclose(by_workers[3], by_workers[1], rtol=1e-12)
