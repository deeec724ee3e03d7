"""Exercises 10–18: a learner's correct solution of each, and realistic wrong ones — edits of it,
with the words the grader must say (run by test_exercises_mistakes.py). The NumPy online softmax
here is the passing solution of the flash exercise (the library's own is a Numba kernel)."""

SDPA_FORWARD = '''import numpy as np

from attention_np import causal_mask, softmax_forward


def scaled_dot_product_attention_forward(q, k, v, mask=None, causal=False):
    D = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(D, dtype=q.dtype)
    if causal:
        tri = causal_mask(q.shape[-2], k.shape[-2])
        mask = tri if mask is None else mask & tri
    weights, _ = softmax_forward(scores, mask=mask)
    return weights @ v, weights, None
'''
SOLUTIONS = {
    "scaled_dot_product_attention_forward": SDPA_FORWARD,
    "scaled_dot_product_attention_backward": '''import numpy as np

from attention_np import soft_attention_backward


def scaled_dot_product_attention_backward(dout, cache):
    q, k, s = cache["q"], cache["k"], cache["scale"]
    dscores, dv = soft_attention_backward(dout, cache["soft"])
    dq = s * (dscores @ k)
    dk = s * (np.swapaxes(dscores, -1, -2) @ q)
    return dq, dk, dv
''',
    "split_heads": '''def split_heads(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, T, num_heads, d // num_heads).transpose(0, 2, 1, 3)
''',
    "merge_heads": '''def merge_heads(x):
    B, H, T, Dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * Dh)
''',
    "multi_head_attention_forward": '''import numpy as np

from attention_np import causal_mask, merge_heads, softmax_forward, split_heads


def multi_head_attention_forward(x_q, x_kv, params, num_heads, mask=None, causal=False):
    p = params
    q = split_heads(x_q @ p["W_q"] + p["b_q"], num_heads)
    k = split_heads(x_kv @ p["W_k"] + p["b_k"], num_heads)
    v = split_heads(x_kv @ p["W_v"] + p["b_v"], num_heads)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1], dtype=q.dtype)
    if causal:
        tri = causal_mask(q.shape[-2], k.shape[-2])
        mask = tri if mask is None else mask & tri
    weights, _ = softmax_forward(scores, mask=mask)
    out = merge_heads(weights @ v) @ p["W_o"] + p["b_o"]
    return out, weights, None
''',
    "layer_norm_backward": '''def layer_norm_backward(dy, cache):
    xhat, rstd, gamma = cache["xhat"], cache["rstd"], cache["gamma"]
    d = xhat.shape[-1]
    dgamma = (dy * xhat).reshape(-1, d).sum(axis=0)
    dbeta = dy.reshape(-1, d).sum(axis=0)
    g = dy * gamma
    dx = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    return dx, dgamma, dbeta
''',
    "flash_attention_forward": '''import numpy as np

BLOCK = 4


def flash_attention_forward(q, k, v, mask=None):
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    allowed = np.broadcast_to(True if mask is None else mask, (B, H, Tq, Tk))
    m = np.full((B, H, Tq, 1), -np.inf, dtype=q.dtype)
    l = np.zeros((B, H, Tq, 1), dtype=q.dtype)
    acc = np.zeros((B, H, Tq, v.shape[-1]), dtype=q.dtype)
    for start in range(0, Tk, BLOCK):
        keys = slice(start, start + BLOCK)
        e = q @ np.swapaxes(k[:, :, keys], -1, -2) / np.sqrt(D, dtype=q.dtype)
        e = np.where(allowed[..., keys], e, -np.inf)
        m_new = np.maximum(m, e.max(axis=-1, keepdims=True))
        shift = np.where(np.isfinite(m_new), m_new, 0)
        p = np.exp(e - shift)
        rescale = np.exp(m - shift)
        l = l * rescale + p.sum(axis=-1, keepdims=True)
        acc = acc * rescale + p @ v[:, :, keys]
        m = m_new
    out = acc / np.where(l > 0, l, 1)
    with np.errstate(divide="ignore"):
        lse = (m + np.log(l))[..., 0]
    return out, lse
''',
    "attention_rollout": '''import numpy as np


def attention_rollout(attentions, residual=0.5):
    T = attentions.shape[-1]
    eye = np.eye(T, dtype=attentions.dtype)
    rollout = eye
    for layer in attentions:
        a = residual * eye + (1 - residual) * layer.mean(axis=0)
        total = a.sum(axis=-1, keepdims=True)
        a = a / np.where(total > 0, total, 1)
        rollout = a @ rollout
    return rollout
''',
    "bahdanau_step_forward": '''import numpy as np

from attention_np import softmax_forward


def bahdanau_step_forward(params, q, kp, keys, key_mask):
    a = np.tanh((q @ params["W_q"])[:, None, :] + kp)
    scores = a @ params["v"]
    weights, _ = softmax_forward(scores, axis=-1, mask=key_mask)
    context = (weights[:, None, :] @ keys)[:, 0]
    return context, weights, None
''',
}

