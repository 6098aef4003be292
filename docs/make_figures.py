"""Make the README pictures (run from the repository root with the project's venv):

    xvfb-run -a .venv/bin/python docs/make_figures.py

- docs/images/pick-conventions.png: simulated picks written as RELION STAR and cryoSPARC .cs,
  read back by the plugin's readers and drawn on their micrograph: both land on the particles;
  the same .cs read with ``flip_y=True`` (pyem's habit) does not.
- docs/images/demo-picks.png, demo-maps.png, demo-classes.png: the napari demo, one per workflow.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from napari_cryodiag.io.mrc import open_micrograph_stack  # noqa: E402
from napari_cryodiag.io.picks import read_table  # noqa: E402
from napari_cryodiag.simulate.dataset import write_sample_dataset  # noqa: E402

OUT = Path(__file__).resolve().parent / "images"


def pick_conventions() -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        ds = write_sample_dataset(Path(tmp) / "sample", seed=0, n_micrographs=2, half_maps=False, classes=False,
                                  refinement=False)
        stack = open_micrograph_stack(ds.micrographs[0].parent)
        star = read_table(ds.picks_star)
        cs = read_table(ds.picks_cs)
        cs_flipped = read_table(ds.picks_cs, flip_y=True)
        key = stack.keys[0]
        img = np.asarray(stack.data[0])
        apix = stack.pixel_size_A
    shown = ndimage.gaussian_filter(img, 3)  # low-pass so the particles are visible
    hole = shown[shown > np.median(shown)]  # contrast from the ice, not the carbon
    lo, hi = np.percentile(hole, [0.5, 99.5])
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.2), layout="constrained")
    for ax, (title, flipped) in zip(axes, [("as read (default)", cs), ("cryoSPARC .cs read with flip_y=True", cs_flipped)]):
        ax.imshow(shown, cmap="gray", vmin=lo, vmax=hi)
        s = star[star["micrograph"] == key]
        c = flipped[flipped["micrograph"] == key]
        ax.scatter(s["x_px"], s["y_px"], s=260, facecolors="none", edgecolors="tab:red", linewidths=1.4,
                   label="RELION STAR: x = rlnCoordinateX, y = rlnCoordinateY")
        ax.scatter(c["x_px"], c["y_px"], s=30, marker="+", color="tab:cyan", linewidths=1.2,
                   label="cryoSPARC .cs: x = center_x_frac·nx, y = center_y_frac·ny")
        ax.set_title(title)
        ax.set_xlabel("x (column, px)")
        ax.set_ylabel("y (row, px) — row 0 = first row in the MRC file")
        ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
    fig.suptitle(f"Pick coordinates on micrograph {key} ({apix:g} Å/px, low-passed for display): "
                 "image row 0 at the top, as napari shows it", fontsize=11)
    OUT.mkdir(exist_ok=True)
    dest = OUT / "pick-conventions.png"
    fig.savefig(dest, dpi=80)
    return dest


def demo_screenshots() -> list[Path]:
    paths = []
    for workflow in ("picks", "maps", "classes"):
        dest = OUT / f"demo-{workflow}.png"
        subprocess.run([sys.executable, "-m", "napari_cryodiag.demo", "--workflow", workflow, "--screenshot", str(dest)],
                       check=True)
        paths.append(dest)
    return paths


if __name__ == "__main__":
    print(pick_conventions())
    if "--no-screenshots" not in sys.argv:
        for p in demo_screenshots():
            print(p)
