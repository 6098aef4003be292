"""cryodiag info: per-file kind, counts, pixel size, conventions; --json."""

from __future__ import annotations

import json

import pytest

from napari_cryodiag.cli import main


def test_info_json(shared_data, tmp_path, capsys):
    out = tmp_path / "info.json"
    files = [shared_data / "relion13-tutorial" / "autopick", shared_data / "relion31" / "relion31.6opticsgroups.star",
             shared_data / "emdb" / "EMD-3001.map", shared_data / "cryosparc" / "4k_dataset.cs",
             shared_data / "relion-postprocess" / "postprocess.star"]
    rc = main(["info", *map(str, files), "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "picks_per_micrograph: 553, 769" in text
    info = json.loads(out.read_text())["files"]
    assert info[0]["n_rows"] == 9470 and info[0]["n_micrographs"] == 15 and info[0]["kind"] == "picks"
    assert info[1]["optics_groups"] == 6 and info[1]["pixel_size_A"] == [1.035, 1.24, 1.25]
    assert info[2]["kind"] == "3D map" and info[2]["shape_zyx"] == [73, 25, 43]
    assert info[2]["voxel_size_A_zyx"] == pytest.approx([33.03 / 72, 4.71 / 12, 17.93 / 40], rel=1e-5)
    assert info[3]["n_rows"] == 0 and "center_x_frac * nx" in info[3]["convention"]
    assert info[4]["kind"] == "RELION postprocess" and info[4]["n_fsc_shells"] == 49
