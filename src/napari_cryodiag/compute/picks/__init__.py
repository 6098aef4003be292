"""Pick diagnostics: scores at picks, a blob/template picker, score-vs-defocus calibration,
duplicates, the pre-binned histogram and thresholds (:class:`PickInspection` holds what the
Inspect Picks view computes), and per-micrograph jobs through dask."""

from .calibration import METHODS, MODES, Calibration, fit_calibration, per_micrograph_medians
from .duplicates import KEEP_RULES, DuplicateResult, find_duplicates
from .histogram import PickHistogram
from .jobs import PickJobCancelled, iter_pick_micrographs, iter_score_picks, pick_micrographs, score_picks
from .picker import pick_micrograph
from .scores import ScoreOptions, score_micrograph
from .thresholds import (
    PickInspection,
    SelectionCounts,
    Thresholds,
    default_features,
    micrograph_summary,
    numeric_features,
    suggest_thresholds,
)

__all__ = [
    "METHODS", "MODES", "Calibration", "fit_calibration", "per_micrograph_medians",
    "KEEP_RULES", "DuplicateResult", "find_duplicates",
    "PickHistogram",
    "PickJobCancelled", "iter_pick_micrographs", "iter_score_picks", "pick_micrographs", "score_picks",
    "pick_micrograph", "score_micrograph", "ScoreOptions",
    "PickInspection", "SelectionCounts", "Thresholds", "default_features", "micrograph_summary",
    "numeric_features", "suggest_thresholds",
]
