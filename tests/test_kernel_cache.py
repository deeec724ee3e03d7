"""Numba's on-disk cache must not change a kernel's numbers: a kernel loaded from the cache
computes, bit for bit, what it computed in the process that compiled it.

It did not always. Numba compiles a called ``@njit`` function (and the loop body of a ``prange``
kernel) as a library of its own and links a copy into the caller's; in the process that compiles
them, the caller's calls resolve to the callee's own library, while a caller loaded from the
cache runs its copy — which LLVM optimised a second time inside the caller. With fastmath's
``contract`` the two copies fuse multiply-adds differently, so the LSTM and Bahdanau kernels,
the linear attention backward and the fused GELU backward rounded differently on the second run
of a demo than on the first (translate_dates' recorded exact match moved by 0.006). Now every
fastmath callee is inlined by Numba (``inline="always"``: one function, one compile) and the
fused row kernels, which only ever run on one thread, are serial loops.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

KERNELS = Path(__file__).resolve().parents[1] / "attention_np" / "kernels"
PROBE = Path(__file__).resolve().parent / "_kernel_cache_probe.py"


def _njit_functions():
    """{(module, name): (its @njit decorator's source, the (module, name) of every function it
    calls by a plain name, imports from other kernel modules resolved)} for attention_np/kernels."""
    found = {}
    for path in sorted(KERNELS.glob("*.py")):
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name: (node.module.rsplit(".", 1)[-1], a.name)
                   for node in tree.body if isinstance(node, ast.ImportFrom)
                   and (node.module or "").startswith("attention_np.kernels.")
                   for a in node.names}
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            decorators = [ast.unparse(d) for d in node.decorator_list if "njit" in ast.unparse(d)]
            if decorators:
                calls = {n.func.id for n in ast.walk(node)
                         if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
                found[(path.stem, node.name)] = (
                    decorators[0], {aliases.get(c, (path.stem, c)) for c in calls})
    return found


def test_every_fastmath_callee_is_inlined_by_numba():
    """A kernel that calls another fastmath @njit function gets it inlined (inline="always"),
    so no kernel carries a second, separately optimised copy of it. (Callees compiled with
    strict math, the GEMM's, may stay separate: without fastmath LLVM may not change their
    rounding, however often it optimises them.)"""
    functions = _njit_functions()
    callees = {callee: caller for caller, (_, calls) in functions.items() for callee in calls
               if callee in functions}
    assert ("_lstm_cell", "lstm_cell") in callees          # the walk finds the calls it must
    offenders = [f"{m}.{n} (called by {callees[(m, n)][0]}.{callees[(m, n)][1]}): {dec}"
                 for (m, n), (dec, _) in functions.items() if (m, n) in callees
                 and "STRICT" not in dec and "inline='always'" not in dec]
    assert not offenders, "fastmath @njit callees not inlined by Numba:\n" + "\n".join(offenders)


def _probe(cache_dir: Path, groups) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, str(PROBE), "float32", *groups], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_cached_kernel_computes_what_its_fresh_compile_did(tmp_path):
    """The LSTM (whose cell was a separate function) and the fused encoder block (whose GELU
    backward was a parallel loop) run in a process that compiles them into an empty cache,
    then in one that loads them from it: the same bits. (The other groups of the probe pass
    too; these two, one for each way it went wrong, keep the test to about 30 s.)"""
    groups = ("lstm", "encoder")
    cold = _probe(tmp_path, groups)
    assert any(tmp_path.rglob("*.nbi")), "the first run wrote no cache"
    warm = _probe(tmp_path, groups)
    assert len(cold) == 6
    assert {k: v for k, v in warm.items() if cold[k] != v} == {}
