"""Soft attention's backward (chapter 3), hard attention's REINFORCE estimator (chapter 5), and
soft attention's backward through attention dropout (chapter 6)."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import (SETTINGS, dead_positions, dead_row_mask, dims, label,
                                         randn, shape_text, upcast)
from attention_np.exercises.lang import say
from attention_np.core import softmax_backward
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.hard import hard_attention_backward, hard_attention_forward
from attention_np.soft import soft_attention_backward, soft_attention_forward


def _soft_cases(rng):
    cases = []
    for i, (dtype, masked) in enumerate(SETTINGS):
        B, H, Tq, Tk, Dv = dims(rng, 5)
        lead = (B, H) if i % 2 == 0 else (B,)                          # heads > 1, or none
        scores, values = randn(rng, lead + (Tq, Tk), dtype, 2.0), randn(rng, lead + (Tk, Dv), dtype)
        mask = dead_row_mask(rng, scores.shape) if masked else None
        context, _, cache = soft_attention_forward(scores, values, mask)
        dcontext = randn(rng, context.shape, dtype)
        dscores, dvalues, dalpha = soft_attention_backward(dcontext, cache, return_dweights=True)
        fd = FiniteDiff(lambda scores, values, mask=mask:
                        soft_attention_forward(scores, values, mask)[0],
                        upcast(scores=scores, values=values), dcontext.astype(np.float64),
                        {"dscores": "scores", "dvalues": "values"})
        mistakes = [(say("equals dα = dc hᵀ, the gradient with respect to the weights: push it "
                         "through the softmax backward, softmax_backward(dα, cache['softmax'])",
                         "等于 dα = dc hᵀ，即对权重的梯度：还要把它送进 softmax 的反向计算，"
                         "softmax_backward(dα, cache['softmax'])"),
                     {"dscores": dalpha})]
        cases.append(Case(
            label(dtype, shape_text(scores=scores, values=values), masked), (dcontext, cache),
            {"dscores": dscores, "dvalues": dvalues}, dtype=dtype, masked=masked, fd=fd,
            dead={} if mask is None else {"dscores": dead_positions(mask, scores.shape)},
            variants=lambda m=mistakes: m))
    return cases


def _dropout_mistakes(dcontext, cache):
    alpha, attended, values = cache["softmax"]["y"], cache["attended"], cache["values"]
    dattended = dcontext @ np.swapaxes(values, -1, -2)
    keep = (cache["dropout"]["scale"] > 0).astype(alpha.dtype)
    return [(say("is the gradient without dropout: dα̃ = dc hᵀ must go through the dropout mask "
                 "first, dα = dα̃ ⊙ cache['dropout']['scale'], then the softmax backward",
                 "是不带 dropout 的梯度：dα̃ = dc hᵀ 要先经过 dropout 掩码，"
                 "dα = dα̃ ⊙ cache['dropout']['scale']，再做 softmax 的反向计算"),
             {"dscores": softmax_backward(dattended, cache["softmax"])}),
            (say("multiplies by the keep mask but not by 1/(1 − p): inverted dropout scaled the "
                 "kept weights up, and cache['dropout']['scale'] = mask / (1 − p) holds both",
                 "乘了保留掩码，却没有乘 1/(1 − p)：反向 dropout（inverted dropout）把保留下来的"
                 "权重放大了，cache['dropout']['scale'] = mask / (1 − p) 两者都包含"),
             {"dscores": softmax_backward(dattended * keep, cache["softmax"])}),
            (say("uses the weights before dropout, α: the values were weighed by the dropped "
                 "weights α̃ = cache['attended'], so dh = α̃ᵀ dc",
                 "用了 dropout 之前的权重 α：与值相乘的是 dropout 之后的权重 "
                 "α̃ = cache['attended']，所以 dh = α̃ᵀ dc"),
             {"dvalues": np.swapaxes(alpha, -1, -2) @ dcontext})]


def _dropout_cases(rng):
    cases = []
    for i, ((dtype, masked), p) in enumerate(zip(SETTINGS, (0.1, 0.3, 0.5, 0.25))):
        B, H, Tq, Tk, Dv = dims(rng, 5)
        lead = (B, H) if i % 2 == 0 else (B,)
        scores, values = randn(rng, lead + (Tq, Tk), dtype, 2.0), randn(rng, lead + (Tk, Dv), dtype)
        mask = dead_row_mask(rng, scores.shape) if masked else None
        seed = int(rng.integers(2**31))
        context, _, cache = soft_attention_forward(scores, values, mask, p,
                                                   np.random.default_rng(seed))
        dcontext = randn(rng, context.shape, dtype)
        fd = FiniteDiff(lambda scores, values, mask=mask, p=p, seed=seed: soft_attention_forward(
                            scores, values, mask, p, np.random.default_rng(seed))[0],
                        upcast(scores=scores, values=values), dcontext.astype(np.float64),
                        {"dscores": "scores", "dvalues": "values"})
        cases.append(Case(
            label(dtype, shape_text(scores=scores, values=values), masked, f"dropout_p {p}"),
            (dcontext, cache), dict(zip(("dscores", "dvalues"),
                                        soft_attention_backward(dcontext, cache))),
            dtype=dtype, masked=masked, fd=fd,
            dead={} if mask is None else {"dscores": dead_positions(mask, scores.shape)},
            variants=lambda d=dcontext, c=cache: _dropout_mistakes(d, c)))
    return cases


def _hard_mistakes(dcontext, cache, reward):
    r = np.broadcast_to(np.asarray(reward, dtype=np.float64), cache["weights"].shape[:-1])
    onehot = cache["onehot"]
    return [(say("ignores the reward: multiply by r, one per query (broadcast to (..., Tq, 1))",
                 "忽略了奖励：要乘以 r，每个查询一个（广播成 (..., Tq, 1)）"),
             {"dscores": hard_attention_backward(dcontext, cache, 1.0)[0]}),
            (say("is −r · onehot(j*): the gradient of log α_j* with respect to the scores also "
                 "has −α (∂ log softmax(e)_j / ∂e = onehot(j) − α)",
                 "等于 −r · onehot(j*)：log α_j* 对得分的梯度还有 −α 这一项"
                 "（∂ log softmax(e)_j / ∂e = onehot(j) − α）"),
             {"dscores": (-r[..., None] * onehot).astype(onehot.dtype)})]


def _hard_cases(rng):
    cases = []
    for i, (dtype, masked) in enumerate(SETTINGS):
        B, Tq, Tk, Dv = dims(rng, 4)
        scores, values = randn(rng, (B, Tq, Tk), dtype, 2.0), randn(rng, (B, Tk, Dv), dtype)
        mask = dead_row_mask(rng, scores.shape) if masked else None
        context, _, _, cache = hard_attention_forward(
            scores, values, np.random.default_rng(int(rng.integers(2**31))), mask)
        dcontext = randn(rng, context.shape, dtype)
        per_query = i % 2 == 1
        reward = rng.standard_normal((B, Tq)) if per_query else float(rng.uniform(0.5, 2))
        dscores, dvalues = hard_attention_backward(dcontext, cache, reward)
        cases.append(Case(
            label(dtype, shape_text(scores=scores, values=values), masked,
                  say("a reward per query (B, Tq)", "每个查询一个奖励 (B, Tq)") if per_query
                  else say("one scalar reward", "一个标量奖励")),
            (dcontext, cache, reward), {"dscores": dscores, "dvalues": dvalues},
            dtype=dtype, masked=masked,
            dead={} if mask is None else {"dscores": dead_positions(mask, scores.shape)},
            variants=lambda d=dcontext, c=cache, r=reward: _hard_mistakes(d, c, r)))
    return cases


SOFT = Exercise(
    name="soft_attention_backward", section="§3.1, §4.1", page="chapters/03-soft-attention",
    title=("soft attention's backward", "软注意力的反向计算"),
    signature="soft_attention_backward(dcontext, cache)", outputs=("dscores", "dvalues"),
    make_cases=_soft_cases, solution="attention_np.soft.soft_attention_backward",
    cache_from="soft_attention_forward(scores, values, mask)",
    cache_fields=(("attended", ("the weights α, (..., Tq, Tk) (0 at masked keys)",
                                "权重 α，(..., Tq, Tk)（被屏蔽的键处为 0）")),
                  ("values", ("the values h, (..., Tk, Dv)", "值 h，(..., Tk, Dv)")),
                  ("softmax", ("the softmax's cache {'y': α, 'axis': -1}",
                               "softmax 的 cache {'y': α, 'axis': -1}")),
                  ("dropout", ("None here (no attention dropout)",
                               "这里是 None（没有注意力 dropout）"))),
    doc="""Forward: α = softmax(e) over the Tk keys (masked keys 0),  c = α h

