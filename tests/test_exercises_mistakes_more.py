"""Exercises added by issue 30 (positions, the block's pieces, the projects, efficient attention,
graphs and the language model): a learner's correct solution of each, and realistic wrong ones —
edits of it, with the words the grader must say (run by test_exercises_mistakes.py). A solution
may call the library's other functions, as a learner may."""

SOLUTIONS = {
    "general_score_backward": '''import numpy as np


def general_score_backward(dscores, cache):
    q, k, W, qW = cache["q"], cache["k"], cache["W"], cache["qW"]
    du = dscores @ k
    dk = np.swapaxes(dscores, -1, -2) @ qW
    dq = du @ W.T
    dW = q.reshape(-1, q.shape[-1]).T @ du.reshape(-1, du.shape[-1])
    return dq, dk, dW
''',
    "soft_attention_backward_dropout": '''import numpy as np

from attention_np.core import softmax_backward


def soft_attention_backward(dcontext, cache):
    attended, values = cache["attended"], cache["values"]
    dvalues = np.swapaxes(attended, -1, -2) @ dcontext
    dattended = dcontext @ np.swapaxes(values, -1, -2)
    dalpha = dattended * cache["dropout"]["scale"]
    return softmax_backward(dalpha, cache["softmax"]), dvalues
''',
    "sinusoidal_encoding": '''import numpy as np


def sinusoidal_encoding(T, d, base=10000.0, dtype=np.float64):
    pos = np.arange(T)[:, None]
    two_i = np.arange(0, d, 2)
    angle = pos / base ** (two_i / d)
    pe = np.zeros((T, d))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, :d // 2])
    return pe.astype(dtype)
''',
    "rope_forward": '''import numpy as np


def rope_forward(x, positions, base=10000.0):
    D = x.shape[-1]
    theta = base ** (-np.arange(0, D, 2) / D)
    m = np.asarray(positions)[..., None] * theta
    if m.ndim == 3:
        m = m[:, None]
    cos, sin = np.cos(m).astype(x.dtype), np.sin(m).astype(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    y = np.empty_like(x)
    y[..., 0::2] = x1 * cos - x2 * sin
    y[..., 1::2] = x1 * sin + x2 * cos
    return y, None
''',
    "rope_backward": '''import numpy as np


def rope_backward(dy, cache):
    cos, sin = cache["cos"], cache["sin"]
    d1, d2 = dy[..., 0::2], dy[..., 1::2]
    dx = np.empty_like(dy)
    dx[..., 0::2] = d1 * cos + d2 * sin
    dx[..., 1::2] = -d1 * sin + d2 * cos
    return dx
''',
    "multi_head_attention_backward": '''from attention_np import (linear_backward, merge_heads,
                          scaled_dot_product_attention_backward, split_heads)


def multi_head_attention_backward(dout, cache):
    H = cache["num_heads"]
    dconcat, dW_o, db_o = linear_backward(dout, cache["o"])
    dq, dk, dv = scaled_dot_product_attention_backward(split_heads(dconcat, H), cache["attn"])
    dx_q, dW_q, db_q = linear_backward(merge_heads(dq), cache["q"])
    dx_k, dW_k, db_k = linear_backward(merge_heads(dk), cache["k"])
    dx_v, dW_v, db_v = linear_backward(merge_heads(dv), cache["v"])
    grads = {"W_q": dW_q, "b_q": db_q, "W_k": dW_k, "b_k": db_k, "W_v": dW_v, "b_v": db_v,
             "W_o": dW_o, "b_o": db_o}
    return dx_q, dx_k + dx_v, grads
''',
    "layer_norm_forward": '''import numpy as np


def layer_norm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, None
''',
    "feed_forward_backward": '''from attention_np.core import linear_backward
from attention_np.nn.activations import gelu_backward, relu_backward


def feed_forward_backward(df, cache):
    da, dW_2, db_2 = linear_backward(df, cache["fc2"])
    act_backward = gelu_backward if cache["activation"] == "gelu" else relu_backward
    du = act_backward(da, cache["act"])
    dh, dW_1, db_1 = linear_backward(du, cache["fc1"])
    return dh, {"W_1": dW_1, "b_1": db_1, "W_2": dW_2, "b_2": db_2}
''',
    "encoder_block_backward": '''from attention_np import multi_head_attention_backward
from attention_np.nn.layers import dropout_backward, layer_norm_backward
from attention_np.transformer import feed_forward_backward


def encoder_block_backward(dy, cache):
    f, grads = cache["ffn_sublayer"], {}
    if cache["norm_first"]:
        dz2, g_ffn = feed_forward_backward(dropout_backward(dy, f["drop2"]), f["ffn"])
        dh_ln, grads["ln2.gamma"], grads["ln2.beta"] = layer_norm_backward(dz2, f["ln2"])
        dh = dy + dh_ln
        dq, dkv, g_attn = multi_head_attention_backward(dropout_backward(dh, cache["drop1"]),
                                                        cache["attn"])
        dx_ln, grads["ln1.gamma"], grads["ln1.beta"] = layer_norm_backward(dq + dkv,
                                                                           cache["ln1"])
        dx = dh + dx_ln
    else:
        ds2, grads["ln2.gamma"], grads["ln2.beta"] = layer_norm_backward(dy, f["ln2"])
        dh_ffn, g_ffn = feed_forward_backward(dropout_backward(ds2, f["drop2"]), f["ffn"])
        dh = ds2 + dh_ffn
        ds1, grads["ln1.gamma"], grads["ln1.beta"] = layer_norm_backward(dh, cache["ln1"])
        dq, dkv, g_attn = multi_head_attention_backward(dropout_backward(ds1, cache["drop1"]),
                                                        cache["attn"])
        dx = ds1 + dq + dkv
    grads.update({f"attn.{k}": g for k, g in g_attn.items()})
    grads.update({f"ffn.{k}": g for k, g in g_ffn.items()})
    return dx, grads
''',
    "decoder_block_forward": '''from attention_np import multi_head_attention_forward
from attention_np.nn.layers import layer_norm_forward
from attention_np.transformer import feed_forward_forward


def decoder_block_forward(y, memory, params, config, memory_mask=None):
    def part(prefix):
        return {k[len(prefix) + 1:]: v for k, v in params.items() if k.startswith(prefix + ".")}

    def ln(i, x):
        return layer_norm_forward(x, params[f"ln{i}.gamma"], params[f"ln{i}.beta"],
                                  config.eps)[0]

    H = config.num_heads
    if config.norm_first:
        z = ln(1, y)
        a, w_self, _ = multi_head_attention_forward(z, z, part("self_attn"), H, causal=True)
        h1 = y + a
        c, w_cross, _ = multi_head_attention_forward(ln(2, h1), memory, part("cross_attn"), H,
                                                     mask=memory_mask)
        h2 = h1 + c
        out = h2 + feed_forward_forward(ln(3, h2), part("ffn"), config.activation)[0]
    else:
        a, w_self, _ = multi_head_attention_forward(y, y, part("self_attn"), H, causal=True)
        h1 = ln(1, y + a)
        c, w_cross, _ = multi_head_attention_forward(h1, memory, part("cross_attn"), H,
                                                     mask=memory_mask)
        h2 = ln(2, h1 + c)
        out = ln(3, h2 + feed_forward_forward(h2, part("ffn"), config.activation)[0])
    return out, (w_self, w_cross), None
''',
    "beam_step": '''import numpy as np


def beam_step(score, lengths, finished, log_probs, end, length_penalty=0.0):
    B, K, V = log_probs.shape
    logp = log_probs.copy()
    logp[finished] = -np.inf
    logp[finished, end] = 0.0
    cand = (score[:, :, None] + logp).reshape(B, K * V)
    grown = lengths + ~finished
    lp = ((5.0 + grown) / 6.0) ** length_penalty
    rank = cand / np.repeat(lp, V, axis=1)
    top = np.argsort(-rank, axis=1, kind="stable")[:, :K]
    parent, token = top // V, top % V
    return (parent, token, np.take_along_axis(cand, top, axis=1),
            np.take_along_axis(grown, parent, axis=1))
''',
    "location_attention_forward": '''import numpy as np

from attention_np import softmax_forward


def location_attention_forward(s, keys, values, alpha_prev, params, mask=None):
    F, U, W, b, w = (params[n] for n in ("F", "U", "W", "b", "w"))
    r, T = F.shape[1], alpha_prev.shape[1]
    padded = np.pad(alpha_prev, ((0, 0), (r // 2, r // 2)))
    windows = padded[:, np.arange(T)[:, None] + np.arange(r)]
    f = windows @ F.T
    e = np.tanh((s @ W)[:, None, :] + keys + f @ U + b) @ w
    weights, _ = softmax_forward(e, mask=mask)
    context = np.einsum("bt,btd->bd", weights, values)
    return context, weights, None
''',
    "din_activation_forward": '''import numpy as np


def din_activation_forward(behaviours, candidate, params):
    h = behaviours
    a = np.broadcast_to(candidate[:, None, :], h.shape)
    z = np.concatenate([h, a, h * a, h - a], axis=-1)
    u = 1 / (1 + np.exp(-(z @ params["W1"] + params["b1"])))
    return u @ params["w2"] + params["b2"][0], None
''',
    "din_activation_backward": '''import numpy as np


def din_activation_backward(dscores, cache):
    h, a, z, u, W1, w2 = (cache[n] for n in ("h", "a", "z", "u", "W1", "w2"))
    D = h.shape[-1]
    du = dscores[..., None] * w2
    dpre = du * u * (1 - u)
    grads = {"W1": z.reshape(-1, 4 * D).T @ dpre.reshape(-1, dpre.shape[-1]),
             "b1": dpre.sum(axis=(0, 1)), "w2": (u * dscores[..., None]).sum(axis=(0, 1)),
             "b2": dscores.sum(keepdims=True).reshape(1)}
    dz = dpre @ W1.T
    d1, d2, d3, d4 = (dz[..., i * D:(i + 1) * D] for i in range(4))
    dh = d1 + d3 * a[:, None, :] + d4
    da = (d2 + d3 * h - d4).sum(axis=1)
    return dh, da, grads
''',
    "linear_attention_forward": '''import numpy as np


def phi(x):
    return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0))).astype(x.dtype)


def linear_attention_forward(q, k, v, causal=False, eps=1e-6):
    fq, fk = phi(q), phi(k)
    if causal:
        S = np.cumsum(fk[..., :, None] * v[..., None, :], axis=-3)
        z = np.cumsum(fk, axis=-2)
        num = np.einsum("...td,...tde->...te", fq, S)
        den = (fq * z).sum(-1, keepdims=True)
    else:
        S = np.swapaxes(fk, -1, -2) @ v
        z = fk.sum(-2)
        num = fq @ S
        den = (fq @ z[..., None])
    return (num / (den + eps)).astype(q.dtype), None, None
''',
    "edge_softmax_forward": '''import numpy as np


def edge_softmax_forward(scores, edges, num_nodes):
    H, i = scores.shape[0], edges[0]
    m = np.full((H, num_nodes), -np.inf, dtype=scores.dtype)
    for h in range(H):
        np.maximum.at(m[h], i, scores[h])
    ex = np.exp(scores - m[:, i])
    total = np.zeros((H, num_nodes), dtype=scores.dtype)
    for h in range(H):
        np.add.at(total[h], i, ex[h])
    return ex / total[:, i], None
''',
    "edge_softmax_backward": '''import numpy as np


def edge_softmax_backward(dalpha, cache):
    alpha, dst, n = cache["alpha"], cache["dst"], cache["num_nodes"]
    s = np.zeros((alpha.shape[0], n), dtype=alpha.dtype)
    for h in range(alpha.shape[0]):
        np.add.at(s[h], dst, (dalpha * alpha)[h])
    return alpha * (dalpha - s[:, dst])
''',
    "cached_attention": '''import numpy as np

from attention_np import scaled_dot_product_attention_forward


def cached_attention(q, k_new, v_new, k_cache, v_cache, length):
    L, Tn = length, q.shape[2]
    k_cache[:, :, L:L + Tn] = k_new
    v_cache[:, :, L:L + Tn] = v_new
    K, V = k_cache[:, :, :L + Tn], v_cache[:, :, :L + Tn]
    mask = np.arange(L + Tn)[None, :] <= L + np.arange(Tn)[:, None]
    out, weights, _ = scaled_dot_product_attention_forward(q, K, V, mask=mask)
    return out, weights
''',
    "previous_token_scores": '''import numpy as np


def previous_token_scores(weights):
    scores = []
    for w in weights:
        w = np.asarray(w, dtype=np.float64)
        i = np.arange(1, w.shape[-1])
        scores.append(w[:, :, i, i - 1].mean(axis=(0, 2)))
    return np.array(scores)
''',
    "induction_scores": '''import numpy as np


def induction_scores(weights, period):
    scores = []
    for w in weights:
        w = np.asarray(w, dtype=np.float64)
        i = np.arange(period, w.shape[-1])
        scores.append(w[:, :, i, i - period + 1].mean(axis=(0, 2)))
    return np.array(scores)
''',
}

