"""Numbers the vision demo reads off trained models: how far a CNN's units look (their
gradient-weighted mean distance, next to the ViT's attention-weighted one), and how class-
specific the SE channel weights are."""
from __future__ import annotations

import numpy as np

from attention_np.vision.cnn import cnn_features_backward, cnn_features_forward, receptive_fields


def effective_distance(params: dict, config, images: np.ndarray) -> list[float]:
    """Per conv block: the mean over its output units u of

        d(u) = Σ_p g_u(p) ‖p − centre(u)‖ / Σ_p g_u(p),   g_u(p) = Σ_images |∂(Σ_c h_cu) / ∂x_p|

    the pixel distance weighted by how strongly pixel p moves unit u (its *effective*
    receptive field, Luo et al. 2016) — the convolutional twin of the mean attention distance.
    images (B, 1, S, S) → one distance (pixels) per block.
    """
    S = images.shape[-1]
    rows, cols = np.indices((S, S))
    distances = []
    for block, (_, stride) in enumerate(receptive_fields(config)):
        h, _, cache = cnn_features_forward(images, params, config, block + 1)   # (B, C, s, s)
        per_unit = []
        for i, j in np.ndindex(*h.shape[2:]):
            dh = np.zeros_like(h)
            dh[:, :, i, j] = 1.0
            dx, _ = cnn_features_backward(dh, cache)                            # (B, 1, S, S)
            g = np.abs(dx).sum(axis=(0, 1))                                     # (S, S)
            ci, cj = (i + 0.5) * stride - 0.5, (j + 0.5) * stride - 0.5         # unit centre
            per_unit.append(float((g * np.hypot(rows - ci, cols - cj)).sum() / max(g.sum(), 1e-30)))
        distances.append(float(np.mean(per_unit)))
    return distances


def class_specificity(s: np.ndarray, labels: np.ndarray) -> float:
    """η² of the channel weights: between-class variance / total variance, pooled over channels.
    0: every class gets the same weights; 1: the weights are a function of the class alone.
    s (N, C), labels (N,)."""
    mean = s.mean(axis=0)                                                       # (C,)
    between = sum((labels == k).sum() * (s[labels == k].mean(axis=0) - mean) ** 2
                  for k in np.unique(labels))                                   # (C,)
    total = ((s - mean) ** 2).sum(axis=0)                                       # (C,)
    return float(between.sum() / max(total.sum(), 1e-30))


def class_means(s: np.ndarray, labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """The mean weight of every channel over the images of each class → (K, C)."""
    return np.stack([s[labels == k].mean(axis=0) for k in range(num_classes)])
