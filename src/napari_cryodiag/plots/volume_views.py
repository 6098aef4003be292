"""Triptychs of a map (the cryoSPARC guide's figures): central slices, projections, Fourier slices.

Each row shows the z-y, z-x and y-x planes (see :mod:`napari_cryodiag.compute.volume_views`).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ..compute.volume_views import PLANES, all_views

ROWS = {
    "slices": ("central slices", "gray"),
    "projections": ("projections (sums)", "gray"),
    "fourier": ("Fourier slices, log |F|", "magma"),
}


def plot_triptych(planes: dict, fig: Figure | None = None, *, title: str = "", cmap: str = "gray") -> Figure:
    fig = fig if fig is not None else Figure(figsize=(9, 3.2), layout="constrained")
    axs = fig.subplots(1, 3)
    for ax, name in zip(axs, PLANES):
        im = planes[name]
        ax.imshow(im, cmap=cmap, origin="lower", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(name.split("-")[1])
        ax.set_ylabel(name.split("-")[0])
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_volume_views(volume, fig: Figure | None = None, *, rows=("slices", "projections", "fourier"), views=None,
                      title: str = "") -> Figure:
    """All three triptychs stacked (one row each)."""
    views = views or all_views(volume)
    fig = fig if fig is not None else Figure(figsize=(9, 3.1 * len(rows)), layout="constrained")
    subfigs = fig.subfigures(len(rows), 1) if len(rows) > 1 else [fig]
    for sf, row in zip(subfigs, rows):
        label, cmap = ROWS[row]
        plot_triptych(views[row], sf, title=label, cmap=cmap)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
