"""RELION _model.star reader on the real RELION 1.3 tutorial file and on hand-written files."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io.relion_model import read_model_star, resolve_reference_stack


@pytest.fixture()
def model_path(shared_data):
    return shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_model.star"


def _raw_loop_rows(path, block):
    """Independent parse: the numeric rows of one loop block, read line by line."""
    rows, inside = [], False
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("data_"):
            inside = s == f"data_{block}"
            continue
        if inside and s and not s.startswith(("_", "loop_", "#")):
            rows.append(s.split())
    return rows


def test_real_model_general_and_classes(model_path):
    m = read_model_star(model_path)
    assert m.pixel_size_A == pytest.approx(3.54)
    assert m.image_size_px == 100
    assert m.n_classes == 10 == m.general["rlnNrClasses"]
    raw = _raw_loop_rows(model_path, "model_classes")
    assert len(raw) == 10
    np.testing.assert_allclose(m.classes["class_distribution"], [float(r[1]) for r in raw])
    assert m.classes["class"].tolist() == list(range(1, 11))
    assert m.classes["image_index"].tolist() == list(range(10))
    assert set(m.classes["image_path"]) == {"Class2D/manual_it025_classes.mrcs"}
    # translations accuracy converted from pixels (RELION 1.3) to Å; 999 flags kept
    acc_px = np.array([float(r[3]) for r in raw])
    acc_A = m.classes["accuracy_translations_A"].to_numpy()
    ok = acc_px < 999
    np.testing.assert_allclose(acc_A[ok], acc_px[ok] * 3.54)
    assert np.all(acc_A[~ok] == 999)
    # the distribution sums to one
    assert m.classes["class_distribution"].sum() == pytest.approx(1.0, abs=1e-4)


def test_real_model_noise_spectra(model_path):
    m = read_model_star(model_path)
    assert m.group_kind == "group"
    assert len(m.groups) == 3
    assert list(m.groups)[0] == "Micrographs/Falcon_2012_06_12-14_33_35_0.mrc"
    g1 = m.groups["Micrographs/Falcon_2012_06_12-14_33_35_0.mrc"]
    raw = _raw_loop_rows(model_path, "model_group_1")
    assert len(g1) == len(raw) == 51  # shells 0..50 of a 100-px box
    np.testing.assert_allclose(g1["sigma2_noise"], [float(r[2]) for r in raw])
    assert g1["shell"].tolist() == list(range(51))
    # frequency of shell i is i / (box * apix)
    np.testing.assert_allclose(g1["frequency_invA"], np.arange(51) / (100 * 3.54), atol=1e-6)
    assert np.isinf(g1["resolution_A"].iloc[0])
    assert g1["resolution_A"].iloc[50] == pytest.approx(2 * 3.54, rel=1e-4)
    assert m.group_table["rlnGroupNrParticles"].sum() == 1099
    # per-class spectra
    assert sorted(m.class_spectra) == list(range(1, 11))
    assert "rlnSsnrMap" in m.class_spectra[1]


def test_resolve_reference_stack(model_path):
    m = read_model_star(model_path)
    assert resolve_reference_stack(m) == model_path.parent / "manual_it025_classes.mrcs"


def test_relion31_optics_group_noise(tmp_path):
    p = tmp_path / "run_it010_model.star"
    p.write_text(
        "data_model_general\n\n_rlnPixelSize 1.5\n_rlnOriginalImageSize 4\n_rlnNrClasses 2\n\n"
        "data_model_classes\n\nloop_\n_rlnReferenceImage #1\n_rlnClassDistribution #2\n"
        "_rlnAccuracyRotations #3\n_rlnAccuracyTranslationsAngst #4\n"
        "000001@Class2D/job003/run_it010_classes.mrcs 0.25 2.0 1.1\n"
        "000002@Class2D/job003/run_it010_classes.mrcs 0.75 3.0 1.3\n\n"
        "data_model_optics_group_1\n\nloop_\n_rlnSpectralIndex #1\n_rlnResolution #2\n_rlnSigma2Noise #3\n"
        "0 0.0 0.5\n1 0.166667 0.25\n2 0.333333 0.125\n"
    )
    m = read_model_star(p)
    assert m.group_kind == "optics_group"
    assert list(m.groups) == ["optics_group_1"]
    np.testing.assert_allclose(m.groups["optics_group_1"]["sigma2_noise"], [0.5, 0.25, 0.125])
    np.testing.assert_allclose(m.classes["accuracy_translations_A"], [1.1, 1.3])
    assert m.pixel_size_A == 1.5
    assert resolve_reference_stack(m) is None  # the stack is not there


def test_bad_inputs(tmp_path, shared_data):
    with pytest.raises(CryodiagInputError, match="not found"):
        read_model_star(tmp_path / "missing_model.star")
    data_star = shared_data / "relion13-tutorial" / "Class2D" / "manual_it025_data.star"
    with pytest.raises(CryodiagInputError, match="not a RELION model file") as err:
        read_model_star(data_star)
    assert "manual_it025_data.star" in str(err.value)
