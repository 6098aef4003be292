"""File formats: MRC, RELION STAR, cryoSPARC .cs, crYOLO .cbox.

Readers return plain numpy arrays and pandas tables with explicit units; see
docs/ARCHITECTURE.md for the pick-table columns and coordinate conventions.

``io.open_path(path_or_paths)`` recognises what a path is from a bounded look and parses it
once, returning a small typed result (:mod:`napari_cryodiag.io.opened`).
"""

__all__ = ["open_path"]


def __getattr__(name):
    if name == "open_path":  # imported on use: `import napari_cryodiag.io.paths` stays light
        from .opened import open_path

        return open_path
    raise AttributeError(name)