dcontext (..., Tq, Dv) → dscores (..., Tq, Tk), dvalues (..., Tk, Dv).""",
    task=("""Soft attention is a weighted average: α = softmax(e) over the keys and
c_i = Σ_j α_ij h_j. Given dcontext = ∂L/∂c, return the gradients of the scores e and of the
values h. Leading axes (batch, heads) can be any number. You may call the library's
softmax_backward (you wrote it in the softmax_backward exercise).""",
          """软注意力就是加权平均：在键上做 α = softmax(e)，c_i = Σ_j α_ij h_j。已知
dcontext = ∂L/∂c，返回得分 e 和值 h 的梯度。前导轴（批次、注意力头）个数不限。可以调用代码库的
softmax_backward（你在 softmax_backward 那道练习里写过它）。"""),
    hints=(("c = α h is a batched matrix product: dα = dc hᵀ and dh = αᵀ dc, with ᵀ "
            "swapping the last two axes only.",
            "c = α h 是批量矩阵乘法：dα = dc hᵀ，dh = αᵀ dc，这里的 ᵀ 只对调最后两个轴。"),
           ("dα is the gradient with respect to the weights; the scores are one softmax "
            "further back: softmax_backward(dα, cache['softmax']).",
            "dα 是对权重的梯度；得分还要再往回经过一次 softmax："
            "softmax_backward(dα, cache['softmax'])。"),
           ("Masked keys have α = 0, so the softmax backward gives them de = 0 on its own.",
            "被屏蔽的键 α = 0，softmax 的反向计算自然给它们 de = 0。")))

HARD = Exercise(
    name="hard_attention_backward", section="§3.2", page="chapters/05-hard-attention",
    title=("hard attention: the REINFORCE estimator", "硬注意力：REINFORCE 估计量"),
    signature="hard_attention_backward(dcontext, cache, reward)",
    outputs=("dscores", "dvalues"), make_cases=_hard_cases,
    solution="attention_np.hard.hard_attention_backward",
    cache_from="hard_attention_forward(scores, values, rng, mask)",
    cache_fields=(("weights", ("α = softmax(e), (..., Tq, Tk)", "α = softmax(e)，(..., Tq, Tk)")),
                  ("onehot", ("onehot(j*) of the sampled key, (..., Tq, Tk); all zeros "
                              "for a fully masked query (nothing was sampled)",
                              "被采样的键的 onehot(j*)，(..., Tq, Tk)；整行被屏蔽的查询为全零"
                              "（什么也没采样）")),
                  ("Dv", ("the values' feature size", "值的特征维度")),
                  ("softmax", ("the softmax's cache (not needed here)",
                               "softmax 的 cache（这里用不到）"))),
    doc="""Forward: α = softmax(e),  j* ~ α,  c = h_j*.   Return ∂(−r · log α_j*)/∂e and ∂L/∂h.

