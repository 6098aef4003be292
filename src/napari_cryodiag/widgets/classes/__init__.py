"""Classes: 2D class diagnostics (counts, best-class probability and ESS histograms, half-set
FRC per class), the class averages as thumbnails and as a layer, and the export of the particles
of selected classes.

The dock (:mod:`.dock`) holds one :class:`~.session.ClassesSession` (the state) and its panels,
each in its own module; the numbers come from :mod:`napari_cryodiag.workflows.classes`.
"""

from .dock import LABELS_NAME, LAYER_NAME, ClassesWidget

__all__ = ["ClassesWidget", "LAYER_NAME", "LABELS_NAME"]
