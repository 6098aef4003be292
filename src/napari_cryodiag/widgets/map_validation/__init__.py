"""Map validation: FSC curves with automatic masks and the corrected curve, resolution, diagnosis,
Guinier B-factor, what-if sharpening, the map views and the exports of two half maps; a RELION
postprocess.star's curves.

The dock (:mod:`.dock`) holds one :class:`~.session.MapSession` (the state) and its panels, each
in its own module; the numbers come from :mod:`napari_cryodiag.workflows.maps`.
"""

from .dock import MapValidationWidget

__all__ = ["MapValidationWidget"]
