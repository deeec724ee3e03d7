"""The masked, stable softmax and its backward (chapter 3), and the linear layer's backward
(chapter 6)."""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_backward, linear_forward, softmax_backward, softmax_forward
from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text, upcast)
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff


def _large() -> str:
    return say("the inputs are large (±1000): exp overflows to inf unless you subtract the row "
               "max first", "输入很大（±1000）：不先减去每行的最大值，exp 就会溢出成 inf")


def _softmax_inputs(rng):
    """(x, axis, mask, dtype, masked, extra label) for the four standard settings, a softmax
    over a middle axis with its own fully masked rows, and large scores."""
    for dtype, masked in SETTINGS:
        x = randn(rng, dims(rng, 3), dtype, 3.0)                        # (B, Tq, Tk)
        yield x, -1, dead_row_mask(rng, x.shape) if masked else None, dtype, masked, ""
    B, T, C = dims(rng, 3)
    mask = dead_row_mask(rng, (B, C, T)).transpose(0, 2, 1)            # dead along axis 1
    yield randn(rng, (B, T, C), np.float64, 3.0), 1, mask, np.float64, True, ""
    yield randn(rng, dims(rng, 2), np.float64, 1000.0), -1, None, np.float64, False, \
        say("large scores (±1000)", "得分很大（±1000）")


def _softmax_mistakes(x, axis, mask):
    found = []
    if mask is not None:
        found.append((say("equals the softmax with the mask ignored: put −inf where the mask is "
                          "False before the exp",
                          "等于忽略掩码后的 softmax：在 exp 之前，把掩码为 False 的位置设为 −inf"),
                      {"y": softmax_forward(x, axis)[0]}))
    for other in set(range(x.ndim)) - {axis % x.ndim}:
        found.append((say(f"is the softmax over axis {other}, not over axis {axis}",
                          f"是沿第 {other} 轴的 softmax，而不是沿第 {axis} 轴"),
                      {"y": softmax_forward(x, other, mask)[0]}))
    return found


def _softmax_forward_cases(rng):
    cases = []
    for x, axis, mask, dtype, masked, extra in _softmax_inputs(rng):
        y, _ = softmax_forward(x, axis, mask)
        cases.append(Case(
            label(dtype, shape_text(x=x), masked, say(f"axis {axis}", f"第 {axis} 轴"), extra),
            (x,), {"y": y},
            kwargs={"axis": axis, "mask": mask}, dtype=dtype, masked=masked,
            dead={} if mask is None else {"y": dead_positions(mask, x.shape, axis)},
            variants=lambda x=x, axis=axis, mask=mask: _softmax_mistakes(x, axis, mask),
            nonfinite_hint=_large() if extra else ""))
    return cases


def _softmax_backward_mistakes(dy, y, axis):
    found = [(say("uses only the Jacobian's diagonal y_i (1 − y_i): every y_j depends on every "
                  "x_i, so dx_i = y_i (dy_i − Σ_j dy_j y_j)",
                  "只用了雅可比矩阵的对角线 y_i (1 − y_i)：每个 y_j 都依赖于每个 x_i，"
                  "所以 dx_i = y_i (dy_i − Σ_j dy_j y_j)"), {"dx": y * (1 - y) * dy})]
    for other in set(range(y.ndim)) - {axis % y.ndim}:
        found.append((say(f"sums over axis {other} instead of the softmax's axis {axis} "
                          "(cache['axis'])",
                          f"沿第 {other} 轴求和，而 softmax 的轴是第 {axis} 轴（cache['axis']）"),
                      {"dx": softmax_backward(dy, {"y": y, "axis": other})}))
    return found


def _softmax_backward_cases(rng):
    cases = []
    for x, axis, mask, dtype, masked, _ in list(_softmax_inputs(rng))[:5]:
        y, cache = softmax_forward(x, axis, mask)
        dy = randn(rng, x.shape, dtype)
        fd = FiniteDiff(lambda x, axis=axis, mask=mask: softmax_forward(x, axis, mask)[0],
                        upcast(x=x), dy.astype(np.float64), {"dx": "x"})
        cases.append(Case(
            label(dtype, shape_text(dy=dy), masked, say(f"axis {axis}", f"第 {axis} 轴")),
            (dy, cache),
            {"dx": softmax_backward(dy, cache)}, dtype=dtype, masked=masked, fd=fd,
            dead={} if mask is None else {"dx": dead_positions(mask, x.shape, axis)},
            variants=lambda dy=dy, y=y, axis=axis: _softmax_backward_mistakes(dy, y, axis)))
    return cases


