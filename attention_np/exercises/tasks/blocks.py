"""The Transformer's blocks (chapter 9): the encoder block's backward, and the decoder block's
forward — causal self-attention, then cross-attention to the encoder's memory — from the pieces."""
from __future__ import annotations

import numpy as np

from attention_np.decoder import decoder_block_forward, init_decoder_block
from attention_np.exercises.data import dead_positions, dead_row_mask, dims, label, randn, upcast
from attention_np.exercises.lang import say
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.nn.layers import dropout_backward, layer_norm_backward, layer_norm_forward
from attention_np.nn.params import prefixed, sub
from attention_np.self_attention import (multi_head_attention_backward,
                                         multi_head_attention_forward)
from attention_np.transformer import (EncoderConfig, encoder_block_backward,
                                      encoder_block_forward, feed_forward_backward,
                                      feed_forward_forward, init_encoder_block)


def _config_text(c: EncoderConfig, training: bool = False) -> str:
    parts = ["pre-LN" if c.norm_first else "post-LN", c.activation, f"num_heads {c.num_heads}"]
    if training:
        parts.append(say(f"training: dropout {c.dropout}, attn_dropout {c.attn_dropout}",
                         f"训练中：dropout {c.dropout}，attn_dropout {c.attn_dropout}"))
    if c.causal:
        parts.append("causal")
    return ", ".join(parts)


def _jitter(params, rng, dtype):
    """The parameters with every entry moved a little (biases, γ and β away from 0 and 1)."""
    return {k: (v + randn(rng, v.shape, dtype, 0.2)).astype(dtype) for k, v in params.items()}


# --- the encoder block's backward ---------------------------------------------------------------

def _encoder_backward_with(dy, cache, skip_attn=True, skip_ffn=True, kv=True, dropout=True):
    """The block's backward with the knobs of its usual mistakes → {flat name: gradient}."""
    def drop(d, c):
        return dropout_backward(d, c) if dropout else d
    f, grads = cache["ffn_sublayer"], {}
    if cache["norm_first"]:
        dz2, g_ffn = feed_forward_backward(drop(dy, f["drop2"]), f["ffn"])
        dh_ln, grads["ln2.gamma"], grads["ln2.beta"] = layer_norm_backward(dz2, f["ln2"])
        dh = dh_ln + (dy if skip_ffn else 0)
        dq, dkv, g_attn = multi_head_attention_backward(drop(dh, cache["drop1"]), cache["attn"])
        dx_ln, grads["ln1.gamma"], grads["ln1.beta"] = layer_norm_backward(
            dq + (dkv if kv else 0), cache["ln1"])
        dx = dx_ln + (dh if skip_attn else 0)
    else:
        ds2, grads["ln2.gamma"], grads["ln2.beta"] = layer_norm_backward(dy, f["ln2"])
        dh_ffn, g_ffn = feed_forward_backward(drop(ds2, f["drop2"]), f["ffn"])
        dh = dh_ffn + (ds2 if skip_ffn else 0)
        ds1, grads["ln1.gamma"], grads["ln1.beta"] = layer_norm_backward(dh, cache["ln1"])
        dq, dkv, g_attn = multi_head_attention_backward(drop(ds1, cache["drop1"]), cache["attn"])
        dx = dq + (dkv if kv else 0) + (ds1 if skip_attn else 0)
    grads.update(prefixed("attn", g_attn) | prefixed("ffn", g_ffn))
    return {"dx": dx, **{f"grads[{k!r}]": g for k, g in grads.items()}}


