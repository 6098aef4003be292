"""Never overwrite an input, never replace an output unasked (issue 11), on every ``cryodiag``
subcommand: each case gives a clean one-line error naming the file, before any computation, and no
input changes (:func:`badinput.run_cli_case` hashes them); ``--overwrite`` replaces outputs but
never an input; an unwritable output folder is refused up front; a writer killed with SIGKILL
leaves the destination intact and its temporary file is removed by the next write.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from badinput import fingerprint, run_cli_case
from napari_cryodiag.io.atomic import TEMP_PATTERN

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from napari_cryodiag.simulate.dataset import write_sample_dataset

    d = tmp_path_factory.mktemp("protect") / "data"
    write_sample_dataset(d, seed=2, n_micrographs=2, shape=(256, 256), n_refined_particles=60,
                         particles_per_micrograph=10)
    (d / "thresholds").mkdir()
    (d / "thresholds" / "kept.star.cryodiag.json").write_text(json.dumps({"x_feature": "ncc", "x_min": 0.1}))
    (d / "rejected_in").mkdir()
    shutil.copy(d / "picks.star", d / "rejected_in" / "kept_rejected.star")
    (d / "links").mkdir()
    os.symlink(d / "picks.star", d / "links" / "soft.star")
    os.link(d / "picks.cs", d / "links" / "hard.cs")
    (d / "fsc_table").mkdir()
    (d / "fsc_table" / "fsc.csv").write_text("frequency_invA,fsc_corrected\n0,1\n0.1,0.5\n0.2,0.1\n")
    return d


@pytest.fixture
def no_reading(monkeypatch):
    """Reading any input (MRC header, STAR, .cs) or simulating fails the test: what these cases
    refuse is refused before the work starts."""
    def fail(*args, **kwargs):
        raise AssertionError(f"an input was read before the output check: {args[:1]}")

    import napari_cryodiag.io.cs as cs
    import napari_cryodiag.io.mrc as mrc
    import napari_cryodiag.io.star as star
    import napari_cryodiag.simulate.dataset as dataset

    for mod, name in ((mrc, "read_header"), (star, "read_star"), (cs, "cs_format"), (dataset, "write_sample_dataset")):
        monkeypatch.setattr(mod, name, fail)


def _mic(data: Path) -> str:
    return sorted((data / "micrographs").glob("*.mrc"))[0].name


#: (case id, argv (with {data}, {out} and {mic}), the file the message must name)
INPUT_CASES = [
    ("picks-json-over-table-in-folder-arg", ["picks", "{data}", "-o", "{data}", "--json", "picks.star", "--overwrite"],
     "picks.star"),
    ("picks-json-over-cs-in-folder-arg", ["picks", "{data}", "-o", "{data}", "--json", "picks.cs", "--overwrite"],
     "picks.cs"),
    ("picks-json-over-table-in-glob-arg", ["picks", "{data}/*.star", "-o", "{data}", "--json", "picks.star",
                                           "--overwrite"], "picks.star"),
    ("picks-json-over-micrograph", ["picks", "{data}/picks.star", "--micrographs", "{data}/micrographs", "-o",
                                    "{data}/micrographs", "--json", "{mic}", "--overwrite"], "{mic}"),
    ("picks-json-over-micrograph-in-glob", ["picks", "{data}/picks.star", "--micrographs", "{data}/micrographs/*.mrc",
                                           "-o", "{data}/micrographs", "--json", "{mic}"], "{mic}"),
    ("picks-export-star-over-input", ["picks", "{data}/picks.star", "-o", "{out}", "--export-star",
                                      "{data}/picks.star", "--overwrite"], "picks.star"),
    ("picks-export-cs-over-input", ["picks", "{data}/picks.cs", "-o", "{out}", "--export-cs", "{data}/picks.cs",
                                    "--overwrite"], "picks.cs"),
    ("picks-side-json-over-thresholds", ["picks", "{data}/picks.star", "--thresholds",
                                         "{data}/thresholds/kept.star.cryodiag.json", "--export-star",
                                         "{data}/thresholds/kept.star", "-o", "{out}", "--overwrite"],
     "kept.star.cryodiag.json"),
    ("picks-rejected-is-an-input", ["picks", "{data}/rejected_in/kept_rejected.star", "-o", "{out}",
                                    "--export-star", "{data}/rejected_in/kept.star", "--export-rejected"],
     "kept_rejected.star"),
    ("picks-json-over-templates", ["picks", "{data}/picks.star", "--templates", "{data}/classes/class_averages.mrcs",
                                   "-o", "{data}/classes", "--json", "class_averages.mrcs", "--overwrite"],
     "class_averages.mrcs"),
    ("picks-json-over-ctf-table", ["picks", "{data}/picks.star", "--ctf", "{data}/picks.cs", "-o", "{data}",
                                   "--json", "picks.cs", "--overwrite"], "picks.cs"),
    ("picks-export-through-symlink", ["picks", "{data}/picks.star", "-o", "{out}", "--export-star",
                                      "{data}/links/soft.star", "--overwrite"], "soft.star"),
    ("picks-export-over-hard-link", ["picks", "{data}/picks.cs", "-o", "{out}", "--export-cs",
                                     "{data}/links/hard.cs", "--overwrite"], "hard.cs"),
    ("info-json-over-table-in-folder-arg", ["info", "{data}", "--json", "{data}/picks.star", "--overwrite"],
     "picks.star"),
    ("info-json-over-map", ["info", "{data}/density.mrc", "--json", "{data}/density.mrc", "--overwrite"],
     "density.mrc"),
    ("info-json-over-micrograph-in-glob", ["info", "{data}/micrographs/*.mrc", "--json", "{data}/micrographs/{mic}",
                                           "--overwrite"], "{mic}"),
    ("classes-select-out-over-particles", ["classes", "{data}/classes/particles.star", "-o", "{out}", "--select", "1",
                                           "--select-out", "{data}/classes/particles.star", "--overwrite"],
     "particles.star"),
    ("classes-select-out-over-model", ["classes", "{data}/classes/particles.star", "--model", "{data}/picks.star",
                                       "-o", "{out}", "--select", "1", "--select-out", "{data}/picks.star",
                                       "--overwrite"], "picks.star"),
    ("classes-json-over-averages", ["classes", "{data}/classes/particles.star", "--averages",
                                    "{data}/classes/class_averages.mrcs", "-o", "{data}/classes", "--json",
                                    "class_averages.mrcs", "--overwrite"], "class_averages.mrcs"),
    ("fsc-json-over-half-map", ["fsc", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o",
                                "{data}/half_maps", "--json", "half1.mrc", "--overwrite"], "half1.mrc"),
    ("fsc-json-over-mask", ["fsc", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "--mask",
                            "{data}/half_maps/mask.mrc", "-o", "{data}/half_maps", "--json", "mask.mrc",
                            "--overwrite"], "mask.mrc"),
    ("fsc-postprocess-csv-over-input", ["fsc", "--postprocess", "{data}/fsc_table/fsc.csv", "-o",
                                        "{data}/fsc_table", "--overwrite"], "fsc.csv"),
    ("sharpen-map-over-half-map", ["sharpen", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o",
                                   "{data}/half_maps", "--map-name", "half2.mrc", "--overwrite"], "half2.mrc"),
    ("guinier-json-over-map", ["guinier", "{data}/density.mrc", "--guinier-window", "10,4", "-o", "{data}",
                               "--json", "density.mrc", "--overwrite"], "density.mrc"),
    ("guinier-json-over-fsc-table", ["guinier", "{data}/density.mrc", "--fsc", "{data}/fsc_table/fsc.csv", "-o",
                                     "{data}/fsc_table", "--json", "fsc.csv", "--overwrite"], "fsc.csv"),
    ("views-json-over-map", ["views", "{data}/density.mrc", "-o", "{data}", "--json", "density.mrc", "--overwrite"],
     "density.mrc"),
    ("orientations-json-over-particles", ["orientations", "{data}/refinement/particles.star", "-o",
                                          "{data}/refinement", "--json", "particles.star", "--overwrite"],
     "particles.star"),
    ("orientations-json-over-half-map", ["orientations", "{data}/refinement/particles.star", "--half1",
                                         "{data}/half_maps/half1.mrc", "--half2", "{data}/half_maps/half2.mrc", "-o",
                                         "{data}/half_maps", "--json", "half2.mrc", "--overwrite"], "half2.mrc"),
    ("noise-json-over-map", ["noise", "--particles", "{data}/refinement/particles.star", "--map",
                             "{data}/refinement/particles_map.mrc", "-o", "{data}/refinement", "--json",
                             "particles_map.mrc", "--overwrite", "--quiet"], "particles_map.mrc"),
    ("noise-json-over-stack-named-by-table", ["noise", "--particles", "{data}/refinement/particles.star", "--map",
                                              "{data}/refinement/particles_map.mrc", "-o", "{data}/refinement",
                                              "--json", "particles.mrcs", "--overwrite", "--quiet"],
     "particles.mrcs"),
    ("noise-json-over-model", ["noise", "--model", "{data}/classes/particles.star", "-o", "{data}/classes", "--json",
                               "particles.star", "--overwrite"], "particles.star"),
]


def _fill(items, data: Path, out: Path) -> list[str]:
    return [str(a).format(data=data, out=out, mic=_mic(data)) for a in items]


@pytest.mark.parametrize("argv, name", [c[1:] for c in INPUT_CASES], ids=[c[0] for c in INPUT_CASES])
def test_an_input_is_never_overwritten(data, tmp_path, capsys, request, argv, name):
    if "named-by-table" not in request.node.callspec.id:  # that one is known after reading the table
        request.getfixturevalue("no_reading")
    out = tmp_path / "out"
    argv = _fill(argv, data, out)
    name = name.format(mic=_mic(data))
    _, err = run_cli_case(capsys, argv, "error", [name], inputs=[data])
    assert "input" in err, err
    # refused before any work: nothing was written anywhere
    assert not out.exists() or not any(out.iterdir())
    assert not (data / "thresholds" / "kept.star").exists() and not (data / "rejected_in" / "kept.star").exists()


def test_input_refusals_say_input_and_overwrite_does_not_help(data, tmp_path, capsys):
    argv = _fill(["fsc", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o", "{data}/half_maps",
                  "--json", "half1.mrc", "--overwrite"], data, tmp_path)
    _, err = run_cli_case(capsys, argv, "error", ["half1.mrc"], inputs=[data])
    assert "input" in err and "--overwrite never replaces an input" in err


# --------------------------------------------------------------------------- existing outputs

#: (case id, argv, the output that exists beforehand (in {out}))
EXISTING_CASES = [
    ("picks-json", ["picks", "{data}/picks.star", "-o", "{out}"], "picks.json"),
    ("picks-figure", ["picks", "{data}/picks.star", "-o", "{out}"], "pick_histogram.png"),
    ("picks-calibration-figure", ["picks", "{data}/picks.star", "-o", "{out}"], "calibration.png"),
    ("picks-export", ["picks", "{data}/picks.star", "-o", "{out}", "--export-star", "{out}/kept.star"], "kept.star"),
    ("picks-export-side-json", ["picks", "{data}/picks.star", "-o", "{out}", "--export-star", "{out}/kept.star"],
     "kept.star.cryodiag.json"),
    ("picks-export-rejected", ["picks", "{data}/picks.star", "-o", "{out}", "--export-cs", "{out}/kept.cs",
                               "--export-rejected"], "kept_rejected.cs"),
    ("fsc-csv", ["fsc", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o", "{out}"], "fsc.csv"),
    ("fsc-masks", ["fsc", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o", "{out}",
                   "--write-masks"], "mask_tight.mrc"),
    ("sharpen-map", ["sharpen", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o", "{out}"],
     "sharpened.mrc"),
    ("guinier-json", ["guinier", "{data}/density.mrc", "--guinier-window", "10,4", "-o", "{out}"], "guinier.json"),
    ("views-figure", ["views", "{data}/density.mrc", "-o", "{out}"], "views_slices.png"),
    ("classes-grid", ["classes", "{data}/classes/particles.star", "-o", "{out}"], "class_grid.png"),
    ("classes-selection", ["classes", "{data}/classes/particles.star", "-o", "{out}", "--select", "1",
                           "--select-out", "{out}/sel.star"], "sel.star"),
    ("orientations-json", ["orientations", "{data}/refinement/particles.star", "-o", "{out}"], "orientations.json"),
    ("noise-figure", ["noise", "--particles", "{data}/refinement/particles.star", "--map",
                      "{data}/refinement/particles_map.mrc", "-o", "{out}", "--quiet"], "noise_basic.png"),
    ("info-json", ["info", "{data}/picks.star", "--json", "{out}/info.json"], "info.json"),
    ("report-json", ["report", "--data", "{data}", "-o", "{out}"], "report.json"),
    ("report-index", ["report", "--data", "{data}", "-o", "{out}"], "index.html"),
    ("report-step-output", ["report", "--data", "{data}", "-o", "{out}"], "maps/fsc.json"),
]


@pytest.mark.parametrize("argv, existing", [c[1:] for c in EXISTING_CASES], ids=[c[0] for c in EXISTING_CASES])
def test_an_existing_output_is_kept_without_overwrite(data, tmp_path, capsys, no_reading, argv, existing):
    out = tmp_path / "out"
    target = out / existing
    target.parent.mkdir(parents=True)
    target.write_text("an earlier result\n")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    run_cli_case(capsys, _fill(argv, data, out), "error", [Path(existing).name], inputs=[data])
    assert target.read_text() == "an earlier result\n"
    # checked before any computation: nothing else was written
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_rerun_into_the_same_folder_needs_overwrite(data, tmp_path, capsys):
    """``picks`` twice into one ``-o DIR``: refused the second time, replaced with ``--overwrite``
    (the export too), and an input is still refused then."""
    out = tmp_path / "out"
    argv = _fill(["picks", "{data}/picks.star", "-o", "{out}", "--export-star", "{out}/kept.star"], data, out)
    run_cli_case(capsys, argv, "ok", inputs=[data])
    first = {p.name: fingerprint(p) for p in out.iterdir()}
    assert {"picks.json", "pick_histogram.png", "kept.star", "kept.star.cryodiag.json"} <= set(first)
    run_cli_case(capsys, argv, "error", ["pick_histogram.png"], inputs=[data, out])
    run_cli_case(capsys, argv + ["--overwrite"], "ok", inputs=[data])
    again = json.loads((out / "picks.json").read_text())
    assert again["counts"]["kept"] == json.loads((out / "kept.star.cryodiag.json").read_text())["n_rows"]


def test_output_named_twice_or_a_folder(data, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _fill(["fsc", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o", "{out}", "--json",
                  "fsc.csv"], data, out)
    _, err = run_cli_case(capsys, argv, "error", ["fsc.csv"], inputs=[data])
    assert "named twice" in err
    (out / "picks.json").mkdir(parents=True)
    _, err = run_cli_case(capsys, _fill(["picks", "{data}/picks.star", "-o", "{out}"], data, out), "error",
                          ["picks.json"], inputs=[data])
    assert "folder" in err


# --------------------------------------------------------------------------- unwritable folders


@pytest.fixture
def readonly(tmp_path):
    """An existing folder nobody can write into: mode 555, and for root (who ignores modes) the
    immutable attribute (``chattr +i``); skipped where neither holds."""
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    immutable = False
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(ro)], capture_output=True).returncode != 0:
            os.chmod(ro, 0o755)
            pytest.skip("running as root without chattr +i: cannot make a folder unwritable")
        immutable = True
    try:
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")
        yield ro
    finally:
        if immutable:
            subprocess.run([shutil.which("chattr"), "-i", str(ro)], check=True)
        os.chmod(ro, 0o755)


READONLY_CASES = [
    ("fsc", ["fsc", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o", "{ro}"]),
    ("sharpen", ["sharpen", "{data}/half_maps/half1.mrc", "{data}/half_maps/half2.mrc", "-o", "{ro}"]),
    ("guinier", ["guinier", "{data}/density.mrc", "--guinier-window", "10,4", "-o", "{ro}"]),
    ("views", ["views", "{data}/density.mrc", "-o", "{ro}"]),
    ("picks", ["picks", "{data}/picks.star", "-o", "{ro}"]),
    ("picks-export", ["picks", "{data}/picks.star", "-o", "{out}", "--export-star", "{ro}/kept.star"]),
    ("classes", ["classes", "{data}/classes/particles.star", "-o", "{ro}"]),
    ("orientations", ["orientations", "{data}/refinement/particles.star", "-o", "{ro}"]),
    ("noise", ["noise", "--particles", "{data}/refinement/particles.star", "--map",
               "{data}/refinement/particles_map.mrc", "-o", "{ro}", "--quiet"]),
    ("info", ["info", "{data}/picks.star", "--json", "{ro}/info.json"]),
    ("sample", ["sample", "{ro}/sample", "--n-micrographs", "1", "--size", "128"]),
    ("report", ["report", "-o", "{ro}"]),
    ("output-folder-below-it", ["views", "{data}/density.mrc", "-o", "{ro}/deeper/out"]),
]


@pytest.mark.parametrize("argv", [c[1] for c in READONLY_CASES], ids=[c[0] for c in READONLY_CASES])
def test_an_unwritable_output_folder_is_refused_up_front(data, tmp_path, capsys, readonly, no_reading, argv):
    argv = [a.format(data=data, ro=readonly, out=tmp_path / "out") for a in argv]
    _, err = run_cli_case(capsys, argv, "error", [str(readonly)], inputs=[data])
    assert "permission denied" in err or "not writable" in err or "not permitted" in err, err
    assert list(readonly.iterdir()) == []


# --------------------------------------------------------------------------- killed writers


CHILD = r"""
import os, sys
import numpy as np, pandas as pd
from pathlib import Path
from napari_cryodiag.io import atomic
from napari_cryodiag.io.star import write_star

