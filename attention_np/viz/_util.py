"""Shared by every viz module: validating attention arrays, token lists and images, and
thinning tick labels."""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array

MAX_LABELS = 60  # more tokens than this on an axis: label every k-th one only


def as_layers_heads(attn, name: str = "attn") -> np.ndarray:
    """Return attention weights as a finite ``(L, H, Tq, Tk)`` array.

    ``(Tq, Tk)`` becomes ``(1, 1, Tq, Tk)`` and ``(H, Tq, Tk)`` becomes ``(1, H, Tq, Tk)``.
    """
    a = as_float_array(attn, name, ndim=(2, 3, 4), check_finite=True)
    while a.ndim < 4:
        a = a[None]
    if min(a.shape) == 0:
        raise ValueError(f"{name} must not have an empty axis, got shape {a.shape}")
    return a


def as_square_layers(attn, name: str = "attentions") -> np.ndarray:
    """``(L, H, T, T)`` self-attention weights (the input of rollout and flow)."""
    a = as_float_array(attn, name, ndim=4, check_finite=True)
    if a.shape[-1] != a.shape[-2] or a.shape[-1] == 0:
        raise ValueError(f"{name} must be self-attention (L, H, T, T), got shape {a.shape}")
    return a


def pick_layers(a4: np.ndarray, layers) -> list[int]:
    """Indices of the layers to show (all when ``layers`` is None), each checked to be in range."""
    picked = list(range(a4.shape[0])) if layers is None else [int(l) for l in np.atleast_1d(layers)]
    if not all(0 <= l < a4.shape[0] for l in picked):
        raise ValueError(f"layers {picked} out of range for attn with {a4.shape[0]} layers")
    return picked


def token_list(tokens, n: int, name: str) -> list[str]:
    """``tokens`` as a list of ``n`` strings; ``None`` gives ``["0", "1", …]``."""
    if tokens is None:
        return [str(i) for i in range(n)]
    out = [str(t) for t in tokens]
    if len(out) != n:
        raise ValueError(f"{name} has {len(out)} entries but the attention axis has {n}")
    return out


def tick_step(n: int, max_labels: int = MAX_LABELS) -> int:
    """Label every ``step``-th of ``n`` positions so at most ``max_labels`` are shown."""
    return max(1, -(-n // max_labels))


def set_token_ticks(ax, row_labels, col_labels, max_labels: int = MAX_LABELS,
                    col_rotation: int = 90) -> None:
    """Put token labels on both axes of an ``imshow`` panel, thinned past ``max_labels``."""
    for labels, set_ticks, set_labels, rot in (
            (col_labels, ax.set_xticks, ax.set_xticklabels, col_rotation),
            (row_labels, ax.set_yticks, ax.set_yticklabels, 0)):
        if labels is None:
            set_ticks([])
            continue
        step = tick_step(len(labels), max_labels)
        idx = np.arange(0, len(labels), step)
        set_ticks(idx)
        size = 9 if len(idx) <= 20 else 7 if len(idx) <= 40 else 6
        short = max(len(labels[i]) for i in idx) <= 3              # "h_1", "12": no need to turn
        set_labels([labels[i] for i in idx], rotation=0 if short else rot, fontsize=size)


def as_image(image) -> np.ndarray:
    """A grey (H, W) or colour (H, W, 3|4) image as float64 scaled to [0, 1];
    (H, W, 1) becomes (H, W)."""
    img = np.asarray(image)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {img.shape}")
    img = img.astype(np.float64)
    img = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
    span = img.max() - img.min()
    return (img - img.min()) / span if span > 0 else np.zeros_like(img)
