"""Inspect Picks: the NCC × power histogram with live thresholds, calibration against defocus,
per-micrograph table, scoring and picking jobs, and export of the kept picks.

The dock (:mod:`.dock`) holds one :class:`~.session.PickSession` (the state) and five panels, one
per tab, each in its own module.
"""

from .dock import InspectPicksWidget

__all__ = ["InspectPicksWidget"]
