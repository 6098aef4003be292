"""``--scheduler ADDRESS`` on the command line: picking, scoring, the noise model and the class
half-set averages run on a ``dask.distributed`` cluster (a LocalCluster of two worker processes
here), whose workers read the micrographs and particle stacks from the files, and give the numbers
of the local run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_cryodiag.cli import main
from napari_cryodiag.io.picks import read_table

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from napari_cryodiag.simulate.dataset import write_sample_dataset

    root = tmp_path_factory.mktemp("cluster")
    ds = write_sample_dataset(root / "data", seed=3, n_micrographs=3, shape=(384, 384), n_refined_particles=120,
                              particles_per_micrograph=15, half_maps=False)
    return ds


@pytest.fixture(scope="module")
def address():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def _both(tmp_path, argv, address):
    """Run ``argv`` locally and on the cluster; return the two output folders."""
    local, remote = tmp_path / "local", tmp_path / "cluster"
    assert main([*argv, "-o", str(local)]) == 0
    assert main([*argv, "--scheduler", address, "-o", str(remote)]) == 0
    return local, remote


def test_noise_model_on_the_cluster(data, address, tmp_path):
    ref = data.refinement
    local, remote = _both(tmp_path, ["noise", "--particles", str(ref["star"]), "--map", str(ref["map"]),
                                     "--chunk-size", "32", "--quiet"], address)
    a = json.loads((local / "noise.json").read_text())["noise_model"]
    b = json.loads((remote / "noise.json").read_text())["noise_model"]
    assert a["n_images"] == b["n_images"] == 120
    assert b["noise_variance"] == a["noise_variance"]  # bit for bit (sums in chunk order)


def test_class_averages_on_the_cluster(data, address, tmp_path):
    local, remote = _both(tmp_path, ["classes", str(data.classes["particles_star"])], address)
    a = json.loads((local / "classes.json").read_text())
    b = json.loads((remote / "classes.json").read_text())
    assert a["frc"]["available"] and b["frc"]["available"]
    assert b["frc"]["curves"] == a["frc"]["curves"]
    assert [c["frc_resolution_A"] for c in b["classes"]] == [c["frc_resolution_A"] for c in a["classes"]]


def test_picking_and_scoring_on_the_cluster(data, address, tmp_path):
    mics = str(data.folder / "micrographs")
    d = str(data.simulation.particle_diameter_A)
    for argv in (["picks", "--pick", "--micrographs", mics, "--diameter-A", d, "--calibrate", "none"],
                 ["picks", str(data.picks_star), "--score", "--micrographs", mics, "--diameter-A", d,
                  "--calibrate", "none"]):
        out = tmp_path / argv[1].replace("-", "")
        local, remote = out / "local", out / "cluster"
        assert main([*argv, "--export-star", str(out / "local.star"), "-o", str(local)]) == 0
        assert main([*argv, "--scheduler", address, "--export-star", str(out / "cluster.star"), "-o", str(remote)]) == 0
        a, b = read_table(out / "local.star"), read_table(out / "cluster.star")
        assert len(a) == len(b) > 10
        np.testing.assert_array_equal(a[["x_px", "y_px", "ncc", "power"]].to_numpy(),
                                      b[["x_px", "y_px", "ncc", "power"]].to_numpy())
