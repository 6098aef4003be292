"""``io.open_path``: a bounded look recognises what a path is, then one parse; typed results."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag import io as cio
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io import opened, sniff, star_text
from napari_cryodiag.io.mrc import write_mrc
from napari_cryodiag.io.star import write_star


@pytest.mark.parametrize("rel, kind, n", [
    ("relion31/relion31.6opticsgroups.star", "picks", 139),
    ("relion31/relion5.star", "picks", None),
    ("relion13-tutorial/autopick", "picks", 9470),
    ("relion13-tutorial/all_micrographs_ctf.star", "ctf", 15),
    ("relion13-tutorial/Class2D/manual_it025_data.star", "picks", 1099),  # particles with coordinates
    ("relion-postprocess/postprocess.star", "postprocess", None),
    ("relion13-tutorial/Class2D/manual_it025_model.star", "model", None),
    ("cryosparc/cryosparc_P12_J24_001_particles.cs", "particles", 2019),
    ("cryosparc/4k_dataset.cs", "picks", 0),
    ("cryolo", "picks", 249),
    ("cryolo/TcdA1-0018_frames_sum.cbox", "picks", 120),
    ("emdb/EMD-3197.map", "map", None),
    ("empiar-10076/empiar_10076_7.mrc", "stack", None),
])
def test_real_files_open_as_their_kind(shared_data, rel, kind, n):
    res = cio.open_path(shared_data / rel)
    assert res.kind == kind and type(res).kind == kind
    if n is not None:
        assert len(res.table) == n
    if kind == "postprocess":
        assert len(res.fsc) == 49 and res.general["rlnFinalResolution"] == pytest.approx(16.363636)
    if kind == "model":
        assert res.model.n_classes == 10
    if kind == "map":
        assert res.map.data.shape == (20, 20, 20) and res.map.voxel_size_A == pytest.approx((11.4,) * 3)
    if kind == "stack":
        assert res.stack.data.shape[0] == 7


def test_micrographs_folder_glob_and_list(tmp_path):
    for i in range(3):
        write_mrc(tmp_path / f"m{i}.mrc", np.full((16, 24), i, np.float32), 1.5)
    for src in (tmp_path, str(tmp_path / "*.mrc"), [tmp_path / "m0.mrc", tmp_path / "m2.mrc"]):
        res = cio.open_path(src)
        assert isinstance(res, opened.Micrographs) and res.stack.pixel_size_A == 1.5
    assert len(cio.open_path([tmp_path / "m0.mrc", tmp_path / "m2.mrc"]).stack) == 2
    one = cio.open_path(tmp_path / "m1.mrc")
    assert isinstance(one, opened.Micrograph) and one.image.data.shape == (16, 24)


def test_unknown_and_missing_paths(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    for p, match in ((tmp_path / "a.png", "suffix '.png'"), (tmp_path / "none.star", "not found"),
                     (tmp_path, "no micrographs"), ([tmp_path / "a.png", tmp_path / "x.star"], "all MRC")):
        with pytest.raises(CryodiagInputError, match=match):
            cio.open_path(p)


class _Counting:
    """Counts the bytes read through every file opened by the io modules."""

    def __init__(self):
        self.bytes = {}
        self.real = builtins.open

    def open(self, file, mode="r", *args, **kwargs):
        fh = self.real(file, mode, *args, **kwargs)
        if "b" not in mode or "r" not in mode:
            return fh
        key = str(file)
        counter = self

        class Proxy:
            def __getattr__(self, name):
                return getattr(fh, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

            def read(self, *a):
                out = fh.read(*a)
                counter.bytes[key] = counter.bytes.get(key, 0) + len(out)
                return out

            def readline(self, *a):
                out = fh.readline(*a)
                counter.bytes[key] = counter.bytes.get(key, 0) + len(out)
                return out

        return Proxy()


@pytest.mark.parametrize("rows", [40, 30_000])
def test_opening_a_star_file_reads_it_once(tmp_path, monkeypatch, rows):
    """The bounded look (a few KB) and one parse: bytes read ~ the file's size, one parse."""
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"micrograph_name": [f"MotionCorr/job002/mic_{i % 50:03d}.mrc" for i in range(rows)],
                      "x_px": rng.uniform(0, 4096, rows).round(6), "y_px": rng.uniform(0, 4096, rows).round(6),
                      "rlnAutopickFigureOfMerit": rng.normal(size=rows).round(6),
                      "pixel_size_A": 1.1, "voltage_kV": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1})
    p = write_star(tmp_path / "picks.star", t)
    size = p.stat().st_size
    parses = []
    real_read_all = star_text._read_all
    monkeypatch.setattr(star_text, "_read_all", lambda *a, **k: parses.append(1) or real_read_all(*a, **k))
    counter = _Counting()
    for mod in (star_text, sniff):
        monkeypatch.setattr(mod, "open", counter.open, raising=False)
    res = cio.open_path(p)
    assert isinstance(res, opened.PickTable) and len(res.table) == rows
    assert parses == [1]
    read = counter.bytes[str(p)]
    assert size <= read <= size + sniff.SNIFF_BYTES + 8192, (read, size)
    np.testing.assert_array_equal(res.table["x_px"].to_numpy(), t["x_px"].to_numpy())


def test_postprocess_and_model_are_parsed_once(shared_data, monkeypatch):
    parses = []
    real_read_all = star_text._read_all
    monkeypatch.setattr(star_text, "_read_all", lambda *a, **k: parses.append(1) or real_read_all(*a, **k))
    assert cio.open_path(shared_data / "relion-postprocess" / "postprocess.star").kind == "postprocess"
    assert cio.open_path(shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_model.star").kind == "model"
    assert parses == [1, 1]


def test_reader_notes_travel_with_the_result(tmp_path):
    p = tmp_path / "p.star"
    p.write_text("data_\nloop_\n_rlnMicrographName\n_rlnCoordinateX\n_rlnCoordinateY\na.mrc 1 2\nb.mrc nan 2\n")
    res = cio.open_path(p)
    assert len(res.table) == 1 and any("no finite coordinates" in n for n in res.notes)
