"""Classes, inputs: the particles, the class averages, the RELION model, the particle stacks and
the options.

magicgui:

- ``particles``: the particle sets open in the viewer (File > Open of a STAR / ``.cs`` without
  pick coordinates puts them in the viewer's open tables; pick layers offer their tables too),
  ``particles_file`` to open one here;
- ``averages``: an image stack (class averages: ``.mrcs`` layers), empty = the model's stack, or
  averages computed from the particle images; ``averages_file`` opens an ``.mrcs`` as a layer.
  A stack with as many images as the particles have classes is chosen by default;
- ``model``: the ``*_model.star`` open in the viewer (empty = none), ``model_file`` to open one;
  the model of the same run as the particles (``…_it025_data.star`` ↔ ``…_it025_model.star``)
  is chosen by default;
- ``stacks``: a folder where the particle stacks are (for the FRC of half-set averages);
- ``options``: :class:`~napari_cryodiag.workflows.classes.ClassesOptions` (CTF, halves, FRC,
  pixel size, bins); ``order``: its sort order (beside the layer mode, above the tabs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import Container, FileEdit

from ...errors import CryodiagInputError
from ...workflows.classes import ClassesOptions
from .._forms import options_form
from .._layers import chooser, layer_choices, meta, pixel_size_A, template_choices
from .._tables import open_table_file, table_choices

__all__ = ["ClassInputsPanel"]


def _run_stem(path) -> str:
    """``…/run_it025_data.star`` and ``…/run_it025_model.star`` -> ``…/run_it025``."""
    p = Path(str(path))
    stem = p.name
    for suffix in ("_data.star", "_model.star", ".star", ".cs"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return str(p.parent / stem)


class ClassInputsPanel:
    def __init__(self, dock):
        self.dock = dock
        v = dock.viewer
        self.particles = chooser(table_choices(v, "particles", with_picks=True, needs=("class",)), label="particles",
                                 tooltip="a classification result (RELION _data.star, cryoSPARC .cs) open in the viewer")
        self.particles_file = FileEdit(label="particles file", mode="r", filter="Particles (*.star *.cs)")
        self.averages = chooser(layer_choices(v, template_choices), label="averages",
                                none="the model's, or computed",
                                tooltip="the class averages (.mrcs); empty: the model's stack, or averages "
                                        "computed from the particle images")
        self.averages_file = FileEdit(label="averages file", mode="r", filter="Class averages (*.mrcs *.mrc)")
        self.model = chooser(table_choices(v, "relion_model"), label="model.star", none="none",
                             tooltip="a RELION *_model.star (class distribution, reference stack, pixel size)")
        self.model_file = FileEdit(label="model file", mode="r", filter="RELION model (*_model.star *.star)")
        self.stacks = FileEdit(label="particle stacks in", mode="d",
                               tooltip="a folder where the particle stacks named in the table are "
                                       "(default: next to the table)")
        self.options = options_form(ClassesOptions, exclude=("sort_by",))
        self.order = options_form(ClassesOptions, include=("sort_by",), layout="horizontal",
                                  overrides={"sort_by": {"label": "sort by"}})
        self.top = Container(widgets=[self.particles])
        self.choosers = Container(widgets=[self.particles_file, self.averages, self.averages_file,
                                           self.model, self.model_file, self.stacks])
        dock.track(self.top, self.choosers)
        self.particles_file.changed.connect(self._open_particles)
        self.model_file.changed.connect(self._open_model)
        self.averages_file.changed.connect(self._open_averages)
        self.particles.changed.connect(lambda *_: self.choose_defaults())
        self.choose_defaults()

    # ------------------------------------------------------------------ files
    @staticmethod
    def _given(path) -> bool:
        return bool(path) and str(path) not in ("", ".")

    def _open_particles(self, path):
        if self._given(path):
            self._open_table(path, "particles", self.particles)

    def _open_model(self, path):
        if self._given(path):
            self._open_table(path, "relion_model", self.model)

    def _open_table(self, path, kind, widget):
        try:
            item = open_table_file(self.dock.viewer, path, kind)
        except CryodiagInputError as err:
            self.dock.error(err)
            return
        self.dock.reset_choices()
        widget.value = item

    def _open_averages(self, path):
        if not self._given(path):
            return
        new = self.dock.open_layers([path])
        stacks = [ly for ly in new if ly in (self.averages.choices or ())]
        if stacks:
            self.averages.value = stacks[0]
        elif new:
            self.dock.error(f"{Path(str(path)).name} is not a stack of class averages")

    # ------------------------------------------------------------------ defaults
    def choose_defaults(self) -> None:
        """The model of the same run and a stack with one image per class, for the particles."""
        item = self.particles.value
        table = getattr(item, "table", None)
        if item is None or table is None:
            return
        src = item.path or table.attrs.get("source")
        if self.model.value is None and src:
            stem = _run_stem(src)
            for m in self.model.choices or ():
                if m is not None and m.path and _run_stem(m.path) == stem:
                    self.model.value = m
                    break
        if self.averages.value is None and "class" in table.columns and len(table):
            n_classes = int(table["class"].nunique())
            for ly in self.averages.choices or ():
                if ly is not None and np.ndim(ly.data) == 3 and ly.data.shape[0] == n_classes:
                    self.averages.value = ly
                    break

    # ------------------------------------------------------------------ what the job gets
    def classes_options(self) -> ClassesOptions:
        return ClassesOptions(**self.options.field_values(), **self.order.field_values())

    def job_inputs(self) -> dict:
        """Keyword arguments of :func:`napari_cryodiag.workflows.classes.iter_class_diagnostics`."""
        item = self.particles.value
        if item is None or getattr(item, "table", None) is None:
            raise CryodiagInputError("choose a particle file (STAR or .cs) under 'particles', or open one")
        kw: dict = {"particles": item.table, "options": self.classes_options()}
        images = item.data.get("images") if item.data else None
        if images is None and item.layer is not None:
            images = meta(item.layer).get("images")
        if images is not None:
            kw["images"] = images
        avg = self.averages.value
        if avg is not None:
            kw["averages"] = np.asarray(avg.data, dtype=np.float32)
            kw["averages_pixel_size_A"] = pixel_size_A(avg)
            kw["averages_name"] = avg.name
        m = self.model.value
        if m is not None:
            model = m.data.get("model") if m.data else None
            kw["model"] = model if model is not None else m.path
        folder = self.stacks.value
        if self._given(folder):
            kw["stacks"] = [str(folder)]
        return kw
