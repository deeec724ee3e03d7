"""Attention in computer vision (article §1.2.2, §2.2.2): the three forms people meet.

* channel attention — Squeeze-and-Excitation and CBAM's channel half (:mod:`.channel`):
  one gate per feature map, s = σ(MLP(pool_{h,w} x)), y = x ⊙ s;
* spatial attention — CBAM's spatial half and the whole CBAM block (:mod:`.spatial`):
  one gate per position, a = σ(conv([mean_c x; max_c x])), y = x ⊙ a;
* self-attention over patches — the Vision Transformer (:mod:`.patches`, :mod:`.vit`):
  patch embedding, a [CLS] token and learned positions, then the library's encoder block.

Plus the models the demo compares (:mod:`.cnn`: a small CNN with or without SE / CBAM) and the
mean attention distance of the ViT paper's Fig. 7 (:mod:`.distance`). Every layer is a
``_forward`` / ``_backward`` pair on (B, C, H, W) images, float32 or float64.
"""
from attention_np.vision import cnn, vit
from attention_np.vision.channel import (channel_attention_backward, channel_attention_forward,
                                         init_channel_mlp, squeeze_excitation_backward,
                                         squeeze_excitation_forward)
from attention_np.vision.cnn import CNNConfig, init_cnn, receptive_fields
from attention_np.vision.distance import mean_attention_distance, patch_distances
from attention_np.vision.patches import (class_token_backward, class_token_forward,
                                         patch_embedding_backward, patch_embedding_forward)
from attention_np.vision.spatial import (cbam_backward, cbam_forward, init_cbam,
                                         init_spatial_attention, spatial_attention_backward,
                                         spatial_attention_forward)
from attention_np.vision.vit import ViTConfig, init_vit

__all__ = [
    "cnn", "vit",
    "squeeze_excitation_forward", "squeeze_excitation_backward", "channel_attention_forward",
    "channel_attention_backward", "init_channel_mlp",
    "spatial_attention_forward", "spatial_attention_backward", "init_spatial_attention",
    "cbam_forward", "cbam_backward", "init_cbam",
    "patch_embedding_forward", "patch_embedding_backward", "class_token_forward",
    "class_token_backward",
    "ViTConfig", "init_vit", "CNNConfig", "init_cnn", "receptive_fields",
    "mean_attention_distance", "patch_distances",
]
