"""What the heads of a decoder-only LM do, read from its attention weights and its parameters
(Elhage et al., 2021, "A Mathematical Framework for Transformer Circuits"; Olsson et al., 2022,
"In-context Learning and Induction Heads").

From the attention weights α (B, H, T, T) of rows that repeat with period ``period``
(``[A B C … | A B C …]``):

* previous-token score of a head: mean α[i, i−1] — the first half of an induction circuit;
* induction score: mean α[i, i − period + 1] over the second-half queries i — attention to the
  token *after* the earlier occurrence of the current token, i.e. to the one that comes next.

From the parameters (row vectors: a head reads x W_q, x W_k, x W_v and writes … W_o):

* the QK circuit of head h, W_QK = W_q^h W_k^hᵀ (d, d): the score of query x_q and key x_k is
  x_q W_QK x_kᵀ / √D;
* the OV circuit, W_OV = W_v^h W_o^h (d, d): what a head writes when it attends to x is x W_OV;
  through the embedding and unembedding, the token-to-token map is W_E W_OV W_U (V, V);
* copying score of a head (Elhage et al.): Σ_i λ_i / Σ_i |λ_i| over the eigenvalues λ of its
  W_E W_OV W_U — near 1 when attending to a token raises that same token's logit;
* K-composition of a layer-2 head h₂ with a layer-1 head h₁: how much the keys of h₂ read what
  h₁ wrote, ‖W_QK^{h₂} W_OV^{h₁}ᵀ‖_F / (‖W_QK^{h₂}‖_F ‖W_OV^{h₁}‖_F).

Our blocks are pre-LN: each reads LN(x) = γ ⊙ (x − μ)/σ + β = (x C diag(γ))/σ + β, with
C = I − 𝟙𝟙ᵀ/d the centring. The circuits fold C diag(γ) of the norm a matrix reads through into
it, and leave out β and the 1/σ of each position (a positive number that depends on the input:
it scales a circuit's output but flips no sign), as Elhage et al. fold layer norms.
"""
from __future__ import annotations

import numpy as np

from attention_np.lm.model import LMConfig, check_lm_params
from attention_np.nn.checks import check_positive_int

__all__ = ["previous_token_scores", "induction_scores", "qk_circuit", "ov_circuit",
           "copying_scores", "k_composition"]


def _weights(weights) -> list[np.ndarray]:
    out = [np.asarray(w, dtype=np.float64) for w in weights]
    for i, w in enumerate(out):
        if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
            raise ValueError(f"weights[{i}] must be (B, H, T, T), got shape {w.shape}")
    return out


def previous_token_scores(weights) -> np.ndarray:
    """Mean α[i, i−1] over the queries i ≥ 1, per layer and head: weights [(B, H, T, T)] per
    layer → (L, H)."""
    ws = _weights(weights)
    T = ws[0].shape[-1]
    i = np.arange(1, T)
    return np.array([w[:, :, i, i - 1].mean(axis=(0, 2)) for w in ws])


def induction_scores(weights, period: int) -> np.ndarray:
    """Mean α[i, i − period + 1] over the second-period queries i = period … T − 1, per layer
    and head: weights [(B, H, T, T)] of rows repeating with ``period`` → (L, H)."""
    ws = _weights(weights)
    T = ws[0].shape[-1]
    period = check_positive_int(period, "period", minimum=2)
    if period >= T:
        raise ValueError(f"period ({period}) must be shorter than the rows (T = {T}): the "
                         f"second period starts at position {period}")
    i = np.arange(period, T)
    return np.array([w[:, :, i, i - period + 1].mean(axis=(0, 2)) for w in ws])


def _head(params, cfg: LMConfig, layer: int, head: int, name: str) -> np.ndarray:
    """Head ``head``'s slice of blocks.{layer}.attn.W_{name}: columns (q, k, v) or rows (o)."""
    W = params[f"blocks.{layer}.attn.W_{name}"]
    Dh = cfg.d_model // cfg.num_heads
    cols = slice(head * Dh, (head + 1) * Dh)
    return W[cols] if name == "o" else W[:, cols]


