"""Show, Attend and Tell end to end: encoder + attention decoder, its training loss, captioning.

Soft attention minimises  L = −(1/N) Σ_{b,t} log p(y_bt) + λ (1/B) Σ_b Σ_i (1 − Σ_t α_bti)²
(N = number of real target tokens; the second term is the doubly stochastic regulariser,
eq. 14: every location should receive about one unit of attention over the caption).

Hard attention samples s_t ~ Cat(α_t) and follows Xu et al. §4.1: with R_b = log p(y_b | s_b, a)
the log-likelihood of the caption under the sampled path,

    ∂L/∂W ≈ (1/N) Σ_b [ −∂R_b/∂W − λ_r Σ_t r_bt ∂ log p(s_bt)/∂W − λ_e ∂H[s_b]/∂W ],
    r_bt = Σ_{u ≥ t} (log p(y_bu) − b)

with a moving-average baseline per word b ← 0.9 b + 0.1 (mean log-likelihood per word) and an
entropy bonus H = Σ_t H(α_t). (Xu et al. weight every step by the whole caption's R_b − b; the
reward-to-go drops the terms that cannot depend on s_t, which our strips of 2–5 digits need:
otherwise the caption's length, not the location, dominates the reward.)
Like Xu et al., half of the batches (``soft_mix``) use the expected context instead of a sample;
at test time the hard model looks at the most likely location, argmax_i α_ti.
Since E_s[∂ log p(s)/∂W] = 0, subtracting b leaves the estimator unbiased for λ_e = 0
(tests/test_captioning.py checks that by enumerating every path of a small case).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from attention_np.apps.captioning.decoder import (decoder_backward, decoder_forward,
                                             init_decoder_params, init_state_forward,
                                             step_forward)
from attention_np.apps.captioning.encoder import (default_pools, encoder_backward, encoder_forward,
                                             grid_shape, init_encoder_params)
from attention_np.decoding import beam_search
from attention_np.nn.backend import check_backend
from attention_np.nn.layers import embedding_forward
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward, log_softmax


@dataclass
class CaptionConfig:
    """One Show-Attend-Tell model. Token ids: ``pad``, ``start``, ``end`` (see demos._digits_data)."""
    attention: str = "soft"              # "soft" or "hard"
    vocab: int = 13
    image_shape: tuple = (16, 64)
    channels: tuple = (16, 32, 64)       # one conv block per entry; D = channels[-1]
    pools: tuple | None = None           # (ph, pw) max-pool per block; None: 2×2 each
    embed: int = 32
    hidden: int = 96
    attn: int = 64
    ds_lambda: float = 0.01              # doubly stochastic regulariser λ
    reinforce: float = 1.0               # λ_r (hard)
    entropy: float = 0.01                # λ_e (hard)
    baseline_decay: float = 0.9          # b ← decay · b + (1 − decay) · mean R (hard)
    soft_mix: float = 0.5                # hard: share of batches trained with z = E[a_s] (§4.1)
    pad: int = 0
    start: int = 1
    end: int = 2
    backend: str = "numpy"               # "numba": the encoder's copies on Numba kernels (same
                                         # numbers, attention_np.nn.conv)

    def __post_init__(self):
        check_backend(self.backend)

    @property
    def grid(self) -> tuple[int, int]:
        return grid_shape(self.image_shape, self.block_pools)

    @property
    def block_pools(self) -> tuple:
        return self.pools or default_pools(len(self.channels))


def init_params(cfg: CaptionConfig, rng, dtype=np.float64) -> dict:
    """Encoder and decoder parameters in one flat dict (what the optimisers take)."""
    params = init_encoder_params(cfg.image_shape, cfg.channels, rng, dtype, cfg.block_pools)
    params.update(init_decoder_params(cfg.vocab, cfg.channels[-1], cfg.embed, cfg.hidden,
                                      cfg.attn, rng, dtype))
    return params


def _targets(captions, cfg):
    inputs, targets = captions[:, :-1], captions[:, 1:]               # (B, T) each
    valid = targets != cfg.pad
    return inputs, np.where(valid, targets, -100), valid


def _reward_to_go(logp, valid, baseline: float):
    """REINFORCE weight of the location sampled at step t: the log-likelihood of the words
    from t on, minus the baseline b per word,

        r_bt = Σ_{u ≥ t} (log p(y_bu) − b)     (0 at padded steps).

    Words before t cannot depend on s_t and a baseline that does not depend on s leaves the
    expectation unchanged, so this is the same estimator as (R_b − b) ∇log p(s_b) with less
    variance: it ignores the caption's length and the words already said."""
    per_word = (logp - baseline) * valid                             # (B, T)
    return np.cumsum(per_word[:, ::-1], axis=1)[:, ::-1] * valid


