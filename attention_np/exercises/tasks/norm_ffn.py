"""Layer norm, forward and backward, and the position-wise feed-forward network's backward
(chapter 9)."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import dims, label, randn, shape_text, upcast
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.nn.layers import layer_norm_backward, layer_norm_forward
from attention_np.transformer import feed_forward_backward, feed_forward_forward

SHAPES = ((np.float64, True), (np.float32, True), (np.float64, False), (np.float32, False))


def _norm(x, gamma, beta, eps, axis=-1, ddof=0, eps_inside=True):
    """Layer norm computed in float64, with the knobs of its usual mistakes, in x's dtype."""
    x64 = x.astype(np.float64)
    keep = axis is not None
    mu = x64.mean(axis=axis, keepdims=keep)
    var = x64.var(axis=axis, keepdims=keep, ddof=ddof)
    xhat = (x64 - mu) / (np.sqrt(var + eps) if eps_inside else np.sqrt(var) + eps)
    return (xhat * gamma + beta).astype(x.dtype)


def _forward_mistakes(x, gamma, beta, eps):
    return [(say("divides by d − 1 (the unbiased variance): layer norm, like torch, uses the "
                 "biased variance σ² = mean((x − μ)²), dividing by d",
                 "除以了 d − 1（无偏方差）：层归一化（与 torch 一样）用的是有偏方差 "
                 "σ² = mean((x − μ)²)，除以 d"), {"y": _norm(x, gamma, beta, eps, ddof=1)}),
            (say("adds ε to σ: it goes under the square root, x̂ = (x − μ) / √(σ² + ε)",
                 "把 ε 加在了 σ 上：它应在平方根里面，x̂ = (x − μ) / √(σ² + ε)"),
             {"y": _norm(x, gamma, beta, eps, eps_inside=False)}),
            (say("normalises over the whole array: μ and σ² are per row, over the last axis "
                 "(keepdims=True)", "对整个数组做了归一化：μ 和 σ² 是逐行的，沿最后一个轴计算"
                 "（keepdims=True）"), {"y": _norm(x, gamma, beta, eps, axis=None)}),
            (say("swaps γ and β: y = γ ⊙ x̂ + β", "把 γ 和 β 弄反了：y = γ ⊙ x̂ + β"),
             {"y": _norm(x, beta, gamma, eps)})]


def _forward_cases(rng):
    cases = []
    settings = SHAPES + ((np.float64, True, 0.1, 0.0), (np.float32, False, 1e-5, 1000.0))
    for setting in settings:
        dtype, three_d, eps, shift = (setting + (1e-5, 0.0))[:4]
        B, T, d = dims(rng, 3, 2, 9)
        x = (randn(rng, (B, T, d) if three_d else (B * T, d), np.float64, 2.0) + shift)
        x = x.astype(dtype)
        gamma, beta = (1 + randn(rng, d, dtype, 0.3)).astype(dtype), randn(rng, d, dtype)
        extra = [f"eps={eps:g}" if eps != 1e-5 else "",
                 say("rows far from 0 (mean ≈ 1000)", "各行远离 0（均值约 1000）") if shift else ""]
        cases.append(Case(
            label(dtype, shape_text(x=x), None, *extra), (x, gamma, beta),
            {"y": layer_norm_forward(x, gamma, beta, eps)[0]}, kwargs={"eps": eps}, dtype=dtype,
            variants=lambda a=(x, gamma, beta, eps): _forward_mistakes(*a)))
    return cases


def _backward_cases(rng):
    cases = []
    for dtype, three_d in SHAPES:
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
        mistakes = [(say("is only the direct term γ ⊙ dy / σ: the mean μ and σ depend on every "
                         "x_j of the row too — subtract mean(g) and x̂ · mean(g ⊙ x̂), g = γ ⊙ dy",
                         "只有直接项 γ ⊙ dy / σ：均值 μ 和 σ 也依赖于这一行的每个 x_j——还要减去 "
                         "mean(g) 和 x̂ · mean(g ⊙ x̂)，其中 g = γ ⊙ dy"), {"dx": direct})]
        cases.append(Case(label(dtype, shape_text(x=x)), (dy, cache),
                          dict(zip(names, layer_norm_backward(dy, cache))), dtype=dtype, fd=fd,
                          variants=lambda m=mistakes: m))
    return cases


