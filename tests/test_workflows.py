"""The workflow layer: each diagnostic end to end from files or arrays, its options dataclass (the
widgets' forms), and its exports through an output plan."""

from __future__ import annotations

import dataclasses
import json
import typing

import numpy as np
import pytest

from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io.mrc import write_mrc
from napari_cryodiag.io.outputs import OutputPlan
from napari_cryodiag.workflows import (
    ClassesOptions,
    MapValidationOptions,
    NoiseOptions,
    OrientationsOptions,
    SharpenOptions,
)

OPTIONS = (MapValidationOptions, SharpenOptions, ClassesOptions, OrientationsOptions, NoiseOptions)


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_options_carry_ranges_labels_and_units(cls):
    """Every field has a default inside its range and a label; lengths in Å say so in the label."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        meta = next((m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, dict)), None)
        assert meta is not None and meta.get("label"), f"{cls.__name__}.{f.name} has no label"
        if "min" in meta:
            assert meta["min"] <= f.default <= meta["max"], (f.name, f.default, meta)
        if f.name.endswith("_A"):
            assert "(Å" in meta["label"], (f.name, meta["label"])
        if f.name.endswith("_A2"):
            assert "Å²" in meta["label"], (f.name, meta["label"])
        base = typing.get_args(hints[f.name])[0]
        if typing.get_origin(base) is typing.Literal:
            assert f.default in typing.get_args(base)


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_options_build_a_magicgui_form(cls):
    """The widgets build their forms with magicgui from these dataclasses: values round-trip."""
    magicgui = pytest.importorskip("magicgui")
    form = magicgui.magicgui(cls)
    got = form()
    assert got == cls()
    name = dataclasses.fields(cls)[0].name
    assert getattr(form, name).value == getattr(cls(), name)


def test_map_options_to_the_session():
    o = MapValidationOptions(randomise_from="explicit", randomise_from_A=7.5, guinier_window="explicit",
                             guinier_low_A=12.0, guinier_high_A=5.0, tight_dilate_A=4.0)
    kw = o.session_kwargs()
    assert kw["randomise_from"] == 7.5 and kw["guinier_window_rule"] == (12.0, 5.0)
    assert kw["mask_params"].tight_dilate_A == 4.0
    assert MapValidationOptions().session_kwargs()["randomise_from"] == "tight75"
    assert SharpenOptions().params().bfactor_A2 is None
    p = SharpenOptions(use_fitted_bfactor=False, bfactor_A2=-30.0, lowpass_A=0.0).params()
    assert p.bfactor_A2 == -30.0 and p.lowpass_A is None


@pytest.fixture(scope="module")
def half_maps(tmp_path_factory):
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    d = tmp_path_factory.mktemp("wf_maps")
    sim = simulate_half_maps(box=48, pixel_size_A=1.5, resolution_A=5.0)
    write_mrc(d / "h1.mrc", sim.half1, 1.5)
    write_mrc(d / "h2.mrc", sim.half2, 1.5)
    write_mrc(d / "mask.mrc", sim.mask, 1.5)
    return d, sim


def test_map_validation_from_files_equals_from_arrays(half_maps, tmp_path):
    from napari_cryodiag.workflows.maps import MapValidation, load_half_maps, plan_exports

    d, sim = half_maps
    files = MapValidation(load_half_maps(d / "h1.mrc", d / "h2.mrc", d / "mask.mrc"))
    arrays = MapValidation(load_half_maps(sim.half1, sim.half2, sim.mask, voxel_sizes_A=(1.5, 1.5),
                                          names=("a", "b"), mask_name="m"))
    steps = []
    s1 = files.compute(progress=lambda *st: steps.append(st))
    s2 = arrays.compute()
    assert steps[-1][0] == steps[-1][1] and s1.fsc.corrected_mask == "user"
    np.testing.assert_allclose(s1.fsc.curves["corrected"], s2.fsc.curves["corrected"], atol=1e-6)
    assert files.inputs.files == [str(d / "h1.mrc"), str(d / "h2.mrc"), str(d / "mask.mrc")]
    # what-if: a new B only re-filters; the Guinier curve of the sharpened map follows it
    files.sharpen(SharpenOptions(use_fitted_bfactor=False, bfactor_A2=-40.0))
    assert s1.recomputed[-1] == "sharpen" and s1.sharpen_used.bfactor_A2 == -40.0
    # ln mean |F|^2 rises by -B s^2 / 2 = 20 s^2 where the FSC weight is ~1 (20 to 8 Å)
    x = s1.guinier_curve.x_invA2
    low = (x > 1 / 20**2) & (x < 1 / 8**2)
    np.testing.assert_allclose(files.sharpened_curve.y[low] - s1.guinier_curve.y[low], 20 * x[low], rtol=0.06)
    # the same mask values keep the cached curves
    files.use_mask(sim.mask.copy(), "m2")
    files.compute()
    assert "fsc" not in s1.recomputed

    plan = OutputPlan(tmp_path / "out", formats="png").protect(files.inputs.files)
    plan_exports(plan, views=("FSC", "slices"), masks=True)
    written = files.export(plan.check(), views=("FSC", "slices"), masks=True)
    names = sorted(p.name for p in written)
    assert names == sorted(["fsc.png", "slices.png", "fsc.csv", "fsc_corrected.xml", "postprocess.star",
                            "mask_spherical.mrc", "mask_loose.mrc", "mask_tight.mrc", "fsc.json"])
    js = json.loads((tmp_path / "out" / "fsc.json").read_text())
    assert js["inputs"]["mask"] == "m2" and js["sharpen"]["bfactor_A2"] == -40.0
    # a second export into the same folder is refused without overwrite, before anything is written
    again = OutputPlan(tmp_path / "out", formats="png")
    plan_exports(again)
    with pytest.raises(CryodiagInputError, match="exists"):
        again.check()


def test_load_half_maps_refuses_naming_the_inputs(half_maps):
    from napari_cryodiag.workflows.maps import load_half_maps

    d, sim = half_maps
    with pytest.raises(CryodiagInputError, match="constant") as err:
        load_half_maps(sim.half1, np.zeros_like(sim.half2), voxel_sizes_A=(1.5, 1.5), names=("a", "flat"))
    assert "flat" in str(err.value)
    with pytest.raises(CryodiagInputError, match="voxel size unknown") as err:
        load_half_maps(sim.half1, sim.half2, names=("left", "right"))
    assert "left" in str(err.value)
    with pytest.raises(CryodiagInputError, match="mask values") as err:
        load_half_maps(d / "h1.mrc", d / "h2.mrc", sim.mask * 3, mask_name="hot mask")
    assert "hot mask" in str(err.value)


def test_classes_orientations_noise_from_simulated_files(tmp_path):
    """Each particle-set workflow from the files of the sample dataset; every figure and the JSON
    written through a plan, and the numbers agree with the compute layer on the same arrays."""
    from napari_cryodiag.compute.particles.noise_model import estimate_noise_model as compute_noise
    from napari_cryodiag.simulate.particles import simulate_particles, write_particle_set
    from napari_cryodiag.workflows import noise, orientations

    sub = simulate_particles(n=60, box=32, noise="white", seed=3)
    paths = write_particle_set(sub, tmp_path / "set")
    write_mrc(tmp_path / "map.mrc", sub.volume, sub.pixel_size_A)
    nm = noise.iter_noise_model(paths["star"], tmp_path / "map.mrc", NoiseOptions(chunk_size=16))
    from napari_cryodiag.compute.progress import run_steps

    got = run_steps(nm)
    ref = compute_noise(sub.table, sub.volume, images=sub.images)
    np.testing.assert_allclose(got.noise_variance, ref.noise_variance, rtol=1e-5)
    plan = OutputPlan(tmp_path / "noise", formats="png").protect(paths.values())
    noise.plan_outputs(plan)
    written = noise.export(plan.check(), got)
    assert sorted(p.name for p in written) == ["noise.json", "noise_advanced.png", "noise_basic.png"]

    res = orientations.orientation_diagnostics(paths["star"], OrientationsOptions(radius_px=8))
    assert res.n_particles == 60 and res.radius_px == 8.0 and res.box_px == 32  # box from the stack header
    plan = OutputPlan(tmp_path / "orient", formats="png")
    orientations.plan_outputs(plan)
    names = {p.name for p in orientations.export(res, plan.check())}
    assert {"viewing_directions.png", "scf_cfar.png", "orientations.json"} <= names


def test_class_selection_refuses_inputs(tmp_path):
    from napari_cryodiag.io.star import write_star
    from napari_cryodiag.simulate.classes import simulate_classes
    from napari_cryodiag.workflows.classes import class_diagnostics, write_selection

    sim = simulate_classes(seed=1)
    star = tmp_path / "particles.star"
    write_star(star, sim.table)
    d = class_diagnostics(star, ClassesOptions(compute_frc=False))
    assert d.frc_reason == "no particle images: FRC not requested"
    _, n = write_selection(d.table, [1, 2], tmp_path / "sel.star")
    assert n == int(d.table["class"].isin([1, 2]).sum()) > 0
    other = tmp_path / "other.star"
    other.write_text("keep me")
    with pytest.raises(CryodiagInputError, match="input"):
        write_selection(d.table, [1], other, overwrite=True, protect=[other])
    assert other.read_text() == "keep me"


def test_output_plan_writes_only_what_it_planned(tmp_path):
    src = tmp_path / "in.star"
    src.write_text("input")
    plan = OutputPlan(tmp_path / "o", formats="png,svg").protect(src)
    js = plan.file("a.json")
    assert [p.name for p in plan.figure("f")] == ["f.png", "f.svg"]
    plan.check()
    plan.write_json("a.json", {"v": np.float64("nan"), "n": np.int64(3)})
    assert json.loads(js.read_text()) == {"v": None, "n": 3}
    with pytest.raises(RuntimeError, match="not in the output plan"):
        plan.write_json("b.json", {})
    plan.protect(tmp_path / "other.star")  # inputs found later: checked again, own outputs not refused
    with pytest.raises(CryodiagInputError, match="input"):
        plan.protect(js)  # an output that turns out to be an input
    assert OutputPlan(tmp_path / "o2", overwrite=True).file(src, in_folder=False) == src
    with pytest.raises(CryodiagInputError, match="format"):
        OutputPlan(tmp_path, formats="png,nope")
