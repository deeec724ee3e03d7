"""Multi-head attention, forward and backward (chapter 8)."""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_backward
from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text, upcast)
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.exercises.tasks.sdpa import ignores_causal, ignores_mask
from attention_np.self_attention import (PARAM_NAMES, init_multi_head_params, merge_heads,
                                         multi_head_attention_backward,
                                         multi_head_attention_forward,
                                         scaled_dot_product_attention_backward, split_heads)


def mha_inputs(rng):
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


def _label(x_q, x_kv, H, causal, dtype, masked):
    return label(dtype, shape_text(x_q=x_q, x_kv=x_kv), masked, f"num_heads {H}",
                 say("causal self-attention", "因果自注意力") if causal else "")


def _scaled_queries(params, factor):
    p = dict(params)
    p["W_q"], p["b_q"] = (p[n] * p[n].dtype.type(factor) for n in ("W_q", "b_q"))
    return p


def _forward_mistakes(x_q, x_kv, params, H, mask, causal):
    Dh = x_q.shape[-1] // H

    def run(p=params, m=mask, c=causal):
        return dict(zip(("out", "weights"), multi_head_attention_forward(x_q, x_kv, p, H, m, c)))
    d, eye = x_q.shape[-1], np.eye(x_q.shape[-1], dtype=x_q.dtype)
    found = [(say("equals attention without the 1/√Dh scale (Dh = d / num_heads, one head's "
                  "size)", "等于不做 1/√Dh 缩放的注意力（Dh = d / num_heads，即一个头的维度）"),
              run(_scaled_queries(params, np.sqrt(Dh)))),
             (say("scales the scores by 1/√d, the model width, instead of 1/√Dh, one head's size",
                  "用 1/√d（模型宽度）而不是 1/√Dh（一个头的维度）来缩放得分"),
              run(_scaled_queries(params, np.sqrt(Dh / d)))),
             (say("is the concatenated heads without the output projection: out = Concat(heads) "
                  "W_o + b_o", "是没经过输出投影的拼接结果：out = Concat(heads) W_o + b_o"),
              run({**params, "W_o": eye, "b_o": np.zeros_like(params["b_o"])}))]
    if mask is not None:
        found.append((ignores_mask(), run(m=None)))
    if causal:
        found.append((ignores_causal(), run(c=False)))
    return found


def _forward_cases(rng):
    cases = []
    for x_q, x_kv, params, H, mask, causal, dtype, masked in mha_inputs(rng):
        out, weights, _ = multi_head_attention_forward(x_q, x_kv, params, H, mask, causal)
        cases.append(Case(
            _label(x_q, x_kv, H, causal, dtype, masked),
            (x_q, x_kv, params, H), {"out": out, "weights": weights},
            kwargs={"mask": mask, "causal": causal}, dtype=dtype, masked=masked,
            dead={} if mask is None else {"weights": dead_positions(mask, weights.shape)},
            variants=lambda a=(x_q, x_kv, params, H, mask, causal): _forward_mistakes(*a)))
    return cases


def _flat(dx_q, dx_kv, grads) -> dict:
    """The outputs of a multi-head backward under the grader's names (grads['W_q'] …)."""
    return {"dx_q": dx_q, "dx_kv": dx_kv, **{f"grads[{k!r}]": g for k, g in grads.items()}}


def _backward_with(dout, cache, split=split_heads, output_projection=True):
    """Multi-head attention's backward, with ``split`` splitting ∂L/∂Concat into heads and
    optionally the output projection's backward left out → (dx_q, dx_k, dx_v, grads)."""
    H = cache["num_heads"]
    dmerged, dW_o, db_o = linear_backward(dout, cache["o"])
    dmerged = dmerged if output_projection else dout
    dqh, dkh, dvh = scaled_dot_product_attention_backward(split(dmerged, H), cache["attn"])
    grads, dx = {"W_o": dW_o, "b_o": db_o}, {}
    for n, dh in zip("qkv", (dqh, dkh, dvh)):
        dx[n], grads[f"W_{n}"], grads[f"b_{n}"] = linear_backward(merge_heads(dh), cache[n])
    return dx["q"], dx["k"], dx["v"], grads