def _ffn_backward_with(df, cache, dact):
    """The FFN's backward with ``dact(da, cache) → du`` for the activation's backward."""
    da = df @ cache["fc2"]["W"].T
    du = dact(da, cache)
    h, u_in = cache["fc1"]["x"], du.reshape(-1, du.shape[-1])
    grads = {"W_1": h.reshape(-1, h.shape[-1]).T @ u_in, "b_1": u_in.sum(axis=0),
             "W_2": cache["fc2"]["x"].reshape(-1, da.shape[-1]).T @ df.reshape(-1, df.shape[-1]),
             "b_2": df.reshape(-1, df.shape[-1]).sum(axis=0)}
    return {"dh": du @ cache["fc1"]["W"].T, **{f"grads[{k!r}]": g for k, g in grads.items()}}


def _relu_derivative(da, cache):
    act = cache["act"]
    positive = act["positive"] if "positive" in act else act["x"] > 0
    return (da * positive).astype(da.dtype)


def _ffn_mistakes(df, cache):
    found = [(say("leaves out the activation's derivative: a = act(u), so du = da ⊙ act'(u) "
                  "(the library's relu_backward / gelu_backward with cache['act'])",
                  "漏掉了激活函数的导数：a = act(u)，所以 du = da ⊙ act'(u)"
                  "（用 cache['act'] 调用代码库的 relu_backward / gelu_backward）"),
              _ffn_backward_with(df, cache, lambda da, c: da))]
    if cache["activation"] == "gelu":
        found.append((say("uses ReLU's derivative: this FFN's activation is GELU "
                          "(cache['activation']), whose derivative is Φ(u) + u φ(u)",
                          "用了 ReLU 的导数：这个前馈网络的激活函数是 GELU（cache['activation']），"
                          "它的导数是 Φ(u) + u φ(u)"),
                      _ffn_backward_with(df, cache, _relu_derivative)))
    return found


def _ffn_cases(rng):
    cases = []
    for (dtype, three_d), activation in zip(SHAPES, ("relu", "gelu", "gelu", "relu")):
        B, T, d, d_ff = dims(rng, 4, 2, 9)
        h = randn(rng, (B, T, d) if three_d else (B * T, d), dtype)
        params = {"W_1": randn(rng, (d, d_ff), dtype, 0.6), "b_1": randn(rng, d_ff, dtype, 0.3),
                  "W_2": randn(rng, (d_ff, d), dtype, 0.6), "b_2": randn(rng, d, dtype, 0.3)}
        f, cache = feed_forward_forward(h, params, activation)
        df = randn(rng, f.shape, dtype)
        dh, grads = feed_forward_backward(df, cache)
        fd = FiniteDiff(lambda h, a=activation, **p: feed_forward_forward(h, p, a)[0],
                        upcast(h=h, **params), df.astype(np.float64),
                        {"dh": "h", **{f"grads[{n!r}]": n for n in params}})
        cases.append(Case(label(dtype, shape_text(h=h, W_1=params["W_1"]), None, activation),
                          (df, cache), {"dh": dh, "grads": grads}, dtype=dtype, fd=fd,
                          variants=lambda d=df, c=cache: _ffn_mistakes(d, c)))
    return cases


