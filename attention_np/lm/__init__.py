"""A decoder-only language model (GPT) on the package's causal encoder block, and generation
with a KV cache (article §2.2.3's decoder-only Transformer; Olsson et al., 2022's induction heads
in ``demos/induction_heads.py``).

    cfg = LMConfig(vocab_size=64, max_len=128, mlp=False)        # attention-only
    params = init_lm(cfg, np.random.default_rng(0))
    loss, grads = lm_loss_and_grads(ids, params, cfg)            # ids (B, T) int
    ids, logits = generate(params, cfg, prompt_ids, 20)           # greedy, KV cache

``attention_np.lm.circuits`` reads what the heads do: previous-token and induction scores from
the attention weights, QK and OV circuits, copying scores and K-composition from the
parameters (Elhage et al., 2021).
"""
from attention_np.lm.generate import (KVCache, cached_attention, generate, init_kv_cache,
                                     lm_step)
from attention_np.lm.model import (LMConfig, init_lm, lm_backward, lm_forward,
                                   lm_loss_and_grads)

__all__ = ["LMConfig", "init_lm", "lm_forward", "lm_backward", "lm_loss_and_grads",
           "KVCache", "init_kv_cache", "cached_attention", "lm_step", "generate"]
