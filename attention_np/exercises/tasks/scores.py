"""The backward passes of three score functions (chapter 4): the dot score, Luong's general
(bilinear) score and the additive score (Bahdanau's; Luong's "concat")."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import dims, label, randn, shape_text, upcast
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.scores import (additive_score_backward, additive_score_forward,
                                 dot_score_backward, dot_score_forward, general_score_backward,
                                 general_score_forward)

DTYPES = (np.float64, np.float32, np.float64, np.float32)


def _dot_cases(rng):
    cases = []
    for dtype in DTYPES:
        B, Tq, Tk, D = dims(rng, 4)
        q, k = randn(rng, (B, Tq, D), dtype), randn(rng, (B, Tk, D), dtype)
        scores, cache = dot_score_forward(q, k)
        dscores = randn(rng, scores.shape, dtype)
        dq, dk = dot_score_backward(dscores, cache)
        fd = FiniteDiff(lambda q, k: dot_score_forward(q, k)[0], upcast(q=q, k=k),
                        dscores.astype(np.float64), {"dq": "q", "dk": "k"})
        cases.append(Case(label(dtype, shape_text(q=q, k=k)), (dscores, cache),
                          {"dq": dq, "dk": dk}, dtype=dtype, fd=fd))
    return cases


def _general_mistakes(dscores, cache):
    q, k, W, qW = cache["q"], cache["k"], cache["W"], cache["qW"]
    dqW = dscores @ k
    if W.shape[0] != W.shape[1]:
        return []                                  # each mistake changes a shape: said as such
    return [(say("equals de k W: W maps q to q W, so the gradient goes back through Wᵀ "
                 "(dq = de k Wᵀ)", "等于 de k W：W 把 q 映射为 q W，梯度要经过 Wᵀ 传回"
                 "（dq = de k Wᵀ）"), {"dq": dqW @ W}),
            (say("is deᵀ q, without W: the keys meet q W, not q (dk = deᵀ (q W))",
                 "等于 deᵀ q，漏掉了 W：与键相乘的是 q W，而不是 q（dk = deᵀ (q W)）"),
             {"dk": np.swapaxes(dscores, -1, -2) @ q}),
            (say("multiplies d(q W) by q W instead of q: the input of W is q, so "
                 "dW = Σ qᵀ d(q W)", "用 q W 而不是 q 去乘 d(q W)：W 的输入是 q，所以 "
                 "dW = Σ qᵀ d(q W)"),
             {"dW": np.einsum("bid,bie->de", qW, dqW)})]


def _general_cases(rng):
    cases = []
    for i, dtype in enumerate(DTYPES):
        B, Tq, Tk, Dq, Dk = dims(rng, 5, 2, 8)
        Dk = Dq if i >= 2 else Dk                       # a square W: transposes keep the shape
        q, k = randn(rng, (B, Tq, Dq), dtype), randn(rng, (B, Tk, Dk), dtype)
        W = randn(rng, (Dq, Dk), dtype, 0.7)
        scores, cache = general_score_forward(q, k, W)
        dscores = randn(rng, scores.shape, dtype)
        names = ("dq", "dk", "dW")
        fd = FiniteDiff(lambda q, k, W: general_score_forward(q, k, W)[0], upcast(q=q, k=k, W=W),
                        dscores.astype(np.float64), dict(zip(names, "qkW")))
        cases.append(Case(label(dtype, shape_text(q=q, k=k, W=W)), (dscores, cache),
                          dict(zip(names, general_score_backward(dscores, cache))), dtype=dtype,
                          fd=fd, variants=lambda d=dscores, c=cache: _general_mistakes(d, c)))
    return cases


def _additive_cases(rng):
    cases = []
    for dtype in DTYPES:
        B, Tq, Tk, Dq, Dk, A = dims(rng, 6, 2, 8)
        q, k = randn(rng, (B, Tq, Dq), dtype), randn(rng, (B, Tk, Dk), dtype)
        W_q, W_k, v = (randn(rng, s, dtype, 0.7) for s in ((Dq, A), (Dk, A), (A,)))
        scores, cache = additive_score_forward(q, k, W_q, W_k, v)
        dscores = randn(rng, scores.shape, dtype)
        names = ("dq", "dk", "dW_q", "dW_k", "dv")
        fd = FiniteDiff(lambda **a: additive_score_forward(**a)[0],
                        upcast(q=q, k=k, W_q=W_q, W_k=W_k, v=v), dscores.astype(np.float64),
                        dict(zip(names, ("q", "k", "W_q", "W_k", "v"))))
        cases.append(Case(label(dtype, shape_text(q=q, k=k, W_q=W_q, W_k=W_k)),
                          (dscores, cache),
                          dict(zip(names, additive_score_backward(dscores, cache))),
                          dtype=dtype, fd=fd))
    return cases


DOT = Exercise(
    name="dot_score_backward", section="§4.1.3", page="chapters/04-score-functions",
    title=("the dot-product score's backward", "点积打分函数的反向计算"),
    signature="dot_score_backward(dscores, cache)", outputs=("dq", "dk"),
    make_cases=_dot_cases, solution="attention_np.scores.dot_score_backward",
    cache_from="dot_score_forward(q, k)",
    cache_fields=(("q", ("the queries, (B, Tq, D)", "查询，(B, Tq, D)")),
                  ("k", ("the keys, (B, Tk, D)", "键，(B, Tk, D)"))),
    doc="""Forward: e = q kᵀ, that is e_ij = q_iᵀ k_j