def _check(params, cfg: LMConfig, layer: int | None = None, head: int | None = None):
    params = check_lm_params(params, cfg)
    if cfg.mlp:
        raise ValueError("circuits are exact for attention-only models: cfg.mlp must be False")
    for name, value, count in (("layer", layer, cfg.num_layers), ("head", head, cfg.num_heads)):
        if value is not None and not (isinstance(value, (int, np.integer))
                                      and 0 <= value < count):
            raise ValueError(f"{name} must be an integer in [0, {count}), got {value!r}")
    return {k: v.astype(np.float64) for k, v in params.items()}


def _norm(p, name: str) -> np.ndarray:
    """C diag(γ) (d, d) of the layer norm ``name``: centring, then the scale γ."""
    gamma = p[f"{name}.gamma"]
    centring = np.eye(len(gamma)) - 1.0 / len(gamma)
    return centring * gamma[None, :]


def qk_circuit(params, cfg: LMConfig, layer: int, head: int) -> np.ndarray:
    """W_QK = N₁ W_q^h W_k^hᵀ N₁ᵀ (d, d), N₁ = C diag(γ₁) of the layer's LN₁ folded in."""
    p = _check(params, cfg, layer, head)
    n = _norm(p, f"blocks.{layer}.ln1")
    return (n @ _head(p, cfg, layer, head, "q")) @ (n @ _head(p, cfg, layer, head, "k")).T


def _ov(p, cfg, layer, head):
    n = _norm(p, f"blocks.{layer}.ln1")
    return n @ _head(p, cfg, layer, head, "v") @ _head(p, cfg, layer, head, "o")   # (d, d)


def ov_circuit(params, cfg: LMConfig, layer: int, head: int, full: bool = True) -> np.ndarray:
    """W_OV = N₁ W_v^h W_o^h (d, d), N₁ = C diag(γ₁); with ``full`` the token-to-token map
    W_E W_OV N_f W_U (V, V), N_f = C diag(γ_f) of the final norm (W_U = W_Eᵀ when tied)."""
    p = _check(params, cfg, layer, head)
    ov = _ov(p, cfg, layer, head)
    if not full:
        return ov
    E = p["tok_emb.W"]                                                  # (V, d)
    U = E.T if cfg.tied else p["head.W"]                                # (d, V)
    return E @ ov @ _norm(p, "ln_f") @ U


def copying_scores(params, cfg: LMConfig) -> np.ndarray:
    """Σ λ / Σ |λ| over the eigenvalues of every head's W_E W_OV W_U → (L, H), in [−1, 1]."""
    _check(params, cfg)
    scores = np.zeros((cfg.num_layers, cfg.num_heads))
    for layer in range(cfg.num_layers):
        for head in range(cfg.num_heads):
            lam = np.linalg.eigvals(ov_circuit(params, cfg, layer, head))
            total = np.sum(np.abs(lam))                     # 0: the head writes nothing
            scores[layer, head] = float(np.sum(lam).real / total) if total > 0 else 0.0
    return scores


def k_composition(params, cfg: LMConfig, layer: int = 1) -> np.ndarray:
    """‖W_QK^{h₂} W_OV^{h₁}ᵀ‖_F / (‖W_QK^{h₂}‖_F ‖W_OV^{h₁}‖_F) for every head h₂ of ``layer``
    and h₁ of ``layer − 1`` → (H, H), rows h₂, columns h₁; 0 where either matrix is zero."""
    p = _check(params, cfg)
    layer = check_positive_int(layer, "layer")
    if layer >= cfg.num_layers:
        raise ValueError(f"layer must lie in [1, {cfg.num_layers}), got {layer}")
    H = cfg.num_heads
    out = np.zeros((H, H))
    for h2 in range(H):
        qk = qk_circuit(p, cfg, layer, h2)
        for h1 in range(H):
            ov = _ov(p, cfg, layer - 1, h1)
            scale = np.linalg.norm(qk) * np.linalg.norm(ov)  # 0: a head reads or writes nothing
            out[h2, h1] = np.linalg.norm(qk @ ov.T) / scale if scale > 0 else 0.0
    return out
