"""Clean errors name the file they are about and stay on one line (issue 11), also when the
numerics that refuse get arrays and no file name (the workflows add it)."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from badinput import run_cli_case
from napari_cryodiag.errors import CryodiagInputError, about


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from napari_cryodiag.simulate.dataset import write_sample_dataset

    root = tmp_path_factory.mktemp("messages")
    data = root / "data"
    write_sample_dataset(data, seed=3, n_micrographs=1, shape=(256, 256), n_refined_particles=40,
                         particles_per_micrograph=10, classes=False)
    f = {"data": data, "half1": data / "half_maps" / "half1.mrc", "half2": data / "half_maps" / "half2.mrc",
         "particles": data / "refinement" / "particles.star"}
    vol = mrcfile.read(f["half1"]).astype(np.float32)
    vol2 = mrcfile.read(f["half2"]).astype(np.float32)
    for name, arr, apix in (("nan_map.mrc", np.where(np.arange(vol.size).reshape(vol.shape) == 7, np.nan, vol), 2.0),
                            ("coarse_map.mrc", vol, 20.0), ("coarse_map2.mrc", vol2, 20.0)):
        with mrcfile.new(root / name) as m:
            m.set_data(arr.astype(np.float32))
            m.voxel_size = apix
        f[name[:-4]] = root / name
    return f


CASES = [
    ("guinier-nan-map", ["guinier", "{nan_map}", "--guinier-window", "10,4"], "nan_map.mrc", "NaN"),
    ("guinier-window-holds-no-shell", ["guinier", "{coarse_map}", "--guinier-window", "10,4"],
     "coarse_map.mrc", "holds 0 shells"),
    ("fsc-empty-threshold-mask", ["fsc", "{half1}", "{half2}", "--threshold", "1.5"], "half1.mrc", "empty"),
    ("sharpen-without-a-fit", ["sharpen", "{coarse_map}", "{coarse_map2}"], "coarse_map.mrc", "B-factor"),
    ("noise-map-far-coarser-than-the-particles", ["noise", "--particles", "{particles}", "--map", "{coarse_map}",
                                                  "--quiet"], "coarse_map.mrc", "GiB"),
]


@pytest.mark.parametrize("argv, name, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_message_names_the_file(files, tmp_path, capsys, argv, name, words):
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv] + ["-o", str(tmp_path / "out")]
    _, err = run_cli_case(capsys, argv, "error", [name], inputs=[files["data"]])
    assert words in err, err


def test_about_names_only_what_names_nothing():
    with pytest.raises(CryodiagInputError) as err:
        with about("maps/h1.mrc"):
            raise CryodiagInputError("fit window holds 0 shells")
    assert str(err.value) == "maps/h1.mrc: fit window holds 0 shells"
    with pytest.raises(CryodiagInputError) as err:
        with about("maps/h1.mrc"):
            raise CryodiagInputError("bad mask", "mask.mrc")
    assert err.value.path == "mask.mrc"


def test_a_message_stays_one_line(capsys, tmp_path):
    """A file name with a newline (or a problem text that holds one) is printed on one line."""
    odd = tmp_path / "two\nlines.mrc"
    for argv in (["views", str(odd), "-o", str(tmp_path / "o")], ["info", str(odd)]):
        _, err = run_cli_case(capsys, argv, "error", [])
        assert "two lines.mrc" in err and "not found" in err, err
