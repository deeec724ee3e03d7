"""The online softmax, one flash-attention block loop (chapter 12), attention rollout (chapter 10)
and one decoder step of Bahdanau attention (chapter 11, machine translation).

The library has no NumPy online softmax (its flash attention is the Numba kernel
``attention_np.kernels.flash_attention_forward``): that exercise is graded against the function that computes
the same thing, scaled dot-product attention, and its lse against the log of the weights."""
from __future__ import annotations

import numpy as np

from attention_np.apps.seq2seq.attention import bahdanau_step_forward
from attention_np.core import softmax_forward
from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text)
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise
from attention_np.exercises.tasks.sdpa import row_dead
from attention_np.scores import scaled_dot_score_forward
from attention_np.self_attention import scaled_dot_product_attention_forward as sdpa_forward
from attention_np.viz.analysis import attention_rollout



def _large() -> str:
    return say("the scores are large: exp overflows unless you subtract the running max first",
               "得分很大：不先减去当前的最大值，exp 就会溢出")


def _flash_expected(q, k, v, mask):
    """{out, lse} from the library: out from scaled dot-product attention, and
    lse_i = e_ij − log α_ij at the key j of the largest weight (−inf for a query with no key)."""
    out, weights, _ = sdpa_forward(q, k, v, mask)
    Tq, Tk, D = q.shape[-2], k.shape[-2], q.shape[-1]
    scores = scaled_dot_score_forward(q.reshape(-1, Tq, D), k.reshape(-1, Tk, D))[0]
    j = np.argmax(weights, axis=-1)[..., None]                               # (B, H, Tq, 1)
    alpha = np.take_along_axis(weights, j, -1)[..., 0]
    e = np.take_along_axis(scores.reshape(weights.shape), j, -1)[..., 0]
    with np.errstate(divide="ignore"):
        lse = np.where(alpha > 0, e - np.log(alpha), -np.inf).astype(q.dtype)
    return {"out": out, "lse": lse}


def _flash_cases(rng):
    cases = []
    for (dtype, masked), scale in zip(SETTINGS + ((np.float32, False),), (1, 1, 1, 1, 8.0)):
        B, H, Tq, D, Dv = dims(rng, 5, 2, 6)
        Tk = int(rng.choice([t for t in (5, 6, 7, 9, 10, 11) if t != Tq]))   # not a multiple of 4
        q, k = randn(rng, (B, H, Tq, D), dtype, scale), randn(rng, (B, H, Tk, D), dtype, scale)
        v = randn(rng, (B, H, Tk, Dv), dtype)
        mask = dead_row_mask(rng, (B, 1, Tq, Tk)) if masked else None
        want = _flash_expected(q, k, v, mask)
        unscaled = (q * np.sqrt(D)).astype(dtype)
        mistakes = [(say("equals attention without the 1/√D scale",
                         "等于不做 1/√D 缩放的注意力"), _flash_expected(unscaled, k, v, mask))]
        wshape = (B, H, Tq, Tk)
        cases.append(Case(
            label(dtype, shape_text(q=q, k=k, v=v), masked,
                  say("large scores", "得分很大") if scale > 1 else ""),
            (q, k, v), want, kwargs={"mask": mask}, dtype=np.dtype(dtype), masked=masked,
            dead={} if mask is None else {"out": row_dead(mask, wshape, want["out"].shape),
                                          "lse": dead_positions(mask, wshape)[..., 0]},
            scale_dim=D, variants=lambda m=mistakes: m,
            nonfinite_hint=_large() if scale > 1 else ""))
    return cases


def _rollout_cases(rng):
    cases = []
    for (dtype, masked), residual in zip(SETTINGS, (0.5, 0.3, 0.5, 0.2)):
        L, H, T = dims(rng, 3, 2, 6)
        mask = dead_row_mask(rng, (T, T)) if masked else None
        attentions = softmax_forward(randn(rng, (L, H, T, T), dtype, 2.0), mask=mask)[0]
        mistakes = [
            (say("multiplies the layers in the wrong order: R = Â_L ⋯ Â_2 Â_1, the last layer "
                 "on the left (R ← Â_l R)", "各层相乘的顺序反了：R = Â_L ⋯ Â_2 Â_1，最后一层在"
                 "最左边（R ← Â_l R）"),
             {"rollout": attention_rollout(attentions[::-1], residual)}),
            (say("fuses the heads with max: average them, Ā = mean over heads",
                 "用 max 融合各个头：应取平均，Ā = 各头的均值"),
             {"rollout": attention_rollout(attentions, residual, "max")}),
            (say("leaves out the residual: Â = r·I + (1 − r)·Ā, rows renormalised",
                 "漏掉了残差：Â = r·I + (1 − r)·Ā，再把各行重新归一化"),
             {"rollout": attention_rollout(attentions, 0.0)}),
            (say("swaps the weights: Â = r·I + (1 − r)·Ā puts r on the identity",
                 "把两个权重弄反了：Â = r·I + (1 − r)·Ā 中 r 乘的是单位矩阵"),
             {"rollout": attention_rollout(attentions, 1.0 - residual)})]
        cases.append(Case(
            label(dtype, shape_text(attentions=attentions), masked,
                  say(f"residual {residual}", f"残差 {residual}")),
            (attentions,), {"rollout": attention_rollout(attentions, residual)},
            kwargs={"residual": residual}, dtype=np.dtype(dtype), masked=masked,
            variants=lambda m=mistakes: m))
    return cases


