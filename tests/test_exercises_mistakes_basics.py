"""Exercises 1–9: a learner's correct solution of each, and realistic wrong ones — edits of it,
with the words the grader must say (run by test_exercises_mistakes.py) — and a solution whose
broadcasting error is reported with the learner's own line."""
from tests.test_exercises import grade_source, mutate

SOLUTIONS = {
    "softmax_forward": '''import numpy as np


def softmax_forward(x, axis=-1, mask=None):
    if mask is not None:
        x = np.where(mask, x, -np.inf)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    s = np.sum(e, axis=axis, keepdims=True)
    y = e / np.where(s == 0, 1, s)
    return y.astype(x.dtype), {"y": y, "axis": axis}
''',
    "softmax_backward": '''import numpy as np


def softmax_backward(dy, cache):
    y, axis = cache["y"], cache["axis"]
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))
''',
    "linear_backward": '''def linear_backward(dy, cache):
    x, W = cache["x"], cache["W"]
    dx = dy @ W.T
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    dW = x2.T @ dy2
    db = dy2.sum(axis=0) if cache["has_bias"] else None
    return dx, dW, db
''',
    "dot_score_backward": '''import numpy as np


def dot_score_backward(dscores, cache):
    q, k = cache["q"], cache["k"]
    dq = dscores @ k
    dk = np.swapaxes(dscores, -1, -2) @ q
    return dq, dk
''',
    "additive_score_backward": '''import numpy as np


def additive_score_backward(dscores, cache):
    q, k, W_q, W_k, v, h = (cache[n] for n in ("q", "k", "W_q", "W_k", "v", "h"))
    dv = np.einsum("bija,bij->a", h, dscores)
    da = dscores[..., None] * v * (1 - h * h)
    dqa, dka = da.sum(axis=2), da.sum(axis=1)
    dq = dqa @ W_q.T
    dk = dka @ W_k.T
    dW_q = np.einsum("bid,bia->da", q, dqa)
    dW_k = np.einsum("bjd,bja->da", k, dka)
    return dq, dk, dW_q, dW_k, dv
''',
    "soft_attention_backward": '''import numpy as np

from attention_np import softmax_backward


def soft_attention_backward(dcontext, cache):
    alpha, values = cache["attended"], cache["values"]
    dalpha = dcontext @ np.swapaxes(values, -1, -2)
    dvalues = np.swapaxes(alpha, -1, -2) @ dcontext
    dscores = softmax_backward(dalpha, cache["softmax"])
    return dscores, dvalues
''',
    "hard_attention_backward": '''import numpy as np


def hard_attention_backward(dcontext, cache, reward):
    alpha, onehot = cache["weights"], cache["onehot"]
    r = np.broadcast_to(np.asarray(reward), alpha.shape[:-1])[..., None]
    dscores = (-r * (onehot - alpha)).astype(alpha.dtype)
    dvalues = np.swapaxes(onehot, -1, -2) @ dcontext
    return dscores, dvalues
''',
    "causal_mask": '''import numpy as np


def causal_mask(Tq, Tk=None):
    Tk = Tq if Tk is None else Tk
    return np.arange(Tk)[None, :] <= np.arange(Tq)[:, None]
''',
    "padding_mask": '''import numpy as np


def padding_mask(lengths, T):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]
''',
}

MASK_LINE = "        x = np.where(mask, x, -np.inf)\n"
DX = "y * (dy - np.sum(dy * y, axis=axis, keepdims=True))"
DK = "dk = np.swapaxes(dscores, -1, -2) @ q"
DSCORES = "dscores = (-r * (onehot - alpha)).astype(alpha.dtype)"
CAUSAL = "np.arange(Tk)[None, :] <= np.arange(Tq)[:, None]"
PADDING = "np.arange(T)[None, :] < np.asarray(lengths)[:, None]"

