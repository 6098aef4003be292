"""Particle-set diagnostics: class posteriors and ESS, class averages from half sets and their
FRC, viewing directions, Fourier sampling and posterior precision, SCF/SCF*, the conical FSC and
cFAR, and the noise model from residuals against projections."""

from .cfar import ConicalFSC, conical_fsc
from .class_averages import ClassAverages, iter_class_averages, compute_class_averages
from .classes import class_statistics, ess_from_posteriors, posterior_histograms, summarise_classes
from .fourier_sampling import DirectionalMaps, directional_distributions, posterior_precision_weights
from .frc import FRCResult, frc, frc_result
from .noise_model import NoiseModel, estimate_noise_model, iter_noise_model, relion_noise_spectra
from .orientations import (
    BinnedDirections,
    DirectionGrid,
    ViewingHistogram,
    bin_directions,
    viewing_direction_histogram,
    viewing_directions,
    viewing_directions_from_table,
)
from .scf import SCFResult, sampling_compensation_factor

__all__ = [
    "ConicalFSC", "conical_fsc",
    "ClassAverages", "iter_class_averages", "compute_class_averages",
    "class_statistics", "ess_from_posteriors", "posterior_histograms", "summarise_classes",
    "DirectionalMaps", "directional_distributions", "posterior_precision_weights",
    "FRCResult", "frc", "frc_result",
    "NoiseModel", "estimate_noise_model", "iter_noise_model", "relion_noise_spectra",
    "BinnedDirections", "DirectionGrid", "ViewingHistogram", "bin_directions",
    "viewing_direction_histogram", "viewing_directions", "viewing_directions_from_table",
    "SCFResult", "sampling_compensation_factor",
]