def _encoder_mistakes(dy, cache, training):
    residual = say("x feeds the skip path as well as the sub-layer, so the gradient reaching a "
                   "sub-layer's input adds the one that came through the skip",
                   "输入既流向子层，也流过跳跃连接，所以子层输入处的梯度还要加上从跳跃连接传回来的那一份")
    found = [(say(f"misses the residual connections: {residual}",
                  f"漏掉了残差连接：{residual}"),
              _encoder_backward_with(dy, cache, skip_attn=False, skip_ffn=False)),
             (say(f"misses the attention sub-layer's residual connection: {residual}",
                  f"漏掉了注意力子层的残差连接：{residual}"),
              _encoder_backward_with(dy, cache, skip_attn=False)),
             (say(f"misses the FFN sub-layer's residual connection: {residual}",
                  f"漏掉了前馈子层的残差连接：{residual}"),
              _encoder_backward_with(dy, cache, skip_ffn=False)),
             (say("takes only dx_q from the attention: in self-attention x gives the queries, "
                  "the keys and the values, so its gradient is dx_q + dx_kv",
                  "只取了注意力的 dx_q：自注意力里 x 同时给出查询、键和值，所以它的梯度是 "
                  "dx_q + dx_kv"), _encoder_backward_with(dy, cache, kv=False))]
    if training:
        found.append((say("ignores the dropout masks: the forward dropped entries of each "
                          "sub-layer's output, so their gradients go back through "
                          "dropout_backward(·, cache['drop1']) and (·, cache['ffn_sublayer']"
                          "['drop2'])", "忽略了 dropout 掩码：前向计算丢弃了每个子层输出的部分元素，"
                          "所以它们的梯度要经过 dropout_backward(·, cache['drop1']) 和 "
                          "(·, cache['ffn_sublayer']['drop2']) 传回"),
                      _encoder_backward_with(dy, cache, dropout=False)))
    return found


ENCODER_SETTINGS = (  # (dtype, norm_first, activation, training, causal, masked)
    (np.float64, False, "relu", False, False, True), (np.float32, True, "gelu", True, False, True),
    (np.float64, True, "relu", True, True, False), (np.float32, False, "gelu", False, False, False),
    (np.float64, False, "gelu", True, False, True))


def _encoder_cases(rng):
    cases = []
    for dtype, norm_first, activation, training, causal, masked in ENCODER_SETTINGS:
        B, T, H, Dh, d_ff = dims(rng, 5, 2, 6)
        c = EncoderConfig(d_model=H * Dh, num_heads=H, d_ff=d_ff, dropout=0.2 if training else 0,
                          attn_dropout=0.1 if training else 0, activation=activation,
                          norm_first=norm_first, causal=causal)
        params = _jitter(init_encoder_block(H * Dh, d_ff, rng, dtype), rng, dtype)
        x = randn(rng, (B, T, H * Dh), dtype)
        mask = dead_row_mask(rng, (B, 1, T, T)) if masked else None
        seed = int(rng.integers(2**31))

        def forward(x, c=c, mask=mask, seed=seed, training=training, **p):
            return encoder_block_forward(x, p, c, mask, np.random.default_rng(seed), training)[0]
        y, _, cache = encoder_block_forward(x, params, c, mask, np.random.default_rng(seed),
                                            training)
        dy = randn(rng, y.shape, dtype)
        dx, grads = encoder_block_backward(dy, cache)
        fd = FiniteDiff(forward, upcast(x=x, **params), dy.astype(np.float64),
                        {"dx": "x", **{f"grads[{k!r}]": k for k in params}})
        cases.append(Case(
            label(dtype, f"x {x.shape}", masked, _config_text(c, training)), (dy, cache),
            {"dx": dx, "grads": grads}, dtype=np.dtype(dtype), masked=masked, fd=fd,
            variants=lambda d=dy, k=cache, t=training: _encoder_mistakes(d, k, t)))
    return cases


# --- the decoder block's forward ----------------------------------------------------------------

