"""BertViz-style interactive views as one self-contained HTML file (inline JS and CSS, no
network), from plain NumPy ``(L, H, Tq, Tk)`` weights. Lines and heatmaps are drawn on
``<canvas>`` and weights travel as one byte each, so 512+ tokens stay responsive."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from attention_np.viz._html_assets import CSS, JS
from attention_np.viz._util import as_layers_heads, pick_layers, token_list

MAX_BYTES = 64 * 2**20  # one byte per weight; past this, pass `layers=` to keep the page light


def encode_weights(a4: np.ndarray) -> tuple[str, float]:
    """(L, H, Tq, Tk) → (base64 of uint8 codes q = round(255·sqrt(w/scale)), scale)."""
    scale = float(max(1.0, a4.max()))
    codes = np.rint(255.0 * np.sqrt(np.clip(a4 / scale, 0.0, 1.0))).astype(np.uint8)
    return base64.b64encode(codes.tobytes()).decode("ascii"), scale


def _payload(attn, tokens, key_tokens, tokens_b, layers, view: str, threshold: float) -> dict:
    a4 = as_layers_heads(attn)
    picked = pick_layers(a4, layers)
    a4 = a4[picked]
    if a4.size > MAX_BYTES:
        raise ValueError(f"attn {a4.shape} needs {a4.size / 2**20:.0f} MiB in the page; "
                         f"pick fewer layers with layers=[...] (limit {MAX_BYTES // 2**20} MiB)")
    toks = [str(t) for t in tokens]
    split = None
    if tokens_b is not None:
        split = len(toks)
        toks = toks + [str(t) for t in tokens_b]
        if a4.shape[-1] != a4.shape[-2]:
            raise ValueError(f"tokens_b (sentence pair) needs self-attention, got {a4.shape}")
    tq = token_list(toks, a4.shape[-2], "tokens (+ tokens_b)")
    keys = tq if key_tokens is None and a4.shape[-1] == a4.shape[-2] else key_tokens
    weights, scale = encode_weights(a4)
    return {"view": view, "layers": a4.shape[0], "heads": a4.shape[1], "tq": a4.shape[2],
            "tk": a4.shape[3], "tokens_q": tq, "tokens_k": token_list(keys, a4.shape[3], "key_tokens"),
            "split": split, "threshold": threshold, "scale": scale,
            "layer_names": [f"layer {l}" for l in picked], "weights": weights}


def _write_page(payload: dict, path, title: str) -> Path:
    data = json.dumps(payload).replace("</", "<\\/")             # never close the <script> early
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><div id='view'></div>"
            f"<script type='application/json' id='attn-data'>{data}</script>"
            f"<script>{JS}</script></body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def head_view_html(attn, tokens, path, tokens_b=None, key_tokens=None, layers=None,
                   threshold: float = 0.02, title: str = "attention: head view") -> Path:
    """BertViz's head view, offline: queries on the left, keys on the right, one line per weight
    a[i, j] ≥ ``threshold`` with opacity ∝ a[i, j], one colour per head.

    attn (H, T, T) or (L, H, T, T). Pick the layer from a menu, toggle heads by clicking their
    swatches (double-click: only that head), hover a token to see only its lines with the other
    side shaded by the mean weight. ``tokens_b``: second sentence of a pair (attn covers
    tokens + tokens_b) — a menu then restricts to A→A, A→B, B→A or B→B. ``key_tokens``: labels
    of the keys for cross-attention (Tq ≠ Tk). Returns the path written.
    """
    return _write_page(_payload(attn, tokens, key_tokens, tokens_b, layers, "head", threshold),
                       path, title)


def model_view_html(attn, tokens, path, tokens_b=None, key_tokens=None, layers=None,
                    title: str = "attention: model view") -> Path:
    """BertViz's model view, offline: an L × H grid of every head's (Tq, Tk) map; click one to
    enlarge it, hover the enlarged map to read the weight under the cursor and the query's top-5
    keys. Colour encodes sqrt(weight) so 1/T-sized weights stay visible at 512+ tokens.
    Arguments as :func:`head_view_html`. Returns the path written."""
    return _write_page(_payload(attn, tokens, key_tokens, tokens_b, layers, "model", 0.0),
                       path, title)
