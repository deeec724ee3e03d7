"""The library stands in layers (attention_np's docstring): every import of every module of the
package — at the top of a file or inside a function — is read from its source, and an import
that reaches up, or sideways between the sub-packages of one layer, fails with its file and
line. Also: no import cycles, the kernels import nothing of the library, the library reaches
the kernels only through attention_np/nn/backend.py, no private name crosses a module, and the
internal API the package docstring lists names real functions.

    kernels  ←  nn  ←  the ideas at the root  ←  vision, lm, graph, efficient, viz
             ←  apps, models  ←  exercises
"""
from __future__ import annotations

import ast
import importlib
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.internal_api import internal_api

PACKAGE = Path(__file__).resolve().parent.parent / "attention_np"
# What the kernels may import besides the standard library and themselves. llvmlite is
# Numba's code generator: its extension API (numba.extending.intrinsic) takes llvmlite IR.
KERNEL_DEPENDENCIES = {"numpy", "numba", "llvmlite", "scipy", "threadpoolctl"}
DISPATCH = "attention_np.nn.backend"
BENCH = "attention_np.kernels.bench"
RANK = {"kernels": 0, "nn": 1, "root": 2, "vision": 3, "lm": 3, "graph": 3, "efficient": 3,
        "viz": 3, "apps": 4, "models": 4, "exercises": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def group(module: str) -> str:
    """The layer a module of the package belongs to ('root' for the article's ideas)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"                                     # attention_np/__init__.py
    return parts[1] if parts[1] in RANK else "root"


def resolve(name: str) -> str:
    """The module of the package that an imported dotted name is (or lives in)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str):
    """(line, imported module of the package or top-level third-party name) for each import."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                  # relative: from . import x
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if resolve(full) == full else base


def edges():
    """Every import inside the package: (module, line, imported module of the package)."""
    for module in MODULES:
        for line, name in imports(module):
            if name.split(".")[0] == "attention_np":
                yield module, line, resolve(name)


def allowed(src: str, dst: str) -> bool:
    """Whether module ``src`` may import module ``dst`` (both of the package)."""
    g_src, g_dst = group(src), group(dst)
    if src.startswith(BENCH):
        return True                                         # the bench compares with NumPy
    if g_dst == "kernels" and g_src != "kernels":
        return src == DISPATCH                              # the one door to the kernels
    if g_dst == "facade":
        return g_src == "exercises"
    if g_src == "facade":
        return True
    if g_src == g_dst:
        return True
    return RANK[g_dst] < RANK[g_src] and not (RANK[g_src] == 3 and RANK[g_dst] == 3)


def test_every_import_respects_the_layers():
    bad = [f"{MODULES[src].relative_to(PACKAGE.parent)}:{line}: {group(src)} imports {dst} "
           f"({group(dst)})" for src, line, dst in edges() if not allowed(src, dst)]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_rule_catches_an_upward_import():
    """The checker itself: each kind of violation is caught."""
    assert not allowed("attention_np.nn.layers", "attention_np.transformer")        # up
    assert not allowed("attention_np.lm.model", "attention_np.vision.vit")          # sideways
    assert not allowed("attention_np.transformer", "attention_np.kernels.encoder")  # no door
    assert not allowed("attention_np.kernels.flash", "attention_np.nn.checks")      # not a leaf
    assert not allowed("attention_np.apps.sentiment", "attention_np")               # facade
    assert allowed("attention_np.nn.backend", "attention_np.kernels.encoder")
    assert allowed("attention_np.kernels.bench", "attention_np.self_attention")
    assert allowed("attention_np.exercises.cli", "attention_np")


def test_the_kernels_are_a_leaf():
    """attention_np.kernels (but its bench) imports the standard library, numpy, numba (with
    llvmlite), scipy, threadpoolctl and itself, nothing else."""
    bad = []
    for module in MODULES:
        if group(module) != "kernels" or module.startswith(BENCH):
            continue
        for line, name in imports(module):
            top = name.split(".")[0]
            ours = name.startswith("attention_np.kernels")
            if not ours and top not in KERNEL_DEPENDENCIES and top not in sys.stdlib_module_names:
                bad.append(f"{module}:{line}: {name}")
    assert not bad, "the kernels import outside their leaf:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = defaultdict(set)
    for src, _, dst in edges():
        if dst != src:
            graph[src].add(dst)
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_no_private_name_crosses_a_module():
    """A trusting core that another module calls has an honest public name (``*_core``, listed
    as the internal API); underscore names stay in their module."""
    bad = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("attention_np"):
                bad += [f"{module}:{node.lineno}: {a.name} from {node.module}"
                        for a in node.names if a.name.startswith("_")
                        and resolve(f"{node.module}.{a.name}") != f"{node.module}.{a.name}"]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(internal_api()))
def test_the_internal_api_lists_real_functions(name):
    module, attr = name.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), attr, None)), name


def test_every_cross_module_core_is_listed():
    """Every ``*_core`` function one module of the library imports from another is in the listed
    internal API (the kernels' own cores, e.g. flash.forward_core, stay inside their leaf)."""
    listed = internal_api()
    bad = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("attention_np"):
                for a in node.names:
                    full = f"{resolve(node.module)}.{a.name}"
                    kernel_own = full.startswith("attention_np.kernels.")
                    if a.name.endswith("_core") and full not in listed and not kernel_own:
                        bad.add(f"{module} imports {full}")
    assert not bad, "cores missing from attention_np's Internal API list: " + ", ".join(sorted(bad))
