"""npe2 sample data: simulated micrographs with picks, half maps and mask, 2D class averages, and a
refined particle set with its map.

Each function returns a list of napari LayerData tuples ``(data, kwargs, layer_type)`` built
like the reader's layers (same ``metadata["cryodiag"]`` contract, docs/ARCHITECTURE.md), so the
sample behaves in the widgets exactly as opened files do. Everything is simulated from a seed
(:mod:`napari_cryodiag.simulate`), with the truth kept in the metadata.
"""

from __future__ import annotations

import numpy as np

SAMPLE_SEED = 0
#: size of the "Simulated micrographs with picks" sample (napari calls the function without arguments)
SAMPLE_N_MICROGRAPHS = 8
SAMPLE_SHAPE = (1024, 1024)


def _contrast_limits(image) -> tuple[float, float]:
    from .io.mrc import contrast_limits

    return contrast_limits(np.asarray(image))


def _link_viewer() -> None:
    """Let the current viewer's picks layers follow the micrograph slider (as the reader does)."""
    from ._reader import _link_current_viewer

    _link_current_viewer()


def micrograph_layers(sim, *, name: str = "simulated micrographs", picks_name: str = "simulated picks"):
    """LayerData for a :class:`~napari_cryodiag.simulate.micrographs.SimulatedMicrographs`:
    the micrograph stack (image) and its picks (points, one micrograph shown at a time)."""
    from .widgets.layer_data import picks_layer_data

    apix = float(sim.pixel_size_A)
    image_meta = {
        "cryodiag": {
            "kind": "micrographs",
            "paths": [],
            "keys": list(sim.keys),
            "names": list(sim.names),
            "pixel_size_A": apix,
            "simulated": True,
            "defocus_A": [float(v) for v in sim.defocus_A],
            "regions": sim.regions,
            "particle_diameter_A": float(sim.particle_diameter_A),
        }
    }
    from .widgets.layer_data import micrograph_layer_data

    image = micrograph_layer_data(sim.images, apix, image_meta["cryodiag"], name)
    table = sim.truth.copy()
    table.attrs = {
        "source": "simulated",
        "format": "simulated",
        "convention": "simulated picks: x_px = column, y_px = row of the micrograph array",
        "optics": None,
    }
    points = picks_layer_data(table, picks_name, name=picks_name)
    points[1]["metadata"]["cryodiag"]["simulated"] = True
    return [image, points]


def sample_micrographs_with_picks(seed: int | None = None, n_micrographs: int | None = None, shape=None):
    """Eight simulated 1024² micrographs (2 Å/px, defocus 0.8–3 µm) with labelled, scored picks."""
    from .simulate.micrographs import simulate_micrographs

    sim = simulate_micrographs(
        n_micrographs=SAMPLE_N_MICROGRAPHS if n_micrographs is None else n_micrographs,
        shape=SAMPLE_SHAPE if shape is None else shape,
        seed=SAMPLE_SEED if seed is None else seed,
    )
    layers = micrograph_layers(sim)
    _link_viewer()
    return layers


def sample_half_maps(seed: int | None = None):
    """Two simulated half maps with independent noise (known FSC and B-factor) and a soft mask."""
    from .simulate.half_maps import simulate_half_maps

    hm = simulate_half_maps(seed=SAMPLE_SEED if seed is None else seed)
    apix = float(hm.pixel_size_A)
    truth = {k: v for k, v in (hm.truth or {}).items()}
    layers = []
    for role in ("half1", "half2", "mask"):
        data = np.asarray(getattr(hm, role), dtype=np.float32)
        meta = {
            "cryodiag": {
                "kind": "map",
                "role": role,
                "paths": [],
                "keys": [role],
                "pixel_size_A": apix,
                "voxel_size_A": (apix, apix, apix),
                "origin_A": (0.0, 0.0, 0.0),
                "simulated": True,
                "truth": truth,
            }
        }
        lo, hi = (0.0, 1.0) if role == "mask" else (float(data.min()), float(data.max()))
        kwargs = {
            "name": f"simulated {role}",
            "scale": (apix, apix, apix),
            "contrast_limits": (lo, hi if hi > lo else lo + 1.0),
            "colormap": "gray" if role != "mask" else "magenta",
            "metadata": meta,
        }
        if role == "mask":
            kwargs.update(blending="additive", opacity=0.4)
        if role == "half2":
            kwargs["visible"] = False
        layers.append((data, kwargs, "image"))
    return layers


