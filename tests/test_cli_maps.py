"""``cryodiag fsc / guinier / sharpen / views`` end to end on simulated MRC half maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_cryodiag.cli import main
from napari_cryodiag.io.mrc import read_map, write_mrc


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    from napari_cryodiag.simulate.half_maps import simulate_half_maps

    d = tmp_path_factory.mktemp("maps")
    sim = simulate_half_maps(box=64, pixel_size_A=1.5, resolution_A=5.0, pathology="micelle")
    write_mrc(d / "h1.mrc", sim.half1, 1.5)
    write_mrc(d / "h2.mrc", sim.half2, 1.5)
    write_mrc(d / "h2_other_size.mrc", sim.half2, 1.7)
    write_mrc(d / "h2_small.mrc", sim.half2[:60, :60, :60], 1.5)
    write_mrc(d / "mask.mrc", sim.mask, 1.5)
    write_mrc(d / "bad_mask.mrc", sim.mask * 2, 1.5)
    return d, sim


def test_fsc_writes_figures_json_and_exports(maps, tmp_path, capsys):
    d, sim = maps
    out = tmp_path / "out"
    assert main(["fsc", str(d / "h1.mrc"), str(d / "h2.mrc"), "-o", str(out), "--format", "png,svg", "--write-masks"]) == 0
    for name in ("fsc.png", "fsc.svg", "guinier.png", "fsc.csv", "fsc_corrected.xml", "postprocess.star",
                 "mask_tight.mrc", "mask_loose.mrc", "mask_spherical.mrc"):
        assert (out / name).is_file(), name
    j = json.loads((out / "fsc.json").read_text())
    assert j["voxel_size_A"] == pytest.approx(1.5) and j["box"] == 64
    assert len(j["frequency_invA"]) == 33
    assert set(j["curves"]) == {"no_mask", "spherical", "loose", "tight", "phase_randomised", "corrected"}
    res = j["resolutions"]["corrected"]["0.143"]
    assert {"shell_edge_A", "interpolated_A", "nyquist_limited", "shell"} <= set(res)
    assert 3.0 < res["interpolated_A"] < 6.0
    assert j["randomisation"]["rule"] == "tight75" and j["randomisation"]["shell"] > 0
    assert {"low_A", "high_A", "slope", "intercept", "bfactor_A2", "sharpening_bfactor_A2"} <= set(j["guinier"])
    assert j["guinier"]["high_A"] == pytest.approx(res["interpolated_A"])
    assert [f["code"] for f in j["flags"]] == ["micelle_dip"]
    tight = read_map(out / "mask_tight.mrc")
    assert tight.pixel_size_A == pytest.approx(1.5) and 0 <= tight.data.min() and tight.data.max() == 1
    assert "micelle_dip" in capsys.readouterr().out


def test_fsc_options(maps, tmp_path):
    d, _ = maps
    out = tmp_path / "o"
    assert main(["fsc", str(d / "h1.mrc"), str(d / "h2.mrc"), "--mask", str(d / "mask.mrc"), "--randomise-from", "8",
                 "--wait-shells", "2", "--tight", "4,10", "--guinier-window", "12,4", "-o", str(out)]) == 0
    j = json.loads((out / "fsc.json").read_text())
    assert "user" in j["curves"] and j["randomisation"]["mask"] == "user"
    assert j["randomisation"]["shell"] == 12 and j["randomisation"]["wait_shells"] == 2
    assert j["mask_params"]["tight_dilate_A"] == 4.0
    assert j["guinier"]["low_A"] == 12.0 and j["guinier"]["high_A"] == 4.0


@pytest.mark.parametrize(
    "other, message",
    [("h2_other_size.mrc", "different voxel sizes"), ("h2_small.mrc", "different grids")],
)
def test_mismatched_half_maps_exit_2_naming_both(maps, tmp_path, capsys, other, message):
    d, _ = maps
    assert main(["fsc", str(d / "h1.mrc"), str(d / other), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "h1.mrc" in err and other in err


def test_bad_mask_exit_2(maps, tmp_path, capsys):
    d, _ = maps
    assert main(["fsc", str(d / "h1.mrc"), str(d / "h2.mrc"), "--mask", str(d / "bad_mask.mrc"), "-o", str(tmp_path)]) == 2
    assert "bad_mask.mrc" in capsys.readouterr().err


def test_guinier_from_postprocess_and_half_maps(maps, tmp_path, shared_data, capsys):
    d, _ = maps
    out = tmp_path / "g"
    assert main(["guinier", str(d / "h1.mrc"), "--half1", str(d / "h1.mrc"), "--half2", str(d / "h2.mrc"), "-o", str(out)]) == 0
    j = json.loads((out / "guinier.json").read_text())
    assert j["guinier"]["window_rule"] == "fsc143" and j["guinier"]["low_A"] == 10.0
    assert (out / "guinier.png").is_file()
    # the window from a real RELION postprocess.star: 10 Å to its corrected 0.143 crossing
    out2 = tmp_path / "g2"
    pp = shared_data / "relion-postprocess" / "postprocess.star"
    # RELION's map is at 16.4 Å: the 10 Å-to-resolution window is empty, said clearly
    assert main(["guinier", str(d / "h1.mrc"), "--fsc", str(pp), "--quantity", "amplitude", "-o", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "16.1" in err and "window is empty" in err
    assert main(["guinier", str(d / "h1.mrc"), "--fsc", str(pp), "--guinier-window", "40,16", "-o", str(out2)]) == 0
    j2 = json.loads((out2 / "guinier.json").read_text())
    assert j2["guinier"]["low_A"] == 40 and j2["guinier"]["high_A"] == 16
    assert main(["guinier", str(d / "h1.mrc"), "-o", str(tmp_path / "g3")]) == 2


def test_sharpen_and_views(maps, tmp_path):
    d, _ = maps
    out = tmp_path / "s"
    assert main(["sharpen", str(d / "h1.mrc"), str(d / "h2.mrc"), "--bfactor", "-80", "--lowpass", "6", "-o", str(out)]) == 0
    m = read_map(out / "sharpened.mrc")
    assert m.data.shape == (64, 64, 64) and m.pixel_size_A == pytest.approx(1.5)
    j = json.loads((out / "sharpen.json").read_text())
    assert j["sharpen"]["bfactor_A2"] == -80 and j["sharpen"]["lowpass_A"] == 6
    out = tmp_path / "v"
    assert main(["views", str(d / "h1.mrc"), "-o", str(out)]) == 0
    for k in ("slices", "projections", "fourier"):
        assert (out / f"views_{k}.png").is_file()
    # never overwrite an input
    assert main(["sharpen", str(d / "h1.mrc"), str(d / "h2.mrc"), "-o", str(d), "--map-name", "h1.mrc", "--overwrite"]) == 2
    assert np.isfinite(read_map(d / "h1.mrc").data).all()


def test_views_and_fsc_on_real_emdb_maps(shared_data, tmp_path, capsys):
    emd = shared_data / "emdb"
    out = tmp_path / "v3001"
    # a 25x43x73 MicroED map with unequal voxel sizes: views work (aspect from the voxel sizes)
    assert main(["views", str(emd / "EMD-3001.map"), "-o", str(out)]) == 0
    j = json.loads((out / "views.json").read_text())
    assert j["shape"] == [73, 25, 43] and len(set(np.round(j["voxel_size_A"], 4))) == 3
    assert (out / "views_fourier.png").stat().st_size > 5_000
    # ... but it is no pair of cubic half maps: a clear error
    assert main(["fsc", str(emd / "EMD-3001.map"), str(emd / "EMD-3001.map"), "-o", str(tmp_path / "f")]) == 2
    assert "cubic" in capsys.readouterr().err
    # the 20^3 EMDB map (11.4 Å, non-zero origin) against itself: FSC 1 everywhere says nothing; refused
    # (issue 11: it used to pass with a "re-extract with a larger box" Nyquist flag)
    assert main(["fsc", str(emd / "EMD-3197.map"), str(emd / "EMD-3197.map"), "--mask-lowpass", "0",
                 "--guinier-window", "100,40", "-o", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "identical" in err and "EMD-3197.map" in err


def test_fsc_of_a_relion_postprocess(shared_data, tmp_path, capsys):
    pp = shared_data / "relion-postprocess" / "postprocess.star"
    out = tmp_path / "pp"
    assert main(["fsc", "--postprocess", str(pp), "-o", str(out)]) == 0
    j = json.loads((out / "fsc.json").read_text())
    assert j["box"] == 96 and j["voxel_size_A"] == pytest.approx(7.5)
    res = j["resolutions"]["corrected"]["0.143"]
    assert res["shell_edge_A"] == pytest.approx(16.3636, abs=1e-3) and res["shell"] == 44
    assert j["randomisation"]["shell"] == 22 and j["randomisation"]["wait_shells"] == 2
    # RELION's masked curve stays far above its corrected one (randomised FSC ~0.5-0.6 beyond 32 Å)
    codes = [f["code"] for f in j["flags"]]
    assert "mask_too_tight" in codes and "randomised_high" not in codes  # 0.083 at 16.36 Å < 0.1
    assert (out / "fsc.png").is_file()
    assert "16.36 Å" in capsys.readouterr().out
    assert main(["fsc", "-o", str(tmp_path / "none")]) == 2


def test_fsc_process_imports_no_table_or_gui_packages(maps, tmp_path):
    """`cryodiag fsc` reads two maps and writes figures and text: a fresh process of it loads
    neither pandas, starfile, dask nor any GUI package (each costs a whole 256³ run a noticeable
    share of its time; the CLI imports them where a command needs them)."""
    import subprocess
    import sys

    d, _ = maps
    h1, h2 = d / "h1.mrc", d / "h2.mrc"
    code = (
        "import sys\n"
        "from napari_cryodiag.cli import main\n"
        f"rc = main(['fsc', {str(h1)!r}, {str(h2)!r}, '-o', {str(tmp_path / 'out')!r}])\n"
        "heavy = {'pandas', 'starfile', 'dask', 'napari', 'magicgui', 'qtpy', 'vispy'}\n"
        "print(rc, ','.join(sorted({m.split('.')[0] for m in sys.modules} & heavy)) or '-')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rc, loaded = out.stdout.strip().splitlines()[-1].split(" ")
    assert rc == "0"
    assert loaded == "-", f"cryodiag fsc imported {loaded}"
    assert (tmp_path / "out" / "fsc.json").is_file()
