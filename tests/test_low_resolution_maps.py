"""Half maps whose resolution is coarser than the Guinier window's 10 Å end: the FSC stands, the
B-factor fit is skipped with its reason, and sharpening needs an explicit B."""

import json

import numpy as np
import pytest

from napari_cryodiag.cli import main
from napari_cryodiag.compute.maps.sharpen import SharpenParams, ValidationSession
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io.mrc import write_mrc


def _low_resolution_half_maps(n=48, apix=4.0, seed=0):
    """A smooth blob (signal only below ~1/40 Å^-1) plus independent noise in each half."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) - n // 2
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    blob = np.exp(-((x - 3) ** 2 + y**2 + (z + 2) ** 2) / (2 * 5.0**2)).astype(np.float32)
    return (blob + 0.05 * rng.standard_normal(blob.shape).astype(np.float32),
            blob + 0.05 * rng.standard_normal(blob.shape).astype(np.float32), apix)


def test_session_skips_the_guinier_fit_but_keeps_the_fsc():
    h1, h2, apix = _low_resolution_half_maps()
    s = ValidationSession(h1, h2, apix, "h1.mrc", "h2.mrc").compute()
    res = s.fsc.resolution("corrected").interpolated_A
    assert res > 10.0  # coarser than the window's low-resolution end
    assert s.guinier is None and "empty" in s.guinier_error
    d = s.to_dict()
    assert d["guinier"]["skipped"] == s.guinier_error and len(d["guinier"]["y"]) == 48 // 2 + 1
    with pytest.raises(CryodiagInputError, match="no B-factor was fitted"):
        s.sharpen(SharpenParams())
    out = s.sharpen(SharpenParams(bfactor_A2=-50.0))
    assert out.shape == h1.shape and np.isfinite(out).all()


def test_cli_fsc_writes_everything_and_warns(tmp_path, capsys):
    h1, h2, apix = _low_resolution_half_maps(seed=1)
    write_mrc(tmp_path / "h1.mrc", h1, apix)
    write_mrc(tmp_path / "h2.mrc", h2, apix)
    out = tmp_path / "out"
    assert main(["fsc", str(tmp_path / "h1.mrc"), str(tmp_path / "h2.mrc"), "-o", str(out)]) == 0
    assert "no Guinier B-factor" in capsys.readouterr().err
    data = json.loads((out / "fsc.json").read_text())
    assert data["guinier"]["skipped"]
    for name in ("fsc.png", "guinier.png", "fsc.csv", "fsc_corrected.xml", "postprocess.star"):
        assert (out / name).stat().st_size > 0