def _linear_backward_cases(rng):
    cases = []
    for dtype, three_d in ((np.float64, True), (np.float32, True), (np.float64, False),
                           (np.float32, False)):
        B, T, d_in, d_out = dims(rng, 4)
        x = randn(rng, (B, T, d_in) if three_d else (B * T, d_in), dtype)
        W, b = randn(rng, (d_in, d_out), dtype), randn(rng, d_out, dtype) if three_d else None
        y, cache = linear_forward(x, W, b)
        dy = randn(rng, y.shape, dtype)
        dx, dW, db = linear_backward(dy, cache)
        wrt = {"dx": "x", "dW": "W", **({"db": "b"} if three_d else {})}
        fd = FiniteDiff(lambda x, W, b: linear_forward(x, W, b)[0], upcast(x=x, W=W, b=b),
                        dy.astype(np.float64), wrt)
        cases.append(Case(
            label(dtype, shape_text(x=x, W=W), None,
                  say("with bias b", "有偏置 b") if three_d else say("no bias", "无偏置")),
            (dy, cache), {"dx": dx, "dW": dW, "db": db}, dtype=dtype, fd=fd,
            none_why=say("the forward had no bias: cache['has_bias'] is False",
                         "前向计算没有偏置：cache['has_bias'] 为 False")))
    return cases


SOFTMAX_FORWARD = Exercise(
    name="softmax_forward", section="§3.1, §4.1", page="chapters/03-soft-attention",
    title=("the softmax: stable and masked", "softmax：数值稳定，支持掩码"),
    signature="softmax_forward(x, axis=-1, mask=None)", outputs=("y", "cache"),
    graded=("y",), make_cases=_softmax_forward_cases, solution="attention_np.core.softmax_forward",
    doc="""y_i = exp(x_i − m) / Σ_j exp(x_j − m),   m = max_j x_j over the unmasked entries

x (...) float, axis an int, mask boolean broadcastable to x (True = may attend) or None
→ y (...) with x's shape and dtype (0 where masked), cache (anything; only y is graded).""",
    task=("""Write the softmax every attention layer is built on. Along `axis`, turn scores
into weights that are positive and sum to 1. Entries where `mask` is False get weight 0, and a
row whose entries are all masked (a query with no key to look at) gets all zeros — not NaN.
It must not overflow for large scores, and float32 in gives float32 out.""",
          """写出每个注意力层都要用到的 softmax：沿 `axis` 把得分变成为正且总和为 1 的权重。
`mask` 为 False 的位置权重为 0；一整行都被屏蔽的行（一个没有键可看的查询）输出全零，而不是 NaN。
得分很大时不能溢出；输入是 float32，输出也必须是 float32。"""),
    hints=(("Subtract the max along the axis (keepdims=True) before np.exp: exp(800) is inf "
            "and inf/inf is NaN; the factor exp(−m) cancels between numerator and sum.",
            "在 np.exp 之前先减去该轴上的最大值（keepdims=True）：exp(800) 是 inf，inf/inf 是 "
            "NaN；因子 exp(−m) 在分子和分母之间正好约掉。"),
           ("Mask by putting −inf where the mask is False: exp(−inf) = 0. "
            "np.where(mask, x, -np.inf) broadcasts the mask for you.",
            "把掩码为 False 的位置设为 −inf 即可屏蔽：exp(−inf) = 0。"
            "np.where(mask, x, -np.inf) 会替你广播掩码。"),
           ("In a fully masked row the max is −inf and −inf − (−inf) is NaN: replace a "
            "non-finite max by 0, and divide by a sum of 0 as if it were 1.",
            "整行被屏蔽时最大值是 −inf，而 −inf − (−inf) 是 NaN：把不是有限数的最大值换成 0，"
            "分母为 0 时按 1 来除。")))

