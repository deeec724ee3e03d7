"""attention-np: attention mechanisms from scratch in NumPy, with hand-written backward passes.

Every op is a pair ``<name>_forward(...) -> (out, cache)`` / ``<name>_backward(dout, cache)``;
attention ops return ``(out, weights, cache)``. Masks are boolean, True = may attend.

The root of the package lists the article's ideas, one module each:

    core                the masked softmax and the linear layer everything is built from; masks
    scores              e = s·h, s·h/√D, s W h, vᵀ tanh(W s + U h)            (§4.1.3)
    soft, hard          soft attention (a weighted average) and hard attention (a sample) (§3.1, §3.2)
    self_attention      scaled dot-product and multi-head attention           (§3.3, §3.4)
    positional          sinusoidal, learned and rotary positions (RoPE)       (§4.3, beyond)
    transformer         the encoder block: attention + FFN, residuals, layer norm (§4.3)
    decoder             the decoder block: causal self-attention, cross-attention, FFN
    location_attention  location-aware attention for speech                  (§6.3)
    din                 the Deep Interest Network's attention pooling          (§6.4)
    graph               GAT and relation-aware GAT over a node's neighbours   (§8.1.1)
    vision              SE, CBAM, ViT pieces, mean attention distance         (§1.2.2, §2.2.2)
    lm                  a decoder-only LM on the causal block, KV-cache generation (§2.2.3)
    efficient           window, block-sparse, linear, Performer, Linformer    (§8.2–§8.3)
    decoding            greedy and beam search over any decoder step (GNMT's length penalty)
    viz                 heatmaps, head views, rollout, flow, atlas            (§7)

Sub-packages: ``nn`` (the plumbing that is not attention: layers, activations, losses, conv,
recurrent, init, optim, params, checks, and ``backend``, the one door to the kernels),
``kernels`` (Numba kernels: softmax, matmul, flash attention, the fused encoder block; a leaf
that imports nothing of the library; ``python -m attention_np.kernels.bench``), ``apps``
(models for one application each: seq2seq, las, captioning, sentiment, recommend) and
``models`` (pretrained all-MiniLM-L6-v2: ``from attention_np.models.minilm import MiniLM``).

Layers, lowest first; a module imports only from its own layer or below (tests/test_import_layers.py):
``kernels`` (numpy, numba, scipy, threadpoolctl only) ← ``nn`` ← the ideas at the root ←
``vision``, ``lm``, ``graph``, ``efficient``, ``viz`` ← ``apps``, ``models`` ← ``exercises``.

Internal API. Public functions validate their input once and call a trusting core; other modules
of the package call these cores on input they have already checked. They validate nothing, and
user code should call the public function of the same name instead:

    core                  linear_core, softmax_core
    soft                  soft_attention_core
    self_attention        sdpa_core, multi_head_attention_core, split_heads_core,
                          merge_heads_core
    transformer           feed_forward_core, ffn_sublayer_core, encoder_block_core,
                          encoder_packed_core
    decoder               decoder_block_core, decoder_block_step_core
    lm.model              lm_core, embed_core, unembed_core
    lm.generate           cached_attention_core
    decoding              beam_step_core
    graph.edges           segment_softmax_core, segment_softmax_backward, node_sum_core,
                          neighbour_sum_core, neighbour_sum_backward, weights_as_input
    vision.channel        channel_attention_core
"""
from attention_np import apps, efficient, graph, lm, models, nn, vision, viz
from attention_np.core import (causal_mask, linear_backward, linear_forward, padding_mask,
                               softmax_backward, softmax_forward)
from attention_np.decoder import (cross_attention_cache, decoder_block_backward,
                                  decoder_block_forward, decoder_block_step, init_decoder_block)
from attention_np.din import (din_activation_backward, din_activation_forward,
                              din_attention_backward, din_attention_forward, init_din_params)
from attention_np.efficient import (block_sparse_attention_backward,
                                    block_sparse_attention_forward, linear_attention_backward,
                                    linear_attention_forward, linformer_attention_backward,
                                    linformer_attention_forward, performer_attention_backward,
                                    performer_attention_forward, sliding_window_attention_backward,
                                    sliding_window_attention_forward)
