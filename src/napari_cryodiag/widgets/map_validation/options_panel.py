"""Map validation, options: four short forms in tabs instead of one long form.

===========  ==============================================================================
tab          form (magicgui, from the option dataclasses)
===========  ==============================================================================
FSC          phase randomisation: rule, explicit resolution, wait shells, seed
             (:class:`~napari_cryodiag.workflows.maps.MapValidationOptions`)
Masks        the automatic masks: threshold, low-pass, loose/tight edges, sphere
             (the mask fields of ``MapValidationOptions``, i.e. ``compute.maps.masks.MaskParams``)
Guinier      the B-factor fit window and the structure factor on the y axis
Diagnosis    the thresholds of the flags (:class:`~napari_cryodiag.compute.maps.diagnosis.DiagnosisParams`)
===========  ==============================================================================

:meth:`OptionsPanel.options` merges the first three into one ``MapValidationOptions``.
"""

from __future__ import annotations

import dataclasses

from qtpy.QtWidgets import QTabWidget

from ...compute.maps.diagnosis import DiagnosisParams
from ...workflows.maps import MapValidationOptions
from .._dock import page
from .._forms import options_form

__all__ = ["OptionsPanel", "FSC_FIELDS", "MASK_FIELDS", "GUINIER_FIELDS"]

FSC_FIELDS = ("randomise_from", "randomise_from_A", "wait_shells", "seed")
MASK_FIELDS = ("threshold_fraction", "mask_lowpass_A", "loose_dilate_A", "loose_soft_A", "tight_dilate_A",
               "tight_soft_A", "sphere_inner_fraction")
GUINIER_FIELDS = ("guinier_window", "guinier_low_A", "guinier_high_A", "guinier_quantity")

#: labels and ranges of the diagnosis thresholds (the compute dataclass carries none)
DIAGNOSIS_FIELDS = {
    "tail_fraction": {"label": "tail: outer fraction of shells", "min": 0.05, "max": 0.5, "step": 0.05},
    "tail_min_fsc": {"label": "tail: mean no-mask FSC above", "min": 0.0, "max": 0.5, "step": 0.01},
    "tail_positive_fraction": {"label": "tail: share above 3σ", "min": 0.5, "max": 1.0, "step": 0.05},
    "oscillation_prominence": {"label": "oscillation: dip depth", "min": 0.01, "max": 1.0, "step": 0.05},
    "oscillation_min_dips": {"label": "oscillation: dips", "min": 1, "max": 20},
    "dip_prominence": {"label": "micelle dip: depth", "min": 0.01, "max": 1.0, "step": 0.05},
    "mask_deviation": {"label": "mask: masked − corrected", "min": 0.01, "max": 1.0, "step": 0.05},
    "mask_deviation_shells": {"label": "mask: over shells", "min": 1, "max": 50},
    "skip_after_randomisation": {"label": "skip after randomisation", "min": 0, "max": 20},
    "randomised_max": {"label": "randomised FSC max", "tooltip": "the phase-randomised FSC at the resolution must stay below this", "min": 0.0, "max": 1.0, "step": 0.01},
    "unmasked_margin": {"label": "unmasked reaches further by", "min": 0.0, "max": 0.5, "step": 0.01},
}


class OptionsPanel:
    def __init__(self, dock):
        self.dock = dock
        self.fsc = options_form(MapValidationOptions, include=FSC_FIELDS)
        self.masks = options_form(MapValidationOptions, include=MASK_FIELDS)
        self.guinier = options_form(MapValidationOptions, include=GUINIER_FIELDS)
        self.diagnosis = options_form(DiagnosisParams, include=tuple(DIAGNOSIS_FIELDS), overrides=DIAGNOSIS_FIELDS)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for form, name in ((self.fsc, "FSC"), (self.masks, "Masks"), (self.guinier, "Guinier"),
                           (self.diagnosis, "Diagnosis")):
            self.tabs.addTab(page(form), name)
        self.fsc.randomise_from.changed.connect(self._enable)
        self.guinier.guinier_window.changed.connect(self._enable)
        self._enable()

    def _enable(self, *_):
        self.fsc.randomise_from_A.enabled = self.fsc.randomise_from.value == "explicit"
        explicit = self.guinier.guinier_window.value == "explicit"
        self.guinier.guinier_low_A.enabled = explicit
        self.guinier.guinier_high_A.enabled = explicit

    def options(self) -> MapValidationOptions:
        """The options of the three forms as one ``MapValidationOptions``."""
        return MapValidationOptions(**self.fsc.field_values(), **self.masks.field_values(),
                                    **self.guinier.field_values())

    def set_options(self, options: MapValidationOptions) -> None:
        vals = dataclasses.asdict(options)
        for form, names in ((self.fsc, FSC_FIELDS), (self.masks, MASK_FIELDS), (self.guinier, GUINIER_FIELDS)):
            form.set_value(**{k: vals[k] for k in names})

    def diagnosis_params(self) -> DiagnosisParams:
        return self.diagnosis.value
