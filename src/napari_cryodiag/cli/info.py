"""``cryodiag info FILE...``: what each file holds (kind, counts, fields, pixel size, conventions)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CryodiagInputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe MRC/STAR/.cs/.cbox files or micrograph folders",
        description="Print what each file holds: kind, counts (rows, micrographs, picks per "
        "micrograph), fields, pixel size, coordinate convention; maps: shape, voxel size, origin.",
    )
    p.add_argument("files", nargs="+", help="files, folders of micrographs or STAR files, or globs")
    p.add_argument("--json", metavar="PATH", help="also write the same information as JSON")
    p.add_argument("--flip-y", action="store_true", help=".cs picks: y = ny - y (pyem-converted data)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing JSON file")
    p.set_defaults(func=run, plan=plan)


def _range(values) -> list:
    values = np.asarray(values)
    return [int(values.min()), int(values.max())] if values.size else [0, 0]


def describe(path: str, *, flip_y: bool = False) -> dict:
    """A JSON-able description of one file (raises CryodiagInputError on bad input)."""
    from ..io import mrc
    from ..io import picks as pk
    from ..io import star as st

    p = os.fspath(path)
    suffix = Path(p).suffix.lower()
    is_dir = os.path.isdir(p)
    is_glob = any(c in p for c in "*?[")
    if (is_dir and any(n.lower().endswith(".mrc") for n in os.listdir(p))) or (is_glob and suffix in mrc.MRC_SUFFIXES):
        s = mrc.open_micrograph_stack(p)
        return {"path": p, "kind": "micrograph stack", "n_micrographs": len(s), "shape_yx": list(s.shape[1:]),
                "mode": s.headers[0].mode, "pixel_size_A": s.pixel_size_A,
                "first": s.names[0], "last": s.names[-1], "notes": s.notes}
    if not is_dir and not is_glob and suffix in mrc.MRC_SUFFIXES:
        h = mrc.read_header(p)  # headers only: nothing here reads the data
        info = {"path": p, "mode": h.mode, "shape_zyx": list(h.shape), "notes": list(h.notes)}
        if h.is_complex:
            info["notes"].append(f"mode {h.mode} is complex (a Fourier transform): cryodiag will not read its data")
        if h.kind == "image":
            info.update(kind="micrograph (2D image)", pixel_size_A=h.pixel_size_A)
        elif h.kind == "stack":
            info.update(kind="image stack", n_images=h.shape[0], pixel_size_A=h.pixel_size_A)
        else:
            g = mrc.map_geometry(h)
            if h.ispg == 0:
                info["notes"].append("space group 0 (image stack) in the header, but a cubic .mrc/.map is read as "
                                     "a volume (RELION writes subtomogram averages so); name it .mrcs for a stack")
            if g.transpose is not None:
                info["notes"].append(f"axes reordered from (mapc, mapr, maps) = {h.axis_order} to z, y, x")
            info.update(kind="3D map", shape_zyx=list(g.shape), voxel_size_A_zyx=g.voxel_size_A,
                        origin_A_zyx=g.origin_A, axis_order_crs=list(h.axis_order), space_group=h.ispg)
        if info.get("pixel_size_A") is None and "voxel_size_A_zyx" not in info:
            info["pixel_size_A_note"] = "header pixel size is 0 (unknown)"
        return info
    if suffix == ".star" and not is_glob:
        blocks = st.read_star(p)
        if st.looks_like_postprocess(blocks):
            pp = st.read_postprocess(p)
            return {"path": p, "kind": "RELION postprocess", "general": pp["general"],
                    "n_fsc_shells": len(pp["fsc"]), "fsc_columns": list(pp["fsc"].columns),
                    "guinier_columns": list(pp["guinier"].columns)}
    opts = {"flip_y": flip_y} if suffix == ".cs" else {}
    t = pk.read_table(p, **opts)
    info = {"path": p, "format": t.attrs.get("format"), "n_rows": len(t)}
    has_xy = pk.has_coordinates(t) or (len(t) == 0 and t.attrs.get("has_locations", False))
    info["kind"] = "picks" if has_xy else "particles (no coordinates)"
    if "micrograph" in t.columns:
        counts = t.groupby("micrograph", sort=False).size()
        info["n_micrographs"] = int(len(counts))
        info["picks_per_micrograph"] = _range(counts.to_numpy())
    if "pixel_size_A" in t.columns and len(t):
        ps = np.unique(np.round(t["pixel_size_A"].to_numpy(dtype=float), 5))
        info["pixel_size_A"] = [float(v) for v in ps[:10]]
    if "defocus_A" in t.columns and len(t):
        info["defocus_A_range"] = [float(t["defocus_A"].min()), float(t["defocus_A"].max())]
    if "class" in t.columns and len(t):
        info["classes"] = sorted(int(c) for c in pd_unique(t["class"]))[:200]
    optics = t.attrs.get("optics")
    if optics is not None:
        info["optics_groups"] = int(len(optics))
    if has_xy:
        info["convention"] = t.attrs.get("convention", "")
    if t.attrs.get("note"):
        info["note"] = t.attrs["note"]
    info["fields"] = [c for c in t.columns]
    return info


def pd_unique(s):
    import pandas as pd

    return pd.unique(s.dropna())


def _print(info: dict) -> None:
    print(f"{info['path']}")
    for k, v in info.items():
        if k == "path" or v in ([], {}, None, ""):
            continue
        if k == "fields":
            v = ", ".join(v)
        elif isinstance(v, dict):
            v = "; ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, (list, tuple)):
            v = ", ".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in v)
        print(f"  {k}: {v}")


def plan(args):
    """Only ``--json PATH`` is written; every file named, or found in a folder or glob, is protected."""
    from ._common import files_of, output_plan

    p = output_plan(args, folder=False, inputs=[f for a in args.files for f in files_of(a)])
    if args.json:
        p.file(args.json, "JSON (--json)", in_folder=False)
    return p


def run(args) -> int:
    import sys

    from ._common import one_line

    out = plan(args).check()
    results = []
    status = 0
    for f in args.files:
        try:
            info = describe(f, flip_y=args.flip_y)
        except CryodiagInputError as err:
            # in the listing, and one line per unusable file on stderr (the others are still described)
            info = {"path": f, "error": str(err)}
            print(f"cryodiag info: error: {one_line(str(err))}", file=sys.stderr)
            status = 2
        _print(info)
        results.append(info)
    if args.json:
        out.write_json(args.json, {"files": results})
        print(f"wrote {args.json}")
    return status
