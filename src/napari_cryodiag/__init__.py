"""napari-cryodiag: cryo-EM diagnostics for picks, maps and particle sets.

Layout (see docs/ARCHITECTURE.md):

- ``io``        file formats -> plain arrays / pandas tables with explicit units
- ``compute``   numerics (numpy, scipy, dask); never imports Qt or napari
- ``simulate``  synthetic data with known truth (sample data, tests, benchmarks)
- ``plots``     functions that build matplotlib figures (shared by widgets and CLI)
- ``cli``       the ``cryodiag`` command line
- ``widgets``   napari dock widgets (thin: wiring only)
- ``_reader``, ``_writer``, ``_sample_data``: the npe2 contributions
"""

__version__ = "0.1.0"
