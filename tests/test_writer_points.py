"""npe2 writers: the kept rows of the full pick table to STAR / .cs; images to MRC."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag import _reader, _writer
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io import mrc
from napari_cryodiag.io import picks as pk


def _layer(path):
    [(data, kw, kind)] = _reader.get_reader(str(path))(str(path))
    return data, kw


def test_star_writer_writes_kept_rows_of_full_table(shared_data, tmp_path):
    src = shared_data / "relion31" / "relion31.6opticsgroups.star"
    data, kw = _layer(src)
    table = kw["metadata"]["cryodiag"]["table"]
    kept = table["rlnAutopickFigureOfMerit"].to_numpy() > np.median(table["rlnAutopickFigureOfMerit"])
    kw["metadata"]["cryodiag"]["kept"] = kept
    out, _side = _writer.write_points_star(str(tmp_path / "kept.star"), data, kw)
    back = pk.read_table(out)
    assert len(back) == kept.sum() and len(back) > len(data)  # the table, not the shown points
    np.testing.assert_allclose(back["x_px"], table.loc[kept, "x_px"], rtol=1e-7)
    np.testing.assert_allclose(back["pixel_size_A"], table.loc[kept, "pixel_size_A"])
    assert len(back.attrs["optics"]) == 6
    with pytest.raises(CryodiagInputError, match="input"):
        _writer.write_points_star(str(src), data, kw)


def test_cs_writer_from_cs_source_keeps_fields(shared_data, tmp_path):
    src = shared_data / "cryosparc" / "cryosparc_J2_particles_exported.cs"
    table = pk.read_table(src)
    meta = {"metadata": {"cryodiag": {"kind": "picks", "table": table, "kept": table["class"].to_numpy() == 1}}}
    out, _side = _writer.write_points_cs(str(tmp_path / "class1.cs"), np.zeros((0, 3)), meta)
    a, b = np.load(src), np.load(out)
    assert b.dtype == a.dtype and len(b) == 7
    np.testing.assert_array_equal(b, a[a["alignments2D/class"] == 1])


def test_cs_writer_from_star_picks_uses_micrograph_shape(shared_data, tmp_path):
    data, kw = _layer(shared_data / "relion13-tutorial" / "autopick")
    kw["metadata"]["cryodiag"]["micrograph_shape"] = (4096, 4096)
    out, _side = _writer.write_points_cs(str(tmp_path / "picks.cs"), data, kw)
    back = pk.read_table(out)
    table = kw["metadata"]["cryodiag"]["table"]
    assert len(back) == 9470
    np.testing.assert_allclose(back["x_px"], table["x_px"], rtol=1e-6)
    assert back.groupby("micrograph").size().to_dict() == table.groupby("micrograph").size().to_dict()


def test_plain_points_layer(tmp_path):
    data = np.array([[0, 10.0, 20.0], [1, 30.0, 40.0]])
    meta = {"name": "manual", "features": {"score": [0.5, 0.7]}, "scale": (1, 1.5, 1.5), "metadata": {}}
    out, _side = _writer.write_points_star(str(tmp_path / "m.star"), data, meta)
    back = pk.read_table(out)
    assert back["x_px"].tolist() == [20.0, 40.0] and back["y_px"].tolist() == [10.0, 30.0]
    assert back["score"].tolist() == [0.5, 0.7] and back["pixel_size_A"].tolist() == [1.5, 1.5]


def test_image_writer(tmp_path, shared_data):
    data, kw = _layer(shared_data / "emdb" / "EMD-3197.map")
    [out] = _writer.write_image_mrc(str(tmp_path / "copy.mrc"), data, kw)
    m = mrc.read_map(out)
    np.testing.assert_array_equal(m.data, data)
    assert m.voxel_size_A == pytest.approx((11.4,) * 3) and m.origin_A == pytest.approx((0, 0, -22.8))
    with pytest.raises(CryodiagInputError, match="input"):
        _writer.write_image_mrc(str(shared_data / "emdb" / "EMD-3197.map"), data, kw)


def test_write_star_keeps_a_mean_defocus_as_a_non_astigmatic_ctf(tmp_path):
    import pandas as pd

    from napari_cryodiag.io.picks import read_table
    from napari_cryodiag.io.star import write_star

    table = pd.DataFrame({"micrograph_name": ["a.mrc", "b.mrc"], "x_px": [10.0, 20.0], "y_px": [5.0, 6.0],
                          "defocus_A": [12000.0, 25000.0]})
    out = write_star(tmp_path / "picks.star", table)
    back = read_table(out)
    assert back["defocus_u_A"].tolist() == [12000.0, 25000.0] == back["defocus_v_A"].tolist()
    assert back["defocus_A"].tolist() == [12000.0, 25000.0]
