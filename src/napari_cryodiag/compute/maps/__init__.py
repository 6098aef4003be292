"""Map validation: the FSC family (no mask, spherical, loose, tight, user mask, phase-randomised
and corrected curves) and resolutions, what the curve's shape says, Guinier plot and B-factor,
sharpening, and slices / projections / Fourier slices of a volume."""

from .diagnosis import DiagnosisParams, Flag, diagnose
from .filtered_guinier import FilteredGuinier
from .fsc import FSCResult, HalfMaps, Resolution, check_half_maps, corrected_fsc, fsc, fsc_family, iter_fsc_family, resolution_at
from .guinier import GuinierCurve, GuinierFit, fit_guinier, guinier_curve, guinier_window
from .masks import MaskParams, auto_masks, check_user_mask, spherical_mask
from .phase_randomisation import randomise_phases
from .sharpen import SharpenParams, Sharpener, sharpen_map
from .views import all_views, central_slices, fourier_slices, projections

__all__ = [
    "DiagnosisParams", "Flag", "diagnose",
    "FilteredGuinier",
    "FSCResult", "HalfMaps", "Resolution", "check_half_maps", "corrected_fsc", "fsc", "fsc_family",
    "iter_fsc_family", "resolution_at",
    "GuinierCurve", "GuinierFit", "fit_guinier", "guinier_curve", "guinier_window",
    "MaskParams", "auto_masks", "check_user_mask", "spherical_mask",
    "randomise_phases",
    "SharpenParams", "Sharpener", "sharpen_map",
    "all_views", "central_slices", "fourier_slices", "projections",
]
