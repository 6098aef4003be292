"""The npe2 manifest is valid and every command it names can be imported."""

import importlib
from pathlib import Path

import npe2

import napari_cryodiag

MANIFEST = Path(napari_cryodiag.__file__).with_name("napari.yaml")


def test_manifest_is_valid_and_top_level_link_points_to_it():
    m = npe2.PluginManifest.from_file(MANIFEST)
    assert m.name == "napari-cryodiag"
    top = Path(__file__).resolve().parents[1] / "napari.yaml"
    assert top.resolve() == MANIFEST.resolve()


def test_every_command_resolves_to_a_callable():
    m = npe2.PluginManifest.from_file(MANIFEST)
    for cmd in m.contributions.commands:
        module, _, attr = cmd.python_name.partition(":")
        obj = getattr(importlib.import_module(module), attr)
        assert callable(obj), cmd.id


def test_plugin_is_discoverable_by_npe2():
    pm = npe2.PluginManager.instance()
    pm.discover()
    assert pm.get_manifest("napari-cryodiag").name == "napari-cryodiag"
    widgets = {w.display_name for w in pm.iter_widgets() if w.command.startswith("napari-cryodiag")}
    assert widgets == {"Inspect Picks", "Map validation", "Classes", "Orientations", "Noise model", "Micrograph display",
                       "Project"}
