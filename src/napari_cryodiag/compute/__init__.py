"""Numerics: arrays (and pandas tables) in, arrays out. numpy, scipy and dask only: never Qt,
napari or magicgui, and no file I/O (readers and writers are in :mod:`napari_cryodiag.io`, the
end-to-end runs that read and write files in :mod:`napari_cryodiag.workflows`).

Subpackages, by domain, each with a small public API in its ``__init__``:

- :mod:`.picks`      pick scores (NCC, power), picker, calibration against defocus, duplicates,
  the pre-binned histogram, thresholds and :class:`~.picks.PickInspection`, per-micrograph jobs
- :mod:`.maps`       FSC family with masks and the corrected curve, diagnosis, Guinier/B-factor,
  sharpening, volume views
- :mod:`.particles`  class posteriors/ESS, class averages and FRC, viewing directions, Fourier
  sampling, SCF/SCF*, cFAR, noise model

Shared by all three: :mod:`.fourier` (shells, FFT helpers), :mod:`.ctf`, :mod:`.projection`
(Euler/pose conventions, Fourier-slice projector), :mod:`.progress` (the ``(done, total)``
generator pattern of long computations).
"""
