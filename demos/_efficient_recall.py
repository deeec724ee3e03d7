"""Part 3 of the efficient_attention demo — reach: one attention layer trained with each
variant on associative recall (demos/_recall_task.py), accuracy against the distance between
the queried pair and its question, in two settings: one question at the last token (which a
sparse pattern can make global: that row is then exact attention, by construction) and several
questions at random positions (no token can be the global one)."""
from __future__ import annotations

import time

import numpy as np

from attention_np import efficient as ef
from attention_np.self_attention import (scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)
from demos import _recall_task as recall
from demos._progress import say

def _attend(forward, backward, param_names=(), **kwargs):
    """Adapt a variant to the recall model: attend(q, k, v, params) -> (out, backward)."""
    def attend(q, k, v, params):
        extra = {"params": {n: params[n] for n in param_names}} if param_names else {}
        out, _, cache = forward(q, k, v, **extra, **kwargs)

        def grads(dout):
            dq, dk, dv, *dparams = backward(dout, cache)
            return dq, dk, dv, (dparams[0] if dparams else {})
        return out, grads
    return attend


def recall_variants(cfg: recall.RecallConfig, window: int) -> dict:
    """name → (attend, extra parameters to train). With one question (the last token) the
    window variant may make that token global; with several questions at random positions it
    gets a global first token instead, which the questions can read but which reads nothing
    for them in a single layer."""
    T, rng = cfg.T, np.random.default_rng(1)
    sw = (ef.sliding_window_attention_forward, ef.sliding_window_attention_backward)
    nb = -(-T // 16)
    glob, what = ([T - 1], "global question") if cfg.n_queries == 1 else ([0], "global token 0")
    return {
        "exact": (_attend(scaled_dot_product_attention_forward,
                          scaled_dot_product_attention_backward), {}),
        f"window w={window}": (_attend(*sw, window=window), {}),
        f"window w={window} + {what}": (_attend(*sw, window=window, global_tokens=glob), {}),
        "block-sparse b=16 (band + 1 random)": (_attend(
            ef.block_sparse_attention_forward, ef.block_sparse_attention_backward,
            layout=ef.block_layout(nb, nb, window=1, random_blocks=1, rng=rng), block_size=16), {}),
        "linear (elu+1)": (_attend(ef.linear_attention_forward, ef.linear_attention_backward), {}),
        "Performer m=64": (_attend(ef.performer_attention_forward, ef.performer_attention_backward,
                                   W=ef.orthogonal_random_features(64, cfg.d_model, rng)), {}),
        "Linformer r=16": (_attend(ef.linformer_attention_forward, ef.linformer_attention_backward,
                                   param_names=("E", "F")),
                           ef.init_linformer_projections(16, T, rng)),
    }


def global_row_gap(T: int, window: int, D: int = 16, seed: int = 0) -> float:
    """max |window-with-global-token-(T − 1) output − exact output| over row T − 1 on random
    q, k, v: zero up to rounding, since a global token's row attends to every key."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((2, 1, T, D)) for _ in range(3))
    exact = scaled_dot_product_attention_forward(q, k, v)[0]
    sparse = ef.sliding_window_attention_forward(q, k, v, window, global_tokens=[T - 1])[0]
    return float(np.abs(sparse[..., -1, :] - exact[..., -1, :]).max())


def run_recall(cfg: recall.RecallConfig, window: int, log=say) -> dict:
    res = {}
    for name, (attend, extra) in recall_variants(cfg, window).items():
        t0 = time.perf_counter()
        params, losses = recall.train(cfg, attend, extra, desc=f"  {name}")
        edges, acc, overall = recall.accuracy_by_distance(cfg, params, attend)
        res[name] = {"accuracy": overall, "accuracy_by_distance": acc.tolist(),
                     "final_loss": float(np.mean(losses[-50:])), "losses": losses,
                     "train_s": time.perf_counter() - t0}
        log(f"    accuracy {overall:.3f}   by distance {np.round(acc, 2).tolist()}")
    res["distance_edges"] = edges.tolist()
    return res