SOFTMAX_BACKWARD = Exercise(
    name="softmax_backward", section="§4.1", page="chapters/03-soft-attention",
    title=("the softmax's O(n) backward", "softmax 的 O(n) 反向计算"),
    signature="softmax_backward(dy, cache)", outputs=("dx",),
    make_cases=_softmax_backward_cases, solution="attention_np.core.softmax_backward",
    cache_from="softmax_forward(x, axis, mask)",
    cache_fields=(("y", ("the softmax output y, x's shape (0 at masked entries)",
                         "softmax 的输出 y，形状与 x 相同（被屏蔽处为 0）")),
                  ("axis", ("the axis the softmax was taken over", "softmax 所沿的轴"))),
    doc="""Forward: y_i = exp(x_i − m) / Σ_j exp(x_j − m) along cache["axis"] (0 where masked)

dy (...) = ∂L/∂y, y's shape → dx (...) = ∂L/∂x, same shape and dtype.""",
    task=("""Given dy = ∂L/∂y for y = softmax(x), return dx = ∂L/∂x. Do it in O(n) per row,
without building the n×n Jacobian: y is all you need (it is in the cache). Masked entries have
y = 0, so their gradient comes out 0 by itself.""",
          """已知 y = softmax(x) 的上游梯度 dy = ∂L/∂y，返回 dx = ∂L/∂x。每行只用 O(n) 的计算，
不要构造 n×n 的雅可比矩阵：只需要 y（它就在 cache 里）。被屏蔽的位置 y = 0，它们的梯度自然为 0。"""),
    hints=(("∂y_j/∂x_i = y_j (δ_ij − y_i). Multiply by dy_j and sum over j.",
            "∂y_j/∂x_i = y_j (δ_ij − y_i)。乘以 dy_j，再对 j 求和。"),
           ("Σ_j dy_j y_j is one number per row: np.sum(dy * y, axis=axis, keepdims=True).",
            "Σ_j dy_j y_j 每行只有一个数：np.sum(dy * y, axis=axis, keepdims=True)。"),
           ("Sum over cache['axis'], not always the last axis.",
            "沿 cache['axis'] 求和，而不是总沿最后一个轴。")))

LINEAR_BACKWARD = Exercise(
    name="linear_backward", section="§4.2", page="chapters/06-self-attention",
    title=("the linear layer's backward", "线性层的反向计算"),
    signature="linear_backward(dy, cache)", outputs=("dx", "dW", "db"),
    make_cases=_linear_backward_cases, solution="attention_np.core.linear_backward",
    cache_from="linear_forward(x, W, b)",
    cache_fields=(("x", ("the input, (..., d_in)", "输入，(..., d_in)")),
                  ("W", ("the weights, (d_in, d_out)", "权重，(d_in, d_out)")),
                  ("has_bias", ("whether the forward had a bias b (d_out,)",
                                "前向计算是否带偏置 b (d_out,)"))),
    doc="""Forward: y = x W + b   (x (..., d_in), W (d_in, d_out), b (d_out,) or None)

dy (..., d_out) → dx (..., d_in), dW (d_in, d_out), db (d_out,) — or None without a bias.""",
    task=("""Given dy = ∂L/∂y for y = x W + b (row vectors: x is (..., d_in), any number of
leading axes), return the gradients of x, W and b. A parameter is used by every row, so its
gradient sums over all of them. Return db = None when the forward had no bias. (The queries,
keys and values of self-attention are three such layers: q = x W_q + b_q.)""",
          """已知 y = x W + b 的 dy = ∂L/∂y（行向量约定：x 为 (..., d_in)，前导轴个数不限），
返回 x、W 和 b 的梯度。参数被每一行共用，所以它的梯度要对所有行求和。前向计算没有偏置时返回
db = None。（自注意力的查询、键和值就是三个这样的层：q = x W_q + b_q。）"""),
    hints=(("Check shapes first: dx must look like x, dW like W (d_in, d_out), db like b.",
            "先核对形状：dx 与 x 同形，dW 与 W (d_in, d_out) 同形，db 与 b 同形。"),
           ("Flatten the leading axes: x.reshape(-1, d_in) and dy.reshape(-1, d_out) turn "
            "the sum over rows into one matrix product.",
            "把前导轴展平：x.reshape(-1, d_in) 和 dy.reshape(-1, d_out) 能把对各行的求和变成"
            "一次矩阵乘法。"),
           ("dW = xᵀ dy, not dyᵀ x (that is its transpose).",
            "dW = xᵀ dy，而不是 dyᵀ x（那是它的转置）。")))
