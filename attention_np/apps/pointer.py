"""Sorting numbers with a Pointer Network (Vinyals, Fortunato & Jaitly, 2015; article §8.3.2,
attention for symbolic reasoning), and the same encoder–decoder emitting values from a fixed
vocabulary instead (a seq2seq model with attention), to compare.

The input is n distinct integers x_1 … x_n from [0, V); the output is the same numbers in
increasing order. Both models read every number through one small layer and share the
encoder and decoder LSTMs:

    e_j = tanh((x_j / (V − 1)) w + b)                          (B, n, E)   read a number
    k_1 … k_n = LSTM_enc(e_1 … e_n)                           (B, n, H)   the encoder states
    d_i = LSTM_dec(y_{i−1}, d_{i−1}),  d_0 = the encoder's final state
          y_0 = a learned start vector, y_i = e of the number output at step i

**pointer** (Vinyals et al.): the attention distribution over the inputs is the output,

    p(C_i = j) = softmax_j(vᵀ tanh(d_i W_q + k_j W_k))  over the inputs not yet pointed at
                                                        (attention_np.pointer)

and the number output at step i is x_{C_i}. Ruling out the inputs already chosen (the mask)
makes every output a permutation of the input.

**seq2seq**: attention reads a context vector, and a softmax over the V possible values
says which number comes next (Luong et al.'s order: the LSTM steps first, then attends):

    c_i = Σ_j α_ij k_j,  α_i = softmax_j(vᵀ tanh(d_i W_q + k_j W_k))   (attention_np.soft)
    p(y_i = x) = softmax_x([d_i ; c_i] W_o + b_o)                      over the V values

Training is teacher-forced: the decoder's inputs are the true sorted numbers, so the decoder
LSTM runs over the whole output in one scan and the attention of all steps is one call.
Decoding is greedy, one step at a time. Parameters live in one flat dict: ``read.*``,
``enc.*``, ``dec.*``, ``start``, ``att.*`` and (seq2seq) ``out.*``. With ``backend="numba"``
the LSTM scans run on the fused kernels (the same equations; on the demo's short rows they were
slower than NumPy, so demos/pointer_sort.py keeps the default).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.core import linear_backward, linear_forward
from attention_np.nn.activations import tanh_backward, tanh_forward
from attention_np.nn.backend import check_backend
from attention_np.nn.checks import check_positive_int, check_rng
from attention_np.nn.init import normal, xavier_uniform
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.params import add_grads, linear_params, prefixed, sub
from attention_np.nn.recurrent import (init_recurrent_params, lstm_backward, lstm_cell_forward,
                                       lstm_forward)
from attention_np.pointer import pointer_attention_backward, pointer_attention_forward
from attention_np.scores import additive_score_backward, additive_score_forward
from attention_np.soft import soft_attention_backward, soft_attention_forward

MODELS = ("pointer", "seq2seq")


@dataclass(frozen=True)
class PointerConfig:
    """``model``: "pointer" or "seq2seq"; ``vocab``: V, the numbers are 0 … V − 1; widths of
    the read layer (E), the LSTMs (H) and the attention (A); ``backend`` of the LSTM scans
    ("numpy" or "numba")."""
    model: str = "pointer"
    vocab: int = 100
    embed: int = 32
    hidden: int = 64
    attn: int = 64
    backend: str = "numpy"

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        check_backend(self.backend)
        for name in ("vocab", "embed", "hidden", "attn"):
            check_positive_int(getattr(self, name), name, minimum=2 if name == "vocab" else 1)


def init_pointer_model(config: PointerConfig, rng: np.random.Generator,
                       dtype=np.float64) -> dict:
    """LSTMs as torch's, the read layer and ``out`` as torch's nn.Linear, the attention's
    weights Glorot, the start vector N(0, 1)."""
    check_rng(rng)
    c = config
    params = prefixed("read", linear_params(rng, 1, c.embed, dtype))
    params["read.W"] = normal((1, c.embed), rng, dtype=dtype)  # fan-in 1: spread the units out
    params["read.T"] = normal((c.vocab, c.embed), rng, 0.3, dtype)
    params["start"] = normal(c.embed, rng, dtype=dtype)
    params.update(prefixed("enc", init_recurrent_params("lstm", c.embed, c.hidden, rng, dtype)))
    params.update(prefixed("dec", init_recurrent_params("lstm", c.embed, c.hidden, rng, dtype)))
    params.update({"att.W_q": xavier_uniform((c.hidden, c.attn), rng, dtype),
                   "att.W_k": xavier_uniform((c.hidden, c.attn), rng, dtype),
                   "att.v": xavier_uniform((c.attn, 1), rng, dtype)[:, 0]})
    if c.model == "seq2seq":
        params.update(prefixed("out", linear_params(rng, 2 * c.hidden, c.vocab, dtype)))
    return params


def check_numbers(values, vocab: int) -> np.ndarray:
    """values (B, n): integers in [0, vocab), distinct within each row."""
    values = np.asarray(values)
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"values must be a 2-D integer array (B, n), got shape {values.shape} "
                         f"dtype {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= vocab):
        raise ValueError(f"values must lie in [0, vocab={vocab}), got values in "
                         f"[{values.min()}, {values.max()}]")
    if values.size and np.any(np.diff(np.sort(values, axis=1), axis=1) == 0):
        raise ValueError("values must be distinct within each row (sorting by pointing assumes "
                         "one input per output)")
    return values


# ------------------------------------------------------------------------------- pieces
def read_forward(values, params: dict, vocab: int):
    """e = tanh((x / (V − 1)) w + b + T[x]): the number's size and its token embedding.
    values (...) int → e (..., E)."""
    x = (values / (vocab - 1)).astype(params["read.W"].dtype)[..., None]   # (..., 1)
    a, lin_cache = linear_forward(x, params["read.W"], params["read.b"])
    t, emb_cache = embedding_forward(values, params["read.T"])
    e, tanh_cache = tanh_forward(a + t)
    return e, {"lin": lin_cache, "emb": emb_cache, "tanh": tanh_cache}


def read_backward(de, cache) -> dict:
    da = tanh_backward(de, cache["tanh"])
    _, dW, db = linear_backward(da, cache["lin"])
    return {"read.W": dW, "read.b": db, "read.T": embedding_backward(da, cache["emb"])}


def chosen_before_mask(order: np.ndarray) -> np.ndarray:
    """(B, n, n) bool: True where input j has not been pointed at before step i, for the
    pointing order ``order`` (B, n) (a permutation of 0 … n − 1 per row)."""
    B, n = order.shape
    step_of = np.empty_like(order)
    step_of[np.arange(B)[:, None], order] = np.arange(n)                  # when j is chosen
    return step_of[:, None, :] >= np.arange(n)[None, :, None]             # (B, i, j)


# ------------------------------------------------------------------------------- training
def pointer_model_forward(values, params: dict, config: PointerConfig):
    """Teacher-forced pass over a batch of rows to sort.   values (B, n) distinct ints.

    Returns ``(out, weights, cache)``: out is log p (B, n, n) over the inputs (pointer) or
    the logits (B, n, V) over the values (seq2seq); weights (B, n, n) the attention of every
    output step over the inputs.
    """
    values = check_numbers(values, config.vocab)
    B, n = values.shape
    order = np.argsort(values, axis=1, kind="stable")                    # (B, n) targets
    ys = np.take_along_axis(values, order, axis=1)                       # sorted numbers
    e, read_cache = read_forward(values, params, config.vocab)           # (B, n, E)
    y_prev, y_cache = read_forward(ys[:, :-1], params, config.vocab)     # (B, n − 1, E)
    start = np.broadcast_to(params["start"], (B, 1, params["start"].shape[0]))
    y_in = np.concatenate([start, y_prev], axis=1)                       # (B, n, E)
    k, (h, c), enc_cache = lstm_forward(e, None, None, sub(params, "enc"),
                                        backend=config.backend)            # (B, n, H)
    d, _, dec_cache = lstm_forward(y_in, h, c, sub(params, "dec"),
                                   backend=config.backend)                 # (B, n, H)
    cache = {"model": config.model, "read": read_cache, "y": y_cache, "enc": enc_cache,
             "dec": dec_cache, "order": order, "values": values}
    att = (params["att.W_q"], params["att.W_k"], params["att.v"])
    if config.model == "pointer":
        out, weights, cache["ptr"] = pointer_attention_forward(d, k, *att,
                                                               mask=chosen_before_mask(order))
        return out, weights, cache
    scores, cache["score"] = additive_score_forward(d, k, *att)           # (B, n, n)
    ctx, weights, cache["soft"] = soft_attention_forward(scores, k)       # (B, n, H)
    out, cache["out"] = linear_forward(np.concatenate([d, ctx], axis=-1),
                                       params["out.W"], params["out.b"])  # (B, n, V)
    return out, weights, cache


def pointer_model_backward(dout, cache) -> dict:
    """Undo :func:`pointer_model_forward`: dout like its ``out`` → gradients keyed like the
    params."""
    grads = {}
    if cache["model"] == "pointer":
        dd, dk, *dW = pointer_attention_backward(dout, cache["ptr"])
    else:
        dx, grads["out.W"], grads["out.b"] = linear_backward(dout, cache["out"])
        H = dx.shape[-1] // 2
        dd, dctx = dx[..., :H], dx[..., H:]                                # x = [d ; c]
        dscores, dk_soft = soft_attention_backward(dctx, cache["soft"])
        dd_score, dk, *dW = additive_score_backward(dscores, cache["score"])
        dd, dk = dd + dd_score, dk + dk_soft
    grads.update(dict(zip(("att.W_q", "att.W_k", "att.v"), dW)))
    dy_in, dh, dc, g_dec = lstm_backward(dd, cache["dec"])               # d_0 = (h_T, c_T)
    de, _, _, g_enc = lstm_backward(dk, cache["enc"], dh, dc)
    grads.update(prefixed("dec", g_dec) | prefixed("enc", g_enc))
    grads["start"] = dy_in[:, 0].sum(axis=0)
    add_grads(grads, read_backward(de, cache["read"]))
    return add_grads(grads, read_backward(dy_in[:, 1:], cache["y"]))


def sequence_loss(out, cache) -> tuple[float, np.ndarray]:
    """Mean −log p of the right output at every step, and its gradient d out.

    pointer: out = log p (B, n, n), the right input at step i is ``order[:, i]``;
    seq2seq: out = logits (B, n, V), the right value is the i-th smallest number."""
    order = cache["order"]
    B, n = order.shape
    if cache["model"] == "seq2seq":
        targets = np.take_along_axis(cache["values"], order, axis=1)
        loss, ce_cache = cross_entropy_forward(out, targets)
        return float(loss), cross_entropy_backward(1.0, ce_cache)
    picked = np.take_along_axis(out, order[..., None], axis=2)            # (B, n, 1)
    dout = np.zeros_like(out)
    np.put_along_axis(dout, order[..., None], -1.0 / (B * n), axis=2)     # L = −mean log p
    return float(-picked.mean()), dout


def loss_and_grads(params: dict, config: PointerConfig, values, rng=None):
    """``(loss, grads)`` of one teacher-forced batch. ``rng`` is unused (no dropout); it keeps
    the signature every app shares."""
    out, _, cache = pointer_model_forward(values, params, config)
    loss, dout = sequence_loss(out, cache)
    return loss, pointer_model_backward(dout, cache)


# ------------------------------------------------------------------------------- decoding
def sort_greedy(values, params: dict, config: PointerConfig):
    """Greedy decoding, one step at a time: ``(outputs (B, n) numbers, weights (B, n, n))``.
    The pointer outputs the input it points at (never one it has pointed at before); seq2seq
    the most likely value."""
    values = check_numbers(values, config.vocab)
    B, n = values.shape
    e, _ = read_forward(values, params, config.vocab)
    k, (h, c), _ = lstm_forward(e, None, None, sub(params, "enc"), backend=config.backend)
    att = (params["att.W_q"], params["att.W_k"], params["att.v"])
    dec = sub(params, "dec")
    y = np.broadcast_to(params["start"], (B, params["start"].shape[0]))
    free = np.ones((B, 1, n), bool)
    outputs, weights = np.zeros((B, n), values.dtype), np.zeros((B, n, n))
    for i in range(n):
        h, c, _ = lstm_cell_forward(y, h, c, dec)                          # (B, H)
        if config.model == "pointer":
            _, p, _ = pointer_attention_forward(h[:, None], k, *att, mask=free)
            j = p[:, 0].argmax(axis=1)                                     # (B,)
            free[np.arange(B), 0, j] = False
            outputs[:, i], weights[:, i] = values[np.arange(B), j], p[:, 0]
        else:
            scores, _ = additive_score_forward(h[:, None], k, *att)
            ctx, alpha, _ = soft_attention_forward(scores, k)
            logits, _ = linear_forward(np.concatenate([h, ctx[:, 0]], axis=1),
                                       params["out.W"], params["out.b"])
            outputs[:, i], weights[:, i] = logits.argmax(axis=1), alpha[:, 0]
        y, _ = read_forward(outputs[:, i], params, config.vocab)
    return outputs, weights
