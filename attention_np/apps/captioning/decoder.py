"""The Show, Attend and Tell decoder (Xu et al. 2015, §3.1.2): an LSTM that attends over the
L annotation vectors a_i of the image before emitting each word.

At step t, with previous word y_{t−1} and state (h_{t−1}, c_{t−1}):

    e_ti = vᵀ tanh(h_{t−1} W_h + a_i W_a)             additive score (attention_np.scores)
    α_t  = softmax(e_t)                                 over the L image locations
    z_t  = Σ_i α_ti a_i              (soft)      or     a_{s_t},  s_t ~ Cat(α_t)   (hard)
    β_t  = σ(h_{t−1} W_β + b_β)                         gating scalar (§4.2.1)
    h_t, c_t = LSTM([E y_{t−1}, β_t z_t], h_{t−1}, c_{t−1})
    p(y_t) = softmax(tanh(E y_{t−1} + h_t L_h + β_t z_t L_z) L_o + b_o)     deep output

and the state starts from the mean annotation: h_0 = tanh(ā W_h0 + b_h0), c_0 likewise.
(Xu et al.'s deep output is linear inside the softmax; the tanh follows their released code.)
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.activations import (sigmoid_backward, sigmoid_forward, tanh_backward,
                                      tanh_forward)
from attention_np.core import linear_backward, linear_forward
from attention_np.hard import hard_attention_backward, hard_attention_forward
from attention_np.nn import init
from attention_np.nn.init import xavier_uniform, zeros
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.params import add_grads, prefixed, sub
from attention_np.nn.recurrent import init_recurrent_params, lstm_cell_backward, lstm_cell_forward
from attention_np.scores import additive_score_backward, additive_score_forward
from attention_np.soft import soft_attention_backward, soft_attention_forward


def init_decoder_params(V: int, D: int, embed: int, hidden: int, attn: int, rng,
                        dtype=np.float64) -> dict:
    """Parameters for a vocabulary of V words over D-dim annotations (all row-vector weights):
    ``E``, ``init_h.*``/``init_c.*`` (h_0, c_0), ``att.*`` (W_h, W_a, v), ``beta.*`` (the
    gate), ``L_h``, ``L_z``, ``L_o``, ``b_o`` (deep output) and ``lstm.*``. Weights are Glorot.

    E ~ N(0, 0.1²): E y_{t−1} enters the deep output *unprojected*, tanh(E y + h L_h + β z L_z),
    where h L_h and β z L_z start with std ≈ 0.34 and 0.22 (measured at init on the demo's
    strips); at 0.1 the word does not drown the image and state terms at the first steps.
    """
    xu = lambda *shape: xavier_uniform(shape, rng, dtype)               # noqa: E731
    p = {"E": init.normal((V, embed), rng, 0.1, dtype),
         "init_h.W": xu(D, hidden), "init_h.b": zeros(hidden, dtype),
         "init_c.W": xu(D, hidden), "init_c.b": zeros(hidden, dtype),
         "att.W_h": xu(hidden, attn), "att.W_a": xu(D, attn), "att.v": xu(attn, 1)[:, 0],
         "beta.W": xu(hidden, 1), "beta.b": zeros(1, dtype),
         "L_h": xu(hidden, embed), "L_z": xu(D, embed), "L_o": xu(embed, V),
         "b_o": zeros(V, dtype)}
    p.update(prefixed("lstm", init_recurrent_params("lstm", embed + D, hidden, rng, dtype)))
    return p


def init_state_forward(a, p):
    """h_0 = tanh(ā W_h0 + b_h0),  c_0 = tanh(ā W_c0 + b_c0),  ā = mean_i a_i.   a (B, L, D)."""
    mean = a.mean(axis=1)                                            # (B, D)
    (h, hc), (c, cc) = (_tanh_linear(mean, p[f"init_{s}.W"], p[f"init_{s}.b"]) for s in "hc")
    return (h, c), {"hc": hc, "cc": cc, "L": a.shape[1]}


def init_state_backward(dh, dc, cache, grads):
    """Accumulates dW/db into ``grads``; returns da (B, L, D) = dā / L for every location."""
    dmean = 0
    for s, d in (("h", dh), ("c", dc)):
        dx, grads[f"init_{s}.W"], grads[f"init_{s}.b"] = _tanh_linear_backward(d, cache[f"{s}c"])
        dmean = dmean + dx
    return np.repeat(dmean[:, None, :] / cache["L"], cache["L"], axis=1)


def _tanh_linear(x, W, b):
    """y = tanh(x W + b)."""
    y, linear_cache = linear_forward(x, W, b)
    y, tanh_cache = tanh_forward(y)
    return y, {"linear": linear_cache, "tanh": tanh_cache}


def _tanh_linear_backward(dy, cache):
    return linear_backward(tanh_backward(dy, cache["tanh"]), cache["linear"])


def _hard_attend(scores, a, rng, index):
    """Hard attention (attention_np.hard). ``index``: None samples with ``rng``; "argmax"
    takes the most likely location (used at test time); an int array (B,) replays a given
    path (the REINFORCE test enumerates every path this way)."""
    if isinstance(index, str):
        index = scores.argmax(axis=-1)                   # argmax_i e_ti = argmax_i α_ti  (B, 1)
    elif index is not None:
        index = np.asarray(index)[:, None]               # (B, 1): one query per row
    return hard_attention_forward(scores, a, rng, index=index)


def step_forward(emb, state, a, p, attention: str, rng=None, index=None):
    """One decoder step. emb (B, m) = E y_{t−1}, state (h, c) (B, H) each, a (B, L, D).

    Returns (logits (B, V), new state, α (B, L), cache).
    """
    h, c = state
    scores, sc = additive_score_forward(h[:, None], a, p["att.W_h"], p["att.W_a"], p["att.v"])
    if attention == "soft":
        z, alpha, ac = soft_attention_forward(scores, a)              # (B, 1, D), (B, 1, L)
    else:
        z, _, alpha, ac = _hard_attend(scores, a, rng, index)
    z, alpha = z[:, 0], alpha[:, 0]                                  # (B, D), (B, L)
    gate, gc = linear_forward(h, p["beta.W"], p["beta.b"])
    beta, bc = sigmoid_forward(gate)                                 # (B, 1)
    zb = beta * z                                                    # β_t z_t
    m = emb.shape[1]
    h_new, c_new, lc = lstm_cell_forward(np.concatenate([emb, zb], axis=1), h, c,
                                          sub(p, "lstm"))
    oh, ohc = linear_forward(h_new, p["L_h"])
    oz, ozc = linear_forward(zb, p["L_z"])
    out, tc = tanh_forward(emb + oh + oz)                            # (B, m)
    logits, oc = linear_forward(out, p["L_o"], p["b_o"])             # (B, V)
    cache = {"attention": attention, "sc": sc, "ac": ac, "alpha": alpha, "z": z, "beta": beta,
             "gc": gc, "bc": bc, "lc": lc, "ohc": ohc, "ozc": ozc, "tc": tc, "oc": oc, "m": m}
    return logits, (h_new, c_new), alpha, cache


def step_backward(dlogits, dstate, dalpha, cache, grads, reward=None):
    """Undo :func:`step_forward`, accumulating parameter gradients into ``grads``.

    dlogits (B, V); dstate = (dh_t, dc_t) from the next step; dalpha (B, L) the gradient of any
    loss on α_t (regulariser, entropy); reward (B,) the REINFORCE weight of hard attention.
    Returns (demb (B, m), (dh_{t−1}, dc_{t−1}), da (B, L, D)).
    """
    c_ = cache
    dout, dL_o, db_o = linear_backward(dlogits, c_["oc"])
    do = tanh_backward(dout, c_["tc"])                               # o = emb + h L_h + zb L_z
    dh_new, dL_h, _ = linear_backward(do, c_["ohc"])
    dzb, dL_z, _ = linear_backward(do, c_["ozc"])
    dx, dh, dc, lstm_grads = lstm_cell_backward(dh_new + dstate[0], dstate[1], c_["lc"])
    demb = do + dx[:, :c_["m"]]
    dzb = dzb + dx[:, c_["m"]:]
    dbeta = (dzb * c_["z"]).sum(axis=1, keepdims=True)               # zb = β z
    dz = c_["beta"] * dzb
    dh_gate, dW_beta, db_beta = linear_backward(sigmoid_backward(dbeta, c_["bc"]), c_["gc"])
    if c_["attention"] == "soft":
        dscores, da = soft_attention_backward(dz[:, None], c_["ac"], dweights=dalpha[:, None])
    else:
        dscores, da = hard_attention_backward(dz[:, None], c_["ac"], reward[:, None],
                                              dweights=dalpha[:, None])
    dq, dk, dW_h, dW_a, dv = additive_score_backward(dscores, c_["sc"])
    add_grads(grads, {"L_o": dL_o, "b_o": db_o, "L_h": dL_h, "L_z": dL_z, "beta.W": dW_beta,
                      "beta.b": db_beta, "att.W_h": dW_h, "att.W_a": dW_a, "att.v": dv})
    add_grads(grads, prefixed("lstm", lstm_grads))
    return demb, (dh + dh_gate + dq[:, 0], dc), da + dk


def decoder_forward(a, tokens, p, attention: str = "soft", rng=None, locations=None):
    """Teacher-forced decoding. a (B, L, D); tokens (B, T) the inputs y_0 … y_{T−1}
    (<start> first); locations: None, "argmax" or (B, T) ints (hard attention only).

    Returns logits (B, T, V), α (B, T, L) and a cache.
    """
    if attention not in ("soft", "hard"):
        raise ValueError(f"attention must be 'soft' or 'hard', got {attention!r}")
    emb, ec = embedding_forward(tokens, p["E"])                      # (B, T, m)
    state, ic = init_state_forward(a, p)
    logits, alphas, steps = [], [], []
    for t in range(tokens.shape[1]):
        index = locations if locations is None or isinstance(locations, str) else locations[:, t]
        lt, state, at, sc = step_forward(emb[:, t], state, a, p, attention, rng, index)
        logits.append(lt)
        alphas.append(at)
        steps.append(sc)
    cache = {"ec": ec, "ic": ic, "steps": steps, "emb_shape": emb.shape,
             "state_shape": state[0].shape, "dtype": emb.dtype}
    return np.stack(logits, axis=1), np.stack(alphas, axis=1), cache


def decoder_backward(dlogits, dalphas, cache, rewards=None):
    """dlogits (B, T, V), dalphas (B, T, L), rewards (B, T) (hard attention) →
    (da (B, L, D), grads keyed like the decoder params)."""
    grads: dict = {}
    steps = cache["steps"]
    zeros = np.zeros(cache["state_shape"], cache["dtype"])           # (B, H)
    dstate = (zeros, zeros)                                          # nothing after the last step
    demb = np.zeros(cache["emb_shape"], cache["dtype"])
    da = 0
    for t in reversed(range(len(steps))):
        reward = None if rewards is None else rewards[:, t]
        demb[:, t], dstate, da_t = step_backward(dlogits[:, t], dstate, dalphas[:, t], steps[t],
                                                 grads, reward)
        da = da + da_t
    grads["E"] = embedding_backward(demb, cache["ec"])
    da = da + init_state_backward(dstate[0], dstate[1], cache["ic"], grads)
    return da, grads
