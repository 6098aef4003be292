"""``cryodiag sample OUTDIR``: write the simulated sample dataset (micrographs, picks, truth, maps, classes)."""

from __future__ import annotations

import argparse


def _size(text: str) -> tuple[int, int]:
    """``1024`` or ``1024x768`` (nx x ny) -> (ny, nx)."""
    t = text.lower().replace(",", "x")
    try:
        parts = [int(p) for p in t.split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or NXxNY, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 128:
        raise argparse.ArgumentTypeError(f"size must be N or NXxNY with N >= 128, got {text!r}")
    nx, ny = parts
    return (ny, nx)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="write the simulated sample dataset (micrographs, picks with truth, half maps, classes)",
        description=(
            "Simulate micrographs with particles, junk (carbon edge, aggregates) and empty areas, "
            "their picks (RELION STAR and cryoSPARC .cs) with truth labels and scores, the 3D "
            "density, two half maps with a mask, and 2D classes, and write them into OUTDIR."
        ),
    )
    p.add_argument("outdir", metavar="OUTDIR", help="folder to write (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-micrographs", type=_positive_int, default=8, help="number of micrographs (default 8)")
    p.add_argument("--size", type=_size, default=(1024, 1024), metavar="N|NXxNY",
                   help="micrograph size in pixels (default 1024)")
    p.add_argument("--pixel-size", type=float, default=2.0, metavar="A", help="pixel size in Å (default 2.0)")
    p.add_argument("--particles", type=_positive_int, default=100, help="particles per micrograph (default 100)")
    p.add_argument("--no-half-maps", action="store_true", help="skip the half maps")
    p.add_argument("--no-classes", action="store_true", help="skip the 2D classes")
    p.add_argument("--no-refinement", action="store_true",
                   help="skip the refined 3D particle set (poses, CTF, images, map)")
    p.add_argument("--refined-particles", type=_positive_int, default=1000,
                   help="particles in the refined set (default 1000)")
    p.add_argument("--layout", choices=("flat", "relion", "cryosparc"), default="flat",
                   help="flat (default): the files side by side; relion: a RELION project (default_pipeline.star, "
                        "MotionCorr/ CtfFind/ ManualPick/ AutoPick/ Extract/ Class2D/ Refine3D/ MaskCreate/ "
                        "PostProcess/ jobs); cryosparc: a cryoSPARC project (J1..J6 with job.json and .cs outputs)")
    p.add_argument("--relion-version", choices=("5", "4", "3.1"), default="5",
                   help="with --layout relion: RELION 4/5 files (default) or 3.1's (numbered pipeline, "
                        "coords_suffix_*.star picks)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=run, plan=plan)


def plan(args):
    """The folder is created and checked writable first; the dataset writer refuses to replace a
    dataset that is there without ``--overwrite`` (before simulating anything)."""
    from ..io.outputs import OutputPlan

    return OutputPlan(args.outdir, overwrite=args.overwrite, formats=None)


def run(args) -> int:
    from pathlib import Path

    from ..errors import CryodiagInputError
    from ..simulate.dataset import write_sample_dataset

    if not args.pixel_size > 0:
        raise CryodiagInputError(f"--pixel-size must be > 0, got {args.pixel_size}")
    plan(args).check()
    if args.layout != "flat":
        return _run_project(args)

    ds = write_sample_dataset(
        # absolute: the dataset relates the files it writes to the folder (relative_to)
        Path(args.outdir).expanduser().absolute(),
        seed=args.seed,
        n_micrographs=args.n_micrographs,
        shape=args.size,
        pixel_size_A=args.pixel_size,
        particles_per_micrograph=args.particles,
        half_maps=not args.no_half_maps,
        classes=not args.no_classes,
        refinement=not args.no_refinement,
        n_refined_particles=args.refined_particles,
        overwrite=args.overwrite,
    )
    sim = ds.simulation
    counts = sim.truth["truth"].value_counts()
    ny, nx = sim.images.shape[1:]
    print(f"wrote {ds.folder}")
    print(f"  {len(ds.micrographs)} micrographs {nx}x{ny} px at {sim.pixel_size_A:g} Å/px in {ds.micrographs[0].parent.name}/"
          f" (defocus {sim.defocus_A.min():.0f}-{sim.defocus_A.max():.0f} Å)")
    print(f"  {len(sim.truth)} picks in {ds.picks_star.name} and {ds.picks_cs.name}: "
          + ", ".join(f"{int(counts.get(k, 0))} {k}" for k in ("particle", "junk", "empty")))
    print(f"  truth in {ds.truth_csv.name}, areas in {ds.regions_csv.name}, density in {ds.density.name}")
    if ds.half_maps:
        print(f"  half maps and mask in {ds.half_maps['half1'].parent.name}/")
    if ds.classes:
        print(f"  class averages and particles in {ds.classes['averages'].parent.name}/")
    if ds.refinement:
        print(f"  refined particle set (poses, CTF, images, map) in {ds.refinement['star'].parent.name}/")
    for what, why in ds.skipped.items():
        print(f"  skipped {what}: {why}")
    return 0


def _run_project(args) -> int:
    from pathlib import Path

    from ..io.projects import open_project
    from ..simulate.project import write_sample_project

    if args.no_half_maps:
        print("  note: --no-half-maps has no effect with a project layout (the half maps are the refinement's)")
    sp = write_sample_project(
        Path(args.outdir).expanduser().absolute(), args.layout, relion_version=args.relion_version, seed=args.seed,
        n_micrographs=args.n_micrographs, shape=args.size, pixel_size_A=args.pixel_size,
        particles_per_micrograph=args.particles, classes=not args.no_classes, refinement=not args.no_refinement,
        n_refined_particles=args.refined_particles, overwrite=args.overwrite,
    )
    what = "RELION " + sp.relion_version if sp.layout == "relion" else "cryoSPARC"
    sim = sp.simulation
    print(f"wrote {sp.folder} ({what} project)")
    print(f"  {len(sp.micrographs)} micrographs, {len(sim.truth)} picks; bad micrographs (CTF fit only to 12-15 Å): "
          + (", ".join(sp.bad_micrographs) or "none"))
    for line in open_project(sp.folder).describe()[1:]:
        print("  " + line)
    for what, why in sp.skipped.items():
        print(f"  skipped {what}: {why}")
    return 0
