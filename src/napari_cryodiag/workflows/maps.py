"""Map validation end to end: half maps (and a mask) from files or arrays, the FSC family,
diagnosis, Guinier fit and sharpening, the figures, and the exports (CSV, EMDB XML,
``postprocess.star``, JSON).

Called by ``cryodiag fsc | guinier | sharpen | views`` and by the Map validation widget:

- :func:`load_half_maps` reads/checks the inputs (paths or arrays) -> :class:`MapInputs`;
- :class:`MapValidation` keeps :class:`~napari_cryodiag.compute.maps.sharpen.ValidationSession`
  (the "what-if" cache: changing B re-filters only; changing the mask recomputes only the
  masks' transforms); :meth:`MapValidation.iter_compute` is the worker's ``(done, total)``
  generator, with the options of :class:`MapValidationOptions`; :meth:`MapValidation.sharpen`
  takes :class:`SharpenOptions`;
- :func:`plan_exports` / :meth:`MapValidation.export` write the figures and files through an
  :class:`~napari_cryodiag.io.outputs.OutputPlan`;
- :func:`guinier_of_map` (one map, with the FSC from a file or from half maps) and
  :func:`map_views` (slices, projections, Fourier slices) are the other two subcommands.

Units: voxel sizes in Å, frequencies in 1/Å, B-factors in Å² (``sharpening_bfactor_A2`` has
RELION's sign: negative sharpens).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from ..compute.maps.diagnosis import DiagnosisParams, diagnose
from ..compute.maps.fsc import MEMORY_FACTOR, check_cubic, check_half_maps, check_not_identical, fsc_result_from_relion
from ..compute.maps.guinier import fit_guinier, guinier_curve_of_map, guinier_window, relion_last_weighted_shell
from ..compute.maps.masks import MaskParams, check_user_mask
from ..compute.maps.sharpen import SharpenParams, ValidationSession
from ..compute.maps.views import all_views
from ..compute.progress import run_steps
from ..errors import CryodiagInputError, about

__all__ = [
    "MapValidationOptions", "SharpenOptions", "MapInputs", "MapValidation", "VIEWS",
    "read_volume", "load_half_maps", "plan_exports", "draw_view",
    "read_fsc_curve", "guinier_of_map", "map_views",
]

#: the views of a validation (figure stems: lower case, spaces as underscores)
VIEWS = ("FSC", "Guinier", "slices", "projections", "Fourier slices")


@dataclass
class MapValidationOptions:
    """Options of the FSC family, the automatic masks and the Guinier fit (cryoSPARC presets)."""

    randomise_from: Annotated[Literal["tight75", "relion", "nomask143", "explicit"], {
        "label": "phase randomisation from",
        "tooltip": "tight75: 75% of the tight 0.143 frequency; relion: unmasked FSC < 0.8; "
                   "nomask143: no-mask FSC < 0.143; explicit: the resolution below"}] = "tight75"
    randomise_from_A: Annotated[float, {"min": 0.5, "max": 1000.0, "step": 0.5,
                                        "label": "randomise from (Å)",
                                        "tooltip": "the resolution of the explicit rule"}] = 8.0
    wait_shells: Annotated[int, {"min": 0, "max": 10, "label": "wait shells",
                                 "tooltip": "shells after the randomisation shell that keep the masked value "
                                            "(RELION: 2)"}] = 0
    seed: Annotated[int, {"min": 0, "max": 2**31 - 1, "label": "random seed"}] = 0
    threshold_fraction: Annotated[float, {"min": 0.01, "max": 0.99, "step": 0.05,
                                          "label": "threshold (× max)",
                                          "tooltip": "of the low-passed half-map average"}] = 0.5
    mask_lowpass_A: Annotated[float, {"min": 0.0, "max": 100.0, "label": "low-pass (Å)",
                                      "special": "none"}] = 15.0
    loose_dilate_A: Annotated[float, {"min": 0.0, "max": 200.0, "label": "loose mask: 1 within (Å)"}] = 25.0
    loose_soft_A: Annotated[float, {"min": 0.0, "max": 200.0, "label": "loose mask: 0 from (Å)"}] = 40.0
    tight_dilate_A: Annotated[float, {"min": 0.0, "max": 200.0, "label": "tight mask: 1 within (Å)"}] = 6.0
    tight_soft_A: Annotated[float, {"min": 0.0, "max": 200.0, "label": "tight mask: 0 from (Å)"}] = 12.0
    sphere_inner_fraction: Annotated[float, {"min": 0.1, "max": 1.0, "step": 0.05,
                                             "label": "sphere inner/outer radius"}] = 0.85
    guinier_window: Annotated[Literal["fsc143", "relion", "explicit"], {
        "label": "Guinier fit window",
        "tooltip": "fsc143: 10 Å to the 0.143 resolution; relion: 10 Å to where FSC weighting zeroes "
                   "shells; explicit: the two resolutions below"}] = "fsc143"
    guinier_low_A: Annotated[float, {"min": 0.5, "max": 1000.0, "label": "window from (Å)",
                                     "tooltip": "low-resolution end of the explicit window"}] = 10.0
    guinier_high_A: Annotated[float, {"min": 0.5, "max": 1000.0, "label": "window to (Å)",
                                      "tooltip": "high-resolution end of the explicit window"}] = 4.0
    guinier_quantity: Annotated[Literal["amplitude2", "amplitude"], {
        "label": "Guinier y", "tooltip": "ln mean |F|² (cryoSPARC) or ln mean |F| (RELION)"}] = "amplitude2"

    def mask_params(self) -> MaskParams:
        return MaskParams(sphere_inner_fraction=self.sphere_inner_fraction, threshold_fraction=self.threshold_fraction,
                          lowpass_A=self.mask_lowpass_A, loose_dilate_A=self.loose_dilate_A,
                          loose_soft_A=self.loose_soft_A, tight_dilate_A=self.tight_dilate_A,
                          tight_soft_A=self.tight_soft_A)

    def randomise_rule(self):
        """The rule of :func:`~napari_cryodiag.compute.maps.fsc.randomisation_shell` (a name or Å)."""
        return float(self.randomise_from_A) if self.randomise_from == "explicit" else self.randomise_from

    def window_rule(self):
        """The rule of :func:`~napari_cryodiag.compute.maps.guinier.guinier_window`."""
        if self.guinier_window == "explicit":
            return (float(self.guinier_low_A), float(self.guinier_high_A))
        return self.guinier_window

    def session_kwargs(self) -> dict:
        """Keyword arguments of :meth:`ValidationSession.iter_compute` (without the mask)."""
        return dict(mask_params=self.mask_params(), randomise_from=self.randomise_rule(),
                    wait_shells=int(self.wait_shells), seed=int(self.seed),
                    guinier_window_rule=self.window_rule(), guinier_quantity=self.guinier_quantity)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SharpenOptions:
    """Sharpening of the half-map average (REFERENCE.md "Guinier plot, B-factor, sharpening")."""

    use_fitted_bfactor: Annotated[bool, {"label": "use the fitted B-factor"}] = True
    bfactor_A2: Annotated[float, {"min": -1000.0, "max": 1000.0, "step": 5.0, "label": "B-factor (Å²)",
                                  "tooltip": "sharpening B (RELION sign: negative sharpens)"}] = 0.0
    fsc_weighting: Annotated[bool, {"label": "FSC weighting √(2F/(1+F))"}] = True
    lowpass_A: Annotated[float, {"min": 0.0, "max": 100.0, "label": "low-pass (Å)", "special": "none"}] = 0.0
    apply_mask: Annotated[bool, {"label": "multiply by the mask"}] = False

    def params(self) -> SharpenParams:
        return SharpenParams(bfactor_A2=None if self.use_fitted_bfactor else float(self.bfactor_A2),
                             fsc_weighting=self.fsc_weighting, lowpass_A=self.lowpass_A or None,
                             apply_mask=self.apply_mask)


# --------------------------------------------------------------------------- inputs


def read_volume(path, memory_factor: float = 1.0, *, mmap: bool = False):
    """``(data [z, y, x] float32, voxel_size_zyx_A or None, path)`` of a 3D map file (refused when
    ``memory_factor`` float32 copies of it would not fit in the available memory). ``mmap``: a
    float32 map comes back as a read-only memory map of the file (:func:`~..io.mrc.read_map`)."""
    from ..io.mrc import read_map

    m = read_map(path, memory_factor=memory_factor, mmap=mmap)
    if m.data.ndim != 3:
        raise CryodiagInputError(f"expected a 3D map, got shape {m.data.shape}", path)
    return m.data, m.voxel_size_A, str(path)


@dataclass
class MapInputs:
    """Two half maps on one cubic grid with their voxel size, and an optional user mask.

    ``half1_name``/``half2_name``/``mask_name``: the file or layer each came from (messages and
    exports); ``files``: the files read (an export never replaces them).
    """

    half1: np.ndarray
    half2: np.ndarray
    pixel_size_A: float
    mask: np.ndarray | None = None
    half1_name: str = "half map 1"
    half2_name: str = "half map 2"
    mask_name: str | None = None
    files: list[str] = field(default_factory=list)
    #: the half maps passed :func:`load_half_maps`'s checks (finite among them): not checked again
    checked: bool = False


def _volume(source, voxel_size_A, name, default_name, memory_factor: float = 1.0):
    if isinstance(source, (str, os.PathLike)):
        # the half maps and the mask are only read: a float32 file is used in place, as a read-only
        # memory map (no copy into new memory, which on a VM whose host reclaims freed memory costs
        # more than reading the file)
        data, vs, path = read_volume(source, memory_factor, mmap=True)
        return data, vs, name or path, [path]
    return source, voxel_size_A, name or default_name, []


def _constant(vol, chunk: int = 1 << 20) -> bool:
    """Whether every value of ``vol`` (finite) equals the first; stops at the first slab that differs
    (a real map: the first)."""
    flat = np.asarray(vol).reshape(-1)
    if not flat.size:
        return False
    first = flat[0]
    return not any(np.any(flat[i:i + chunk] != first) for i in range(0, flat.size, chunk))


def load_half_maps(half1, half2, mask=None, *, pixel_size_A: float | None = None, voxel_sizes_A=(None, None),
                   names=(None, None), mask_name: str | None = None) -> MapInputs:
    """Read (paths) or take (arrays) two half maps and an optional mask, and check them.

    ``voxel_sizes_A``: of array inputs (a file's comes from its header); ``pixel_size_A``
    overrides both. Refused, naming the files: not 3D, different grids or voxel sizes, non-cubic,
    NaN/inf, a constant map, an unknown voxel size, a mask off the grid or outside [0, 1].
    """
    h1, v1, n1, f1 = _volume(half1, voxel_sizes_A[0], names[0], "half map 1", MEMORY_FACTOR)
    h2, v2, n2, f2 = _volume(half2, voxel_sizes_A[1], names[1], "half map 2")
    # a map read from a file has no NaN/inf (read_map refused them): not counted again
    apix = check_half_maps(h1, h2, v1, v2, n1, n2, finite=(bool(f1), bool(f2)))
    check_not_identical(h1, h2, n1, n2)
    for vol, p in ((h1, n1), (h2, n2)):
        if _constant(vol):  # an FSC of it would fail later, without the file's name
            raise CryodiagInputError(f"half map is constant (every voxel is {float(vol.flat[0]):g}): an empty map?", p)
    if pixel_size_A:
        apix = float(pixel_size_A)
    if not apix:
        raise CryodiagInputError("voxel size unknown (0 in the headers, no layer scale); give the voxel size "
                                 "(--pixel-size)", n1)
    m = mname = None
    files = f1 + f2
    if mask is not None:
        data, mv, mname, fm = _volume(mask, None, mask_name, "mask")
        m = check_user_mask(data, h1.shape, mname, voxel_size_A=mv, expected_voxel_size_A=apix)
        files += fm
    return MapInputs(h1, h2, float(apix), m, n1, n2, mname, files, checked=True)


# --------------------------------------------------------------------------- the validation


class MapValidation:
    """One pair of half maps through the validation (see the module doc).

    ``session`` is the compute session (FSC family, flags, Guinier fit, sharpening);
    ``sharpened_curve`` the Guinier curve of the last sharpened map's filter applied to the plotted
    curve's map, computed when first asked for (a "what-if" change of B re-filters the map only).
    """

    def __init__(self, inputs: MapInputs, *, lean: bool = False, keep_masks=None):
        """``lean=True`` (a one-shot run: the command line): the session keeps only the masks in
        ``keep_masks`` (and the corrected curve's) and frees the real half maps once only their
        transforms are needed, so ``inputs`` lets go of them here (``view_volume`` has none then)."""
        self.inputs = inputs
        self.session = ValidationSession(inputs.half1, inputs.half2, inputs.pixel_size_A, inputs.half1_name,
                                         inputs.half2_name, lean=lean, keep_masks=keep_masks, checked=inputs.checked)
        if lean:
            inputs.half1 = inputs.half2 = None
        self.options = MapValidationOptions()
        self.diagnosis = DiagnosisParams()
        self._curve = None  #: (SharpenedMap, its Guinier curve)

    def use_mask(self, mask: np.ndarray | None, name: str | None = None) -> None:
        """Change the user mask (checked against the half maps' grid); the same values keep the
        cached FSC curves."""
        if mask is not None:
            mask = check_user_mask(mask, self.inputs.half1.shape, name or "mask")
        old = self.inputs.mask
        if mask is not None and old is not None and np.array_equal(old, mask):
            mask = old  # the session caches by identity
        self.inputs.mask, self.inputs.mask_name = mask, (name if mask is not None else None)

    def iter_compute(self, options: MapValidationOptions | None = None, diagnosis: DiagnosisParams | None = None):
        """Generator: ``(done, total)`` progress; returns the session (only what changed is
        recomputed: new ``diagnosis`` thresholds alone re-diagnose the cached curves)."""
        self.options = options or MapValidationOptions()
        diag = diagnosis or DiagnosisParams()
        with about(f"{self.inputs.half1_name}, {self.inputs.half2_name}"):
            s = yield from self.session.iter_compute(mask=self.inputs.mask, mask_path=self.inputs.mask_name,
                                                     diagnosis=diag, **self.options.session_kwargs())
        if "fsc" not in s.recomputed and diag != self.diagnosis:
            s.flags = diagnose(s.fsc, diag)
            s.recomputed.append("diagnosis")
        self.diagnosis = diag
        return s

    def compute(self, options: MapValidationOptions | None = None, progress=None,
                diagnosis: DiagnosisParams | None = None) -> ValidationSession:
        return run_steps(self.iter_compute(options, diagnosis), progress)

    def sharpen(self, options: SharpenOptions | None = None, *, lazy: bool = False):
        """Sharpened half-map average (float32): one filter and one inverse FFT of the cached
        transform (:attr:`sharpened_curve` follows when asked for). ``lazy=True``: the
        :class:`~napari_cryodiag.compute.maps.sharpen.SharpenedMap`, computed when asked for (a
        plane costs a few ms)."""
        s = self.session
        with about(f"{self.inputs.half1_name}, {self.inputs.half2_name}"):
            return s.sharpen((options or SharpenOptions()).params(), lazy=lazy)

    @property
    def sharpened_curve(self):
        """Guinier curve of the plotted curve's map under the last sharpening filter (None before
        any sharpening); computed once per sharpened map."""
        s = self.session
        if s.sharpened_map is None or s.fsc is None:
            return None
        return self.sharpened_curve_of(s.sharpened_map)

    def sharpened_curve_of(self, sharpened_map):
        """Guinier curve of the plotted curve's map under ``sharpened_map``'s filter (a
        :class:`SharpenedMap` of this session; :meth:`ValidationSession.sharpened_guinier`: no map
        and no FFT per B); the last one is kept. Reads nothing the session changes at a new B, so
        a worker can compute it while the next B is shown."""
        hit = self._curve
        if hit is not None and hit[0] is sharpened_map:
            return hit[1]
        curve = self.session.sharpened_guinier(sharpened_map)
        self._curve = (sharpened_map, curve)
        return curve

    def view_volume(self, which: str = "average") -> tuple[np.ndarray, str]:
        """The volume the slice/projection/Fourier views show: ``average``, ``sharpened``, ``half map 1``."""
        s = self.session
        if which == "sharpened" and s.sharpened_map is not None:
            return s.sharpened, "sharpened map"
        if which == "half map 1":
            return s.halfmaps.half1, "half map 1"
        return s.halfmaps.average(), "half-map average"

    def to_dict(self) -> dict:
        """Numbers for JSON: the inputs, the FSC family, flags, Guinier fit and curve (and sharpening)."""
        d = {"inputs": {"half1": self.inputs.half1_name, "half2": self.inputs.half2_name,
                        "mask": self.inputs.mask_name}}
        d.update(self.session.to_dict())
        return d

    def export(self, plan, *, views=("FSC", "Guinier"), masks: bool = False, json_name: str = "fsc.json",
               view_map: str = "average") -> list[Path]:
        """Write the figures of ``views``, ``fsc.csv``, ``fsc_corrected.xml``, ``postprocess.star``,
        the automatic masks (``masks``) and the JSON through ``plan`` (see :func:`plan_exports`)."""
        from matplotlib.figure import Figure

        from ..io.fsc_export import write_fsc_csv, write_fsc_xml, write_postprocess_star

        s = self.session
        if s.fsc is None:
            raise CryodiagInputError("nothing to export: compute the FSC first")
        r = s.fsc
        written = []
        for view in views:
            margins = EXPORT_MARGINS.get(view)
            fig = Figure(figsize=(7, 5) if view in ("FSC", "Guinier") else (9, 3.4),
                         layout="constrained" if margins is None else None)
            draw_view(self, view, fig, view_map=view_map)
            if margins is not None:
                fig.subplots_adjust(**margins)
            written += plan.save_figure(fig, _stem(view))
        folder = plan.folder
        written.append(write_fsc_csv(folder / "fsc.csv", r, **plan.writer_kwargs(folder / "fsc.csv")))
        p = folder / "fsc_corrected.xml"
        written.append(write_fsc_xml(p, r, **plan.writer_kwargs(p)))
        ga = s.rule_guinier_curve("amplitude")
        fa = fit_guinier(ga, s.guinier.low_A, s.guinier.high_A, s.guinier.window_rule) if s.guinier is not None else None
        p = folder / "postprocess.star"
        written.append(write_postprocess_star(
            p, r, ga, fa, half1_name=self.inputs.half1_name, half2_name=self.inputs.half2_name,
            mask_name=self.inputs.mask_name or "",
            bfactor_used_A2=s.sharpen_used.bfactor_A2 if s.sharpened_map is not None else 0.0, **plan.writer_kwargs(p)))
        if masks:
            from ..io.mrc import write_mrc

            for name, m in r.masks.items():
                if name != "user":
                    p = folder / f"mask_{name}.mrc"
                    written.append(write_mrc(p, m, r.pixel_size_A, **plan.writer_kwargs(p)))
        data = self.to_dict()
        data["files"] = [str(p) for p in written]
        written.append(plan.write_json(json_name, data))
        return written


#: fixed axes margins of the exported FSC and Guinier figures (7 x 5 in): where constrained layout
#: puts the axes (the Guinier plot with room for wider tick labels); saving then needs no layout
#: pass (a dry draw measuring every label, ~0.15 s of a 0.3 s figure)
EXPORT_MARGINS = {
    "FSC": dict(left=0.079, right=0.943, bottom=0.235, top=0.865),  # the legend's rows below the axes
    "Guinier": dict(left=0.105, right=0.972, bottom=0.099, top=0.869),
}


def _stem(view: str) -> str:
    return view.lower().replace(" ", "_")


def plan_exports(plan, *, views=("FSC", "Guinier"), masks: bool = False, json_name: str = "fsc.json") -> None:
    """Add the files of :meth:`MapValidation.export` to ``plan`` (before its check)."""
    for view in views:
        plan.figure(_stem(view))
    for name in ("fsc.csv", "fsc_corrected.xml", "postprocess.star"):
        plan.file(name)
    if masks:
        for name in ("spherical", "loose", "tight"):
            plan.file(f"mask_{name}.mrc", "automatic mask")
    plan.file(json_name, "JSON of the numbers")


def draw_view(validation: MapValidation, view: str, fig, *, view_map: str = "average"):
    """Draw one of :data:`VIEWS` of a computed validation on ``fig``."""
    from ..compute.maps import views as vv
    from ..plots.fsc import plot_fsc
    from ..plots.guinier import plot_guinier
    from ..plots.volume_views import plot_triptych

    s = validation.session
    if view == "FSC":
        return plot_fsc(s.fsc, fig, flags=s.flags)
    if view == "Guinier":
        return plot_guinier(s.guinier_curve, s.guinier, fig,
                            sharpened=validation.sharpened_curve if s.sharpened_map is not None else None)
    vol, label = validation.view_volume(view_map)
    if view == "slices":
        return plot_triptych(vv.central_slices(vol), fig, title=f"central slices, {label}")
    if view == "projections":
        return plot_triptych(vv.projections(vol), fig, title=f"projections (sums), {label}")
    if view == "Fourier slices":
        return plot_triptych(vv.fourier_slices(vol), fig, title=f"Fourier slices log |F|, {label}", cmap="magma")
    raise ValueError(f"unknown view {view!r}; one of {VIEWS}")


# --------------------------------------------------------------------------- FSC from a file


def read_fsc_curve(path) -> tuple[np.ndarray, np.ndarray]:
    """Corrected FSC curve from a postprocess.star or a cryodiag fsc.csv: ``(freq_invA, fsc)``."""
    p = Path(path)
    if p.suffix == ".star":
        from ..io.star import read_postprocess

        t = read_postprocess(p)["fsc"]
        col = "rlnFourierShellCorrelationCorrected"
        if col not in t:
            raise CryodiagInputError(f"no {col} column", path)
        return t["rlnResolution"].to_numpy(float), t[col].to_numpy(float)
    import pandas as pd

    try:
        t = pd.read_csv(p)
    except Exception as err:  # noqa: BLE001
        raise CryodiagInputError(f"cannot read FSC table: {err}", path) from None
    for col in ("fsc_corrected", "fsc_tight", "fsc_user"):
        if col in t:
            return t["frequency_invA"].to_numpy(float), t[col].to_numpy(float)
    raise CryodiagInputError("no fsc_corrected column (expected a cryodiag fsc.csv)", path)


def _window_from_curve(freq, curve, rule: str) -> float:
    """High-resolution end (Å) of the Guinier window from a tabulated FSC curve."""
    if rule == "fsc143":
        below = np.nonzero(curve[1:] < 0.143)[0]
        i = int(below[0]) + 1 if below.size else len(curve) - 1
        if below.size:
            t = (curve[i - 1] - 0.143) / (curve[i - 1] - curve[i])
            return float(1.0 / (freq[i - 1] + t * (freq[i] - freq[i - 1])))
        return float(1.0 / freq[-1])
    return float(1.0 / freq[max(relion_last_weighted_shell(curve), 1)])


def fsc_from_postprocess(path):
    """``(FSCResult, flags)`` of the curves of a RELION postprocess.star."""
    from ..io.star import read_postprocess

    with about(path):
        r = fsc_result_from_relion(read_postprocess(path), path)
        return r, diagnose(r)


def guinier_of_map(map_path, options: MapValidationOptions | None = None, *, pixel_size_A=None, mask=None,
                   fsc=None, half1=None, half2=None) -> dict:
    """Guinier curve and B-factor fit of one map.

    The window's high end is the 0.143 resolution (``fsc143``) or where FSC weighting zeroes
    shells (``relion``) of the FSC from ``fsc`` (postprocess.star or fsc.csv) or from the half
    maps ``half1``/``half2``; an ``explicit`` window needs neither. Returns
    ``{"curve", "fit", "info"}`` (``info``: the numbers for JSON).
    """
    from ..io.mrc import MapData

    opts = options or MapValidationOptions()
    vol, vs, _ = read_volume(map_path, 4.0)
    check_cubic(vol, map_path)
    apix = pixel_size_A or MapData(vol, vs, (0.0,) * 3, map_path).isotropic_voxel_size_A()
    if not apix:
        raise CryodiagInputError("voxel size is 0 (unknown) in the header; give --pixel-size", map_path)
    m = None
    if mask is not None:
        md, mv, _ = read_volume(mask)
        m = check_user_mask(md, vol.shape, mask, voxel_size_A=mv, expected_voxel_size_A=apix)
    window = opts.window_rule()
    info = {"map": str(map_path), "voxel_size_A": apix, "box": int(vol.shape[0])}
    weighting = None  # RELION's window: the FSC-weighted map (curve per shell of this box)
    if isinstance(window, tuple):
        lo, hi, rule = max(window), min(window), "explicit"
    elif half1 and half2:
        v = MapValidation(load_half_maps(half1, half2, mask, pixel_size_A=pixel_size_A), lean=True, keep_masks=())
        s = v.compute(opts)
        weighting = s.weighting_fsc()[0] if window == "relion" else None
        lo, hi, rule = guinier_window(window, weighting if weighting is not None else s.fsc.curves["corrected"],
                                      s.fsc.pixel_size_A, s.fsc.box)
        info["fsc_source"] = "half maps"
        info["resolution_A"] = s.fsc.resolution_A
    elif fsc:
        freq, curve = read_fsc_curve(fsc)
        info["fsc_source"] = str(fsc)
        hi = _window_from_curve(freq, curve, window)
        weighting = curve if window == "relion" else None
        lo, rule = 10.0, window
        info["resolution_A"] = float(hi) if window == "fsc143" else None
    else:
        raise CryodiagInputError("give --fsc, or --half1 and --half2, or an explicit --guinier-window LOW,HIGH")
    if weighting is not None and len(weighting) != vol.shape[0] // 2 + 1:
        raise CryodiagInputError(f"the FSC has {len(weighting)} shells but RELION's FSC weighting of this "
                                 f"{vol.shape[0]}-voxel box needs {vol.shape[0] // 2 + 1}", fsc or half1)
    if weighting is not None:
        info["map_weighting"] = "FSC-weighted as relion_postprocess (sqrt(2F/(1+F)), 0 from F < 1e-4)"
    with about(map_path):
        curve = guinier_curve_of_map(vol, apix, opts.guinier_quantity, mask=m, weighting_fsc=weighting)
        fit = fit_guinier(curve, lo, hi, rule)
    info["guinier"] = dict(fit.to_dict(), x_invA2=curve.x_invA2, y=curve.y)
    return {"curve": curve, "fit": fit, "info": info}


def map_views(map_path) -> dict:
    """Central slices, projections and Fourier slices of a map: ``{"figures": {stem: Figure}, "info",
    "warnings"}`` (a voxel size unknown along an axis: plotted in pixels, with a warning)."""
    from ..plots.volume_views import fourier_spacing, plot_triptych

    vol, vs, _ = read_volume(map_path, 4.0)
    warnings = []
    if vs is not None and not all(v > 0 for v in vs):
        warnings.append(f"{map_path}: voxel size unknown along some axes {vs}; plotted in pixels")
        vs = None
    views = all_views(vol)
    titles = {"slices": "central slices", "projections": "projections (sums)", "fourier": "Fourier slices, log |F|"}
    figures = {}
    for key, title in titles.items():
        spacing = vs
        if key == "fourier" and vs is not None:
            spacing = fourier_spacing(vol.shape, vs)
        figures[f"views_{key}"] = plot_triptych(views[key], title=f"{Path(map_path).name}: {title}",
                                                cmap="magma" if key == "fourier" else "gray", spacing_zyx=spacing)
    info = {"map": str(map_path), "shape": vol.shape, "voxel_size_A": vs,
            "planes": "z-y (x = n//2), z-x (y = n//2), y-x (z = n//2)"}
    return {"figures": figures, "info": info, "warnings": warnings}
