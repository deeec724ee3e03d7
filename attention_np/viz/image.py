"""Show-Attend-Tell overlays: where on the image the model looked for each generated word."""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array
from attention_np.viz._util import as_image, token_list


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation between cell centres (edges clamp), rows sum to 1."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5          # output pixel in input cells
    pos = np.clip(centres, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def upsample_attention(grid, out_shape, smooth: float = 0.25) -> np.ndarray:
    """Bilinear upsampling of a (gh, gw) attention grid to (H, W), then a Gaussian blur of
    σ = ``smooth`` × cell size (0 = none): up = R_y · grid · R_xᵀ. The result is rescaled to
    [0, 1] so the overlay's brightest spot is where the weight peaks."""
    g = as_float_array(grid, "grid", ndim=2, check_finite=True)
    height, width = int(out_shape[0]), int(out_shape[1])
    up = _interp_matrix(g.shape[0], height) @ g @ _interp_matrix(g.shape[1], width).T
    if smooth > 0:
        from scipy.ndimage import gaussian_filter
        up = gaussian_filter(up, sigma=(smooth * height / g.shape[0], smooth * width / g.shape[1]),
                             mode="nearest")
    span = up.max() - up.min()
    return (up - up.min()) / span if span > 0 else np.zeros_like(up)


def plot_image_attention(image, weights, words, grid_shape, max_cols: int = 5,
                         smooth: float = 0.25, alpha: float = 0.6, cmap: str = "jet"):
    """One panel per generated word: the image with that step's attention over the (gh, gw)
    feature grid upsampled smoothly on top (Xu et al. 2015, Fig. 2).

    image (H, W) or (H, W, 3); weights (n_words, gh·gw) or (n_words, gh, gw); words: n_words
    strings. Returns the Figure.
    """
    import matplotlib.pyplot as plt
    img = as_image(image)
    gh, gw = int(grid_shape[0]), int(grid_shape[1])
    w = as_float_array(weights, "weights", ndim=(2, 3), check_finite=True)
    if w.shape[1:] not in ((gh * gw,), (gh, gw)):
        raise ValueError(f"weights must be (n_words, {gh * gw}) or (n_words, {gh}, {gw}) for "
                         f"grid_shape {grid_shape}, got {w.shape}")
    w = w.reshape(len(w), gh, gw)
    labels = token_list(words, len(w), "words")
    ncols = min(max_cols, len(w))
    nrows = -(-len(w) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.4 * nrows), squeeze=False,
                             constrained_layout=True)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(w):
            ax.remove()
            continue
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.imshow(upsample_attention(w[k], img.shape[:2], smooth), cmap=cmap, alpha=alpha,
                  vmin=0, vmax=1)
        ax.set_title(f"{labels[k]}  (max {w[k].max():.2f})", fontsize=9)
        ax.axis("off")
    return fig