dcontext (..., Tq, Dv), reward a float or (..., Tq) → dscores (..., Tq, Tk), dvalues
(..., Tk, Dv).""",
    task=("""Hard attention samples one key j* ~ α per query and returns its value, c = h_j*.
Sampling has no gradient, so the scores are trained with REINFORCE: for a reward r the
gradient of E[r] is E[r ∇ log α_j*]. We minimise a loss, so return the gradient of
−r · log α_j* for the scores — and for the values the ordinary gradient along the sampled path.
A fully masked query sampled nothing: its gradients are 0. The reward is a scalar or one
number per query. (No finite-difference check here: a sample is not differentiable.)""",
          """硬注意力为每个查询按 α 采样一个键 j* ~ α，返回它的值 c = h_j*。采样没有梯度，
所以得分用 REINFORCE 训练：对奖励 r，E[r] 的梯度是 E[r ∇ log α_j*]。我们要最小化的是损失，
所以得分的梯度返回 −r · log α_j* 的梯度；值的梯度则是沿被采样路径的普通梯度。整行被屏蔽的查询
什么也没采样：它的梯度为 0。奖励可以是一个标量，也可以每个查询一个。
（这里不做有限差分检验：采样不可导。）"""),
    hints=(("∂ log softmax(e)_j / ∂e = onehot(j) − α.",
            "∂ log softmax(e)_j / ∂e = onehot(j) − α。"),
           ("A reward per query has shape (..., Tq): give it a trailing axis, "
            "r[..., None], to scale each query's row of (..., Tq, Tk).",
            "每个查询一个奖励时形状是 (..., Tq)：给它补一个末尾轴 r[..., None]，"
            "去缩放 (..., Tq, Tk) 中每个查询的那一行。"),
           ("c = onehot h, so dh = onehotᵀ dc (swap the last two axes). A fully masked "
            "query has onehot = 0 and α = 0, so its gradients come out 0 by themselves.",
            "c = onehot h，所以 dh = onehotᵀ dc（对调最后两个轴）。整行被屏蔽的查询 "
            "onehot = 0 且 α = 0，它的梯度自然为 0。"),
           ("Keep the dtype: a float64 reward times float32 arrays gives float64; cast back.",
            "保持 dtype：float64 的奖励乘 float32 数组会得到 float64，记得转换回来。")))

DROPOUT = Exercise(
    name="soft_attention_backward_dropout", function="soft_attention_backward",
    section="§3.3, §4.2", page="chapters/06-self-attention",
    title=("soft attention's backward through attention dropout",
           "带注意力 dropout 的软注意力的反向计算"),
    signature="soft_attention_backward(dcontext, cache)", outputs=("dscores", "dvalues"),
    make_cases=_dropout_cases, solution="attention_np.soft.soft_attention_backward",
    cache_from="soft_attention_forward(scores, values, mask, dropout_p, rng)",
    cache_fields=(("attended", ("the weights after dropout, α̃ = α ⊙ mask / (1 − p), "
                                "(..., Tq, Tk): what multiplied the values",
                                "dropout 之后的权重 α̃ = α ⊙ mask / (1 − p)，(..., Tq, Tk)："
                                "与值相乘的就是它")),
                  ("values", ("the values h, (..., Tk, Dv)", "值 h，(..., Tk, Dv)")),
                  ("softmax", ("the softmax's cache {'y': α, 'axis': -1}: α before dropout",
                               "softmax 的 cache {'y': α, 'axis': -1}：dropout 之前的 α")),
                  ("dropout", ("dropout_forward's cache {'scale', 'shape', 'dtype'}: scale = "
                               "mask / (1 − p), 0 at the dropped weights",
                               "dropout_forward 的 cache {'scale', 'shape', 'dtype'}：scale = "
                               "mask / (1 − p)，被丢弃的权重处为 0"))),
    doc="""Forward: α = softmax(e) (masked),  α̃ = α ⊙ m / (1 − p) (inverted dropout, m ~ Bernoulli(1 − p)),
