"""Triptychs of a map (the cryoSPARC guide's figures): central slices, projections, Fourier slices.

Each row shows the z-y, z-x and y-x planes (see :mod:`napari_cryodiag.compute.maps.views`).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ..compute.maps.views import PLANES, all_views

ROWS = {
    "slices": ("central slices", "gray"),
    "projections": ("projections (sums)", "gray"),
    "fourier": ("Fourier slices, log |F|", "magma"),
}


AXIS = {"z": 0, "y": 1, "x": 2}


def plot_triptych(planes: dict, fig: Figure | None = None, *, title: str = "", cmap: str = "gray",
                  spacing_zyx=None) -> Figure:
    """Three planes side by side; ``spacing_zyx`` (sample spacing per axis) sets the aspect ratio."""
    fig = fig if fig is not None else Figure(figsize=(9, 3.2), layout="constrained")
    axs = fig.subplots(1, 3)
    for ax, name in zip(axs, PLANES):
        im = planes[name]
        rows, cols = name.split("-")
        aspect = 1.0 if spacing_zyx is None else float(spacing_zyx[AXIS[rows]]) / float(spacing_zyx[AXIS[cols]])
        ax.imshow(im, cmap=cmap, origin="lower", interpolation="nearest", aspect=aspect)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(cols)
        ax.set_ylabel(rows)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def fourier_spacing(shape_zyx, voxel_size_zyx):
    """Sample spacing (1/Å) of the Fourier volume along z, y, x: ``1 / (n_axis * voxel_axis)``."""
    return tuple(1.0 / (int(n) * float(v)) for n, v in zip(shape_zyx, voxel_size_zyx))


def plot_volume_views(volume, fig: Figure | None = None, *, rows=("slices", "projections", "fourier"), views=None,
                      title: str = "", voxel_size_zyx=None) -> Figure:
    """All three triptychs stacked (one row each)."""
    views = views or all_views(volume)
    fig = fig if fig is not None else Figure(figsize=(9, 3.1 * len(rows)), layout="constrained")
    subfigs = fig.subfigures(len(rows), 1) if len(rows) > 1 else [fig]
    for sf, row in zip(subfigs, rows):
        label, cmap = ROWS[row]
        spacing = voxel_size_zyx
        if row == "fourier" and voxel_size_zyx is not None:
            spacing = fourier_spacing(volume.shape, voxel_size_zyx)
        plot_triptych(views[row], sf, title=label, cmap=cmap, spacing_zyx=spacing)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
