"""Click-through prediction with a Deep Interest Network (Zhou et al., 2018; article §6.4), and
the same model with the history mean-pooled instead, to show what the attention adds.

An item is described by two ids, its own and its category's (the paper's goods_id and
cate_id); its embedding concatenates one row of each table:

    e(i) = [E_item[item_i] ; E_cat[cat_i]]                            (D = d_item + d_cat)
    v_U = Σ_j a_j e(h_j)          a = DIN attention(e(h), e_a)  or  a_j = 1 / (number of real h_j)
    x = [v_U ; e_a ; v_U ⊙ e_a]                                       (B, 3D)
    z = ReLU(x W₁ + b₁) W₂ + b₂                                       (B,)   the click logit
    L = mean_n [log(1 + e^{z_n}) − y_n z_n]                          binary cross-entropy

Inputs: ``history`` (B, T, 2) int [item id, category id] per past behaviour, ``mask`` (B, T)
bool (True = real behaviour), ``candidate`` (B, 2) int, ``labels`` (B,) 0/1.
Parameters live in one flat dict (:mod:`attention_np.nn.params`): ``item_emb``, ``cat_emb``,
``mlp.W1`` … and, for DIN, ``att.W1`` … (:func:`attention_np.din.init_din_params`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.core import linear_backward, linear_forward
from attention_np.din import din_attention_backward, din_attention_forward, init_din_params
from attention_np.nn.activations import relu_backward, relu_forward, stable_sigmoid
from attention_np.nn.checks import check_shape
from attention_np.nn.init import normal, xavier_uniform, zeros
from attention_np.nn.layers import (embedding_backward, embedding_forward,
                                    masked_mean_backward, masked_mean_forward)
from attention_np.nn.params import add_grads, prefixed, sub


@dataclass(frozen=True)
class RecConfig:
    """Table sizes, the pooling ("din" or "mean") and the layer widths."""
    n_items: int
    n_categories: int
    pooling: str = "din"
    normalize: str = "softmax"      # DIN's weights: "softmax" or "none" (the paper's choice)
    d_item: int = 4                 # item-id embedding width
    d_cat: int = 12                 # category embedding width
    d_att: int = 32                 # hidden units of DIN's activation unit
    d_mlp: int = 64

    def __post_init__(self):
        if self.pooling not in ("din", "mean"):
            raise ValueError(f"pooling must be 'din' or 'mean', got {self.pooling!r}")


def init_recommender(config: RecConfig, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Embeddings ~ N(0, 0.1²) (small, so the first logits sit near 0 whatever the history),
    MLP weights Xavier, biases 0, DIN's activation unit as in :func:`init_din_params`."""
    D = config.d_item + config.d_cat
    params = {"item_emb": normal((config.n_items, config.d_item), rng, 0.1, dtype),
              "cat_emb": normal((config.n_categories, config.d_cat), rng, 0.1, dtype),
              "mlp.W1": xavier_uniform((3 * D, config.d_mlp), rng, dtype),
              "mlp.b1": zeros(config.d_mlp, dtype),
              "mlp.W2": xavier_uniform((config.d_mlp, 1), rng, dtype), "mlp.b2": zeros(1, dtype)}
    if config.pooling == "din":
        params.update(prefixed("att", init_din_params(D, config.d_att, rng, dtype)))
    return params


def item_embedding_forward(ids, params):
    """e = [E_item[ids[..., 0]] ; E_cat[ids[..., 1]]].   ids (..., 2) int → e (..., D)."""
    e_item, c_item = embedding_forward(ids[..., 0], params["item_emb"])
    e_cat, c_cat = embedding_forward(ids[..., 1], params["cat_emb"])
    return np.concatenate([e_item, e_cat], axis=-1), {"item": c_item, "cat": c_cat,
                                                      "d_item": e_item.shape[-1]}


def item_embedding_backward(de, cache) -> dict:
    """Scatter the two halves of de (..., D) back into their tables."""
    d = cache["d_item"]
    return {"item_emb": embedding_backward(de[..., :d], cache["item"]),
            "cat_emb": embedding_backward(de[..., d:], cache["cat"])}