dscores (B, Tq, Tk) = ∂L/∂e → dq (B, Tq, D), dk (B, Tk, D).""",
    task=("""The simplest score, e_ij = q_iᵀ k_j (the article's s_tᵀ h_j), is one batched
matrix product e = q kᵀ. Given dscores = ∂L/∂e, return the gradients of q and of k. Tq and Tk
differ, so a transposed product has the wrong shape.""",
          """最简单的打分函数 e_ij = q_iᵀ k_j（原文的 s_tᵀ h_j）就是一次批量矩阵乘法 e = q kᵀ。
已知 dscores = ∂L/∂e，返回 q 和 k 的梯度。Tq 与 Tk 不相等，所以乘反了的结果形状会不对。"""),
    hints=(("e_ij = Σ_d q_id k_jd: ∂e_ij/∂q_id = k_jd, so dq_id = Σ_j de_ij k_jd.",
            "e_ij = Σ_d q_id k_jd：∂e_ij/∂q_id = k_jd，所以 dq_id = Σ_j de_ij k_jd。"),
           ("The transpose of a batch of matrices swaps the last two axes only: "
            "np.swapaxes(x, -1, -2), not x.T (which reverses every axis).",
            "一批矩阵的转置只对调最后两个轴：用 np.swapaxes(x, -1, -2)，而不是 x.T"
            "（它会把所有轴倒过来）。"),
           ("Return (dq, dk) in that order.", "按 (dq, dk) 的顺序返回。")))

GENERAL = Exercise(
    name="general_score_backward", section="§4.1.3", page="chapters/04-score-functions",
    title=("Luong's general (bilinear) score's backward", "Luong 的 general（双线性）打分函数的反向计算"),
    signature="general_score_backward(dscores, cache)", outputs=("dq", "dk", "dW"),
    make_cases=_general_cases, solution="attention_np.scores.general_score_backward",
    cache_from="general_score_forward(q, k, W)",
    cache_fields=(("q", ("the queries, (B, Tq, Dq)", "查询，(B, Tq, Dq)")),
                  ("k", ("the keys, (B, Tk, Dk)", "键，(B, Tk, Dk)")),
                  ("W", ("the bilinear form, (Dq, Dk)", "双线性形式的矩阵，(Dq, Dk)")),
                  ("qW", ("q W, (B, Tq, Dk): the queries mapped into the keys' space",
                          "q W，(B, Tq, Dk)：映射到键空间里的查询"))),
    doc="""Forward: e_ij = q_iᵀ W k_j, that is e = (q W) kᵀ

dscores (B, Tq, Tk) → dq (B, Tq, Dq), dk (B, Tk, Dk), dW (Dq, Dk).""",
    task=("""Luong et al. (2015) score a query against a key through a learned matrix W:
e_ij = q_iᵀ W k_j, which lets queries and keys have different sizes Dq and Dk. It is a dot
score between q W and k. Given dscores = ∂L/∂e, return the gradients of q, k and W.""",
          """Luong et al.（2015）用一个可学习的矩阵 W 给查询和键打分：e_ij = q_iᵀ W k_j，
这样查询和键的维度 Dq、Dk 可以不同。它就是 q W 与 k 之间的点积打分。已知 dscores = ∂L/∂e，
返回 q、k 和 W 的梯度。"""),
    hints=(("Treat u = q W as the query of a dot score: du = de k and dk = deᵀ u.",
            "把 u = q W 当作点积打分的查询：du = de k，dk = deᵀ u。"),
           ("u = q W is a linear layer without bias: dq = du Wᵀ.",
            "u = q W 是不带偏置的线性层：dq = du Wᵀ。"),
           ("W is shared by every batch row and query: dW = Σ qᵀ du — flatten to "
            "(B·Tq, Dq) and (B·Tq, Dk) for one matrix product.",
            "W 被所有批次行和查询共用：dW = Σ qᵀ du——展平成 (B·Tq, Dq) 和 (B·Tq, Dk)，"
            "一次矩阵乘法即可。")))

ADDITIVE = Exercise(
    name="additive_score_backward", section="§4.1.3", page="chapters/04-score-functions",
    title=("the additive (Bahdanau; Luong's concat) score's backward",
           "加性（Bahdanau；即 Luong 的 concat）打分函数的反向计算"),
    signature="additive_score_backward(dscores, cache)",
    outputs=("dq", "dk", "dW_q", "dW_k", "dv"), make_cases=_additive_cases,
    solution="attention_np.scores.additive_score_backward",
    cache_from="additive_score_forward(q, k, W_q, W_k, v)",
    cache_fields=(("q", ("the queries, (B, Tq, Dq)", "查询，(B, Tq, Dq)")),
                  ("k", ("the keys, (B, Tk, Dk)", "键，(B, Tk, Dk)")),
                  ("W_q", ("(Dq, A)", "(Dq, A)")), ("W_k", ("(Dk, A)", "(Dk, A)")),
                  ("v", ("(A,)", "(A,)")),
                  ("h", ("tanh(q_i W_q + k_j W_k) for every pair, (B, Tq, Tk, A)",
                         "每一对 (i, j) 的 tanh(q_i W_q + k_j W_k)，(B, Tq, Tk, A)"))),
    doc="""Forward: e_ij = vᵀ h_ij,   h_ij = tanh(q_i W_q + k_j W_k)

dscores (B, Tq, Tk) → dq (B, Tq, Dq), dk (B, Tk, Dk), dW_q (Dq, A), dW_k (Dk, A), dv (A,).""",
    task=("""Bahdanau's score (Luong's "concat") runs a one-layer network on every (query,
key) pair: e_ij = vᵀ tanh(q_i W_q + k_j W_k). Walk the forward backwards — e = h v, h = tanh(a),
a_ij = q_i W_q + k_j W_k — and return the gradients of q, k, W_q, W_k and v. The cache keeps
the tanh activations h of every pair.""",
          """Bahdanau 的打分函数（Luong 称之为 “concat”）在每一对（查询，键）上跑一个单层网络：
