"""napari dock widgets: thin wiring of compute + plots to layers."""
