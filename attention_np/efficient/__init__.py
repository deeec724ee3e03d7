"""Efficient attention variants (article §8.2.1, §8.2.2, §8.3.1): what they cost and what they lose.

Exact attention costs O(T²) time and memory in the sequence length T. Each module here trades
exactness (or reach) for cost, and each is a forward/backward pair like the rest of the package:

* :mod:`.sliding_window` — every query sees the ``w`` keys on each side (plus optional global
  tokens, the Longformer / BigBird pattern): a mask for exact attention, and a banded O(T·w)
  computation that never forms the (T, T) matrix.
* :mod:`.block_sparse` — attention restricted to a layout of (block × block) tiles.
* :mod:`.linear` — kernelised attention with φ(x) = elu(x) + 1 (Katharopoulos et al., 2020):
  O(T) by associativity, causal and non-causal.
* :mod:`.performer` — FAVOR+ positive orthogonal random features (Choromanski et al., 2021), an
  unbiased random-feature estimate of the softmax kernel, run through the same O(T) product.
* :mod:`.linformer` — keys and values projected from length T to rank r (Wang et al., 2020).

Forward functions return ``(out, weights or None, cache)``; backward functions return
``(dq, dk, dv)`` or ``(dq, dk, dv, dparams)`` for variants with parameters of their own.
"""
from attention_np.efficient.block_sparse import (block_layout, block_layout_mask,
                                                 block_sparse_attention_backward,
                                                 block_sparse_attention_forward)
from attention_np.efficient.linear import (elu_feature_map_backward, elu_feature_map_forward,
                                           kernelized_attention_backward,
                                           kernelized_attention_forward,
                                           linear_attention_backward, linear_attention_forward)
from attention_np.efficient.linformer import (init_linformer_projections,
                                              linformer_attention_backward,
                                              linformer_attention_forward,
                                              mean_pool_projections)
from attention_np.efficient.performer import (favor_features_backward, favor_features_forward,
                                              orthogonal_random_features,
                                              performer_attention_backward,
                                              performer_attention_forward)
from attention_np.efficient.sliding_window import (sliding_window_attention_backward,
                                                   sliding_window_attention_forward,
                                                   sliding_window_mask)

__all__ = [
    "block_layout", "block_layout_mask", "block_sparse_attention_forward",
    "block_sparse_attention_backward",
    "elu_feature_map_forward", "elu_feature_map_backward", "kernelized_attention_forward",
    "kernelized_attention_backward", "linear_attention_forward", "linear_attention_backward",
    "init_linformer_projections", "linformer_attention_forward", "linformer_attention_backward",
    "mean_pool_projections",
    "orthogonal_random_features", "favor_features_forward", "favor_features_backward",
    "performer_attention_forward", "performer_attention_backward",
    "sliding_window_mask", "sliding_window_attention_forward", "sliding_window_attention_backward",
]
