"""`cryodiag report`: the headless main job runs every diagnostic on a sample-layout folder."""

import json

from napari_cryodiag.cli import main
from napari_cryodiag.simulate.dataset import write_sample_dataset


def test_report_runs_every_diagnostic_and_indexes_the_figures(tmp_path):
    data = tmp_path / "data"
    write_sample_dataset(data, seed=3, n_micrographs=2, shape=(512, 512), n_refined_particles=200)
    out = tmp_path / "report"
    assert main(["report", "--data", str(data), "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == ["picks", "fsc", "classes", "orientations", "noise"]
    for name, step in steps.items():
        assert step["status"] == "ok", (name, step["error"])
        assert step["figures"] and step["json"], name
        for rel in step["figures"] + step["json"]:
            assert (out / rel).stat().st_size > 0
    # the numbers behind the figures are there: e.g. the FSC resolution and the kept picks
    fsc = json.loads((out / steps["fsc"]["json"][0]).read_text())
    assert "corrected" in json.dumps(fsc)
    assert (out / "picks" / "picks_kept.star").exists()
    index = (out / "index.html").read_text()
    assert all(f in index for s in steps.values() for f in s["figures"])


def test_report_on_a_folder_that_is_not_a_dataset_says_which_steps_failed(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "report"
    assert main(["report", "--data", str(tmp_path / "empty"), "-o", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    assert all(s["status"] == "failed" and s["error"] for s in report["steps"])
    assert "FAILED" in capsys.readouterr().out