def _decoder_with(y, memory, p, c: EncoderConfig, mask, causal=True, use_mask=True,
                  norm_memory=False, norm_first=None):
    """The decoder block from the public pieces, with the knobs of its usual mistakes."""
    H, nf = c.num_heads, c.norm_first if norm_first is None else norm_first
    m = mask if use_mask else None

    def ln(x, i):
        return layer_norm_forward(x, p[f"ln{i}.gamma"], p[f"ln{i}.beta"], c.eps)[0]

    def mha(z, kv, name, **kw):
        return multi_head_attention_forward(z, kv, sub(p, name), H, **kw)[:2]
    ffn = sub(p, "ffn")
    if nf:
        z1 = ln(y, 1)
        a, w_self = mha(z1, z1, "self_attn", causal=causal)
        h1 = y + a
        z2 = ln(h1, 2)
        a, w_cross = mha(z2, ln(memory, 2) if norm_memory else memory, "cross_attn", mask=m)
        h2 = h1 + a
        out = h2 + feed_forward_forward(ln(h2, 3), ffn, c.activation)[0]
    else:
        a, w_self = mha(y, y, "self_attn", causal=causal)
        h1 = ln(y + a, 1)
        a, w_cross = mha(h1, memory, "cross_attn", mask=m)
        h2 = ln(h1 + a, 2)
        out = ln(h2 + feed_forward_forward(h2, ffn, c.activation)[0], 3)
    return {"out": out, "weights[0]": w_self, "weights[1]": w_cross}


def _decoder_mistakes(y, memory, p, c, mask):
    args = (y, memory, p, c, mask)
    found = [(say("has a self-attention that is not causal: position t of the decoder may read "
                  "positions ≤ t only (causal=True)", "自注意力不是因果的：解码器的位置 t 只能"
                  "读取位置 ≤ t（causal=True）"), _decoder_with(*args, causal=False)),
             (say(f"is the {'post' if c.norm_first else 'pre'}-LN block: config.norm_first is "
                  f"{c.norm_first}", f"算成了 {'post' if c.norm_first else 'pre'}-LN 的块："
                  f"config.norm_first 是 {c.norm_first}"),
              _decoder_with(*args, norm_first=not c.norm_first))]
    if mask is not None:
        found.append((say("ignores memory_mask: in the cross-attention the padded source "
                          "positions must get weight 0", "忽略了 memory_mask：在交叉注意力中，"
                          "源句的填充位置权重必须为 0"), _decoder_with(*args, use_mask=False)))
    if c.norm_first:
        found.append((say("normalises the memory with LN₂: only the decoder's stream goes "
                          "through LN₂ — the keys and values read the encoder's output as it is",
                          "用 LN₂ 把 memory 也归一化了：只有解码器自己的那一路要经过 LN₂——"
                          "键和值读取的是编码器的原始输出"), _decoder_with(*args, norm_memory=True)))
    return found


def _decoder_cases(rng):
    cases = []
    for dtype, norm_first, activation, masked in ((np.float64, True, "relu", True),
                                                  (np.float32, False, "gelu", True),
                                                  (np.float64, False, "relu", False),
                                                  (np.float32, True, "gelu", False)):
        B, T, Tk, H, Dh, d_ff = dims(rng, 6, 2, 7)
        c = EncoderConfig(d_model=H * Dh, num_heads=H, d_ff=d_ff, activation=activation,
                          norm_first=norm_first)
        params = _jitter(init_decoder_block(H * Dh, d_ff, rng, dtype), rng, dtype)
        y, memory = randn(rng, (B, T, H * Dh), dtype), randn(rng, (B, Tk, H * Dh), dtype)
        mask = None
        if masked:                                    # a padding mask; sentence 0 is all padding
            lengths = rng.integers(1, Tk + 1, B)
            lengths[0] = 0
            mask = (np.arange(Tk)[None, :] < lengths[:, None])[:, None, None, :]
        out, weights, _ = decoder_block_forward(y, memory, params, c, mask)
        dead = {} if mask is None else {"weights[1]": dead_positions(mask, weights[1].shape)}
        cases.append(Case(
            label(dtype, f"y {y.shape}, memory {memory.shape}", masked, _config_text(c)),
            (y, memory, params, c), {"out": out, "weights": tuple(weights)},
            kwargs={"memory_mask": mask}, dtype=np.dtype(dtype), masked=masked, dead=dead,
            variants=lambda a=(y, memory, params, c, mask): _decoder_mistakes(*a)))
    return cases


