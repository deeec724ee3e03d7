"""Linear (kernelised) attention's forward in O(T) (chapter 12)."""
from __future__ import annotations

import numpy as np

from attention_np.efficient import linear_attention_forward
from attention_np.exercises.data import dims, label, randn, shape_text
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise


def _elu1(x):
    return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))


def _linear_with(q, k, v, causal, eps, phi=_elu1, phi_k=True, normalise=True, strict=False):
    """Linear attention the quadratic way, in float64, with the knobs of its usual mistakes."""
    fq = phi(q.astype(np.float64))
    fk = phi(k.astype(np.float64)) if phi_k else k.astype(np.float64)
    a = fq @ np.swapaxes(fk, -1, -2)                                       # (..., Tq, Tk)
    if causal:
        a = np.tril(a, -1 if strict else 0)
    out = a @ v.astype(np.float64)
    if normalise:
        out = out / (a.sum(axis=-1, keepdims=True) + eps)
    return {"out": out.astype(q.dtype)}


def _mistakes(q, k, v, causal, eps):
    args = (q, k, v, causal, eps)
    found = [(say("uses φ(x) = relu(x): the feature map is elu(x) + 1, positive everywhere, so "
                  "that no query's weights are all 0", "用了 φ(x) = relu(x)：特征映射应是 "
                  "elu(x) + 1，它处处为正，这样任何查询的权重都不会全为 0"),
              _linear_with(*args, phi=lambda x: np.maximum(x, 0))),
             (say("applies φ to q only: the kernel is φ(q_i) · φ(k_j)",
                  "只对 q 用了 φ：核函数是 φ(q_i) · φ(k_j)"), _linear_with(*args, phi_k=False)),
             (say("is not normalised: divide by φ(q_i) · Σ_j φ(k_j) + ε",
                  "没有归一化：要除以 φ(q_i) · Σ_j φ(k_j) + ε"),
              _linear_with(*args, normalise=False))]
    if causal:
        found += [(say("ignores causal=True: query i sums over the keys j ≤ i only (prefix sums)",
                       "忽略了 causal=True：查询 i 只对 j ≤ i 的键求和（前缀和）"),
                   _linear_with(q, k, v, False, eps)),
                  (say("leaves out key i itself: the causal sums run over j ≤ i, not j < i",
                       "漏掉了键 i 自己：因果求和的范围是 j ≤ i，而不是 j < i"),
                   _linear_with(*args, strict=True))]
    return found


def _cases(rng):
    cases = []
    for dtype, causal, heads, long in ((np.float64, False, True, False),
                                       (np.float32, False, False, False),
                                       (np.float64, True, True, False),
                                       (np.float32, True, False, False),
                                       (np.float64, True, False, True)):
        B, H, Tq, Tk, D, Dv = dims(rng, 6, 2, 8)
        Tk = Tq if causal else Tk
        Tq = Tk = 150 if long else Tq
        lead = (B, H) if heads else (B,)
        q, k = randn(rng, lead + (Tq, D), dtype), randn(rng, lead + (Tk, D), dtype)
        v = randn(rng, lead + (Tk, Dv), dtype)
        out = linear_attention_forward(q, k, v, causal)[0]
        cases.append(Case(
            label(dtype, shape_text(q=q, k=k, v=v), None, "causal=True" if causal else ""),
            (q, k, v), {"out": out}, kwargs={"causal": causal}, dtype=np.dtype(dtype),
            variants=lambda a=(q, k, v, causal, 1e-6): _mistakes(*a)))
    return cases


LINEAR_ATTENTION = Exercise(
    name="linear_attention_forward", section="§8.2", page="chapters/12-efficient-attention",
    title=("linear attention in O(T)", "O(T) 的线性注意力"),
    signature="linear_attention_forward(q, k, v, causal=False, eps=1e-6)",
    outputs=("out", "weights", "cache"), graded=("out",), make_cases=_cases,
    solution="attention_np.efficient.linear.linear_attention_forward",
    forbidden=("attention_np.efficient.linear.kernelized_attention_forward",
               "attention_np.efficient.linear.featurized_attention_forward"),
    doc="""out_i = φ(q_i) S / (φ(q_i) · z + ε),  S = Σ_j φ(k_j) v_jᵀ (D, Dv),  z = Σ_j φ(k_j) (D,),
φ(x) = elu(x) + 1;  with causal the sums run over j ≤ i (prefix sums)

q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv), causal needs Tq = Tk
→ out (..., Tq, Dv) in q's dtype, weights None (never formed), cache (anything; not graded).""",
    task=("""Katharopoulos et al. (2020) replace exp(q · k) by a kernel φ(q) · φ(k) with a
positive feature map, φ(x) = elu(x) + 1. Then associativity removes the (Tq, Tk) matrix:
Σ_j (φ(q_i) · φ(k_j)) v_j = φ(q_i) (Σ_j φ(k_j) v_jᵀ), one (D, Dv) sum for all queries, and the
normaliser likewise — O(T) instead of O(T²). With causal=True the sums become prefix sums over
j ≤ i (the RNN view of the paper's title). Never form the (Tq, Tk) weights; return None for
them.""",
          """Katharopoulos et al.（2020）用一个正的特征映射 φ(x) = elu(x) + 1，把 exp(q · k) 换成核
φ(q) · φ(k)。这样利用结合律就不需要 (Tq, Tk) 的矩阵了：Σ_j (φ(q_i) · φ(k_j)) v_j =
φ(q_i) (Σ_j φ(k_j) v_jᵀ)，所有查询共用一个 (D, Dv) 的和，归一化项同理——代价从 O(T²) 降到 O(T)。
causal=True 时这些和变成对 j ≤ i 的前缀和（也就是论文标题里所说的 RNN 视角）。不要构造
(Tq, Tk) 的权重；权重那一项返回 None。"""),
    hints=(("φ(x) = elu(x) + 1 is x + 1 for x > 0 and eˣ otherwise: "
            "np.where(x > 0, x + 1, np.exp(np.minimum(x, 0))).",
            "φ(x) = elu(x) + 1：x > 0 时为 x + 1，否则为 eˣ："
            "np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))。"),
           ("Non-causal: S = φ(k)ᵀ v (..., D, Dv) and z = φ(k) summed over the keys; then "
            "out = (φ(q) S) / (φ(q) · z + ε).",
            "非因果：S = φ(k)ᵀ v (..., D, Dv)，z = φ(k) 对所有键求和；然后 "
            "out = (φ(q) S) / (φ(q) · z + ε)。"),
           ("Causal: the outer products φ(k_j) v_jᵀ (..., T, D, Dv), then np.cumsum over T, "
            "give every prefix S_i at once; np.cumsum of φ(k) gives z_i.",
            "因果：先算外积 φ(k_j) v_jᵀ (..., T, D, Dv)，再沿 T 做 np.cumsum，一次得到所有前缀 "
            "S_i；对 φ(k) 做 np.cumsum 得到 z_i。")))

EXERCISES = [LINEAR_ATTENTION]
