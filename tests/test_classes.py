"""Class posteriors, ESS, histograms and per-class statistics: known answers and real files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_cryodiag.compute.particles.classes import (
    best_from_posteriors,
    class_base,
    class_statistics,
    ess_edges,
    ess_from_posteriors,
    histogram_counts,
    posterior_columns,
    posterior_histograms,
    probability_edges,
    sort_summary,
    summarise_classes,
)
from napari_cryodiag.compute.particles.class_diagnostics import select_classes
from napari_cryodiag.workflows.classes import class_diagnostics, read_cs_full_posteriors, write_selection
from napari_cryodiag.errors import CryodiagInputError


# --------------------------------------------------------------------------- ESS
@pytest.mark.parametrize("k", [2, 5, 50])
def test_ess_one_hot_is_one_uniform_is_k(k):
    one_hot = np.eye(k)[np.arange(3 * k) % k]
    np.testing.assert_allclose(ess_from_posteriors(one_hot), 1.0)
    uniform = np.full((4, k), 1.0 / k)
    np.testing.assert_allclose(ess_from_posteriors(uniform), k)


def test_ess_known_values_and_normalisation():
    p = np.array([[0.5, 0.5, 0.0, 0.0], [0.7, 0.1, 0.1, 0.1], [2.0, 2.0, 0.0, 0.0], [0, 0, 0, 0]])
    e = ess_from_posteriors(p)
    assert e[0] == pytest.approx(2.0)
    assert e[1] == pytest.approx(1 / (0.49 + 0.03))
    assert e[2] == pytest.approx(2.0)  # rows are normalised first
    assert np.isnan(e[3])
    idx, best = best_from_posteriors(p[:3])
    assert idx.tolist() == [0, 0, 0] and best.tolist() == pytest.approx([0.5, 0.7, 0.5])


def test_full_posteriors_from_cs_multi(tmp_path):
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(4), size=30).astype(np.float32)
    dt = [("uid", "<u8"), ("alignments3D_multi/class_posterior", "<f4", (4,)),
          ("alignments3D_multi/class", "<u4", (4,)), ("alignments3D/class", "<u4")]
    arr = np.zeros(30, dtype=dt)
    arr["uid"] = np.arange(30)
    arr["alignments3D_multi/class_posterior"] = post
    arr["alignments3D_multi/class"] = np.arange(4)
    arr["alignments3D/class"] = post.argmax(1)
    f = tmp_path / "multi.cs"
    with open(f, "wb") as fh:
        np.save(fh, arr)
    got = read_cs_full_posteriors(f)
    assert got is not None
    np.testing.assert_allclose(got[0], post)
    table = pd.DataFrame({"class": post.argmax(1)})
    cols = posterior_columns(table, got[0])
    assert cols.source == "full posteriors"
    np.testing.assert_allclose(cols.ess, 1.0 / (post.astype(float) / post.sum(1, keepdims=True)) .__pow__(2).sum(1),
                               rtol=1e-6)
    np.testing.assert_allclose(cols.best_prob, post.max(1) / post.sum(1), rtol=1e-6)


# --------------------------------------------------------------------------- histograms
def test_histogram_counts_equal_numpy_including_edges_nan_outside():
    rng = np.random.default_rng(1)
    v = rng.random(200_003).astype(np.float32)
    v[:500] = np.round(v[:500] * 50) / 50  # values exactly on edges
    v[500:510] = np.nan
    v[510:520] = 1.5
    v[520:523] = -0.1
    e = probability_edges(50)
    counts, n_out, n_nan = histogram_counts(v, e, chunk=4096)
    ref, _ = np.histogram(v[np.isfinite(v)], e)
    np.testing.assert_array_equal(counts, ref)
    assert (n_out, n_nan) == (13, 10)
    assert counts.sum() + n_out + n_nan == v.size


def test_ess_edges():
    e = ess_edges(np.array([1, 1, 2, 7]), integer=True)
    np.testing.assert_allclose(e, np.arange(8) + 0.5)
    e = ess_edges(np.array([1.0, 1.2, 3.9]), n_classes=5, bins=8)
    assert e[0] == 1.0 and e[-1] == 4.0 and len(e) == 9  # data max rounded up
    e = ess_edges(np.array([1.0, 1.2, 4.97]), n_classes=5, bins=8)
    assert e[-1] == 5.0
    e = ess_edges(np.array([1.0, 1.0]), n_classes=300)
    assert e[-1] == 2.0  # all certain: a readable [1, 2] axis


# --------------------------------------------------------------------------- per class
def test_class_statistics_vs_pandas():
    rng = np.random.default_rng(2)
    cls = rng.integers(3, 40, 50_000)
    ess = rng.gamma(2.0, 1.0, 50_000) + 1
    ess[::97] = np.nan
    best = rng.random(50_000)
    s = class_statistics(cls, ess, best)
    df = pd.DataFrame({"c": cls, "e": ess, "p": best})
    ref = df.groupby("c").agg(count=("e", "size"), med=("e", "median"), mp=("p", "mean"))
    np.testing.assert_array_equal(s["class"], ref.index)
    np.testing.assert_array_equal(s["count"], ref["count"])
    np.testing.assert_allclose(s["median_ess"], ref["med"])
    np.testing.assert_allclose(s["mean_best_prob"], ref["mp"])
    assert s["fraction"].sum() == pytest.approx(1.0)


def test_class_statistics_lists_empty_classes_and_odd_labels():
    s = class_statistics(np.array([3, 3, 5]), np.array([1.0, 2.0, 4.0]), labels=[1, 2, 3, 4, 5])
    assert s["class"].tolist() == [1, 2, 3, 4, 5]
    assert s["count"].tolist() == [0, 0, 2, 0, 1]
    assert s["median_ess"].iloc[2] == 1.5 and np.isnan(s["median_ess"].iloc[0])
    # labels that are not small integers go through unique()
    s = class_statistics(np.array([10**9, 5, 5]), np.array([1.0, 2.0, 3.0]))
    assert s["class"].tolist() == [5, 10**9] and s["median_ess"].tolist() == [2.5, 1.0]


def test_sort_summary_orders():
    s = pd.DataFrame({"class": [1, 2, 3, 4], "count": [5, 50, 20, 20],
                      "frc_resolution_A": [12.0, np.nan, 8.0, 30.0], "median_ess": [1.5, 1.0, 3.0, np.nan]})
    assert sort_summary(s, "count")["class"].tolist() == [2, 3, 4, 1]
    assert sort_summary(s, "resolution")["class"].tolist() == [3, 1, 4, 2]
    assert sort_summary(s, "median_ess")["class"].tolist() == [2, 1, 3, 4]
    assert sort_summary(s, "class")["class"].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        sort_summary(s, "colour")


def test_class_base_rules():
    t = pd.DataFrame({"class": [1, 2, 3]})
    assert class_base(t, 3) == 1
    assert class_base(t, 4) == 0
    t.attrs["format"] = "star"
    assert class_base(t, 4) == 1
    t.attrs["format"] = "cs"
    assert class_base(t, 3) == 0
    t.attrs["class_base"] = 1
    assert class_base(t) == 1


# --------------------------------------------------------------------------- real files
@pytest.fixture()
def relion_class2d(shared_data):
    return shared_data / "relion13-tutorial" / "Class2D"


def test_relion_class2d_counts_match_model_distribution(relion_class2d):
    import starfile

    raw = starfile.read(relion_class2d / "manual_it025_data.star")
    raw = raw if isinstance(raw, pd.DataFrame) else next(iter(raw.values()))
    d = class_diagnostics(relion_class2d / "manual_it025_data.star",
                          model=relion_class2d / "manual_it025_model.star")
    s = d.summary
    assert len(s) == 10 and d.averages.shape == (10, 100, 100)
    assert d.averages_pixel_size_A == pytest.approx(3.54)
    # counts: exactly the file's class numbers, and within one particle of distribution x N
    np.testing.assert_array_equal(s["count"], np.bincount(raw["rlnClassNumber"], minlength=11)[1:])
    assert s["count"].sum() == 1099
    assert np.all(np.abs(s["count"] - s["model_expected_count"]) < 1.0)
    # histograms: RELION analogues, labelled as such, counts match an independent computation
    assert d.posterior.source == "relion"
    assert "RELION" in d.posterior.best_label and "analogue" in d.posterior.ess_label
    hb = d.histograms["best_prob"]
    np.testing.assert_array_equal(hb.counts, np.histogram(raw["rlnMaxValueProbDistribution"], np.linspace(0, 1, 51))[0])
    he = d.histograms["ess"]
    ns = raw["rlnNrOfSignificantSamples"].to_numpy()
    np.testing.assert_array_equal(he.counts, np.bincount(ns)[1:])
    np.testing.assert_allclose(he.edges, np.arange(ns.max() + 1) + 0.5)
    # mean best probability over all particles agrees with the model's rlnAveragePmax
    assert raw["rlnMaxValueProbDistribution"].mean() == pytest.approx(d.model.general["rlnAveragePmax"], abs=1e-3)
    ref_med = raw.groupby("rlnClassNumber")["rlnNrOfSignificantSamples"].median()
    np.testing.assert_allclose(s["median_ess"], ref_med.to_numpy())
    # no particle images here: the FRC column says why
    assert s["frc_resolution_A"].isna().all()
    assert all(n.startswith("no particle images:") and "Particles/Micrographs" in n for n in s["frc_note"])


def test_cryosparc_2d_export(shared_data):
    path = shared_data / "cryosparc" / "cryosparc_J2_particles_exported.cs"
    raw = np.load(path)
    d = class_diagnostics(path)
    assert d.posterior.source == "cryosparc"
    assert "RELION" not in d.posterior.best_label
    s = d.summary
    cls = raw["alignments2D/class"].astype(int)
    assert s["class"].tolist() == sorted(set(cls.tolist()))
    np.testing.assert_array_equal(s["count"], [int((cls == c).sum()) for c in s["class"]])
    for c, med in zip(s["class"], s["median_ess"]):
        assert med == pytest.approx(float(np.median(raw["alignments2D/class_ess"][cls == c])))
    hb = d.histograms["best_prob"]
    np.testing.assert_array_equal(hb.counts, np.histogram(raw["alignments2D/class_posterior"], np.linspace(0, 1, 51))[0])
    he = d.histograms["ess"]
    assert he.counts.sum() == 22 and he.edges[0] == 1.0
    assert he.edges[-1] >= raw["alignments2D/class_ess"].max()
    np.testing.assert_array_equal(he.counts, np.histogram(raw["alignments2D/class_ess"], he.edges)[0])
    assert s["frc_note"].str.startswith("no particle images:").all()
    assert "J1/imported" in s["frc_note"].iloc[0]


def test_write_selection_star_and_cs(shared_data, relion_class2d, tmp_path):
    from napari_cryodiag.io.picks import read_table

    t = read_table(relion_class2d / "manual_it025_data.star")
    out, n = write_selection(t, [2, 4], tmp_path / "sel.star")
    assert n == int(t["class"].isin([2, 4]).sum()) == 264 + 291
    back = read_table(out)
    assert len(back) == n and set(back["class"]) == {2, 4}
    np.testing.assert_allclose(back["psi_deg"], t.loc[t["class"].isin([2, 4]), "psi_deg"], atol=1e-4)
    with pytest.raises(CryodiagInputError, match="exists"):
        write_selection(t, [2], out)
    with pytest.raises(CryodiagInputError, match="input"):
        write_selection(t, [2], relion_class2d / "manual_it025_data.star", overwrite=True)

    src = shared_data / "cryosparc" / "cryosparc_J2_particles_exported.cs"
    tc = read_table(src)
    out, n = write_selection(tc, [1, 4], tmp_path / "sel.cs")
    arr = np.load(out)
    raw = np.load(src)
    keep = np.isin(raw["alignments2D/class"], [1, 4])
    assert n == int(keep.sum()) == len(arr)
    np.testing.assert_array_equal(arr["uid"], raw["uid"][keep])  # all other fields kept
    with pytest.raises(CryodiagInputError, match="no particles"):
        write_selection(tc, [99], tmp_path / "none.cs")
    assert select_classes(tc, [0]).attrs["source"] == tc.attrs["source"]


def test_summarise_classes_needs_class_column():
    with pytest.raises(CryodiagInputError, match="no class column"):
        summarise_classes(pd.DataFrame({"x": [1]}))
    h = posterior_histograms(posterior_columns(pd.DataFrame({"class": [0, 1]})))
    assert h == {}


def test_group_medians_fast_and_general_paths_agree_with_numpy():
    from napari_cryodiag.compute.particles.classes import _class_codes, _group_medians

    rng = np.random.default_rng(7)
    cls = rng.integers(0, 30, 5000)
    codes, labels = _class_codes(cls)
    counts = np.bincount(codes.astype(np.intp), minlength=labels.size)
    ref = lambda v: np.array([np.nanmedian(v[cls == c]) if np.isfinite(v[cls == c]).any() else np.nan
                              for c in labels])
    f32 = (1 + rng.gamma(1.0, 0.6, 5000)).astype(np.float32)
    f32[::13] = np.nan
    f32[cls == 5] = np.nan  # a class with no values
    ints = rng.integers(1, 8, 5000).astype(np.float64)  # RELION-like sample counts: exact in float32
    f64 = rng.normal(2.0, 1.0, 5000)  # negative and not float32-exact: general path
    for v in (f32, ints, f64):
        with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            expected = ref(v.astype(np.float64))
        np.testing.assert_allclose(_group_medians(codes, counts, v), expected, rtol=1e-12, equal_nan=True)


def test_full_posteriors_through_the_table_reader(tmp_path):
    """A heterogeneous-refinement-like .cs: ESS from the (N, K) posteriors, labelled as such."""
    rng = np.random.default_rng(3)
    k, n = 5, 400
    post = rng.dirichlet(np.full(k, 0.3), size=n).astype(np.float32)
    dt = [("uid", "<u8"), ("alignments3D_multi/class_posterior", "<f4", (k,)),
          ("alignments3D_multi/class", "<u4", (k,)), ("alignments3D/class", "<u4")]
    arr = np.zeros(n, dtype=dt)
    arr["uid"] = np.arange(n)
    arr["alignments3D_multi/class_posterior"] = post
    arr["alignments3D_multi/class"] = np.arange(k)
    arr["alignments3D/class"] = post.argmax(1)
    f = tmp_path / "hetero.cs"
    with open(f, "wb") as fh:
        np.save(fh, arr)
    d = class_diagnostics(f)
    assert d.posterior.source == "full posteriors"
    p = post.astype(np.float64) / post.sum(1, keepdims=True)
    ess = 1 / (p**2).sum(1)
    np.testing.assert_allclose(d.posterior.ess, ess, rtol=1e-5)
    s = d.summary
    for c, med in zip(s["class"], s["median_ess"]):
        assert med == pytest.approx(np.median(ess[post.argmax(1) == c]), rel=1e-5)
    assert d.histograms["ess"].edges[-1] <= k
    # without a class column, the class is the argmax of the posteriors
    from napari_cryodiag.io.picks import read_table

    t = read_table(f).drop(columns=["class"])
    d2 = class_diagnostics(t)
    np.testing.assert_array_equal(d2.summary["count"], s["count"])
    assert any("argmax" in n for n in d2.notes)


# ----------------------------------------------------------------------------- values that are no classes
@pytest.mark.parametrize(
    "value, message",
    [(2.5, "whole numbers; the class column holds 2.5 (row 3)"), (-3, "start at 1 (RELION) or 0 (cryoSPARC)"),
     ("x", "holds 'x' (row 3), not a class number")],
)
def test_class_numbers_that_no_classification_writes_are_refused(value, message):
    t = pd.DataFrame({"class": [1, 2, value, 1], "class_posterior": [0.9, 0.8, 0.7, 0.95]}, dtype=object)
    t.attrs["source"] = "run_it025_data.star"
    with pytest.raises(CryodiagInputError, match="run_it025_data.star") as err:
        summarise_classes(t)
    assert message in str(err.value)


def test_particles_without_a_class_are_left_out_and_counted():
    t = pd.DataFrame({"class": [1.0, 2.0, np.nan, 1.0], "class_posterior": [0.9, 0.8, 0.7, 0.95]})
    s = summarise_classes(t)
    assert s["count"].tolist() == [2, 1]
    assert s.attrs["notes"] == ["1 of 4 particles have no class number; they are left out"]


@pytest.mark.parametrize(
    "column, values, message",
    [("class_posterior", [0.9, 7.5, 0.7], "must lie in [0, 1], the table holds 7.5 (row 2)"),
     ("class_posterior", [-0.2, 0.5, -1.0], "the table holds -0.2 (row 1; 2 rows in all)"),
     ("class_ess", [1.0, 0.3, 2.0], "values start at 1, the table holds 0.3 (row 2)"),
     ("class_ess", [1.0, 9.0, 2.0], "at most 3, the table holds 9 (row 2)"),
     ("rlnMaxValueProbDistribution", [0.5, 1.5, 0.2], "RELION rlnMaxValueProbDistribution")],
)
def test_posteriors_out_of_range_are_refused(column, values, message):
    t = pd.DataFrame({"class": [0, 1, 2], column: values})
    t.attrs["source"] = "J12_particles.cs"
    with pytest.raises(CryodiagInputError, match="J12_particles.cs") as err:
        posterior_columns(t)
    assert message in str(err.value)
    # in range: read as it is
    ok = pd.DataFrame({"class": [0, 1, 2], column: np.clip(values, 1 if "ess" in column else 0, 1)})
    assert posterior_columns(ok).source in ("cryosparc", "relion")