def caption_loss(a, captions, params, cfg: CaptionConfig, rng=None, baseline: float = 0.0,
                 locations=None):
    """Loss and gradients given annotations a (B, L, D) and captions (B, T + 1).

    Returns (stats dict, da (B, L, D), decoder grads). ``stats["reward"]`` (hard attention) is
    the mean log-likelihood per word, for the caller's moving-average baseline.
    """
    inputs, targets, valid = _targets(captions, cfg)
    B, N = len(captions), max(int(valid.sum()), 1)
    logits, alphas, dec_cache = decoder_forward(a, inputs, params, cfg.attention, rng, locations)
    ce, ce_cache = cross_entropy_forward(logits, targets)
    dlogits = cross_entropy_backward(1.0, ce_cache)
    cover = (alphas * valid[..., None]).sum(axis=1)                  # Σ_t α_ti  (B, L)
    reg = cfg.ds_lambda * ((1 - cover) ** 2).sum(axis=1).mean()
    dalphas = (-2 * cfg.ds_lambda / B) * (1 - cover)[:, None, :] * valid[..., None]
    stats = {"loss": float(ce + reg), "ce": float(ce), "reg": float(reg)}
    rewards = None
    if cfg.attention == "hard":
        logp = np.take_along_axis(log_softmax(logits),
                                  np.where(valid, targets, 0)[..., None], axis=-1)[..., 0]
        R = (logp * valid).sum(axis=1)                               # log p(y_b | s_b)  (B,)
        rewards = cfg.reinforce * _reward_to_go(logp, valid, baseline) / N   # (B, T)
        log_alpha = np.log(np.maximum(alphas, 1e-30))
        entropy = -(alphas * log_alpha).sum(axis=-1)                 # H(α_bt)  (B, T)
        dalphas = dalphas + (cfg.entropy / N) * (log_alpha + 1) * valid[..., None]
        stats.update(reward=float(R.sum() / N), entropy=float((entropy * valid).sum() / N))
    da, grads = decoder_backward(dlogits, dalphas, dec_cache, rewards)
    return stats, da, grads


def loss_and_grads(params, cfg: CaptionConfig, images, captions, rng=None,
                   baseline: float = 0.0):
    """images (B, H, W), captions (B, T + 1) → (stats, grads for every parameter).

    Hard attention: as Xu et al. do, a ``cfg.soft_mix`` share of the batches uses the expected
    context instead of a sample (``stats`` then has no "reward": leave the baseline alone).
    """
    if cfg.attention == "hard" and cfg.soft_mix > 0 and rng.random() < cfg.soft_mix:
        cfg = replace(cfg, attention="soft")
    a, enc_cache = encoder_forward(images, params, cfg.block_pools, cfg.backend)
    stats, da, grads = caption_loss(a, captions, params, cfg, rng, baseline)
    grads.update(encoder_backward(da, enc_cache))
    return stats, grads


def update_baseline(baseline: float | None, stats: dict, cfg: CaptionConfig) -> float:
    """b ← decay · b + (1 − decay) · (log-likelihood per word)  (the first batch sets b)."""
    if "reward" not in stats:
        return baseline
    if baseline is None:
        return stats["reward"]
    return cfg.baseline_decay * baseline + (1 - cfg.baseline_decay) * stats["reward"]


def _step_fn(params, cfg: CaptionConfig):
    """The decoding step (tokens (N,), state (h, c), context (a,)) → (log p (N, V), new state,
    α (N, L)); hard attention looks at the most likely location at test time."""
    index = "argmax" if cfg.attention == "hard" else None

    def step(tokens, state, context):
        emb, _ = embedding_forward(tokens, params["E"])
        logits, new_state, alpha, _ = step_forward(emb, state, context[0], params,
                                                   cfg.attention, None, index)
        return log_softmax(logits), new_state, alpha
    return step


def generate(params, cfg: CaptionConfig, images, beam_size: int = 3, max_len: int = 7):
    """Caption images (B, H, W) by beam search (attention_np.decoding) → (tokens (B, max_len),
    α (B, max_len, L), log-prob (B,))."""
    a, _ = encoder_forward(images, params, cfg.block_pools, cfg.backend)
    state, _ = init_state_forward(a, params)
    return beam_search(_step_fn(params, cfg), state, (a,), cfg.start, cfg.end, beam_size,
                       max_len, cfg.pad)
