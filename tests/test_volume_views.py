"""Volume views: planes are where they say, projections are sums, the Fourier volume is centred."""

from __future__ import annotations

import numpy as np

from napari_cryodiag.compute.maps.views import central_slices, fourier_log_amplitude, fourier_slices, projections


def test_central_slices_and_projections():
    n = 10
    v = np.zeros((n, n, n), np.float32)
    v[2, 3, n // 2] = 1.0  # on the central x plane: shows in z-y at (z=2, y=3)
    v[n // 2, 7, 1] = 2.0  # on the central z plane: y-x at (y=7, x=1)
    v[4, n // 2, 8] = 3.0  # on the central y plane: z-x at (z=4, x=8)
    s = central_slices(v)
    assert s["z-y"][2, 3] == 1.0 and s["y-x"][7, 1] == 2.0 and s["z-x"][4, 8] == 3.0
    assert s["z-y"].sum() == 1.0 and s["y-x"].sum() == 2.0 and s["z-x"].sum() == 3.0
    p = projections(v)
    assert p["y-x"][3, n // 2] == 1.0 and p["z-y"][4, n // 2] == 3.0 and p["z-x"][n // 2, 1] == 2.0
    for k in p:
        assert p[k].sum() == v.sum()


def test_fourier_volume_is_centred_log_amplitude():
    n = 16
    v = np.ones((n, n, n), np.float32)  # only the DC term
    la = fourier_log_amplitude(v)
    assert la.shape == v.shape and la.dtype == np.float32
    assert np.unravel_index(np.argmax(la), la.shape) == (n // 2,) * 3
    assert la.max() == np.float32(np.log(n**3 * (1 + 1e-6)))
    # a centred delta has a flat spectrum
    d = np.zeros((n, n, n), np.float32)
    d[n // 2, n // 2, n // 2] = 1
    np.testing.assert_allclose(fourier_log_amplitude(d), np.log(1 + 1e-6), atol=1e-6)
    fs = fourier_slices(v)
    assert fs["y-x"][n // 2, n // 2] == la.max()