dest, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "rename":  # a 1e6-pick STAR export, stopped after the temporary file is complete
    def stop(src, dst):
        print("ready", Path(src).name, flush=True)
        import time
        time.sleep(600)
    atomic.os.replace = stop
    n = 1_000_000
    t = pd.DataFrame({"micrograph_name": np.repeat([f"mic_{i:04d}.mrc" for i in range(1000)], n // 1000),
                      "x_px": np.arange(n) % 4000.0, "y_px": np.arange(n) // 4000.0,
                      "ncc": np.linspace(0, 1, n)})
    write_star(dest, t, overwrite=True)
else:  # stopped in the middle of writing the bytes
    def slow(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"x" * (2 << 20))
            fh.flush()
            print("ready", Path(tmp).name, flush=True)
            import time
            time.sleep(600)
    atomic.atomic_write(dest, slow, overwrite=True)
"""


@pytest.mark.parametrize("mode", ["rename", "bytes"])
def test_sigkill_during_an_export_leaves_the_destination_and_the_next_write_cleans_up(data, tmp_path, capsys, mode):
    folder = tmp_path / "exports"
    folder.mkdir()
    dest = folder / "kept.star"
    dest.write_text("the previous export\n")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(dest), mode], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        line = child.stdout.readline().split()  # waits until the child is inside the write
        assert line[:1] == ["ready"], line
        tmp = folder / line[1]
        assert tmp.is_file() and tmp.stat().st_size > 0 and TEMP_PATTERN.match(tmp.name)
        # a live writer's temporary file is left alone by another write into the folder
        run_cli_case(capsys, ["info", str(data / "picks.star"), "--json", str(folder / "info1.json")], "ok",
                     inputs=[data])
        assert tmp.is_file()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert dest.read_text() == "the previous export\n"  # the destination is intact
    assert tmp.is_file()  # the killed writer's leftover
    # the next write into the folder (here: any command's output) removes it
    run_cli_case(capsys, ["info", str(data / "picks.star"), "--json", str(folder / "info2.json")], "ok",
                 inputs=[data])
    assert not tmp.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["info1.json", "info2.json", "kept.star"]


def test_stale_temp_rules(tmp_path):
    """Leftovers of dead writers on this host go; those of live ones, and foreign files that merely
    look alike, stay; another host's go only when older than a day."""
    from napari_cryodiag.io.atomic import _host, atomic_write_text, remove_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    names = {
        "dead": f".x.cryodiag-{dead}@{_host()}-abcd1234.tmp.star",
        "mine": f".x.cryodiag-{os.getpid()}@{_host()}-abcd1234.tmp.star",
        "other_host_new": f".x.cryodiag-{dead}@elsewhere-node-7-abcd1234.tmp.star",
        "other_host_old": f".y.cryodiag-{dead}@elsewhere-node-7-abcd1234.tmp.cs",
        "user_file": ".x.abcd1234.tmp.star",
        "plain": "notes.txt",
    }
    for n in names.values():
        (tmp_path / n).write_text("x")
    old = tmp_path / names["other_host_old"]
    os.utime(old, (old.stat().st_atime - 2 * 86400, old.stat().st_mtime - 2 * 86400))
    removed = {p.name for p in remove_stale_temps(tmp_path)}
    assert removed == {names["dead"], names["other_host_old"]}
    atomic_write_text(tmp_path / "out.txt", "y")  # a write leaves only its file more
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [names[k] for k in ("mine", "other_host_new", "user_file", "plain")] + ["out.txt"])
