"""Map validation, sharpening ("what-if") and the layers it makes.

magicgui: the sharpening form (:class:`~napari_cryodiag.workflows.maps.SharpenOptions`: the fitted
or an explicit B-factor, FSC weighting, low-pass, mask), ``live`` (follow the form), and buttons
that add the sharpened map, the automatic masks, the log-amplitude Fourier volume and the three
projections as layers.

The sharpened layer holds a :class:`SharpenedLayerData`: the map of the shown B as an
array-like (:class:`~napari_cryodiag.compute.maps.sharpen.SharpenedMap`) that napari slices. In
2D a new B costs the plane napari asks for (a matrix-vector product over the cached transform and
one 2D inverse FFT, on the GUI thread: a few ms at 256³); scrolling computes the next plane. The
whole map (one inverse FFT) is computed only when something needs it: the 3D display, File >
Save / ``layer.save``, ``np.asarray(layer.data)``, the slice views of the sharpened map, the
exports. With the layer in 3D a new B computes the whole map in a thread. The Guinier plot's
sharpened curve needs no map: the filter applied to the plotted curve's transform, from per-shell
sums taken once (:meth:`ValidationSession.sharpened_guinier`, well under a millisecond per B); it is
computed in the same thread, only while the Guinier plot is shown. Changes that come while a
thread runs are merged (the latest wins; in 2D its plane is shown at once). :meth:`SharpenPanel.sharpen_now` computes
the whole map synchronously (scripts and buttons).
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

__all__ = ["SharpenPanel", "SharpenedLayerData", "SHARPENED_NAME"]

SHARPENED_NAME = "sharpened"
MASK_COLOURS = {"spherical": "blue", "loose": "magenta", "tight": "green"}


def _contrast(vol: np.ndarray) -> tuple[float, float]:
    """Display range of a map from a subsample (a few ms at 256³)."""
    step = max(1, vol.shape[0] // 64)
    return _percentile_range(vol[::step, ::step, ::step])


def _percentile_range(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [0.1, 99.9])
    return float(lo), float(hi if hi > lo else lo + 1)


def _shown_contrast(m) -> tuple[float, float] | None:
    """Display range of what napari just asked ``m`` for: the whole map's subsample once it is
    computed, else the planes shown (None: nothing was asked for, e.g. a hidden layer)."""
    if m.computed:
        return _contrast(m.full())
    if m.last_planes is not None:
        return _percentile_range(m.last_planes[2])
    return None


class SharpenedLayerData:
    """The sharpened layer's data: the :class:`~napari_cryodiag.compute.maps.sharpen.SharpenedMap`
    of the B shown (``.map``), swapped at each B while the layer keeps this object (napari then
    refreshes the slice and keeps its dimensions). Array-like, read-only: ``shape``, ``dtype``,
    ``ndim``, indexing (a key that fixes one axis costs one plane), ``np.asarray`` and :meth:`copy`
    (the whole map)."""

    def __init__(self, sharpened_map):
        self.map = sharpened_map

    shape = property(lambda self: self.map.shape)
    dtype = property(lambda self: self.map.dtype)
    ndim = property(lambda self: self.map.ndim)
    size = property(lambda self: self.map.size)
    nbytes = property(lambda self: self.map.nbytes)

    def __len__(self):
        return len(self.map)

    def __getitem__(self, key):
        return self.map[key]

    def __array__(self, dtype=None, copy=None):
        return self.map.__array__(dtype, copy)

    def copy(self) -> np.ndarray:
        """The whole map, as a new array."""
        return np.array(self.map)

    def __repr__(self):
        return f"SharpenedLayerData({self.map!r})"


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
        self.shown_map = None  #: the SharpenedMap the layer shows (or would show)
        self._worker = None
        self._pending: SharpenOptions | None = None
        self._pending_map = None  #: the pending options' map, already shown (2D, while a thread ran)
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
        if s.sharpened_map is not None or self._layer_alive() is not None:
            self.request()

    # ------------------------------------------------------------------ sharpening
    def options(self) -> SharpenOptions:
        return self.form.value

    def request(self, options: SharpenOptions | None = None) -> None:
        """Sharpen with ``options`` (default: the form's): in 2D the layer's plane at once, the
        whole map and the Guinier curve (when needed) in a thread; requests that arrive while one
        runs are merged into one (the latest)."""
        self._pending = options or self.options()
        self._pending_map = None
        self.plots.sharpening()
        if self._worker is None:
            self._start()
        elif self._shows_planes():
            # the thread works for an older B: show this B's plane now, its curve afterwards
            self._pending_map = self._lazy(self._pending)
            if self._pending_map is not None:
                self._show(self._pending_map)

    def _shows_planes(self) -> bool:
        """The sharpened layer needs planes only (2D display, or hidden), not the whole map."""
        layer = self._layer_alive()
        return layer is not None and (self.dock.viewer.dims.ndisplay == 2 or not layer.visible)

    def _lazy(self, opts):
        """The map for ``opts``, not computed (GUI thread: sets the session's B); None on error."""
        try:
            return self.session.validation.sharpen(opts, lazy=True)
        except CryodiagInputError as err:
            self._failed(err)
            return None

    def _start(self):
        opts, m, self._pending, self._pending_map = self._pending, self._pending_map, None, None
        v = self.session.validation
        shown = m is not None
        if m is None:
            m = self._lazy(opts)
            if m is None:
                return
        need_curve = self.plots.needs_sharpened_curve
        need_full = self.plots.needs_sharpened_map or (self._layer_alive() is not None and not self._shows_planes())
        # the sharpened curves' moments, made once in the thread: the Guinier view, when shown,
        # draws its curve at once instead of making them on the GUI thread
        prepare = not v.session.filtered_guinier_ready
        if not need_full and not shown:
            self._show(m)
        if not (need_full or need_curve or prepare):
            return

        def job():
            # only m is read and computed here: the GUI thread may set the next B meanwhile
            if need_full:
                m.full()
                yield m
            if prepare and not need_curve:
                v.session.filtered_guinier()
            return m, (v.sharpened_curve_of(m) if need_curve else None)

        w = thread_worker(job, start_thread=False, ignore_errors=True)()
        w.yielded.connect(self._computed_map)
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
            self._pending = self._pending_map = None

    def _failed(self, err):
        self._pending = self._pending_map = None
        self.note.value = str(err) if isinstance(err, CryodiagInputError) else f"{type(err).__name__}: {err}"
        self.dock.report(self.note.value, "warning")

    def _computed_map(self, m):
        """The thread computed ``m`` whole: show it, unless a newer B is shown already (its plane,
        in 2D, while the thread ran)."""
        if self._pending_map is None:
            self._show(m)

    def _curve_ready(self, result):
        m, curve = result
        if curve is not None:
            # the curve of the shown map: the figure is redrawn once B rests; of an older one
            # (the next B is shown, its curve comes next): blitted only
            self.plots.sharpened_changed(curve, settle=m is self.shown_map and self._pending is None)

    def _show(self, m):
        """Show the sharpened map ``m`` (a SharpenedMap): the layer's data object stays and points
        at ``m``, and the layer refreshes (napari asks for the plane it shows; no new layer data,
        so napari does not recompute the viewer's dimensions, and no text changes size: a relayout
        of the window costs more than the map)."""
        layer = self._layer_alive()
        if layer is not None:
            data = layer.data
            m.last_planes = None
            if isinstance(data, SharpenedLayerData) and data.shape == m.shape:
                data.map = m
                layer.refresh()
            else:
                layer.data = SharpenedLayerData(m)
            clim = _shown_contrast(m)
            if clim is not None:
                layer.contrast_limits = clim
            layer.metadata.setdefault("cryodiag", {})["bfactor_A2"] = m.bfactor_A2
        self.shown_map = m
        self.shown_bfactor_A2 = m.bfactor_A2
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
        """Sharpen in this thread (after any running request): the whole map, shown; returns it."""
        self.wait()
        m = self.session.validation.sharpen(options or self.options(), lazy=True)
        vol = m.full()
        self._show(m)
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
                SharpenedLayerData(self.shown_map), name=SHARPENED_NAME, scale=(apix,) * 3, contrast_limits=_contrast(vol),
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
