"""The layering of the package (docs/ARCHITECTURE.md), checked on the source.

- No import cycle among the package's modules, counting imports inside functions (they hide
  cycles rather than remove them).
- The pure core (``io``, ``compute``, ``workflows``, ``plots``, ``simulate``, ``cli``) never imports
  Qt, napari or magicgui: checked on the source and, in a fresh interpreter, on what importing the
  whole core actually loads.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG_DIR = Path(__file__).resolve().parents[1] / "src" / "napari_cryodiag"
PKG = "napari_cryodiag"
CORE = ("io", "compute", "workflows", "plots", "simulate", "cli")
GUI_ROOTS = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt", "vispy")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG_DIR.rglob("*.py"):
        rel = path.relative_to(PKG_DIR).with_suffix("")
        parts = [PKG, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules imported anywhere in ``path`` (top level or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            # the deepest package module that the import names
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _third_party(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _graph():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = _imports(name, path, modules)
        # importing a submodule runs its parent packages' __init__ (not a cycle by itself)
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def test_no_import_cycles():
    graph = _graph()
    cycles, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("sub", CORE)
def test_core_source_imports_no_gui(sub):
    bad = {}
    for path in (PKG_DIR / sub).rglob("*.py"):
        gui = _third_party(path) & set(GUI_ROOTS)
        if gui:
            bad[str(path.relative_to(PKG_DIR))] = sorted(gui)
    assert not bad, f"the core imports GUI packages: {bad}"


def test_core_imports_no_gui_in_a_fresh_process():
    mods = [m for m in _modules() if m.split(".")[1:2] and m.split(".")[1] in CORE and not m.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for m in {sorted(mods)!r}:\n"
        "    importlib.import_module(m)\n"
        f"gui = sorted(m for m in sys.modules if m.split('.')[0] in {GUI_ROOTS!r})\n"
        "print(','.join(gui))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing the core loaded GUI modules: {out.stdout.strip()}"


#: calls that read or write files (``Path.read_text()`` and friends are caught by attribute name)
FILE_IO_CALLS = {"open", "load", "save", "savez", "fromfile", "tofile", "loadtxt", "savetxt", "genfromtxt",
                 "read_text", "write_text", "read_bytes", "write_bytes", "is_file", "exists", "listdir", "scandir",
                 "glob", "rglob", "memmap", "read_csv", "to_csv", "read_pickle", "to_pickle"}
FILE_IO_MODULES = {"mrcfile", "starfile", "glob", "pathlib", "shutil", "tempfile", "pickle", "h5py", "tifffile"}


def _file_io_in(path: Path) -> list[str]:
    """Where ``path`` does file I/O: calls of FILE_IO_CALLS (as a name or an attribute), ``os.path``,
    imports of FILE_IO_MODULES and imports of the package's ``io`` layer."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(PKG_DIR)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in FILE_IO_CALLS:
                found.append(f"{where} {name}()")
        elif isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                and node.value.id == "os":
            found.append(f"{where} os.path")
        elif isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in FILE_IO_MODULES
                      or a.name.startswith(f"{PKG}.io")]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if (not node.level and (mod.split(".")[0] in FILE_IO_MODULES or mod.startswith(f"{PKG}.io"))) or \
                    (node.level and (mod == "io" or mod.startswith("io."))):
                found.append(f"{where} from {'.' * node.level}{mod} import ...")
    return found


def test_compute_does_no_file_io():
    """``compute`` is arrays (and tables) in, arrays out: the files are read and written by ``io``,
    called from ``workflows`` (docs/ARCHITECTURE.md)."""
    found = [hit for path in sorted((PKG_DIR / "compute").rglob("*.py")) for hit in _file_io_in(path)]
    assert not found, "file I/O in compute:\n" + "\n".join(found)


def test_the_file_io_check_finds_file_io(tmp_path):
    """The check above on a module that does each kind of file I/O once."""
    global PKG_DIR
    pkg = tmp_path / PKG
    (pkg / "compute").mkdir(parents=True)
    bad = pkg / "compute" / "bad.py"
    bad.write_text("import numpy as np\nimport mrcfile\nfrom ..io.mrc import read_map\nfrom pathlib import Path\n"
                   "import os\n\n\ndef f(p):\n    a = np.load(p)\n    with open(p) as fh:\n        pass\n"
                   "    return os.path.isfile(p), Path(p).read_text()\n")
    saved, PKG_DIR = PKG_DIR, pkg
    try:
        found = _file_io_in(bad)
    finally:
        PKG_DIR = saved
    text = "\n".join(found)
    for what in ("import mrcfile", "from ..io.mrc", "from pathlib", "load()", "open()", "os.path", "read_text()"):
        assert what in text, (what, text)


def test_widgets_never_import_cli():
    graph = _graph()
    bad = {m: sorted(d for d in deps if d.startswith(f"{PKG}.cli")) for m, deps in graph.items()
           if m.startswith(f"{PKG}.widgets")}
    assert not {m: d for m, d in bad.items() if d}, bad


def test_cli_keeps_no_mutable_module_state():
    """Nothing at module level of ``cli`` that a run could change for the next one (lists, dicts,
    sets, or names rebound with ``global``): each subcommand builds its own output plan."""
    found = []
    for path in sorted((PKG_DIR / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)) or (
                    isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id in ("list", "dict", "set", "defaultdict")):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names != ["__all__"]:
                    found.append(f"{path.name}:{node.lineno} {names}")
        found += [f"{path.name}:{n.lineno} global {n.names}" for n in ast.walk(tree) if isinstance(n, ast.Global)]
    assert not found, f"mutable module state in cli: {found}"


def test_cli_command_modules_cover_every_command():
    """``cryodiag CMD`` builds the parser of CMD's module alone (COMMAND_MODULES): every command of
    the whole parser is there, under the module that registers it, with the same arguments."""
    import argparse

    from napari_cryodiag import cli

    def commands(parser):
        acts = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return acts[0].choices

    full = commands(cli.build_parser())
    mapping = dict(cli.COMMAND_MODULES)
    assert set(mapping) == set(full)
    for cmd, module in cli.COMMAND_MODULES:
        alone = commands(cli.build_parser((module,)))
        assert cmd in alone
        assert alone[cmd].format_help() == full[cmd].format_help()
        assert cli._parser_for([cmd, "--help"]) is not None
