"""Per-micrograph scoring and picking through dask: threads, a distributed LocalCluster, progress, cancel."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.picks.jobs import (
    PickJobCancelled,
    iter_score_picks,
    pick_micrographs,
    score_picks,
)
from napari_cryodiag.compute.picks.picker import pick_micrograph
from napari_cryodiag.compute.picks.scores import score_micrograph


@pytest.fixture(scope="module")
def sim():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    return simulate_micrographs(4, (384, 384), seed=7, particles_per_micrograph=15, score=False)


@pytest.fixture(scope="module")
def stack(sim, tmp_path_factory):
    from napari_cryodiag.io.mrc import open_micrograph_stack, write_mrc

    folder = tmp_path_factory.mktemp("mics")
    for img, name in zip(sim.images, sim.names):
        write_mrc(folder / name, img, sim.pixel_size_A)
    return open_micrograph_stack(folder)


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two worker *processes*: what a cluster does (tasks pickled, micrographs
    read by the workers from the file system), on one machine."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def _direct_scores(sim, table, **kw):
    ncc = np.full(len(table), np.nan)
    power = np.full(len(table), np.nan)
    for i, key in enumerate(sim.keys):
        rows = np.flatnonzero(table["micrograph"].to_numpy() == key)
        ncc[rows], power[rows] = score_micrograph(
            sim.images[i], table["x_px"].to_numpy()[rows], table["y_px"].to_numpy()[rows],
            diameter_px=sim.particle_diameter_px, pixel_size_A=sim.pixel_size_A, **kw,
        )
    return ncc, power


def test_score_picks_threads_matches_direct_scoring_with_progress(sim, stack):
    table = sim.truth.drop(columns=["ncc", "power"], errors="ignore")
    calls = []
    out = score_picks(stack, table, diameter_px=sim.particle_diameter_px, progress=lambda d, t: calls.append((d, t)))
    ncc, power = _direct_scores(sim, table)
    np.testing.assert_allclose(out["ncc"].to_numpy(), ncc, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(out["power"].to_numpy(), power, rtol=1e-6, equal_nan=True)
    assert np.isfinite(out["ncc"]).mean() > 0.9
    assert calls[-1] == (4, 4) and [c[0] for c in calls] == [1, 2, 3, 4]
    info = out.attrs["cryodiag_scoring"]
    assert info["n_unmatched"] == 0 and info["n_micrographs_scored"] == 4
    assert "ncc" not in table.columns  # input untouched


def test_distributed_local_cluster_gives_the_same_results(sim, stack, client):
    table = sim.truth[["micrograph", "x_px", "y_px"]].copy()
    threads = score_picks(stack, table, diameter_px=sim.particle_diameter_px, num_workers=2)
    dist = score_picks(stack, table, diameter_px=sim.particle_diameter_px, client=client)
    np.testing.assert_array_equal(threads["ncc"].to_numpy(), dist["ncc"].to_numpy())
    np.testing.assert_array_equal(threads["power"].to_numpy(), dist["power"].to_numpy())
    assert dist.attrs["cryodiag_scoring"]["scheduler"] == "distributed"
    # both worker processes took part
    assert len(client.scheduler_info()["workers"]) == 2
    p_threads = pick_micrographs(stack, diameter_px=sim.particle_diameter_px, ncc_min=0.2)
    p_dist = pick_micrographs(stack, diameter_px=sim.particle_diameter_px, ncc_min=0.2, client=client)
    pd.testing.assert_frame_equal(p_threads, p_dist)
    assert len(p_dist) > 20
    # the scheduler's address works as well (a client is opened and closed for the run)
    by_address = score_picks(stack, table, diameter_px=sim.particle_diameter_px, client=client.scheduler.address)
    np.testing.assert_array_equal(by_address["ncc"].to_numpy(), threads["ncc"].to_numpy())


def test_the_graph_carries_paths_not_micrographs(sim, stack, monkeypatch):
    """Scoring a file-backed stack sends the micrographs' paths (their read tasks), not their
    pixels, and the options (a template stack here) once for all micrographs."""
    import cloudpickle
    import dask

    from napari_cryodiag.compute.picks import jobs

    seen = {}
    real = jobs.run_tasks

    def spy(tasks, **kw):
        seen["tasks"] = tasks
        return real(tasks, **kw)

    monkeypatch.setattr(jobs, "run_tasks", spy)
    table = sim.truth[["micrograph", "x_px", "y_px"]].copy()
    templates = np.random.default_rng(0).normal(size=(8, 48, 48)).astype(np.float32)  # 74 kB
    score_picks(stack, table, diameter_px=sim.particle_diameter_px, templates=templates, n_angles=4)
    graph = dict(dask.delayed(list)(seen["tasks"]).__dask_graph__())
    size = len(cloudpickle.dumps(graph))
    mic_bytes = sim.images.nbytes  # 4 micrographs of 384² float32: 2.4 MB
    assert size < 0.1 * mic_bytes
    assert size < 2 * templates.nbytes  # not once per micrograph (4x)


def test_pick_micrographs_matches_pick_micrograph(sim, stack):
    picks = pick_micrographs(stack, diameter_px=sim.particle_diameter_px, ncc_min=0.2)
    assert set(picks["micrograph"]) <= set(sim.keys)
    for i, key in enumerate(sim.keys):
        direct = pick_micrograph(sim.images[i], diameter_px=sim.particle_diameter_px, ncc_min=0.2,
                                 pixel_size_A=sim.pixel_size_A)
        mine = picks[picks["micrograph"] == key].reset_index(drop=True)
        np.testing.assert_allclose(mine[["x_px", "y_px", "ncc", "power"]].to_numpy(),
                                   direct[["x_px", "y_px", "ncc", "power"]].to_numpy())
        assert (mine["micrograph_index"] == i).all()
    assert picks["pixel_size_A"].iloc[0] == pytest.approx(sim.pixel_size_A)
    # the picks re-scored through score_picks carry the same scores as the picker gave them
    rescored = score_picks(stack, picks, diameter_px=sim.particle_diameter_px, columns=("ncc2", "power2"))
    np.testing.assert_allclose(rescored["ncc2"], picks["ncc"], rtol=1e-6)


def test_missing_micrograph_and_outside_picks_get_nan(sim, stack):
    table = sim.truth[["micrograph", "x_px", "y_px"]].copy()
    extra = pd.DataFrame({"micrograph": ["not_there"] * 3, "x_px": [50.0, 60, 70], "y_px": [50.0, 60, 70]})
    outside = pd.DataFrame({"micrograph": [sim.keys[0]] * 2, "x_px": [-20.0, 1000.0], "y_px": [10.0, 5000.0]})
    t = pd.concat([table, extra, outside], ignore_index=True)
    out = score_picks(stack, t, diameter_px=sim.particle_diameter_px)
    assert out["ncc"].iloc[-5:].isna().all() and out["power"].iloc[-5:].isna().all()
    info = out.attrs["cryodiag_scoring"]
    assert info["n_unmatched"] == 3 and info["unmatched_micrographs"] == {"not_there": 3}
    assert info["n_nan"] >= 2


def test_array_stack_with_keys_or_index(sim):
    table = sim.truth[["micrograph", "x_px", "y_px"]].copy()
    a = score_picks(sim.images, table, keys=sim.keys, diameter_px=sim.particle_diameter_px,
                    pixel_size_A=sim.pixel_size_A)
    t2 = table.drop(columns=["micrograph"]).assign(
        micrograph_index=[sim.keys.index(k) for k in table["micrograph"]]
    )
    b = score_picks(sim.images, t2, diameter_px=sim.particle_diameter_px, pixel_size_A=sim.pixel_size_A)
    np.testing.assert_array_equal(a["ncc"].to_numpy(), b["ncc"].to_numpy())
    ncc, _ = _direct_scores(sim, table)
    np.testing.assert_allclose(a["ncc"].to_numpy(), ncc, equal_nan=True)
    with pytest.raises(Exception, match="cannot match picks"):
        score_picks(sim.images, table.drop(columns=["micrograph"]), diameter_px=20)
    with pytest.raises(Exception, match="no 'x_px' column"):
        score_picks(sim.images, table.drop(columns=["x_px"]), keys=sim.keys, diameter_px=20)


def test_cancel_between_micrographs(sim, stack):
    table = sim.truth[["micrograph", "x_px", "y_px"]].copy()
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        cancel.set()

    with pytest.raises(PickJobCancelled):
        score_picks(stack, table, diameter_px=sim.particle_diameter_px, progress=progress, cancel=cancel,
                    num_workers=1)
    assert seen == [1]
    # the generator form: closing it (napari's worker.quit) stops cleanly
    gen = iter_score_picks(stack, table, diameter_px=sim.particle_diameter_px, num_workers=1)
    assert next(gen) == (1, 4)
    gen.close()


def test_progress_callbacks_are_not_global(sim):
    """Other dask work in the process (napari's lazy layers) must never see the job's callbacks."""
    from dask.callbacks import Callback

    table = sim.truth[["micrograph", "x_px", "y_px"]].copy()
    active = []
    score_picks(sim.images, table, keys=sim.keys, diameter_px=sim.particle_diameter_px,
                progress=lambda d, t: active.append(len(Callback.active)))
    assert active and all(a == 0 for a in active)
