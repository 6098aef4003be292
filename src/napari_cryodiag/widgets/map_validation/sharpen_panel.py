"""Map validation, sharpening ("what-if") and the layers it makes.

magicgui: the sharpening form (:class:`~napari_cryodiag.workflows.maps.SharpenOptions`: the fitted
or an explicit B-factor, FSC weighting, low-pass, mask), ``live`` (follow the form), and buttons
that add the sharpened map, the automatic masks, the log-amplitude Fourier volume and the three
projections as layers.

A new B re-filters the cached transform of the half-map average (one inverse FFT, in a thread)
and replaces the data of the sharpened layer; changes that come faster than that are merged (the
latest wins), and the Guinier curve of the sharpened map is computed only while the Guinier plot
is shown. :meth:`SharpenPanel.sharpen_now` does the same synchronously (scripts and buttons).
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, Container, PushButton
from napari.qt.threading import thread_worker

from ...errors import CryodiagInputError
from ...workflows.maps import SharpenOptions
from .._dock import note
from .._forms import options_form
from .._layers import meta

__all__ = ["SharpenPanel", "SHARPENED_NAME"]

SHARPENED_NAME = "sharpened"
MASK_COLOURS = {"spherical": "blue", "loose": "magenta", "tight": "green"}


def _contrast(vol: np.ndarray) -> tuple[float, float]:
    """Display range of a map from a subsample (a few ms at 256³)."""
    step = max(1, vol.shape[0] // 64)
    lo, hi = np.percentile(vol[::step, ::step, ::step], [0.1, 99.9])
    return float(lo), float(hi if hi > lo else lo + 1)


class SharpenPanel:
    def __init__(self, session, dock, plots):
        self.session = session
        self.dock = dock
        self.plots = plots
        self.form = options_form(SharpenOptions)
        self.live = CheckBox(text="update the sharpened layer and plot live", value=True)
        self.sharpened_button = PushButton(text="Sharpened map → layer")
        self.masks_button = PushButton(text="Masks → layers")
        self.fourier_button = PushButton(text="Fourier volume → layer",
                                         tooltip="log |F| of the map chosen under 'map' (Plots), beside the map")
        self.projections_button = PushButton(text="Projections → layers",
                                             tooltip="the three projections (sums) of the map chosen under 'map', "
                                                     "below it")
        self.note = note()
        self.buttons = Container(widgets=[
            Container(widgets=[self.sharpened_button, self.masks_button], layout="horizontal", labels=False),
            Container(widgets=[self.fourier_button, self.projections_button], layout="horizontal", labels=False),
        ], labels=False)
        dock.actions(self.sharpened_button, self.masks_button, self.fourier_button, self.projections_button)
        self.layer = None  #: the sharpened layer (an object: it may be renamed)
        self.shown_bfactor_A2: float | None = None  #: the B of the map the layer shows
        self._mask_layers: dict = {}  #: automatic mask name -> its layer
        self._worker = None
        self._pending: SharpenOptions | None = None
        self._syncing = False
        self.form.changed_value.connect(self._on_form)
        self.sharpened_button.changed.connect(lambda *_: self.add_sharpened_layer())
        self.masks_button.changed.connect(lambda *_: self.add_mask_layers())
        self.fourier_button.changed.connect(lambda *_: self.add_fourier_layer())
        self.projections_button.changed.connect(lambda *_: self.add_projection_layers())
        session.computed.connect(self._on_computed)
        self._enable()

    def widgets(self):
        return [self.form, self.live, self.buttons, self.note]

    # ------------------------------------------------------------------ state
    @property
    def idle(self) -> bool:
        """No sharpening is running or waiting."""
        return self._worker is None and self._pending is None

    def _layer_alive(self):
        if self.layer is not None and self.layer not in list(self.dock.viewer.layers):
            self.layer = None
        return self.layer

    def _enable(self):
        self.form.bfactor_A2.enabled = not self.form.use_fitted_bfactor.value

    def _show_fitted(self):
        g = self.session.session.guinier if self.session.ready else None
        if self.form.use_fitted_bfactor.value and g is not None:
            self._syncing = True
            try:
                self.form.bfactor_A2.value = round(float(g.sharpening_bfactor_A2), 1)
            finally:
                self._syncing = False

    def _on_form(self, _options=None):
        self._enable()
        if self._syncing:
            return
        if self.form.use_fitted_bfactor.value:
            self._show_fitted()
        if self.live.value and self.session.ready and not self.dock.busy and (
                self._layer_alive() is not None or self.plots.needs_sharpened_curve):
            self.request()

    def _on_computed(self):
        s = self.session.session
        self._show_fitted()
        self.note.value = "" if s.guinier is not None else f"no fitted B-factor ({s.guinier_error}): enter one"
        if s.sharpened is not None or self._layer_alive() is not None:
            self.request()

    # ------------------------------------------------------------------ sharpening
    def options(self) -> SharpenOptions:
        return self.form.value

    def request(self, options: SharpenOptions | None = None) -> None:
        """Sharpen with ``options`` (default: the form's) in a thread; requests that arrive while
        one runs are merged into one (the latest)."""
        self._pending = options or self.options()
        self.plots.sharpening()
        if self._worker is None:
            self._start()

    def _start(self):
        opts, self._pending = self._pending, None
        v = self.session.validation
        need_curve = self.plots.needs_sharpened_curve

        def job():
            vol = v.sharpen(opts)
            yield vol
            if need_curve:
                v.sharpened_curve  # noqa: B018 - computed here, off the GUI thread
            return need_curve

        w = thread_worker(job, start_thread=False, ignore_errors=True)()
        w.yielded.connect(self._show_volume)
        w.returned.connect(self._curve_ready)
        w.errored.connect(self._failed)
        w.finished.connect(self._finished)
        self._worker = w
        w.start()

    def _finished(self):
        self._worker = None
        if self._pending is not None and self.session.ready:
            self._start()
        else:
            self._pending = None

    def _failed(self, err):
        self._pending = None
        self.note.value = str(err) if isinstance(err, CryodiagInputError) else f"{type(err).__name__}: {err}"
        self.dock.report(self.note.value, "warning")

    def _curve_ready(self, with_curve):
        if with_curve:
            self.plots.sharpened_changed()

    def _show_volume(self, vol):
        """Show a new sharpened map: its values go into the layer's array (same grid), and the
        layer redraws; no new layer data, so napari does not recompute the viewer's dimensions,
        and no text changes size (a relayout of the window costs more than the map)."""
        layer = self._layer_alive()
        b = self.session.session.sharpen_used.bfactor_A2
        if layer is not None:
            data = layer.data
            if isinstance(data, np.ndarray) and data.shape == vol.shape and data.dtype == vol.dtype and data.flags.writeable \
                    and data is not self.session.session.sharpened:
                np.copyto(data, vol)
                layer.refresh()
            else:
                layer.data = vol.copy()
            layer.contrast_limits = _contrast(vol)
            layer.metadata.setdefault("cryodiag", {})["bfactor_A2"] = b
        self.shown_bfactor_A2 = b
        if not self.plots.needs_sharpened_curve:
            self.plots.sharpened_changed()

    def wait(self, timeout_ms: int = 30_000) -> None:
        """Block until the sharpening requests are done (tests and scripts)."""
        from qtpy.QtCore import QCoreApplication, QElapsedTimer, QThread

        t = QElapsedTimer()
        t.start()
        while not self.idle and t.elapsed() < timeout_ms:
            QCoreApplication.processEvents()
            QThread.msleep(2)
        QCoreApplication.processEvents()

    def sharpen_now(self, options: SharpenOptions | None = None) -> np.ndarray:
        """Sharpen in this thread (after any running request) and show the result."""
        self.wait()
        v = self.session.validation
        vol = v.sharpen(options or self.options())
        self._show_volume(vol)
        if self.plots.needs_sharpened_curve:
            self.plots.sharpened_changed()
        return vol

    # ------------------------------------------------------------------ layers
    def _need(self) -> bool:
        if not self.session.ready:
            self.dock.report("compute the FSC first", "warning")
            return False
        return True

    def add_sharpened_layer(self):
        """The sharpened map as a layer (updated live afterwards); returns the layer."""
        if not self._need():
            return None
        try:
            vol = self.sharpen_now()
        except CryodiagInputError as err:
            self.dock.error(err)
            return None
        self.note.value = f"sharpened with B = {self.session.session.sharpen_used.bfactor_A2:.1f} Å²"
        if self._layer_alive() is None:
            apix = self.session.session.halfmaps.pixel_size_A
            self.layer = self.dock.viewer.add_image(
                vol.copy(), name=SHARPENED_NAME, scale=(apix,) * 3, contrast_limits=_contrast(vol),
                metadata={"cryodiag": {"kind": "derived", "derived": True, "what": "sharpened map",
                                       "pixel_size_A": apix,
                                       "bfactor_A2": self.session.session.sharpen_used.bfactor_A2}})
        return self.layer

    def add_mask_layers(self) -> list:
        """The automatic masks (spherical, loose, tight) as layers (replaced when they exist)."""
        if not self._need():
            return []
        s = self.session.session
        apix = s.halfmaps.pixel_size_A
        viewer = self.dock.viewer
        added = []
        for name in ("spherical", "loose", "tight"):
            m = s.fsc.masks[name]
            old = self._mask_layers.get(name)
            if old is not None and old in list(viewer.layers):
                old.data = m
                added.append(old)
                continue
            added.append(viewer.add_image(
                m, name=f"mask {name}", scale=(apix,) * 3, colormap=MASK_COLOURS[name], blending="additive",
                opacity=0.35, contrast_limits=(0.0, 1.0),
                metadata={"cryodiag": {"kind": "mask", "derived": True, "auto_mask": name, "pixel_size_A": apix,
                                       "value_range": (0.0, 1.0), "params": s.fsc.mask_params.to_dict()}}))
            self._mask_layers[name] = added[-1]
        return added

    def _view_volume(self):
        return self.session.validation.view_volume(self.plots.view_map.value)

    def add_fourier_layer(self):
        """log |F| of the chosen map as a 3D layer beside the map (same voxel spacing)."""
        from ...compute.maps.views import fourier_log_amplitude

        if not self._need():
            return None
        vol, label = self._view_volume()
        la = fourier_log_amplitude(vol)
        apix = self.session.session.halfmaps.pixel_size_A
        n = la.shape[-1]
        lo, hi = np.percentile(la[:: max(1, n // 32)], [1, 99.9])
        name = f"log|F| ({label})"
        viewer = self.dock.viewer
        old = next((ly for ly in viewer.layers if meta(ly).get("what") == name), None)
        if old is not None:
            old.data = la
            return old
        return viewer.add_image(la, name=name, scale=(apix,) * 3, translate=(0, 0, 1.1 * n * apix),
                                colormap="magma", contrast_limits=(float(lo), float(hi)),
                                metadata={"cryodiag": {"kind": "derived", "derived": True, "what": name,
                                                       "note": "log amplitude of the centred 3D transform; "
                                                               "DC at n//2; placed beside the map"}})

    def add_projection_layers(self) -> list:
        """Projections (sums) z-y, z-x, y-x of the chosen map as 2D layers below the map."""
        from ...compute.maps.views import projections

        if not self._need():
            return []
        vol, label = self._view_volume()
        apix = self.session.session.halfmaps.pixel_size_A
        n = vol.shape[-1]
        viewer = self.dock.viewer
        added = []
        for i, (plane, img) in enumerate(projections(vol).items()):
            name = f"projection {plane} ({label})"
            old = next((ly for ly in viewer.layers if meta(ly).get("what") == name), None)
            if old is not None:
                old.data = img
                added.append(old)
                continue
            lo, hi = float(img.min()), float(img.max())
            added.append(viewer.add_image(
                img, name=name, scale=(apix, apix), translate=(1.15 * n * apix, i * 1.1 * n * apix),
                contrast_limits=(lo, hi if hi > lo else lo + 1),
                metadata={"cryodiag": {"kind": "derived", "derived": True, "what": name, "plane": plane,
                                       "pixel_size_A": apix}}))
        return added
