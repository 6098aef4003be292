"""``cryodiag picks --watch DIR`` on a session written over time (issue 13).

A :class:`~napari_cryodiag.simulate.session.SessionWriter` writes micrographs, CTF rows and picks
(some half-written) between the watch's looks: the pause between two looks (``time.sleep`` of
the watch) is where the session writes its next files, so the test does not depend on timing.
Checked: every run's JSON counts only complete micrographs' picks, each once; the final export
holds every simulated pick exactly once with its micrograph's defocus; ``--max-runs`` and Ctrl-C
stop the watch; an existing output needs ``--overwrite``; nothing is written into the session.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from napari_cryodiag.cli import main
from napari_cryodiag.io.picks import read_table
from napari_cryodiag.simulate.session import SessionWriter


@pytest.fixture(scope="module")
def sim():
    from napari_cryodiag.simulate.micrographs import simulate_micrographs

    return simulate_micrographs(n_micrographs=3, shape=(256, 256), seed=5, particles_per_micrograph=10)


def _session_between_looks(w: SessionWriter, out, totals):
    """What the session writes during each pause of the watch (and the JSON the run before left)."""
    script = iter([
        lambda: w.step(0),
        lambda: (w.write_micrograph(1), w.write_ctf(1), w.write_picks(1, partial=True)),  # picks half written
        lambda: None,
        lambda: (w.finish(), w.write_micrograph(2), w.write_picks(2)),  # picks before their CTF: they wait
        # cryoSPARC's picker passes its exposures' CTF through: it writes its outputs again once there
        lambda: (w.write_ctf(2), w.layout == "cryosparc" and w.write_picks(2)),
    ])

    def pause(seconds):
        assert seconds == 0.01
        if (out / "picks.json").exists():
            totals.append(json.loads((out / "picks.json").read_text())["counts"]["total"])
        next(script, lambda: None)()

    return pause


def _keys(t):
    return sorted(zip(t["micrograph"].astype(str), np.round(t["x_px"].to_numpy(float), 2), np.round(t["y_px"].to_numpy(float), 2)))


@pytest.mark.parametrize("layout", ["relion", "cryosparc"])
def test_watch_exports_every_pick_once(tmp_path, sim, layout, monkeypatch, capsys):
    import napari_cryodiag.cli.picks_watch as picks_watch

    w = SessionWriter(tmp_path / "session", sim, layout)
    out, kept = tmp_path / "out", tmp_path / "kept.star"
    totals: list[int] = []
    monkeypatch.setattr(picks_watch.time, "sleep", _session_between_looks(w, out, totals))
    before = sorted(p.relative_to(w.folder) for p in w.folder.rglob("*"))
    argv = ["picks", "--watch", str(w.folder), "--interval", "0.01", "--max-runs", "9", "--no-suggest",
            "--out", str(out), "--export-star", str(kept)]
    assert main(argv) == 0
    truth = sim.truth
    per_mic = truth.groupby("micrograph").size()
    assert per_mic.to_dict() == {"sim_0001": 16, "sim_0002": 13, "sim_0003": 16}
    # every run counted whole micrographs' picks, each once; the session grew between runs
    complete = {sum(c) for r in range(4) for c in itertools.combinations(per_mic.to_list(), r)}
    assert totals and set(totals) <= complete and totals == sorted(totals) and len(set(totals)) >= 2
    info = json.loads((out / "picks.json").read_text())
    assert info["counts"]["total"] == info["counts"]["kept"] == 45
    assert info["watch"]["n_micrographs"] == 3 and info["watch"]["waiting_for_ctf"] == 0
    assert info["watch"]["looks"] <= 9
    got = read_table(kept)
    assert len(got) == 45 and _keys(got) == _keys(truth)  # every pick exactly once
    if "defocus_A" in got.columns:
        want = truth.groupby("micrograph")["defocus_A"].first()
        np.testing.assert_allclose(got["defocus_A"], got["micrograph"].astype(str).map(want), rtol=1e-5)
    err = capsys.readouterr().err
    assert "waiting for their CTF" in err and "wrote 45 kept picks" in err
    after = {p.relative_to(w.folder) for p in w.folder.rglob("*")}
    assert not [p for p in after - set(before) if "cryodiag" in p.name or p.name.startswith("picks")]


def test_watch_stops_on_ctrl_c_and_keeps_outputs_safe(tmp_path, sim, monkeypatch, capsys):
    import napari_cryodiag.cli.picks_watch as picks_watch

    w = SessionWriter(tmp_path / "session", sim, "folder")
    w.step(0)
    out = tmp_path / "out"
    looks = []

    def pause(seconds):
        looks.append(seconds)
        if len(looks) == 1:
            w.step(1)
        elif len(looks) == 4:  # text files are taken once their size holds: a few looks later
            raise KeyboardInterrupt

    monkeypatch.setattr(picks_watch.time, "sleep", pause)
    argv = ["picks", "--watch", str(w.folder), "--interval", "0.01", "--no-suggest", "--out", str(out)]
    assert main(argv) == 0  # Ctrl-C after the last complete run
    err = capsys.readouterr().err
    assert "stopped (Ctrl-C)" in err
    counts = json.loads((out / "picks.json").read_text())["counts"]
    assert counts["total"] == 16 + 13  # both micrographs, whole
    # the outputs are there now: a new watch replaces them only with --overwrite
    first = (out / "picks.json").read_bytes()
    assert main(argv + ["--max-runs", "1"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and (out / "picks.json").read_bytes() == first
    assert main(argv + ["--max-runs", "3", "--overwrite"]) == 0
    assert json.loads((out / "picks.json").read_text())["counts"]["total"] == 29
    capsys.readouterr()
    # nothing into the watched folder, and no other input at the same time
    assert main(["picks", "--watch", str(w.folder), "--out", str(w.folder / "out"), "--max-runs", "1"]) == 2
    msg = capsys.readouterr().err.strip()
    assert "inside the watched folder" in msg and "\n" not in msg and not (w.folder / "out").exists()
    assert main(["picks", "--watch", str(w.folder), str(w.picks_path(0)), "--out", str(tmp_path / "o2")]) == 2
    assert "not with pick files" in capsys.readouterr().err