# (exercise, edits, words the report must contain)
MISTAKES = [
    ("softmax_forward", [("e = np.exp(x - m)", "e = np.exp(x)")],
     ["y[", "is nan where the reference is", "subtract the row max first"]),
    ("softmax_forward", [("    if mask is not None:\n" + MASK_LINE, "")],
     ["y equals the softmax with the mask ignored", "In short: right without a mask, wrong "
      "with one"]),
    ("softmax_forward", [("-np.inf)", "-1e9)")],
     ["every difference is in a fully masked row", "yours 0.", "expected 0"]),
    ("softmax_forward", [("axis=axis", "axis=-1")], ["y is the softmax over axis 2, not over "
                                                     "axis 1"]),
    ("softmax_forward", [("y.astype(x.dtype)", "y.astype(np.float64)")],
     ["y has dtype float64, expected float32", "In short: right in float64, wrong in float32"]),
    ("softmax_backward", [(DX, "y * (1 - y) * dy")], ["dx uses only the Jacobian's diagonal"]),
    ("softmax_backward", [("axis=axis", "axis=-1")],
     ["dx sums over axis 2 instead of the softmax's axis 1"]),
    ("softmax_backward", [(DX, f"({DX}).astype(np.float64)")],
     ["dx has dtype float64, expected float32", "right in float64, wrong in float32"]),
    ("linear_backward", [("dW = x2.T @ dy2", "dW = dy2.T @ x2")],
     ["dW has shape", "it looks transposed"]),
    ("linear_backward", [("db = dy2.sum(axis=0) if", "db = dy if")],
     ["db has shape", "extra leading axes", "sum over the batch/time axes"]),
    ("linear_backward", [(' if cache["has_bias"] else None', "")],
     ["db must be None here", "cache['has_bias'] is False"]),
    ("dot_score_backward", [("return dq, dk", "return dk, dq")],
     ["dq holds what dk should be: return the outputs in the order (dq, dk)"]),
    ("dot_score_backward", [(DK, "dk = np.swapaxes(q, -1, -2) @ dscores")],
     ["dk has shape", "it looks transposed"]),
    ("dot_score_backward", [(DK, "dk = np.einsum('bij,bid->jd', dscores, q)")],
     ["wrong output shape: dk has shape"]),
    ("additive_score_backward", [("(1 - h * h)", "(1 - h)")],
     ["differs from the expected value at", "finite differences of the library's forward"]),
    ("additive_score_backward", [('"bid,bia->da"', '"bid,bia->bda"')],
     ["dW_q has shape", "extra leading axes"]),
    ("additive_score_backward", [("dk = dka @ W_k.T", "dk = dka @ W_q.T")],
     ["wrong output shape: dk has shape"]),
    ("soft_attention_backward", [('dscores = softmax_backward(dalpha, cache["softmax"])',
                                  "dscores = dalpha")],
     ["dscores equals dα = dc hᵀ, the gradient with respect to the weights"]),
    ("soft_attention_backward", [("np.swapaxes(alpha, -1, -2) @ dcontext",
                                  "np.swapaxes(dcontext, -1, -2) @ alpha")],
     ["dvalues has shape", "it looks transposed"]),
    ("soft_attention_backward", [("return dscores, dvalues", "return -dscores, dvalues")],
     ["dscores has the opposite sign of the expected value everywhere"]),
    ("hard_attention_backward", [("(-r * (onehot - alpha))", "(r * (onehot - alpha))")],
     ["dscores has the opposite sign"]),
    ("hard_attention_backward", [("(-r * (onehot - alpha))", "(-r * onehot)")],
     ["dscores is −r · onehot(j*)", "also has −α"]),
    ("hard_attention_backward", [("(-r * (onehot - alpha))", "(-(onehot - alpha))")],
     ["dscores ignores the reward"]),
    ("hard_attention_backward", [(DSCORES, "dscores = -r * (onehot - alpha)")],
     ["dscores has dtype float64, expected float32", "right in float64, wrong in float32"]),
    ("causal_mask", [("<=", "<")], ["mask masks the diagonal"]),
    ("causal_mask", [("<=", ">")], ["mask is inverted: True must mean 'may attend'"]),
    ("causal_mask", [(CAUSAL, "np.tril(np.ones((Tq, Tk)))")],
     ["mask must be a boolean array (True = may attend), got dtype float64"]),
    ("causal_mask", [(CAUSAL, "np.tril(np.ones((Tq, Tk), dtype=bool), Tk - Tq)")],
     ["mask is aligned bottom-right"]),
    ("causal_mask", [(CAUSAL, "np.arange(Tq)[None, :] <= np.arange(Tk)[:, None]")],
     ["mask has shape", "it looks transposed"]),
    ("padding_mask", [("<", "<=")], ["mask has one real position too many"]),
    ("padding_mask", [("<", ">=")], ["mask is inverted"]),
    ("padding_mask", [(PADDING, "np.arange(T)[:, None] < np.asarray(lengths)[None, :]")],
     ["mask has shape", "it looks transposed"]),
]


def test_a_broadcasting_error_shows_the_learner_s_line(tmp_path):
    source = mutate(SOLUTIONS["softmax_backward"], (", keepdims=True", ""))
    report = grade_source(tmp_path, "softmax_backward", source)
    assert report.status == "error"
    assert "ValueError: operands could not be broadcast together" in report.text
    assert 'softmax_backward.py", line 6, in softmax_backward' in report.text