CACHE_FIELDS = (
    ("norm_first", ("True: pre-LN, h = x + Drop(MHA(LN₁ x)), y = h + Drop(FFN(LN₂ h)); False: "
                    "post-LN, h = LN₁(x + Drop(MHA(x))), y = LN₂(h + Drop(FFN(h)))",
                    "True：pre-LN，h = x + Drop(MHA(LN₁ x))，y = h + Drop(FFN(LN₂ h))；False："
                    "post-LN，h = LN₁(x + Drop(MHA(x)))，y = LN₂(h + Drop(FFN(h)))")),
    ("ln1", ("layer_norm_forward's cache of LN₁", "LN₁ 的 layer_norm_forward 的 cache")),
    ("attn", ("multi_head_attention_forward's cache of the self-attention",
              "自注意力的 multi_head_attention_forward 的 cache")),
    ("drop1", ("dropout_forward's cache of the attention sub-layer's output (the identity when "
               "not training)", "注意力子层输出的 dropout_forward 的 cache（不训练时为恒等）")),
    ("ffn_sublayer", ("the FFN sub-layer's: {'norm_first', 'ln2': LN₂'s cache, 'ffn': "
                      "feed_forward_forward's cache, 'drop2': its dropout's cache}",
                      "前馈子层的 cache：{'norm_first', 'ln2'：LN₂ 的 cache, 'ffn'："
                      "feed_forward_forward 的 cache, 'drop2'：它的 dropout 的 cache}")))

ENCODER_BACKWARD = Exercise(
    name="encoder_block_backward", section="§4.3", page="chapters/09-transformer",
    title=("the Transformer encoder block's backward", "Transformer 编码器块的反向计算"),
    signature="encoder_block_backward(dy, cache)", outputs=("dx", "grads"),
    make_cases=_encoder_cases, solution="attention_np.transformer.encoder_block_backward",
    cache_from="encoder_block_forward(x, params, config, mask, rng, training)",
    cache_fields=CACHE_FIELDS,
    doc="""Forward (post-LN): h = LN₁(x + Drop(MHA(x, x, x))),  y = LN₂(h + Drop(FFN(h)))
Forward (pre-LN):  h = x + Drop(MHA(LN₁ x)),  y = h + Drop(FFN(LN₂ h))

dy (B, T, d) → dx (B, T, d), grads keyed like params: attn.W_q … attn.b_o, ln1.gamma, ln1.beta,
ffn.W_1 … ffn.b_2, ln2.gamma, ln2.beta.""",
    task=("""Walk one Transformer encoder block back — post-LN or pre-LN, with the dropouts of
a training step when there were some — and return dx and the gradients of all its parameters,
keyed like params ("attn.W_q", "ln1.gamma", "ffn.W_1", …). You have written the pieces'
backwards; call the library's: layer_norm_backward, multi_head_attention_backward,
feed_forward_backward and dropout_backward. The work is the wiring: which gradient goes where,
and what the residual connections add.""",
          """把一个 Transformer 编码器块倒着走一遍——post-LN 或 pre-LN，训练时还有 dropout——
返回 dx 和它全部参数的梯度，键名与 params 相同（"attn.W_q"、"ln1.gamma"、"ffn.W_1" 等）。各个部件的
反向计算你都写过了；这里调用代码库的 layer_norm_backward、multi_head_attention_backward、
feed_forward_backward 和 dropout_backward。要做的是接线：哪个梯度流向哪里，残差连接又添了什么。"""),
    hints=(("Go backwards: the FFN sub-layer first (cache['ffn_sublayer']), then the attention "
            "sub-layer, then prefix the parameter gradients: 'attn.' + name, 'ffn.' + name.",
            "倒着来：先是前馈子层（cache['ffn_sublayer']），再是注意力子层，最后给参数梯度加上"
            "前缀：'attn.' + 名字，'ffn.' + 名字。"),
           ("A residual x + f(x) sends the gradient down both paths: dx = d(out) + (what came "
            "back through f).", "残差 x + f(x) 把梯度同时送进两条路：dx = d(out) +（经 f 传回的那一份）。"),
           ("Self-attention reads x three times: dx gets dx_q + dx_kv from "
            "multi_head_attention_backward.", "自注意力读了 x 三次：dx 要加上 "
            "multi_head_attention_backward 给出的 dx_q + dx_kv。"),
           ("dropout_backward(d, cache['drop1']) is the identity when the forward did not "
            "train: call it either way.", "前向计算没有训练时，dropout_backward(d, cache['drop1']) "
            "就是恒等映射：无论哪种情况都调用它即可。")))

