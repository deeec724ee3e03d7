"""Our kernels must not slow torch down (issue 33): with Numba's OpenMP threading layer, a
parallel kernel run before torch started a second OpenMP runtime, and torch's CPU SDPA then took
2-5x as long in that process. attention_np.kernels._config picks Numba's workqueue pool; here
torch's SDPA is timed in a fresh interpreter and in one where our flash kernel ran first.

A timed test, the one this project allows itself: it guards a 2-5x effect with a 1.2x bound,
the two interpreters are run alternately three times each and each keeps its best of several
calls, so a burst of load from elsewhere hits both alike.
"""
import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys, time
import numpy as np
if sys.argv[1] == "kernels-first":
    from attention_np import kernels
    q = np.random.default_rng(0).standard_normal((1, 8, 512, 64)).astype(np.float32)
    for _ in range(3):
        kernels.flash_attention_forward(q, q, q)              # Numba's thread pool is running
import torch
torch.set_num_threads(2)
q = torch.randn(1, 8, 1024, 64)
sdpa = torch.nn.functional.scaled_dot_product_attention
best = float("inf")
for _ in range(8):
    t0 = time.perf_counter()
    sdpa(q, q, q)
    best = min(best, time.perf_counter() - t0)
import numba
print(json.dumps({"ms": best * 1e3, "layer": numba.threading_layer() if sys.argv[1] == "kernels-first" else None}))
"""


def _time(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    res = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_torch_sdpa_keeps_its_speed_after_our_kernels_ran():
    fresh, after = [], []
    for _ in range(3):
        fresh.append(_time("fresh")["ms"])
        out = _time("kernels-first")
        after.append(out["ms"])
    assert out["layer"] == "workqueue"
    assert min(after) <= 1.2 * min(fresh), (fresh, after)