LAYER_NORM_FORWARD = Exercise(
    name="layer_norm_forward", section="§4.3", page="chapters/09-transformer",
    title=("layer norm, forward", "层归一化的前向计算"),
    signature="layer_norm_forward(x, gamma, beta, eps=1e-5)", outputs=("y", "cache"),
    graded=("y",), make_cases=_forward_cases, solution="attention_np.nn.layers.layer_norm_forward",
    doc="""μ = mean_j x_j,  σ² = mean_j (x_j − μ)²,  x̂ = (x − μ) / √(σ² + ε),  y = γ ⊙ x̂ + β
(μ and σ² per row, over the last axis)

x (..., d), gamma (d,), beta (d,), eps > 0 → y (..., d) in x's dtype, cache (anything; only y
is graded).""",
    task=("""Layer normalisation (Ba et al., 2016) rescales each row — each position's
feature vector — to mean 0 and variance 1, then scales it by γ and shifts it by β, one of each
per feature. Every sub-layer of the Transformer block goes through one. Use the biased
variance, as torch does, keep the input's dtype, and stay accurate in float32 when the rows
are far from 0.""",
          """层归一化（layer normalisation，Ba et al., 2016）把每一行——每个位置的特征向量——
变换到均值 0、方差 1，再按特征逐个乘以 γ、加上 β。Transformer 块的每个子层都要经过它。与 torch
一样用有偏方差，保持输入的 dtype；各行远离 0 时，float32 下也要算得准。"""),
    hints=(("Means over the last axis with keepdims=True keep (..., 1) shapes that broadcast "
            "back against x.",
            "沿最后一个轴、带 keepdims=True 求均值，得到的 (..., 1) 形状可以与 x 广播。"),
           ("Compute σ² from x − μ (two passes), not as mean(x²) − μ²: that difference of two "
            "large numbers loses every digit in float32 when |μ| ≫ σ.",
            "用 x − μ 来算 σ²（分两遍），不要用 mean(x²) − μ²：|μ| ≫ σ 时，这两个大数相减"
            "在 float32 下会丢光所有有效数字。"),
           ("ε goes under the square root: (x − μ) / np.sqrt(var + eps).",
            "ε 放在平方根里面：(x − μ) / np.sqrt(var + eps)。")))

LAYER_NORM_BACKWARD = Exercise(
    name="layer_norm_backward", section="§4.3", page="chapters/09-transformer",
    title=("layer norm's backward", "层归一化的反向计算"),
    signature="layer_norm_backward(dy, cache)", outputs=("dx", "dgamma", "dbeta"),
    make_cases=_backward_cases, solution="attention_np.nn.layers.layer_norm_backward",
    cache_from="layer_norm_forward(x, gamma, beta)",
    cache_fields=(("xhat", ("x̂ = (x − μ) / √(σ² + ε), x's shape (..., d)",
                            "x̂ = (x − μ) / √(σ² + ε)，形状与 x 相同 (..., d)")),
                  ("rstd", ("1 / √(σ² + ε) per row, (..., 1)", "每行的 1 / √(σ² + ε)，(..., 1)")),
                  ("gamma", ("γ, (d,)", "γ，(d,)")),
                  ("dtype", ("the dtype of the output", "输出的 dtype"))),
    doc="""Forward: x̂ = (x − μ) / √(σ² + ε),  y = γ ⊙ x̂ + β   (μ, σ² over the last axis)

dy (..., d) → dx (..., d), dgamma (d,), dbeta (d,), in cache['dtype'].""",
    task=("""Layer norm normalises each row to mean 0 and variance 1, then scales by γ and
shifts by β. Given dy = ∂L/∂y, return the gradients of x, γ and β. The subtle part: μ and σ
depend on every entry of the row, so changing one x_j moves all of x̂.""",
          """层归一化把每一行变换到均值 0、方差 1，再乘以 γ、加上 β。已知 dy = ∂L/∂y，返回 x、γ
和 β 的梯度。难点在于：μ 和 σ 依赖于这一行的每个元素，所以改动一个 x_j 会牵动整个 x̂。"""),
    hints=(("Start from the easy ones: dβ = dy summed over every leading axis, "
            "dγ = (dy ⊙ x̂) summed likewise.",
            "先做简单的：dβ = dy 对所有前导轴求和，dγ = (dy ⊙ x̂) 同样求和。"),
           ("Let g = dy ⊙ γ, the gradient w.r.t. x̂. Then differentiate x̂ = (x − μ) · rstd: "
            "the mean term removes mean(g), the variance term removes x̂ · mean(g ⊙ x̂).",
            "令 g = dy ⊙ γ，即对 x̂ 的梯度。再对 x̂ = (x − μ) · rstd 求导：均值那一项减去 "
            "mean(g)，方差那一项减去 x̂ · mean(g ⊙ x̂)。"),
           ("Means are over the last axis with keepdims=True; the cache's rstd is (..., 1).",
            "均值沿最后一个轴求，带 keepdims=True；cache 里的 rstd 形状是 (..., 1)。")))

