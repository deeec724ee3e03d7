"""A decoder-only (GPT) language model: the package's one encoder block, made causal, stacked.

    x_t = E[w_t] + P[t]                                     (B, T, d)   learned positions P
    h = Block_L(… Block_1(x))                               pre-LN, causal: t sees s ≤ t
    logits = LN_f(h) U,   U = Eᵀ (tied) or W_U (d, V)       (B, T, V)
    p(w_{t+1} | w_≤t) = softmax(logits_t)

Each block is :func:`attention_np.transformer.encoder_block_forward` with ``causal=True`` and
``norm_first=True`` (GPT-2's layout, one LayerNorm after the last block); ``mlp=False`` gives
the attention-only models of Olsson et al. (2022), h ← h + MultiHead(LN₁ h). The blocks and LN_f
are :func:`attention_np.transformer.encoder_forward`'s pre-LN stack. Parameters live in one flat
dict: ``"tok_emb.W"`` (V, d), ``"pos_emb.W"`` (max_len, d), ``"blocks.{l}.attn.W_q"`` … (a
block's names under ``blocks.{l}``), ``"ln_f.gamma"``, ``"ln_f.beta"`` and, untied,
``"head.W"``. No bias on the unembedding (as GPT-2) and no dropout.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from attention_np.core import linear_backward, linear_core
from attention_np.nn.backend import check_backend
from attention_np.nn.checks import as_dout, check_params, check_positive_int, check_rng
from attention_np.nn.init import normal, xavier_uniform, zeros
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.transformer import (EncoderConfig, check_activation, encoder_backward,
                                      encoder_forward, init_encoder)

# Token and position embeddings ~ N(0, 0.02²), GPT-2's initialisation (Radford et al., 2019).
EMBED_STD = 0.02


@dataclass(frozen=True)
class LMConfig:
    """Shape of a decoder-only LM (nanoGPT's GPTConfig): vocabulary, context, width, depth."""
    vocab_size: int = 64
    max_len: int = 128            # positions with a learned embedding: the longest context
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    mlp: bool = True              # False: attention-only blocks
    tied: bool = True             # True: logits = LN_f(h) Eᵀ; False: a separate W_U
    activation: str = "gelu"
    eps: float = 1e-5
    backend: str = "numpy"        # "numba": the attention runs on the flash kernels

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "d_model", "num_heads", "num_layers", "d_ff"):
            check_positive_int(getattr(self, name), name)
        if self.d_model % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide d_model ({self.d_model})")
        check_activation(self.activation, "activation")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps}")
        check_backend(self.backend)

    def block(self) -> EncoderConfig:
        """The configuration every block runs with: pre-LN and causal."""
        return EncoderConfig(d_model=self.d_model, num_heads=self.num_heads, d_ff=self.d_ff,
                             num_layers=self.num_layers, activation=self.activation,
                             norm_first=True, eps=self.eps, causal=True, mlp=self.mlp)


