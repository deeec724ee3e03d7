"""What a learner's file may not lean on, read from its source before it runs: torch (the
exercises are NumPy), and the library's own solution of the exercise (the library's other
functions are there to be called). The worker checks the same at run time, for what the
source hides (:mod:`attention_np.exercises.runner`). And, after a pass, where the library's
solution lives.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from attention_np.exercises.lang import say


def _root(node) -> str | None:
    """The name an attribute chain starts from: ``an`` of ``an.core.softmax_forward``."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_torch(module: str | None) -> bool:
    return bool(module) and (module == "torch" or module.startswith("torch."))


def _is_library(module: str | None) -> bool:
    return bool(module) and (module == "attention_np" or module.startswith("attention_np."))


def scan(source: str, flagged: set[str]) -> tuple[str, str, int] | None:
    """("torch", "torch", line) when ``source`` imports torch, ("library", name, line) when it
    takes a name of ``flagged`` from the library (imported, or read as an attribute of
    something imported from it), else None. A file that does not parse gives None (the
    runner reports its SyntaxError)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    bound: set[str] = set()                      # names bound by imports from the library
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_torch(alias.name):
                    return "torch", "torch", node.lineno
                if _is_library(alias.name):
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if _is_torch(node.module):
                return "torch", "torch", node.lineno
            if _is_library(node.module):
                for alias in node.names:
                    if alias.name in flagged:
                        return "library", f"{node.module}.{alias.name}", node.lineno
                    bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and _is_torch(node.args[0].value):
            return "torch", "torch", node.lineno             # importlib.import_module("torch")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in flagged and _root(node) in bound:
            return "library", ast.unparse(node), node.lineno
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "getattr" and len(node.args) >= 2 and \
                _root(node.args[0]) in bound and isinstance(node.args[1], ast.Constant) and \
                node.args[1].value in flagged:
            return "library", f"{ast.unparse(node.args[0])}.{node.args[1].value}", node.lineno
    return None


def leaning_on(ex, kind: str, detail) -> str | None:
    """The message refusing a file for exercise ``ex``: ``kind`` "file" reads the file at
    ``detail`` (None when it is fine); "library" (``detail``: the dotted name the worker found)
    and "torch" are what the worker saw at run time."""
    line = ""
    if kind == "file":
        found = scan(Path(detail).read_text(encoding="utf-8", errors="replace"),
                     {dotted.rsplit(".", 1)[1] for dotted in ex.forbidden_names})
        if found is None:
            return None
        kind, detail, number = found
        line = say(f" (line {number})", f"（第 {number} 行）")
    fn = ex.function
    if kind == "torch":
        return say(f"your file imports torch{line}: the exercises are NumPy only — write "
                   f"{fn} with NumPy (the grader does not run torch)",
                   f"你的文件导入了 torch{line}：练习只用 NumPy——请用 NumPy 写出 {fn}"
                   "（评分程序不运行 torch）")
    return say(f"your file uses the library's own solution, {detail}{line}: write {fn} "
               "yourself — the library's other functions are yours to call",
               f"你的文件用了代码库自己的解答 {detail}{line}：请自己写出 {fn}——代码库里的"
               "其他函数可以随意调用")


def _defined_at(path: str, name: str) -> int | None:
    """The line where ``path`` defines the function (or class) ``name``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return node.lineno
    return None


def solution_location(ex) -> str:
    """Where the library's own solution of ``ex`` lives: its dotted name, file and line (read
    from the source, without importing it)."""
    module, name = ex.solution.rsplit(".", 1)
    spec = importlib.util.find_spec(module)
    where = ""
    if spec is not None and spec.origin and spec.origin.endswith(".py"):
        line = _defined_at(spec.origin, name)
        where = spec.origin + (say(f", line {line}", f"，第 {line} 行") if line else "")
    text = say(f"The library's own solution, to compare with yours: {ex.solution}",
               f"代码库自己的解答，可以和你的对照：{ex.solution}")
    return text + (say(f" ({where})", f"（{where}）") if where else "")
