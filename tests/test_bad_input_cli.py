"""Bad input on every ``cryodiag`` subcommand: exit status 2 and one line on stderr
``cryodiag <cmd>: error: <file>: <problem>`` (no traceback), or success with a warning when the
input is usable; never a change to an input file.

The bad files are made in a temporary folder from a small simulated sample dataset.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

from badinput import hashes, run_cli_case
from napari_cryodiag.cli import main
from napari_cryodiag.errors import CryodiagInputError

# --------------------------------------------------------------------------------------------
# the bad files


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    from napari_cryodiag.simulate.dataset import write_sample_dataset

    root = tmp_path_factory.mktemp("bad_input")
    data = root / "data"
    write_sample_dataset(data, seed=1, n_micrographs=2, shape=(256, 256), n_refined_particles=60,
                         particles_per_micrograph=10)
    b = root / "bad"
    b.mkdir()
    f: dict[str, Path] = {"data": data, "root": root}
    f["half1"] = data / "half_maps" / "half1.mrc"
    f["half2"] = data / "half_maps" / "half2.mrc"
    f["mask"] = data / "half_maps" / "mask.mrc"
    f["density"] = data / "density.mrc"
    f["picks_star"] = data / "picks.star"
    f["picks_cs"] = data / "picks.cs"
    f["micrographs"] = data / "micrographs"
    f["classes_star"] = data / "classes" / "particles.star"
    f["refined_star"] = data / "refinement" / "particles.star"
    f["refined_map"] = data / "refinement" / "particles_map.mrc"

    f["missing"] = b / "missing.mrc"
    f["missing_star"] = b / "missing.star"
    for name in ("empty.mrc", "empty.star", "empty.cs"):
        (b / name).write_bytes(b"")
        f[name.replace(".", "_")] = b / name
    raw = f["half1"].read_bytes()
    f["truncated"] = b / "truncated.mrc"
    f["truncated"].write_bytes(raw[: 1024 + (len(raw) - 1024) // 2])
    f["header_only"] = b / "header_only.mrc"
    f["header_only"].write_bytes(raw[:500])
    f["not_mrc"] = b / "not_mrc.mrc"
    f["not_mrc"].write_text("this is a text file, not a map\n" * 40)
    with mrcfile.open(f["half1"], permissive=True) as m:
        vol = np.asarray(m.data, dtype=np.float32)
        apix = float(m.voxel_size.x)
    f["map2d"] = b / "map2d.mrc"
    with mrcfile.new(f["map2d"]) as m:
        m.set_data(vol[vol.shape[0] // 2].copy())
        m.voxel_size = apix
    f["half2_box"] = b / "half2_box.mrc"
    with mrcfile.new(f["half2_box"]) as m:
        m.set_data(vol[8:-8, 8:-8, 8:-8].copy())
        m.voxel_size = apix
    f["half2_apix"] = b / "half2_apix.mrc"
    with mrcfile.new(f["half2_apix"]) as m:
        m.set_data(vol)
        m.voxel_size = apix * 1.5
    with mrcfile.open(f["mask"], permissive=True) as m:
        mask = np.asarray(m.data, dtype=np.float32)
    f["mask_grid"] = b / "mask_grid.mrc"
    with mrcfile.new(f["mask_grid"]) as m:
        m.set_data(mask[8:-8, 8:-8, 8:-8].copy())
        m.voxel_size = apix
    f["mask_range"] = b / "mask_range.mrc"
    with mrcfile.new(f["mask_range"]) as m:
        m.set_data((mask * 3.0 - 1.0).astype(np.float32))
        m.voxel_size = apix

    def drop(src: Path, name: str, columns: list[str]) -> Path:
        tables = starfile.read(src, always_dict=True)
        key = "particles" if "particles" in tables else list(tables)[-1]
        tables[key] = tables[key].drop(columns=[c for c in columns if c in tables[key]])
        dest = b / name
        starfile.write(tables, dest)
        return dest

    f["picks_nocoord"] = drop(f["picks_star"], "picks_nocoord.star", ["rlnCoordinateX", "rlnCoordinateY"])
    f["particles_noangles"] = drop(f["refined_star"], "particles_noangles.star",
                                   ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"])
    f["classes_noclass"] = drop(f["classes_star"], "classes_noclass.star", ["rlnClassNumber"])
    # picks whose micrographs are missing from --micrographs (half renamed, the rest kept)
    tables = starfile.read(f["picks_star"], always_dict=True)
    p = tables["particles"].copy()
    first = p["rlnMicrographName"].iloc[0]
    p.loc[p["rlnMicrographName"] == first, "rlnMicrographName"] = "micrographs/elsewhere_0001.mrc"
    tables["particles"] = p
    f["picks_unmatched"] = b / "picks_unmatched.star"
    starfile.write(tables, f["picks_unmatched"])
    p = tables["particles"].copy()
    p["rlnMicrographName"] = "micrographs/nowhere_" + p["rlnMicrographName"].str[-8:]
    tables["particles"] = p
    f["picks_nomatch"] = b / "picks_nomatch.star"
    starfile.write(tables, f["picks_nomatch"])
    # NaN scores in some rows; all-NaN scores
    tables = starfile.read(f["picks_star"], always_dict=True)
    p = tables["particles"].copy()
    p.loc[p.index[::3], "cryodiag_ncc"] = np.nan
    tables["particles"] = p
    f["picks_somenan"] = b / "picks_somenan.star"
    starfile.write(tables, f["picks_somenan"])
    p["cryodiag_ncc"] = np.nan
    p["cryodiag_power"] = np.nan
    tables["particles"] = p
    f["picks_allnan"] = b / "picks_allnan.star"
    starfile.write(tables, f["picks_allnan"])
    # a .cs of a schema nobody knows
    arr = np.zeros(5, dtype=[("uid", "<u8"), ("foo/bar", "<f4"), ("baz", "<i4")])
    f["unknown_cs"] = b / "unknown.cs"
    with open(f["unknown_cs"], "wb") as fh:
        np.save(fh, arr)
    f["text_cs"] = b / "text.cs"
    f["text_cs"].write_text("not a numpy file\n")
    # a STAR that is not STAR
    f["garbage_star"] = b / "garbage.star"
    f["garbage_star"].write_bytes(b"\x00\x01\x02garbage\xff\xfe" * 50)
    # a half map with NaN voxels; thresholds that are not JSON; a CTF table without defocus
    f["half2_nan"] = b / "half2_nan.mrc"
    with mrcfile.new(f["half2_nan"]) as m:
        v = vol.copy()
        v[0, 0, :5] = np.nan
        m.set_data(v)
        m.voxel_size = apix
    f["thresholds_bad"] = b / "thresholds_bad.json"
    f["thresholds_bad"].write_text("{not json")
    f["thresholds_missing"] = b / "thresholds_missing.json"
    f["ctf_nodefocus"] = drop(f["picks_star"], "ctf_nodefocus.star", ["rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"])
    f["refined_stack"] = data / "refinement" / "particles.mrcs"
    tables = starfile.read(f["refined_star"], always_dict=True)
    p = tables["particles"].copy()
    p.loc[p.index[::4], "rlnAngleTilt"] = np.nan
    tables["particles"] = p
    f["particles_somenan"] = b / "particles_somenan.star"
    starfile.write(tables, f["particles_somenan"])
    tables = starfile.read(f["classes_star"], always_dict=True)
    p = tables["particles"].copy()
    p["rlnClassNumber"] = p["rlnClassNumber"].astype(float)
    p.loc[p.index[::5], "rlnClassNumber"] = np.nan
    tables["particles"] = p
    f["classes_somenan"] = b / "classes_somenan.star"
    starfile.write(tables, f["classes_somenan"])
    p["rlnClassNumber"] = np.nan
    tables["particles"] = p
    f["classes_allnan"] = b / "classes_allnan.star"
    starfile.write(tables, f["classes_allnan"])
    f["zeros"] = b / "zeros.mrc"
    with mrcfile.new(f["zeros"]) as m:
        m.set_data(np.zeros_like(vol))
        m.voxel_size = apix
    # a STAR cut in the middle of a row; a word where a coordinate should be
    text = f["picks_star"].read_text()
    cut = text.rstrip("\n").rsplit(" ", 4)[0]  # the last row loses its last values
    f["picks_truncated"] = b / "picks_truncated.star"
    f["picks_truncated"].write_text(cut + "\n")
    lines = text.splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.startswith("micrographs/"))
    parts = lines[row].split()
    parts[1] = "ten"
    lines[row] = " ".join(parts)
    f["picks_word"] = b / "picks_word.star"
    f["picks_word"].write_text("\n".join(lines) + "\n")
    # an output "folder" that is a file
    f["out_file"] = b / "out_is_a_file"
    f["out_file"].write_text("I am a file\n")
    f["bad"] = b
    return f


def run_case(bad, capsys, tmp_path, argv_template, expect, names):
    """Run ``cryodiag`` with ``{key}`` placeholders filled; check status, message and inputs."""
    argv = [a.format(out=tmp_path / "out", **bad) for a in argv_template]
    inputs = {bad["data"]: hashes(bad["data"]), bad["bad"]: hashes(bad["bad"])}
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    for folder, before in inputs.items():
        assert hashes(folder) == before, f"an input file changed under {folder}"
    if expect == "error":
        assert code == 2, (code, err)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith(f"cryodiag {argv[0]}: error: "), err
        assert "Traceback" not in err
        for key in names:
            assert str(bad[key]) in lines[0] or Path(bad[key]).name in lines[0], (key, err)
    else:
        assert code == 0, err
        if expect == "warn":
            assert "warning" in err.lower(), err
            for key in names:
                assert Path(bad[key]).name in err, (key, err)
    return code, err


# --------------------------------------------------------------------------------------------
# one parametrised test per command family

INFO_CASES = {
    "missing": (["info", "{missing}"], "error", ["missing"]),
    "empty mrc": (["info", "{empty_mrc}"], "error", ["empty_mrc"]),
    "truncated mrc": (["info", "{truncated}"], "error", ["truncated"]),
    "header-only mrc": (["info", "{header_only}"], "error", ["header_only"]),
    "text named .mrc": (["info", "{not_mrc}"], "error", ["not_mrc"]),
    "empty star": (["info", "{empty_star}"], "error", ["empty_star"]),
    "garbage star": (["info", "{garbage_star}"], "error", ["garbage_star"]),
    "unknown cs": (["info", "{unknown_cs}"], "ok", []),
    "truncated star": (["info", "{picks_truncated}"], "error", ["picks_truncated"]),
    "text named .cs": (["info", "{text_cs}"], "error", ["text_cs"]),
    "json over an input": (["info", "{picks_star}", "--json", "{picks_star}", "--overwrite"], "error",
                           ["picks_star"]),
}


@pytest.mark.parametrize("case", list(INFO_CASES), ids=list(INFO_CASES))
def test_info_bad_input(bad, capsys, tmp_path, case):
    run_case(bad, capsys, tmp_path, *INFO_CASES[case])


PICKS_CASES = {
    "missing": (["picks", "{missing_star}", "-o", "{out}"], "error", ["missing_star"]),
    "empty star": (["picks", "{empty_star}", "-o", "{out}"], "error", ["empty_star"]),
    "empty cs": (["picks", "{empty_cs}", "-o", "{out}"], "error", ["empty_cs"]),
    "truncated star": (["picks", "{picks_truncated}", "-o", "{out}"], "error", ["picks_truncated"]),
    "word for a coordinate": (["picks", "{picks_word}", "-o", "{out}"], "error", ["picks_word"]),
    "no coordinates": (["picks", "{picks_nocoord}", "-o", "{out}"], "error", ["picks_nocoord"]),
    "unknown cs": (["picks", "{unknown_cs}", "-o", "{out}"], "error", ["unknown_cs"]),
    "some micrographs missing": (["picks", "{picks_unmatched}", "--micrographs", "{micrographs}",
                                  "--score", "--diameter-A", "60", "-o", "{out}"], "warn",
                                 ["picks_unmatched"]),
    "no micrograph matches": (["picks", "{picks_nomatch}", "--micrographs", "{micrographs}",
                               "--score", "--diameter-A", "60", "-o", "{out}"], "error",
                              ["picks_nomatch"]),
    "some NaN scores": (["picks", "{picks_somenan}", "-o", "{out}"], "warn", ["picks_somenan"]),
    "all NaN scores": (["picks", "{picks_allnan}", "-o", "{out}"], "error", ["picks_allnan"]),
    "export over the input": (["picks", "{picks_star}", "--export-star", "{picks_star}", "--overwrite",
                               "-o", "{out}"], "error", ["picks_star"]),
    "out folder is a file": (["picks", "{picks_star}", "-o", "{out_file}"], "error", ["out_file"]),
    "thresholds missing": (["picks", "{picks_star}", "--thresholds", "{thresholds_missing}", "-o", "{out}"],
                           "error", ["thresholds_missing"]),
    "thresholds not JSON": (["picks", "{picks_star}", "--thresholds", "{thresholds_bad}", "-o", "{out}"],
                            "error", ["thresholds_bad"]),
    "CTF table without defocus": (["picks", "{picks_star}", "--ctf", "{ctf_nodefocus}", "-o", "{out}"],
                                  "error", ["ctf_nodefocus"]),
    "templates truncated": (["picks", "{picks_star}", "--micrographs", "{micrographs}", "--score",
                             "--diameter-A", "60", "--templates", "{truncated}", "-o", "{out}"], "error",
                            ["truncated"]),
    "truncated micrograph": (["picks", "{picks_star}", "--micrographs", "{truncated}", "--score",
                              "-o", "{out}"], "error", ["truncated"]),
}


@pytest.mark.parametrize("case", list(PICKS_CASES), ids=list(PICKS_CASES))
def test_picks_bad_input(bad, capsys, tmp_path, case):
    run_case(bad, capsys, tmp_path, *PICKS_CASES[case])


MAP_CASES = {
    "fsc missing": (["fsc", "{missing}", "{half2}", "-o", "{out}"], "error", ["missing"]),
    "fsc empty": (["fsc", "{empty_mrc}", "{half2}", "-o", "{out}"], "error", ["empty_mrc"]),
    "fsc truncated": (["fsc", "{half1}", "{truncated}", "-o", "{out}"], "error", ["truncated"]),
    "fsc text named .mrc": (["fsc", "{not_mrc}", "{half2}", "-o", "{out}"], "error", ["not_mrc"]),
    "fsc 2D map": (["fsc", "{map2d}", "{half2}", "-o", "{out}"], "error", ["map2d"]),
    "fsc box mismatch": (["fsc", "{half1}", "{half2_box}", "-o", "{out}"], "error", ["half2_box"]),
    "fsc voxel mismatch": (["fsc", "{half1}", "{half2_apix}", "-o", "{out}"], "error", ["half2_apix"]),
    "fsc NaN voxels": (["fsc", "{half1}", "{half2_nan}", "-o", "{out}"], "error", ["half2_nan"]),
    "fsc empty half map": (["fsc", "{half1}", "{zeros}", "-o", "{out}"], "error", ["zeros"]),
    "fsc mask grid": (["fsc", "{half1}", "{half2}", "--mask", "{mask_grid}", "-o", "{out}"], "error",
                      ["mask_grid"]),
    "fsc mask range": (["fsc", "{half1}", "{half2}", "--mask", "{mask_range}", "-o", "{out}"], "error",
                       ["mask_range"]),
    "fsc out is a file": (["fsc", "{half1}", "{half2}", "-o", "{out_file}"], "error", ["out_file"]),
    "fsc postprocess missing": (["fsc", "--postprocess", "{missing_star}", "-o", "{out}"], "error",
                                ["missing_star"]),
    "fsc postprocess not one": (["fsc", "--postprocess", "{picks_star}", "-o", "{out}"], "error",
                                ["picks_star"]),
    "guinier 2D map": (["guinier", "{map2d}", "--guinier-window", "10,4", "-o", "{out}"], "error", ["map2d"]),
    "guinier no window source": (["guinier", "{half1}", "-o", "{out}"], "error", []),
    "guinier truncated": (["guinier", "{truncated}", "-o", "{out}"], "error", ["truncated"]),
    "guinier fsc missing": (["guinier", "{half1}", "--fsc", "{missing_star}", "-o", "{out}"], "error",
                            ["missing_star"]),
    "guinier fsc not a curve": (["guinier", "{half1}", "--fsc", "{picks_star}", "-o", "{out}"], "error",
                                ["picks_star"]),
    "guinier halves mismatch": (["guinier", "{half1}", "--half1", "{half1}", "--half2", "{half2_box}",
                                 "-o", "{out}"], "error", ["half2_box"]),
    "sharpen box mismatch": (["sharpen", "{half1}", "{half2_box}", "-o", "{out}"], "error", ["half2_box"]),
    "sharpen mask range": (["sharpen", "{half1}", "{half2}", "--mask", "{mask_range}", "-o", "{out}"],
                           "error", ["mask_range"]),
    "sharpen not mrc": (["sharpen", "{not_mrc}", "{half2}", "-o", "{out}"], "error", ["not_mrc"]),
    "views 2D": (["views", "{map2d}", "-o", "{out}"], "error", ["map2d"]),
    "views empty": (["views", "{empty_mrc}", "-o", "{out}"], "error", ["empty_mrc"]),
    "views truncated": (["views", "{truncated}", "-o", "{out}"], "error", ["truncated"]),
    "views json over the map": (["views", "{half1}", "-o", "{half1.parent}", "--json", "half1.mrc", "--overwrite"],
                                "error", ["half1"]),
    "fsc json over a half map": (["fsc", "{half1}", "{half2}", "-o", "{half1.parent}", "--json", "half2.mrc",
                                  "--overwrite", "--guinier-window", "10,4"], "error", ["half2"]),
    "views unknown figure format": (["views", "{half1}", "--format", "png,xyz", "-o", "{out}"], "error", []),
    "views out is a file": (["views", "{half1}", "-o", "{out_file}"], "error", ["out_file"]),
}


@pytest.mark.parametrize("case", list(MAP_CASES), ids=list(MAP_CASES))
def test_map_commands_bad_input(bad, capsys, tmp_path, case):
    run_case(bad, capsys, tmp_path, *MAP_CASES[case])


PARTICLE_CASES = {
    "classes missing": (["classes", "{missing_star}", "-o", "{out}"], "error", ["missing_star"]),
    "classes empty": (["classes", "{empty_star}", "-o", "{out}"], "error", ["empty_star"]),
    "classes no class column": (["classes", "{classes_noclass}", "-o", "{out}"], "error",
                                ["classes_noclass"]),
    "classes some NaN classes": (["classes", "{classes_somenan}", "--no-frc", "-o", "{out}"], "warn",
                                 ["classes_somenan"]),
    "classes all NaN classes": (["classes", "{classes_allnan}", "--no-frc", "-o", "{out}"], "error",
                                ["classes_allnan"]),
    "classes unknown cs": (["classes", "{unknown_cs}", "-o", "{out}"], "error", ["unknown_cs"]),
    "classes averages truncated": (["classes", "{classes_star}", "--averages", "{truncated}", "--no-frc",
                                    "-o", "{out}"], "error", ["truncated"]),
    "classes select over input": (["classes", "{classes_star}", "--no-frc", "--select", "1",
                                   "--select-out", "{classes_star}", "--overwrite", "-o", "{out}"],
                                  "error", ["classes_star"]),
    "classes stack missing": (["classes", "{classes_star}", "--stack", "{missing}", "-o", "{out}"], "error",
                              ["missing"]),
    "classes averages missing": (["classes", "{classes_star}", "--averages", "{missing}", "--no-frc",
                                  "-o", "{out}"], "error", ["missing"]),
    "classes out is a file": (["classes", "{classes_star}", "--no-frc", "-o", "{out_file}"], "error",
                              ["out_file"]),
    "orientations missing": (["orientations", "{missing_star}", "-o", "{out}"], "error", ["missing_star"]),
    "orientations no angles": (["orientations", "{particles_noangles}", "-o", "{out}"], "error",
                               ["particles_noangles"]),
    "orientations unknown cs": (["orientations", "{unknown_cs}", "-o", "{out}"], "error", ["unknown_cs"]),
    "orientations some NaN angles": (["orientations", "{particles_somenan}", "-o", "{out}"], "warn",
                                     ["particles_somenan"]),
    "orientations halves mismatch": (["orientations", "{refined_star}", "--half1", "{half1}", "--half2",
                                      "{half2_apix}", "-o", "{out}"], "error", ["half2_apix"]),
    "orientations half 2D": (["orientations", "{refined_star}", "--half1", "{map2d}", "--half2",
                              "{half2}", "-o", "{out}"], "error", ["map2d"]),
    "noise no angles": (["noise", "--particles", "{particles_noangles}", "--map", "{refined_map}",
                         "--stack", "{refined_stack}", "--quiet", "-o", "{out}"], "error", ["particles_noangles"]),
    "noise stack missing": (["noise", "--particles", "{refined_star}", "--map", "{refined_map}",
                             "--stack", "{missing}", "--quiet", "-o", "{out}"], "error", ["missing"]),
    "classes posteriors unknown cs": (["classes", "{classes_star}", "--no-frc", "--posteriors", "{unknown_cs}",
                                       "-o", "{out}"], "error", ["unknown_cs"]),
    "noise map 2D": (["noise", "--particles", "{refined_star}", "--map", "{map2d}", "--quiet",
                      "-o", "{out}"], "error", ["map2d"]),
    "noise map missing": (["noise", "--particles", "{refined_star}", "--map", "{missing}", "--quiet",
                           "-o", "{out}"], "error", ["missing"]),
    # another box and voxel size is usable: the map is resampled and cropped to the images
    "noise map other box": (["noise", "--particles", "{refined_star}", "--map", "{half1}", "--quiet",
                             "-o", "{out}"], "ok", []),
    "noise model not a model": (["noise", "--model", "{picks_star}", "-o", "{out}"], "error",
                                ["picks_star"]),
    "noise unknown cs": (["noise", "--particles", "{unknown_cs}", "--map", "{refined_map}", "--quiet",
                          "-o", "{out}"], "error", ["unknown_cs"]),
}


@pytest.mark.parametrize("case", list(PARTICLE_CASES), ids=list(PARTICLE_CASES))
def test_particle_commands_bad_input(bad, capsys, tmp_path, case):
    run_case(bad, capsys, tmp_path, *PARTICLE_CASES[case])


DATASET_CASES = {
    "sample into a file": (["sample", "{out_file}"], "error", ["out_file"]),
    "report data missing": (["report", "--data", "{missing_star}", "-o", "{out}"], "error",
                            ["missing_star"]),
    "report unknown figure format": (["report", "--data", "{data}", "--format", "jpg2", "-o", "{out}"], "error", []),
    "report out is a file": (["report", "--data", "{data}", "-o", "{out_file}"], "error", ["out_file"]),
}


@pytest.mark.parametrize("case", list(DATASET_CASES), ids=list(DATASET_CASES))
def test_dataset_commands_bad_input(bad, capsys, tmp_path, case):
    run_case(bad, capsys, tmp_path, *DATASET_CASES[case])


def test_sample_into_a_relative_folder(tmp_path, monkeypatch, capsys):
    """A relative OUTDIR works (it used to fail relating absolute micrograph paths to it)."""
    monkeypatch.chdir(tmp_path)
    code = main(["sample", "rel/data", "--n-micrographs", "1", "--size", "128", "--particles", "5",
                 "--no-half-maps", "--no-classes", "--no-refinement"])
    assert code == 0
    assert (tmp_path / "rel" / "data" / "picks.star").is_file()
    assert (tmp_path / "rel" / "data" / "micrographs").is_dir()


def test_picks_thresholds_from_a_previous_run(bad, tmp_path, capsys):
    """``--thresholds`` takes a previous run's picks.json (its ``thresholds``) and keeps the same picks;
    a JSON without any threshold field is refused instead of silently meaning "no thresholds"."""
    import json

    first = tmp_path / "first"
    assert main(["picks", str(bad["picks_star"]), "--x-min", "0.1", "-o", str(first)]) == 0
    info = json.loads((first / "picks.json").read_text())
    assert info["thresholds"]["x_min"] == 0.1
    second = tmp_path / "second"
    assert main(["picks", str(bad["picks_star"]), "--thresholds", str(first / "picks.json"), "-o", str(second)]) == 0
    again = json.loads((second / "picks.json").read_text())
    assert again["thresholds"]["x_min"] == 0.1
    assert again["counts"]["kept"] == info["counts"]["kept"] < info["counts"]["total"]
    unrelated = tmp_path / "unrelated.json"
    unrelated.write_text('{"hello": 1}')
    capsys.readouterr()
    assert main(["picks", str(bad["picks_star"]), "--thresholds", str(unrelated), "-o", str(tmp_path / "x")]) == 2
    assert f"{unrelated}: not a thresholds JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["picks", "{picks_star}", "--micrographs", "{micrographs}", "--score", "--diameter-A", "-5"], "--diameter-A"),
        (["picks", "{picks_star}", "--bins", "0"], "--bins"),
        (["orientations", "{refined_star}", "--n-azimuth", "0"], "--n-azimuth"),
        (["fsc", "{half1}", "{half2}", "--pixel-size", "-1"], "--pixel-size"),
        (["noise", "--particles", "{refined_star}", "--map", "{refined_map}", "--chunk-size", "0"], "--chunk-size"),
        (["classes", "{classes_star}", "--pixel-size", "nan"], "--pixel-size"),
    ],
    ids=["picks diameter", "picks bins", "orientations bins", "fsc pixel size", "noise chunk", "classes pixel size"],
)
def test_bad_numbers_exit_2_naming_the_option(bad, tmp_path, capsys, argv, option):
    """Negative or zero sizes and counts are refused by the parser (exit 2, option named), not a traceback
    from deep inside the computation or a misleading message ("voxel size unknown")."""
    argv = [a.format(**bad) for a in argv] + ["-o", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"cryodiag {argv[0]}: error: argument {option}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("const", ["NaN", "Infinity", "-Infinity"])
def test_thresholds_and_sessions_with_nan_or_infinity_are_refused(bad, tmp_path, capsys, const):
    """Python's json writes NaN/Infinity/-Infinity (JSON has no such numbers); a threshold of NaN would
    keep no pick. A thresholds JSON (alone or a picks.json's ``thresholds``) and a session holding one
    are refused in one line naming the file, before anything is written; the workflow refuses too."""
    import json

    from napari_cryodiag.workflows.picks import load_session, read_session

    value = float(const.replace("Infinity", "inf").lower())
    t = {"x_feature": "cryodiag_ncc", "y_feature": "cryodiag_power", "x_min": value, "x_max": None}
    files = {"thresholds": tmp_path / "t.json", "run": tmp_path / "picks.json", "session": tmp_path / "s.json"}
    files["thresholds"].write_text(json.dumps(t))
    files["run"].write_text(json.dumps({"command": "cryodiag picks", "thresholds": t}))
    files["session"].write_text(json.dumps({"cryodiag_session": 1, "picks": [str(bad["picks_star"])],
                                            "calibration": {}, "edits": {}, "thresholds": dict(t, x_min=0.1),
                                            "dedupe": {"distance_A": value}}))
    assert const in files["session"].read_text()  # the file really holds the constant
    for key, flag in (("thresholds", "--thresholds"), ("run", "--thresholds"), ("session", "--session")):
        out = tmp_path / f"out_{key}"
        argv = ["picks", *([] if key == "session" else [bad["picks_star"]]), flag, files[key], "-o", out]
        _, err = run_cli_case(capsys, argv, "error", [files[key]], inputs=[bad["bad"], tmp_path])
        assert f"holds {const}, which is not a number" in err, err
        assert not out.exists() or not any(out.rglob("*"))  # nothing written
    for read in (read_session, load_session):
        with pytest.raises(CryodiagInputError, match=f"s.json: session file holds {const}, which is not a number"):
            read(files["session"])
