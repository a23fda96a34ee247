"""``zeroskip.driver`` is a tree, not a tangle: no module imports another that (directly or
through others) imports it back, counting the imports inside functions too; each module
imports on its own in a fresh interpreter, with numpy as its only third-party import (and
pynq for the board backend, where pynq is installed)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).resolve().parents[1] / "driver"
PKG = "zeroskip.driver"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(DRIVER.rglob("*.py")):
        rel = p.relative_to(DRIVER).with_suffix("")
        parts = [x for x in rel.parts if x != "__init__"]
        out[".".join([PKG, *parts])] = p
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            cands = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        for c in cands:
            if c in known and c != name:
                deps.add(c)
    return deps


def test_no_import_cycles():
    mods = _modules()
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    # a package's __init__ re-exporting its children is not a cycle with them
    for m in graph:
        graph[m] = {d for d in graph[m] if not (m.startswith(d + ".") and mods[d].name == "__init__.py")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cyc = path[path.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cyc))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert "zeroskip.driver.backends" in graph["zeroskip.driver.runner"]
    assert not any(d.startswith("zeroskip.driver.backends.") for d in graph["zeroskip.driver.driver"]
                   if d != "zeroskip.driver.backends.base"), "the driver must not import a backend"


_PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'cocotb', 'pynq', 'sklearn'})
print(','.join(bad))
"""


@pytest.mark.parametrize("module", sorted(m for m in _modules() if m != "zeroskip.driver.sim.server"))
def test_module_imports_alone_numpy_only(module):
    r = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    pulled = set(filter(None, r.stdout.strip().split(",")))
    allowed = {"pynq"} if module == "zeroskip.driver.backends.board" else set()   # the board's own API
    assert pulled <= allowed, f"{module} pulls in {sorted(pulled - allowed)}"