from attention_np.graph import (gat_backward, gat_forward, init_gat_params,
                                init_relation_gat_params, relation_gat_backward,
                                relation_gat_forward)
from attention_np.hard import hard_attention_backward, hard_attention_forward
from attention_np.location_attention import (init_location_params, location_attention_backward,
                                             location_attention_forward)
from attention_np.nn import init, optim
from attention_np.nn.activations import (gelu_backward, gelu_forward, relu_backward, relu_forward,
                                         sigmoid_backward, sigmoid_forward, tanh_backward,
                                         tanh_forward)
from attention_np.nn.layers import (dropout_backward, dropout_forward, embedding_backward,
                                    embedding_forward, layer_norm_backward, layer_norm_forward)
from attention_np.positional import (learned_positions_backward, learned_positions_forward,
                                     rope_backward, rope_forward, sinusoidal_encoding)
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.optim import SGD, Adam, clip_grad_norm
from attention_np.scores import (additive_score_backward, additive_score_forward,
                                 dot_score_backward, dot_score_forward, general_score_backward,
                                 general_score_forward, scaled_dot_score_backward,
                                 scaled_dot_score_forward)
from attention_np.self_attention import (init_multi_head_params, merge_heads,
                                         multi_head_attention_backward,
                                         multi_head_attention_forward,
                                         scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward, split_heads)
from attention_np.soft import soft_attention_backward, soft_attention_forward
from attention_np.transformer import (EncoderConfig, encoder_backward, encoder_block_backward,
                                      encoder_block_forward, encoder_forward, init_encoder,
                                      init_encoder_block)

__version__ = "0.1.0"

__all__ = [
    # sub-packages
    "apps", "efficient", "graph", "lm", "models", "nn", "vision", "viz", "init", "optim",
    # core: softmax, linear, masks
    "softmax_forward", "softmax_backward", "linear_forward", "linear_backward",
    "causal_mask", "padding_mask",
    # scores (§4.1.3)
    "dot_score_forward", "dot_score_backward", "scaled_dot_score_forward",
    "scaled_dot_score_backward", "general_score_forward", "general_score_backward",
    "additive_score_forward", "additive_score_backward",
    # soft and hard attention (§3.1, §3.2)
    "soft_attention_forward", "soft_attention_backward",
    "hard_attention_forward", "hard_attention_backward",
    # self- and multi-head attention (§3.3, §3.4)
    "scaled_dot_product_attention_forward", "scaled_dot_product_attention_backward",
    "multi_head_attention_forward", "multi_head_attention_backward", "init_multi_head_params",
    "split_heads", "merge_heads",
    # the Transformer encoder block (§4.3)
    "EncoderConfig", "init_encoder_block", "encoder_block_forward", "encoder_block_backward",
    "init_encoder", "encoder_forward", "encoder_backward",
    # the decoder block and cross-attention
    "init_decoder_block", "decoder_block_forward", "decoder_block_backward",
    "cross_attention_cache", "decoder_block_step",
    # location-aware attention (§6.3) and DIN (§6.4)
    "init_location_params", "location_attention_forward", "location_attention_backward",
    "init_din_params", "din_activation_forward", "din_activation_backward",
    "din_attention_forward", "din_attention_backward",
    # graph attention (§8.1.1)
    "init_gat_params", "gat_forward", "gat_backward",
    "init_relation_gat_params", "relation_gat_forward", "relation_gat_backward",
    # efficient variants (§8.2–§8.3)
    "sliding_window_attention_forward", "sliding_window_attention_backward",
    "block_sparse_attention_forward", "block_sparse_attention_backward",
    "linear_attention_forward", "linear_attention_backward",
    "performer_attention_forward", "performer_attention_backward",
    "linformer_attention_forward", "linformer_attention_backward",
    # building blocks (attention_np.nn)
    "embedding_forward", "embedding_backward", "layer_norm_forward", "layer_norm_backward",
    "dropout_forward", "dropout_backward",
    # positions (attention alone is blind to order)
    "sinusoidal_encoding", "learned_positions_forward", "learned_positions_backward",
    "rope_forward", "rope_backward",
    "gelu_forward", "gelu_backward", "relu_forward", "relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "cross_entropy_forward", "cross_entropy_backward", "SGD", "Adam", "clip_grad_norm",
]
