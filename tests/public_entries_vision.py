"""attention_np.vision's public entries for the bad-input table (tests/test_bad_input.py collects
this module through tests/bad_input_table.py).

Letters as in tests/public_entries.py. Images are (B, C, Q, K) = (2, 11, 4, 5); with
``reduction`` 4 the SE / CBAM bottleneck has C_r = 11 // 4 = 2 = L channels (L is also fixed by
the literal). CBAM's spatial filter is (P, L, O, O) = (1, 2, 3, 3). The patch embedding uses
1×1 patches (any Q × K divides); class_token's pos has K = Q + 1 rows. The models take
(B, P, Q, Q) = (2, 1, 4, 4) images and their configs' parameters (P and Q tied to the config).
"""
from __future__ import annotations

import numpy as np

from attention_np import vision
from attention_np.transformer import EncoderConfig
from attention_np.vision import channel, cnn, distance, patches, spatial, vit
from tests.public_entries import Entry, Fresh, _cache_bwd

MLP = {"W_1": "f:CL", "b_1": "f:L", "W_2": "f:LC", "b_2": "f:C"}
SPATIAL = {"W": "f:PLOO", "b": "f:P"}
CBAM = {f"channel.{k}": v for k, v in MLP.items()} | {f"spatial.{k}": v for k, v in SPATIAL.items()}
REDUCTION = {"bad_literals": {"reduction": [0, 2.5]}, "tied": "L", "saturating": True}

VIT_CONFIG = vit.ViTConfig(image_size=4, in_channels=1, patch_size=2, num_classes=3,
                           encoder=EncoderConfig(d_model=6, num_heads=3, d_ff=8, num_layers=2,
                                                 activation="gelu", norm_first=True))
CNN_CONFIG = cnn.CNNConfig(image_size=4, in_channels=1, channels=(2, 3), pool=(True, False),
                           attention="cbam", reduction=1, spatial_kernel=3, num_classes=3)


def _rng():
    return np.random.default_rng(0)


VIT_PARAMS = Fresh(lambda: vit.init_vit(VIT_CONFIG, _rng()))
CNN_PARAMS = Fresh(lambda: cnn.init_cnn(CNN_CONFIG, _rng()))
IMAGES = "f:BPQQ"

ENTRIES = [
    Entry("squeeze_excitation", channel.squeeze_excitation_forward,
          {"x": "f:BCQK", "params": MLP, "reduction": 4},
          _cache_bwd(channel.squeeze_excitation_backward), **REDUCTION),
    Entry("channel_attention", channel.channel_attention_forward,
          {"x": "f:BCQK", "params": MLP, "reduction": 4},
          _cache_bwd(channel.channel_attention_backward), **REDUCTION),
    Entry("spatial_attention", spatial.spatial_attention_forward,
          {"x": "f:BCQK", "params": SPATIAL}, _cache_bwd(spatial.spatial_attention_backward),
          saturating=True),                                             # σ gates x
    Entry("cbam", spatial.cbam_forward, {"x": "f:BCQK", "params": CBAM, "reduction": 4},
          _cache_bwd(spatial.cbam_backward), **REDUCTION),
    Entry("patch_embedding", patches.patch_embedding_forward,
          {"x": "f:BCQK", "params": {"W": "f:CD", "b": "f:D"}, "patch_size": 1},
          _cache_bwd(patches.patch_embedding_backward), bad_literals={"patch_size": [0, 3]}),
    Entry("class_token", patches.class_token_forward,
          {"tokens": "f:BQD", "params": {"cls": "f:D", "pos": "f:KD"}},
          _cache_bwd(patches.class_token_backward)),
    Entry("vit", vit.vit_forward, {"images": IMAGES, "params": VIT_PARAMS, "config": VIT_CONFIG},
          _cache_bwd(vit.vit_backward), tied="PQ"),
    Entry("cnn", cnn.cnn_forward, {"images": IMAGES, "params": CNN_PARAMS, "config": CNN_CONFIG},
          _cache_bwd(cnn.cnn_backward), tied="PQ"),
    Entry("cnn_features", cnn.cnn_features_forward,
          {"images": IMAGES, "params": CNN_PARAMS, "config": CNN_CONFIG},
          _cache_bwd(cnn.cnn_features_backward), tied="PQ"),
]


def _bad_images():
    return np.ones((2, 1, 5, 5))


# (id, the public function the row exercises, the call, names its message may give)
CALLS = [
    ("hidden_channels-reduction", channel.hidden_channels,
     lambda: channel.hidden_channels(8, 0), ["reduction"]),
    ("init_channel_mlp-rng", channel.init_channel_mlp,
     lambda: channel.init_channel_mlp(8, 2, None), ["rng"]),
    ("check_channel_inputs-params", channel.check_channel_inputs,
     lambda: channel.check_channel_inputs(np.ones((1, 4, 2, 2)), {}, 2), ["params"]),
    ("init_spatial_attention-kernel_size", spatial.init_spatial_attention,
     lambda: spatial.init_spatial_attention(4, _rng()), ["kernel_size"]),
    ("check_spatial_params-W", spatial.check_spatial_params,
     lambda: spatial.check_spatial_params(np.ones((1, 4, 2, 2)), {"W": np.ones((1, 2, 2, 2)),
                                                                   "b": np.ones(1)}), ["W"]),
    ("init_cbam-reduction", spatial.init_cbam, lambda: spatial.init_cbam(8, 0, 7, _rng()),
     ["reduction"]),
    ("patch_distances-grid", distance.patch_distances, lambda: distance.patch_distances(0, 1),
     ["grid"]),
    ("mean_attention_distance-weights", distance.mean_attention_distance,
     lambda: distance.mean_attention_distance([np.ones((2, 3, 5, 5))], grid=3, patch_size=1),
     ["weights"]),
    ("mean_attention_distance-empty", distance.mean_attention_distance,
     lambda: distance.mean_attention_distance([], grid=2, patch_size=1), ["weights"]),
    ("ViTConfig-image_size", vit.ViTConfig, lambda: vit.ViTConfig(image_size=7), ["image_size"]),
    ("init_vit-rng", vit.init_vit, lambda: vit.init_vit(VIT_CONFIG, None), ["rng"]),
    ("vit.loss_and_grads-images", vit.loss_and_grads,
     lambda: vit.loss_and_grads(VIT_PARAMS.make(), VIT_CONFIG, _bad_images(), np.zeros(2, int)),
     ["images"]),
    ("vit.predict-images", vit.predict,
     lambda: vit.predict(VIT_PARAMS.make(), VIT_CONFIG, _bad_images()), ["images"]),
    ("CNNConfig-attention", cnn.CNNConfig, lambda: cnn.CNNConfig(attention="self"),
     ["attention"]),
    ("init_cnn-rng", cnn.init_cnn, lambda: cnn.init_cnn(CNN_CONFIG, None), ["rng"]),
    ("cnn.loss_and_grads-images", cnn.loss_and_grads,
     lambda: cnn.loss_and_grads(CNN_PARAMS.make(), CNN_CONFIG, _bad_images(), np.zeros(2, int)),
     ["images"]),
    ("cnn.predict-images", cnn.predict,
     lambda: cnn.predict(CNN_PARAMS.make(), CNN_CONFIG, _bad_images()), ["images"]),
    ("receptive_fields-config", cnn.receptive_fields,
     lambda: cnn.receptive_fields(VIT_CONFIG), ["config"]),
]

MODULES = [(vision, vision.__all__), (channel, None), (spatial, None), (patches, None),
           (distance, None), (vit, None), (cnn, None)]
