"""Softmax cross-entropy over the last axis, with ignored targets and label smoothing.

Matches ``torch.nn.functional.cross_entropy(..., reduction="mean")`` except that the class axis
is the *last* one (logits (..., C), as a language model produces them) and that a batch whose
targets are all ignored gives loss 0 and zero gradient instead of NaN.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array, compute_dtype


def _log_softmax(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p, p) along the last axis, stably: log p = z − m − log Σ exp(z − m),  m = max z."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=-1, keepdims=True)                              # ≥ 1, never 0
    return z - np.log(s), e / s


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log p = z − max z − log Σ exp(z − max z) along the last axis (used by beam search)."""
    return _log_softmax(z)[0]


def _check_targets(targets, logits: np.ndarray, ignore_index: int) -> np.ndarray:
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be an integer array, got dtype {targets.dtype} "
                         f"shape {targets.shape}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets must have shape logits.shape[:-1] = {logits.shape[:-1]}, "
                         f"got targets{targets.shape} for logits{logits.shape}")
    C = logits.shape[-1]
    bad = (targets != ignore_index) & ((targets < 0) | (targets >= C))
    if np.any(bad):
        raise ValueError(f"targets must lie in [0, C={C}) or equal ignore_index={ignore_index}; "
                         f"got {targets[bad][:5].tolist()} (targets shape {targets.shape})")
    return targets


def cross_entropy_forward(logits, targets, ignore_index: int = -100,
                          label_smoothing: float = 0.0):
    """Mean softmax cross-entropy over the targets that are not ``ignore_index``.

        log p_c = z_c − log Σ_k exp z_k                       (stable: shift z by its max)
        q = (1 − ε) onehot(t) + ε / C                         (ε = label_smoothing)
        L = (1 / N_valid) Σ_{n: t_n ≠ ignore} −Σ_c q_{n,c} log p_{n,c}

    logits (..., C) float, targets (...) int → loss, a scalar of logits' dtype.
    If no target is valid, L = 0.
    """
    logits = as_float_array(logits, "logits", min_ndim=1)
    targets = _check_targets(targets, logits, ignore_index)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    C = logits.shape[-1]
    z = logits.reshape(-1, C).astype(compute_dtype(logits.dtype), copy=False)   # (N, C)
    t = targets.reshape(-1)                                        # (N,)
    valid = t != ignore_index                                      # (N,)
    n_valid = int(valid.sum())
    logp, p = _log_softmax(z)                                      # (N, C) each
    q = np.zeros_like(z)                                           # smoothed one-hot targets
    q[valid] = label_smoothing / C
    q[np.flatnonzero(valid), t[valid]] += 1.0 - label_smoothing
    loss = -np.where(q > 0, q * logp, 0).sum() / max(n_valid, 1)   # 0·log 0 counts as 0
    cache = {"p": p, "q": q, "valid": valid, "n_valid": n_valid, "shape": logits.shape,
             "dtype": logits.dtype}
    return logits.dtype.type(loss), cache


def cross_entropy_backward(dloss, cache):
    """dL/dz_{n,c} = dloss · (p_{n,c} − q_{n,c}) / N_valid for valid rows, 0 for ignored ones.

    dloss: the upstream gradient of the scalar loss (1.0 when the loss ends the graph), first
    like every backward's. Returns dlogits (..., C) in logits' dtype.
    """
    dloss = np.asarray(dloss)
    if dloss.shape != ():
        raise ValueError(f"dloss must be a scalar, got shape {dloss.shape}")
    p, q, valid = cache["p"], cache["q"], cache["valid"]
    # forward: L = −Σ q log softmax(z) / N_valid  →  dz = (softmax(z) − q) / N_valid (Σ_c q = 1)
    dz = np.where(valid[:, None], p - q, 0) * (dloss / max(cache["n_valid"], 1))
    return dz.reshape(cache["shape"]).astype(cache["dtype"], copy=False)