c = α̃ h

dcontext (..., Tq, Dv) → dscores (..., Tq, Tk), dvalues (..., Tk, Dv).""",
    task=("""Like torch's scaled_dot_product_attention and nn.MultiheadAttention, attention
can drop weights while training: α̃ = Dropout(α) with inverted dropout (the kept weights are
divided by 1 − p, so the expected context is unchanged), then c = α̃ h. The forward ran with
dropout_p > 0; its cache holds the mask it drew. Return the gradients of the scores and the
values — the same function as the soft_attention_backward exercise, now through the dropout.
You may call the library's softmax_backward and dropout_backward.""",
          """与 torch 的 scaled_dot_product_attention 和 nn.MultiheadAttention 一样，注意力在训练时
可以丢弃一部分权重：用反向 dropout（inverted dropout）得到 α̃ = Dropout(α)（保留的权重除以 1 − p，
上下文向量的期望不变），再算 c = α̃ h。前向计算是在 dropout_p > 0 下运行的，它的 cache 里存着抽到的
掩码。返回得分和值的梯度——与 soft_attention_backward 那道练习是同一个函数，只是现在要穿过
dropout。可以调用代码库的 softmax_backward 和 dropout_backward。"""),
    hints=(("c = α̃ h: dα̃ = dc hᵀ and dh = α̃ᵀ dc, with α̃ = cache['attended'].",
            "c = α̃ h：dα̃ = dc hᵀ，dh = α̃ᵀ dc，其中 α̃ = cache['attended']。"),
           ("α̃ = α ⊙ scale, so dα = dα̃ ⊙ cache['dropout']['scale'] — dropout_backward does "
            "exactly that.", "α̃ = α ⊙ scale，所以 dα = dα̃ ⊙ cache['dropout']['scale']——"
            "dropout_backward 做的正是这件事。"),
           ("Then the softmax backward on α before dropout: softmax_backward(dα, "
            "cache['softmax']).", "然后对 dropout 之前的 α 做 softmax 的反向计算："
            "softmax_backward(dα, cache['softmax'])。")))