FFN_BACKWARD = Exercise(
    name="feed_forward_backward", section="§4.3", page="chapters/09-transformer",
    title=("the feed-forward network's backward", "前馈网络的反向计算"),
    signature="feed_forward_backward(df, cache)", outputs=("dh", "grads"),
    make_cases=_ffn_cases, solution="attention_np.transformer.feed_forward_backward",
    cache_from="feed_forward_forward(h, params, activation)",
    cache_fields=(("fc1", ("linear_forward's cache of u = h W_1 + b_1: {'x': h, 'W': W_1, "
                           "'has_bias': True}", "u = h W_1 + b_1 的 linear_forward 的 cache："
                           "{'x': h, 'W': W_1, 'has_bias': True}")),
                  ("act", ("the activation's cache, for relu_backward or gelu_backward",
                           "激活函数的 cache，交给 relu_backward 或 gelu_backward")),
                  ("fc2", ("linear_forward's cache of f = a W_2 + b_2", "f = a W_2 + b_2 的 "
                           "linear_forward 的 cache")),
                  ("activation", ("'relu' or 'gelu'", "'relu' 或 'gelu'")),
                  ("out_shape", ("the shape of f", "f 的形状"))),
    doc="""Forward: u = h W_1 + b_1,  a = act(u),  f = a W_2 + b_2   (act: ReLU or GELU)

df (..., d) → dh (..., d), grads {W_1: (d, d_ff), b_1: (d_ff,), W_2: (d_ff, d), b_2: (d,)}.""",
    task=("""The Transformer's feed-forward network is the same two-layer MLP at every
position: FFN(h) = act(h W_1 + b_1) W_2 + b_2, with ReLU (the original paper) or GELU (BERT).
Given df = ∂L/∂f, walk it back and return the gradient of h and the four parameters' gradients
in a dict. You may call the library's linear_backward, relu_backward and gelu_backward.""",
          """Transformer 的前馈网络在每个位置上都是同一个两层 MLP：
FFN(h) = act(h W_1 + b_1) W_2 + b_2，激活函数是 ReLU（原论文）或 GELU（BERT）。已知
df = ∂L/∂f，把它倒着走一遍，返回 h 的梯度，以及放在一个字典里的四个参数的梯度。可以调用代码库的
linear_backward、relu_backward 和 gelu_backward。"""),
    hints=(("Three steps back: linear_backward(df, cache['fc2']), the activation's backward, "
            "linear_backward(du, cache['fc1']).",
            "倒退三步：linear_backward(df, cache['fc2'])、激活函数的反向计算、"
            "linear_backward(du, cache['fc1'])。"),
           ("cache['activation'] says which backward to call; cache['act'] is its cache.",
            "cache['activation'] 告诉你该调用哪个反向函数；cache['act'] 就是它的 cache。"),
           ("Return (dh, {'W_1': …, 'b_1': …, 'W_2': …, 'b_2': …}).",
            "返回 (dh, {'W_1': …, 'b_1': …, 'W_2': …, 'b_2': …})。")))

EXERCISES = [LAYER_NORM_FORWARD, LAYER_NORM_BACKWARD, FFN_BACKWARD]
