"""Static matplotlib figures of attention weights. Every function returns the ``Figure``
(save it as PNG or SVG with ``fig.savefig``); rows are queries, columns are keys."""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array
from attention_np.viz._util import as_layers_heads, set_token_ticks, token_list
from attention_np.viz.analysis import head_entropy, head_summary


def _new_axes(nrows: int, ncols: int, panel: float, squeeze: bool = False):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * panel + 1.2, nrows * panel + 0.6),
                             squeeze=squeeze, constrained_layout=True)
    return fig, axes


def _figure_of(ax, rows: int, cols: int):
    if ax is not None:
        return ax.figure, ax
    size = float(np.clip(0.28 * max(rows, cols), 3.0, 11.0))
    fig, axes = _new_axes(1, 1, size, squeeze=True)
    return fig, axes


def plot_heatmap(weights, row_labels=None, col_labels=None, ax=None, title=None,
                 cmap: str = "viridis", vmax=None, colorbar: bool = True, annotate=None):
    """One attention matrix A (Tq, Tk) as a labelled heatmap: row i = query i, column j = key j.

    ``annotate`` writes the values in the cells (default: when both sides are ≤ 12). Labels are
    thinned to every k-th token past 60 tokens. Returns the Figure (of ``ax`` when given).
    """
    w = as_float_array(weights, "weights", ndim=2, check_finite=True)
    rows = token_list(row_labels, w.shape[0], "row_labels")
    cols = token_list(col_labels, w.shape[1], "col_labels")
    fig, ax = _figure_of(ax, *w.shape)
    vmax = float(max(w.max(), 1e-12)) if vmax is None else vmax
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    set_token_ticks(ax, rows, cols)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    if annotate if annotate is not None else max(w.shape) <= 12:
        for (i, j), value in np.ndenumerate(w):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 0.6 * vmax else "black")
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="attention weight")
    return fig


def plot_heads(attn, tokens=None, key_tokens=None, max_cols: int = 8, cmap: str = "viridis",
               title=None):
    """A grid of heatmaps: (H, Tq, Tk) → heads wrapped in rows of ``max_cols``;
    (L, H, Tq, Tk) → one row per layer, one column per head. One shared colour scale.

    Token labels are drawn on the left column and bottom row only (none past 40 tokens).
    """
    a4 = as_layers_heads(attn)
    n_layers, n_heads, tq, tk = a4.shape
    if np.ndim(attn) == 4:
        grid = [[(l, h) for h in range(n_heads)] for l in range(n_layers)]
    else:
        flat = [(0, h) for h in range(n_heads)]
        grid = [flat[r:r + max_cols] for r in range(0, n_heads, max_cols)]
    rows_lab = token_list(tokens, tq, "tokens")
    cols_lab = token_list(key_tokens if key_tokens is not None else
                          (tokens if tq == tk else None), tk, "key_tokens")
    ncols = max(len(r) for r in grid)
    labelled = max(tq, tk) <= 40
    fig, axes = _new_axes(len(grid), ncols, 2.6 if labelled else 1.7)
    vmax = float(max(a4.max(), 1e-12))
    used = []
    for r, row in enumerate(grid):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(row):
                ax.remove()
                continue
            l, h = row[c]
            used.append(ax)
            image = ax.imshow(a4[l, h], cmap=cmap, vmin=0, vmax=vmax, aspect="auto",
                              interpolation="nearest")
            ax.set_title(f"L{l} H{h}" if a4.shape[0] > 1 or np.ndim(attn) == 4 else f"head {h}",
                         fontsize=9)
            set_token_ticks(ax, rows_lab if labelled and c == 0 else None,
                            cols_lab if labelled and r == len(grid) - 1 else None, max_labels=40)
    fig.colorbar(image, ax=used, shrink=0.6, label="attention weight")
    if title:
        fig.suptitle(title)
    return fig


def plot_alignment(weights, source_tokens, target_tokens, ax=None, title=None):
    """Translation alignment (Bahdanau et al. 2015, Fig. 3): A (T_target, T_source), grey scale,
    source words along the top, generated words down the side, a dot on each row's argmax."""
    w = as_float_array(weights, "weights", ndim=2, check_finite=True)
    src = token_list(source_tokens, w.shape[1], "source_tokens")
    tgt = token_list(target_tokens, w.shape[0], "target_tokens")
    fig = plot_heatmap(w, tgt, src, ax=ax, title=title, cmap="gray", vmax=1.0,
                       colorbar=ax is None, annotate=False)
    ax = ax or fig.axes[0]
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("source")
    ax.set_ylabel("generated")
    ax.plot(w.argmax(axis=1), np.arange(w.shape[0]), "o", color="tab:red", markersize=3,
            label="argmax")
    return fig


def plot_head_stats(attn, tokens, separators=None, title=None):
    """Six (L × H) panels: mean row entropy (nats), then the share of attention each head gives
    to the first token, separators, the previous token, the next token and itself
    (:func:`head_entropy`, :func:`head_summary`). Accepts (H, T, T) or (L, H, T, T)."""
    a4 = as_layers_heads(attn)
    summary = head_summary(a4, tokens, **({} if separators is None else
                                           {"separators": separators}))
    panels = {"entropy (nats)": head_entropy(a4), **{f"→ {k}": v for k, v in summary.items()}}
    fig, axes = _new_axes(2, 3, 0.9 + 0.35 * max(a4.shape[:2]))
    n_layers, n_heads = a4.shape[:2]
    for ax, (name, values) in zip(axes.ravel(), panels.items()):
        vmax = np.log(a4.shape[-1]) if name.startswith("entropy") else 1.0
        image = ax.imshow(values, cmap="magma", vmin=0, vmax=max(vmax, 1e-12), aspect="auto")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(n_heads))
        ax.set_yticks(range(n_layers))
        ax.tick_params(labelsize=7)
        if values.size <= 64:                                     # small grids: print the numbers
            for (l, h), v in np.ndenumerate(values):
                ax.text(h, l, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 * vmax else "black")
        fig.colorbar(image, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig
