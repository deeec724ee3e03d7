"""Exercises 14–15: multi-head attention's forward, and layer norm's backward."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text, upcast)
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.nn.layers import layer_norm_backward, layer_norm_forward
from attention_np.self_attention import init_multi_head_params, multi_head_attention_forward


def _mha_inputs(rng):
    """(x_q, x_kv, params, H, mask, causal, dtype, masked): cross-attention with Tq ≠ Tk in the
    four standard settings, then causal self-attention."""
    for i, (dtype, masked) in enumerate(SETTINGS + ((np.float64, False),)):
        B, Tq, Tk, H, Dh = dims(rng, 5, 2, 6)
        x_q = randn(rng, (B, Tq, H * Dh), dtype)
        x_kv = x_q if i == 4 else randn(rng, (B, Tk, H * Dh), dtype)
        params = init_multi_head_params(H * Dh, rng, dtype)
        params.update({f"b_{n}": randn(rng, H * Dh, dtype, 0.3) for n in "qkvo"})
        mask = dead_row_mask(rng, (B, 1, Tq, x_kv.shape[1])) if masked else None
        yield x_q, x_kv, params, H, mask, i == 4, np.dtype(dtype), masked


def _scaled_queries(params, factor):
    p = dict(params)
    p["W_q"], p["b_q"] = (p[n] * p[n].dtype.type(factor) for n in ("W_q", "b_q"))
    return p


def _mha_mistakes(x_q, x_kv, params, H, mask, causal):
    Dh = x_q.shape[-1] // H

    def run(p=params, m=mask, c=causal):
        return dict(zip(("out", "weights"), multi_head_attention_forward(x_q, x_kv, p, H, m, c)))
    d, eye = x_q.shape[-1], np.eye(x_q.shape[-1], dtype=x_q.dtype)
    found = [("equals attention without the 1/√Dh scale (Dh = d / num_heads, one head's size)",
              run(_scaled_queries(params, np.sqrt(Dh)))),
             ("scales the scores by 1/√d, the model width, instead of 1/√Dh, one head's size",
              run(_scaled_queries(params, np.sqrt(Dh / d)))),
             ("is the concatenated heads without the output projection: out = Concat(heads) "
              "W_o + b_o", run({**params, "W_o": eye, "b_o": np.zeros_like(params["b_o"])}))]
    if mask is not None:
        found.append(("equals attention with the mask ignored", run(m=None)))
    if causal:
        found.append(("ignores causal=True: query i must not see the keys j > i", run(c=False)))
    return found


def _mha_cases(rng):
    cases = []
    for x_q, x_kv, params, H, mask, causal, dtype, masked in _mha_inputs(rng):
        out, weights, _ = multi_head_attention_forward(x_q, x_kv, params, H, mask, causal)
        cases.append(Case(
            label(dtype, shape_text(x_q=x_q, x_kv=x_kv), masked, f"num_heads {H}",
                  "causal self-attention" if causal else ""),
            (x_q, x_kv, params, H), {"out": out, "weights": weights},
            kwargs={"mask": mask, "causal": causal}, dtype=dtype, masked=masked,
            dead={} if mask is None else {"weights": dead_positions(mask, weights.shape)},
            variants=lambda a=(x_q, x_kv, params, H, mask, causal): _mha_mistakes(*a)))
    return cases


def _layer_norm_cases(rng):
    cases = []
    for dtype, three_d in ((np.float64, True), (np.float32, True), (np.float64, False),
                           (np.float32, False)):
        B, T, d = dims(rng, 3, 2, 9)
        x = randn(rng, (B, T, d) if three_d else (B * T, d), dtype, 2.0)
        gamma, beta = (1 + randn(rng, d, dtype, 0.3)).astype(dtype), randn(rng, d, dtype)
        y, cache = layer_norm_forward(x, gamma, beta)
        dy = randn(rng, y.shape, dtype)
        names = ("dx", "dgamma", "dbeta")
        fd = FiniteDiff(lambda x, gamma, beta: layer_norm_forward(x, gamma, beta)[0],
                        upcast(x=x, gamma=gamma, beta=beta), dy.astype(np.float64),
                        dict(zip(names, ("x", "gamma", "beta"))))
        direct = (cache["rstd"] * dy * gamma).astype(dtype)
        mistakes = [("is only the direct term γ ⊙ dy / σ: the mean μ and σ depend on every x_j "
                     "of the row too — subtract mean(g) and x̂ · mean(g ⊙ x̂), g = γ ⊙ dy",
                     {"dx": direct})]
        cases.append(Case(label(dtype, shape_text(x=x)), (dy, cache),
                          dict(zip(names, layer_norm_backward(dy, cache))), dtype=dtype, fd=fd,
                          variants=lambda m=mistakes: m))
    return cases


EXERCISES = [
    Exercise(
        name="multi_head_attention_forward", title="multi-head attention, forward",
        section="§3.4, §4.3",
        signature="multi_head_attention_forward(x_q, x_kv, params, num_heads, mask=None, "
                  "causal=False)",
        outputs=("out", "weights", "cache"), graded=("out", "weights"),
        make_cases=_mha_cases,
        solution="attention_np.self_attention.multi_head_attention_forward",
        doc="""out = Concat(head_1, …, head_H) W_o + b_o,
head_h = Attention(x_q W_q^h + b_q^h, x_kv W_k^h + b_k^h, x_kv W_v^h + b_v^h)

x_q (B, Tq, d), x_kv (B, Tk, d), params {W_q, W_k, W_v, W_o: (d, d); b_q, b_k, b_v, b_o: (d,)},
num_heads H dividing d, mask broadcastable to (B, H, Tq, Tk) or None, causal a bool
→ out (B, Tq, d), weights (B, H, Tq, Tk), cache (anything; not graded).""",
        task="""Put the pieces together: project x_q to queries and x_kv to keys and values
(row vectors, y = x W + b), split each into H heads, run scaled dot-product attention on every
head at once, merge the heads and apply the output projection W_o, b_o. x_q and x_kv can
differ (cross-attention, Tq ≠ Tk) or be the same array (self-attention).""",
        hints=("Reuse what you wrote: split_heads, scaled_dot_product_attention_forward "
               "and merge_heads (or the library's).",
               "The scale is 1/√Dh with Dh = d / num_heads, one head's size, not the width d.",
               "A mask of shape (B, 1, Tq, Tk) broadcasts over the heads.")),
    Exercise(
        name="layer_norm_backward", title="layer norm's backward", section="§4.3",
        signature="layer_norm_backward(dy, cache)", outputs=("dx", "dgamma", "dbeta"),
        make_cases=_layer_norm_cases, solution="attention_np.nn.layers.layer_norm_backward",
        cache_from="layer_norm_forward(x, gamma, beta)",
        cache_fields=(("xhat", "x̂ = (x − μ) / √(σ² + ε), x's shape (..., d)"),
                      ("rstd", "1 / √(σ² + ε) per row, (..., 1)"),
                      ("gamma", "γ, (d,)"), ("dtype", "the dtype of the output")),
        doc="""Forward: x̂ = (x − μ) / √(σ² + ε),  y = γ ⊙ x̂ + β   (μ, σ² over the last axis)

dy (..., d) → dx (..., d), dgamma (d,), dbeta (d,), in cache['dtype'].""",
        task="""Layer norm normalises each row to mean 0 and variance 1, then scales by γ and
shifts by β. Given dy = ∂L/∂y, return the gradients of x, γ and β. The subtle part: μ and σ
depend on every entry of the row, so changing one x_j moves all of x̂.""",
        hints=("Start from the easy ones: dβ = dy summed over every leading axis, "
               "dγ = (dy ⊙ x̂) summed likewise.",
               "Let g = dy ⊙ γ, the gradient w.r.t. x̂. Then differentiate x̂ = (x − μ) · rstd: "
               "the mean term removes mean(g), the variance term removes x̂ · mean(g ⊙ x̂).",
               "Means are over the last axis with keepdims=True; the cache's rstd is (..., 1).")),
]
