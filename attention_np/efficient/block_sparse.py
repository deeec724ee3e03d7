"""Block-sparse attention (Sparse Transformer, BigBird): attention restricted to a layout of tiles.

The sequence is cut into blocks of ``block_size`` rows (the last block may be shorter). A boolean
``layout`` of shape (n_q_blocks, n_k_blocks) says which (query block, key block) tiles exist:

    allowed(i, j) = layout[i // b, j // b]        (causal: and j ≤ i)

For each query block the keys of its active blocks are gathered and exact attention runs on
that (b, n_active · b) tile, so the cost is O(nnz(layout) · b² · D) instead of O(T² · D).
:func:`block_layout` builds the BigBird layout: a band of ``window`` blocks on each side,
``global_blocks`` that see and are seen by every block, and ``random_blocks`` extra key blocks per
query block.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import check_indices
from attention_np.nn.checks import as_dout, check_positive_int
from attention_np.self_attention import sdpa_core, check_qkv, scaled_dot_product_attention_backward


def num_blocks(T: int, block_size: int) -> int:
    return -(-T // block_size)


def block_layout(n_q_blocks: int, n_k_blocks: int, window: int = 1, global_blocks=None,
                 random_blocks: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """(n_q_blocks, n_k_blocks) boolean BigBird layout: band |a − c| ≤ window, global rows and
    columns, and ``random_blocks`` random key blocks per query block (drawn with ``rng``)."""
    nq = check_positive_int(n_q_blocks, "n_q_blocks")
    nk = check_positive_int(n_k_blocks, "n_k_blocks")
    window = check_positive_int(window, "window", minimum=0)
    random_blocks = check_positive_int(random_blocks, "random_blocks", minimum=0)
    layout = np.abs(np.arange(nq)[:, None] - np.arange(nk)[None, :]) <= window
    g = check_indices(global_blocks, "global_blocks", min(nq, nk))
    layout[g, :] = True
    layout[:, g] = True
    if random_blocks:
        rng = np.random.default_rng() if rng is None else rng
        for a in range(nq):
            layout[a, rng.choice(nk, size=min(random_blocks, nk), replace=False)] = True
    return layout


def block_layout_mask(layout, block_size: int, Tq: int, Tk: int) -> np.ndarray:
    """The (Tq, Tk) element mask of a block layout: mask[i, j] = layout[i // b, j // b]."""
    layout = _check_layout(layout, block_size, Tq, Tk)
    return layout[np.arange(Tq)[:, None] // block_size, np.arange(Tk)[None, :] // block_size]


def _check_layout(layout, block_size, Tq, Tk) -> np.ndarray:
    block_size = check_positive_int(block_size, "block_size")
    layout = np.asarray(layout)
    want = (num_blocks(Tq, block_size), num_blocks(Tk, block_size))
    if layout.dtype != np.bool_ or layout.shape != want:
        raise ValueError(f"layout must be a boolean array of shape {want} (blocks of {block_size} "
                         f"for Tq={Tq}, Tk={Tk}), got dtype {layout.dtype} shape {layout.shape}")
    return layout


def _tiles(layout: np.ndarray, block_size: int, Tq: int, Tk: int):
    """Yield (query rows slice, key indices of the active blocks) for each query block."""
    for a in range(layout.shape[0]):
        rows = slice(a * block_size, min((a + 1) * block_size, Tq))
        keys = [np.arange(c * block_size, min((c + 1) * block_size, Tk))
                for c in np.flatnonzero(layout[a])]
        yield rows, np.concatenate(keys) if keys else np.zeros(0, dtype=np.intp)


def block_sparse_attention_forward(q, k, v, layout, block_size: int, causal: bool = False):
    """out_i = Σ_{j allowed(i, j)} softmax_j(q_i · k_j / √D) v_j, one query block at a time.

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv), layout (⌈Tq/b⌉, ⌈Tk/b⌉) bool
    → out (..., Tq, Dv), weights None, cache. Queries with no allowed key get out = 0.
    Equals exact attention with ``mask=block_layout_mask(layout, b, Tq, Tk)`` (∧ causal).
    """
    q, k, v = check_qkv(q, k, v)
    Tq, Tk = q.shape[-2], k.shape[-2]
    layout = _check_layout(layout, block_size, Tq, Tk)
    out = np.zeros(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)      # (..., Tq, Dv)
    tiles = []
    for rows, keys in _tiles(layout, block_size, Tq, Tk):
        if keys.size == 0:
            continue
        mask = keys[None, :] <= np.arange(Tq)[rows, None] if causal else None   # (b, n·b)
        out[..., rows, :], _, tile_cache = sdpa_core(
            q[..., rows, :], k[..., keys, :], v[..., keys, :], mask=mask, causal=False,
            backend="numpy", dropout_p=0.0, rng=None)
        tiles.append((rows, keys, tile_cache))
    return out, None, {"tiles": tiles, "q": q, "k": k, "v": v}


def block_sparse_attention_backward(dout, cache):
    """Each tile's exact-attention backward, scattered back to its rows / key blocks.
    Returns (dq, dk, dv)."""
    q, k, v = cache["q"], cache["k"], cache["v"]
    dout = as_dout(dout, q.shape[:-1] + v.shape[-1:], q.dtype, name="dout")
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for rows, keys, tile_cache in cache["tiles"]:
        dq_t, dk_t, dv_t = scaled_dot_product_attention_backward(dout[..., rows, :], tile_cache)
        dq[..., rows, :] = dq_t
        dk[..., keys, :] += dk_t                                     # keys are distinct in a tile
        dv[..., keys, :] += dv_t
    return dq, dk, dv