SCALE = " / np.sqrt(D, dtype=q.dtype)"
SOFTMAX = "weights, _ = softmax_forward(scores, mask=mask)"
NAIVE_SOFTMAX = """if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = e / e.sum(axis=-1, keepdims=True)"""
SOFT_BACKWARD = 'dscores, dv = soft_attention_backward(dout, cache["soft"])'
UNMASKED_BACKWARD = """alpha, sm = softmax_forward(s * (q @ np.swapaxes(k, -1, -2)))
    dv = np.swapaxes(alpha, -1, -2) @ dout
    dscores = softmax_backward(dout @ np.swapaxes(cache["soft"]["values"], -1, -2), sm)"""
RESHAPE_SPLIT = """

def split_heads(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, num_heads, T, d // num_heads)


def multi_head_attention_forward"""
DX = "dx = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))"
RESIDUAL = "residual * eye + (1 - residual) * "

MISTAKES = [
    ("scaled_dot_product_attention_forward", [(SCALE, "")],
     ["out and weights: each equals attention without the 1/√D scale"]),
    ("scaled_dot_product_attention_forward", [(SCALE, " / D")],
     ["equals attention with the scores divided by D instead of √D"]),
    ("scaled_dot_product_attention_forward", [(SOFTMAX, "weights, _ = softmax_forward(scores)")],
     ["out and weights: each equals attention with the mask ignored",
      "out and weights: each ignores causal=True"]),
    ("scaled_dot_product_attention_forward", [(SOFTMAX, NAIVE_SOFTMAX)],
     ["is nan where the reference is 0", "that row is fully masked", "never 0/0 = NaN"]),
    ("scaled_dot_product_attention_forward", [(SCALE, " / np.sqrt(D)")],
     ["out and weights: each has dtype float64, expected float32",
      "In short: right in float64, wrong in float32."]),
    ("scaled_dot_product_attention_backward", [("s * (", "(")],
     ["dq and dk: each is", "× the expected value everywhere: the 1/√D scale is missing (√D = √"]),
    ("scaled_dot_product_attention_backward", [("s * (", "s * s * (")],
     ["the 1/√D scale is applied twice"]),
    ("scaled_dot_product_attention_backward", [("np.swapaxes(dscores, -1, -2) @ q",
                                                "np.swapaxes(q, -1, -2) @ dscores")],
     ["dk has shape", "it looks transposed"]),
    ("scaled_dot_product_attention_backward",
     [(SOFT_BACKWARD, UNMASKED_BACKWARD),
      ("import soft_attention_backward", "import softmax_backward, softmax_forward")],
     ["dq, dk and dv: each is the gradient of attention without the mask: use the weights",
      "dq, dk and dv: each is the gradient of attention without the causal mask"]),
    ("split_heads", [("x.reshape(B, T, num_heads, d // num_heads).transpose(0, 2, 1, 3)",
                      "x.reshape(B, num_heads, T, d // num_heads)")],
     ["heads looks like (B, T, H·Dh) reshaped straight to (B, H, T, Dh)"]),
    ("split_heads", [("x.reshape(B, T, num_heads, d // num_heads).transpose(0, 2, 1, 3)",
                      "x.reshape(B, T, d // num_heads, num_heads).transpose(0, 3, 1, 2)")],
     ["heads gives head h the features h, h + H, h + 2H"]),
    ("split_heads", [(".transpose(0, 2, 1, 3)", ".transpose(0, 2, 3, 1)")],
     ["heads has shape", "it looks transposed"]),
    ("merge_heads", [("x.transpose(0, 2, 1, 3).reshape", "x.reshape")],
     ["merged looks like (B, H, T, Dh) reshaped straight to (B, T, H·Dh)"]),
    ("merge_heads", [(".transpose(0, 2, 1, 3)", ".transpose(0, 2, 3, 1)")],
     ["merged interleaves the heads' features"]),
    ("merge_heads", [(".reshape(B, T, H * Dh)", "")],
     ["merged has shape", "the right number of entries, arranged differently"]),
    ("multi_head_attention_forward", [("np.sqrt(q.shape[-1], ", "np.sqrt(x_q.shape[-1], ")],
     ["scales the scores by 1/√d, the model width, instead of 1/√Dh"]),
    ("multi_head_attention_forward", [(' @ p["W_o"] + p["b_o"]', "")],
     ["out is the concatenated heads without the output projection"]),
    ("multi_head_attention_forward", [("\n\ndef multi_head_attention_forward", RESHAPE_SPLIT)],
     ["out differs from the expected value at", "weights differs from the expected value"]),
    ("multi_head_attention_forward", [(SOFTMAX, "weights, _ = softmax_forward(scores)")],
     ["out and weights: each equals attention with the mask ignored",
      "out and weights: each ignores causal=True"]),
    ("layer_norm_backward", [(DX, "dx = rstd * g")],
     ["dx is only the direct term γ ⊙ dy / σ"]),
    ("layer_norm_backward", [("dgamma = (dy * xhat).reshape(-1, d).sum(axis=0)",
                              "dgamma = dy * xhat")],
     ["dgamma has shape", "extra leading axes"]),
    ("layer_norm_backward", [("return dx,", "return dx.astype('float64'),")],
     ["dx has dtype float64, expected float32", "In short: right in float64, wrong in "
      "float32."]),
    ("flash_attention_forward", [("l = l * rescale", "l = l"),
                                 ("acc = acc * rescale", "acc = acc")],
     ["out differs from the expected value at", "lse differs from the expected value at"]),
    ("flash_attention_forward", [("shift = np.where(np.isfinite(m_new), m_new, 0)",
                                  "shift = m_new")],
     ["out[0, 0, 0, 0] is nan where the reference is 0", "that row is fully masked"]),
    ("flash_attention_forward", [("p = np.exp(e - shift)", "p = np.exp(e)"),
                                 ("rescale = np.exp(m - shift)", "rescale = 1"),
                                 ("(m + np.log(l))", "np.log(l)")],
     ["where the reference is", "exp overflows unless you subtract the running max first"]),
    ("flash_attention_forward", [("(m + np.log(l))", "np.log(l)")],
     ["lse differs from the expected value at"]),
    ("flash_attention_forward", [(SCALE, "")],
     ["out and lse: each equals attention without the 1/√D scale"]),
    ("attention_rollout", [("rollout = a @ rollout", "rollout = rollout @ a")],
     ["rollout multiplies the layers in the wrong order"]),
    ("attention_rollout", [("layer.mean(axis=0)", "layer.max(axis=0)")],
     ["rollout fuses the heads with max"]),
    ("attention_rollout", [(RESIDUAL, "")], ["rollout leaves out the residual"]),
    ("attention_rollout", [(RESIDUAL, "(1 - residual) * eye + residual * ")],
     ["rollout swaps the weights"]),
    ("bahdanau_step_forward", [("mask=key_mask", "mask=None")],
     ["context and weights: each ignores key_mask",
      "In short: right without a mask, wrong with one."]),
    ("bahdanau_step_forward", [("axis=-1", "axis=0")],
     ["weights differs from the expected value at"]),
    ("bahdanau_step_forward", [("np.tanh(", "(")], ["context differs from the expected value"]),
]
