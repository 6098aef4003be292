"""Map validation, plots: the FSC curves, the Guinier plot, the map views, or a RELION
postprocess.star's curves, drawn by the workflow's figure builders in napari's theme.

magicgui: ``view`` (one of :data:`~napari_cryodiag.workflows.maps.VIEWS`, and "postprocess FSC"
when one is loaded), ``view_map`` (the map the slice/projection/Fourier views show),
``save_figure`` (a file to save the shown figure to). While B changes, only the sharpened curve
of the Guinier plot is redrawn (blitted over the rest); the full figure follows once B rests.
"""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit
from qtpy.QtCore import QTimer

from ...errors import CryodiagInputError
from ...workflows.maps import VIEWS, draw_view
from .._canvas import Blitter, MplCanvas

__all__ = ["PlotsPanel", "POSTPROCESS_VIEW"]

POSTPROCESS_VIEW = "postprocess FSC"
#: ms without a new B before the full figure is redrawn (rescaled) after blitted updates
SETTLE_MS = 350


class PlotsPanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        self.view = ComboBox(label="view", choices=list(VIEWS), value="FSC")
        self.view_map = ComboBox(label="map", choices=["average", "sharpened", "half map 1"], value="average",
                                 tooltip="the map shown by the slice, projection and Fourier views")
        self.save_figure = FileEdit(label="save figure", mode="w", filter="Figures (*.png *.pdf *.svg)",
                                    tooltip="write the shown figure (PNG, PDF or SVG)")
        self.controls = Container(widgets=[self.view, self.view_map], layout="horizontal", labels=False)
        self.canvas = MplCanvas(figsize=(4.0, 3.4), min_height=260, max_aspect=0.95, theme=dock.theme)
        self.blitter = Blitter(self.canvas.canvas)
        self._sharp_line = None
        self._settle = QTimer()
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self.redraw)
        self.view.changed.connect(self._on_view)
        self.view_map.changed.connect(self._on_view)
        self.save_figure.changed.connect(self._on_save)
        session.computed.connect(self.redraw)
        session.postprocess_changed.connect(self._on_postprocess)
        self._on_view()

    def widgets(self):
        return [self.controls, self.canvas, Container(widgets=[self.save_figure])]

    # ------------------------------------------------------------------ state
    @property
    def needs_sharpened_curve(self) -> bool:
        return self.view.value == "Guinier"

    @property
    def needs_sharpened_map(self) -> bool:
        """The shown view draws the whole sharpened map (its slices, projections or transform)."""
        return self.view.value in ("slices", "projections", "Fourier slices") and self.view_map.value == "sharpened"

    def _on_view(self, *_):
        self.view_map.visible = self.view.value in ("slices", "projections", "Fourier slices")
        self.redraw()

    def _on_postprocess(self):
        views = list(VIEWS) + ([POSTPROCESS_VIEW] if self.session.postprocess is not None else [])
        self.view.choices = views
        if self.session.postprocess is not None:
            self.view.value = POSTPROCESS_VIEW
        elif self.view.value not in views:
            self.view.value = "FSC"
        self.redraw()

    # ------------------------------------------------------------------ drawing
    def draw(self, fig, view: str | None = None) -> bool:
        """Draw ``view`` (default: the chosen one) into ``fig``; False when there is nothing to draw."""
        view = view or self.view.value
        s = self.session
        if view == POSTPROCESS_VIEW:
            if s.postprocess is None:
                return False
            from ...plots.fsc import plot_fsc

            fsc, flags, name = s.postprocess
            plot_fsc(fsc, fig, flags=flags, title=f"{name}: FSC, {fsc.box}³ px at {fsc.pixel_size_A:.3g} Å/px")
            return True
        if not s.ready:
            return False
        draw_view(s.validation, view, fig, view_map=self.view_map.value)
        return True

    def redraw(self, *_):
        self._settle.stop()
        self.blitter.stop(redraw=False)
        self._sharp_line = None
        with self.canvas.plotting() as fig:
            if not self.draw(fig):
                ax = fig.add_subplot(111)
                ax.set_axis_off()
                ax.text(0.5, 0.5, "choose two half maps and press Compute\n(or load a postprocess.star)",
                        ha="center", va="center", transform=ax.transAxes)
        if self.view.value == "Guinier" and fig.axes:
            self._sharp_line = next((ln for ln in fig.axes[0].get_lines() if ln.get_label() == "sharpened"), None)
            if self._sharp_line is not None and self.canvas.canvas.isVisible():
                # take the background now (the figure is drawn anyway): the next B only blits
                self.blitter.start([self._sharp_line])
                self.blitter.update()

    def sharpening(self) -> None:
        """A new B is on its way: the full figure waits until B rests (a full redraw in the middle
        of a step would compute the new map's curve a second time, beside the sharpening thread,
        and draw the whole figure: several times the step itself)."""
        self._settle.stop()

    def sharpened_changed(self, curve=None, *, settle: bool = True) -> None:
        """A new sharpened map (what-if): blit its Guinier curve (``curve``, default the
        validation's), or redraw a view that shows it; the full figure is redrawn once B rests
        (``settle=False``: not yet, another map is on its way)."""
        view = self.view.value
        if view == "Guinier" and self._sharp_line is not None:
            import numpy as np

            if curve is None:
                curve = self.session.validation.sharpened_curve
            x, y = np.asarray(curve.x_invA2), np.asarray(curve.y)
            ok = np.isfinite(y) & (x > 0)
            self._sharp_line.set_data(x[ok], y[ok])
            if not self.blitter.artists:
                self.blitter.start([self._sharp_line])
            self.blitter.update()  # the rest of the figure is the saved background
            if settle:
                self._settle.start()
        elif not settle:
            return
        elif view == "Guinier" or (view in ("slices", "projections", "Fourier slices")
                                   and self.view_map.value == "sharpened"):
            self._settle.start()

    def _on_save(self, path):
        if not path or not str(path).strip() or str(path) == ".":
            return
        try:
            out = self.save(path)
            self.dock.report(f"figure written to {out}")
        except CryodiagInputError as err:
            self.dock.error(err)

    def save(self, path) -> Path:
        from ...io.atomic import atomic_write

        fmt = Path(path).suffix[1:].lower() or "png"
        if fmt not in ("png", "pdf", "svg"):
            raise CryodiagInputError("save the figure as .png, .pdf or .svg", path)
        v = self.session.validation
        protect = [] if v is None else list(v.inputs.files)
        return atomic_write(path, lambda p: self.canvas.figure.savefig(p, dpi=150, format=fmt), overwrite=True,
                            protect=protect)
