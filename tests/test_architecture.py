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
