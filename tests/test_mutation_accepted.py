"""Mutation testing (issue 34, ``python -m tools.mutation``): the accepted equivalent mutants in
tests/mutation_equivalents.toml are mutants mutmut still generates, each with a reason, at most
3 % of its file's mutants; no mutant is ever generated inside an ``@njit`` kernel."""
from __future__ import annotations

import ast
import functools
import tomllib
from collections import Counter
from pathlib import Path

import pytest

mutmut = pytest.importorskip("mutmut", reason="mutmut is not installed: pip install -e '.[mutation]'")
from mutmut import configuration  # noqa: E402
from mutmut.mutation.file_mutation import mutate_file_contents  # noqa: E402
from mutmut.utils.format_utils import get_mutant_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
ACCEPTED = tomllib.loads((ROOT / "tests" / "mutation_equivalents.toml")
                         .read_text(encoding="utf-8"))["equivalent"]


@functools.cache
def mutants(path: str) -> list[str]:
    """The names of one listed file's mutants, generated as ``mutmut run`` names them (mutmut
    reads its configuration from the working directory)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        configuration.reset_config()
        try:
            code = (ROOT / path).read_text(encoding="utf-8")
            return [get_mutant_name(Path(path), name)
                    for name in mutate_file_contents(path, code).mutant_names]
        finally:
            configuration.reset_config()


def file_of(name: str) -> str:
    """attention_np.graph.edges.x_edge_softmax__mutmut_3 → attention_np/graph/edges.py"""
    module = name.partition("__mutmut_")[0].rpartition(".")[0]
    return module.replace(".", "/") + ".py"


def test_every_accepted_mutant_still_exists_and_has_a_reason():
    files = {file_of(name) for name in ACCEPTED}
    assert files <= set(CONFIG["only_mutate"]), files - set(CONFIG["only_mutate"])
    gone = sorted(name for name in ACCEPTED if name not in mutants(file_of(name)))
    assert not gone, ("tests/mutation_equivalents.toml names mutants mutmut no longer generates "
                      f"(the code changed): {gone}")
    short = [name for name, reason in ACCEPTED.items() if len(reason.split()) < 4 or "\n" in reason]
    assert not short, f"give each accepted mutant a one-line reason: {short}"


def test_accepted_mutants_are_at_most_three_percent_of_a_file():
    per_file = Counter(file_of(name) for name in ACCEPTED)
    too_many = {path: f"{n} of {len(mutants(path))}" for path, n in per_file.items()
                if n > 0.03 * len(mutants(path))}
    assert not too_many, too_many


@pytest.mark.parametrize("path", [p for p in CONFIG["only_mutate"] if "/kernels/" in p])
def test_no_mutant_inside_a_decorated_kernel(path):
    """mutmut 3.8.1 skips decorated functions (a trampoline cannot run inside compiled code):
    the ``@njit`` bodies in kernels/ never get mutants, their plain-Python wrappers do."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    decorated = {node.name for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef) and node.decorator_list}
    mutated = {name.rpartition(".")[2].removeprefix("x_").partition("__mutmut_")[0]
               for name in mutants(path)}
    assert mutated, path
    assert not mutated & decorated, mutated & decorated
