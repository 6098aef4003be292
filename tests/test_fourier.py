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