DECODER_FORWARD = Exercise(
    name="decoder_block_forward", section="§4.3", page="chapters/09-transformer",
    title=("the decoder block: causal self-attention, then cross-attention",
           "解码器块：先因果自注意力，再交叉注意力"),
    signature="decoder_block_forward(y, memory, params, config, memory_mask=None)",
    outputs=("out", "weights", "cache"), graded=("out", "weights"), make_cases=_decoder_cases,
    solution="attention_np.decoder.decoder_block_forward",
    forbidden=("attention_np.decoder.decoder_block_core",),
    doc="""Pre-LN (config.norm_first):  h₁ = y + MHA(LN₁ y, LN₁ y, causal)
                             h₂ = h₁ + MHA(LN₂ h₁, memory, memory_mask)
                             out = h₂ + FFN(LN₃ h₂)
Post-LN:  h₁ = LN₁(y + MHA(y, y, causal)),  h₂ = LN₂(h₁ + MHA(h₁, memory, memory_mask)),
          out = LN₃(h₂ + FFN(h₂))

y (B, T, d), memory (B, Tk, d), params with keys self_attn.W_q … self_attn.b_o,
cross_attn.W_q … cross_attn.b_o, ffn.W_1 … ffn.b_2, ln1.gamma … ln3.beta; config an
EncoderConfig (num_heads, activation, norm_first, eps); memory_mask broadcastable to
(B, H, T, Tk) or None → out (B, T, d), weights (self (B, H, T, T), cross (B, H, T, Tk)), cache
(anything; not graded).""",
    task=("""The decoder of the encoder–decoder Transformer (the translator's) has three
sub-layers: causal self-attention over the target so far, cross-attention — queries from the
decoder, keys and values from the encoder's output `memory`, with `memory_mask` hiding the
source's padding — and the feed-forward network, each with its residual connection and layer
norm, pre-LN or post-LN as config.norm_first says. No dropout: this is the forward of
inference. Call the library's multi_head_attention_forward, layer_norm_forward and
feed_forward_forward; return the self- and cross-attention weights as a pair.""",
          """编码器–解码器 Transformer（翻译模型用的那种）的解码器有三个子层：在已生成的目标序列上
做因果自注意力；交叉注意力——查询来自解码器，键和值来自编码器的输出 `memory`，用 `memory_mask`
遮住源句的填充——以及前馈网络。每个子层都有残差连接和层归一化，按 config.norm_first 取 pre-LN
或 post-LN。没有 dropout：这是推理时的前向计算。调用代码库的 multi_head_attention_forward、
layer_norm_forward 和 feed_forward_forward；把自注意力和交叉注意力的权重作为一对返回。"""),
    hints=(("Take a sub-layer's parameters out of the flat dict: {k[len('self_attn.'):]: v for "
            "k, v in params.items() if k.startswith('self_attn.')}.",
            "从扁平的字典里取出一个子层的参数：{k[len('self_attn.'):]: v for k, v in "
            "params.items() if k.startswith('self_attn.')}。"),
           ("Self-attention: multi_head_attention_forward(z, z, p, H, causal=True). "
            "Cross-attention: multi_head_attention_forward(z, memory, p, H, mask=memory_mask).",
            "自注意力：multi_head_attention_forward(z, z, p, H, causal=True)。交叉注意力："
            "multi_head_attention_forward(z, memory, p, H, mask=memory_mask)。"),
           ("In pre-LN only the decoder's stream is normalised: LN₂ h₁ gives the queries, the "
            "memory goes in as it is.", "pre-LN 中只有解码器自己的那一路要归一化：LN₂ h₁ 给出"
            "查询，memory 原样传入。"),
           ("Return (out, (w_self, w_cross), cache) — the cache can be anything.",
            "返回 (out, (w_self, w_cross), cache)——cache 可以是任意东西。")))

EXERCISES = [ENCODER_BACKWARD, DECODER_FORWARD]
