"""Each diagnostic end to end, called by both the command line and the widgets.

A workflow reads the inputs (paths, or arrays and tables from layers), runs the numerics of
:mod:`napari_cryodiag.compute` (which never touches a file), and writes the figures and
numbers through an :class:`~napari_cryodiag.io.outputs.OutputPlan`. Options are dataclasses
with units in field names and ``typing.Annotated`` metadata (range, label), from which the
widgets build their forms. Long steps are ``iter_<what>`` generators yielding ``(done, total)``.

- :mod:`.maps`: map validation (FSC family, diagnosis, Guinier, sharpening, views, exports)
- :mod:`.classes`: 2D class diagnostics and class selection
- :mod:`.orientations`: viewing directions, sampling, SCF*, cFAR
- :mod:`.noise`: noise model from residuals, RELION noise spectra
- :mod:`.picks`: pick inspection (read, score, calibrate, threshold, curate, dedupe, write, sessions)
- :mod:`.micrographs`: micrographs as the viewer shows them (lazy, binned, low-passed, cached)
"""

import importlib

#: imported on first use, so that one workflow (``cryodiag fsc``) does not load the others' libraries
_LAZY = {"ClassesOptions": ".classes", "MapValidation": ".maps", "MapValidationOptions": ".maps",
         "SharpenOptions": ".maps", "NoiseOptions": ".noise", "OrientationsOptions": ".orientations"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClassesOptions", "MapValidation", "MapValidationOptions", "SharpenOptions", "NoiseOptions",
           "OrientationsOptions"]
