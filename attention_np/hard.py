"""Hard (stochastic) attention (article §3.2; Xu et al. 2015): look at ONE position.

    α = softmax(e),   j* ~ Categorical(α),   c_i = h_{j*}

Sampling is not differentiable, so the scores are trained with REINFORCE (the score-function
estimator). For a reward r(j*) the objective is J = E_{j~α}[r(j)] and

    ∇_e J = E_{j~α}[ r(j) ∇_e log α_j ],    ∇_e log α_j = onehot(j) − α.

We *minimise* a loss, so the gradient returned is that of −r · log α_{j*}:
    de = −r (onehot(j*) − α).
The values still get an ordinary gradient along the sampled path: dh_{j*} += dc.
"""
from __future__ import annotations

import math

import numpy as np

from attention_np.core import softmax_backward, softmax_core
from attention_np.nn.checks import as_dout, as_float_array, check_rng
from attention_np.soft import check_scores_values


def _sample_rows(weights2d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row drawn from that row's distribution (−1 for an all-zero or empty row,
    and for a row holding NaN: there is nothing to sample from)."""
    if weights2d.shape[1] == 0:                                          # no key at all
        return np.full(weights2d.shape[0], -1)
    cdf = np.cumsum(weights2d, axis=1)                                   # (N, Tk)
    total = np.where(np.isnan(cdf[:, -1:]), 0, cdf[:, -1:])             # a NaN row: no sample
    u = rng.random((weights2d.shape[0], 1)) * total
    index = np.minimum((cdf <= u).sum(axis=1), weights2d.shape[1] - 1)   # first cdf > u
    # A zero-weight position can only be hit through rounding: step to the nearest positive one.
    bad = weights2d[np.arange(len(index)), index] <= 0
    for row in np.flatnonzero(bad & (total[:, 0] > 0)):
        index[row] = np.flatnonzero(weights2d[row] > 0)[-1]
    index[total[:, 0] <= 0] = -1
    return index


def _check_index(index, weights: np.ndarray) -> np.ndarray:
    """A given sample path: ints of shape (..., Tq), each −1 (no key) or a key with α > 0."""
    index = np.asarray(index)
    if index.shape != weights.shape[:-1] or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"index must be an integer array of shape {weights.shape[:-1]}, got "
                         f"shape {index.shape} dtype {index.dtype}")
    if np.any(index < -1) or np.any(index >= weights.shape[-1]):
        raise ValueError(f"index entries must lie in [-1, Tk={weights.shape[-1]}), got "
                         f"{index.min()}..{index.max()}")
    return index


def hard_attention_forward(scores, values, rng, mask=None, index=None):
    """Sample one key per query from α = softmax(e) and return its value.

    scores (..., Tq, Tk), values (..., Tk, Dv), rng a ``numpy.random.Generator``,
    mask broadcastable to scores (True = may attend); ``index`` (..., Tq), optional: replay
    this path instead of sampling (e.g. to recompute a step, or to take the argmax at test time)
    → context (..., Tq, Dv), index (..., Tq) int (−1 for a fully masked query, whose context is 0,
      and for a query whose α holds a NaN, whose context is NaN), weights α (..., Tq, Tk), cache.
    """
    if index is None:
        check_rng(rng, "when no index is given (hard attention samples)")
    scores, values, mask = check_scores_values(scores, values, mask)
    weights, softmax_cache = softmax_core(scores, -1, mask)                    # α (..., Tq, Tk)
    lead, (Tq, Tk) = weights.shape[:-2], weights.shape[-2:]
    if index is None:
        flat = weights.reshape(math.prod(weights.shape[:-1]), Tk).astype(np.float64)   # (N, Tk)
        index = _sample_rows(flat, rng).reshape(*lead, Tq)                   # (..., Tq)
    else:
        index = _check_index(index, weights)
    onehot = (index[..., None] == np.arange(Tk)).astype(values.dtype)       # (..., Tq, Tk)
    context = onehot @ values                                               # (..., Tq, Dv)
    context[np.isnan(weights).any(axis=-1)] = np.nan                        # NaN α: NaN c
    cache = {"weights": weights, "onehot": onehot, "Dv": values.shape[-1],
             "softmax": softmax_cache}
    return context, index, weights, cache


def hard_attention_backward(dcontext, cache, reward, dweights=None):
    """REINFORCE for the scores, the sampled path for the values.

    de = −r ⊙ (onehot(j*) − α)   (gradient of −r · log α_{j*}),   dh = onehotᵀ dc.
    ``reward`` is a scalar or broadcastable to (..., Tq) — typically (reward − baseline).
    ``dweights`` (same shape as α), optional: the exact gradient of a loss placed on α itself
    (e.g. Show, Attend and Tell's doubly-stochastic regulariser), added through the softmax.
    Fully masked queries (index −1) get zero gradients.  Returns (dscores, dvalues).
    """
    weights, onehot = cache["weights"], cache["onehot"]
    dcontext = as_dout(dcontext, weights.shape[:-1] + (cache["Dv"],), name="dcontext")
    reward = as_float_array(reward, "reward")
    try:
        r = np.broadcast_to(reward, weights.shape[:-1])[..., None]         # (..., Tq, 1)
    except ValueError:
        raise ValueError(f"reward with shape {reward.shape} is not broadcastable to "
                         f"{weights.shape[:-1]} (one reward per query)") from None
    sampled = onehot.sum(axis=-1, keepdims=True)                            # 0 for masked rows
    dscores = (-r * (onehot - weights * sampled)).astype(weights.dtype)
    if dweights is not None:                                    # a loss on α: through the softmax
        dweights = as_dout(dweights, weights.shape, name="dweights")
        dscores = dscores + softmax_backward(dweights, cache["softmax"])
    dvalues = np.swapaxes(onehot, -1, -2) @ dcontext                        # (..., Tk, Dv)
    return dscores, dvalues