def _bahdanau_cases(rng):
    cases = []
    for dtype, masked in SETTINGS:
        B, Tk, Hq, Hk, A = dims(rng, 5, 2, 7)
        params = {"W_q": randn(rng, (Hq, A), dtype, 0.5), "v": randn(rng, A, dtype)}
        q, keys = randn(rng, (B, Hq), dtype), randn(rng, (B, Tk, Hk), dtype)
        kp = (keys @ randn(rng, (Hk, A), dtype, 0.5)).astype(dtype)         # h W_k, once
        key_mask = dead_row_mask(rng, (B, Tk)) if masked else np.ones((B, Tk), dtype=bool)
        context, weights, _ = bahdanau_step_forward(params, q, kp, keys, key_mask)
        ignored = bahdanau_step_forward(params, q, kp, keys, np.ones_like(key_mask))[:2]
        mistakes = [(say("ignores key_mask: padded source positions must get weight 0",
                         "忽略了 key_mask：源句中的填充位置权重必须为 0"),
                     dict(zip(("context", "weights"), ignored)))]
        dead = dead_positions(key_mask, (B, Tk))
        cases.append(Case(
            label(dtype, shape_text(q=q, kp=kp, keys=keys), masked, "" if masked else
                  say("key_mask all True", "key_mask 全为 True")), (params, q, kp, keys, key_mask),
            {"context": context, "weights": weights}, dtype=np.dtype(dtype), masked=masked,
            dead={"weights": dead, "context": np.broadcast_to(dead[:, :1], context.shape)},
            variants=lambda m=mistakes: m))
    return cases


FLASH = Exercise(
    name="flash_attention_forward", section="§8.2", page="chapters/12-efficient-attention",
    title=("the online softmax: one flash-attention block loop",
           "在线 softmax：flash attention 的分块循环"),
    signature="flash_attention_forward(q, k, v, mask=None)",
    outputs=("out", "lse"), make_cases=_flash_cases,
    solution="attention_np.kernels.flash.flash_attention_forward",
    reference="attention_np.self_attention.scaled_dot_product_attention_forward",
    preamble="BLOCK = 4   # keys per block: small, so that every case takes several blocks",
    doc="""out = softmax(e) v  and  lse = log Σ_j exp(e_j) per query,  e = q kᵀ / √D (masked),
computed over blocks of BLOCK keys, never holding all of e: per query a running max m,
a running sum l of exp(e_j − m), and a running output acc = Σ_j exp(e_j − m) v_j.

q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv), mask broadcastable to
(B, H, Tq, Tk) or None → out (B, H, Tq, Dv), lse (B, H, Tq), in q's dtype.""",
    task=("""Flash attention never holds the (Tq, Tk) weights: it walks over the keys block
by block and keeps, per query, the running max of the scores, the running sum of their
exponentials and the running weighted sum of the values — rescaling both when the max grows.
Write that loop in NumPy (all queries at once, one block of keys per step) and return the
output and the log-sum-exp of each query's scores, like the library's Numba kernel. It is graded
against plain scaled dot-product attention: the result must be the same.""",
          """flash attention 从不保存 (Tq, Tk) 的权重：它逐块遍历键，为每个查询维护得分的当前
最大值、它们的指数之和，以及值的加权和——最大值变大时，把后两者按比例重新缩放。用 NumPy 写出这个
循环（所有查询一起算，每步处理一块键），像代码库的 Numba 内核那样返回输出和每个查询得分的
log-sum-exp。评分时与普通的缩放点积注意力比较：结果必须相同。"""),
    hints=(("Start with m = −inf, l = 0, acc = 0 for every query (shapes (B, H, Tq, 1) and "
            "(B, H, Tq, Dv)).",
            "对每个查询，从 m = −inf、l = 0、acc = 0 开始（形状分别为 (B, H, Tq, 1) 和 "
            "(B, H, Tq, Dv)）。"),
           ("When the max grows from m to m' = max(m, max_j e_j), everything accumulated so "
            "far was computed with exp(e − m): multiply l and acc by exp(m − m') before "
            "adding the new block's exp(e_j − m') and exp(e_j − m') v_j.",
            "当最大值从 m 增大到 m' = max(m, max_j e_j) 时，之前累加的量都是按 exp(e − m) 算的："
            "先把 l 和 acc 乘以 exp(m − m')，再加上新一块的 exp(e_j − m') 和 exp(e_j − m') v_j。"),
           ("At the end out = acc / l and lse = m + log l.",
            "最后 out = acc / l，lse = m + log l。"),
           ("Masked keys: set their scores to −inf. A query whose keys are all masked keeps "
            "m = −inf, and exp(−inf − (−inf)) is NaN: use 0 in place of a non-finite m' in "
            "the exponentials, and divide by l only where l > 0.",
            "被屏蔽的键：把它们的得分设为 −inf。所有键都被屏蔽的查询会一直保持 m = −inf，而 "
            "exp(−inf − (−inf)) 是 NaN：在指数里把不是有限数的 m' 换成 0，并且只在 l > 0 "
            "的地方除以 l。")))

