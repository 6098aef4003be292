"""Following a live session: files handed over once complete, every pick once, nothing reread.

A simulated session (:class:`~napari_cryodiag.simulate.session.SessionWriter`) writes micrographs,
picks and CTF over time into a RELION project, a cryoSPARC project and a plain folder, with files
left half-written between polls; the watcher must not read a file before it is complete, must
deliver every pick exactly once with its micrograph's defocus, and must not read a file again
once it has been read (unless it changes).
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from tree_hash import tree_hash

from napari_cryodiag.io.watch import FileWatch, is_complete
from napari_cryodiag.simulate.session import SessionWriter
from napari_cryodiag.workflows.live import LiveSource, extend_stack


@pytest.fixture(scope="module")
def sim():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    return simulate_micrographs(n_micrographs=5, shape=(256, 256), seed=11, particles_per_micrograph=6)


def _pick_keys(t: pd.DataFrame) -> Counter:
    return Counter(zip(t["micrograph"].astype(str), np.round(t["x_px"].to_numpy(float), 2),
                       np.round(t["y_px"].to_numpy(float), 2)))


# --------------------------------------------------------------------------- FileWatch


def test_files_are_handed_over_once_complete(tmp_path, sim):
    from napari_cryodiag.simulate.session import _mrc_bytes, _npy_bytes
    from napari_cryodiag.simulate.project import exposure_records, ctf_statistics

    w = FileWatch()
    mrc = tmp_path / "a.mrc"
    data = _mrc_bytes(sim.images[0], sim.pixel_size_A)
    mrc.write_bytes(data[:1024])  # the header alone
    assert not is_complete(mrc)
    assert w.poll([mrc]).pending == [mrc]
    mrc.write_bytes(data[: len(data) - 10])
    assert w.poll([mrc]).pending == [mrc]
    mrc.write_bytes(data)
    assert w.poll([mrc]).new == [mrc]  # complete by its header: at once
    assert not w.poll([mrc])  # not handed over twice

    star = tmp_path / "picks.star"
    text = "\ndata_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n10.0 20.0\n30.0 4"
    star.write_text(text)  # the last row written halfway
    assert w.poll([star]).pending == [star] and w.poll([star]).pending == [star]
    star.write_text(text + "0.0\n")
    assert w.poll([star]).pending == [star]  # complete, but its size has to hold for two polls
    assert w.poll([star]).new == [star]
    star.write_text(text + "0.0\n50.0 60.0\n")  # rewritten with more rows
    assert not w.poll([star]) and w.poll([star]).changed == [star]

    cs = tmp_path / "exposures.cs"
    b = _npy_bytes(exposure_records(sim, ctf_statistics(sim)))
    cs.write_bytes(b[: len(b) - 3])
    assert w.poll([cs]).pending == [cs]
    cs.write_bytes(b)
    assert w.poll([cs]).new == [cs]

    hidden = tmp_path / ".a.cryodiag-1@h-x.tmp.mrc"
    hidden.write_bytes(data)
    assert not w.poll([hidden]) and not w.poll([hidden]).pending


# --------------------------------------------------------------------------- LiveSource


def _script(w: SessionWriter, src: LiveSource):
    """A session with half-written files between polls; yields each poll's update."""
    yield src.poll()  # nothing yet
    w.step(0)
    yield src.poll()
    yield src.poll()
    w.write_micrograph(1, partial=True)
    yield src.poll()
    w.finish()
    w.write_ctf(1)
    w.write_picks(1, partial=True)
    yield src.poll()
    yield src.poll()
    w.finish()
    yield src.poll()
    w.write_picks(2)  # picks before their micrograph's CTF: they wait for it
    yield src.poll()
    yield src.poll()
    w.write_micrograph(2)
    w.write_ctf(2, partial=True)
    yield src.poll()
    w.finish()
    w.step(3)
    w.step(4)
    for _ in range(3):
        yield src.poll()


@pytest.mark.parametrize("layout", ["relion", "cryosparc", "folder"])
def test_every_pick_arrives_once_with_its_defocus(tmp_path, sim, layout, monkeypatch):
    import napari_cryodiag.io.picks as io_picks

    reads: Counter = Counter()
    real = io_picks.read_table

    def counting(path, **kw):
        reads[os.fspath(path)] += 1
        return real(path, **kw)

    monkeypatch.setattr(io_picks, "read_table", counting)
    w = SessionWriter(tmp_path / layout, sim, layout)
    src = LiveSource(w.folder)
    assert src.layout == layout
    got, mics, waited = [], [], False
    for up in _script(w, src):
        waited |= src.waiting > 0
        if up.picks is not None:
            got.append(up.picks)
            assert not up.picks["defocus_A"].isna().any()  # picks come with their CTF
        mics += up.micrographs
        for p in up.micrographs:  # a micrograph is handed over complete
            assert is_complete(p)
    picks = pd.concat(got, ignore_index=True)
    assert _pick_keys(picks) == _pick_keys(sim.truth)  # each pick exactly once
    truth = sim.truth.groupby("micrograph")["defocus_A"].first()
    np.testing.assert_allclose(picks["defocus_A"], picks["micrograph"].astype(str).map(truth), rtol=1e-5)
    assert [p.name for p in mics] == [w.micrograph_path(i).name for i in range(5)]
    assert src.micrographs == mics and src.n_picks == len(sim.truth) and src.waiting == 0
    assert waited  # micrograph 2's picks waited for its CTF
    assert len(src.exposures) == 5
    if layout != "cryosparc":  # one file per micrograph: each read once
        per_file = [n for f, n in reads.items() if f.endswith("_autopick.star")]
        assert len(per_file) == 5 and set(per_file) == {1}


def test_the_stack_grows_without_rereading_headers(tmp_path, sim, monkeypatch):
    import napari_cryodiag.io.mrc as io_mrc

    w = SessionWriter(tmp_path / "f", sim, "folder")
    for i in range(3):
        w.write_micrograph(i)
    first = extend_stack(None, [w.micrograph_path(i) for i in range(2)])
    seen: list[str] = []
    real = io_mrc.read_header
    monkeypatch.setattr(io_mrc, "read_header", lambda p: (seen.append(os.fspath(p)), real(p))[1])
    grown = extend_stack(first, [w.micrograph_path(2)])
    assert seen == [os.fspath(w.micrograph_path(2))]
    assert grown.shape == (3, 256, 256) and grown.keys == [sim.keys[0], sim.keys[1], sim.keys[2]]
    np.testing.assert_array_equal(np.asarray(grown.data[2]), sim.images[2])


def test_watching_writes_nothing(tmp_path, sim):
    w = SessionWriter(tmp_path / "r", sim, "relion")
    for i in range(2):
        w.step(i)
    src = LiveSource(w.folder)
    before = tree_hash(w.folder)
    for _ in range(3):
        src.poll()
    assert tree_hash(w.folder) == before and src.n_picks == int((sim.truth["micrograph"].isin(sim.keys[:2])).sum())
