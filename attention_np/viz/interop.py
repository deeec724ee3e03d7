"""Hand attention-np weights to the established viewers (CircuitsVis, BertViz)."""
from __future__ import annotations

import numpy as np

from attention_np.viz._util import as_layers_heads, pick_layers, token_list


def to_circuitsvis(attn, tokens, layers=None) -> dict:
    """Keyword arguments for ``circuitsvis.attention.attention_heads(**d)``:
    ``attention`` (n_heads, T_dest, T_src) float array, ``tokens`` (list of str),
    ``attention_head_names`` ("L{l}H{h}"). attn (H, T, T) or (L, H, T, T); ``layers`` picks the
    layers to include (default: all). CircuitsVis draws square patterns only, so T_dest = T_src.
    """
    a4 = as_layers_heads(attn)
    if a4.shape[-1] != a4.shape[-2]:
        raise ValueError(f"circuitsvis draws self-attention only (T, T), got shape {a4.shape}")
    chosen = pick_layers(a4, layers)
    heads = [(l, h) for l in chosen for h in range(a4.shape[1])]
    return {
        "attention": np.stack([a4[l, h] for l, h in heads]),
        "tokens": token_list(tokens, a4.shape[-1], "tokens"),
        "attention_head_names": [f"L{l}H{h}" for l, h in heads],
    }


def to_bertviz(attn, as_torch=None) -> list:
    """BertViz's input (``head_view(attention, tokens)``): one (1, H, Tq, Tk) array per layer,
    as torch tensors when torch is installed (``as_torch=None``) or asked for (``True``)."""
    a4 = as_layers_heads(attn)
    layers = [np.ascontiguousarray(layer[None]) for layer in a4]     # L × (1, H, Tq, Tk)
    if as_torch is False:
        return layers
    try:
        import torch
    except ImportError:
        if as_torch:
            raise
        return layers
    return [torch.from_numpy(layer) for layer in layers]
