"""Numerics: numpy, scipy and dask only. Never imports Qt or napari."""