def sample_class_averages(seed: int | None = None):
    """Simulated 2D class averages (good views and junk classes); their particle table joins the
    viewer's open tables."""
    from .simulate.classes import simulate_classes

    sc = simulate_classes(seed=SAMPLE_SEED if seed is None else seed)
    apix = float(sc.pixel_size_A)
    avg = np.asarray(sc.averages, dtype=np.float32)
    table = sc.table
    meta = {
        "cryodiag": {
            "kind": "stack",
            "role": "class_averages",
            "paths": [],
            "keys": ["class_averages"],
            "pixel_size_A": apix,
            "n_images": int(avg.shape[0]),
            "table": table,
            "images": np.asarray(sc.images, dtype=np.float32),  # for the class FRCs
            "simulated": True,
            "truth": dict(sc.truth or {}),
        }
    }
    image = (
        avg,
        {
            "name": "simulated class averages",
            "scale": (1.0, apix, apix),
            "contrast_limits": _contrast_limits(avg.reshape(-1, avg.shape[-1])),
            "colormap": "gray",
            "metadata": meta,
        },
        "image",
    )
    from ._reader import _register

    # the particle set has no picks to draw: it joins the viewer's open tables (no empty layer),
    # with its images so that the Classes widget can build half-set averages and their FRCs
    _register("particles", "simulated particles", None, table=table,
              data={"images": np.asarray(sc.images, dtype=np.float32), "pixel_size_A": apix, "simulated": True})
    return [image]


#: size of the "Simulated refined particles" sample: enough views for the orientation plots and
#: a noise model with a few per cent of error per shell, simulated in about a second
SAMPLE_N_REFINED = 1000


def sample_refined_particles(seed: int | None = None):
    """A simulated 3D refinement: particle images projected from a known map at known poses
    (uniform on the sphere), shifts and CTF, with white noise of known variance. The map becomes
    a layer ("simulated refined map"); the particle set, with its images, joins the viewer's open
    tables, for the Orientations and Noise model docks."""
    from .simulate.particles import simulate_particles

    s = SAMPLE_SEED if seed is None else seed
    sp = simulate_particles(SAMPLE_N_REFINED, box=64, pixel_size_A=2.0, noise="white", seed=s)
    apix = float(sp.pixel_size_A)
    vol = np.asarray(sp.volume, dtype=np.float32)
    truth = {"noise": sp.noise, "noise_variance_per_pixel": float(sp.noise_sigma ** 2),
             "noise_spectrum": np.asarray(sp.noise_spectrum, float).tolist(), "poses": "uniform on SO(3)"}
    meta = {"cryodiag": {"kind": "map", "role": "reference", "paths": [], "keys": ["refined_map"],
                         "pixel_size_A": apix, "voxel_size_A": (apix, apix, apix), "origin_A": (0.0, 0.0, 0.0),
                         "simulated": True, "truth": truth}}
    lo, hi = float(vol.min()), float(vol.max())
    layer = (vol, {"name": "simulated refined map", "scale": (apix, apix, apix),
                   "contrast_limits": (lo, hi if hi > lo else lo + 1.0), "colormap": "gray", "metadata": meta},
             "image")
    from ._reader import _register

    table = sp.table.copy()
    table.attrs = dict(sp.table.attrs, source="simulated refined particles", truth=truth)
    _register("particles", "simulated refined particles", None, table=table,
              data={"images": np.asarray(sp.images, dtype=np.float32), "pixel_size_A": apix, "simulated": True,
                    "truth": truth})
    return [layer]