def init_lm(cfg: LMConfig, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Embeddings ~ N(0, EMBED_STD²), blocks as :func:`init_encoder_block` (Xavier, zero biases,
    γ = 1), the final norm and, untied, W_U Xavier-uniform (draws in this order)."""
    if not isinstance(cfg, LMConfig):
        raise ValueError(f"cfg must be an LMConfig, got {type(cfg).__name__}")
    check_rng(rng)
    d = cfg.d_model
    p = {"tok_emb.W": normal((cfg.vocab_size, d), rng, EMBED_STD, dtype),
         "pos_emb.W": normal((cfg.max_len, d), rng, EMBED_STD, dtype)}
    p.update(init_encoder(cfg.block(), rng, dtype))          # blocks.{l}.*, ln_f.gamma, ln_f.beta
    if not cfg.tied:
        p["head.W"] = xavier_uniform((d, cfg.vocab_size), rng, dtype)
    return p


# --- checks ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _param_shapes(cfg: LMConfig) -> dict:
    """{name: shape} of the parameters :func:`init_lm` makes for ``cfg``."""
    return {k: v.shape for k, v in init_lm(cfg, np.random.default_rng(0), np.float32).items()}


def check_lm_params(params, cfg: LMConfig) -> dict:
    """Every parameter ``cfg`` needs, as a float array of the right shape, or ValueError."""
    if not isinstance(cfg, LMConfig):
        raise ValueError(f"cfg must be an LMConfig, got {type(cfg).__name__}")
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of arrays (make it with init_lm), "
                         f"got {type(params).__name__}")
    return check_params(params, _param_shapes(cfg))


def check_ids(ids, cfg: LMConfig, name: str = "ids", start: int = 0) -> np.ndarray:
    """Token ids (B, T) in [0, V) whose positions start … start + T − 1 are below max_len."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 2:
        raise ValueError(f"{name} must be a 2-D integer array (B, T), got dtype {ids.dtype} "
                         f"shape {ids.shape}")
    if ids.shape[0] < 1 or ids.shape[1] < 1:
        raise ValueError(f"{name} must hold at least one token per row, got shape {ids.shape}")
    if start + ids.shape[1] > cfg.max_len:
        raise ValueError(f"{name} with shape {ids.shape} reaches position {start + ids.shape[1]}"
                         f" > max_len {cfg.max_len}")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        raise ValueError(f"{name} must lie in [0, vocab_size={cfg.vocab_size}), got ids in "
                         f"[{ids.min()}, {ids.max()}] (shape {ids.shape})")
    return ids


# --- the model -------------------------------------------------------------------------------

def embed_core(ids, p, start: int = 0):
    """x = E[ids] + P[start : start + T] on checked ids → (x (B, T, d), the embedding's cache)."""
    e, c_tok = embedding_forward(ids, p["tok_emb.W"])                   # (B, T, d)
    return e + p["pos_emb.W"][start:start + ids.shape[1]], c_tok


def unembed_core(z, p, cfg: LMConfig):
    """logits = z U,  U = Eᵀ (tied) or W_U, for z = LN_f(h) → (logits (B, T, V), cache)."""
    U = p["tok_emb.W"].T if cfg.tied else p["head.W"]                   # (d, V)
    return linear_core(z, U, None)                                      # (B, T, V)


def lm_forward(ids, params, cfg: LMConfig, return_weights: bool = False):
    """logits = LN_f(Block_L(… Block_1(E[ids] + P[:T]))) U   (module docstring).

    ids (B, T) int in [0, vocab_size), T ≤ max_len; params from :func:`init_lm`
    → logits (B, T, V), cache; with ``return_weights`` (logits, weights, cache), weights the
    attention of every layer [(B, H, T, T)] (None entries for backend "numba").
    """
    params = check_lm_params(params, cfg)
    logits, weights, cache = lm_core(check_ids(ids, cfg), params, cfg)
    return (logits, weights, cache) if return_weights else (logits, cache)


def lm_core(ids, p, cfg: LMConfig):
    """:func:`lm_forward` on checked input → (logits, weights, cache)."""
    x, c_tok = embed_core(ids, p)                                       # (B, T, d)
    z, weights, c_enc = encoder_forward(x, p, cfg.block(), backend=cfg.backend)  # LN_f(blocks(x))
    logits, c_head = unembed_core(z, p, cfg)                            # (B, T, V)
    cache = {"tok": c_tok, "encoder": c_enc, "head": c_head, "tied": cfg.tied,
             "pos_shape": p["pos_emb.W"].shape, "logits_shape": logits.shape}
    return logits, weights, cache


def lm_backward(dlogits, cache) -> dict:
    """Walks the model back → grads keyed like params. Tied: dE collects both uses of E,
    dE = Σ_{t: w_t = v} dx_t (embedding) + (dU)ᵀ (unembedding). dP[t] = Σ_b dx_{b,t}."""
    dlogits = as_dout(dlogits, cache["logits_shape"], name="dlogits")
    dz, dU, _ = linear_backward(dlogits, cache["head"])                 # logits = z U
    dx, grads = encoder_backward(dz, cache["encoder"])                  # z = LN_f(blocks(x))
    dP = zeros(cache["pos_shape"], dx.dtype)                            # x = E[ids] + P[:T]
    dP[:dx.shape[1]] = dx.sum(axis=0)
    grads["pos_emb.W"] = dP
    grads["tok_emb.W"] = embedding_backward(dx, cache["tok"])
    if cache["tied"]:
        grads["tok_emb.W"] = grads["tok_emb.W"] + dU.T                 # U = Eᵀ
    else:
        grads["head.W"] = dU
    return grads


def lm_loss_and_grads(ids, params, cfg: LMConfig):
    """Next-token cross-entropy L = mean_{b,t} −log p(w_{t+1} | w_≤t) on ids (B, T), T ≥ 2
    → (L as a float, grads keyed like params)."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise ValueError(f"ids must be (B, T) with T ≥ 2 (inputs and next tokens), "
                         f"got shape {ids.shape}")
    check_ids(ids[:, 1:], cfg)                                          # the targets
    logits, cache = lm_forward(ids[:, :-1], params, cfg)                # (B, T − 1, V)
    loss, c_ce = cross_entropy_forward(logits, ids[:, 1:])
    return float(loss), lm_backward(cross_entropy_backward(1.0, c_ce), cache)