def recommender_forward(history, mask, candidate, params: dict, config: RecConfig):
    """The click logits z (B,) and the pooling weights a (B, T) (None for mean pooling).

    Returns ``(logits, weights, cache)``; see the module docstring for the formula and shapes.
    """
    check_shape(np.asarray(history), "history", (None, None, 2))
    check_shape(np.asarray(candidate), "candidate", (np.shape(history)[0], 2))
    e_h, c_h = item_embedding_forward(history, params)                 # (B, T, D)
    e_a, c_a = item_embedding_forward(candidate, params)               # (B, D)
    if config.pooling == "din":
        v, weights, c_pool = din_attention_forward(e_h, e_a, sub(params, "att"), mask,
                                                   config.normalize)   # (B, D), (B, T)
    else:
        v, c_pool = masked_mean_forward(e_h, mask)                     # (B, D)
        weights = None
    x = np.concatenate([v, e_a, v * e_a], axis=-1)                     # (B, 3D)
    a1, c1 = linear_forward(x, params["mlp.W1"], params["mlp.b1"])     # (B, d_mlp)
    r1, c_relu = relu_forward(a1)
    z, c2 = linear_forward(r1, params["mlp.W2"], params["mlp.b2"])     # (B, 1)
    cache = {"pooling": config.pooling, "h": c_h, "a": c_a, "pool": c_pool, "v": v, "e_a": e_a,
             "mlp1": c1, "relu": c_relu, "mlp2": c2}
    return z[:, 0], weights, cache


def recommender_backward(dlogits, cache) -> dict:
    """Undo :func:`recommender_forward`: dlogits (B,) → gradients keyed like the params."""
    grads = {}
    dr1, grads["mlp.W2"], grads["mlp.b2"] = linear_backward(dlogits[:, None], cache["mlp2"])
    da1 = relu_backward(dr1, cache["relu"])
    dx, grads["mlp.W1"], grads["mlp.b1"] = linear_backward(da1, cache["mlp1"])
    dv, de_a, dprod = np.split(dx, 3, axis=-1)                         # x = [v; e_a; v ⊙ e_a]
    dv, de_a = dv + dprod * cache["e_a"], de_a + dprod * cache["v"]
    if cache["pooling"] == "din":
        de_h, de_a_att, g_att = din_attention_backward(dv, cache["pool"])
        de_a = de_a + de_a_att                          # the candidate also steers the attention
        grads.update(prefixed("att", g_att))
    else:
        de_h = masked_mean_backward(dv, cache["pool"])
    add_grads(grads, item_embedding_backward(de_h, cache["h"]))
    return add_grads(grads, item_embedding_backward(de_a, cache["a"]))


def logistic_loss_forward(logits, labels):
    """L = mean_n [softplus(z_n) − y_n z_n]   (binary cross-entropy on logits; stable for any z).

    logits (N,), labels (N,) 0/1 → (L, cache).
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    check_shape(labels, "labels", logits.shape)
    loss = np.mean(np.logaddexp(0.0, logits) - labels * logits)
    return float(loss), {"z": logits, "y": labels}


def logistic_loss_backward(dloss, cache):
    """dL/dz_n = dloss · (σ(z_n) − y_n) / N."""
    z = cache["z"]
    return dloss * (stable_sigmoid(z) - cache["y"]) / len(z)


def loss_and_grads(params: dict, config: RecConfig, history, mask, candidate, labels, rng=None):
    """One training step's loss and gradients (for every parameter) on a batch.

    ``rng`` is unused (the model has no dropout); it keeps the signature every app shares.
    """
    logits, _, cache = recommender_forward(history, mask, candidate, params, config)
    loss, loss_cache = logistic_loss_forward(logits, labels)
    return loss, recommender_backward(logistic_loss_backward(1.0, loss_cache), cache)


def predict(params: dict, config: RecConfig, history, mask, candidate,
            batch: int = 1024) -> np.ndarray:
    """Click logits (B,) computed ``batch`` rows at a time."""
    return np.concatenate([
        recommender_forward(history[i:i + batch], mask[i:i + batch], candidate[i:i + batch],
                            params, config)[0] for i in range(0, len(history), batch)])