ROLLOUT = Exercise(
    name="attention_rollout", section="§7.2", page="chapters/10-seeing-attention",
    title=("attention rollout", "注意力展开"),
    signature="attention_rollout(attentions, residual=0.5)", outputs=("rollout",),
    make_cases=_rollout_cases, solution="attention_np.viz.analysis.attention_rollout",
    doc="""R = Â_L ⋯ Â_2 Â_1,   Â_l = rows renormalised of r·I + (1 − r)·mean_h A_l,h

attentions (L, H, T, T), the weights of every layer and head (rows sum to 1, or 0 for a
fully masked row), residual r in [0, 1] → rollout (T, T), in the attentions' dtype.""",
    task=("""Attention rollout (Abnar & Zuidema, 2020) asks how much each output token of
the last layer draws on each input token, through all layers. Per layer, average the heads,
add the residual connection as r·I + (1 − r)·Ā, renormalise the rows to sum 1, then multiply
the layers together — the first layer acts first. (The library's version can also fuse the
heads with max or min; here it is the mean.)""",
          """注意力展开（attention rollout，Abnar & Zuidema, 2020）要回答：穿过所有层之后，
最后一层的每个输出词元在多大程度上取自每个输入词元。对每一层，先对各个头取平均，再按
r·I + (1 − r)·Ā 加上残差连接，把各行重新归一化为和为 1，然后把各层乘起来——第一层最先作用。
（代码库的版本还能用 max 或 min 融合各个头；这里用均值。）"""),
    hints=(("Start from R = I (T × T) and apply the layers in order: R ← Â_l R.",
            "从 R = I（T × T）开始，按顺序作用各层：R ← Â_l R。"),
           ("A fully masked row of A is 0: after the residual it holds only r on the "
            "diagonal, which renormalises to 1. Divide by a row sum of 0 as if it were 1.",
            "A 中整行被屏蔽的行全为 0：加上残差后只剩对角线上的 r，重新归一化后变成 1。"
            "行和为 0 时按 1 来除。"),
           ("Keep the dtype: np.eye(T, dtype=attentions.dtype).",
            "保持 dtype：np.eye(T, dtype=attentions.dtype)。")))

BAHDANAU = Exercise(
    name="bahdanau_step_forward", section="§6.1", page="chapters/11-projects/translation",
    title=("one decoder step of Bahdanau attention", "Bahdanau 注意力的一步解码"),
    signature="bahdanau_step_forward(params, q, kp, keys, key_mask)",
    outputs=("context", "weights", "cache"), graded=("context", "weights"),
    make_cases=_bahdanau_cases,
    solution="attention_np.apps.seq2seq.attention.bahdanau_step_forward",
    doc="""e_j = vᵀ tanh(q W_q + kp_j),  α = softmax(e) over the unmasked j,  c = Σ_j α_j h_j

params {"W_q": (Hq, A), "v": (A,)}, q (B, Hq) the decoder state, kp (B, Tk, A) = keys W_k
(projected once per sentence), keys h (B, Tk, Hk), key_mask (B, Tk) bool (True = real token)
→ context (B, Hk), weights (B, Tk), cache (anything; not graded).""",
    task=("""One step of the attentive decoder of Bahdanau et al. (2015), the machine
translation of the article's §6.1: the previous decoder state q scores every encoder state with
the additive score, the scores become weights over the real (unpadded) source positions, and
the context is the weighted average of the encoder states. The keys' projection kp = h W_k
does not depend on the step, so it is computed once per sentence and passed in.""",
          """Bahdanau et al.（2015）带注意力的解码器走一步，也就是原文 §6.1 的机器翻译：上一步的
解码器状态 q 用加性打分函数给每个编码器状态打分，得分在真实的（未填充的）源句位置上变成权重，
上下文向量就是编码器状态的加权平均。键的投影 kp = h W_k 与解码步无关，所以每个句子只算一次，
作为参数传入。"""),
    hints=(("q W_q is (B, A): give it a key axis, [:, None, :], to add it to kp (B, Tk, A).",
            "q W_q 的形状是 (B, A)：给它加一个键轴 [:, None, :]，才能与 kp (B, Tk, A) 相加。"),
           ("The scores are (B, Tk): the softmax runs over the keys of each sentence (axis -1), "
            "with key_mask as its mask — your softmax_forward does both.",
            "得分的形状是 (B, Tk)：softmax 沿每个句子的键（axis -1）计算，以 key_mask 为掩码——"
            "你的 softmax_forward 两样都能做。"),
           ("c = Σ_j α_j h_j is a batched product: (α[:, None, :] @ keys)[:, 0].",
            "c = Σ_j α_j h_j 是一次批量乘法：(α[:, None, :] @ keys)[:, 0]。")))