def _reshape_split(x, H):
    B, T, d = x.shape
    return x.reshape(B, H, T, d // H)


def _backward_mistakes(dout, cache):
    _, dx_k, dx_v, _ = _backward_with(dout, cache)
    dx_q, _, _, grads = wrong = _backward_with(dout, cache, _reshape_split)
    skipped = _backward_with(dout, cache, output_projection=False)
    return [(say("holds only the values' path: x_kv feeds the keys and the values, so "
                 "dx_kv = dx_k + dx_v", "只含值那一路：x_kv 既产生键也产生值，所以 "
                 "dx_kv = dx_k + dx_v"), {"dx_kv": dx_v}),
            (say("holds only the keys' path: x_kv feeds the keys and the values, so "
                 "dx_kv = dx_k + dx_v", "只含键那一路：x_kv 既产生键也产生值，所以 "
                 "dx_kv = dx_k + dx_v"), {"dx_kv": dx_k}),
            (say("looks like ∂L/∂Concat split into heads by a plain reshape to (B, H, T, Dh): "
                 "split it as the forward split q, k and v (split_heads)",
                 "看起来是把 ∂L/∂Concat 直接 reshape 成 (B, H, T, Dh) 来拆分注意力头："
                 "要按前向计算拆分 q、k、v 的方式来拆（split_heads）"),
             _flat(dx_q, wrong[1] + wrong[2], grads)),
            (say("skips the output projection's backward: the heads receive "
                 "∂L/∂Concat = dout W_oᵀ, not dout", "跳过了输出投影的反向计算：各个头收到的是 "
                 "∂L/∂Concat = dout W_oᵀ，而不是 dout"),
             _flat(skipped[0], skipped[1] + skipped[2],
                   {k: g for k, g in skipped[3].items() if k not in ("W_o", "b_o")}))]


def _backward_cases(rng):
    cases = []
    for x_q, x_kv, params, H, mask, causal, dtype, masked in mha_inputs(rng):
        out, _, cache = multi_head_attention_forward(x_q, x_kv, params, H, mask, causal)
        dout = randn(rng, out.shape, dtype)
        dx_q, dx_kv, grads = multi_head_attention_backward(dout, cache)

        def forward(x_q, x_kv, H=H, mask=mask, causal=causal, **p):
            return multi_head_attention_forward(x_q, x_kv, p, H, mask, causal)[0]
        wrt = {"dx_q": "x_q", "dx_kv": "x_kv", **{f"grads[{n!r}]": n for n in PARAM_NAMES}}
        fd = FiniteDiff(forward, upcast(x_q=x_q, x_kv=x_kv, **params), dout.astype(np.float64),
                        wrt)
        cases.append(Case(
            _label(x_q, x_kv, H, causal, dtype, masked), (dout, cache),
            {"dx_q": dx_q, "dx_kv": dx_kv, "grads": grads}, dtype=dtype, masked=masked, fd=fd,
            variants=lambda d=dout, c=cache: _backward_mistakes(d, c)))
    return cases


FORWARD = Exercise(
    name="multi_head_attention_forward", section="§3.4, §4.3",
    page="chapters/08-multi-head-attention",
    title=("multi-head attention, forward", "多头注意力的前向计算"),
    signature="multi_head_attention_forward(x_q, x_kv, params, num_heads, mask=None, "
              "causal=False)",
    outputs=("out", "weights", "cache"), graded=("out", "weights"), make_cases=_forward_cases,
    solution="attention_np.self_attention.multi_head_attention_forward",
    forbidden=("attention_np.self_attention.multi_head_attention_core",),
    doc="""out = Concat(head_1, …, head_H) W_o + b_o,
head_h = Attention(x_q W_q^h + b_q^h, x_kv W_k^h + b_k^h, x_kv W_v^h + b_v^h)

x_q (B, Tq, d), x_kv (B, Tk, d), params {W_q, W_k, W_v, W_o: (d, d); b_q, b_k, b_v, b_o: (d,)},
num_heads H dividing d, mask broadcastable to (B, H, Tq, Tk) or None, causal a bool
→ out (B, Tq, d), weights (B, H, Tq, Tk), cache (anything; not graded).""",
    task=("""Put the pieces together: project x_q to queries and x_kv to keys and values
(row vectors, y = x W + b), split each into H heads, run scaled dot-product attention on every
head at once, merge the heads and apply the output projection W_o, b_o. x_q and x_kv can
differ (cross-attention, Tq ≠ Tk) or be the same array (self-attention).""",
          """把各个部件组装起来：把 x_q 投影成查询，把 x_kv 投影成键和值（行向量约定，
y = x W + b），各自拆成 H 个注意力头，在所有头上同时做缩放点积注意力，再合并各个头并经过输出投影
W_o、b_o。x_q 和 x_kv 可以不同（交叉注意力，Tq ≠ Tk），也可以是同一个数组（自注意力）。"""),
    hints=(("Reuse what you wrote: split_heads, scaled_dot_product_attention_forward "
            "and merge_heads (or the library's).",
            "复用你写过的 split_heads、scaled_dot_product_attention_forward 和 merge_heads"
            "（或代码库的）。"),
           ("The scale is 1/√Dh with Dh = d / num_heads, one head's size, not the width d.",
            "缩放因子是 1/√Dh，Dh = d / num_heads 是一个头的维度，而不是模型宽度 d。"),
           ("A mask of shape (B, 1, Tq, Tk) broadcasts over the heads.",
            "形状为 (B, 1, Tq, Tk) 的掩码会在各个头上广播。")))

BACKWARD = Exercise(
    name="multi_head_attention_backward", section="§3.4, §4.3",
    page="chapters/08-multi-head-attention",
    title=("multi-head attention, backward", "多头注意力的反向计算"),
    signature="multi_head_attention_backward(dout, cache)",
    outputs=("dx_q", "dx_kv", "grads"), make_cases=_backward_cases,
    solution="attention_np.self_attention.multi_head_attention_backward",
    cache_from="multi_head_attention_forward(x_q, x_kv, params, num_heads, mask, causal)",
    cache_fields=(
        ("q", ("linear_forward's cache of q = x_q W_q + b_q: {'x', 'W', 'has_bias'}",
               "q = x_q W_q + b_q 的 linear_forward 的 cache：{'x', 'W', 'has_bias'}")),
        ("k", ("the same for k = x_kv W_k + b_k", "k = x_kv W_k + b_k 的同样的 cache")),
        ("v", ("the same for v = x_kv W_v + b_v", "v = x_kv W_v + b_v 的同样的 cache")),
        ("attn", ("scaled dot-product attention's cache, on the heads (B, H, T, Dh)",
                  "缩放点积注意力在各个头 (B, H, T, Dh) 上的 cache")),
        ("o", ("linear_forward's cache of out = Concat(heads) W_o + b_o",
               "out = Concat(heads) W_o + b_o 的 linear_forward 的 cache")),
        ("num_heads", ("H", "H")), ("out_shape", ("the shape of out, (B, Tq, d)",
                                                  "out 的形状，(B, Tq, d)"))),
    doc="""Forward: q, k, v = x_q W_q + b_q, x_kv W_k + b_k, x_kv W_v + b_v, split into H heads;
heads = Attention(q, k, v);  out = Concat(heads) W_o + b_o

dout (B, Tq, d) → dx_q (B, Tq, d), dx_kv (B, Tk, d),
grads {W_q, W_k, W_v, W_o: (d, d); b_q, b_k, b_v, b_o: (d,)}.""",
    task=("""Walk multi-head attention back: the output projection, the merge of the heads,
the attention of every head, the split into heads, and the three input projections. Return the
gradients of x_q, of x_kv, and of every parameter in a dict keyed like params. You may call the
library's linear_backward, scaled_dot_product_attention_backward, split_heads and merge_heads.
(In self-attention x_q is x_kv: its gradient is then dx_q + dx_kv.)""",
          """把多头注意力倒着走一遍：输出投影、合并各个头、每个头的注意力、拆分成头，以及三个
输入投影。返回 x_q 的梯度、x_kv 的梯度，以及每个参数的梯度（放在一个与 params 键相同的字典里）。
可以调用代码库的 linear_backward、scaled_dot_product_attention_backward、split_heads 和
merge_heads。（自注意力里 x_q 就是 x_kv：那时它的梯度是 dx_q + dx_kv。）"""),
    hints=(("linear_backward(dout, cache['o']) gives ∂L/∂Concat (B, Tq, d), dW_o and db_o.",
            "linear_backward(dout, cache['o']) 给出 ∂L/∂Concat (B, Tq, d)、dW_o 和 db_o。"),
           ("The backward of merge_heads is split_heads, and the other way round.",
            "merge_heads 的反向计算就是 split_heads，反之亦然。"),
           ("x_kv makes both the keys and the values: its gradient is the sum of the two paths.",
            "x_kv 同时产生键和值：它的梯度是两条路径之和。")))

EXERCISES = [FORWARD, BACKWARD]
