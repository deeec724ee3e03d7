"""A GIF of attention step by step while a sequence is generated."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from attention_np.nn.checks import as_float_array
from attention_np.viz._util import as_image, set_token_ticks, token_list
from attention_np.viz.image import upsample_attention


def _draw_alignment(ax, w, t, src, tgt):
    """Rows 0 … t of the (steps, Tk) alignment, the current row outlined."""
    shown = np.full(w.shape, np.nan)
    shown[:t + 1] = w[:t + 1]
    ax.imshow(shown, cmap="viridis", vmin=0, vmax=max(float(w.max()), 1e-12), aspect="auto",
              interpolation="nearest")
    from matplotlib.patches import Rectangle
    ax.add_patch(Rectangle((-0.5, t - 0.5), w.shape[1], 1, fill=False, edgecolor="tab:red",
                           linewidth=2))
    set_token_ticks(ax, tgt, src)
    ax.set_xlabel("source")
    ax.set_ylabel("generated")


def _draw_image(ax, img, grid):
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    ax.imshow(upsample_attention(grid, img.shape[:2]), cmap="jet", alpha=0.6, vmin=0, vmax=1)
    ax.axis("off")


def _new_figure(w, image, grid_shape, source_tokens):
    """The figure sized for the image (kept at its aspect ratio) or for the alignment matrix
    → (fig, ax, image as an array or None, source tokens or None)."""
    import matplotlib.pyplot as plt
    if image is None:
        src = token_list(source_tokens, w.shape[1], "source_tokens")
        side = float(np.clip(0.3 * max(w.shape), 3.5, 9))
        fig, ax = plt.subplots(figsize=(side + 1, side), layout="constrained")
        return fig, ax, None, src
    if grid_shape is None or int(np.prod(grid_shape)) != w.shape[1]:
        raise ValueError(f"grid_shape {grid_shape} must multiply to the frame width {w.shape[1]}")
    img = as_image(image)
    aspect = img.shape[1] / img.shape[0]                          # width / height, e.g. 4 for 16×64
    width = float(np.clip(3.0 * aspect, 4.0, 10.0))
    fig, ax = plt.subplots(figsize=(width, width / aspect + 0.6), layout="constrained")
    return fig, ax, img, None


def animate_decoding(frames, path, source_tokens=None, target_tokens=None, image=None,
                     grid_shape=None, fps: float = 2.0):
    """Write a GIF with one frame per decoding step t and return its path.

    frames: (steps, Tk) — or a list of (Tk,) arrays — the attention of step t over the source.
    Without ``image``: the alignment matrix fills in row by row (current row outlined in red).
    With ``image`` (H, W[, 3]) and ``grid_shape`` (gh, gw), Tk = gh·gw: the image with step t's
    attention upsampled on top. The title shows the words generated so far.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    w = as_float_array(np.asarray(frames), "frames", ndim=2, check_finite=True)
    tgt = token_list(target_tokens, len(w), "target_tokens")
    fig, ax, img, src = _new_figure(w, image, grid_shape, source_tokens)

    def draw(t: int):
        ax.clear()
        if image is not None:
            _draw_image(ax, img, w[t].reshape(grid_shape))
        else:
            _draw_alignment(ax, w, t, src, tgt)
        ax.set_title(f"step {t + 1}/{len(w)}: " + " ".join(tgt[:t + 1])[-60:], fontsize=9)
        return []

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim = FuncAnimation(fig, draw, frames=len(w), blit=False)
    anim.save(path, writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    return path
