"""Scaled dot-product attention, forward and backward (chapter 6)."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text, upcast)
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.self_attention import (scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)

sdpa_forward = scaled_dot_product_attention_forward
sdpa_backward = scaled_dot_product_attention_backward


def attention_inputs(rng):
    """(q, k, v, mask, causal, dtype, masked): the four standard settings on (B, H, T, D) heads
    with Tq ≠ Tk and a (B, 1, Tq, Tk) mask, then a causal case on (B, T, D) without heads."""
    for dtype, masked in SETTINGS:
        B, H, Tq, Tk, D, Dv = dims(rng, 6, 2, 8)
        D = D + 1 if D < 3 else D                                       # √D far from 1
        q, k, v = (randn(rng, s, dtype) for s in ((B, H, Tq, D), (B, H, Tk, D), (B, H, Tk, Dv)))
        mask = dead_row_mask(rng, (B, 1, Tq, Tk)) if masked else None
        yield q, k, v, mask, False, dtype, masked
    B, Tq, Tk, D = dims(rng, 4, 3, 8)
    q, k, v = (randn(rng, s) for s in ((B, Tq, D), (B, Tk, D), (B, Tk, D + 1)))
    yield q, k, v, None, True, np.dtype(np.float64), False


def row_dead(mask, weights_shape, out_shape) -> np.ndarray:
    """True at every entry of an output row (…, Tq, ·) whose query has no key."""
    return np.broadcast_to(dead_positions(mask, weights_shape)[..., :1], out_shape)


def _label(q, k, v, mask, causal, dtype, masked):
    return label(dtype, shape_text(q=q, k=k, v=v), masked, "causal=True" if causal else "")


def without_scale() -> str:
    return say("equals attention without the 1/√D scale (scores q kᵀ instead of q kᵀ/√D)",
               "等于不做 1/√D 缩放的注意力（得分用了 q kᵀ 而不是 q kᵀ/√D）")


def ignores_causal() -> str:
    return say("ignores causal=True: query i must not see the keys j > i",
               "忽略了 causal=True：查询 i 不能看到 j > i 的键")


def ignores_mask() -> str:
    return say("equals attention with the mask ignored: masked keys must get weight 0 "
               "(−inf before the softmax)",
               "等于忽略掩码的注意力：被屏蔽的键权重必须为 0（softmax 之前设为 −inf）")


def _forward_mistakes(q, k, v, mask, causal):
    D, run = q.shape[-1], lambda q, m, c: dict(zip(("out", "weights"), sdpa_forward(q, k, v, m, c)))
    found = [(without_scale(), run((q * np.sqrt(D)).astype(q.dtype), mask, causal)),
             (say("equals attention with the scores divided by D instead of √D",
                  "等于把得分除以 D 而不是 √D 的注意力"),
              run((q / np.sqrt(D)).astype(q.dtype), mask, causal))]
    if mask is not None:
        found.append((ignores_mask(), run(q, None, causal)))
    if causal:
        found.append((ignores_causal(), run(q, mask, False)))
    return found


def _forward_cases(rng):
    cases = []
    for q, k, v, mask, causal, dtype, masked in attention_inputs(rng):
        out, weights, _ = sdpa_forward(q, k, v, mask, causal)
        dead = {} if mask is None else {"weights": dead_positions(mask, weights.shape),
                                        "out": row_dead(mask, weights.shape, out.shape)}
        cases.append(Case(
            _label(q, k, v, mask, causal, dtype, masked), (q, k, v),
            {"out": out, "weights": weights}, kwargs={"mask": mask, "causal": causal},
            dtype=dtype, masked=masked, dead=dead, scale_dim=q.shape[-1],
            variants=lambda a=(q, k, v, mask, causal): _forward_mistakes(*a)))
    return cases


def _backward_mistakes(q, k, v, mask, causal, dout):
    """The gradients of attention without its mask, or without its causal triangle: what a
    softmax recomputed from q and k (instead of the cache's weights) gives."""
    def grads(m, c):
        return dict(zip(("dq", "dk", "dv"), sdpa_backward(dout, sdpa_forward(q, k, v, m, c)[2])))
    use_cache = say("use the weights in the cache (cache['soft']['attended'], 0 at masked keys) "
                    "rather than a softmax recomputed from q and k",
                    "请用 cache 里的权重（cache['soft']['attended']，被屏蔽的键处为 0），"
                    "不要用 q 和 k 重新算一遍 softmax")
    found = []
    if mask is not None:
        found.append((say(f"is the gradient of attention without the mask: {use_cache}",
                          f"是不带掩码的注意力的梯度：{use_cache}"), grads(None, causal)))
    if causal:
        found.append((say(f"is the gradient of attention without the causal mask: {use_cache}",
                          f"是不带因果掩码的注意力的梯度：{use_cache}"), grads(mask, False)))
    return found


def _backward_cases(rng):
    cases = []
    for q, k, v, mask, causal, dtype, masked in attention_inputs(rng):
        out, weights, cache = sdpa_forward(q, k, v, mask, causal)
        dout = randn(rng, out.shape, dtype)
        dq, dk, dv = sdpa_backward(dout, cache)
        fd = FiniteDiff(lambda q, k, v, m=mask, c=causal: sdpa_forward(q, k, v, m, c)[0],
                        upcast(q=q, k=k, v=v), dout.astype(np.float64),
                        {"dq": "q", "dk": "k", "dv": "v"})
        mistakes = _backward_mistakes(q, k, v, mask, causal, dout)
        cases.append(Case(
            _label(q, k, v, mask, causal, dtype, masked), (dout, cache),
            {"dq": dq, "dk": dk, "dv": dv}, dtype=dtype, masked=masked, fd=fd,
            dead={} if mask is None else {"dq": row_dead(mask, weights.shape, dq.shape)},
            scale_dim=q.shape[-1], variants=lambda m=mistakes: m))
    return cases


FORWARD = Exercise(
    name="scaled_dot_product_attention_forward", section="§3.3, §4.2",
    page="chapters/06-self-attention",
    title=("scaled dot-product attention, forward", "缩放点积注意力的前向计算"),
    signature="scaled_dot_product_attention_forward(q, k, v, mask=None, causal=False)",
    outputs=("out", "weights", "cache"), graded=("out", "weights"), make_cases=_forward_cases,
    solution="attention_np.self_attention.scaled_dot_product_attention_forward",
    doc="""out = softmax(q kᵀ / √D, masked) v

q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv), mask boolean broadcastable to (..., Tq, Tk)
(True = may attend) or None, causal: query i sees keys j ≤ i
→ out (..., Tq, Dv), weights (..., Tq, Tk), cache (anything; not graded).""",
    task=("""Write the attention of the Transformer: scores e = q kᵀ/√D, weights
α = softmax(e) over the keys (masked keys get 0, a query with no key gets an all-zero row),
out = α v. Leading axes (batch, heads) can be any number; with causal=True query i may not
see the keys after it. Return the weights too — the figures of the article are pictures of
them. (The library's version also takes backend, dropout_p and rng; leave those out.)""",
          """写出 Transformer 的注意力：得分 e = q kᵀ/√D，在键上取权重 α = softmax(e)
（被屏蔽的键权重为 0，没有键可看的查询得到全零的一行），out = α v。前导轴（批次、注意力头）
个数不限；causal=True 时查询 i 不能看到它之后的键。权重也要返回——原文里的图画的就是它们。
（代码库的版本还接受 backend、dropout_p 和 rng；这里不用管。）"""),
    hints=(("Divide by √D, D = q.shape[-1], the size of a query: without it the softmax "
            "saturates as D grows.",
            "除以 √D，D = q.shape[-1] 是查询的维度：不除的话，D 一大 softmax 就会饱和。"),
           ("Combine the masks with &: your causal_mask(Tq, Tk) broadcasts against a "
            "(..., Tq, Tk) mask.",
            "用 & 合并两个掩码：你的 causal_mask(Tq, Tk) 能与 (..., Tq, Tk) 的掩码广播。"),
           ("Reuse your softmax_forward (or the library's) for the masked softmax.",
            "带掩码的 softmax 直接复用你的 softmax_forward（或代码库的）。")))

BACKWARD = Exercise(
    name="scaled_dot_product_attention_backward", section="§3.3, §4.2",
    page="chapters/06-self-attention",
    title=("scaled dot-product attention, backward", "缩放点积注意力的反向计算"),
    signature="scaled_dot_product_attention_backward(dout, cache)",
    outputs=("dq", "dk", "dv"), make_cases=_backward_cases,
    solution="attention_np.self_attention.scaled_dot_product_attention_backward",
    cache_from="scaled_dot_product_attention_forward(q, k, v, mask, causal)",
    cache_fields=(("q", ("the queries, (..., Tq, D)", "查询，(..., Tq, D)")),
                  ("k", ("the keys, (..., Tk, D)", "键，(..., Tk, D)")),
                  ("scale", ("1/√D, in q's dtype", "1/√D，dtype 与 q 相同")),
                  ("soft", ("soft attention's cache (the soft_attention_backward exercise): "
                            "{'attended': α, 'values': v, 'softmax': {...}, 'dropout': None}",
                            "软注意力的 cache（见 soft_attention_backward 那道练习）："
                            "{'attended': α, 'values': v, 'softmax': {...}, 'dropout': None}")),
                  ("backend", ("'numpy'", "'numpy'")),
                  ("out_shape", ("the shape of out", "out 的形状"))),
    doc="""Forward: e = s · q kᵀ (s = 1/√D),  α = softmax(e) (masked),  out = α v

dout (..., Tq, Dv) → dq (..., Tq, D), dk (..., Tk, D), dv (..., Tk, Dv).""",
    task=("""Given dout = ∂L/∂out, return the gradients of q, k and v. Walk the forward
backwards: the soft attention part (you wrote its backward in the soft_attention_backward
exercise — call it, or the library's soft_attention_backward, on cache['soft']), then the
scaled scores e = s · q kᵀ. The mask and the causal triangle are already in α: masked keys
have α = 0.""",
          """已知 dout = ∂L/∂out，返回 q、k 和 v 的梯度。把前向计算倒着走一遍：先是软注意力
部分（你在 soft_attention_backward 那道练习里写过它的反向计算——对 cache['soft'] 调用它，或调用
代码库的 soft_attention_backward），再是缩放后的得分 e = s · q kᵀ。掩码和因果三角已经体现在 α 里：
被屏蔽的键 α = 0。"""),
    hints=(("soft_attention_backward(dout, cache['soft']) returns (de, dv).",
            "soft_attention_backward(dout, cache['soft']) 返回 (de, dv)。"),
           ("e = s · q kᵀ: the scale s multiplies both dq and dk.",
            "e = s · q kᵀ：缩放因子 s 要乘到 dq 和 dk 上。"),
           ("dk = s · deᵀ q, with ᵀ swapping the last two axes: (..., Tk, Tq) @ (..., Tq, D).",
            "dk = s · deᵀ q，ᵀ 对调最后两个轴：(..., Tk, Tq) @ (..., Tq, D)。")))

EXERCISES = [FORWARD, BACKWARD]