# (exercise, [(old, new), …] edits of its solution, words the report must hold)
MISTAKES = [
    ("general_score_backward", [("@ qW\n", "@ q\n")], ["dk is deᵀ q, without W"]),
    ("general_score_backward", [("q.reshape(-1, q.shape[-1]).T", "qW.reshape(-1, qW.shape[-1]).T")],
     ["dW multiplies d(q W) by q W instead of q"]),
    ("soft_attention_backward_dropout",
     [("dattended * cache[\"dropout\"][\"scale\"]", "dattended")],
     ["dscores is the gradient without dropout"]),
    ("soft_attention_backward_dropout", [("* cache[\"dropout\"][\"scale\"]",
                                          "* (cache[\"dropout\"][\"scale\"] > 0)")],
     ["dscores is 0.9 × the expected value everywhere"]),
    ("soft_attention_backward_dropout", [("np.swapaxes(attended, -1, -2)",
                                          "np.swapaxes(cache[\"softmax\"][\"y\"], -1, -2)")],
     ["dvalues uses the weights before dropout"]),
    ("sinusoidal_encoding", [("pe[:, 0::2] = np.sin(", "pe[:, 0::2] = np.cos("),
                             ("pe[:, 1::2] = np.cos(", "pe[:, 1::2] = np.sin(")],
     ["has sine and cosine swapped"]),
    ("sinusoidal_encoding", [("base ** (two_i / d)", "base ** (two_i / 2 / d)")],
     ["uses base^(i/d) for the pair i"]),
    ("rope_forward", [("x1 * cos - x2 * sin", "x1 * cos + x2 * sin"),
                      ("x1 * sin + x2 * cos", "-x1 * sin + x2 * cos")], ["rotates by −mθ"]),
    ("rope_forward", [("np.arange(0, D, 2) / D", "np.arange(0, D, 2) / 2 / D")],
     ["uses θ_i = base^(−i/D)"]),
    ("rope_forward", [("np.asarray(positions)[..., None]", "np.arange(x.shape[-2])[..., None]")],
     ["uses the positions 0 … T − 1 instead of the positions given"]),
    ("rope_backward", [("d1 * cos + d2 * sin", "d1 * cos - d2 * sin"),
                       ("-d1 * sin + d2 * cos", "d1 * sin + d2 * cos")],
     ["rotates dy by +mθ, as the forward did"]),
    ("rope_backward", [("d1, d2 = dy[..., 0::2], dy[..., 1::2]", "d1, d2 = np.split(dy, 2, -1)"),
                       ("dx[..., 0::2]", "dx[..., :dy.shape[-1] // 2]"),
                       ("dx[..., 1::2]", "dx[..., dy.shape[-1] // 2:]")],
     ["rotates back the rotate-half pairs"]),
    ("multi_head_attention_backward", [("dx_k + dx_v, grads", "dx_v, grads")],
     ["dx_kv holds only the values' path"]),
    ("multi_head_attention_backward", [("dx_k + dx_v, grads", "dx_k, grads")],
     ["dx_kv holds only the keys' path"]),
    ("multi_head_attention_backward", [("split_heads(dconcat, H)", "split_heads(dout, H)")],
     ["skips the output projection's backward"]),
    ("layer_norm_forward", [("((x - mu) ** 2).mean(axis=-1, keepdims=True)",
                             "x.var(axis=-1, ddof=1, keepdims=True)")],
     ["divides by d − 1 (the unbiased variance)"]),
    ("layer_norm_forward", [("np.sqrt(var + eps)", "(np.sqrt(var) + eps)")],
     ["adds ε to σ"]),
    ("layer_norm_forward", [("gamma * xhat + beta", "beta * xhat + gamma")], ["swaps γ and β"]),
    ("feed_forward_backward", [("du = act_backward(da, cache[\"act\"])", "du = da")],
     ["leaves out the activation's derivative"]),
    ("feed_forward_backward", [("du = act_backward(da, cache[\"act\"])",
                                "du = (da * (cache[\"act\"][\"x\"] > 0) if \"x\" in cache[\"act\"] "
                                "else relu_backward(da, cache[\"act\"]))")],
     ["uses ReLU's derivative: this FFN's activation is GELU"]),
    ("encoder_block_backward", [("dh = dy + dh_ln", "dh = dh_ln"),
                                ("dh = ds2 + dh_ffn", "dh = dh_ffn")],
     ["misses the FFN sub-layer's residual connection"]),
    ("encoder_block_backward", [("layer_norm_backward(dq + dkv,", "layer_norm_backward(dq,"),
                                ("dx = ds1 + dq + dkv", "dx = ds1 + dq")],
     ["takes only dx_q from the attention"]),
    ("encoder_block_backward", [("dx = dh + dx_ln", "dx = dx_ln"),
                                ("dx = ds1 + dq + dkv", "dx = dq + dkv")],
     ["misses the attention sub-layer's residual connection"]),
    ("decoder_block_forward", [("causal=True", "causal=False")],
     ["has a self-attention that is not causal"]),
    ("decoder_block_forward", [("mask=memory_mask", "mask=None")], ["ignores memory_mask"]),
    ("decoder_block_forward", [("multi_head_attention_forward(ln(2, h1), memory,",
                                "multi_head_attention_forward(ln(2, h1), ln(2, memory),")],
     ["normalises the memory with LN₂"]),
    ("beam_step", [("lp = ((5.0 + grown) / 6.0) ** length_penalty", "lp = np.ones(grown.shape)")],
     ["ranks by Σ log p, ignoring the length penalty"]),
    ("beam_step", [("lp = ((5.0 + grown) / 6.0) ** length_penalty",
                    "lp = grown.astype(float) ** length_penalty")], ["divides by |Y|^α"]),
    ("beam_step", [("    logp[finished] = -np.inf\n    logp[finished, end] = 0.0\n", "")],
     ["extends a finished beam by other tokens"]),
    ("beam_step", [("grown = lengths + ~finished", "grown = lengths + 1")],
     ["counts the free `end` of a finished beam"]),
    ("location_attention_forward", [("windows @ F.T", "windows @ F[:, ::-1].T")],
     ["flips the filter"]),
    ("location_attention_forward", [("softmax_forward(e, mask=mask)", "softmax_forward(e)")],
     ["ignores the mask: padded frames must get weight 0"]),
    ("location_attention_forward", [("+ f @ U + b)", "+ f @ U)")],
     ["leaves out the bias b inside the tanh"]),
    ("din_activation_forward", [("[h, a, h * a, h - a]", "[a, h, h * a, h - a]")],
     ["concatenates in another order"]),
    ("din_activation_forward", [("h * a, h - a]", "h * a, a - h]")], ["uses e_a − e_j"]),
    ("din_activation_forward", [("1 / (1 + np.exp(-(z @ params[\"W1\"] + params[\"b1\"])))",
                                 "np.maximum(z @ params[\"W1\"] + params[\"b1\"], 0)")],
     ["uses ReLU"]),
    ("din_activation_backward", [("d3 * h - d4", "d3 * h + d4")],
     ["gives the difference block the wrong sign for e_a"]),
    ("din_activation_backward", [("dpre = du * u * (1 - u)", "dpre = du")],
     ["leaves out the sigmoid's derivative"]),
    ("din_activation_backward", [("d3 * a[:, None, :]", "d3 * h"),
                                 ("d3 * h - d4", "d3 * a[:, None, :] - d4")],
     ["multiplies the product block's gradient by the wrong factor"]),
    ("linear_attention_forward", [("np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))",
                                   "np.maximum(x, 0)")], ["uses φ(x) = relu(x)"]),
    ("linear_attention_forward", [("(num / (den + eps))", "num")], ["is not normalised"]),
    ("linear_attention_forward", [("if causal:", "if False:")], ["ignores causal=True"]),
    ("edge_softmax_forward", [("H, i = scores.shape[0], edges[0]",
                               "H, i = scores.shape[0], edges[1]")],
     ["normalises over the edges out of node j (edges[1])"]),
    ("edge_softmax_forward", [("np.maximum.at(m[h], i, scores[h])", "m[h] = scores[h].max()"),
                              ("np.add.at(total[h], i, ex[h])", "total[h] = ex[h].sum()")],
     ["is one softmax over all the edges of a head"]),
    ("edge_softmax_forward", [("ex = np.exp(scores - m[:, i])", "ex = np.exp(scores)")],
     ["subtract each node's largest score before exp"]),
    ("edge_softmax_backward", [("np.add.at(s[h], dst, (dalpha * alpha)[h])",
                                "s[h] = (dalpha * alpha)[h].sum()")],
     ["subtracts Σ dα α over all the edges of a head"]),
    ("edge_softmax_backward", [("alpha * (dalpha - s[:, dst])", "alpha * dalpha")],
     ["is α ⊙ dα: the softmax couples the edges into a node"]),
    ("edge_softmax_backward", [("alpha * (dalpha - s[:, dst])", "dalpha - s[:, dst]")],
     ["forgets the factor α"]),
    ("cached_attention", [("    mask = np.arange(L + Tn)[None, :] <= L + np.arange(Tn)[:, None]\n",
                           "    mask = None\n")],
     ["lets the new positions see each other's future", "In short"]),
    ("cached_attention", [("    k_cache[:, :, L:L + Tn] = k_new\n"
                           "    v_cache[:, :, L:L + Tn] = v_new\n"
                           "    K, V = k_cache[:, :, :L + Tn], v_cache[:, :, :L + Tn]\n",
                           "    K = np.concatenate([k_cache[:, :, :L], k_new], axis=2)\n"
                           "    V = np.concatenate([v_cache[:, :, :L], v_new], axis=2)\n")],
     ["k_cache and v_cache: each is unchanged: write the new keys and values into the caches"]),
    ("cached_attention", [("K, V = k_cache[:, :, :L + Tn], v_cache[:, :, :L + Tn]",
                           "K, V = k_cache, v_cache"),
                          ("mask = np.arange(L + Tn)[None, :]",
                           "mask = np.arange(K.shape[2])[None, :]")],
     ["wrong output shape: weights has shape"]),
    ("previous_token_scores", [("w[:, :, i, i - 1]", "w[:, :, i, i]")],
     ["reads α[i, i] — attention to the token itself"]),
    ("previous_token_scores", [("w[:, :, i, i - 1]", "w[:, :, i - 1, i]")],
     ["reads α[i − 1, i], with query and key swapped"]),
    ("previous_token_scores", [("np.arange(1, w.shape[-1])", "np.arange(w.shape[-1])")],
     ["scores is 0.8571 × the expected value everywhere"]),
    ("previous_token_scores", [("w = np.asarray(w, dtype=np.float64)\n", "w = np.asarray(w)\n")],
     ["has dtype float32, expected float64"]),
    ("induction_scores", [("i - period + 1]", "i - period]")],
     ["reads α[i, i − period], the earlier copy of the current token itself"]),
    ("induction_scores", [("np.arange(period, w.shape[-1])", "np.arange(period - 1, w.shape[-1])")],
     ["averages over queries from period − 1 on"]),
]
