"""``cryodiag sample OUTDIR``: writes a dataset that the readers open; refuses to overwrite."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_cryodiag.cli import main
from napari_cryodiag.io import mrc
from napari_cryodiag.io.picks import read_table

ARGS = ["--n-micrographs", "2", "--size", "384x320", "--particles", "12", "--no-half-maps", "--no-classes"]


def test_sample_writes_dataset(tmp_path, capsys):
    out = tmp_path / "sample"
    assert main(["sample", str(out), "--seed", "4", *ARGS]) == 0
    text = capsys.readouterr().out
    assert "2 micrographs 384x320 px" in text
    man = json.loads((out / "dataset.json").read_text())
    assert man["seed"] == 4 and man["micrograph_shape_yx"] == [320, 384]
    st = mrc.open_micrograph_stack(out / "micrographs")
    assert st.keys == ["sim_0001", "sim_0002"] and st.data.shape == (2, 320, 384)
    star = read_table(out / "picks.star")
    cs = read_table(out / "picks.cs")
    assert len(star) == len(cs) == man["picks"]["total"]
    assert f"{len(star)} picks" in text
    np.testing.assert_allclose(star["x_px"], cs["x_px"], atol=2e-3)
    # cryoSPARC's micrograph_shape is [ny, nx]
    assert (cs["micrograph_ny"] == 320).all() and (cs["micrograph_nx"] == 384).all()
    assert star["x_px"].max() < 384 and star["y_px"].max() < 320
    assert not (out / "half_maps").exists() and not (out / "classes").exists()


def test_sample_refuses_to_overwrite_then_overwrites(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sample", str(out), *ARGS]) == 0
    first = read_table(out / "picks.star")
    capsys.readouterr()
    assert main(["sample", str(out), "--seed", "9", *ARGS]) == 2
    err = capsys.readouterr().err
    assert "already there" in err and "--overwrite" in err and str(out) in err
    np.testing.assert_array_equal(read_table(out / "picks.star")["x_px"], first["x_px"])
    assert main(["sample", str(out), "--seed", "9", "--overwrite", *ARGS]) == 0
    assert not np.array_equal(read_table(out / "picks.star")["x_px"], first["x_px"])


@pytest.mark.parametrize("bad", [["--size", "12"], ["--size", "abc"], ["--n-micrographs", "0"]])
def test_sample_bad_arguments(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(tmp_path / "x"), *bad])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_sample_is_a_cryodiag_subcommand():
    r = subprocess.run([sys.executable, "-m", "napari_cryodiag.cli", "sample", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "OUTDIR" in r.stdout and "--n-micrographs" in r.stdout