e_ij = vᵀ tanh(q_i W_q + k_j W_k)。把前向计算倒着走一遍——e = h v，h = tanh(a)，
a_ij = q_i W_q + k_j W_k——返回 q、k、W_q、W_k 和 v 的梯度。cache 里保存了每一对的 tanh 激活 h。"""),
    hints=(("tanh'(a) = 1 − tanh(a)² = 1 − h², and h is in the cache.",
            "tanh'(a) = 1 − tanh(a)² = 1 − h²，而 h 就在 cache 里。"),
           ("da = de[..., None] * v * (1 − h²) has shape (B, Tq, Tk, A). The query part "
            "q_i W_q is shared by every key j: sum da over the key axis to get its "
            "gradient, and over the query axis for the key part.",
            "da = de[..., None] * v * (1 − h²) 的形状是 (B, Tq, Tk, A)。查询部分 q_i W_q "
            "被每个键 j 共用：沿键轴对 da 求和得到它的梯度；键的部分则沿查询轴求和。"),
           ("W_q is used by every batch row and query: dW_q sums over both "
            "(flatten to (B·Tq, Dq) and (B·Tq, A), then one matrix product).",
            "W_q 被每个批次行和每个查询使用：dW_q 要对二者求和"
            "（展平成 (B·Tq, Dq) 和 (B·Tq, A)，再做一次矩阵乘法）。")))

EXERCISES = [DOT, GENERAL, ADDITIVE]
