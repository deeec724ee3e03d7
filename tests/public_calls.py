"""Public functions that take sizes, options or caches rather than shaped arrays, each with a bad
call and the names its ValueError may give (for tests/test_bad_input.py)."""
import numpy as np

import attention_np as an
from attention_np import kernels
from attention_np import din, efficient as ef, location_attention as la, transformer as tr



def _rng():
    return np.random.default_rng(0)


def _hard_cache():
    return an.hard_attention_forward(np.ones((2, 3)), np.ones((3, 4)), _rng())[-1]


def _din_cache():
    params = din.init_din_params(6, 3, _rng())
    return din.din_attention_forward(np.ones((2, 5, 6)), np.ones((2, 6)), params)[-1]


def _location_cache():
    params = la.init_location_params(13, 7, 9, 2, 3, _rng())
    return la.location_attention_forward(np.ones((2, 13)), np.ones((2, 5, 9)), np.ones((2, 5, 7)),
                                         np.ones((2, 5)), params)[-1]


# (id, the public function the row exercises, the call, names its message may give)
CALLS = [
    ("causal_mask-Tq", an.causal_mask, lambda: an.causal_mask(0), ["Tq"]),
    ("padding_mask-lengths", an.padding_mask, lambda: an.padding_mask(np.array([-1]), 3),
     ["lengths"]),
    ("sinusoidal_encoding-d", an.sinusoidal_encoding, lambda: an.sinusoidal_encoding(4, 0),
     ["d"]),
    ("SGD-lr", an.SGD, lambda: an.SGD(lr=-1), ["lr"]),
    ("Adam-betas", an.Adam, lambda: an.Adam(betas=(1.0, 0.9)), ["betas"]),
    ("SGD.step-grads", an.SGD.step,
     lambda: an.SGD(lr=0.1).step({"W": np.ones(3)}, {"W": np.ones(4)}), ["grads"]),
    ("Adam.step-grads", an.Adam.step,
     lambda: an.Adam().step({"W": np.ones(3)}, {"V": np.ones(3)}), ["grads"]),
    ("clip_grad_norm-max_norm", an.clip_grad_norm,
     lambda: an.clip_grad_norm({"W": np.ones(3)}, 0), ["max_norm"]),
    ("init_multi_head_params-d_model", an.init_multi_head_params,
     lambda: an.init_multi_head_params(0, _rng()), ["d_model"]),
    ("init_multi_head_params-rng", an.init_multi_head_params,
     lambda: an.init_multi_head_params(4, None), ["rng"]),
    ("split_heads-num_heads", an.split_heads, lambda: an.split_heads(np.ones((2, 3, 5)), 2),
     ["num_heads"]),
    ("merge_heads-x", an.merge_heads, lambda: an.merge_heads(np.ones((2, 3, 5))), ["x"]),
    ("init_encoder_block-d_model", tr.init_encoder_block,
     lambda: tr.init_encoder_block(0, 4, _rng()), ["d_model"]),
    ("init_feed_forward-d_ff", tr.init_feed_forward,
     lambda: tr.init_feed_forward(4, 0, _rng()), ["d_ff"]),
    ("norm_params-d_model", tr.norm_params, lambda: tr.norm_params(0), ["d_model"]),
    ("check_activation-activation", tr.check_activation,
     lambda: tr.check_activation("swish", "activation"), ["activation"]),
    ("init_encoder-num_heads", tr.init_encoder,
     lambda: tr.init_encoder(tr.EncoderConfig(d_model=5, num_heads=2), _rng()), ["num_heads"]),
    ("init_location_params-r", la.init_location_params,
     lambda: la.init_location_params(2, 3, 4, 2, 2, _rng()), ["r"]),
    ("init_din_params-D", din.init_din_params, lambda: din.init_din_params(0, 3, _rng()), ["D"]),
    ("block_layout-n_q_blocks", ef.block_layout, lambda: ef.block_layout(0, 3), ["n_q_blocks"]),
    ("block_layout_mask-layout", ef.block_layout_mask,
     lambda: ef.block_layout_mask(np.ones((2, 2), bool), 2, 5, 4), ["layout"]),
    ("sliding_window_mask-window", ef.sliding_window_mask,
     lambda: ef.sliding_window_mask(5, -1), ["window"]),
    ("sliding_window_mask-global_tokens", ef.sliding_window_mask,
     lambda: ef.sliding_window_mask(5, 1, global_tokens=[7]), ["global_tokens"]),
    ("orthogonal_random_features-num_features", ef.orthogonal_random_features,
     lambda: ef.orthogonal_random_features(0, 4, _rng()), ["num_features"]),
    ("init_linformer_projections-rank", ef.init_linformer_projections,
     lambda: ef.init_linformer_projections(0, 4, _rng()), ["rank"]),
    ("mean_pool_projections-rank", ef.mean_pool_projections,
     lambda: ef.mean_pool_projections(5, 4), ["rank"]),
    ("hard_attention-index", an.hard_attention_forward,
     lambda: an.hard_attention_forward(np.ones((2, 3)), np.ones((3, 4)), _rng(),
                                       index=np.array([0, 5])), ["index"]),
    ("hard_attention-rng", an.hard_attention_forward,
     lambda: an.hard_attention_forward(np.ones((2, 3)), np.ones((3, 4)), None), ["rng"]),
    ("hard_attention_backward-reward", an.hard_attention_backward,
     lambda: an.hard_attention_backward(np.ones((2, 4)), _hard_cache(), reward=np.ones(5)),
     ["reward"]),
    ("cross_entropy-targets", an.cross_entropy_forward,
     lambda: an.cross_entropy_forward(np.ones((2, 3)), np.array([0, 3])), ["targets"]),
    ("din_attention_backward-dweights", din.din_attention_backward,
     lambda: din.din_attention_backward(np.ones((2, 6)), _din_cache(), dweights=np.ones((2, 4))),
     ["dweights"]),
    ("location_attention_backward-dalpha", la.location_attention_backward,
     lambda: la.location_attention_backward(np.ones((2, 7)), _location_cache(),
                                            dalpha=np.ones((2, 4))), ["dalpha"]),
    ("kernels.softmax_backward-axis", kernels.softmax_backward,
     lambda: kernels.softmax_backward(np.ones((2, 3)), np.ones((2, 3)), axis=5), ["axis"]),
    ("kernels.tune-repeats", kernels.tune, lambda: kernels.tune(repeats=0), ["repeats"]),
]
